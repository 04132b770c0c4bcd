package e2e

import (
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/browser"
	"github.com/shequ/shequ/hub/totp"
	"github.com/shequ/shequ/protocol"
)

// groupedSecret is a TOTP secret as /me/2fa shows it: base32 in groups of
// four.
var groupedSecret = regexp.MustCompile(`^[A-Z2-7]{4}( [A-Z2-7]{1,4})+$`)

// authenticator plays the leader's authenticator app: it makes the codes
// of a secret and remembers the last step the hub accepted, since the hub
// refuses a code of that step or an earlier one again.
type authenticator struct {
	secret []byte
	last   int64 // the last step whose code the hub accepted
}

// next returns a code the hub accepts now and not before: the code of the
// step after the last one used, once that step is within the hub's
// tolerance of the clock (totp.Skew steps ahead), waiting for the clock
// when it is not yet.
func (a *authenticator) next(t *testing.T) string {
	t.Helper()
	waitFor(t, totp.Period+5*time.Second, "a TOTP step after the last one used", func() (bool, error) {
		return totp.Step(time.Now())+totp.Skew > a.last, nil
	})
	s := max(a.last+1, totp.Step(time.Now()))
	a.last = s
	return totp.HOTP(a.secret, uint64(s), totp.Digits)
}

// wrong returns a well-formed code that no step near now has.
func (a *authenticator) wrong(t *testing.T) string {
	t.Helper()
	now := totp.Step(time.Now())
	var near []string
	for s := now - 2; s <= now+3; s++ {
		near = append(near, totp.HOTP(a.secret, uint64(s), totp.Digits))
	}
	for d := range 10 { // six near codes leave some of these ten free
		if c := strings.Repeat(string(rune('0'+d)), totp.Digits); !slices.Contains(near, c) {
			return c
		}
	}
	t.Fatalf("no wrong code: the near codes are %q", near)
	return ""
}

// wantLayout fails the test if the page is wider than the viewport (a
// horizontal scroll bar) or its menu bar does not fit in one row.
func wantLayout(t *testing.T, tab *browser.Tab) {
	t.Helper()
	var got struct {
		Scroll int     `json:"scroll"`
		View   int     `json:"view"`
		Header float64 `json:"header"`
		Path   string  `json:"path"`
	}
	tab.Eval(`({scroll: document.documentElement.scrollWidth, view: window.innerWidth,
		header: document.querySelector("header").getBoundingClientRect().height, path: location.pathname})`, &got)
	if got.Scroll > got.View || got.Header < 30 || got.Header > 80 {
		t.Errorf("%s: page is %d px wide in a %d px viewport, menu bar %.0f px high; want no horizontal overflow and a one-row menu bar",
			got.Path, got.Scroll, got.View, got.Header)
	}
}

// logout logs the tab's account out with the menu's button.
func logout(t *testing.T, tab *browser.Tab, base string) {
	t.Helper()
	if code := tab.Submit(`form[action="/logout"]`); code != http.StatusOK {
		t.Fatalf("logout: page answered %d", code)
	}
	if got := strings.TrimPrefix(tab.URL(), base); got != "/login" {
		t.Fatalf("logged out onto %s, want /login", got)
	}
}

// enterCode submits code on the login's second step and returns the path
// it lands on.
func enterCode(t *testing.T, tab *browser.Tab, base, code string) string {
	t.Helper()
	tab.Fill(`form[action="/login/2fa"] input[name="code"]`, code)
	if c := tab.Submit(`form[action="/login/2fa"]`); c != http.StatusOK {
		t.Fatalf("verification code: page answered %d", c)
	}
	return strings.TrimPrefix(tab.URL(), base)
}

// fileCase files a case on the console's new-case form and returns its
// page's path.
func fileCase(t *testing.T, tab *browser.Tab, base, source, community string, category protocol.FeedbackCategory, description string) string {
	t.Helper()
	if code := tab.Go(base + "/cases/new"); code != http.StatusOK {
		t.Fatalf("GET /cases/new: %d", code)
	}
	tab.Select(`#newcase select[name="source"]`, source)
	tab.Select(`#newcase select[name="community"]`, community)
	tab.Select(`#newcase select[name="kind"]`, string(protocol.KindComplaint))
	tab.Select(`#newcase select[name="category"]`, string(category))
	tab.Fill(`#newcase input[name="building"]`, "7")
	tab.Fill(`#newcase textarea[name="description"]`, description)
	tab.Fill(`#newcase input[name="phone"]`, "13900139000")
	if code := tab.Submit("#create"); code != http.StatusOK {
		t.Fatalf("file case %q: page answered %d", description, code)
	}
	tab.WaitText("#flash", "工单已登记")
	path := strings.TrimPrefix(tab.URL(), base)
	if !strings.HasPrefix(path, "/cases/") {
		t.Fatalf("filing a case landed on %s", path)
	}
	return path
}

