package open311

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/ratelimit"
	"github.com/shequ/shequ/hub/store"
)

// Base is the path under which the server answers.
const Base = "/open311/v2/"

// Specification is the URL of the specification the server follows.
const Specification = "http://wiki.open311.org/GeoReport_v2"

// Defaults for zero Config fields.
const (
	DefaultPerMinute = 120 // requests per key (or per client address without a key) per minute
	DefaultBurst     = 60
	DefaultContact   = "城市管理行政执法局 / City Management and Law Enforcement Bureau"
	DefaultKeyHelp   = "API 密钥由枢纽管理员签发（hub open311-key add），请与城管执法局联系。" +
		" API keys are issued by the hub's administrators (hub open311-key add): contact the bureau."
)

// Cases is what the server needs of the case workflow (hub/cases).
type Cases interface {
	Create(ctx context.Context, n cases.NewCase, actor cases.Scope) (cases.Case, bool, error)
	TimeLimit(category string) int
}

var _ Cases = (*cases.Service)(nil)

// Store is what the server needs of the hub database.
type Store interface {
	CreateOpen311Key(ctx context.Context, k store.Open311Key) error
	Open311KeyByHash(ctx context.Context, hash []byte) (store.Open311Key, error)
	Open311Keys(ctx context.Context) ([]store.Open311Key, error)
	RevokeOpen311Key(ctx context.Context, id string, at time.Time) (store.Open311Key, error)
	Open311Cases(ctx context.Context, q store.Open311Query) ([]store.Open311Case, error)
	Open311Updates(ctx context.Context, q store.Open311Query, from, to time.Time) ([]store.Open311Update, error)
}

var _ Store = (*store.SQLite)(nil)

// Config configures the server. Zero values mean the defaults.
type Config struct {
	Cases Cases         // required
	Store Store         // required
	Tree  *orgtree.Tree // required
	Now   func() time.Time
	Log   *slog.Logger // default: discard
	// BaseURL returns the hub's public URL (e.g. https://hub.example:8080),
	// for the endpoint URL in discovery; when nil or empty, the URL is
	// taken from the request.
	BaseURL func() string
	// Contact and KeyService are discovery's contact and key_service
	// texts.
	Contact    string
	KeyService string
	// PerMinute and Burst limit requests per key (per client address for
	// requests without a valid key); the total is limited to ten times.
	PerMinute int
	Burst     int
	// Audit, if set, records a committed change of the API keys in the
	// hub's audit log: open311_key.create and open311_key.revoke of
	// "open311_key:<id>", with the Key before and after (never the
	// secret). Who made it is jsonhttp.Actor(ctx), which the function
	// resolves itself. nil: no audit.
	Audit func(ctx context.Context, action, object string, before, after any)
}

// Server serves the Open311 GeoReport v2 API. It is an http.Handler for
// the paths under Base.
type Server struct {
	cfg     Config
	log     *slog.Logger
	limiter *ratelimit.Limiter
}

