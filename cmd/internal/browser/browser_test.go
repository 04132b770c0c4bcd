package browser

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"html"
	"image/png"
	"io"
	"log"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"
)

// site is the test web application: a login-like form with a <select>, a
// multipart upload, a page that scripts change, a tall page, and a page
// that shows the cookie of the visitor.
type site struct {
	mu      sync.Mutex
	uploads [][]byte
}

const head = `<!doctype html><html><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width">
<style>#narrow{display:none} @media (max-width: 400px) {#narrow{display:block}}</style>
<title>测试</title></head><body>`

const maxBody = 1 << 20

func (s *site) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, maxBody)
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	switch r.Method + " " + r.URL.Path {
	case "GET /form":
		fmt.Fprint(w, head+`<form id="login" method="post" action="/login">
<input id="user" name="user" required>
<input id="password" name="password" type="password">
<select id="district" name="district"><option value="">请选择</option>
<option value="huangpu">黄浦</option><option value="jingan">静安</option></select>
<button id="go" type="submit" name="action" value="login">登录</button>
</form><p id="plain">不是表单</p><p id="narrow">窄屏</p></body></html>`)
	case "POST /login":
		if err := r.ParseForm(); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: "user", Value: url.QueryEscape(r.PostForm.Get("user")), Path: "/"})
		fmt.Fprintf(w, head+`<p id="user">%s</p><p id="password">%s</p><p id="district">%s</p><p id="action">%s</p></body></html>`,
			html.EscapeString(r.PostForm.Get("user")), html.EscapeString(r.PostForm.Get("password")),
			html.EscapeString(r.PostForm.Get("district")), html.EscapeString(r.PostForm.Get("action")))
	case "GET /whoami":
		who := "anonymous"
		if c, err := r.Cookie("user"); err == nil {
			if v, err := url.QueryUnescape(c.Value); err == nil {
				who = v
			}
		}
		fmt.Fprintf(w, head+`<p id="who">%s</p></body></html>`, html.EscapeString(who))
	case "GET /upload":
		fmt.Fprint(w, head+`<form id="up" method="post" action="/upload" enctype="multipart/form-data">
<input id="note" name="note"><input id="file" name="file" type="file">
<button id="send" type="submit">上传</button></form></body></html>`)
	case "POST /upload":
		f, hdr, err := r.FormFile("file")
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		defer f.Close()
		data, err := io.ReadAll(f)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		s.uploads = append(s.uploads, data)
		s.mu.Unlock()
		fmt.Fprintf(w, head+`<p id="name">%s</p><p id="size">%d</p><p id="note">%s</p></body></html>`,
			html.EscapeString(hdr.Filename), len(data), html.EscapeString(r.FormValue("note")))
	case "GET /js":
		fmt.Fprint(w, head+`<p id="sync">static</p><p id="async">waiting</p>
<script>document.getElementById('sync').textContent = 'js ran';
setTimeout(() => { document.getElementById('async').textContent = 'later: done'; }, 200);</script></body></html>`)
	case "GET /tall":
		fmt.Fprint(w, head+`<style>body{margin:0} #tall{height:2000px;background:linear-gradient(red,blue)}</style><div id="tall"></div></body></html>`)
	case "GET /missing":
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, head+`<p id="msg">没有这个页面</p></body></html>`)
	default:
		http.NotFound(w, r)
	}
}

func (s *site) lastUpload() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.uploads) == 0 {
		return nil
	}
	return s.uploads[len(s.uploads)-1]
}

// limits gives a test server the timeouts every server of ours has, and
// logs its errors (the refused TLS handshakes) to the test.
func limits(t *testing.T, srv *httptest.Server) {
	srv.Config.ErrorLog = log.New(testWriter{t}, "server: ", 0)
	srv.Config.ReadTimeout = 10 * time.Second
	srv.Config.WriteTimeout = 10 * time.Second
	srv.Config.IdleTimeout = 30 * time.Second
}

func plainServer(t *testing.T, h http.Handler) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	limits(t, srv)
	srv.Start()
	t.Cleanup(srv.Close)
	return srv
}

// pki is a CA and a server certificate for 127.0.0.1 that it signed.
type pki struct {
	caPEM []byte
	chain tls.Certificate // server certificate followed by the CA, as the hub sends it
}

