// Package api is the hub's HTTP JSON API for staff tools: notices (create,
// list, withdraw), feedback, kiosk status and the org tree.
//
//	POST /api/v1/notices                 NoticeRequest → 201 Notice
//	GET  /api/v1/notices[?all=1]         → {"notices":[Notice]} (scheduled and active; all=1 adds expired and withdrawn)
//	GET  /api/v1/notices/{id}            → Notice
//	POST /api/v1/notices/{id}/withdraw   → 200 Notice (idempotent)
//	GET  /api/v1/feedback[?kiosk=&limit=] → {"feedback":[Feedback]} newest first
//	GET  /api/v1/kiosks                  → {"kiosks":[Kiosk]}
//	GET  /api/v1/org                     → the org tree in its file format
//	GET  /healthz                        → 200 Health, or 503 Health naming the failing checks
//
// GET /healthz is open to anyone (load balancers, monitoring): its body is
// Config.Health's report, e.g.
//
//	{"status":"ok","checks":{"broker":"ok","database":"ok","disk":"ok","loop":"ok"},"version":"v1.4.0"}
//
// and the status is 503 when a check fails, with the reason as that
// check's value.
//
// Every /api/ endpoint needs "Authorization: Bearer <token>" (401
// otherwise) except those registered with HandlePublic (device enrolment).
// The token is the hub's admin token, for the machine's own tools, or a
// personal API token checked by Config.Tokens (hub/accounts: a bureau
// admin's, attributable to the person; each request with one is logged
// with its actor). Other packages add endpoints with Handle and
// HandlePublic. Notices created and withdrawn are recorded in the audit log
// with that actor (Config.Audit).
//
// Errors are {"error": "..."} with status 400, 401, 404, 405, 413 or 500.
//
// A notice's title and body must be text the kiosk fonts can draw
// (protocol/glyphs): a character outside them would show as an empty box
// on every kiosk, so the request is refused with 400 and an error naming
// the characters, e.g. `title: the kiosk font cannot draw "燚", "😀"`.
package api

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
	"github.com/shequ/shequ/protocol/glyphs"
)

// MaxBodySize bounds every request body.
const MaxBodySize = 64 << 10

// Feedback list limits.
const (
	DefaultFeedbackLimit = 100
	MaxFeedbackLimit     = 1000
)

// Store is what the API needs from the hub database.
type Store interface {
	CreateNotice(ctx context.Context, n protocol.Notice, createdAt time.Time) error
	Notice(ctx context.Context, id string) (store.NoticeRecord, error)
	Notices(ctx context.Context) ([]store.NoticeRecord, error)
	WithdrawNotice(ctx context.Context, id string, at time.Time) (store.NoticeRecord, error)
	Feedback(ctx context.Context, kiosk string, limit int) ([]store.FeedbackRecord, error)
	Kiosks(ctx context.Context) ([]store.KioskRecord, error)
}

var _ Store = (*store.SQLite)(nil)

// Config configures the API.
type Config struct {
	Store Store         // required
	Tree  *orgtree.Tree // required
	// AdminToken is the bearer token staff tools present; required.
	AdminToken string
	// Tokens, if set, checks a bearer token that is not the admin token
	// (a personal API token) and returns who presented it, e.g.
	// "account:<id>"; an error refuses the request with 401. It is called
	// only for tokens with TokenPrefix. A token it refuses is
	// ErrTokenRefused (401); any other error is a failure to check (logged,
	// 503).
	Tokens func(ctx context.Context, token string) (actor string, err error)
	// TokenPrefix begins the tokens Tokens checks; default "shq_".
	TokenPrefix string
	// OfflineAfter is how long after the last presence or heartbeat a
	// kiosk counts as offline; default 90s.
	OfflineAfter time.Duration
	// NoticeChanged, if set, is called after a notice was created or
	// withdrawn and committed, before the reply.
	NoticeChanged func(ctx context.Context, n protocol.Notice)
	// Audit, if set, records a committed change in the hub's audit log:
	// notice.create and notice.withdraw of "notice:<id>", with the Notice
	// before and after. Who made it is jsonhttp.Actor(ctx), which the
	// function resolves itself. nil: no audit.
	Audit func(ctx context.Context, action, object string, before, after any)
	// Now returns the current time; default time.Now.
	Now func() time.Time
	// Health, if set, runs the service's health checks for GET /healthz;
	// it must return within a few seconds whatever its checks do. nil:
	// always {"status":"ok"}.
	Health func(ctx context.Context) Health
}

