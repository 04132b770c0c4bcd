// Package browser drives a real headless Chromium (Debian's chromium) from
// tests, through chromedp. It is test support for the end-to-end tests of
// the hub's staff console: Start opens a browser for one test, NewTab opens
// a tab with a cookie jar of its own, and the Tab helpers fail the test
// with the URL, the selector and a screenshot instead of returning errors.
//
// Every action has a deadline (20 s unless Timeout says otherwise), and
// waits poll the page until it: nothing sleeps a fixed time. Selectors are
// CSS selectors.
package browser

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/dom"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// DefaultTimeout bounds each action of a Tab unless Timeout sets another.
const DefaultTimeout = 20 * time.Second

// MobileUserAgent is the user agent of a tab with a mobile Viewport: a
// current Android phone, as the officers carry.
const MobileUserAgent = "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/156.0.0.0 Mobile Safari/537.36"

// Viewport sizes used by the console tests.
const (
	PhoneWidth    = 390
	PhoneHeight   = 844
	DesktopWidth  = 1366
	DesktopHeight = 768
)

// pollInterval is how often WaitText looks at the page again.
const pollInterval = 50 * time.Millisecond

// startTimeout bounds the start of the browser and the opening of a tab.
// Their first Run cannot carry a deadline (it would stop the browser or
// close the tab when it ends), so a watchdog cancels them instead.
const startTimeout = 60 * time.Second

// failureTimeout bounds the screenshot and URL read of a failure report.
const failureTimeout = 5 * time.Second

// config holds what the options set. The browser-level fields apply only to
// Start; the tab-level ones are defaults for every tab and can be changed
// for one tab in NewTab.
type config struct {
	// Browser level.
	caPEM            []byte
	ignoreCertErrors bool

	// Tab level.
	noJS    bool
	width   int
	height  int
	mobile  bool
	timeout time.Duration
}

// An Option changes how Start starts the browser or how NewTab sets up a
// tab.
type Option func(*config)

// WithCA makes the browser accept HTTPS servers whose certificate chain
// contains a certificate of pem (one or more PEM CERTIFICATE blocks), as the
// hub's chain contains its CA. Chromium reads trust anchors only from the
// system and the NSS database, so this uses
// --ignore-certificate-errors-spki-list with the SHA-256 of each
// certificate's public key: certificate errors are ignored only for chains
// that carry one of those keys; every other server still fails. The chain
// is not checked to be signed by the CA, so it trusts less than a real
// anchor would check — enough for a test browser that talks to a loopback
// hub. Browser level: pass it to Start.
func WithCA(pem []byte) Option {
	return func(c *config) { c.caPEM = bytes.Clone(pem) }
}

// IgnoreCertErrors makes the test browser accept every HTTPS certificate
// (--ignore-certificate-errors, for this browser process only). Prefer
// WithCA. Browser level: pass it to Start.
func IgnoreCertErrors() Option {
	return func(c *config) { c.ignoreCertErrors = true }
}

// JavaScriptDisabled turns off the pages' scripts
// (Emulation.setScriptExecutionDisabled), as on a phone without JavaScript.
// The helpers still work: they read and change the page through DevTools.
func JavaScriptDisabled() Option {
	return func(c *config) { c.noJS = true }
}

// Viewport sets the size of the tabs' viewport in CSS pixels. A mobile
// viewport also turns on touch and the MobileUserAgent; its pages need
// <meta name="viewport" content="width=device-width"> to lay out at that
// width, as on a real phone. The default is Desktop.
func Viewport(w, h int, mobile bool) Option {
	return func(c *config) { c.width, c.height, c.mobile = w, h, mobile }
}

// Phone is Viewport(PhoneWidth, PhoneHeight, true): 390×844 with touch and a
// mobile user agent.
func Phone() Option { return Viewport(PhoneWidth, PhoneHeight, true) }

// Desktop is Viewport(DesktopWidth, DesktopHeight, false): 1366×768.
func Desktop() Option { return Viewport(DesktopWidth, DesktopHeight, false) }

// Timeout sets the deadline of each action of a tab (DefaultTimeout when
// not given).
func Timeout(d time.Duration) Option {
	return func(c *config) { c.timeout = d }
}