// TestConsolePagesInBrowser goes through the console's pages that the case
// loop does not, in a real browser at 1366×768: a squad leader turns on
// two-step verification and logs in with a code (a wrong one refused), then
// with a recovery code, which works once, and turns it off again; files
// cases and reads the analysis page, its SVG chart and a CSV export;
// publishes a notice after the composer refused a character the kiosks
// cannot draw; opens the check-in overview. A district admin opens the
// account list. Screenshots go to the test's artifact directory (and
// docs/screenshots with -screenshots).
func TestConsolePagesInBrowser(t *testing.T) {
	e := newEnv(t, "mochi", nil)
	hubAPI := e.api()
	base := e.hub.HTTPURL()
	leader := hubAPI.addAccount("zhou.dz", "周队长", "squad_leader", "wuliqiao")
	admin := hubAPI.addAccount("sun.qu", "孙管理员", "district_admin", "huangpu")
	earlier := hubAPI.createNotice("垃圾分类宣传周活动安排", protocol.PriorityNormal, kioskTarget(demoKiosk))

	b := browser.Start(t, browser.WithCA(e.hub.CACertPEM()))
	desk := b.NewTab(t, browser.Desktop())

	// 1. Two-step verification: enrol, log in with a code, with a
	// recovery code, switch off.
	if got := login(t, desk, base, leader); got != "/cases" {
		t.Fatalf("leader landed on %s, want /cases", got)
	}
	if code := desk.Go(base + "/me/2fa"); code != http.StatusOK {
		t.Fatalf("GET /me/2fa: %d", code)
	}
	desk.WaitText("h2", "两步验证")
	desk.WaitText("#tf-status", "未开启")
	var qr struct {
		Src   string `json:"src"`
		Width int    `json:"width"`
	}
	desk.Eval(`(() => { const i = document.querySelector("#qr"); return {src: i.getAttribute("src"), width: i.naturalWidth}; })()`, &qr)
	if !strings.HasPrefix(qr.Src, "data:image/png;base64,") || qr.Width == 0 {
		t.Fatalf("QR code is not an inline PNG the browser decoded: src %.40q…, natural width %d", qr.Src, qr.Width)
	}
	shown := strings.TrimSpace(desk.Text("#secret"))
	if !groupedSecret.MatchString(shown) {
		t.Fatalf("secret on the page is %q, want base32 in groups of four", shown)
	}
	secret, err := totp.ParseSecret(shown)
	if err != nil {
		t.Fatalf("parse the secret on the page %q: %v", shown, err)
	}
	wantLayout(t, desk)
	shot(t, desk, "console-2fa.png")

	app := &authenticator{secret: secret}
	desk.Fill(`#enable2fa input[name="code"]`, app.next(t))
	if code := desk.Submit("#confirm"); code != http.StatusOK {
		t.Fatalf("confirm two-step verification: page answered %d", code)
	}
	desk.WaitText("h2", "恢复码")
	desk.WaitText("#done", "两步验证已开启")
	var recovery []string
	desk.Eval(`Array.from(document.querySelectorAll("#recovery-codes li"), li => li.innerText.trim())`, &recovery)
	if len(recovery) != 10 || recovery[0] == "" || recovery[0] == recovery[1] {
		t.Fatalf("recovery codes shown: %q, want 10 different ones", recovery)
	}
	if code := desk.ClickLoad("#saved"); code != http.StatusOK {
		t.Fatalf("leave the recovery codes: %d", code)
	}
	logout(t, desk, base)

	// The password alone leads to the code step; a wrong code is refused;
	// the next step's code logs in.
	if got := login(t, desk, base, leader); got != "/login/2fa" {
		t.Fatalf("password login of an account with two-step verification landed on %s, want /login/2fa", got)
	}
	desk.WaitText("h2", "输入验证码")
	wantLayout(t, desk)
	shot(t, desk, "console-2fa-login.png")
	if got := enterCode(t, desk, base, app.wrong(t)); got != "/login/2fa?failed=1" {
		t.Fatalf("a wrong code landed on %s, want /login/2fa?failed=1", got)
	}
	desk.WaitText("#code-failed", "验证码不正确")
	used := app.next(t)
	if got := enterCode(t, desk, base, used); got != "/cases" {
		t.Fatalf("the right code landed on %s, want /cases", got)
	}
	desk.WaitText(".who", "周队长")
	logout(t, desk, base)

	// A code used before is refused; a recovery code logs in, once.
	login(t, desk, base, leader)
	if got := enterCode(t, desk, base, used); got != "/login/2fa?failed=1" {
		t.Fatalf("a replayed code landed on %s, want /login/2fa?failed=1", got)
	}
	if got := enterCode(t, desk, base, recovery[3]); got != "/cases" {
		t.Fatalf("a recovery code landed on %s, want /cases", got)
	}
	logout(t, desk, base)
	login(t, desk, base, leader)
	if got := enterCode(t, desk, base, recovery[3]); got != "/login/2fa?failed=1" {
		t.Fatalf("a used recovery code landed on %s, want /login/2fa?failed=1", got)
	}
	desk.WaitText("#code-failed", "已使用")
	if got := enterCode(t, desk, base, recovery[4]); got != "/cases" {
		t.Fatalf("another recovery code landed on %s, want /cases", got)
	}
	if code := desk.Go(base + "/me/2fa"); code != http.StatusOK {
		t.Fatalf("GET /me/2fa: %d", code)
	}
	desk.WaitText("#tf-status", "已开启")
	desk.WaitText("#recovery-left", "8")

	// Switch it off with the password; the next login needs no code.
	desk.Fill(`#disable2fa input[name="password"]`, leader.password)
	if code := desk.Submit("#disable"); code != http.StatusOK {
		t.Fatalf("switch two-step verification off: page answered %d", code)
	}
	desk.WaitText("#done", "两步验证已关闭")
	desk.WaitText("#tf-status", "未开启")
	logout(t, desk, base)
	if got := login(t, desk, base, leader); got != "/cases" {
		t.Fatalf("login after switching two-step verification off landed on %s, want /cases", got)
	}

	// 2. Analysis: cases filed on the console show in the totals, the
	// chart and the CSV export.
	fileCase(t, desk, base, "hotline", "sangcheng", protocol.CatIllegalConstruction, "12345 热线：楼顶搭建阳光房")
	fileCase(t, desk, base, "hotline", "sangcheng", protocol.CatGreenSpace, "12345 热线：绿地被占用停车")
	fileCase(t, desk, base, "patrol", "ruiyi", protocol.CatFacade, "巡查发现：沿街外墙擅自开门")
	if code := desk.ClickLoad(`nav a[href="/stats"]`); code != http.StatusOK {
		t.Fatalf("open /stats: %d", code)
	}
	desk.WaitText("h2", "数据分析")
	desk.WaitText("#t-totals h3", "总体情况")
	var totals map[string]string
	desk.Eval(`Object.fromEntries(Array.from(document.querySelectorAll("#t-totals tbody tr"), r => [r.cells[0].innerText.trim(), r.cells[1].innerText.trim()]))`, &totals)
	if totals["受理"] != "3" || totals["办理中"] != "3" || totals["已办结"] != "0" {
		t.Errorf("totals are %v, want 受理 3, 办理中 3, 已办结 0", totals)
	}
	desk.WaitText("#t-sources", "12345")
	desk.WaitText("#t-communities", "瑞一居委")
	var chart struct {
		Bars  int     `json:"bars"`
		Width float64 `json:"width"`
	}
	desk.Eval(`(() => { const s = document.querySelector("svg#chart"); return s ? {bars: s.querySelectorAll("rect").length, width: s.getBoundingClientRect().width} : {bars: 0, width: 0}; })()`, &chart)
	if chart.Bars < 2 || chart.Width < 300 || chart.Width > browser.DesktopWidth {
		t.Errorf("chart has %d bars and is %.0f px wide, want ≥ 2 bars (hotline and patrol) in 300–%d px", chart.Bars, chart.Width, browser.DesktopWidth)
	}
	var csv struct {
		Href        string `json:"href"`
		Status      int    `json:"status"`
		Type        string `json:"type"`
		Disposition string `json:"disposition"`
		Body        string `json:"body"`
	}
	desk.Eval(`(async () => {
		const a = document.querySelector("#t-totals a.csv");
		const r = await fetch(a.href, {credentials: "same-origin"});
		return {href: a.getAttribute("href"), status: r.status, type: r.headers.get("Content-Type"),
			disposition: r.headers.get("Content-Disposition"), body: await r.text()};
	})()`, &csv)
	if csv.Status != http.StatusOK || !strings.HasPrefix(csv.Type, "text/csv") || !strings.Contains(csv.Disposition, "attachment") {
		t.Fatalf("GET %s: status %d, type %q, disposition %q", csv.Href, csv.Status, csv.Type, csv.Disposition)
	}
	lines := strings.Split(strings.TrimSpace(strings.TrimPrefix(csv.Body, "\ufeff")), "\n")
	if len(lines) < 2 || strings.TrimSpace(lines[0]) != "指标,数值" || strings.TrimSpace(lines[1]) != "受理,3" {
		t.Errorf("CSV of %s starts %q, want 指标,数值 then 受理,3", csv.Href, lines[:min(len(lines), 2)])
	}
	wantLayout(t, desk)
	shot(t, desk, "console-stats.png")

	// 3. Notices: 燚 is refused with what was typed kept; without it the
	// notice is published and listed.
	const (
		badTitle  = "燚 防火安全提醒"
		goodTitle = "防火安全提醒"
		body      = "近期天气干燥，请勿在楼道堆放杂物，规范使用电动自行车充电设施。"
	)
	if code := desk.Go(base + "/notices"); code != http.StatusOK {
		t.Fatalf("open /notices: %d", code)
	}
	desk.WaitText("h2", "公告管理")
	desk.WaitText("#notices", earlier.Title)
	desk.Fill(`#composer input[name="title"]`, badTitle)
	desk.Fill(`#composer textarea[name="body"]`, body)
	desk.Select(`#composer select[name="priority"]`, string(protocol.PriorityImportant))
	until := time.Now().In(shanghai).Add(7 * 24 * time.Hour).Format("2006-01-02T15:04")
	desk.Eval(`(() => { const i = document.querySelector('#composer input[name="until"]'); i.value = `+jsString(t, until)+`; return i.value; })()`, nil)
	desk.Click(`#composer input[name="target"][value="sangcheng"]`)
	if code := desk.Submit("#publish"); code != http.StatusBadRequest {
		t.Fatalf("publishing a title with 燚: page answered %d, want %d", code, http.StatusBadRequest)
	}
	desk.WaitText("#form-error", "无法显示")
	desk.WaitText("#form-error", "燚")
	var kept struct {
		Title    string `json:"title"`
		Body     string `json:"body"`
		Priority string `json:"priority"`
		Until    string `json:"until"`
		Targets  []string
	}
	desk.Eval(`(() => { const f = document.querySelector("#composer"); return {
		title: f.elements.title.value, body: f.elements.body.value, priority: f.elements.priority.value, until: f.elements.until.value,
		Targets: Array.from(f.querySelectorAll('input[name="target"]:checked'), i => i.value)}; })()`, &kept)
	if kept.Title != badTitle || kept.Body != body || kept.Priority != string(protocol.PriorityImportant) || kept.Until != until ||
		!slices.Equal(kept.Targets, []string{"sangcheng"}) {
		t.Errorf("the composer after the error holds %+v, want what was typed", kept)
	}
	wantLayout(t, desk)
	shot(t, desk, "console-notices.png")
	desk.Fill(`#composer input[name="title"]`, goodTitle)
	if code := desk.Submit("#publish"); code != http.StatusOK {
		t.Fatalf("publish: page answered %d", code)
	}
	desk.WaitText("#flash", "公告已发布")
	desk.WaitText("h2", goodTitle)
	if code := desk.Go(base + "/notices"); code != http.StatusOK {
		t.Fatalf("GET /notices: %d", code)
	}
	desk.WaitText("#notices", goodTitle)
	if row := desk.Text(`#notices tbody tr:first-child`); !strings.Contains(row, goodTitle) || !strings.Contains(row, "桑城居委") {
		t.Errorf("newest notice row is %q, want %s for 桑城居委", row, goodTitle)
	}

	// 4. Check-ins and accounts.
	if code := desk.ClickLoad(`nav a[href="/checkins"]`); code != http.StatusOK {
		t.Fatalf("open /checkins: %d", code)
	}
	desk.WaitText("h2", "驻点签到")
	desk.WaitText("#presence", "桑城居委")
	wantLayout(t, desk)
	shot(t, desk, "console-checkins.png")

	adminTab := b.NewTab(t, browser.Desktop())
	login(t, adminTab, base, admin)
	if code := adminTab.ClickLoad(`nav a[href="/accounts"]`); code != http.StatusOK {
		t.Fatalf("open /accounts: %d", code)
	}
	adminTab.WaitText("h2", "账号管理")
	adminTab.WaitText(`#accounts tr[data-account="zhou.dz"]`, "周队长")
	wantLayout(t, adminTab)
	shot(t, adminTab, "console-accounts.png")
}

// shanghai is the time zone of the console's date and time fields: China
// has no daylight saving time.
var shanghai = time.FixedZone("CST", 8*3600)