// Statuses of a Health report.
const (
	HealthOK      = "ok"
	HealthFailing = "failing"
)

// Health is the body of GET /healthz: 200 when Status is HealthOK, else
// 503.
type Health struct {
	Status string `json:"status"` // HealthOK or HealthFailing
	// Checks maps the name of each check to "ok" or the reason it failed.
	Checks  map[string]string `json:"checks,omitempty"`
	Version string            `json:"version,omitempty"` // the service's software version
}

// API serves the hub's HTTP API. It is an http.Handler.
type API struct {
	cfg    Config
	log    *slog.Logger
	mux    *http.ServeMux
	public map[string]bool  // patterns open without the admin token
	limits map[string]int64 // body limits other than MaxBodySize, by pattern
}

// New returns the API handler.
func New(cfg Config, log *slog.Logger) (*API, error) {
	if cfg.Store == nil || cfg.Tree == nil {
		return nil, errors.New("api: Store and Tree are required")
	}
	if len(cfg.AdminToken) < 16 {
		return nil, errors.New("api: AdminToken of at least 16 characters is required")
	}
	if cfg.OfflineAfter <= 0 {
		cfg.OfflineAfter = 90 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.TokenPrefix == "" {
		cfg.TokenPrefix = "shq_"
	}
	a := &API{cfg: cfg, log: log, mux: http.NewServeMux(), public: map[string]bool{}, limits: map[string]int64{}}
	a.mux.HandleFunc("POST /api/v1/notices", a.createNotice)
	a.mux.HandleFunc("GET /api/v1/notices", a.listNotices)
	a.mux.HandleFunc("GET /api/v1/notices/{id}", a.getNotice)
	a.mux.HandleFunc("POST /api/v1/notices/{id}/withdraw", a.withdrawNotice)
	a.mux.HandleFunc("GET /api/v1/feedback", a.listFeedback)
	a.mux.HandleFunc("GET /api/v1/kiosks", a.listKiosks)
	a.mux.HandleFunc("GET /api/v1/org", a.org)
	a.mux.HandleFunc("GET /healthz", a.healthz)
	return a, nil
}

// healthz answers GET /healthz with Config.Health's report.
func (a *API) healthz(w http.ResponseWriter, r *http.Request) {
	h := Health{Status: HealthOK}
	if a.cfg.Health != nil {
		h = a.cfg.Health(r.Context())
	}
	code := http.StatusOK
	if h.Status != HealthOK {
		code = http.StatusServiceUnavailable
	}
	jsonhttp.Write(w, a.log, code, h)
}

// NewServer returns an http.Server for h with the hub's timeouts.
func NewServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       120 * time.Second,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Handle adds a staff endpoint (behind the admin token).
func (a *API) Handle(pattern string, h http.Handler) { a.mux.Handle(pattern, h) }

// HandlePublic adds an endpoint open without the admin token.
func (a *API) HandlePublic(pattern string, h http.Handler) {
	a.public[pattern] = true
	a.mux.Handle(pattern, h)
}

// HandleLarge adds a staff endpoint whose request body may be up to limit
// bytes (uploads); the handler reads it as a stream.
func (a *API) HandleLarge(pattern string, h http.Handler, limit int64) {
	a.limits[pattern] = limit
	a.mux.Handle(pattern, h)
}

// AdminActor is the actor of requests made with the admin token
// (jsonhttp.Actor).
const AdminActor = "admin-token"

// ErrTokenRefused is what Config.Tokens returns for a token that is not
// valid (unknown, expired, revoked, or its account may no longer use it).
var ErrTokenRefused = errors.New("api: token refused")

// maxTokenLen bounds a bearer token passed on to Config.Tokens.
const maxTokenLen = 256

// authorized reports whether r carries the admin token or a personal token
// Config.Tokens accepts; for a personal token it returns its actor too
// ("" for the admin token). err is set when a token could not be checked.
func (a *API) authorized(r *http.Request) (actor string, ok bool, err error) {
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false, nil
	}
	if subtle.ConstantTimeCompare([]byte(tok), []byte(a.cfg.AdminToken)) == 1 {
		return "", true, nil
	}
	if a.cfg.Tokens == nil || !strings.HasPrefix(tok, a.cfg.TokenPrefix) || len(tok) > maxTokenLen {
		return "", false, nil
	}
	actor, err = a.cfg.Tokens(r.Context(), tok)
	switch {
	case errors.Is(err, ErrTokenRefused):
		a.log.Debug("personal API token refused", "method", r.Method, "path", r.URL.Path, "err", err)
		return "", false, nil
	case err != nil:
		return "", false, fmt.Errorf("check a personal API token: %w", err)
	}
	return actor, true, nil
}