func newConfig(opts []Option) config {
	c := config{width: DesktopWidth, height: DesktopHeight, timeout: DefaultTimeout}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// chromiumPath finds Debian's chromium on $PATH.
func chromiumPath() (string, error) {
	p, err := exec.LookPath("chromium")
	if err != nil {
		return "", fmt.Errorf("chromium not found (%w): install it with packaging/dev/deps.sh", err)
	}
	return p, nil
}

// spkiList returns the value of --ignore-certificate-errors-spki-list for
// the certificates in data: base64 SHA-256 hashes of their public keys.
func spkiList(data []byte) (string, error) {
	var hashes []string
	for {
		var block *pem.Block
		block, data = pem.Decode(data)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return "", fmt.Errorf("parse CA certificate: %w", err)
		}
		sum := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
		hashes = append(hashes, base64.StdEncoding.EncodeToString(sum[:]))
	}
	if len(hashes) == 0 {
		return "", errors.New("no PEM CERTIFICATE block in the CA data")
	}
	return strings.Join(hashes, ","), nil
}

// tailBuffer keeps the last bytes written to it: the browser's output, for
// the message when it fails to start.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 8 << 10

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > tailSize {
		b.buf = append([]byte(nil), b.buf[len(b.buf)-tailSize:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}

// Browser is one headless Chromium process, stopped when the test that
// started it ends.
type Browser struct {
	ctx  context.Context // the browser's chromedp context, no deadline
	cfg  config
	stop func()
}

// Start starts a headless Chromium for the test t and stops it when t ends.
// A missing chromium fails the test (it never skips). The tab-level options
// (JavaScriptDisabled, Viewport, Timeout) become the defaults of NewTab.
func Start(t testing.TB, opts ...Option) *Browser {
	t.Helper()
	b, err := start(opts)
	if err != nil {
		t.Fatalf("browser: start: %v", err)
	}
	t.Cleanup(b.close)
	return b
}

func start(opts []Option) (*Browser, error) {
	cfg := newConfig(opts)
	path, err := chromiumPath()
	if err != nil {
		return nil, err
	}
	out := &tailBuffer{}
	allocOpts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.Flag("no-sandbox", true),
		chromedp.Flag("disable-gpu", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("no-first-run", true),
		chromedp.Flag("no-default-browser-check", true),
		// Scrollbars would take width from full-page screenshots
		// and differ between runs.
		chromedp.Flag("hide-scrollbars", true),
		chromedp.Flag("mute-audio", true),
		chromedp.WindowSize(DesktopWidth, DesktopHeight),
		chromedp.CombinedOutput(out),
	}
	if cfg.caPEM != nil {
		list, err := spkiList(cfg.caPEM)
		if err != nil {
			return nil, fmt.Errorf("WithCA: %w", err)
		}
		allocOpts = append(allocOpts, chromedp.Flag("ignore-certificate-errors-spki-list", list))
	}
	if cfg.ignoreCertErrors {
		allocOpts = append(allocOpts, chromedp.Flag("ignore-certificate-errors", true))
	}
	allocCtx, allocCancel := chromedp.NewExecAllocator(context.Background(), allocOpts...)
	ctx, cancel := chromedp.NewContext(allocCtx)
	stop := func() { cancel(); allocCancel() }
	// The first Run starts the browser and binds its life to ctx: no
	// deadline on ctx (it would stop the browser when it ends).
	if err := watchdog(startTimeout, stop, func() error { return chromedp.Do(ctx) }); err != nil {
		stop()
		return nil, fmt.Errorf("run %s: %w\nchromium output:\n%s", path, err, out.String())
	}
	return &Browser{ctx: ctx, cfg: cfg, stop: stop}, nil
}

// watchdog runs f, and calls stop (which must make f return) if f has not
// returned within d.
func watchdog(d time.Duration, stop func(), f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case err := <-done:
		return err
	case <-timer.C:
		stop()
		return fmt.Errorf("not done within %v: %w", d, <-done)
	}
}

// close stops the browser process and removes its profile directory.
func (b *Browser) close() { b.stop() }

// Tab is one browser tab in a browser context of its own: its cookies,
// storage and cache are separate from every other Tab's. Its helpers fail
// the test they belong to (see In) on error, with the tab's URL, the
// selector and a screenshot in the test's ArtifactDir (kept with
// go test -artifacts).
type Tab struct {
	t   testing.TB
	ctx context.Context // the tab's chromedp context, no deadline
	cfg config
}

// NewTab opens a tab in a new browser context (an incognito-like profile)
// and closes it when t ends. Tab-level options override the browser's for
// this tab; browser-level options (WithCA, IgnoreCertErrors) fail the test.
func (b *Browser) NewTab(t testing.TB, opts ...Option) *Tab {
	t.Helper()
	cfg := b.cfg
	for _, o := range opts {
		o(&cfg)
	}
	if !bytes.Equal(cfg.caPEM, b.cfg.caPEM) || cfg.ignoreCertErrors != b.cfg.ignoreCertErrors {
		t.Fatalf("browser: NewTab: WithCA and IgnoreCertErrors apply to the browser: pass them to Start")
	}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	// The first Run creates the tab and binds its life to ctx: no
	// deadline on ctx.
	if err := watchdog(startTimeout, cancel, func() error { return chromedp.Do(ctx, setup(cfg)) }); err != nil {
		t.Fatalf("browser: open tab: %v", err)
	}
	return &Tab{t: t, ctx: ctx, cfg: cfg}
}

// setup applies the tab-level settings to a new tab.
func setup(cfg config) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		if _, err := cdp.Call(ctx, t, emulation.SetDeviceMetricsOverride, emulation.SetDeviceMetricsOverrideParams{
			Width:             int64(cfg.width),
			Height:            int64(cfg.height),
			DeviceScaleFactor: 1,
			Mobile:            cfg.mobile,
		}); err != nil {
			return fmt.Errorf("set viewport: %w", err)
		}
		if cfg.mobile {
			if _, err := cdp.Call(ctx, t, emulation.SetTouchEmulationEnabled, emulation.SetTouchEmulationEnabledParams{Enabled: true, MaxTouchPoints: 5}); err != nil {
				return fmt.Errorf("enable touch: %w", err)
			}
			if _, err := cdp.Call(ctx, t, emulation.SetUserAgentOverride, emulation.SetUserAgentOverrideParams{UserAgent: MobileUserAgent, Platform: "Linux armv8l"}); err != nil {
				return fmt.Errorf("set user agent: %w", err)
			}
		}
		if cfg.noJS {
			if _, err := cdp.Call(ctx, t, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true}); err != nil {
				return fmt.Errorf("disable JavaScript: %w", err)
			}
		}
		return nil
	})
}