// New checks cfg and returns a Server.
func New(cfg Config) (*Server, error) {
	if cfg.Cases == nil || cfg.Store == nil || cfg.Tree == nil {
		return nil, errors.New("open311: Cases, Store and Tree are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.DiscardHandler)
	}
	if cfg.Contact == "" {
		cfg.Contact = DefaultContact
	}
	if cfg.KeyService == "" {
		cfg.KeyService = DefaultKeyHelp
	}
	if cfg.PerMinute <= 0 {
		cfg.PerMinute = DefaultPerMinute
	}
	if cfg.Burst <= 0 {
		cfg.Burst = DefaultBurst
	}
	return &Server{cfg: cfg, log: cfg.Log,
		limiter: ratelimit.New(cfg.PerMinute, cfg.Burst, 10*cfg.PerMinute, 10*cfg.Burst, cfg.Now)}, nil
}

// Mux is where endpoints are registered (hub/api's API). Paths under
// /open311/ lie outside /api/, so they need no admin token there.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the Open311 endpoints (everything under /open311/).
func (s *Server) Register(m Mux) { m.Handle("/open311/", s) }

// ServeHTTP routes a request under Base by its path: a resource name and
// a format extension (.json or .xml).
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rest, ok := strings.CutPrefix(r.URL.Path, Base)
	if !ok {
		s.fail(w, formatXML, apiError{http.StatusNotFound, "not found: the Open311 GeoReport v2 API is at " + Base})
		return
	}
	i := strings.LastIndexByte(rest, '.')
	if i < 0 {
		s.fail(w, formatXML, apiError{http.StatusNotFound, "not found: add the format to the resource (.xml or .json)"})
		return
	}
	name, format := rest[:i], rest[i+1:]
	if format != formatJSON && format != formatXML {
		s.fail(w, formatXML, apiError{http.StatusNotFound, fmt.Sprintf("format %s not supported: use .xml or .json", printable(format))})
		return
	}
	method := func(allowed ...string) bool {
		if slices.Contains(allowed, r.Method) || r.Method == http.MethodHead && slices.Contains(allowed, http.MethodGet) {
			return true
		}
		w.Header().Set("Allow", strings.Join(allowed, ", "))
		s.fail(w, format, apiError{http.StatusMethodNotAllowed, r.Method + " is not allowed here"})
		return false
	}
	var (
		h   func(http.ResponseWriter, *http.Request, string, string)
		arg string
	)
	switch {
	case name == "discovery":
		if method(http.MethodGet) {
			h = s.discovery
		}
	case name == "services":
		if method(http.MethodGet) {
			h = s.services
		}
	case strings.HasPrefix(name, "services/"):
		if method(http.MethodGet) {
			h, arg = s.serviceDefinition, strings.TrimPrefix(name, "services/")
		}
	case name == "requests":
		if method(http.MethodGet, http.MethodPost) {
			h = s.listRequests
			if r.Method == http.MethodPost {
				h = s.createRequest
			}
		}
	case strings.HasPrefix(name, "requests/"):
		if method(http.MethodGet) {
			h, arg = s.getRequest, strings.TrimPrefix(name, "requests/")
		}
	case strings.HasPrefix(name, "tokens/"):
		if method(http.MethodGet) {
			h, arg = s.token, strings.TrimPrefix(name, "tokens/")
		}
	case name == "servicerequestupdates":
		if method(http.MethodGet) {
			h = s.updates
		}
	default:
		s.fail(w, format, apiError{http.StatusNotFound, fmt.Sprintf("resource %s not found", printable(name))})
		return
	}
	if h != nil {
		h(w, r, format, arg)
	}
}

// errKey is the reply to a missing, unknown or revoked api_key.
var errKey = apiError{http.StatusForbidden, "api_key missing or invalid"}

// key is an authenticated API key.
type key struct {
	store.Open311Key
	tree *orgtree.Tree
}

// CanSee reports whether a node lies under one of the key's nodes.
func (k *key) CanSee(node string) bool {
	for n := k.tree.Node(node); n != nil; n = n.Parent() {
		if slices.Contains(k.Nodes, n.ID) {
			return true
		}
	}
	return false
}

// Role is the role the key's cases are created with (hub/cases).
func (k *key) Role() string { return cases.RolePartner }

// ID is the actor id on case timelines.
func (k *key) ID() string { return "open311:" + k.Open311Key.ID }

var _ cases.Scope = (*key)(nil)

// authenticate returns the key with the given secret. An empty, unknown
// or revoked key is errKey.
func (s *Server) authenticate(ctx context.Context, secret string) (*key, *apiError) {
	if secret == "" {
		return nil, &errKey
	}
	sum := sha256.Sum256([]byte(secret))
	k, err := s.cfg.Store.Open311KeyByHash(ctx, sum[:])
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, &errKey
	case err != nil:
		s.log.Error("open311: key lookup", "err", err)
		return nil, &apiError{http.StatusInternalServerError, ""}
	case !k.RevokedAt.IsZero():
		return nil, &errKey
	}
	return &key{Open311Key: k, tree: s.cfg.Tree}, nil
}

// allow applies the rate limit to a key, or to the client's address
// without one, and writes the 429 reply when refused.
func (s *Server) allow(w http.ResponseWriter, r *http.Request, format string, k *key) bool {
	id := "key:"
	if k != nil {
		id += k.Open311Key.ID
	} else {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		id = "ip:" + host
	}
	ok, wait := s.limiter.Allow(id)
	if !ok {
		w.Header().Set("Retry-After", strconv.Itoa(int(wait.Seconds())+1))
		s.fail(w, format, apiError{http.StatusTooManyRequests, "too many requests: slow down"})
	}
	return ok
}

