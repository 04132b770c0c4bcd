// Package resident is the public, phone-sized web flow of the 城管码 (the
// QR code on every kiosk and workstation poster): a resident scans the
// code, fills in one plain HTML form (no JavaScript needed, so it works
// in the WeChat in-app browser and with scripts off) and gets a ticket
// number and a link to follow the case; once the case is answered, the
// link lets them rate the answer.
//
// The community (and kiosk) come from the code's URL (/s?c=…&k=…), so the
// resident never says where. Cases enter the hub's case loop (hub/cases)
// with source SourceQRCode, exactly once per form: the form carries a
// random token signed with Config.Secret, which is the case's source
// reference, so a form submitted twice (double tap, retry after a
// timeout, back and resubmit) yields one case and the same ticket page.
//
// Anti-spam needs no external service: the signed issue time refuses
// forms sent within MinFillTime of being served or older than
// MaxFormAge, a honeypot field hidden by CSS must stay empty, and a
// per-client-IP rate limit bounds submissions. Photos are made safe by
// Config.Photo (hub/photo: resized, EXIF and location stripped).
//
// The progress page (/t/{ticket}) shows anyone with the ticket only the
// public view: the state in plain words, a timeline without staff names
// or notes, and the answer. The follow link from the form carries a key
// (an HMAC of the ticket); with it, an answered case can be rated once.
// Tickets filed at a kiosk have no key: they are rated at the kiosk.
//
// Pages use Pico CSS (vendored under static/, embedded, MIT) and a few
// lines of our own CSS; no script, nothing loaded from elsewhere.
package resident

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/htmlpage"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/ratelimit"
	"github.com/shequ/shequ/hub/store"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Limits of the report form.
const (
	// MaxPhotos is how many photos one report may carry.
	MaxPhotos = 3
	// MaxPhotoBytes bounds one photo as uploaded.
	MaxPhotoBytes = 15 << 20
	// MaxUpload bounds a whole report form: the photos and 1 MiB for the
	// fields and the multipart framing.
	MaxUpload = MaxPhotos*MaxPhotoBytes + 1<<20
	// maxForm bounds a plain form (the rating).
	maxForm = 16 << 10
	// MinFillTime is the least time a human takes to fill in the form;
	// faster submissions are refused as automated.
	MinFillTime = 3 * time.Second
	// MaxFormAge is how long a served form may be submitted.
	MaxFormAge = 24 * time.Hour
	// MinSecret is the least length of Config.Secret.
	MinSecret = 32
)

// Default rate limit of submissions (reports and ratings that are stored)
// per client IP, and of all clients together.
const (
	DefaultPerMinute       = 5
	DefaultBurst           = 3
	DefaultGlobalPerMinute = 600
	DefaultGlobalBurst     = 100
)

// Default rate limit of attempts (every POST, also those that come back
// with a mistake to correct) per client IP, and of all clients together.
// It is looser than the submission limit, so a resident correcting a form
// several times is not turned away, and still bounds the work (parsing,
// photo decoding) one client can cause.
const (
	DefaultAttemptsPerMinute       = 30
	DefaultAttemptBurst            = 10
	DefaultGlobalAttemptsPerMinute = 3000
	DefaultGlobalAttemptBurst      = 300
)

// Store finds a case by its ticket (*store.SQLite).
type Store interface {
	CaseByTicket(ctx context.Context, ticket string) (store.CaseRecord, error)
}

var _ Store = (*store.SQLite)(nil)

// Mux is where the pages are added (hub/api.API); every route is outside
// /api/ and so public.
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandleLarge(pattern string, h http.Handler, limit int64)
}

// Config configures the pages. Cases, Store, Tree, Secret and Photo are
// required.
type Config struct {
	Cases *cases.Service
	Store Store
	Tree  *orgtree.Tree
	// Secret keys the HMACs of form tokens and follow keys; at least
	// MinSecret bytes. Changing it invalidates open forms and follow links.
	Secret []byte
	// Photo makes an uploaded photo safe to store: decoded, resized,
	// re-encoded without metadata (hub/photo).
	Photo func(r io.Reader) (store.Photo, error)
	// Limiter limits submissions per client IP: reports and ratings that
	// passed validation and are about to be stored (a form sent back with
	// mistakes does not count); default DefaultPerMinute in bursts of
	// DefaultBurst.
	Limiter *ratelimit.Limiter
	// Attempts limits every POST per client IP; default
	// DefaultAttemptsPerMinute in bursts of DefaultAttemptBurst.
	Attempts *ratelimit.Limiter
	Now      func() time.Time // default time.Now
	Log      *slog.Logger     // default: discard
}

// Pages serves the resident pages.
type Pages struct {
	cfg   Config
	log   *slog.Logger
	tmpl  map[string]*template.Template
	locks [64]chanLock
}

// chanLock is a mutex that a waiter can give up on when its request ends.
type chanLock chan struct{}

