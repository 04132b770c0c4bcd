package console

import (
	"context"
	"errors"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/accounts"
)

var (
	tokenValue = regexp.MustCompile(`shq_[A-Za-z0-9_-]{43}`)
	tokenRowID = regexp.MustCompile(`<tr data-token="([^"]+)">`)
)

// TestTokensLifecycle: a bureau admin makes a token through the form, sees
// it once, finds it listed without the secret, and revokes it; the token
// works on the API until then.
func TestTokensLifecycle(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	boss := f.login("bureau")

	page := boss.get("/me/tokens")
	if page.code != http.StatusOK || !strings.Contains(page.body, "还没有令牌") || page.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /me/tokens: %d %q %s", page.code, page.header.Get("Cache-Control"), errorText(page.body))
	}
	if !strings.Contains(page.body, `<option value="90" selected>90 天</option>`) {
		t.Errorf("the lifetime does not default to 90 days:\n%s", page.body)
	}
	if !strings.Contains(page.body, `href="/me/tokens" aria-current="page" id="tokens-link"`) {
		t.Errorf("the header has no current link to the token page")
	}

	res := boss.submit("/me/tokens", url.Values{"name": {"12345 对接脚本"}, "days": {"30"}})
	if res.code != http.StatusOK || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("POST /me/tokens: %d %q %s", res.code, res.header.Get("Cache-Control"), errorText(res.body))
	}
	toks := tokenValue.FindAllString(res.body, -1)
	if len(toks) != 1 || !strings.Contains(res.body, `value="`+toks[0]+`" id="token"`) {
		t.Fatalf("the reply shows tokens %q, want one in the token field", toks)
	}
	tok := toks[0]
	if !strings.Contains(res.body, "令牌只显示这一次") {
		t.Error("the reply does not say the token is shown once")
	}
	a, at, err := f.acc.AuthenticateAPIToken(ctx, tok)
	if err != nil || a.Username != "bureau" || at.Name != "12345 对接脚本" || at.ExpiresAt.Sub(at.CreatedAt) != 30*24*time.Hour {
		t.Fatalf("the token shown: %+v %+v %v", a, at, err)
	}

	list := boss.get("/me/tokens")
	if strings.Contains(list.body, tok) || strings.Contains(list.body, tok[4:]) || strings.Contains(list.body, `id="token"`) {
		t.Errorf("the list page shows the token again")
	}
	ids := tokenRowID.FindAllStringSubmatch(list.body, -1)
	if len(ids) != 1 || ids[0][1] != at.ID || !strings.Contains(list.body, "12345 对接脚本") || !strings.Contains(list.body, ">有效<") {
		t.Fatalf("list rows %q:\n%s", ids, list.body)
	}
	// Made, expires, and last used: just now, by the check above.
	if want := "<td>" + fmtTime(t0) + "</td><td>" + fmtTime(at.ExpiresAt) + "</td><td>" + fmtTime(t0) + "</td>"; !strings.Contains(list.body, want) {
		t.Errorf("the row does not show %s:\n%s", want, list.body)
	}

	// Another bureau admin cannot revoke it: as if it did not exist.
	f.addAccount("bureau2", "另一位市局管理员", accounts.RoleBureauAdmin, "shanghai")
	other := f.login("bureau2")
	if res := other.submit("/me/tokens/"+at.ID+"/revoke", nil); res.code != http.StatusNotFound {
		t.Errorf("another admin revoking: %d %s, want 404", res.code, errorText(res.body))
	}
	if _, _, err := f.acc.AuthenticateAPIToken(ctx, tok); err != nil {
		t.Fatalf("the token stopped working: %v", err)
	}

	res = boss.submit("/me/tokens/"+at.ID+"/revoke", nil)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/me/tokens?done=tok.done.revoked" {
		t.Fatalf("revoke: %d %q %s", res.code, res.header.Get("Location"), errorText(res.body))
	}
	if _, _, err := f.acc.AuthenticateAPIToken(ctx, tok); !errors.Is(err, accounts.ErrNoAPIToken) {
		t.Errorf("revoked token: %v, want ErrNoAPIToken", err)
	}
	list = boss.get(res.header.Get("Location"))
	if !strings.Contains(list.body, `id="done">令牌已撤销。`) || !strings.Contains(list.body, ">已撤销 ") ||
		strings.Contains(list.body, "/me/tokens/"+at.ID+"/revoke") {
		t.Errorf("the list after revoking:\n%s", list.body)
	}

	// The account's audit trail shows both (to another admin: nobody
	// manages their own account).
	hist := other.get("/accounts/" + f.accounts["bureau"].ID)
	for _, want := range []string{"生成 API 令牌", "撤销 API 令牌", "12345 对接脚本"} {
		if !strings.Contains(hist.body, want) {
			t.Errorf("the account page's history lacks %q", want)
		}
	}
}

