package e2e

import (
	"bytes"
	"context"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/browser"
	hubapi "github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/photo"
	"github.com/shequ/shequ/hub/resident"
	"github.com/shequ/shequ/hub/store"
)

// skewClock is the real time moved forward by a settable offset: the test
// lets the 城管码 form's minimum fill time pass without sleeping.
type skewClock struct{ offset atomic.Int64 }

func (c *skewClock) Now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *skewClock) Advance(d time.Duration) { c.offset.Add(int64(d)) }

// residentSite is the 城管码 pages served over TLS on the demo org tree,
// with a real SQLite store and case service behind them.
type residentSite struct {
	base  string
	caPEM []byte
	clock *skewClock
	cases *cases.Service
	posts atomic.Int32 // reports sent (POST /s)
}

// startResidentSite serves hub/resident the way the hub mounts it: on the
// staff API's mux (which applies the upload limit), over TLS.
func startResidentSite(t *testing.T) *residentSite {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	tree, err := orgtree.Load(demoOrg)
	if err != nil {
		t.Fatal(err)
	}
	s := &residentSite{clock: &skewClock{}}
	log := testLogger(t).With("proc", "resident")
	s.cases, err = cases.New(cases.Config{Store: st, Tree: tree, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	mux, err := hubapi.New(hubapi.Config{Store: st, Tree: tree, AdminToken: "e2e-admin-token-0123456789", Now: s.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := resident.New(resident.Config{Cases: s.cases, Store: st, Tree: tree,
		Secret: []byte("e2e-resident-secret-0123456789abcdef"), Photo: safePhoto, Now: s.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	pages.Register(mux)
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/s" {
			s.posts.Add(1)
		}
		mux.ServeHTTP(w, r)
	}))
	srv.Config.ErrorLog = slog.NewLogLogger(slog.NewTextHandler(io.Discard, nil), slog.LevelError)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	s.base = srv.URL
	s.caPEM = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	return s
}

// safePhoto is the hub's photo normalisation (hub/photo, its defaults).
func safePhoto(r io.Reader) (store.Photo, error) {
	p, err := photo.Normalize(r, photo.Config{})
	if err != nil {
		return store.Photo{}, err
	}
	return store.Photo{PhotoRef: store.PhotoRef{SHA256: p.SHA256, Width: p.Width, Height: p.Height}, JPEG: p.JPEG}, nil
}

// communityCases lists the cases of a community.
func (s *residentSite) communityCases(t *testing.T, community string) []cases.Case {
	t.Helper()
	cs, err := s.cases.List(context.Background(), store.CaseFilter{Community: community})
	if err != nil {
		t.Fatal(err)
	}
	return cs
}

// TestResidentReportInBrowser files a report as a resident does: a phone
// (390 px) with JavaScript off opens the kiosk's QR link, fills in the
// form with a photo from the camera (with GPS EXIF), sends it and lands on
// the ticket page; going back and sending the same form again shows the
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
	ws, err := site.cases.Work(context.Background(), c.ID, cases.System)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || len(ws[0].Photos) != 1 {
		t.Fatalf("work records %+v, want one with the photo", ws)
	}
	p, err := site.cases.Photo(context.Background(), c.ID, ws[0].Photos[0].SHA256, cases.System)
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
	if n := site.posts.Load(); n != 2 {
		t.Fatalf("%d reports sent, want 2", n)
	}
	if n := len(site.communityCases(t, "sangcheng")); n != 1 {
		t.Fatalf("%d cases after sending the same form twice, want 1", n)
	}
	if ws, err := site.cases.Work(context.Background(), c.ID, cases.System); err != nil || len(ws) != 1 {
		t.Fatalf("work records after the second send: %d (%v), want 1", len(ws), err)
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