// jurisdiction checks an optional jurisdiction_id: the org tree's root,
// or (with a key) one of the key's nodes. It returns the node to narrow
// a listing to ("" for all the key may see).
func (s *Server) jurisdiction(id string, k *key) (string, *apiError) {
	switch {
	case id == "" || id == s.cfg.Tree.Root().ID:
		return "", nil
	case k != nil && slices.Contains(k.Nodes, id):
		return id, nil
	}
	return "", &apiError{http.StatusNotFound, "jurisdiction_id not found"}
}

// badInput turns a decoding error into a 400 error.
func badInput(err error) apiError {
	return apiError{http.StatusBadRequest, strings.TrimPrefix(err.Error(), errBadInput.Error()+": ")}
}

// shanghai is China Standard Time, in which every date is written.
var shanghai = time.FixedZone("CST", 8*3600)

// w3 formats a time as the specification asks: ISO 8601 with the offset
// (+08:00); "" for the zero time.
func w3(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.In(shanghai).Format(time.RFC3339)
}

func (s *Server) baseURL(r *http.Request) string {
	if s.cfg.BaseURL != nil {
		if u := strings.TrimSuffix(s.cfg.BaseURL(), "/"); u != "" {
			return u
		}
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	}
	return scheme + "://" + r.Host
}

func (s *Server) discovery(w http.ResponseWriter, r *http.Request, format, _ string) {
	if _, err := decodeQuery(r.URL.RawQuery); err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	if !s.allow(w, r, format, nil) {
		return
	}
	cs := w3(Changeset)
	d := discovery{Changeset: cs, Contact: s.cfg.Contact, KeyService: s.cfg.KeyService, Endpoints: []endpoint{{
		Specification: Specification, URL: s.baseURL(r) + strings.TrimSuffix(Base, "/"), Changeset: cs, Type: "production",
		Formats: []string{"text/xml", "application/json"},
	}}}
	s.write(w, format, http.StatusOK, d, d)
}

// admit authenticates the api_key (required, or optional: an absent key
// is fine, a wrong one is not) and applies the rate limit: per key, or per
// client address for requests without a valid key, failed ones included.
func (s *Server) admit(w http.ResponseWriter, r *http.Request, format, secret string, required bool) (*key, bool) {
	var (
		k    *key
		aerr *apiError
	)
	if secret != "" || required {
		k, aerr = s.authenticate(r.Context(), secret)
	}
	if aerr != nil && aerr.Code >= 500 {
		s.fail(w, format, *aerr)
		return nil, false
	}
	if !s.allow(w, r, format, k) {
		return nil, false
	}
	if aerr != nil {
		s.fail(w, format, *aerr)
		return nil, false
	}
	return k, true
}

func (s *Server) services(w http.ResponseWriter, r *http.Request, format, _ string) {
	q, err := decodeQuery(r.URL.RawQuery, "jurisdiction_id", "api_key")
	if err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	k, ok := s.admit(w, r, format, q["api_key"], false)
	if !ok {
		return
	}
	if _, aerr := s.jurisdiction(q["jurisdiction_id"], k); aerr != nil {
		s.fail(w, format, *aerr)
		return
	}
	l := serviceList()
	s.write(w, format, http.StatusOK, l, servicesXML{Services: l})
}

func (s *Server) serviceDefinition(w http.ResponseWriter, r *http.Request, format, code string) {
	q, err := decodeQuery(r.URL.RawQuery, "jurisdiction_id", "api_key")
	if err != nil {
		s.fail(w, format, badInput(err))
		return
	}
	k, ok := s.admit(w, r, format, q["api_key"], false)
	if !ok {
		return
	}
	if _, aerr := s.jurisdiction(q["jurisdiction_id"], k); aerr != nil {
		s.fail(w, format, *aerr)
		return
	}
	c, ok := category(code)
	if !ok {
		s.fail(w, format, apiError{http.StatusNotFound, "service_code not found"})
		return
	}
	d := definition(c)
	s.write(w, format, http.StatusOK, d, d)
}

// internal logs err and writes a 500 reply.
func (s *Server) internal(w http.ResponseWriter, format string, err error) {
	s.log.Error("open311 request failed", "err", err)
	s.fail(w, format, apiError{http.StatusInternalServerError, ""})
}

// jsonError writes an admin endpoint's JSON error.
func (s *Server) jsonError(w http.ResponseWriter, code int, err error) {
	jsonhttp.Error(w, s.log, code, err)
}