// In returns the same tab reporting its failures to t, for use in a
// subtest of the test that opened it.
func (tb *Tab) In(t testing.TB) *Tab {
	c := *tb
	c.t = t
	return &c
}

// WithTimeout returns the same tab with d as the deadline of each action,
// for a step known to be slow or, in a test of a failure, fast.
func (tb *Tab) WithTimeout(d time.Duration) *Tab {
	c := *tb
	c.cfg.timeout = d
	return &c
}

// run runs f with the tab's action deadline and fails the test on error.
func (tb *Tab) run(op, sel string, f func(ctx context.Context) error) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, tb.cfg.timeout)
	defer cancel()
	if err := f(ctx); err != nil {
		tb.fail(op, sel, err)
	}
}

// fail ends the test with what failed, where, and a screenshot.
func (tb *Tab) fail(op, sel string, err error) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, failureTimeout)
	defer cancel()
	where, uerr := chromedp.Run(ctx, chromedp.Location())
	if uerr != nil {
		where = fmt.Sprintf("(URL unknown: %v)", uerr)
	}
	shot, serr := tb.failureShot(ctx)
	if serr != nil {
		shot = fmt.Sprintf("(none: %v)", serr)
	}
	if sel != "" {
		op = fmt.Sprintf("%s %q", op, sel)
	}
	tb.t.Fatalf("browser: %s at %s: %v\nscreenshot: %s", op, where, err, shot)
}