func newPKI(t *testing.T) pki {
	t.Helper()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "Shequ test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		t.Fatal(err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(24 * time.Hour),
		IPAddresses:  []net.IP{net.ParseIP("127.0.0.1")},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	return pki{
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
		chain: tls.Certificate{Certificate: [][]byte{der, caDER}, PrivateKey: key},
	}
}

func tlsServer(t *testing.T, h http.Handler, cert tls.Certificate) *httptest.Server {
	srv := httptest.NewUnstartedServer(h)
	limits(t, srv)
	srv.TLS = &tls.Config{MinVersion: tls.VersionTLS12, Certificates: []tls.Certificate{cert}}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

// recorder is a testing.TB whose Fatal ends only the goroutine of the
// helper, so a test can check how a helper fails.
type recorder struct {
	testing.TB
	dir string
	mu  sync.Mutex
	msg string
}

func (r *recorder) Fatalf(format string, args ...any) {
	r.mu.Lock()
	r.msg = fmt.Sprintf(format, args...)
	r.mu.Unlock()
	runtime.Goexit()
}

func (r *recorder) Fatal(args ...any) { r.Fatalf("%s", fmt.Sprint(args...)) }

func (r *recorder) ArtifactDir() string { return r.dir }

// failure runs f with the tab reporting to a recorder, and returns the
// message f failed with. The test fails if f does not fail.
func failure(t *testing.T, tab *Tab, f func(*Tab)) string {
	t.Helper()
	r := &recorder{TB: t, dir: t.TempDir()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		f(tab.In(r))
	}()
	<-done
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.msg == "" {
		t.Fatal("the helper did not fail")
	}
	return r.msg
}

// testWriter writes to the test's log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

func pngSize(t *testing.T, path string) (w, h int) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("decode %s: %v", path, err)
	}
	b := img.Bounds()
	return b.Dx(), b.Dy()
}

// TestHelpers runs every Tab helper against a plain and an HTTPS server
// (trusted through WithCA), in one browser.
func TestHelpers(t *testing.T) {
	app := &site{}
	p := newPKI(t)
	servers := []struct {
		name string
		srv  *httptest.Server
	}{
		{"http", plainServer(t, app)},
		{"https", tlsServer(t, app, p.chain)},
	}
	b := Start(t, WithCA(p.caPEM))
	for _, s := range servers {
		t.Run(s.name, func(t *testing.T) {
			tab := b.NewTab(t)
			base := s.srv.URL

			t.Run("form", func(t *testing.T) {
				tab := tab.In(t)
				if code := tab.Go(base + "/form"); code != http.StatusOK {
					t.Fatalf("status %d", code)
				}
				tab.Fill("#user", "张三 zhang")
				tab.Fill("#user", "李四 li") // replaces, not appends
				tab.Fill("#password", "s3cret!")
				tab.Select("#district", "jingan")
				if code := tab.Submit("#go"); code != http.StatusOK {
					t.Fatalf("submit status %d", code)
				}
				for sel, want := range map[string]string{"#user": "李四 li", "#password": "s3cret!", "#district": "jingan", "#action": "login"} {
					if got := tab.Text(sel); got != want {
						t.Errorf("%s = %q, want %q", sel, got, want)
					}
				}
				if got := tab.URL(); got != base+"/login" {
					t.Errorf("URL %q, want %q", got, base+"/login")
				}
			})

			t.Run("submit form and click", func(t *testing.T) {
				tab := tab.In(t)
				tab.Go(base + "/form")
				tab.Fill("#user", "王五")
				tab.Submit("#login") // the form itself: no submitter
				if got := tab.Text("#action"); got != "" {
					t.Errorf("action %q without a submitter", got)
				}
				tab.Go(base + "/form")
				tab.Fill("#user", "赵六")
				tab.Click("#go")
				tab.WaitText("#user", "赵六")
				tab.Go(base + "/form")
				tab.Fill("#user", "钱七")
				if code := tab.ClickLoad("#go"); code != http.StatusOK {
					t.Fatalf("click status %d", code)
				}
				if got := tab.Text("#user"); got != "钱七" {
					t.Errorf("user %q", got)
				}
			})

			t.Run("status", func(t *testing.T) {
				tab := tab.In(t)
				if code := tab.Go(base + "/missing"); code != http.StatusNotFound {
					t.Errorf("status %d, want 404", code)
				}
				if !strings.Contains(tab.HTML(), "没有这个页面") {
					t.Error("HTML lacks the page text")
				}
			})

			t.Run("upload", func(t *testing.T) {
				tab := tab.In(t)
				data := make([]byte, 100_000)
				if _, err := rand.Read(data); err != nil {
					t.Fatal(err)
				}
				path := filepath.Join(t.TempDir(), "照片.bin")
				if err := os.WriteFile(path, data, 0o600); err != nil {
					t.Fatal(err)
				}
				tab.Go(base + "/upload")
				tab.Fill("#note", "现场照片")
				tab.SetFile("#file", path)
				tab.Submit("#send")
				if got := tab.Text("#size"); got != fmt.Sprint(len(data)) {
					t.Errorf("size %s, want %d", got, len(data))
				}
				if got := tab.Text("#name"); got != "照片.bin" {
					t.Errorf("name %q", got)
				}
				if got := tab.Text("#note"); got != "现场照片" {
					t.Errorf("note %q", got)
				}
				if !bytes.Equal(app.lastUpload(), data) {
					t.Error("the server received other bytes than the file's")
				}
			})

			t.Run("javascript", func(t *testing.T) {
				tab := tab.In(t)
				tab.Go(base + "/js")
				if got := tab.Text("#sync"); got != "js ran" {
					t.Errorf("sync %q", got)
				}
				tab.WaitText("#async", "done")
				tab.WaitVisible("#async")
				var got struct {
					Sum   int    `json:"sum"`
					Title string `json:"title"`
				}
				tab.Eval(`Promise.resolve({sum: 1 + 2, title: document.title})`, &got)
				if got.Sum != 3 || got.Title != "测试" {
					t.Errorf("eval %+v", got)
				}
				tab.Eval(`document.body.dataset.x = "1"`, nil)
			})
		})
	}
}