// TestTokensForm: the create form refuses a missing name and a lifetime
// not offered, keeping what was typed, and makes nothing.
func TestTokensForm(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	boss := f.login("bureau")
	tests := []struct {
		name string
		form url.Values
		want string
	}{
		{"no name", url.Values{"name": {"  "}, "days": {"90"}}, "请填写名称"},
		{"long name", url.Values{"name": {strings.Repeat("长", 101)}, "days": {"90"}}, "请填写名称"},
		{"other lifetime", url.Values{"name": {"夜间同步"}, "days": {"7"}}, "有效期只能选"},
		{"no lifetime", url.Values{"name": {"夜间同步"}}, "有效期只能选"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := boss.submit("/me/tokens", tt.form)
			if res.code != http.StatusBadRequest || !strings.Contains(res.body, `id="form-error">`+tt.want) {
				t.Fatalf("%d %s, want 400 with %q", res.code, errorText(res.body), tt.want)
			}
			if tokenValue.MatchString(res.body) {
				t.Error("a refused form shows a token")
			}
			if n := strings.TrimSpace(tt.form.Get("name")); n != "" && !strings.Contains(html.UnescapeString(res.body), `name="name" value="`+n+`"`) {
				t.Error("the name typed is not filled in again")
			}
		})
	}
	list, err := f.acc.APITokens(context.Background(), f.accounts["bureau"])
	if err != nil || len(list) != 0 {
		t.Errorf("tokens after refused forms: %+v, %v", list, err)
	}
}

// TestTokensForbidden: only bureau admins reach the token pages or see
// the header link; both forms need the CSRF token.
func TestTokensForbidden(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	_, at, err := f.acc.CreateAPIToken(ctx, f.accounts["bureau"], "script", 90)
	if err != nil {
		t.Fatal(err)
	}
	for _, user := range []string{"huangpu", "squad", "officer-a", "partner", "tech"} {
		t.Run(user, func(t *testing.T) {
			c := f.login(user)
			for _, res := range []response{
				c.get("/me/tokens"),
				c.submit("/me/tokens", url.Values{"name": {"n"}, "days": {"90"}}),
				c.submit("/me/tokens/"+at.ID+"/revoke", nil),
			} {
				if res.code != http.StatusForbidden {
					t.Errorf("%d %s, want 403", res.code, errorText(res.body))
				}
			}
			if page := c.get("/me/password"); page.code != http.StatusOK || strings.Contains(page.body, "/me/tokens") {
				t.Errorf("the header of a %s links to the token page (%d)", user, page.code)
			}
		})
	}
	if page := f.login("bureau").get("/me/password"); !strings.Contains(page.body, `href="/me/tokens"`) {
		t.Error("the bureau admin's header has no link to the token page")
	}

	boss := f.login("bureau")
	for _, tc := range []struct {
		name, path string
		form       url.Values
	}{
		{"create without csrf", "/me/tokens", url.Values{"name": {"n"}, "days": {"90"}}},
		{"create with a wrong csrf", "/me/tokens", url.Values{"name": {"n"}, "days": {"90"}, "csrf": {"forged"}}},
		{"revoke without csrf", "/me/tokens/" + at.ID + "/revoke", url.Values{}},
		{"revoke with a wrong csrf", "/me/tokens/" + at.ID + "/revoke", url.Values{"csrf": {"forged"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if res := boss.postForm(tc.path, tc.form, f.srv.URL); res.code != http.StatusForbidden {
				t.Errorf("%d %s, want 403", res.code, errorText(res.body))
			}
		})
	}
	list, err := f.acc.APITokens(ctx, f.accounts["bureau"])
	if err != nil || len(list) != 1 || list[0].Revoked() {
		t.Errorf("tokens after refused posts: %+v, %v; want the one, not revoked", list, err)
	}
}

// TestTokensPageEnglish: the page in English names the lifetimes.
func TestTokensPageEnglish(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	boss := f.login("bureau")
	if res := boss.get("/lang?to=en&back=/me/tokens"); res.code != http.StatusSeeOther {
		t.Fatalf("switching language: %d", res.code)
	}
	page := boss.get("/me/tokens")
	for _, want := range []string{"Personal API tokens", ">30 days<", ">365 days<", "Make a token", "No tokens yet."} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the English page lacks %q", want)
		}
	}
}