// New checks cfg, parses the templates and returns the pages.
func New(cfg Config) (*Pages, error) {
	switch {
	case cfg.Cases == nil, cfg.Store == nil, cfg.Tree == nil, cfg.Photo == nil:
		return nil, errors.New("resident: Cases, Store, Tree and Photo are required")
	case len(cfg.Secret) < MinSecret:
		return nil, fmt.Errorf("resident: Secret has %d bytes, want at least %d", len(cfg.Secret), MinSecret)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Limiter == nil {
		cfg.Limiter = ratelimit.New(DefaultPerMinute, DefaultBurst, DefaultGlobalPerMinute, DefaultGlobalBurst, cfg.Now)
	}
	if cfg.Attempts == nil {
		cfg.Attempts = ratelimit.New(DefaultAttemptsPerMinute, DefaultAttemptBurst,
			DefaultGlobalAttemptsPerMinute, DefaultGlobalAttemptBurst, cfg.Now)
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	tm, err := parseTemplates()
	if err != nil {
		return nil, err
	}
	p := &Pages{cfg: cfg, log: log, tmpl: tm}
	for i := range p.locks {
		p.locks[i] = make(chanLock, 1)
	}
	return p, nil
}

// Register adds the pages to m.
func (p *Pages) Register(m Mux) {
	static, err := fs.Sub(staticFS, "static")
	if err != nil {
		panic(err) // the embedded directory exists
	}
	m.Handle("GET /s/static/", secure(http.StripPrefix("/s/static/", http.FileServerFS(static))))
	m.Handle("GET /s", secure(http.HandlerFunc(p.formPage)))
	m.HandleLarge("POST /s", secure(http.HandlerFunc(p.submit)), MaxUpload)
	m.Handle("GET /t/{ticket}", secure(http.HandlerFunc(p.ticketPage)))
	m.Handle("POST /t/{ticket}/rate", secure(http.HandlerFunc(p.rate)))
}

// secure sets the headers every reply carries: a strict Content-Security-
// Policy (only the hub's own styles and images, no script at all), no
// framing, no MIME sniffing, no referrer to other sites (the follow link
// carries its key).
var secure = htmlpage.Secure("default-src 'self'; script-src 'none'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
	"no-referrer")

// page is what every template gets.
type page struct {
	Lang    Lang
	Title   string
	LangURL string // this page in the other language
	Data    any
}

// render writes a page with the status code.
// self is the page's own address for the language switch (a GET page's
// URL when rendering the reply to a POST); empty: the request's URL.
func (p *Pages) render(w http.ResponseWriter, r *http.Request, code int, name, title, self string, data any) {
	t, ok := p.tmpl[name]
	if !ok {
		p.log.Error("no such template", "name", name)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	lang := langOf(w, r)
	pg := page{Lang: lang, Title: T(lang, title), LangURL: otherLangURL(r, self, lang), Data: data}
	var b strings.Builder
	if err := t.Execute(&b, pg); err != nil {
		p.log.Error("rendering a page", "page", name, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if _, err := io.WriteString(w, b.String()); err != nil {
		p.log.Debug("writing a page", "page", name, "err", err)
	}
}

// problem is the data of the error page.
type problem struct {
	Message string // a message key
	Detail  string // more words, already translated
	Back    string // a link back, if any
}

// fail renders the error page with a message key. After a POST the
// language link leads to back (the form), not to the POST's URL.
func (p *Pages) fail(w http.ResponseWriter, r *http.Request, code int, key, back string) {
	self := ""
	if r.Method != http.MethodGet && back != "" {
		self = back
	}
	p.render(w, r, code, "error", "err.title", self, problem{Message: key, Back: back})
}

// internal logs err and renders the error page with a 500.
func (p *Pages) internal(w http.ResponseWriter, r *http.Request, err error) {
	p.log.Error("resident pages", "path", r.URL.Path, "err", err)
	p.fail(w, r, http.StatusInternalServerError, "err.internal", "")
}

// allowAttempt takes an attempt token for the client; when refused it
// renders the 429 page and returns false.
func (p *Pages) allowAttempt(w http.ResponseWriter, r *http.Request) bool {
	ok, wait := p.cfg.Attempts.Allow(clientIP(r))
	if ok {
		return true
	}
	p.tooMany(w, r, wait, "")
	return false
}

// allowSubmission takes a submission token for the client. When refused it
// sets Retry-After and returns the message to show (the caller shows it
// with the form, so nothing typed is lost).
func (p *Pages) allowSubmission(w http.ResponseWriter, r *http.Request) (bool, string) {
	ok, wait := p.cfg.Limiter.Allow(clientIP(r))
	if ok {
		return true, ""
	}
	secs := retrySeconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	lang := langOf(w, r)
	return false, Tf(lang, "err.ratelimit.form", secs)
}

// tooMany renders the 429 page with Retry-After, and a way back.
func (p *Pages) tooMany(w http.ResponseWriter, r *http.Request, wait time.Duration, back string) {
	secs := retrySeconds(wait)
	w.Header().Set("Retry-After", strconv.Itoa(secs))
	lang := langOf(w, r)
	p.render(w, r, http.StatusTooManyRequests, "error", "err.title", back,
		problem{Message: "err.ratelimit", Detail: fmt.Sprintf(T(lang, "err.ratelimit.wait"), secs), Back: back})
}

// retrySeconds is wait in whole seconds, rounded up.
func retrySeconds(wait time.Duration) int {
	return int((wait + time.Second - 1) / time.Second)
}

// clientIP is the address the request came from (the hub is reached
// directly, not through a proxy).
func clientIP(r *http.Request) string {
	ip, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return ip
}

// lock takes the lock of a form token (striped), or gives up when ctx ends.
func (p *Pages) lock(ctx context.Context, token string) (unlock func(), err error) {
	var h uint32 = 2166136261
	for i := 0; i < len(token); i++ {
		h = (h ^ uint32(token[i])) * 16777619
	}
	l := p.locks[h%uint32(len(p.locks))]
	select {
	case l <- struct{}{}:
		return func() { <-l }, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}