// TestNoJavaScript: a tab with scripts off does not run the page's script,
// and forms, helpers and the phone layout still work.
func TestNoJavaScript(t *testing.T) {
	app := &site{}
	srv := plainServer(t, app)
	b := Start(t, JavaScriptDisabled(), Phone())
	tab := b.NewTab(t)

	tab.Go(srv.URL + "/js")
	if got := tab.Text("#sync"); got != "static" {
		t.Errorf("the page's script ran: #sync is %q", got)
	}
	var enabled bool
	tab.Eval(`document.getElementById('async').textContent === 'waiting'`, &enabled)
	if !enabled {
		t.Error("#async changed without JavaScript")
	}

	tab.Go(srv.URL + "/form")
	tab.WaitVisible("#narrow") // the phone media query applies
	var width int
	tab.Eval(`window.innerWidth`, &width)
	if width != PhoneWidth {
		t.Errorf("innerWidth %d, want %d", width, PhoneWidth)
	}
	tab.Fill("#user", "手机用户")
	tab.Select("#district", "huangpu")
	tab.Submit("#go")
	if got := tab.Text("#district"); got != "huangpu" {
		t.Errorf("district %q", got)
	}
}

// TestViewports checks the phone and desktop emulation: size, touch, user
// agent and the CSS media queries the pages see.
func TestViewports(t *testing.T) {
	srv := plainServer(t, &site{})
	b := Start(t)
	type env struct {
		Width  int    `json:"width"`
		Height int    `json:"height"`
		Touch  int    `json:"touch"`
		UA     string `json:"ua"`
		Narrow string `json:"narrow"`
	}
	const probe = `({width: window.innerWidth, height: window.innerHeight, touch: navigator.maxTouchPoints,
		ua: navigator.userAgent, narrow: getComputedStyle(document.getElementById('narrow')).display})`
	cases := []struct {
		name   string
		opts   []Option
		width  int
		height int
		mobile bool
		narrow string
	}{
		{"default is desktop", nil, DesktopWidth, DesktopHeight, false, "none"},
		{"phone", []Option{Phone()}, PhoneWidth, PhoneHeight, true, "block"},
		{"desktop", []Option{Desktop()}, DesktopWidth, DesktopHeight, false, "none"},
		{"custom", []Option{Viewport(800, 600, false)}, 800, 600, false, "none"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := b.NewTab(t, c.opts...)
			tab.Go(srv.URL + "/form")
			var got env
			tab.Eval(probe, &got)
			if got.Width != c.width || got.Height != c.height {
				t.Errorf("viewport %d×%d, want %d×%d", got.Width, got.Height, c.width, c.height)
			}
			if (got.Touch > 0) != c.mobile {
				t.Errorf("maxTouchPoints %d, mobile %v", got.Touch, c.mobile)
			}
			if strings.Contains(got.UA, "Mobile") != c.mobile {
				t.Errorf("user agent %q, mobile %v", got.UA, c.mobile)
			}
			if got.Narrow != c.narrow {
				t.Errorf("#narrow display %q, want %q", got.Narrow, c.narrow)
			}
		})
	}
}

