package e2e

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/browser"
	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/resident"
	"github.com/shequ/shequ/hub/store"
)

// skewClock is the real time moved forward by a settable offset: the test
// lets the 城管码 form's minimum fill time pass without sleeping.
type skewClock struct{ offset atomic.Int64 }

func (c *skewClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *skewClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// residentSite is a hub (embedded broker, demo org tree) whose clock the
// test moves, with its database opened beside it to check the cases the
// 城管码 pages made.
type residentSite struct {
	base  string
	caPEM []byte
	clock *skewClock
	db    *store.SQLite
}

// startResidentSite starts a hub that serves the 城管码 pages.
func startResidentSite(t *testing.T) *residentSite {
	t.Helper()
	s := &residentSite{clock: &skewClock{}}
	e := &env{t: t, cfg: hub.Config{
		DataDir:    t.TempDir(),
		OrgFile:    demoOrg,
		MQTTListen: freeAddr(t),
		HTTPListen: "127.0.0.1:0",
		Now:        s.clock.Now,
	}}
	e.start()
	t.Cleanup(e.stop)
	s.base, s.caPEM = e.hub.HTTPURL(), e.hub.CACertPEM()
	db, err := store.Open(context.Background(), filepath.Join(e.cfg.DataDir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Error(err)
		}
	})
	s.db = db
	return s
}

// communityCases lists the cases of a community.
func (s *residentSite) communityCases(t *testing.T, community string) []cases.Case {
	t.Helper()
	cs, err := s.db.ListCases(context.Background(), store.CaseFilter{Community: community})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// work lists the work records of a case.
func (s *residentSite) work(t *testing.T, caseID string) []store.WorkRecord {
	t.Helper()
	ws, err := s.db.CaseWork(context.Background(), caseID)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

// TestResidentReportInBrowser files a report as a resident does: a phone
// (390 px) with JavaScript off opens the kiosk's QR link, fills in the
// form with a photo from the camera (with GPS EXIF), sends it and lands on
// the ticket page of a real hub; going back and sending the same form again shows the
// same ticket and makes no second case.
func TestResidentReportInBrowser(t *testing.T) {
	site := startResidentSite(t)
	b := browser.Start(t, browser.WithCA(site.caPEM))
	tab := b.NewTab(t, browser.Phone(), browser.JavaScriptDisabled())

	photoPath := filepath.Join(t.TempDir(), "IMG_20261102_0901.jpg")
	if err := os.WriteFile(photoPath, photoWithGPS(t), 0o644); err != nil {
		t.Fatal(err)
	}

	formURL := site.base + "/s?c=sangcheng&k=" + demoKiosk
	if code := tab.Go(formURL); code != http.StatusOK {
		t.Fatalf("GET %s: %d", formURL, code)
	}
	tab.WaitText("#where", "桑城居委 · 桑城居委一楼大厅")
	var width int
	tab.Eval(`document.documentElement.scrollWidth`, &width)
	if width > browser.PhoneWidth {
		t.Errorf("the form is %d px wide on a %d px phone", width, browser.PhoneWidth)
	}
	tab.Click(`input[name="kind"][value="complaint"]`)
	tab.Select("#category", "illegal_construction")
	tab.Fill(`input[name="building"]`, "12号")
	tab.Fill(`input[name="unit"]`, "3")
	tab.Fill(`input[name="room"]`, "501")
	tab.Fill("#description", "12号楼顶正在搭建彩钢板房，已经施工三天。")
	tab.Fill("#phone", "138 0013 8000")
	tab.SetFile("#photo1", photoPath)
	var token string
	tab.Eval(`document.querySelector('input[name="token"]').value`, &token)
	shot(t, tab, "resident-form.png")

	site.clock.Advance(resident.MinFillTime + time.Second)
	if code := tab.Submit("#send"); code != http.StatusOK {
		t.Fatalf("sending the form: the page answered %d\n%s", code, tab.HTML())
	}
	tab.WaitText("#accepted", "已受理")
	ticket := strings.TrimSpace(tab.Text("#ticket"))
	if !strings.Contains(ticket, "-QR-") {
		t.Fatalf("ticket %q is not a 城管码 ticket", ticket)
	}
	tab.WaitText("main", "请收藏本页或截图保存")
	if u := tab.URL(); !strings.Contains(u, "/t/"+ticket+"?") || !strings.Contains(u, "key=") {
		t.Errorf("ticket page URL %q lacks the ticket or the follow key", u)
	}
	shot(t, tab, "resident-ticket.png")

	cs := site.communityCases(t, "sangcheng")
	if len(cs) != 1 {
		t.Fatalf("%d cases after one report, want 1", len(cs))
	}
	c := cs[0]
	if c.Ticket != ticket || c.Source != string(cases.SourceQRCode) || c.Kiosk != demoKiosk || c.Phone != "13800138000" ||
		c.Building != "12号" || c.Category != "illegal_construction" {
		t.Errorf("case %+v", c)
	}
	ws := site.work(t, c.ID)
	if len(ws) != 1 || len(ws[0].Photos) != 1 {
		t.Fatalf("work records %+v, want one with the photo", ws)
	}
	p, err := site.db.CasePhoto(context.Background(), c.ID, ws[0].Photos[0].SHA256)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(p.JPEG, []byte(gpsMarker)) || bytes.Contains(p.JPEG, []byte("Exif\x00\x00")) {
		t.Error("the stored photo kept its EXIF location")
	}

	// Back to the form, as a resident unsure it went through, and send it
	// again: the same form (token) comes back, and so does the same ticket.
	tab.Eval(`history.back()`, nil)
	tab.WaitText("#report", "提交")
	var again string
	tab.Eval(`document.querySelector('input[name="token"]').value`, &again)
	if again != token {
		t.Fatalf("going back showed a new form (token %q, was %q)", again, token)
	}
	site.clock.Advance(time.Minute)
	// The page came back from the back-forward cache, whose document
	// chromedp's DOM queries (Submit) do not see: submit it from DevTools.
	tab.Eval(`document.querySelector('#send').click()`, nil)
	tab.WaitText("#ticket", ticket)
	if n := len(site.communityCases(t, "sangcheng")); n != 1 {
		t.Fatalf("%d cases after sending the same form twice, want 1", n)
	}
	if ws := site.work(t, c.ID); len(ws) != 1 {
		t.Fatalf("work records after the second send: %d, want 1", len(ws))
	}

	// The public page without the key shows no personal data.
	public := b.NewTab(t, browser.Phone(), browser.JavaScriptDisabled())
	if code := public.Go(site.base + "/t/" + ticket); code != http.StatusOK {
		t.Fatalf("GET /t/%s: %d", ticket, code)
	}
	public.WaitText("#state", "已受理")
	if h := public.HTML(); strings.Contains(h, "13800138000") || strings.Contains(h, "彩钢板房") {
		t.Error("the public ticket page shows the phone or the description")
	}
}
