// Package console is the hub's staff console: server-rendered HTML pages
// (html/template, Simplified Chinese first, English on request) for the
// case loop, notices, media, the kiosk fleet and its software updates, and phone-sized pages
// for officers in the field (/m/...).
//
// Every page but the login page and the static files needs a session
// (hub/accounts); every form carries the session's CSRF token, and every
// handler checks the account's role and its node of the org tree: an
// account sees and acts on cases of its node and below only, an officer
// only on the cases assigned to them, a partner only on the reports it
// filed itself, a technician only on the fleet. A case outside an
// account's reach is answered 404, as if it did not exist.
//
// The pages use Pico CSS (npm @picocss/pico 2.1.1, MIT, vendored under
// static/ and embedded) and one small script of ours for upload
// progress; nothing is loaded from elsewhere, and the Content-Security-
// Policy allows only the hub itself.
package console

import (
	"context"
	"crypto/ed25519"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io"
	"io/fs"
	"log/slog"
	"maps"
	"net/http"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/htmlpage"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/report"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Store is what the console reads from the hub database directly.
type Store interface {
	Accounts(ctx context.Context) ([]store.AccountRecord, error)
	AddCheckin(ctx context.Context, c store.Checkin) (store.Checkin, bool, error)
	Checkins(ctx context.Context, f store.CheckinFilter) ([]store.Checkin, error)
	MediaList(ctx context.Context) ([]store.MediaRecord, error)
	Stats(ctx context.Context, q store.StatsQuery) (store.Stats, error)
}

// Notices creates, withdraws and lists notices, and lists kiosks
// (hub/api.API).
type Notices interface {
	CreateNotice(ctx context.Context, req api.NoticeRequest) (api.Notice, error)
	WithdrawNotice(ctx context.Context, id string) (api.Notice, error)
	Notices(ctx context.Context) ([]api.Notice, error)
	Kiosks(ctx context.Context) ([]api.Kiosk, error)
}

// Reports tells where notices and media are (hub/report.Reports).
type Reports interface {
	NoticeDelivery(ctx context.Context, id string) ([]report.Delivery, error)
	KioskMedia(ctx context.Context, kiosk string) (report.KioskMedia, error)
}

// Mux is where the console adds its pages (hub/api.API).
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandleLarge(pattern string, h http.Handler, limit int64)
}

// Upload limits.
const (
	// MaxPhotoUpload bounds one work-record form with its photos.
	MaxPhotoUpload = 6*15<<20 + 1<<20
	// maxForm bounds a plain form.
	maxForm = 64 << 10
)

// Config configures the console. All fields but Now and Log are required.
type Config struct {
	Accounts *accounts.Service
	Cases    *cases.Service
	Store    Store
	Tree     *orgtree.Tree
	Notices  Notices
	Reports  Reports
	// Upload serves a raw media upload (hub/media's upload handler); the
	// console puts it behind a session and CSRF check and passes the
	// account on as the request's actor (jsonhttp.WithActor) for the audit
	// log. Notices' CreateNotice and WithdrawNotice get it the same way.
	Upload    http.Handler
	MaxUpload int64 // the body limit of Upload
	// Releases keeps kiosk image releases and rollouts (hub/releases);
	// the fleet pages show each kiosk's update state from it.
	Releases Releases
	// DeviceKey returns the public key of a kiosk's enrolled device, which
	// signs its check-in codes.
	DeviceKey func(ctx context.Context, kiosk string) (ed25519.PublicKey, error)
	// Photo makes an uploaded photo safe to store: decoded, resized,
	// re-encoded without metadata (hub/photo).
	Photo func(r io.Reader) (store.Photo, error)
	// Remote sends screenshot and restart commands to kiosks from the
	// fleet pages; nil: the pages offer none.
	Remote Remote
	Now    func() time.Time // default time.Now
	Log    *slog.Logger     // default: discard
}

// Console serves the staff pages.
type Console struct {
	cfg  Config
	log  *slog.Logger
	tmpl map[string]*template.Template
}