// failureShot saves a screenshot in the test's ArtifactDir and returns its
// path.
func (tb *Tab) failureShot(ctx context.Context) (string, error) {
	f, err := os.CreateTemp(tb.t.ArtifactDir(), "failure-*.png")
	if err != nil {
		return "", fmt.Errorf("create screenshot file: %w", err)
	}
	path := f.Name()
	if err := f.Close(); err != nil {
		return "", fmt.Errorf("close screenshot file: %w", err)
	}
	return path, tb.screenshot(ctx, path)
}

// status is the HTTP status of a navigation's response, 0 without one (a
// fragment navigation).
func status(ctx context.Context, steps ...chromedp.Action[chromedp.Void]) (int, error) {
	resp, err := chromedp.RunResponse(ctx, steps...)
	if err != nil || resp == nil {
		return 0, err
	}
	return int(resp.Status), nil
}

// Go loads url, waits for its load event and returns the HTTP status of
// the document (it does not fail on 4xx or 5xx: the test decides).
func (tb *Tab) Go(url string) int {
	tb.t.Helper()
	var code int
	tb.run("go to "+url, "", func(ctx context.Context) error {
		resp, err := chromedp.Run(ctx, chromedp.NavigateResponse(url))
		if err != nil {
			return err
		}
		if resp != nil {
			code = int(resp.Status)
		}
		return nil
	})
	return code
}

// Click clicks the element (after it is visible) with the mouse. It does
// not wait for a page the click may load: use ClickLoad for a link or a
// submit button, or wait for the result with WaitText or WaitVisible.
func (tb *Tab) Click(sel string) {
	tb.t.Helper()
	tb.run("click", sel, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.Click(chromedp.CSS(sel)))
	})
}

// ClickLoad clicks the element and waits until the page that the click
// loads has loaded; it returns that page's HTTP status.
func (tb *Tab) ClickLoad(sel string) int {
	tb.t.Helper()
	var code int
	tb.run("click and load", sel, func(ctx context.Context) error {
		var err error
		code, err = status(ctx, chromedp.Click(chromedp.CSS(sel)))
		return err
	})
	return code
}

// Fill replaces the value of an input or textarea by typing value into it
// (key events, as a user types; Chinese text works).
func (tb *Tab) Fill(sel, value string) {
	tb.t.Helper()
	tb.run("fill", sel, func(ctx context.Context) error {
		return chromedp.Do(ctx,
			chromedp.WaitVisible(chromedp.CSS(sel)),
			callOn(sel, clearJS),
			chromedp.SendKeys(chromedp.CSS(sel), value),
		)
	})
}

const clearJS = `function() {
	if (!('value' in this)) return 'not a form field: ' + this.nodeName;
	this.focus();
	this.value = '';
	this.dispatchEvent(new Event('input', {bubbles: true}));
	return '';
}`

// Select chooses the option whose value is value in a <select>, and sends
// the input and change events a user's choice sends.
func (tb *Tab) Select(sel, value string) {
	tb.t.Helper()
	tb.run("select "+value+" in", sel, func(ctx context.Context) error {
		return chromedp.Do(ctx, callOn(sel, selectJS, value))
	})
}

const selectJS = `function(v) {
	if (this.nodeName !== 'SELECT') return 'not a <select>: ' + this.nodeName;
	const o = Array.from(this.options).find(o => o.value === v);
	if (!o) return 'no option with value ' + JSON.stringify(v) + ' (have ' + JSON.stringify(Array.from(this.options, o => o.value)) + ')';
	o.selected = true;
	this.dispatchEvent(new Event('input', {bubbles: true}));
	this.dispatchEvent(new Event('change', {bubbles: true}));
	return '';
}`

// Submit submits the form that sel is (or that the submit button sel
// belongs to, as its submitter) as a user would — the form's validation
// runs first — and waits for the page it loads; it returns that page's
// HTTP status. A form that a page script submits without loading a page
// (fetch) needs Click and a wait instead.
func (tb *Tab) Submit(sel string) int {
	tb.t.Helper()
	var code int
	tb.run("submit", sel, func(ctx context.Context) error {
		if err := chromedp.Do(ctx, callOn(sel, checkFormJS)); err != nil {
			return err
		}
		var err error
		code, err = status(ctx, callOn(sel, submitJS))
		return err
	})
	return code
}

