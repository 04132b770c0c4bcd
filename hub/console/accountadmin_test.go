package console

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/store"
)

// setupAccounts is the standard accounts and one officer in Xuhui.
func setupAccounts(t *testing.T) *fixture {
	f := newFixture(t, false)
	f.standardAccounts()
	f.addAccount("officer-x", "徐汇队员", accounts.RoleOfficer, "tianping")
	return f
}

var accountRowRe = regexp.MustCompile(`<tr data-account="([^"]+)"`)

// listed returns the usernames on the account list.
func listed(body string) []string {
	var out []string
	for _, m := range accountRowRe.FindAllStringSubmatch(body, -1) {
		out = append(out, m[1])
	}
	return out
}

// tryLogin reports whether username can log in with pw.
func (f *fixture) tryLogin(username, pw string) bool {
	f.t.Helper()
	res := f.newClient(username).postForm("/login", url.Values{"username": {username}, "password": {pw}}, f.srv.URL)
	return res.code == http.StatusSeeOther && res.header.Get("Location") == "/"
}

// account reads an account from the store.
func (f *fixture) account(username string) store.AccountRecord {
	f.t.Helper()
	a, err := f.st.AccountByUsername(context.Background(), username)
	if err != nil {
		f.t.Fatal(err)
	}
	return a
}