// New parses the templates and returns a console.
func New(cfg Config) (*Console, error) {
	switch {
	case cfg.Accounts == nil, cfg.Cases == nil, cfg.Store == nil, cfg.Tree == nil, cfg.Notices == nil,
		cfg.Reports == nil, cfg.Upload == nil, cfg.Releases == nil, cfg.DeviceKey == nil, cfg.Photo == nil:
		return nil, errors.New("console: Accounts, Cases, Store, Tree, Notices, Reports, Upload, Releases, DeviceKey and Photo are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	c := &Console{cfg: cfg, log: log}
	tm, err := parseTemplates(c.nodeName)
	if err != nil {
		return nil, err
	}
	c.tmpl = tm
	return c, nil
}

// pages are the templates that render a whole page, each with one of the
// two layouts (desk: the staff console; phone: officers' pages).
var pages = map[string]string{
	"login": "desk", "error": "desk", "inbox": "desk", "case": "desk", "newcase": "desk",
	"notices": "desk", "notice": "desk", "media": "desk", "fleet": "desk", "kiosk": "desk",
	"tasks": "phone", "task": "phone", "checkin": "phone", "phone_error": "phone",
}

// parseTemplates parses every page with its layout; node names an org
// node for the templates.
func parseTemplates(node func(string) string) (map[string]*template.Template, error) {
	funcs := template.FuncMap{
		"t":       T,
		"label":   label,
		"time":    fmtTime,
		"date":    fmtDate,
		"node":    node,
		"has":     func(list []string, v string) bool { return contains(list, v) },
		"shotq":   screenshotQuery,
		"inc":     func(i int) int { return i + 1 },
		"minutes": func(seconds int64) int64 { return seconds / 60 },
	}
	out := make(map[string]*template.Template)
	all := maps.Clone(pages)
	for _, more := range []map[string]string{statsPages, accountPages, checkinPages, twoFactorPages, tokenPages, auditPages, releasePages} {
		maps.Copy(all, more)
	}
	for page, layout := range all {
		t, err := template.New(layout+".html").Funcs(funcs).ParseFS(templateFS,
			"templates/"+layout+".html", "templates/"+page+".html")
		if err != nil {
			return nil, fmt.Errorf("console: template %s: %w", page, err)
		}
		out[page] = t
	}
	return out, nil
}

// shanghai is the time zone pages show times in.
var shanghai = time.FixedZone("CST", 8*3600)

func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.In(shanghai).Format("2006-01-02 15:04")
}

func fmtDate(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(shanghai).Format("2006-01-02T15:04")
}

func contains(list []string, v string) bool {
	for _, x := range list {
		if x == v {
			return true
		}
	}
	return false
}

// Register adds the console's pages to mux.
func (c *Console) Register(m Mux) {
	acc := c.cfg.Accounts
	any := acc.RequireSession()
	staff := acc.RequireSession(accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin, accounts.RoleSquadLeader,
		accounts.RoleOfficer, accounts.RolePartner)
	leaders := acc.RequireSession(accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin, accounts.RoleSquadLeader)
	admins := acc.RequireSession(accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin)
	fleet := acc.RequireSession(accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin, accounts.RoleTechnician)
	officers := acc.RequireSession(accounts.RoleOfficer, accounts.RoleSquadLeader)
	h := func(mw func(http.Handler) http.Handler, f http.HandlerFunc) http.Handler { return secure(mw(f)) }

	m.Handle("GET /static/", secure(http.StripPrefix("/static/", http.FileServerFS(must(fs.Sub(staticFS, "static"))))))
	m.Handle("GET /login", secure(http.HandlerFunc(c.loginPage)))
	m.Handle("POST /login", secure(acc.LoginHandler()))
	m.Handle("POST /logout", secure(acc.LogoutHandler()))
	m.Handle("GET /lang", secure(http.HandlerFunc(c.setLang)))
	m.Handle("GET /{$}", h(any, c.home))

	m.Handle("GET /cases", h(staff, c.inbox))
	m.Handle("GET /cases/new", h(staff, c.newCasePage))
	m.Handle("GET /cases/find", h(staff, c.findCase))
	m.Handle("GET /cases/export.csv", h(staff, c.export))
	m.Handle("POST /cases", h(staff, c.createCase))
	m.Handle("GET /cases/{id}", h(staff, c.casePage))
	m.Handle("POST /cases/{id}/action", h(staff, c.caseAction))
	m.Handle("POST /cases/{id}/merge", h(leaders, c.mergeCases))
	m.HandleLarge("POST /cases/{id}/work", h(officers, c.addWork), MaxPhotoUpload)
	m.Handle("GET /cases/{id}/photos/{sha}", h(staff, c.photo))

	m.Handle("GET /notices", h(leaders, c.noticesPage))
	m.Handle("POST /notices", h(leaders, c.createNotice))
	m.Handle("GET /notices/{id}", h(leaders, c.noticePage))
	m.Handle("POST /notices/{id}/withdraw", h(leaders, c.withdrawNotice))
	m.Handle("GET /media", h(admins, c.mediaPage))
	m.HandleLarge("POST /media", h(admins, c.upload), c.cfg.MaxUpload)
	m.Handle("GET /fleet", h(fleet, c.fleetPage))
	m.Handle("GET /fleet/{id}", h(fleet, c.kioskPage))

	m.Handle("GET /m", h(officers, c.tasksPage))
	m.Handle("GET /m/cases/{id}", h(officers, c.taskPage))
	m.Handle("GET /m/checkin", h(officers, c.checkinPage))
	m.Handle("POST /m/checkin", h(officers, c.checkin))
	c.registerStats(m)
	c.registerAccounts(m)
	c.registerCheckins(m)
	c.registerTwoFactor(m)
	c.registerTokens(m)
	c.registerAudit(m)
	c.registerRemote(m)
	c.registerReleases(m)
}

// page registers a page handler behind secure and a session of roles.
func (c *Console) page(m Mux, pattern string, f http.HandlerFunc, roles ...accounts.Role) {
	m.Handle(pattern, secure(c.cfg.Accounts.RequireSession(roles...)(f)))
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

// secure sets the headers every console reply carries: a strict
// Content-Security-Policy (only the hub's own scripts, styles and images),
// no framing, no MIME sniffing, no referrer to other sites.
var secure = htmlpage.Secure("default-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'; form-action 'self'",
	"same-origin")

// page is what every template gets.
type page struct {
	Lang    Lang
	Title   string
	Account accounts.Account
	CSRF    string
	Path    string // the request's path and query, for the language switch
	Flash   string // a notice shown on top, e.g. after a redirect
	Nav     []navItem
	Data    any
}

type navItem struct {
	Href, Key string
	Active    bool
}

// navFor returns the menu of a role.
func navFor(role accounts.Role, path string) []navItem {
	var items []navItem
	add := func(href, key string) {
		items = append(items, navItem{href, key, strings.HasPrefix(path, href)})
	}
	switch role {
	case accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin:
		add("/cases", "nav.cases")
		add("/stats", "nav.stats")
		add("/checkins", "nav.checkins")
		add("/notices", "nav.notices")
		add("/media", "nav.media")
		add("/fleet", "nav.fleet")
		add("/releases", "nav.releases")
		add("/accounts", "nav.accounts")
	case accounts.RoleSquadLeader:
		add("/cases", "nav.cases")
		add("/stats", "nav.stats")
		add("/checkins", "nav.checkins")
		add("/notices", "nav.notices")
		add("/m", "nav.tasks")
	case accounts.RoleOfficer:
		add("/m", "nav.tasks")
		add("/cases", "nav.cases")
	case accounts.RolePartner:
		add("/cases", "nav.cases")
	case accounts.RoleTechnician:
		add("/fleet", "nav.fleet")
	}
	return items
}

// render writes a page with the status code.
func (c *Console) render(w http.ResponseWriter, r *http.Request, code int, name, title string, data any) {
	t, ok := c.tmpl[name]
	if !ok {
		c.log.Error("no such template", "name", name)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	a, _ := accounts.CurrentAccount(r.Context())
	p := page{Lang: langOf(r), Title: title, Account: a, CSRF: accounts.CSRF(r.Context()), Path: r.URL.RequestURI(),
		Flash: flashOf(r), Nav: navFor(a.Role, r.URL.Path), Data: data}
	var b strings.Builder
	if err := t.Execute(&b, p); err != nil {
		c.log.Error("rendering a page", "page", name, "err", err)
		http.Error(w, "Internal Server Error", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(code)
	if _, err := io.WriteString(w, b.String()); err != nil {
		c.log.Debug("writing a page", "page", name, "err", err)
	}
}

// nodeName is the name of an org-tree node, or the id if unknown.
func (c *Console) nodeName(id string) string {
	if n := c.cfg.Tree.Node(id); n != nil {
		return n.Name
	}
	if k, ok := c.cfg.Tree.Kiosk(id); ok {
		return k.Name
	}
	return id
}

// flashes are the messages a redirect may ask the next page to show.
var flashes = append([]string{"work.saved", "act.done", "newcase.created", "notice.created", "notice.withdrawn", "checkin.done", "cmd.sent"},
	releaseDone...)

func flashOf(r *http.Request) string {
	f := r.URL.Query().Get("ok")
	if contains(flashes, f) {
		return f
	}
	return ""
}

// fail renders an error page for err: 404 for what is missing or outside
// the account's reach, 403 for a forbidden role, 400 (409 for a forbidden
// transition) with the reason for bad input, 500 otherwise (logged).
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	lang := langOf(r)
	code, msg := http.StatusInternalServerError, T(lang, "err.internal")
	switch {
	case errors.Is(err, store.ErrNotFound), errors.Is(err, cases.ErrNotInScope), errors.Is(err, errNotFound):
		code, msg = http.StatusNotFound, T(lang, "err.notfound")
	case errors.Is(err, errForbidden):
		code, msg = http.StatusForbidden, T(lang, "err.forbidden")
	case errors.Is(err, cases.ErrForbiddenTransition), errors.Is(err, cases.ErrNotMergeable):
		code, msg = http.StatusConflict, T(lang, "err.transition")+err.Error()
	case errors.Is(err, cases.ErrInvalid), errors.Is(err, errInvalid), errors.Is(err, api.ErrBadRequest):
		code, msg = http.StatusBadRequest, T(lang, "err.invalid")+err.Error()
	default:
		c.log.Error("console", "path", r.URL.Path, "err", err)
	}
	name := "error"
	if strings.HasPrefix(r.URL.Path, "/m") {
		name = "phone_error"
	}
	c.render(w, r, code, name, T(lang, "err.title"), msg)
}

// Errors of the console's own checks.
var (
	errNotFound  = errors.New("console: not found")
	errForbidden = errors.New("console: forbidden")
	errInvalid   = errors.New("console: invalid input")
)

func (c *Console) loginPage(w http.ResponseWriter, r *http.Request) {
	c.render(w, r, http.StatusOK, "login", T(langOf(r), "login"), struct{ Failed bool }{r.URL.Query().Get("failed") == "1"})
}

// setLang switches the language and goes back to a local page.
func (c *Console) setLang(w http.ResponseWriter, r *http.Request) {
	to := Zh
	if r.URL.Query().Get("to") == string(En) {
		to = En
	}
	http.SetCookie(w, htmlpage.LangCookieOf(r, to))
	http.Redirect(w, r, localPath(r.URL.Query().Get("back")), http.StatusSeeOther)
}

// localPath returns p if it is a path on this site, else "/": a redirect
// target from a form or query can never send the user elsewhere.
func localPath(p string) string {
	if !strings.HasPrefix(p, "/") || strings.HasPrefix(p, "//") || strings.HasPrefix(p, "/\\") || strings.ContainsAny(p, "\r\n") {
		return "/"
	}
	return p
}

// home sends each role to its first page.
func (c *Console) home(w http.ResponseWriter, r *http.Request) {
	a, _ := accounts.CurrentAccount(r.Context())
	to := "/cases"
	switch a.Role {
	case accounts.RoleOfficer:
		to = "/m"
	case accounts.RoleTechnician:
		to = "/fleet"
	}
	http.Redirect(w, r, to, http.StatusSeeOther)
}

// principal is the current account as a case actor.
func (c *Console) principal(r *http.Request) (accounts.Principal, accounts.Account) {
	a, _ := accounts.CurrentAccount(r.Context())
	return c.cfg.Accounts.Principal(a), a
}

// communities lists the communities under an account's node.
func (c *Console) communities(node string) []*orgtree.Node {
	var out []*orgtree.Node
	var walk func(n *orgtree.Node)
	walk = func(n *orgtree.Node) {
		if n.Level == protocol.LevelCommunity {
			out = append(out, n)
			return
		}
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	if n := c.cfg.Tree.Node(node); n != nil {
		walk(n)
	}
	return out
}
