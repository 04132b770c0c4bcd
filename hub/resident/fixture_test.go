package resident

import (
	"bytes"
	"context"
	"encoding/binary"
	"html"
	"image"
	"image/color"
	"image/jpeg"
	"io"
	"log/slog"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/textproto"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/photo"
	"github.com/shequ/shequ/hub/ratelimit"
	"github.com/shequ/shequ/hub/store"
)

// orgJSON is the test org tree: Sangcheng with two kiosks and Ruiyi with
// one, on one street of Huangpu.
const orgJSON = `{
  "version": 1,
  "root": {"id": "shanghai", "name": "上海市", "level": "city", "children": [
    {"id": "huangpu", "name": "黄浦区", "level": "district", "children": [
      {"id": "wuliqiao", "name": "五里桥街道", "level": "street", "children": [
        {"id": "sangcheng", "name": "桑城居委", "level": "community",
         "station": {"name": "桑城社区城管执法工作室", "address": "黄浦区制造局路"},
         "children": [
           {"id": "k-sangcheng-01", "name": "桑城居委一楼大厅", "level": "kiosk"},
           {"id": "k-sangcheng-02", "name": "桑城小区南门岗亭", "level": "kiosk"}]},
        {"id": "ruiyi", "name": "瑞一居委", "level": "community",
         "station": {"name": "瑞一社区城管执法工作室", "address": "黄浦区瑞金南路"},
         "children": [{"id": "k-ruiyi-01", "name": "瑞一小区活动中心", "level": "kiosk"}]}]}]}]}
}`

// testSecret keys the fixture's form tokens and follow keys.
var testSecret = []byte("0123456789abcdef0123456789abcdef-resident")

// t0 is the fixture clock's start: a Monday morning in Shanghai.
var t0 = time.Date(2026, 11, 2, 9, 0, 0, 0, shanghai)

// clock is a settable clock.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// fixture is the pages on a real SQLite store and case service, behind the
// hub's API handler (which applies the body limits), served over TLS.
type fixture struct {
	t      testing.TB
	st     *store.SQLite
	tree   *orgtree.Tree
	cases  *cases.Service
	pages  *Pages
	srv    *httptest.Server
	client *http.Client // does not follow redirects
	clock  *clock
}