// auditOf is the audit log of an account, newest first.
func (f *fixture) auditOf(username string) []store.AuditRecord {
	f.t.Helper()
	log, err := f.st.AuditLog(context.Background(), "account:"+f.account(username).ID, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	return log
}

func TestAccountListScope(t *testing.T) {
	f := setupAccounts(t)
	tests := []struct {
		user string
		code int
		want []string
	}{
		{"bureau", http.StatusOK, []string{"huangpu", "officer-a", "officer-b", "officer-x", "partner", "squad", "tech", "xuhui"}},
		{"huangpu", http.StatusOK, []string{"officer-a", "officer-b", "partner", "squad"}},
		{"xuhui", http.StatusOK, []string{"officer-x"}},
		{"squad", http.StatusForbidden, nil},
		{"officer-a", http.StatusForbidden, nil},
		{"partner", http.StatusForbidden, nil},
		{"tech", http.StatusForbidden, nil},
	}
	for _, tc := range tests {
		t.Run(tc.user, func(t *testing.T) {
			res := f.login(tc.user).get("/accounts")
			if res.code != tc.code {
				t.Fatalf("GET /accounts: %d, want %d", res.code, tc.code)
			}
			if got := listed(res.body); !slices.Equal(got, tc.want) {
				t.Errorf("listed %v, want %v", got, tc.want)
			}
			if tc.code != http.StatusOK {
				return
			}
			if !strings.Contains(res.body, `action="/accounts"`) || !csrfInput.MatchString(res.body) {
				t.Error("no create form with a csrf field")
			}
			// The district admin is offered the roles below its own and the
			// nodes of its district only.
			if tc.user == "huangpu" {
				if strings.Contains(res.body, `value="district_admin"`) || strings.Contains(res.body, `value="xuhui"`) ||
					!strings.Contains(res.body, `value="squad_leader"`) || !strings.Contains(res.body, `value="sangcheng"`) {
					t.Error("huangpu's form offers the wrong roles or nodes")
				}
			}
		})
	}
}

func TestCreateAccount(t *testing.T) {
	f := setupAccounts(t)
	admin := f.login("huangpu")
	tests := []struct {
		name     string
		form     url.Values
		code     int
		message  string // on the page
		loginPW  string // the password the new account logs in with; "secret" reads it from the page
		username string
	}{
		{"officer with a typed password", url.Values{"username": {"officer-c"}, "display_name": {"队员丙"}, "role": {"officer"},
			"node": {"wuliqiao"}, "password": {"a fine passphrase"}, "password2": {"a fine passphrase"}},
			http.StatusSeeOther, "", "a fine passphrase", "officer-c"},
		{"partner with a generated password", url.Values{"username": {"ruiyi-jw"}, "display_name": {"瑞一居委"}, "role": {"partner"},
			"node": {"ruiyi"}}, http.StatusOK, "密码只显示这一次", "secret", "ruiyi-jw"},
		{"technician at the district", url.Values{"username": {"tech-hp"}, "role": {"technician"}, "node": {"huangpu"}},
			http.StatusOK, "密码只显示这一次", "secret", "tech-hp"},
		{"officer at a community", url.Values{"username": {"officer-d"}, "role": {"officer"}, "node": {"sangcheng"}},
			http.StatusBadRequest, "该角色须选择以下一级的组织：街道", "", ""},
		{"partner at a kiosk", url.Values{"username": {"officer-d"}, "role": {"partner"}, "node": {"k-sangcheng-01"}},
			http.StatusBadRequest, "请选择角色和所属组织", "", ""},
		{"weak password", url.Values{"username": {"officer-d"}, "role": {"officer"}, "node": {"wuliqiao"},
			"password": {"short"}, "password2": {"short"}}, http.StatusBadRequest, "密码至少 10 个字符", "", ""},
		{"passwords differ", url.Values{"username": {"officer-d"}, "role": {"officer"}, "node": {"wuliqiao"},
			"password": {"a fine passphrase"}, "password2": {"a fine passphrase!"}}, http.StatusBadRequest, "两次输入的密码不一致", "", ""},
		{"username taken", url.Values{"username": {"officer-a"}, "role": {"officer"}, "node": {"wuliqiao"}},
			http.StatusConflict, "该用户名已被使用", "", ""},
		{"bad username", url.Values{"username": {"Officer D"}, "role": {"officer"}, "node": {"wuliqiao"}},
			http.StatusBadRequest, "用户名须为", "", ""},
		{"a district admin", url.Values{"username": {"huangpu2"}, "role": {"district_admin"}, "node": {"huangpu"}},
			http.StatusForbidden, "您不能授予该角色", "", ""},
		{"an officer in another district", url.Values{"username": {"officer-d"}, "role": {"officer"}, "node": {"tianping"}},
			http.StatusForbidden, "您不能授予该角色", "", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			n, err := f.st.Accounts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			res := admin.submit("/accounts", tc.form)
			if res.code != tc.code {
				t.Fatalf("POST /accounts: %d, want %d: %s", res.code, tc.code, errorText(res.body))
			}
			if tc.message != "" && !strings.Contains(res.body, tc.message) {
				t.Errorf("the page does not say %q", tc.message)
			}
			after, err := f.st.Accounts(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if tc.username == "" {
				if len(after) != len(n) {
					t.Errorf("a refused form created an account")
				}
				// The form keeps what was typed, but no password.
				if !strings.Contains(res.body, `value="`+html.EscapeString(tc.form.Get("username"))+`"`) {
					t.Errorf("the form lost the username")
				}
				return
			}
			a := f.account(tc.username)
			if a.Role != tc.form.Get("role") || a.Node != tc.form.Get("node") || a.DisplayName != tc.form.Get("display_name") {
				t.Errorf("created %+v", a)
			}
			pw := tc.loginPW
			if pw == "secret" {
				m := regexp.MustCompile(`<code class="secret" id="secret">([^<]+)</code>`).FindStringSubmatch(res.body)
				if m == nil {
					t.Fatal("no generated password on the page")
				}
				pw = m[1]
			} else if loc := res.header.Get("Location"); loc != "/accounts/"+a.ID+"?done=acct.created" {
				t.Errorf("redirect to %q", loc)
			}
			if !f.tryLogin(tc.username, pw) {
				t.Errorf("%s cannot log in with its password", tc.username)
			}
			log := f.auditOf(tc.username)
			create := log[len(log)-1]
			if create.Action != "account.create" || create.Actor != "account:"+f.accounts["huangpu"].ID ||
				!strings.Contains(create.After, `"role":"`+tc.form.Get("role")+`"`) {
				t.Errorf("audit of the creation: %+v", create)
			}
		})
	}
	t.Run("a squad leader cannot create an admin", func(t *testing.T) {
		res := f.login("squad").submit("/accounts", url.Values{"username": {"boss"}, "role": {"district_admin"},
			"node": {"huangpu"}, "password": {"a fine passphrase"}, "password2": {"a fine passphrase"}})
		if res.code != http.StatusForbidden {
			t.Errorf("POST /accounts as a squad leader: %d, want 403", res.code)
		}
		if _, err := f.st.AccountByUsername(context.Background(), "boss"); err == nil {
			t.Error("the account was created")
		}
	})
}

func TestAccountChanges(t *testing.T) {
	f := setupAccounts(t)
	admin := f.login("huangpu")
	officer := f.login("officer-a")
	id := f.accounts["officer-a"].ID
	path := "/accounts/" + id

	t.Run("page", func(t *testing.T) {
		res := admin.get(path)
		if res.code != http.StatusOK {
			t.Fatalf("GET %s: %d", path, res.code)
		}
		for _, form := range []string{"/name", "/role", "/password", "/lock"} {
			if !regexp.MustCompile(`action="` + regexp.QuoteMeta(path+form) + `" id="[a-z]+"[^>]*>\s*(<h3>[^<]*</h3>\s*)?<input type="hidden" name="csrf" value="[^"]+">`).MatchString(res.body) {
				t.Errorf("no form %s with a csrf field", form)
			}
		}
	})
	t.Run("rename", func(t *testing.T) {
		res := admin.submit(path+"/name", url.Values{"display_name": {"  李队员  "}})
		if res.code != http.StatusSeeOther || res.header.Get("Location") != path+"?done=acct.renamed" {
			t.Fatalf("POST name: %d %q %s", res.code, res.header.Get("Location"), errorText(res.body))
		}
		if a := f.account("officer-a"); a.DisplayName != "李队员" {
			t.Errorf("display name %q", a.DisplayName)
		}
		if res := officer.get("/me/password"); res.code != http.StatusOK || !strings.Contains(res.body, "李队员") {
			t.Errorf("the renamed account's session: %d, want it kept and showing the new name", res.code)
		}
		if e := f.auditOf("officer-a")[0]; e.Action != "account.set_display_name" || !strings.Contains(e.After, "李队员") {
			t.Errorf("audit: %+v", e)
		}
		page := admin.get(path + "?done=acct.renamed")
		for _, want := range []string{"姓名已更新", "修改姓名", `name="display_name" value="李队员"`} {
			if !strings.Contains(page.body, want) {
				t.Errorf("account page lacks %q", want)
			}
		}
		long := admin.submit(path+"/name", url.Values{"display_name": {strings.Repeat("长", 31)}})
		if long.code != http.StatusBadRequest || !strings.Contains(long.body, "姓名/显示名最多 30 个字") {
			t.Errorf("a 31-character name: %d %s", long.code, errorText(long.body))
		}
	})
	t.Run("role change", func(t *testing.T) {
		res := admin.submit(path+"/role", url.Values{"role": {"squad_leader"}, "node": {"wuliqiao"}})
		if res.code != http.StatusSeeOther || res.header.Get("Location") != path+"?done=acct.role_set" {
			t.Fatalf("POST role: %d %q %s", res.code, res.header.Get("Location"), errorText(res.body))
		}
		if a := f.account("officer-a"); a.Role != "squad_leader" {
			t.Errorf("role %s", a.Role)
		}
		if res := officer.get("/m"); res.code != http.StatusSeeOther || res.header.Get("Location") != "/login" {
			t.Errorf("the changed account's session: %d %q, want a redirect to /login", res.code, res.header.Get("Location"))
		}
		log := f.auditOf("officer-a")
		if e := log[0]; e.Action != "account.set_role" || e.Actor != "account:"+f.accounts["huangpu"].ID ||
			!strings.Contains(e.Before, `"role":"officer"`) || !strings.Contains(e.After, `"role":"squad_leader"`) {
			t.Errorf("audit: %+v", e)
		}
		page := admin.get(path + "?done=acct.role_set")
		for _, want := range []string{"角色和所属组织已更新", "调整角色", "黄浦区管理员 (huangpu)", "<del>队员</del> → 中队长", "创建账号"} {
			if !strings.Contains(page.body, want) {
				t.Errorf("the page does not show %q", want)
			}
		}
	})
	t.Run("refused role changes", func(t *testing.T) {
		for _, tc := range []struct {
			name string
			form url.Values
			code int
		}{
			{"to district admin", url.Values{"role": {"district_admin"}, "node": {"huangpu"}}, http.StatusForbidden},
			{"to another district", url.Values{"role": {"officer"}, "node": {"tianping"}}, http.StatusForbidden},
			{"wrong level", url.Values{"role": {"officer"}, "node": {"huangpu"}}, http.StatusBadRequest},
			{"unknown role", url.Values{"role": {"mayor"}, "node": {"huangpu"}}, http.StatusBadRequest},
		} {
			t.Run(tc.name, func(t *testing.T) {
				before := f.account("officer-a")
				if res := admin.submit(path+"/role", tc.form); res.code != tc.code {
					t.Errorf("POST role: %d, want %d", res.code, tc.code)
				}
				if after := f.account("officer-a"); after != before {
					t.Errorf("changed to %+v", after)
				}
			})
		}
	})
	t.Run("lock and unlock", func(t *testing.T) {
		for _, day := range []string{"2026-11-01", "tomorrow", "2099-01-01"} {
			if res := admin.submit(path+"/lock", url.Values{"until": {day}}); res.code != http.StatusBadRequest {
				t.Errorf("lock until %s: %d, want 400", day, res.code)
			}
		}
		if !f.tryLogin("officer-a", password) {
			t.Fatal("officer-a cannot log in before the lock")
		}
		res := admin.submit(path+"/lock", url.Values{"until": {"2026-11-02"}})
		if res.code != http.StatusSeeOther {
			t.Fatalf("lock: %d %s", res.code, errorText(res.body))
		}
		if a := f.account("officer-a"); !a.LockedUntil.Equal(t0.Add(15 * 60 * 60 * 1e9)) {
			t.Errorf("locked until %v, want the next midnight", a.LockedUntil)
		}
		if f.tryLogin("officer-a", password) {
			t.Error("a locked account logged in")
		}
		if page := admin.get(path); !strings.Contains(page.body, "锁定至 2026-11-03 00:00") || !strings.Contains(page.body, `action="`+path+`/unlock"`) {
			t.Error("the page does not show the lock and the unlock form")
		}
		if res := admin.submit(path+"/unlock", nil); res.code != http.StatusSeeOther {
			t.Fatalf("unlock: %d %s", res.code, errorText(res.body))
		}
		if !f.tryLogin("officer-a", password) {
			t.Error("an unlocked account cannot log in")
		}
		// Newest first: the login, the unlock, the refused login, the lock.
		var actions []string
		for _, e := range f.auditOf("officer-a")[:4] {
			actions = append(actions, e.Action)
		}
		if want := []string{"login.success", "account.unlock", "login.failure", "account.lock"}; !slices.Equal(actions, want) {
			t.Errorf("audit actions %v, want %v", actions, want)
		}
		if e := f.auditOf("officer-a")[3]; !strings.Contains(e.After, `"locked_until":"2026-11-02T16:00:00Z"`) || strings.Contains(e.Before, "locked_until") {
			t.Errorf("audit of the lock: %+v", e)
		}
	})
	t.Run("reset password", func(t *testing.T) {
		res := admin.submit(path+"/password", url.Values{"password": {"short"}, "password2": {"short"}})
		if res.code != http.StatusBadRequest {
			t.Errorf("weak reset: %d", res.code)
		}
		res = admin.submit(path+"/password", url.Values{"password": {"typed passphrase"}, "password2": {"typed passphrase"}})
		if res.code != http.StatusSeeOther {
			t.Fatalf("reset: %d %s", res.code, errorText(res.body))
		}
		if f.tryLogin("officer-a", password) || !f.tryLogin("officer-a", "typed passphrase") {
			t.Error("after a typed reset the old password works or the new does not")
		}
		res = admin.submit(path+"/password", url.Values{})
		m := regexp.MustCompile(`id="secret">([^<]+)<`).FindStringSubmatch(res.body)
		if res.code != http.StatusOK || m == nil {
			t.Fatalf("generated reset: %d, secret shown: %v", res.code, m != nil)
		}
		if f.tryLogin("officer-a", "typed passphrase") || !f.tryLogin("officer-a", m[1]) {
			t.Error("after a generated reset the old password works or the new does not")
		}
		if page := admin.get(path); strings.Contains(page.body, m[1]) {
			t.Error("the account page shows the generated password again")
		}
		if e := f.auditOf("officer-a"); !slices.ContainsFunc(e, func(r store.AuditRecord) bool {
			return r.Action == "account.set_password" && strings.Contains(r.Before, `"username":"officer-a"`) && !strings.Contains(r.After, m[1])
		}) {
			t.Error("no audit entry of the reset, or it holds the password")
		}
	})
}

func TestAccountCrossScope(t *testing.T) {
	f := setupAccounts(t)
	xuhui := f.login("xuhui")
	huangpu := f.login("huangpu")
	bureau := f.login("bureau")
	squad := f.login("squad")
	officer := f.accounts["officer-a"].ID
	tests := []struct {
		name   string
		c      *client
		target string
		code   int
	}{
		{"xuhui and huangpu's officer", xuhui, officer, http.StatusNotFound},
		{"xuhui and huangpu's admin", xuhui, f.accounts["huangpu"].ID, http.StatusNotFound},
		{"huangpu and a peer district admin", huangpu, f.accounts["xuhui"].ID, http.StatusNotFound},
		{"huangpu and the bureau", huangpu, f.accounts["bureau"].ID, http.StatusNotFound},
		{"huangpu and itself", huangpu, f.accounts["huangpu"].ID, http.StatusNotFound},
		{"bureau and itself", bureau, f.accounts["bureau"].ID, http.StatusNotFound},
		{"squad leader and its officer", squad, officer, http.StatusForbidden},
		{"unknown account", huangpu, "no-such-account", http.StatusNotFound},
	}
	posts := []struct {
		path string
		form url.Values
	}{
		{"/name", url.Values{"display_name": {"冒名"}}},
		{"/role", url.Values{"role": {"bureau_admin"}, "node": {"shanghai"}}},
		{"/role", url.Values{"role": {"technician"}, "node": {"tianping"}}},
		{"/password", url.Values{"password": {"taken over now"}, "password2": {"taken over now"}}},
		{"/lock", url.Values{"until": {"2026-12-01"}}},
		{"/unlock", nil},
	}
	before, err := f.st.Accounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if res := tc.c.get("/accounts/" + tc.target); res.code != tc.code {
				t.Errorf("GET: %d, want %d", res.code, tc.code)
			}
			for _, p := range posts {
				if res := tc.c.submit("/accounts/"+tc.target+p.path, p.form); res.code != tc.code {
					t.Errorf("POST %s %v: %d, want %d", p.path, p.form, res.code, tc.code)
				}
			}
		})
	}
	after, err := f.st.Accounts(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(after, before) {
		t.Errorf("refused changes changed accounts:\n%+v\nwas\n%+v", after, before)
	}
	for _, u := range []string{"bureau", "huangpu", "xuhui"} {
		for _, e := range f.auditOf(u) {
			if strings.HasPrefix(e.Action, "account.") && e.Action != "account.create" {
				t.Errorf("%s: audit entry of a refused change: %+v", u, e)
			}
		}
	}
}

