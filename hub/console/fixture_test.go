package console

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"html"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/media"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/photo"
	"github.com/shequ/shequ/hub/releases"
	"github.com/shequ/shequ/hub/remote"
	"github.com/shequ/shequ/hub/report"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// orgJSON is the test org tree: Huangpu as in packaging/demo/org.json
// (Wuliqiao street with Sangcheng and Ruiyi) and Xuhui with one street,
// one community and one kiosk.
const orgJSON = `{
  "version": 1,
  "root": {"id": "shanghai", "name": "上海市", "level": "city", "children": [
    {"id": "huangpu", "name": "黄浦区", "level": "district", "children": [
      {"id": "wuliqiao", "name": "五里桥街道", "level": "street", "children": [
        {"id": "sangcheng", "name": "桑城居委", "level": "community",
         "station": {"name": "桑城社区城管执法工作室", "address": "黄浦区制造局路", "hours": "周一至周五 9:00-17:00"},
         "children": [
           {"id": "k-sangcheng-01", "name": "桑城居委一楼大厅", "level": "kiosk"},
           {"id": "k-sangcheng-02", "name": "桑城小区南门岗亭", "level": "kiosk"}]},
        {"id": "ruiyi", "name": "瑞一居委", "level": "community",
         "station": {"name": "瑞一社区城管执法工作室", "address": "黄浦区瑞金南路"},
         "children": [{"id": "k-ruiyi-01", "name": "瑞一小区活动中心", "level": "kiosk"}]}]}]},
    {"id": "xuhui", "name": "徐汇区", "level": "district", "children": [
      {"id": "tianping", "name": "天平路街道", "level": "street", "children": [
        {"id": "hengfu", "name": "衡复居委", "level": "community",
         "station": {"name": "衡复社区城管执法工作室", "address": "徐汇区衡山路"},
         "children": [{"id": "k-hengfu-01", "name": "衡复居委活动室", "level": "kiosk"}]}]}]}]}
}`

// password is every test account's password.
const password = "correct horse battery"

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

// fixture is a console on a real SQLite store behind the hub's API
// handler, served over TLS (the session cookie is Secure).
type fixture struct {
	t     testing.TB
	st    *store.SQLite
	tree  *orgtree.Tree
	acc   *accounts.Service
	cases *cases.Service
	api   *api.API
	rel   *releases.Service
	con   *Console
	srv   *httptest.Server
	clock *clock
	// keys are the device keys of the kiosks that have one enrolled.
	keys     map[string]ed25519.PrivateKey
	accounts map[string]accounts.Account // by username
	// remote sends kiosk commands; what it publishes is kept in sent.
	remote  *remote.Service
	hubKey  ed25519.PrivateKey
	sentMu  sync.Mutex
	sent    [][]byte
	publish error // what publishing returns
}

func (f *fixture) Signer() ed25519.PrivateKey { return f.hubKey }

// published returns what the remote service has published so far.
func (f *fixture) published() [][]byte {
	f.sentMu.Lock()
	defer f.sentMu.Unlock()
	return append([][]byte(nil), f.sent...)
}