// newFixture starts the pages. limiter nil: one that never refuses; the
// attempts limiter never refuses.
func newFixture(t testing.TB, limiter *ratelimit.Limiter) *fixture {
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
	tree, err := orgtree.Parse([]byte(orgJSON))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{t: t, st: st, tree: tree, clock: &clock{now: t0}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	f.cases, err = cases.New(cases.Config{Store: st, Tree: tree, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Config{Store: st, Tree: tree, AdminToken: "admin-token-0123456789", Now: f.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	if limiter == nil {
		limiter = ratelimit.New(1_000_000, 1_000_000, 1_000_000, 1_000_000, f.clock.Now)
	}
	f.pages, err = New(Config{Cases: f.cases, Store: st, Tree: tree, Secret: testSecret, Photo: normalizePhoto,
		Limiter: limiter, Attempts: ratelimit.New(1_000_000, 1_000_000, 1_000_000, 1_000_000, f.clock.Now),
		Now: f.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f.pages.Register(a)
	f.srv = httptest.NewTLSServer(a)
	t.Cleanup(f.srv.Close)
	f.client = f.srv.Client()
	f.client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return f
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// normalizePhoto is hub/caseloop.go's: hub/photo with its defaults.
func normalizePhoto(r io.Reader) (store.Photo, error) {
	p, err := photo.Normalize(r, photo.Config{})
	if err != nil {
		return store.Photo{}, err
	}
	return store.Photo{PhotoRef: store.PhotoRef{SHA256: p.SHA256, Width: p.Width, Height: p.Height}, JPEG: p.JPEG}, nil
}

// reply is a response with its body read.
type reply struct {
	Code   int
	Header http.Header
	Body   string
}

func (f *fixture) do(req *http.Request) reply {
	f.t.Helper()
	resp, err := f.client.Do(req)
	if err != nil {
		f.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatalf("%s %s: reading the body: %v", req.Method, req.URL, err)
	}
	return reply{resp.StatusCode, resp.Header, string(b)}
}

func (f *fixture) get(path string) reply {
	f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return f.do(req)
}

var hiddenRE = regexp.MustCompile(`<input type="hidden" name="([a-z]+)" value="([^"]*)">`)

// hidden returns the hidden fields of a page's form.
func hidden(body string) map[string]string {
	out := map[string]string{}
	for _, m := range hiddenRE.FindAllStringSubmatch(body, -1) {
		out[m[1]] = html.UnescapeString(m[2])
	}
	return out
}

// form gets a fresh report form and returns its hidden fields.
func (f *fixture) form(query string) map[string]string {
	f.t.Helper()
	r := f.get("/s?" + query)
	if r.Code != http.StatusOK {
		f.t.Fatalf("GET /s?%s: %d\n%s", query, r.Code, r.Body)
	}
	h := hidden(r.Body)
	if h[fToken] == "" || h[fSig] == "" {
		f.t.Fatalf("GET /s?%s: no token in the form:\n%s", query, r.Body)
	}
	return h
}

// file is one file part.
type file struct {
	Name string
	Data []byte
}

// valid returns the fields of a complete report on top of a form's
// hidden fields.
func valid(h map[string]string) map[string]string {
	v := map[string]string{fKind: "complaint", fCategory: "illegal_construction", fBuilding: "12号",
		fUnit: "3", fRoom: "501", fDescription: "楼顶在搭建彩钢板房", fPhone: "13800138000"}
	for k, x := range h {
		v[k] = x
	}
	return v
}

// multipartBody encodes fields (in a fixed order) and files as a form.
func multipartBody(t testing.TB, fields map[string]string, files []file) (*bytes.Buffer, string) {
	t.Helper()
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, k := range append(append([]string{}, textFields...), "extra") {
		v, ok := fields[k]
		if !ok {
			continue
		}
		if err := mw.WriteField(k, v); err != nil {
			t.Fatal(err)
		}
	}
	for _, fl := range files {
		h := textproto.MIMEHeader{}
		h.Set("Content-Disposition", `form-data; name="photo"; filename="`+fl.Name+`"`)
		h.Set("Content-Type", "application/octet-stream")
		w, err := mw.CreatePart(h)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := w.Write(fl.Data); err != nil {
			t.Fatal(err)
		}
	}
	if err := mw.Close(); err != nil {
		t.Fatal(err)
	}
	return &buf, mw.FormDataContentType()
}

// submit posts a report form.
func (f *fixture) submit(fields map[string]string, files ...file) reply {
	f.t.Helper()
	body, ct := multipartBody(f.t, fields, files)
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/s", body)
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", ct)
	return f.do(req)
}

// postForm posts a URL-encoded form.
func (f *fixture) postForm(path string, values map[string]string) reply {
	f.t.Helper()
	form := url.Values{}
	for k, v := range values {
		form.Set(k, v)
	}
	req, err := http.NewRequest(http.MethodPost, f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return f.do(req)
}

// communityCases lists the cases of a community.
func (f *fixture) communityCases(community string) []cases.Case {
	f.t.Helper()
	cs, err := f.cases.List(context.Background(), store.CaseFilter{Community: community})
	if err != nil {
		f.t.Fatal(err)
	}
	return cs
}

// testJPEG is a w×h JPEG with the APP1 Exif segment of exifGPS after SOI.
func testJPEG(t testing.TB, w, h int, withEXIF bool) []byte {
	t.Helper()
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			m.SetNRGBA(x, y, color.NRGBA{uint8(x), uint8(y), 128, 255})
		}
	}
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 90}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	if !withEXIF {
		return b
	}
	out := append([]byte{}, b[:2]...)
	out = append(out, exifGPS()...)
	return append(out, b[2:]...)
}

// secretDescription is the ImageDescription of exifGPS, to look for in
// what was stored.
const secretDescription = "SECRET-HOME-OF-RESIDENT"

// exifGPS is an APP1 Exif segment (big-endian TIFF) with an
// ImageDescription and a GPS IFD: latitude N 31°12'0", longitude E
// 121°28'0".
func exifGPS() []byte {
	be := binary.BigEndian
	var t []byte
	t = append(t, 'M', 'M', 0, 42)
	t = be.AppendUint32(t, 8)
	// IFD0 at 8: 2 entries (12 bytes each), next IFD 0.
	const ifd0 = 8
	const ifd0Len = 2 + 2*12 + 4
	descOff := uint32(ifd0 + ifd0Len)
	desc := append([]byte(secretDescription), 0)
	gpsOff := descOff + uint32(len(desc))
	entry := func(tag, typ uint16, count, value uint32) {
		t = be.AppendUint16(t, tag)
		t = be.AppendUint16(t, typ)
		t = be.AppendUint32(t, count)
		t = be.AppendUint32(t, value)
	}
	t = be.AppendUint16(t, 2)
	entry(0x010E, 2, uint32(len(desc)), descOff) // ImageDescription
	entry(0x8825, 4, 1, gpsOff)                  // GPSInfo IFD
	t = be.AppendUint32(t, 0)
	t = append(t, desc...)
	// GPS IFD: 4 entries, then the rationals.
	const gpsLen = 2 + 4*12 + 4
	latOff := gpsOff + gpsLen
	lonOff := latOff + 24
	t = be.AppendUint16(t, 4)
	entry(1, 2, 2, uint32('N')<<24) // GPSLatitudeRef "N\0"
	entry(2, 5, 3, latOff)          // GPSLatitude
	entry(3, 2, 2, uint32('E')<<24) // GPSLongitudeRef "E\0"
	entry(4, 5, 3, lonOff)          // GPSLongitude
	t = be.AppendUint32(t, 0)
	for _, v := range []uint32{31, 1, 12, 1, 0, 1, 121, 1, 28, 1, 0, 1} {
		t = be.AppendUint32(t, v)
	}
	payload := append([]byte("Exif\x00\x00"), t...)
	seg := []byte{0xFF, 0xE1, 0, 0}
	be.PutUint16(seg[2:], uint16(len(payload)+2))
	return append(seg, payload...)
}

// leader is a squad leader over every node, and officer an officer, for
// moving cases along in tests.
type testActor struct{ id, role string }

func (a testActor) CanSee(string) bool { return true }
func (a testActor) Role() string       { return a.role }
func (a testActor) ID() string         { return a.id }

var (
	leader  = testActor{"leader-1", cases.RoleSquadLeader}
	officer = testActor{"officer-1", cases.RoleOfficer}
)

// answer moves a case from received to answered.
func (f *fixture) answer(caseID, text string) {
	f.t.Helper()
	ctx := context.Background()
	if _, err := f.cases.Dispatch(ctx, caseID, leader, officer.id, ""); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.cases.Apply(ctx, caseID, cases.ActionAccept, officer, ""); err != nil {
		f.t.Fatal(err)
	}
	if _, err := f.cases.Apply(ctx, caseID, cases.ActionAnswer, officer, text); err != nil {
		f.t.Fatal(err)
	}
}