func TestAccountFormsCSRF(t *testing.T) {
	f := setupAccounts(t)
	admin := f.login("huangpu")
	other := f.login("squad").csrf()
	id := f.accounts["officer-a"].ID
	forms := []struct {
		path string
		form url.Values
	}{
		{"/accounts", url.Values{"username": {"officer-c"}, "role": {"officer"}, "node": {"wuliqiao"}}},
		{"/accounts/" + id + "/name", url.Values{"display_name": {"冒名"}}},
		{"/accounts/" + id + "/role", url.Values{"role": {"squad_leader"}, "node": {"wuliqiao"}}},
		{"/accounts/" + id + "/password", url.Values{"password": {"taken over now"}, "password2": {"taken over now"}}},
		{"/accounts/" + id + "/lock", url.Values{"until": {"2026-12-01"}}},
		{"/accounts/" + id + "/unlock", url.Values{}},
		{"/me/password", url.Values{"current": {password}, "password": {"taken over now"}, "password2": {"taken over now"}}},
	}
	tokens := []struct {
		name, token string
	}{
		{"no token", ""},
		{"wrong token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
		{"another user's token", other},
	}
	before, err := f.st.AuditLog(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, fm := range forms {
		for _, tk := range tokens {
			t.Run(fm.path+" "+tk.name, func(t *testing.T) {
				form := cloneValues(fm.form)
				if tk.token != "" {
					form.Set("csrf", tk.token)
				}
				if res := admin.postForm(fm.path, form, f.srv.URL); res.code != http.StatusForbidden {
					t.Errorf("%d, want 403", res.code)
				}
			})
		}
	}
	after, err := f.st.AuditLog(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	if len(after) != len(before) {
		t.Errorf("forms without a valid token wrote %d audit entries: %+v", len(after)-len(before), after[:len(after)-len(before)])
	}
	if !f.tryLogin("huangpu", password) || !f.tryLogin("officer-a", password) {
		t.Error("a password changed")
	}
}

func TestMyPassword(t *testing.T) {
	f := setupAccounts(t)
	for _, u := range []string{"bureau", "huangpu", "squad", "officer-a", "partner", "tech"} {
		t.Run(u, func(t *testing.T) {
			c := f.login(u)
			other := f.login(u)
			res := c.get("/me/password")
			if res.code != http.StatusOK || !strings.Contains(res.body, `action="/me/password"`) || !csrfInput.MatchString(res.body) {
				t.Fatalf("GET /me/password: %d, or no form with a csrf field", res.code)
			}
			next := "new passphrase of " + u
			for _, tc := range []struct {
				name    string
				form    url.Values
				message string
			}{
				{"wrong current", url.Values{"current": {"not my password"}, "password": {next}, "password2": {next}}, "当前密码不正确"},
				{"mismatch", url.Values{"current": {password}, "password": {next}, "password2": {next + "x"}}, "两次输入的密码不一致"},
				{"weak", url.Values{"current": {password}, "password": {"short"}, "password2": {"short"}}, "密码至少 10 个字符"},
				{"same", url.Values{"current": {password}, "password": {password}, "password2": {password}}, "不能与当前密码相同"},
			} {
				res := c.submit("/me/password", tc.form)
				if res.code != http.StatusBadRequest || !strings.Contains(res.body, tc.message) {
					t.Errorf("%s: %d, want 400 saying %q: %s", tc.name, res.code, tc.message, errorText(res.body))
				}
			}
			res = c.submit("/me/password", url.Values{"current": {password}, "password": {next}, "password2": {next}})
			if res.code != http.StatusSeeOther || res.header.Get("Location") != "/me/password?done=me.changed" {
				t.Fatalf("change: %d %q %s", res.code, res.header.Get("Location"), errorText(res.body))
			}
			if page := c.get("/me/password?done=me.changed"); page.code != http.StatusOK || !strings.Contains(page.body, "密码已修改") {
				t.Errorf("the changing browser after the change: %d", page.code)
			}
			if res := other.get("/me/password"); res.code != http.StatusSeeOther || res.header.Get("Location") != "/login" {
				t.Errorf("the other browser after the change: %d %q, want a redirect to /login", res.code, res.header.Get("Location"))
			}
			if f.tryLogin(u, password) || !f.tryLogin(u, next) {
				t.Error("the old password works or the new one does not")
			}
			log := f.auditOf(u)
			if !slices.ContainsFunc(log, func(e store.AuditRecord) bool {
				return e.Action == "account.set_password" && e.Actor == "account:"+f.accounts[u].ID
			}) || !slices.ContainsFunc(log, func(e store.AuditRecord) bool { return e.Action == "password.change_failure" }) {
				t.Errorf("audit log lacks the change or the failed attempt: %+v", log)
			}
		})
	}
	t.Run("not logged in", func(t *testing.T) {
		if res := f.newClient("anon").get("/me/password"); res.code != http.StatusSeeOther || res.header.Get("Location") != "/login" {
			t.Errorf("GET /me/password without a session: %d %q", res.code, res.header.Get("Location"))
		}
	})
}

// TestAccountPagesEnglish renders the pages in English.
func TestAccountPagesEnglish(t *testing.T) {
	f := setupAccounts(t)
	c := f.login("bureau")
	u, err := url.Parse(f.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if res := c.get("/lang?to=en&back=/accounts"); res.code != http.StatusSeeOther {
		t.Fatalf("switch language: %d", res.code)
	}
	if len(c.http.Jar.Cookies(u)) < 2 {
		t.Fatal("no language cookie")
	}
	for path, want := range map[string]string{
		"/accounts":                           "New account",
		"/accounts/" + f.accounts["squad"].ID: "Audit trail",
		"/me/password":                        "Current password",
	} {
		if res := c.get(path); res.code != http.StatusOK || !strings.Contains(res.body, want) {
			t.Errorf("GET %s: %d, want a page saying %q", path, res.code, want)
		}
	}
}

// TestAccountMessages: the notices and labels the account pages pick at
// run time exist in both languages.
func TestAccountMessages(t *testing.T) {
	keys := slices.Clone(accountDone)
	keys = append(keys, "acct.err.username", "acct.err.display", "acct.err.taken", "acct.err.role", "acct.err.level",
		"acct.err.weak", "acct.err.mismatch", "acct.err.forbidden", "acct.err.date", "me.err.current", "me.err.same")
	for _, l := range []string{"city", "district", "street", "community"} {
		keys = append(keys, "level."+l)
	}
	for _, a := range []string{"account.create", "account.set_role", "account.set_password", "account.lock", "account.unlock",
		"login.success", "login.failure", "logout", "password.change_failure", "session.renew"} {
		keys = append(keys, "aact."+a)
	}
	for _, k := range keys {
		if m, ok := messages[k]; !ok || m[0] == "" || m[1] == "" {
			t.Errorf("message %q missing or empty: %q", k, m)
		}
	}
}