// TestScreenshot checks that Screenshot writes a PNG of the whole page.
func TestScreenshot(t *testing.T) {
	srv := plainServer(t, &site{})
	b := Start(t)
	cases := []struct {
		name  string
		opts  []Option
		width int
	}{
		{"desktop", nil, DesktopWidth},
		{"phone", []Option{Phone()}, PhoneWidth},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := b.NewTab(t, c.opts...)
			tab.Go(srv.URL + "/tall")
			path := filepath.Join(t.TempDir(), "tall.png")
			tab.Screenshot(path)
			if w, h := pngSize(t, path); w != c.width || h != 2000 {
				t.Errorf("screenshot %d×%d, want %d×2000", w, h, c.width)
			}
		})
	}
}

// TestTabsHaveSeparateCookies: two tabs of one browser log in as two users
// and each keeps its own session; a third tab has none.
func TestTabsHaveSeparateCookies(t *testing.T) {
	srv := plainServer(t, &site{})
	b := Start(t)
	staff := b.NewTab(t)
	officer := b.NewTab(t, Phone())
	for tab, user := range map[*Tab]string{staff: "工作人员", officer: "执法队员"} {
		tab.Go(srv.URL + "/form")
		tab.Fill("#user", user)
		tab.Submit("#go")
	}
	for tab, want := range map[*Tab]string{staff: "工作人员", officer: "执法队员", b.NewTab(t): "anonymous"} {
		tab.Go(srv.URL + "/whoami")
		if got := tab.Text("#who"); got != want {
			t.Errorf("who %q, want %q", got, want)
		}
	}
}

// TestCertificates: WithCA trusts a server whose chain carries the CA (as
// the hub's does) and no other; IgnoreCertErrors trusts every server.
func TestCertificates(t *testing.T) {
	app := &site{}
	hub, other := newPKI(t), newPKI(t)
	hubSrv := tlsServer(t, app, hub.chain)
	stdSrv := httptest.NewUnstartedServer(app)
	limits(t, stdSrv)
	stdSrv.StartTLS() // httptest's self-signed example.com certificate
	t.Cleanup(stdSrv.Close)
	stdPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: stdSrv.Certificate().Raw})
	cases := []struct {
		name string
		opts []Option
		srv  *httptest.Server
		ok   bool
	}{
		{"hub CA trusted", []Option{WithCA(hub.caPEM)}, hubSrv, true},
		{"other CA refused", []Option{WithCA(other.caPEM)}, hubSrv, false},
		{"no trust refused", nil, hubSrv, false},
		{"hub CA does not trust another server", []Option{WithCA(hub.caPEM)}, stdSrv, false},
		{"self-signed certificate as CA", []Option{WithCA(stdPEM)}, stdSrv, true},
		{"ignore errors", []Option{IgnoreCertErrors()}, hubSrv, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab := Start(t, append(c.opts, Timeout(10*time.Second))...).NewTab(t)
			if c.ok {
				tab.Go(c.srv.URL + "/form")
				tab.WaitVisible("#login")
				return
			}
			msg := failure(t, tab, func(tab *Tab) { tab.Go(c.srv.URL + "/form") })
			if !strings.Contains(msg, "ERR_CERT") {
				t.Errorf("failure %q does not name a certificate error", msg)
			}
		})
	}
}