// newFixture starts a console. plain serves it over plain HTTP (for the
// benchmark), else over TLS.
func newFixture(t testing.TB, plain bool) *fixture {
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
	f := &fixture{t: t, st: st, tree: tree, clock: &clock{now: t0}, keys: map[string]ed25519.PrivateKey{},
		accounts: map[string]accounts.Account{}}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	}
	f.acc, err = accounts.New(accounts.Config{Store: st, Tree: tree, Secret: []byte("0123456789abcdef0123456789abcdef-test"),
		Params: accounts.Params{Memory: 64, Time: 1, Threads: 1}, Now: f.clock.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	f.cases, err = cases.New(cases.Config{Store: st, Tree: tree, Now: f.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	f.api, err = api.New(api.Config{Store: st, Tree: tree, AdminToken: "admin-token-0123456789", Now: f.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := report.New(report.Config{Store: st, Tree: tree, Wanted: func(string) []protocol.MediaRef { return nil }}, log)
	if err != nil {
		t.Fatal(err)
	}
	lib, err := media.New(media.Config{Dir: filepath.Join(t.TempDir(), "media"), Store: st, Now: f.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	f.rel, err = releases.New(releases.Config{Store: st, Files: lib.Files(), Tree: tree, Inspector: fakeInspector{},
		Audit: f.acc.AuditChange, Now: f.clock.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range []string{"k-sangcheng-01", "k-ruiyi-01", "k-hengfu-01"} {
		_, priv, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		f.keys[k] = priv
	}
	if _, f.hubKey, err = ed25519.GenerateKey(rand.Reader); err != nil {
		t.Fatal(err)
	}
	f.remote, err = remote.New(remote.Config{Store: st, Tree: tree, Signer: f, Audit: f.acc.AuditChange, Now: f.clock.Now,
		Publish: func(_ context.Context, tp protocol.Topic, payload []byte) error {
			f.sentMu.Lock()
			defer f.sentMu.Unlock()
			if f.publish != nil {
				return f.publish
			}
			if tp != protocol.DownTopic(tp.Kiosk, protocol.ChannelCommand) {
				t.Errorf("command published on %s", tp)
			}
			f.sent = append(f.sent, payload)
			return nil
		}}, log)
	if err != nil {
		t.Fatal(err)
	}
	f.remote.Register(f.api)
	f.con, err = New(Config{
		Accounts: f.acc, Cases: f.cases, Store: st, Tree: tree, Notices: f.api, Reports: rep,
		Upload: lib.UploadHandler(), MaxUpload: lib.MaxUpload(), Releases: f.rel, DeviceKey: f.deviceKey, Photo: normalizePhoto,
		Remote: f.remote, Now: f.clock.Now, Log: log,
	})
	if err != nil {
		t.Fatal(err)
	}
	f.con.Register(f.api)
	if plain {
		f.srv = httptest.NewServer(f.api)
	} else {
		f.srv = httptest.NewTLSServer(f.api)
	}
	t.Cleanup(f.srv.Close)
	return f
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (f *fixture) deviceKey(_ context.Context, kiosk string) (ed25519.PublicKey, error) {
	k, ok := f.keys[kiosk]
	if !ok {
		return nil, fmt.Errorf("device of %s: %w", kiosk, store.ErrNotFound)
	}
	return k.Public().(ed25519.PublicKey), nil
}

// normalizePhoto is hub/caseloop.go's: hub/photo with its defaults.
func normalizePhoto(r io.Reader) (store.Photo, error) {
	p, err := photo.Normalize(r, photo.Config{})
	if err != nil {
		return store.Photo{}, err
	}
	return store.Photo{PhotoRef: store.PhotoRef{SHA256: p.SHA256, Width: p.Width, Height: p.Height}, JPEG: p.JPEG}, nil
}

// addAccount creates an account with the test password.
func (f *fixture) addAccount(username, display string, role accounts.Role, node string) accounts.Account {
	f.t.Helper()
	a, err := f.acc.CreateAccount(context.Background(), "test", accounts.NewAccount{Username: username, DisplayName: display,
		Role: role, Node: node, Password: password})
	if err != nil {
		f.t.Fatalf("account %s: %v", username, err)
	}
	f.accounts[username] = a
	return a
}

// standardAccounts creates the accounts most tests use.
func (f *fixture) standardAccounts() {
	f.addAccount("bureau", "市局管理员", accounts.RoleBureauAdmin, "shanghai")
	f.addAccount("huangpu", "黄浦区管理员", accounts.RoleDistrictAdmin, "huangpu")
	f.addAccount("xuhui", "徐汇区管理员", accounts.RoleDistrictAdmin, "xuhui")
	f.addAccount("squad", "五里桥中队长", accounts.RoleSquadLeader, "wuliqiao")
	f.addAccount("officer-a", "队员甲", accounts.RoleOfficer, "wuliqiao")
	f.addAccount("officer-b", "队员乙", accounts.RoleOfficer, "wuliqiao")
	f.addAccount("partner", "桑城居委", accounts.RolePartner, "sangcheng")
	f.addAccount("tech", "运维", accounts.RoleTechnician, "shanghai")
}

// principal is an account as a case actor.
func (f *fixture) principal(username string) accounts.Principal {
	a, ok := f.accounts[username]
	if !ok {
		f.t.Fatalf("no account %s", username)
	}
	return f.acc.Principal(a)
}

// client is a browser of one user: its own cookie jar, redirects not
// followed (tests look at the 303s).
type client struct {
	f    *fixture
	http *http.Client
	name string
}

// newClient returns a browser that is not logged in.
func (f *fixture) newClient(name string) *client {
	jar, err := cookiejar.New(nil)
	if err != nil {
		f.t.Fatal(err)
	}
	return &client{f: f, name: name, http: &http.Client{
		Transport: f.srv.Client().Transport, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// login returns a browser logged in as username, as a browser does it:
// the login form posted with the site's Origin.
func (f *fixture) login(username string) *client {
	f.t.Helper()
	c := f.newClient(username)
	res := c.postForm("/login", url.Values{"username": {username}, "password": {password}}, f.srv.URL)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/" {
		f.t.Fatalf("login %s: %d %s %q", username, res.code, res.header.Get("Location"), res.body)
	}
	return c
}

// response is a read reply.
type response struct {
	code   int
	header http.Header
	body   string
}

func (c *client) do(req *http.Request) response {
	c.f.t.Helper()
	res, err := c.http.Do(req)
	if err != nil {
		c.f.t.Fatalf("%s %s %s: %v", c.name, req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		c.f.t.Fatalf("%s %s %s: read: %v", c.name, req.Method, req.URL, err)
	}
	return response{res.StatusCode, res.Header, string(b)}
}

// get fetches a path.
func (c *client) get(path string) response {
	c.f.t.Helper()
	req, err := http.NewRequest(http.MethodGet, c.f.srv.URL+path, nil)
	if err != nil {
		c.f.t.Fatal(err)
	}
	return c.do(req)
}

// postForm posts a url-encoded form; origin, if set, is sent as Origin.
func (c *client) postForm(path string, form url.Values, origin string) response {
	c.f.t.Helper()
	req, err := http.NewRequest(http.MethodPost, c.f.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		c.f.t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	return c.do(req)
}

var csrfInput = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// csrf reads the CSRF token from a page of the console (the hidden csrf
// input every form carries).
func (c *client) csrf() string {
	c.f.t.Helper()
	res := c.get("/cases/new")
	if res.code != http.StatusOK {
		res = c.get("/m")
	}
	if res.code != http.StatusOK {
		res = c.get("/fleet")
	}
	m := csrfInput.FindStringSubmatch(res.body)
	if m == nil {
		c.f.t.Fatalf("%s: no csrf input on the page (%d)", c.name, res.code)
	}
	return html.UnescapeString(m[1])
}

// submit posts a console form with the user's CSRF token.
func (c *client) submit(path string, form url.Values) response {
	c.f.t.Helper()
	form = cloneValues(form)
	form.Set("csrf", c.csrf())
	return c.postForm(path, form, c.f.srv.URL)
}

func cloneValues(v url.Values) url.Values {
	out := url.Values{}
	for k, vs := range v {
		out[k] = append([]string(nil), vs...)
	}
	return out
}

var caseRow = regexp.MustCompile(`<tr data-id="([^"]+)"`)

// inboxIDs returns the case ids listed on an inbox page.
func inboxIDs(body string) []string {
	var ids []string
	for _, m := range caseRow.FindAllStringSubmatch(body, -1) {
		ids = append(ids, m[1])
	}
	return ids
}

var nextLink = regexp.MustCompile(`<a href="(/cases\?[^"]*)" id="next">`)

// inboxAll pages through the inbox from query following the "next" links
// and returns every case id in order.
func (c *client) inboxAll(query string) ([]string, error) {
	var all []string
	path := "/cases?" + query
	for range 1000 {
		res := c.get(path)
		if res.code != http.StatusOK {
			return all, fmt.Errorf("GET %s: %d %s", path, res.code, errorText(res.body))
		}
		all = append(all, inboxIDs(res.body)...)
		m := nextLink.FindStringSubmatch(res.body)
		if m == nil {
			return all, nil
		}
		path = html.UnescapeString(m[1])
	}
	return all, errors.New("more than 1000 pages")
}

var errorPara = regexp.MustCompile(`(?s)<p id="error">(.*?)</p>`)

// errorText is the message of an error page.
func errorText(body string) string {
	if m := errorPara.FindStringSubmatch(body); m != nil {
		return html.UnescapeString(m[1])
	}
	if len(body) > 300 {
		return body[:300]
	}
	return body
}

// newCase creates a case through the case service as actor.
func (f *fixture) newCase(actor string, n cases.NewCase) cases.Case {
	f.t.Helper()
	if n.SourceRef == "" {
		n.SourceRef = protocol.NewID()
	}
	if n.Kind == "" {
		n.Kind = protocol.FeedbackKind("complaint")
	}
	if n.Category == "" {
		n.Category = protocol.FeedbackCategory("facade")
	}
	c, _, err := f.cases.Create(context.Background(), n, f.principal(actor))
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

// caseNow reads a case from the store.
func (f *fixture) caseNow(id string) cases.Case {
	f.t.Helper()
	c, err := f.st.Case(context.Background(), id)
	if err != nil {
		f.t.Fatal(err)
	}
	return c
}

var caseLocation = regexp.MustCompile(`^/cases/([^/?]+)\?ok=newcase\.created$`)

// createCaseForm files a case through the console's new-case form and
// returns its id.
func (c *client) createCaseForm(form url.Values) string {
	c.f.t.Helper()
	page := c.get("/cases/new")
	m := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page.body)
	if page.code != http.StatusOK || m == nil {
		c.f.t.Fatalf("%s: new case page %d without a token", c.name, page.code)
	}
	form = cloneValues(form)
	form.Set("token", m[1])
	res := c.submit("/cases", form)
	loc := caseLocation.FindStringSubmatch(res.header.Get("Location"))
	if res.code != http.StatusSeeOther || loc == nil {
		c.f.t.Fatalf("%s: POST /cases: %d %q %s", c.name, res.code, res.header.Get("Location"), errorText(res.body))
	}
	return loc[1]
}