const checkFormJS = `function() {
	const f = this.nodeName === 'FORM' ? this : this.form;
	if (!f) return 'not a form and not in one: ' + this.nodeName;
	const bad = Array.from(f.elements).filter(e => e.willValidate && !e.checkValidity());
	if (bad.length) return 'the form is invalid: ' + bad.map(e => (e.name || e.id || e.nodeName) + ': ' + e.validationMessage).join('; ');
	return '';
}`

const submitJS = `function() {
	if (this.nodeName === 'FORM') { this.requestSubmit(); return ''; }
	if (this.type === 'submit' || this.type === 'image') { this.form.requestSubmit(this); return ''; }
	this.form.requestSubmit();
	return '';
}`

// SetFile chooses path (made absolute) as the file of an
// <input type="file">, as a user picking it would.
func (tb *Tab) SetFile(sel, path string) {
	tb.t.Helper()
	tb.run("set file "+path+" in", sel, func(ctx context.Context) error {
		abs, err := filepath.Abs(path)
		if err != nil {
			return fmt.Errorf("file path: %w", err)
		}
		if _, err := os.Stat(abs); err != nil {
			return fmt.Errorf("file to upload: %w", err)
		}
		return chromedp.Do(ctx, chromedp.SetUploadFiles(chromedp.CSS(sel), []string{abs}))
	})
}

// Text returns the rendered text (innerText) of the first element matching
// sel, waiting until one exists.
func (tb *Tab) Text(sel string) string {
	tb.t.Helper()
	var s string
	tb.run("text of", sel, func(ctx context.Context) error {
		var err error
		s, err = chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
		return err
	})
	return s
}

// WaitVisible waits until an element matching sel is displayed.
func (tb *Tab) WaitVisible(sel string) {
	tb.t.Helper()
	tb.run("wait visible", sel, func(ctx context.Context) error {
		return chromedp.Do(ctx, chromedp.WaitVisible(chromedp.CSS(sel)))
	})
}

// WaitText waits until the text of the first element matching sel contains
// substring. It looks again every 50 ms until the action deadline, also
// across page loads.
func (tb *Tab) WaitText(sel, substring string) {
	tb.t.Helper()
	tb.run(fmt.Sprintf("wait for text %q in", substring), sel, func(ctx context.Context) error {
		return waitText(ctx, sel, substring)
	})
}

func waitText(ctx context.Context, sel, substring string) error {
	q, err := json.Marshal(sel)
	if err != nil {
		return fmt.Errorf("encode selector: %w", err)
	}
	expr := fmt.Sprintf(`(() => { const e = document.querySelector(%s); return e ? e.innerText : null; })()`, q)
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	last := "no element yet"
	for {
		// Errors while a page loads (no execution context) pass; the
		// deadline ends the wait.
		s, err := chromedp.Run(ctx, chromedp.Evaluate[*string](expr))
		switch {
		case err != nil && ctx.Err() != nil:
			// The deadline ended this look; keep what the last one saw.
		case err != nil:
			last = err.Error()
		case s == nil:
			last = "no element yet"
		case strings.Contains(*s, substring):
			return nil
		default:
			last = fmt.Sprintf("text is %q", *s)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%w; last: %s", ctx.Err(), last)
		case <-tick.C:
		}
	}
}

// URL returns the address of the tab's document.
func (tb *Tab) URL() string {
	tb.t.Helper()
	var u string
	tb.run("read URL", "", func(ctx context.Context) error {
		var err error
		u, err = chromedp.Run(ctx, chromedp.Location())
		return err
	})
	return u
}