// ServeHTTP serves a request: it checks the admin token on /api/ paths not
// registered as public (before routing, so unknown paths reveal nothing),
// and turns the mux's own 404 and 405 replies into JSON errors.
func (a *API) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, pattern := a.mux.Handler(r)
	limit, ok := a.limits[pattern]
	if !ok {
		limit = MaxBodySize
	}
	r.Body = http.MaxBytesReader(w, r.Body, limit)
	if strings.HasPrefix(r.URL.Path, "/api/") && !a.public[pattern] {
		actor, ok, err := a.authorized(r)
		if err != nil {
			a.log.Error("API authentication", "method", r.Method, "path", r.URL.Path, "err", err)
			a.error(w, http.StatusServiceUnavailable, errors.New("cannot check the token now; try again"))
			return
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Bearer realm="shequ-hub"`)
			a.error(w, http.StatusUnauthorized, errors.New("missing or wrong admin token (Authorization: Bearer …)"))
			return
		}
		if actor != "" {
			a.log.Info("API request with a personal token", "method", r.Method, "path", r.URL.Path, "actor", actor)
		} else {
			actor = AdminActor
		}
		r = r.WithContext(jsonhttp.WithActor(r.Context(), actor))
	}
	if pattern == "" {
		cw := &captureWriter{header: make(http.Header), code: http.StatusNotFound}
		a.mux.ServeHTTP(cw, r)
		if allow := cw.header.Get("Allow"); allow != "" {
			w.Header().Set("Allow", allow)
		}
		a.error(w, cw.code, fmt.Errorf("%s %s: %s", r.Method, r.URL.Path, http.StatusText(cw.code)))
		return
	}
	a.mux.ServeHTTP(w, r)
}

// captureWriter records the status and headers of the mux's fallback reply
// and discards its plain-text body.
type captureWriter struct {
	header http.Header
	code   int
}

func (c *captureWriter) Header() http.Header         { return c.header }
func (c *captureWriter) WriteHeader(code int)        { c.code = code }
func (c *captureWriter) Write(b []byte) (int, error) { return len(b), nil }

func (a *API) error(w http.ResponseWriter, code int, err error) { jsonhttp.Error(w, a.log, code, err) }

func (a *API) json(w http.ResponseWriter, code int, v any) { jsonhttp.Write(w, a.log, code, v) }

// readBody reads a request body within MaxBodySize.
func readBody(r *http.Request) ([]byte, int, error) { return jsonhttp.ReadBody(r, MaxBodySize) }

// Notice is a notice as the API shows it.
type Notice struct {
	protocol.Notice
	Status      string    `json:"status"` // scheduled, active, expired or withdrawn
	CreatedAt   time.Time `json:"created_at"`
	WithdrawnAt time.Time `json:"withdrawn_at,omitzero"`
}

// Notice statuses.
const (
	StatusScheduled = store.StatusScheduled
	StatusActive    = store.StatusActive
	StatusExpired   = store.StatusExpired
	StatusWithdrawn = store.StatusWithdrawn
)

func noticeView(r store.NoticeRecord, now time.Time) Notice {
	st := store.ScheduleStatus(r.ValidFrom, r.ValidUntil, r.WithdrawnAt, now)
	return Notice{Notice: r.Notice, Status: st, CreatedAt: r.CreatedAt, WithdrawnAt: r.WithdrawnAt}
}

// ErrBadRequest wraps the errors of CreateNotice and WithdrawNotice that
// are the caller's fault (an invalid notice or unknown targets).
var ErrBadRequest = errors.New("api: bad request")

// CreateNotice validates and stores the notice a request asks for, audits
// it (notice.create, by jsonhttp.Actor(ctx)) and calls NoticeChanged. Errors the caller caused wrap ErrBadRequest; text
// the kiosk fonts cannot draw also wraps a *glyphs.Error per field. The
// JSON endpoint and the staff console both create notices through it.
func (a *API) CreateNotice(ctx context.Context, req NoticeRequest) (Notice, error) {
	now := a.cfg.Now().UTC()
	n := req.Notice(protocol.NewID(), now)
	if err := n.Validate(); err != nil {
		return Notice{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err := errors.Join(glyphs.Check("title", n.Title), glyphs.Check("body", n.Body)); err != nil {
		return Notice{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if _, err := a.cfg.Tree.Resolve(n.Targets); err != nil {
		return Notice{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err := a.cfg.Store.CreateNotice(ctx, n, now); err != nil {
		return Notice{}, fmt.Errorf("api: create notice: %w", err)
	}
	rec, err := a.cfg.Store.Notice(ctx, n.ID)
	if err != nil {
		return Notice{}, fmt.Errorf("api: create notice: %w", err)
	}
	a.log.Info("notice created", "id", n.ID, "title", n.Title, "targets", n.Targets)
	v := noticeView(rec, now)
	a.audit(ctx, "notice.create", n.ID, nil, v)
	if a.cfg.NoticeChanged != nil {
		a.cfg.NoticeChanged(ctx, rec.Notice)
	}
	return v, nil
}

// WithdrawNotice withdraws a notice (idempotent), audits the withdrawal
// (notice.withdraw, by jsonhttp.Actor(ctx); not again for a notice
// withdrawn already) and calls NoticeChanged; an unknown id wraps
// store.ErrNotFound.
func (a *API) WithdrawNotice(ctx context.Context, id string) (Notice, error) {
	now := a.cfg.Now().UTC()
	before, err := a.cfg.Store.Notice(ctx, id)
	if err != nil {
		return Notice{}, fmt.Errorf("api: withdraw notice %q: %w", id, err)
	}
	rec, err := a.cfg.Store.WithdrawNotice(ctx, id, now)
	if err != nil {
		return Notice{}, fmt.Errorf("api: withdraw notice %q: %w", id, err)
	}
	a.log.Info("notice withdrawn", "id", id)
	v := noticeView(rec, now)
	if before.WithdrawnAt.IsZero() {
		a.audit(ctx, "notice.withdraw", id, noticeView(before, now), v)
	}
	if a.cfg.NoticeChanged != nil {
		a.cfg.NoticeChanged(ctx, rec.Notice)
	}
	return v, nil
}

// audit records a change of notice id through Config.Audit, if set.
func (a *API) audit(ctx context.Context, action, id string, before, after any) {
	if a.cfg.Audit != nil {
		a.cfg.Audit(ctx, action, "notice:"+id, before, after)
	}
}

// Notices returns every notice with its status, newest first as stored.
func (a *API) Notices(ctx context.Context) ([]Notice, error) {
	recs, err := a.cfg.Store.Notices(ctx)
	if err != nil {
		return nil, fmt.Errorf("api: notices: %w", err)
	}
	now := a.cfg.Now()
	out := make([]Notice, 0, len(recs))
	for _, rec := range recs {
		out = append(out, noticeView(rec, now))
	}
	return out, nil
}

func (a *API) createNotice(w http.ResponseWriter, r *http.Request) {
	body, code, err := readBody(r)
	if err != nil {
		a.error(w, code, err)
		return
	}
	req, err := DecodeNoticeRequest(body)
	if err != nil {
		a.error(w, http.StatusBadRequest, err)
		return
	}
	n, err := a.CreateNotice(r.Context(), req)
	if errors.Is(err, ErrBadRequest) {
		a.error(w, http.StatusBadRequest, err)
		return
	}
	if err != nil {
		a.error(w, http.StatusInternalServerError, err)
		return
	}
	a.json(w, http.StatusCreated, n)
}

func (a *API) listNotices(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all")
	if all != "" && all != "0" && all != "1" {
		a.error(w, http.StatusBadRequest, fmt.Errorf("all must be 0 or 1, got %q", all))
		return
	}
	recs, err := a.cfg.Store.Notices(r.Context())
	if err != nil {
		a.error(w, http.StatusInternalServerError, err)
		return
	}
	now := a.cfg.Now()
	out := []Notice{}
	for _, rec := range recs {
		v := noticeView(rec, now)
		if all == "1" || v.Status == StatusActive || v.Status == StatusScheduled {
			out = append(out, v)
		}
	}
	a.json(w, http.StatusOK, struct {
		Notices []Notice `json:"notices"`
	}{out})
}

func (a *API) getNotice(w http.ResponseWriter, r *http.Request) {
	rec, err := a.cfg.Store.Notice(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		a.error(w, http.StatusNotFound, fmt.Errorf("no notice %q", r.PathValue("id")))
		return
	}
	if err != nil {
		a.error(w, http.StatusInternalServerError, err)
		return
	}
	a.json(w, http.StatusOK, noticeView(rec, a.cfg.Now()))
}

func (a *API) withdrawNotice(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	n, err := a.WithdrawNotice(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		a.error(w, http.StatusNotFound, fmt.Errorf("no notice %q", id))
		return
	}
	if err != nil {
		a.error(w, http.StatusInternalServerError, err)
		return
	}
	a.json(w, http.StatusOK, n)
}

// Feedback is a feedback record as the API shows it.
type Feedback struct {
	ID string `json:"id"`
	protocol.Feedback
	ReceivedAt time.Time `json:"received_at"`
}

func (a *API) listFeedback(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	kiosk := q.Get("kiosk")
	if kiosk != "" {
		if err := protocol.ValidID(kiosk); err != nil {
			a.error(w, http.StatusBadRequest, fmt.Errorf("kiosk: %w", err))
			return
		}
	}
	limit := DefaultFeedbackLimit
	if s := q.Get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > MaxFeedbackLimit {
			a.error(w, http.StatusBadRequest, fmt.Errorf("limit must be 1-%d, got %q", MaxFeedbackLimit, s))
			return
		}
		limit = n
	}
	recs, err := a.cfg.Store.Feedback(r.Context(), kiosk, limit)
	if err != nil {
		a.error(w, http.StatusInternalServerError, err)
		return
	}
	out := make([]Feedback, len(recs))
	for i, rec := range recs {
		out[i] = Feedback{ID: rec.ID, Feedback: rec.Feedback, ReceivedAt: rec.ReceivedAt}
	}
	a.json(w, http.StatusOK, struct {
		Feedback []Feedback `json:"feedback"`
	}{out})
}

// Kiosk is a kiosk's status as the API shows it.
type Kiosk struct {
	ID              string    `json:"id"`
	Name            string    `json:"name"`
	Community       string    `json:"community"`
	CommunityName   string    `json:"community_name"`
	Online          bool      `json:"online"`
	LastSeen        time.Time `json:"last_seen,omitzero"`
	Epoch           int64     `json:"epoch"`
	SoftwareVersion string    `json:"software_version"`
	UptimeSeconds   int64     `json:"uptime_seconds"`
	OutboxDepth     int       `json:"outbox_depth"`
	ContentVersion  int64     `json:"content_version"`
	DesiredVersion  int64     `json:"desired_version"`
	FreeDiskBytes   int64     `json:"free_disk_bytes"`
	InOrgTree       bool      `json:"in_org_tree"`
}

func (a *API) listKiosks(w http.ResponseWriter, r *http.Request) {
	out, err := a.Kiosks(r.Context())
	if err != nil {
		a.error(w, http.StatusInternalServerError, err)
		return
	}
	a.json(w, http.StatusOK, struct {
		Kiosks []Kiosk `json:"kiosks"`
	}{out})
}

// Kiosks returns every kiosk of the org tree, in its order, then those that
// reported in but are not in the tree, with their last reported status.
func (a *API) Kiosks(ctx context.Context) ([]Kiosk, error) {
	recs, err := a.cfg.Store.Kiosks(ctx)
	if err != nil {
		return nil, fmt.Errorf("api: kiosks: %w", err)
	}
	byID := make(map[string]store.KioskRecord, len(recs))
	for _, k := range recs {
		byID[k.ID] = k
	}
	now := a.cfg.Now()
	view := func(k store.KioskRecord, org orgtree.Kiosk, inTree bool) Kiosk {
		return Kiosk{
			ID: k.ID, Name: org.Name, Community: org.Community, CommunityName: org.CommunityName,
			Online:   k.Online && !k.LastSeen.IsZero() && now.Sub(k.LastSeen) < a.cfg.OfflineAfter,
			LastSeen: k.LastSeen, Epoch: k.Epoch, SoftwareVersion: k.SoftwareVersion,
			UptimeSeconds: k.UptimeSeconds, OutboxDepth: k.OutboxDepth, ContentVersion: k.ContentVersion,
			DesiredVersion: k.DesiredVersion, FreeDiskBytes: k.FreeDiskBytes, InOrgTree: inTree,
		}
	}
	out := []Kiosk{}
	for _, org := range a.cfg.Tree.Kiosks() {
		k := byID[org.ID]
		k.ID = org.ID
		delete(byID, org.ID)
		out = append(out, view(k, org, true))
	}
	for _, k := range recs { // kiosks that reported in but are not in the org tree
		if _, ok := byID[k.ID]; ok {
			out = append(out, view(k, orgtree.Kiosk{}, false))
		}
	}
	return out, nil
}

func (a *API) org(w http.ResponseWriter, _ *http.Request) {
	a.json(w, http.StatusOK, a.cfg.Tree)
}