// TestFailures: a helper that cannot do its job fails the test with the
// operation, the selector, the URL and a screenshot.
func TestFailures(t *testing.T) {
	srv := plainServer(t, &site{})
	tab := Start(t).NewTab(t)
	cases := []struct {
		name string
		f    func(*Tab)
		want []string
	}{
		{"wait text", func(tab *Tab) { tab.WaitText("#plain", "never") }, []string{`"#plain"`, `text is "不是表单"`, "deadline"}},
		{"click missing", func(tab *Tab) { tab.Click("#nothing") }, []string{`click "#nothing"`}},
		{"select unknown value", func(tab *Tab) { tab.Select("#district", "pudong") }, []string{`"#district"`, `no option with value "pudong"`}},
		{"select not a select", func(tab *Tab) { tab.Select("#user", "x") }, []string{"not a <select>: INPUT"}},
		{"fill not a field", func(tab *Tab) { tab.Fill("#plain", "x") }, []string{"not a form field: P"}},
		{"submit invalid form", func(tab *Tab) { tab.Submit("#go") }, []string{"the form is invalid: user"}},
		{"submit outside a form", func(tab *Tab) { tab.Submit("#plain") }, []string{"not a form and not in one"}},
		{"missing file", func(tab *Tab) { tab.SetFile("#user", "/nonexistent/file") }, []string{"/nonexistent/file"}},
		{"eval exception", func(tab *Tab) { tab.Eval(`nosuchvariable`, nil) }, []string{"nosuchvariable"}},
		{"eval undefined", func(tab *Tab) { var v int; tab.Eval(`undefined`, &v) }, []string{"undefined"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			tab.In(t).Go(srv.URL + "/form")
			msg := failure(t, tab.WithTimeout(2*time.Second), c.f)
			for _, w := range append(c.want, srv.URL+"/form") {
				if !strings.Contains(msg, w) {
					t.Errorf("failure %q lacks %q", msg, w)
				}
			}
			_, shot, ok := strings.Cut(msg, "screenshot: ")
			if !ok {
				t.Fatalf("failure %q names no screenshot", msg)
			}
			if w, h := pngSize(t, shot); w != DesktopWidth || h < DesktopHeight {
				t.Errorf("failure screenshot %d×%d", w, h)
			}
		})
	}
	t.Run("unreachable", func(t *testing.T) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		msg := failure(t, tab, func(tab *Tab) { tab.Go("http://" + addr + "/") })
		if !strings.Contains(msg, "ERR_CONNECTION_REFUSED") {
			t.Errorf("failure %q", msg)
		}
	})
}

// TestBrowserOptionOnTab: the certificate options belong to Start.
func TestBrowserOptionOnTab(t *testing.T) {
	b := Start(t)
	r := &recorder{TB: t, dir: t.TempDir()}
	done := make(chan struct{})
	go func() {
		defer close(done)
		b.NewTab(r, IgnoreCertErrors())
	}()
	<-done
	if !strings.Contains(r.msg, "pass them to Start") {
		t.Errorf("NewTab with IgnoreCertErrors: %q", r.msg)
	}
}

// TestChromiumMissing: without chromium on $PATH, Start says how to
// install it.
func TestChromiumMissing(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, err := start(nil)
	if err == nil || !strings.Contains(err.Error(), "packaging/dev/deps.sh") {
		t.Errorf("start without chromium: %v", err)
	}
}

func TestSPKIList(t *testing.T) {
	p := newPKI(t)
	cases := []struct {
		name string
		pem  []byte
		n    int
	}{
		{"one", p.caPEM, 1},
		{"two", append(bytes.Clone(p.caPEM), newPKI(t).caPEM...), 2},
		{"key blocks skipped", append([]byte("-----BEGIN PRIVATE KEY-----\nAAAA\n-----END PRIVATE KEY-----\n"), p.caPEM...), 1},
		{"none", []byte("not PEM"), 0},
		{"bad certificate", []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			list, err := spkiList(c.pem)
			if c.n == 0 {
				if err == nil {
					t.Fatalf("no error, list %q", list)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(strings.Split(list, ",")); got != c.n {
				t.Errorf("%d hashes in %q, want %d", got, list, c.n)
			}
		})
	}
}

// TestWatchdog: a start that hangs is stopped, and one that returns in
// time keeps its result.
func TestWatchdog(t *testing.T) {
	errHung := errors.New("stopped")
	cases := []struct {
		name    string
		hang    bool
		wantErr error
	}{
		{"in time", false, nil},
		{"hangs", true, errHung},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			stopped := make(chan struct{})
			err := watchdog(50*time.Millisecond, func() { close(stopped) }, func() error {
				if !c.hang {
					return nil
				}
				<-stopped
				return errHung
			})
			if !errors.Is(err, c.wantErr) {
				t.Errorf("err %v, want %v", err, c.wantErr)
			}
		})
	}
}