// HTML returns the serialized document (outerHTML of <html>) as it is now.
func (tb *Tab) HTML() string {
	tb.t.Helper()
	var h string
	tb.run("read HTML", "", func(ctx context.Context) error {
		var err error
		h, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.documentElement.outerHTML`))
		return err
	})
	return h
}

// Screenshot writes a PNG of the whole page (beyond the viewport) to path.
func (tb *Tab) Screenshot(path string) {
	tb.t.Helper()
	tb.run("screenshot to "+path, "", func(ctx context.Context) error {
		return tb.screenshot(ctx, path)
	})
}

func (tb *Tab) screenshot(ctx context.Context, path string) error {
	png, err := chromedp.Run(ctx, fullPage)
	if err != nil {
		return err
	}
	if err := os.WriteFile(path, png, 0o644); err != nil {
		return fmt.Errorf("write screenshot: %w", err)
	}
	return nil
}

// fullPage captures the whole scrollable area of the page as PNG.
func fullPage(ctx context.Context, t *chromedp.Target) ([]byte, error) {
	m, err := cdp.Call(ctx, t, page.GetLayoutMetrics, cdp.Empty{})
	if err != nil {
		return nil, fmt.Errorf("layout metrics: %w", err)
	}
	if m.CSSContentSize == nil {
		return nil, errors.New("layout metrics: no content size")
	}
	beyond := true
	r, err := cdp.Call(ctx, t, page.CaptureScreenshot, page.CaptureScreenshotParams{
		Format:                page.CaptureScreenshotFormatPng,
		CaptureBeyondViewport: &beyond,
		Clip: &page.Viewport{
			Width:  m.CSSContentSize.Width,
			Height: m.CSSContentSize.Height,
			Scale:  1,
		},
	})
	if err != nil {
		return nil, fmt.Errorf("capture screenshot: %w", err)
	}
	return r.Data, nil
}

// Eval evaluates the JavaScript expression js in the page (awaiting a
// promise) and decodes its JSON value into out; a nil out ignores it. It
// works with JavaScriptDisabled too: DevTools runs it, not the page.
func (tb *Tab) Eval(js string, out any) {
	tb.t.Helper()
	tb.run("evaluate "+js, "", func(ctx context.Context) error {
		raw, err := chromedp.Run(ctx, chromedp.Evaluate[[]byte](js, chromedp.EvalAwaitPromise))
		if err != nil {
			return err
		}
		if out == nil {
			return nil
		}
		if len(raw) == 0 {
			return errors.New("the expression has no JSON value (undefined)")
		}
		if err := json.Unmarshal(raw, out); err != nil {
			return fmt.Errorf("decode %s: %w", raw, err)
		}
		return nil
	})
}

// callOn waits for the first element matching sel and calls the JavaScript
// function fn on it with args; fn returns "" on success or the reason it
// failed.
func callOn(sel, fn string, args ...any) chromedp.Action[chromedp.Void] {
	return chromedp.Func(func(ctx context.Context, t *chromedp.Target) error {
		_, err := chromedp.QueryAfter(chromedp.CSS(sel), func(ctx context.Context, t *chromedp.Target, nodes []*chromedp.Node) (chromedp.Void, error) {
			if len(nodes) == 0 {
				return chromedp.Void{}, fmt.Errorf("no element matches %q", sel)
			}
			return chromedp.Void{}, callNode(ctx, t, nodes[0], fn, args)
		})(ctx, t)
		return err
	})
}

func callNode(ctx context.Context, t *chromedp.Target, n *chromedp.Node, fn string, args []any) error {
	n.RLock()
	id := n.NodeID
	n.RUnlock()
	obj, err := cdp.Call(ctx, t, dom.ResolveNode, dom.ResolveNodeParams{NodeID: id})
	if err != nil {
		return fmt.Errorf("resolve node: %w", err)
	}
	// The handle is not released: the page frees it with the document,
	// and a tab lives for one test.
	var callArgs []*runtime.CallArgument
	for _, a := range args {
		v, err := json.Marshal(a)
		if err != nil {
			return fmt.Errorf("encode argument: %w", err)
		}
		callArgs = append(callArgs, &runtime.CallArgument{Value: v})
	}
	byValue, gesture := true, true
	r, err := cdp.Call(ctx, t, runtime.CallFunctionOn, runtime.CallFunctionOnParams{
		FunctionDeclaration: fn,
		ObjectID:            obj.Object.ObjectID,
		Arguments:           callArgs,
		ReturnByValue:       &byValue,
		UserGesture:         &gesture,
	})
	if err != nil {
		return fmt.Errorf("call function: %w", err)
	}
	if r.ExceptionDetails != nil {
		return &chromedp.ExceptionError{ExceptionDetails: r.ExceptionDetails}
	}
	var msg string
	if err := json.Unmarshal(r.Result.Value, &msg); err != nil {
		return fmt.Errorf("decode result %s: %w", r.Result.Value, err)
	}
	if msg != "" {
		return errors.New(msg)
	}
	return nil
}
