package console

import (
	"bufio"
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/releases"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// fakeInspector stands in for RAUC: a "bundle" is a text file whose first
// line is fakeBundleMagic, then the version and the build; anything else
// is refused. (cmd/e2e's TestReleasesInBrowser uploads real bundles.)
type fakeInspector struct{}

const fakeBundleMagic = "SHEQU-TEST-BUNDLE"

func (fakeInspector) Inspect(_ context.Context, path string) (releases.Info, error) {
	f, err := os.Open(path)
	if err != nil {
		return releases.Info{}, err
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		lines = append(lines, sc.Text())
	}
	if len(lines) < 3 || lines[0] != fakeBundleMagic {
		return releases.Info{}, fmt.Errorf("%w: signature verification failed", releases.ErrRefused)
	}
	return releases.Info{Compatible: releases.DefaultCompatible, Version: lines[1], Build: lines[2]}, nil
}

var _ releases.Inspector = fakeInspector{}

// fakeBundle is a bundle fakeInspector accepts.
func fakeBundle(version string) string {
	return fakeBundleMagic + "\n" + version + "\nbuild-" + version + "\n" + strings.Repeat("x", 3000)
}

// uploadRelease posts a bundle to the console's upload route as upload.js
// does: the raw body, the CSRF token in a header, notes in the query.
func (c *client) uploadRelease(body, notes, csrf string) response {
	c.f.t.Helper()
	path := "/releases"
	if notes != "" {
		path += "?notes=" + url.QueryEscape(notes)
	}
	req, err := http.NewRequest(http.MethodPost, c.f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		c.f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Origin", c.f.srv.URL)
	if csrf != "" {
		req.Header.Set("X-CSRF-Token", csrf)
	}
	return c.do(req)
}

var (
	formError       = regexp.MustCompile(`(?s)<p class="error" role="alert" id="form-error">(.*?)</p>`)
	rolloutLocation = regexp.MustCompile(`^/releases/rollouts/([^/?]+)\?ok=rel\.started$`)
)

// formErrorText is the form error a page shows, "" if none.
func formErrorText(body string) string {
	if m := formError.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	return ""
}

// startRollout starts a rollout through the form and returns its id.
func (c *client) startRollout(form url.Values) string {
	c.f.t.Helper()
	res := c.submit("/releases/rollouts", form)
	m := rolloutLocation.FindStringSubmatch(res.header.Get("Location"))
	if res.code != http.StatusSeeOther || m == nil {
		c.f.t.Fatalf("%s: POST /releases/rollouts: %d %q %s %s", c.name, res.code, res.header.Get("Location"),
			formErrorText(res.body), errorText(res.body))
	}
	return m[1]
}

// lastAudit returns the newest audit entry of an action.
func (f *fixture) lastAudit(action string) (actor, object string) {
	f.t.Helper()
	chs, err := f.acc.RecentChanges(context.Background(), 0, 100)
	if err != nil {
		f.t.Fatal(err)
	}
	for _, ch := range chs {
		if ch.Action == action {
			return ch.Actor, ch.Object
		}
	}
	return "", ""
}

// TestReleaseUploadAndRollout: an admin uploads a release on the page's
// upload route, starts a rollout of it in two stages with the form, sees
// it listed with its stages and kiosks, halts, resumes and cancels it;
// every change is audited as made by the admin, and a change the rollout's
// state does not allow is refused on the page, not with a 500.
func TestReleaseUploadAndRollout(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	admin := f.login("huangpu")
	csrf := admin.csrf()

	res := admin.uploadRelease(fakeBundle("1.4.0"), "修复打印机驱动", csrf)
	if res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	if actor, obj := f.lastAudit("release.upload"); actor != "account:"+f.accounts["huangpu"].ID || obj != "release:1.4.0" {
		t.Errorf("release.upload audited as %q on %q, want the admin on release:1.4.0", actor, obj)
	}
	page := admin.get("/releases?ok=rel.uploaded")
	body := html.UnescapeString(page.body)
	for _, want := range []string{`id="flash">更新包已上传并通过校验。`, `<tr data-version="1.4.0"><td>1.4.0</td><td>3.0 KiB</td><td>build-1.4.0</td><td>黄浦区管理员 (huangpu)</td>`,
		"修复打印机驱动", `<option value="1.4.0" selected>1.4.0</option>`} {
		if !strings.Contains(body, want) {
			t.Errorf("the releases page lacks %q", want)
		}
	}

	t.Run("upload refused", func(t *testing.T) {
		for _, tt := range []struct {
			name, body string
			code       int
			want       string
		}{
			{"not signed", "garbage", http.StatusBadRequest, "signature verification failed"},
			{"version taken", fakeBundle("1.4.0"), http.StatusConflict, "exists already"},
		} {
			t.Run(tt.name, func(t *testing.T) {
				res := admin.uploadRelease(tt.body, "", csrf)
				if res.code != tt.code || !strings.Contains(res.body, tt.want) {
					t.Errorf("upload: %d %s, want %d saying %q", res.code, res.body, tt.code, tt.want)
				}
			})
		}
		if res := admin.uploadRelease(fakeBundle("1.5.0"), "", ""); res.code != http.StatusForbidden {
			t.Errorf("upload without the CSRF token: %d, want 403", res.code)
		}
		if rs, err := f.rel.Releases(context.Background()); err != nil || len(rs) != 1 {
			t.Errorf("%d releases (%v), want the one", len(rs), err)
		}
	})

	id := admin.startRollout(url.Values{"release": {"1.4.0"}, "stages": {"试点: k-sangcheng-01\r\n五里桥：wuliqiao，ruiyi\r\n"},
		"max_bad": {"20"}, "min_healthy": {"80"}, "soak": {"0"}})
	if actor, obj := f.lastAudit("rollout.start"); actor != "account:"+f.accounts["huangpu"].ID || obj != "rollout:"+id {
		t.Errorf("rollout.start audited as %q on %q", actor, obj)
	}
	v, err := f.rel.View(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	if len(v.Stages) != 2 || v.Stages[0].Name != "试点" || strings.Join(v.Stages[1].Targets, " ") != "wuliqiao ruiyi" ||
		v.MaxBadPercent != 20 || v.MinHealthyPercent != 80 || v.SoakSeconds != 0 || v.CreatedBy != "account:"+f.accounts["huangpu"].ID {
		t.Errorf("rollout started as %+v", v)
	}

	page = admin.get("/releases/rollouts/" + id + "?ok=rel.started")
	body = html.UnescapeString(page.body)
	for _, want := range []string{`id="flash">分批更新已开始。`, `id="state">进行中`, "<tr data-stage=\"试点\"><td>试点</td><td>桑城居委一楼大厅</td><td>当前批次</td>\n<td>1</td>",
		"<tr data-stage=\"五里桥\"><td>五里桥</td><td>五里桥街道、瑞一居委</td><td>等待中</td>\n<td>2</td>",
		`<tr data-kiosk="k-sangcheng-02">`, `id="halt"`, `id="cancel"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the rollout page lacks %q", want)
		}
	}
	if strings.Contains(body, `id="resume"`) {
		t.Error("a running rollout offers resume")
	}
	list := html.UnescapeString(admin.get("/releases").body)
	if !strings.Contains(list, `<tr data-rollout="`+id+`">`) || !strings.Contains(list, "试点 (1/2)") {
		t.Errorf("the releases page does not list rollout %s with its current stage", id)
	}

	steps := []struct {
		action, reason string
		code           int
		state, flash   string
	}{
		{"halt", "打印异常，先暂停", http.StatusSeeOther, store.RolloutHalted, "rel.halted"},
		{"halt", "", http.StatusConflict, store.RolloutHalted, ""},
		{"resume", "", http.StatusSeeOther, store.RolloutRunning, "rel.resumed"},
		{"cancel", "改发 1.4.1", http.StatusSeeOther, store.RolloutCancelled, "rel.cancelled"},
		{"resume", "", http.StatusConflict, store.RolloutCancelled, ""},
	}
	for i, s := range steps {
		t.Run(fmt.Sprintf("%d %s", i, s.action), func(t *testing.T) {
			res := admin.submit("/releases/rollouts/"+id+"/"+s.action, url.Values{"reason": {s.reason}})
			if res.code != s.code {
				t.Fatalf("POST %s: %d %s %s, want %d", s.action, res.code, formErrorText(res.body), errorText(res.body), s.code)
			}
			if s.code == http.StatusSeeOther {
				if loc := res.header.Get("Location"); loc != "/releases/rollouts/"+id+"?ok="+s.flash {
					t.Errorf("redirected to %q", loc)
				}
				if actor, obj := f.lastAudit("rollout." + s.action); actor != "account:"+f.accounts["huangpu"].ID || obj != "rollout:"+id {
					t.Errorf("rollout.%s audited as %q on %q", s.action, actor, obj)
				}
			} else if msg := formErrorText(res.body); !strings.HasPrefix(msg, "操作未执行：") || !strings.Contains(msg, "cannot become") {
				t.Errorf("a refused %s shows %q, want the service's reason", s.action, msg)
			}
			v, err := f.rel.View(context.Background(), id)
			if err != nil || v.State != s.state || v.Reason != s.reason && s.code == http.StatusSeeOther {
				t.Errorf("rollout %s %q (%v), want %s %q", v.State, v.Reason, err, s.state, s.reason)
			}
		})
	}
	if res := admin.submit("/releases/rollouts/r-nope/halt", nil); res.code != http.StatusNotFound {
		t.Errorf("halting an unknown rollout: %d, want 404", res.code)
	}
	admin.get("/lang?to=en&back=/releases")
	for path, wants := range map[string][]string{
		"/releases":                []string{"Kiosk updates", "Upload a release", "Rollouts", "Cancelled", "Start a rollout", "Updates</a>"},
		"/releases/rollouts/" + id: []string{"Rollout " + id, "Cancelled", "Current", "Waiting", "Kiosks"},
	} {
		body := html.UnescapeString(admin.get(path).body)
		for _, want := range wants {
			if !strings.Contains(body, want) {
				t.Errorf("English %s lacks %q", path, want)
			}
		}
		for _, zh := range []string{T(Zh, "releases"), T(Zh, "rstate.cancelled"), T(Zh, "rel.stage")} {
			if strings.Contains(body, zh) {
				t.Errorf("English %s shows %q", path, zh)
			}
		}
	}
	audit := html.UnescapeString(f.login("bureau").get("/audit").body)
	for _, want := range []string{"上传更新包", "发起分批更新", "暂停分批更新", `href="/releases/rollouts/` + id + `"`} {
		if !strings.Contains(audit, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
}

// TestRolloutFormErrors: a rollout form the console or the service refuses
// comes back with the reason on top and what was typed kept, and nothing
// starts.
func TestRolloutFormErrors(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	admin := f.login("huangpu")
	if res := admin.uploadRelease(fakeBundle("1.4.0"), "", admin.csrf()); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	good := url.Values{"release": {"1.4.0"}, "stages": {"试点: k-sangcheng-01"}, "max_bad": {"10"}, "min_healthy": {"90"}, "soak": {"30"}}
	tests := []struct {
		name   string
		change url.Values
		want   string
	}{
		{"no colon", url.Values{"stages": {"试点 k-sangcheng-01"}}, "批次格式不对（每行“名称: 编号 编号”）：试点 k-sangcheng-01"},
		{"no targets", url.Values{"stages": {"试点:"}}, "批次格式不对"},
		{"no stages", url.Values{"stages": {"\n  \n"}}, "请至少填写一个批次。"},
		{"unknown target", url.Values{"stages": {"试点: k-nowhere"}}, "不在您的范围内或不存在的组织/终端：k-nowhere"},
		{"outside the area", url.Values{"stages": {"试点: k-sangcheng-01\n徐汇: hengfu"}}, "不在您的范围内或不存在的组织/终端：hengfu"},
		{"percent zero", url.Values{"max_bad": {"0"}}, "比例须为 1–100"},
		{"percent too big", url.Values{"min_healthy": {"101"}}, "比例须为 1–100"},
		{"negative soak", url.Values{"soak": {"-5"}}, "观察期"},
		{"no release", url.Values{"release": {""}}, "请选择版本。"},
		{"unknown release", url.Values{"release": {"9.9"}}, `操作未执行：releases: bad request: no release "9.9"`},
		{"too many stages", url.Values{"stages": {strings.Repeat("s: k-sangcheng-01\n", releases.MaxStages+1)}}, "a rollout has 1 to 10 stages"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := cloneValues(good)
			for k, v := range tt.change {
				form[k] = v
			}
			res := admin.submit("/releases/rollouts", form)
			if res.code != http.StatusBadRequest {
				t.Fatalf("POST: %d %q, want 400", res.code, res.header.Get("Location"))
			}
			if msg := formErrorText(res.body); !strings.Contains(msg, tt.want) {
				t.Errorf("form error %q, want %q", msg, tt.want)
			}
			body := html.UnescapeString(res.body)
			if s := form.Get("stages"); strings.TrimSpace(s) != "" && !strings.Contains(body, strings.TrimSpace(s)+"</textarea>") {
				t.Errorf("the stages typed are not kept")
			}
			if !strings.Contains(body, `name="soak" min="0" max="10080" value="`+form.Get("soak")+`"`) {
				t.Error("the soak typed is not kept")
			}
		})
	}
	if vs, err := f.rel.Views(context.Background()); err != nil || len(vs) != 0 {
		t.Errorf("%d rollouts after refusals (%v)", len(vs), err)
	}
	// The defaults: empty fields.
	id := admin.startRollout(url.Values{"release": {"1.4.0"}, "stages": {"all: huangpu"}, "downgrade": {"1"}})
	v, err := f.rel.View(context.Background(), id)
	if err != nil || v.MaxBadPercent != releases.DefaultMaxBadPercent || v.MinHealthyPercent != releases.DefaultMinHealthyPercent ||
		v.SoakSeconds != int64(releases.DefaultSoak/time.Second) || !v.AllowDowngrade {
		t.Errorf("rollout with empty fields: %+v (%v), want the defaults and a downgrade allowed", v, err)
	}
}

// TestReleasePermissions: only bureau and district admins see the
// releases pages or change anything on them; a district admin sees only
// the rollouts within its district.
func TestReleasePermissions(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	bureau := f.login("bureau")
	if res := bureau.uploadRelease(fakeBundle("1.4.0"), "", bureau.csrf()); res.code != http.StatusCreated {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	city := bureau.startRollout(url.Values{"release": {"1.4.0"}, "stages": {"全市: shanghai"}})
	f.clock.Add(time.Second) // rollout ids are the time they start
	xuhui := f.login("xuhui").startRollout(url.Values{"release": {"1.4.0"}, "stages": {"徐汇: xuhui"}})

	for _, user := range []string{"squad", "officer-a", "partner", "tech"} {
		t.Run(user, func(t *testing.T) {
			c := f.login(user)
			csrf := c.csrf()
			for _, path := range []string{"/releases", "/releases/rollouts/" + city} {
				if res := c.get(path); res.code != http.StatusForbidden {
					t.Errorf("GET %s: %d, want 403", path, res.code)
				}
			}
			if res := c.uploadRelease(fakeBundle("2.0.0"), "", csrf); res.code != http.StatusForbidden {
				t.Errorf("upload: %d, want 403", res.code)
			}
			for _, path := range []string{"/releases/rollouts", "/releases/rollouts/" + city + "/halt", "/releases/rollouts/" + city + "/cancel"} {
				form := url.Values{"csrf": {csrf}, "release": {"1.4.0"}, "stages": {"x: sangcheng"}}
				if res := c.postForm(path, form, f.srv.URL); res.code != http.StatusForbidden {
					t.Errorf("POST %s: %d, want 403", path, res.code)
				}
			}
			if strings.Contains(c.get("/fleet").body, `href="/releases"`) {
				t.Error("the menu links to /releases")
			}
		})
	}
	if vs, err := f.rel.Views(context.Background()); err != nil || len(vs) != 2 || vs[0].State != store.RolloutRunning || vs[1].State != store.RolloutRunning {
		t.Errorf("rollouts %+v (%v), want both running", vs, err)
	}
	if rs, _ := f.rel.Releases(context.Background()); len(rs) != 1 {
		t.Errorf("%d releases, want 1", len(rs))
	}

	huangpu := f.login("huangpu")
	list := huangpu.get("/releases").body
	if !strings.Contains(list, `href="/releases"`) {
		t.Error("an admin's menu has no link to /releases")
	}
	if strings.Contains(list, city) || strings.Contains(list, xuhui) {
		t.Error("Huangpu's admin sees rollouts beyond Huangpu")
	}
	for _, id := range []string{city, xuhui} {
		if res := huangpu.get("/releases/rollouts/" + id); res.code != http.StatusNotFound {
			t.Errorf("Huangpu's admin GET rollout %s: %d, want 404", id, res.code)
		}
		if res := huangpu.submit("/releases/rollouts/"+id+"/halt", nil); res.code != http.StatusNotFound {
			t.Errorf("Huangpu's admin halting rollout %s: %d, want 404", id, res.code)
		}
	}
	if list := bureau.get("/releases").body; !strings.Contains(list, city) || !strings.Contains(list, xuhui) {
		t.Error("the bureau admin does not see every rollout")
	}
}

// TestFleetUpdates: the fleet page and a kiosk's page show the OS version
// with its slot and the update state in words, in both languages.
func TestFleetUpdates(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	at := f.clock.Now()
	for _, u := range []protocol.UpdateStatus{
		{Kiosk: "k-sangcheng-01", Epoch: 1, Slot: "A", Version: "1.3.2", Release: "1.4.0", State: protocol.UpdateDownloading, Percent: 42},
		{Kiosk: "k-ruiyi-01", Epoch: 1, Slot: "A", Version: "1.3.2", Release: "1.4.0", State: protocol.UpdateRolledBack,
			Reason: "health gate: crash loop"},
		{Kiosk: "k-hengfu-01", Epoch: 1, Slot: "B", Version: "1.4.0", State: protocol.UpdateHealthy},
	} {
		if _, err := f.st.ApplyUpdateStatus(ctx, u, at); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.st.InsertUpdateReport(ctx, protocol.NewID(), protocol.UpdateReport{Kiosk: "k-ruiyi-01", Rollout: "r-1", Release: "1.4.0",
		State: protocol.UpdateRolledBack, Slot: "A", Version: "1.3.2", Reason: "health gate: crash loop", At: at}, at); err != nil {
		t.Fatal(err)
	}
	tech := f.login("tech")
	body := html.UnescapeString(tech.get("/fleet").body)
	for _, want := range []string{
		`<td class="os">1.3.2 (A)</td><td class="update">下载中 42%</td>`,
		`<td class="os">1.3.2 (A)</td><td class="update bad">已回滚：health gate: crash loop</td>`,
		`<td class="os">1.4.0 (B)</td><td class="update">正常</td>`,
		`<td class="os"></td><td class="update"></td>`, // k-sangcheng-02 never said
		"<th>系统版本</th><th>系统更新</th>",
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the fleet page lacks %q", want)
		}
	}
	kiosk := html.UnescapeString(tech.get("/fleet/k-ruiyi-01").body)
	for _, want := range []string{`<dd id="os">1.3.2 (A)</dd>`, `<dd id="update-state" class="bad">已回滚：health gate: crash loop</dd>`,
		`<dd id="update-last">1.4.0 · 已回滚：health gate: crash loop`} {
		if !strings.Contains(kiosk, want) {
			t.Errorf("the kiosk page lacks %q", want)
		}
	}
	tech.get("/lang?to=en&back=/fleet")
	body = html.UnescapeString(tech.get("/fleet").body)
	for _, want := range []string{"Downloading 42%", "Rolled back: health gate: crash loop", "<th>OS version</th><th>Update</th>"} {
		if !strings.Contains(body, want) {
			t.Errorf("the English fleet page lacks %q", want)
		}
	}
}

func TestUpdateWords(t *testing.T) {
	tests := []struct {
		state   protocol.UpdateState
		percent int
		reason  string
		zh, en  string
	}{
		{"", 0, "", "", ""},
		{protocol.UpdateIdle, 0, "", "空闲", "Idle"},
		{protocol.UpdateUnsupported, 0, "", "不支持", "No A/B updates"},
		{protocol.UpdateDownloading, 42, "", "下载中 42%", "Downloading 42%"},
		{protocol.UpdateInstalling, 7, "", "安装中 7%", "Installing 7%"},
		{protocol.UpdateInstalled, 100, "", "已安装·重启中", "Installed, rebooting"},
		{protocol.UpdateBooted, 0, "", "新系统自检中", "Checking the new slot"},
		{protocol.UpdateHealthy, 0, "", "正常", "Healthy"},
		{protocol.UpdateRefused, 0, "not newer than slot A", "已拒绝：not newer than slot A", "Refused: not newer than slot A"},
		{protocol.UpdateFailed, 0, "download: no space", "失败：download: no space", "Failed: download: no space"},
		{protocol.UpdateRolledBack, 0, "crash loop", "已回滚：crash loop", "Rolled back: crash loop"},
		{protocol.UpdateFailed, 0, "", "失败", "Failed"},
	}
	for _, tt := range tests {
		t.Run(string(tt.state), func(t *testing.T) {
			if got := updateWords(Zh, tt.state, tt.percent, tt.reason); got != tt.zh {
				t.Errorf("zh %q, want %q", got, tt.zh)
			}
			if got := updateWords(En, tt.state, tt.percent, tt.reason); got != tt.en {
				t.Errorf("en %q, want %q", got, tt.en)
			}
		})
	}
	for _, s := range protocol.UpdateStates {
		if m, ok := messages["upd."+string(s)]; !ok || m[0] == "" || m[1] == "" {
			t.Errorf("update state %s has no words in both languages", s)
		}
	}
	for _, s := range []string{store.RolloutRunning, store.RolloutHalted, store.RolloutDone, store.RolloutCancelled} {
		if m, ok := messages["rstate."+s]; !ok || m[0] == "" || m[1] == "" {
			t.Errorf("rollout state %s has no words in both languages", s)
		}
	}
	for _, a := range []string{"release.upload", "rollout.start", "rollout.halt", "rollout.resume", "rollout.cancel", "rollout.stage", "rollout.done"} {
		if _, ok := messages["aact."+a]; !ok {
			t.Errorf("audit action %s has no label", a)
		}
	}
}

func TestParseStages(t *testing.T) {
	tests := []struct {
		name, text string
		want       string // name=targets;…
		bad        string
	}{
		{"one", "试点: k-1", "试点=k-1", ""},
		{"full-width colon and commas", "五里桥：wuliqiao，ruiyi、k-2", "五里桥=wuliqiao ruiyi k-2", ""},
		{"blank lines and CRLF", "\r\na: x y\r\n\r\nb:z\r\n", "a=x y;b=z", ""},
		{"colon in a target", "a: x:y", "a=x:y", ""},
		{"no colon", "a x", "", "a x"},
		{"no name", ": x", "", ": x"},
		{"no targets", "a: , ", "", "a: ,"},
		{"empty", "", "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			stages, bad := parseStages(tt.text)
			var got []string
			for _, s := range stages {
				got = append(got, s.Name+"="+strings.Join(s.Targets, " "))
			}
			if strings.Join(got, ";") != tt.want || bad != tt.bad {
				t.Errorf("parseStages(%q) = %q, %q; want %q, %q", tt.text, got, bad, tt.want, tt.bad)
			}
		})
	}
}
