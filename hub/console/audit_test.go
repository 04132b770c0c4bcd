package console

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/media"
	"github.com/shequ/shequ/hub/report"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// newAuditFixture is newFixture with the API and the media library
// auditing their changes to the accounts service's log, as hub/hub.go
// wires them: the actor is the request's (jsonhttp.Actor), "system"
// without one.
func newAuditFixture(t *testing.T) *fixture {
	t.Helper()
	f := newFixture(t, false)
	log := slog.New(slog.DiscardHandler)
	audit := func(ctx context.Context, action, object string, before, after any) {
		actor := jsonhttp.Actor(ctx)
		if actor == "" {
			actor = "system"
		}
		if err := f.acc.Audit(ctx, accounts.AuditEntry{Actor: actor, Action: action, Object: object, Before: before, After: after}); err != nil {
			t.Errorf("audit %s: %v", action, err)
		}
	}
	var err error
	f.api, err = api.New(api.Config{Store: f.st, Tree: f.tree, AdminToken: "admin-token-0123456789", Audit: audit, Now: f.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.New(report.Config{Store: f.st, Tree: f.tree, Wanted: func(string) []protocol.MediaRef { return nil }}, log)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := media.New(media.Config{Dir: filepath.Join(t.TempDir(), "media"), Store: f.st, Audit: audit, Now: f.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	f.con, err = New(Config{
		Accounts: f.acc, Cases: f.cases, Store: f.st, Tree: f.tree, Notices: f.api, Reports: rep,
		Upload: lib.UploadHandler(), MaxUpload: lib.MaxUpload(), Releases: f.rel, DeviceKey: f.deviceKey, Photo: normalizePhoto,
		Now: f.clock.Now, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.con.Register(f.api)
	f.srv = httptest.NewTLSServer(f.api)
	t.Cleanup(f.srv.Close)
	return f
}

// contentAudits is the audit log's entries of notices and media, oldest
// first.
func (f *fixture) contentAudits() []store.AuditRecord {
	f.t.Helper()
	rs, err := f.st.AuditLog(context.Background(), "", 1000)
	if err != nil {
		f.t.Fatal(err)
	}
	var out []store.AuditRecord
	for i := len(rs) - 1; i >= 0; i-- {
		if strings.HasPrefix(rs[i].Action, "notice.") || strings.HasPrefix(rs[i].Action, "media.") {
			out = append(out, rs[i])
		}
	}
	return out
}

// upload posts a raw media upload as the console's page script does.
func (c *client) upload(body []byte, filename string) response {
	c.f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.f.srv.URL+"/media", bytes.NewReader(body))
	if err != nil {
		c.f.t.Fatal(err)
	}
	req.Header.Set("X-CSRF-Token", c.csrf())
	req.Header.Set("X-Filename", url.PathEscape(filename))
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("Origin", c.f.srv.URL)
	return c.do(req)
}

func testPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 64, 48))
	for i := range img.Pix {
		img.Pix[i] = byte(i)
	}
	img.Set(0, 0, color.White)
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

var noticeLocation = regexp.MustCompile(`^/notices/([^/?]+)\?ok=notice\.created$`)

// TestContentAudit: a notice created and withdrawn and a file uploaded in
// the console are each audited once, by the person (account:<id>) and not
// by a tool; refused attempts are not audited.
func TestContentAudit(t *testing.T) {
	f := newAuditFixture(t)
	f.standardAccounts()
	squad, bureau := f.login("squad"), f.login("bureau")
	form := url.Values{"title": {"开放日通知"}, "body": {"欢迎参加城管开放日"}, "category": {"event"},
		"priority": {"normal"}, "target": {"sangcheng"}}

	bad := cloneValues(form)
	bad.Set("title", " ")
	if res := squad.submit("/notices", bad); res.code != http.StatusBadRequest {
		t.Fatalf("notice without a title: %d", res.code)
	}
	if res := squad.upload(testPNG(t), "宣传图.png"); res.code != http.StatusForbidden {
		t.Fatalf("upload by a squad leader: %d", res.code)
	}
	if res := bureau.upload([]byte("not an image at all\n"), "假图.png"); res.code != http.StatusUnsupportedMediaType {
		t.Fatalf("upload of text: %d %s", res.code, res.body)
	}
	if e := f.contentAudits(); len(e) != 0 {
		t.Fatalf("refused changes audited: %+v", e)
	}

	res := squad.submit("/notices", form)
	m := noticeLocation.FindStringSubmatch(res.header.Get("Location"))
	if res.code != http.StatusSeeOther || m == nil {
		t.Fatalf("POST /notices: %d %q %s", res.code, res.header.Get("Location"), errorText(res.body))
	}
	id := m[1]
	if res := squad.submit("/notices/"+id+"/withdraw", nil); res.code != http.StatusSeeOther {
		t.Fatalf("withdraw: %d %s", res.code, errorText(res.body))
	}
	if res := squad.submit("/notices/"+id+"/withdraw", nil); res.code != http.StatusSeeOther {
		t.Fatalf("withdraw again: %d %s", res.code, errorText(res.body))
	}
	res = bureau.upload(testPNG(t), "宣传图.png")
	if res.code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", res.code, res.body)
	}
	ms, err := f.st.MediaList(context.Background())
	if err != nil || len(ms) != 1 {
		t.Fatalf("media %+v, %v", ms, err)
	}

	squadActor, bureauActor := "account:"+f.accounts["squad"].ID, "account:"+f.accounts["bureau"].ID
	want := []struct{ action, actor, object, after string }{
		{"notice.create", squadActor, "notice:" + id, `"开放日通知"`},
		{"notice.withdraw", squadActor, "notice:" + id, `"status":"withdrawn"`},
		{"media.upload", bureauActor, "media:" + ms[0].ID, `"宣传图.png"`},
	}
	got := f.contentAudits()
	if len(got) != len(want) {
		t.Fatalf("audit log %+v, want %d entries", got, len(want))
	}
	for i, w := range want {
		e := got[i]
		if e.Action != w.action || e.Actor != w.actor || e.Object != w.object || !strings.Contains(e.After, w.after) {
			t.Errorf("entry %d = %s by %s on %s after %s; want %s by %s on %s with %s", i, e.Action, e.Actor, e.Object, e.After,
				w.action, w.actor, w.object, w.after)
		}
	}
	if !strings.Contains(got[1].Before, `"status":"active"`) {
		t.Errorf("withdrawal before %s, want the active notice", got[1].Before)
	}
	if hist, err := f.st.AuditLog(context.Background(), "notice:"+id, 10); err != nil || len(hist) != 2 {
		t.Errorf("history of notice:%s: %+v, %v", id, hist, err)
	}
	// The notice's page says who published and who withdrew it.
	page := squad.get("/notices/" + id)
	if !regexp.MustCompile(`id="history">撤回：五里桥中队长 \(squad\)，[^<]+ · 发布：五里桥中队长 \(squad\)，`).MatchString(page.body) {
		t.Errorf("the notice page does not show its history:\n%s", page.body)
	}
}

// TestAuditLogPage: a bureau admin reads the whole audit log, newest
// first, with people's names, the object linked and the change by field,
// page by page; other roles may not; stored text is shown inert.
func TestAuditLogPage(t *testing.T) {
	f := newAuditFixture(t)
	f.standardAccounts()
	squad, bureau, huangpu := f.login("squad"), f.login("bureau"), f.login("huangpu")
	form := url.Values{"title": {"<b>开放日</b>通知"}, "body": {"欢迎"}, "category": {"event"},
		"priority": {"normal"}, "target": {"sangcheng"}}
	res := squad.submit("/notices", form)
	m := noticeLocation.FindStringSubmatch(res.header.Get("Location"))
	if res.code != http.StatusSeeOther || m == nil {
		t.Fatalf("POST /notices: %d %s", res.code, errorText(res.body))
	}
	officer := f.accounts["officer-a"].ID
	if res := huangpu.submit("/accounts/"+officer+"/name", url.Values{"display_name": {"李队员"}}); res.code != http.StatusSeeOther {
		t.Fatalf("rename: %d %s", res.code, errorText(res.body))
	}
	if res := huangpu.get("/audit"); res.code != http.StatusForbidden {
		t.Errorf("district admin: GET /audit %d, want 403", res.code)
	}
	if res := squad.get("/audit"); res.code != http.StatusForbidden {
		t.Errorf("squad leader: GET /audit %d, want 403", res.code)
	}
	page := bureau.get("/audit")
	if page.code != http.StatusOK {
		t.Fatalf("GET /audit: %d", page.code)
	}
	rename := strings.Index(page.body, "修改姓名")
	publish := strings.Index(page.body, "发布")
	for _, want := range []string{"黄浦区管理员 (huangpu)", `<a href="/accounts/` + officer + `">李队员 (officer-a)</a>`,
		`<a href="/notices/` + m[1] + `">notice:` + m[1] + `</a>`, "五里桥中队长 (squad)", "&lt;b&gt;开放日&lt;/b&gt;通知"} {
		if !strings.Contains(page.body, want) {
			t.Errorf("the audit log lacks %q", want)
		}
	}
	if rename < 0 || publish < 0 || rename > publish {
		t.Errorf("the rename (%d) does not come before the older publication (%d)", rename, publish)
	}
	if strings.Contains(page.body, "<b>开放日</b>") {
		t.Error("stored markup is shown as markup")
	}
	if res := bureau.get("/audit?before=-1"); res.code != http.StatusBadRequest {
		t.Errorf("GET /audit?before=-1: %d, want 400", res.code)
	}
	// Paging: write more entries than a page and follow "older" to the end.
	for i := range auditPage + 5 {
		if err := f.acc.Audit(context.Background(), accounts.AuditEntry{Actor: "system", Action: "test.entry",
			Object: fmt.Sprintf("test:%d", i)}); err != nil {
			t.Fatal(err)
		}
	}
	seen, path := map[string]bool{}, "/audit"
	older := regexp.MustCompile(`<a href="/audit\?(before=\d+)" id="older">`)
	for range 10 {
		res := bureau.get(path)
		for _, mm := range regexp.MustCompile(`>test:(\d+)<`).FindAllStringSubmatch(res.body, -1) {
			if seen[mm[1]] {
				t.Fatalf("entry test:%s on two pages", mm[1])
			}
			seen[mm[1]] = true
		}
		next := older.FindStringSubmatch(res.body)
		if next == nil {
			break
		}
		path = "/audit?" + next[1]
	}
	if len(seen) != auditPage+5 {
		t.Errorf("paging showed %d of the %d test entries", len(seen), auditPage+5)
	}
}
