package accounts

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"time"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/ratelimit"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Config configures the service. Store, Tree and Secret are required; zero
// values of the other fields mean the defaults given.
type Config struct {
	Store  *store.SQLite
	Tree   *orgtree.Tree
	Secret []byte // at least 32 bytes; keys the CSRF tokens

	Log     *slog.Logger       // nil: discard
	Now     func() time.Time   // nil: time.Now
	Params  Params             // zero: DefaultParams
	Limiter *ratelimit.Limiter // login attempts per client IP; nil: no limit

	IdleTimeout     time.Duration // default 30 minutes
	AbsoluteTimeout time.Duration // default 12 hours
	MaxFailures     int           // failed logins that lock an account; default 5
	FailureWindow   time.Duration // over which failures count; default 15 minutes
	LockDuration    time.Duration // default 15 minutes

	LoginPath string // where unauthenticated page requests are sent; default "/login"
	HomePath  string // where a successful login goes; default "/"

	// Require2FA lists the roles that must have two-step verification:
	// after the password, an account of such a role without it gets a
	// session that admits only the enrolment pages (EnrolSession) until
	// it enrols. None by default.
	Require2FA       []Role
	SecondFactorPath string        // where a login goes for its code; default "/login/2fa"
	EnrolPath        string        // the enrolment page; default "/me/2fa"
	PendingTTL       time.Duration // how long a pending login waits for its code; default 5 minutes
}

// Service manages accounts, sessions and the audit log. It is safe for
// concurrent use.
type Service struct {
	cfg       Config
	log       *slog.Logger
	dummyHash string // verified against for unknown usernames, to even out timing
}

// New validates the config and returns a service.
func New(cfg Config) (*Service, error) {
	switch {
	case cfg.Store == nil:
		return nil, fmt.Errorf("%w: config: Store is required", ErrInvalid)
	case cfg.Tree == nil:
		return nil, fmt.Errorf("%w: config: Tree is required", ErrInvalid)
	case len(cfg.Secret) < 32:
		return nil, fmt.Errorf("%w: config: Secret must be at least 32 bytes", ErrInvalid)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Params = cfg.Params.orDefault()
	if err := cfg.Params.validate(); err != nil {
		return nil, fmt.Errorf("accounts: config: %w", err)
	}
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.IdleTimeout, 30*time.Minute)
	def(&cfg.AbsoluteTimeout, 12*time.Hour)
	def(&cfg.FailureWindow, 15*time.Minute)
	def(&cfg.LockDuration, 15*time.Minute)
	def(&cfg.PendingTTL, 5*time.Minute)
	if cfg.MaxFailures == 0 {
		cfg.MaxFailures = 5
	}
	if cfg.LoginPath == "" {
		cfg.LoginPath = "/login"
	}
	if cfg.HomePath == "" {
		cfg.HomePath = "/"
	}
	if cfg.SecondFactorPath == "" {
		cfg.SecondFactorPath = "/login/2fa"
	}
	if cfg.EnrolPath == "" {
		cfg.EnrolPath = "/me/2fa"
	}
	for _, r := range cfg.Require2FA {
		if !r.Valid() {
			return nil, fmt.Errorf("%w: config: Require2FA: role %q is not one of %v", ErrInvalid, r, Roles)
		}
	}
	log := cfg.Log
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	dummy, err := HashPassword("not-a-real-password", cfg.Params)
	if err != nil {
		return nil, err
	}
	return &Service{cfg: cfg, log: log, dummyHash: dummy}, nil
}

// Principal returns the principal of the account in the service's tree.
func (s *Service) Principal(a Account) Principal { return NewPrincipal(s.cfg.Tree, a) }

// CanSee reports whether the account's scope covers node.
func (s *Service) CanSee(a Account, node string) bool { return CanSee(s.cfg.Tree, a.Node, node) }

// CanManage reports whether actor may create or change target: bureau and
// district admins may manage accounts in their scope whose role is below
// their own (the bureau admin also other bureau admins).
func (s *Service) CanManage(actor, target Account) bool {
	if actor.Role != RoleBureauAdmin && actor.Role != RoleDistrictAdmin {
		return false
	}
	if !s.CanSee(actor, target.Node) {
		return false
	}
	ai, ti := slices.Index(Roles, actor.Role), slices.Index(Roles, target.Role)
	return ti > ai || actor.Role == RoleBureauAdmin
}

// AuditEntry is one change to record. Before and After are encoded as JSON;
// nil means there is no such state.
type AuditEntry struct {
	At     time.Time // zero: now
	Actor  string    // "account:<id>", or a tool such as "cli"
	Action string    // e.g. "account.create", "login.failure"
	Object string    // e.g. "account:<id>"
	Before any
	After  any
}

func (s *Service) record(e AuditEntry) (store.AuditRecord, error) {
	if e.At.IsZero() {
		e.At = s.cfg.Now()
	}
	enc := func(v any) (string, error) {
		if v == nil {
			return "", nil
		}
		b, err := json.Marshal(v)
		if err != nil {
			return "", fmt.Errorf("accounts: audit %s: %w", e.Action, err)
		}
		return string(b), nil
	}
	before, err := enc(e.Before)
	if err != nil {
		return store.AuditRecord{}, err
	}
	after, err := enc(e.After)
	if err != nil {
		return store.AuditRecord{}, err
	}
	return store.AuditRecord{At: e.At, Actor: e.Actor, Action: e.Action, Object: e.Object, Before: before, After: after}, nil
}

// Audit records an entry in the audit log.
func (s *Service) Audit(ctx context.Context, e AuditEntry) error {
	r, err := s.record(e)
	if err != nil {
		return err
	}
	if err := s.cfg.Store.InsertAudit(ctx, r); err != nil {
		return fmt.Errorf("accounts: audit %s: %w", e.Action, err)
	}
	return nil
}

// AuditChange records a change made through the hub's services (the Audit
// hooks of hub/api, hub/media, hub/playlists, hub/enrol, hub/open311) as
// done by the request's actor (jsonhttp.Actor: the admin token or a
// person; "system" when the context carries none). It runs after the change
// committed, so a failed write is logged, not returned; the write outlives
// a request the client gave up on.
func (s *Service) AuditChange(ctx context.Context, action, object string, before, after any) {
	actor := jsonhttp.Actor(ctx)
	if actor == "" {
		actor = "system"
	}
	err := s.Audit(context.WithoutCancel(ctx), AuditEntry{Actor: actor, Action: action, Object: object, Before: before, After: after})
	if err != nil {
		s.log.Error("writing the audit log failed", "action", action, "object", object, "actor", actor, "err", err)
	}
}

// NewAccount is what CreateAccount needs.
type NewAccount struct {
	Username    string
	DisplayName string
	Role        Role
	Node        string
	Password    string
}

func validUsername(u string) bool {
	if len(u) < 3 || len(u) > 32 {
		return false
	}
	for _, c := range u {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

func (s *Service) checkScope(role Role, node string) error {
	if !role.Valid() {
		return fmt.Errorf("%w: role %q is not one of %v", ErrInvalid, role, Roles)
	}
	n := s.cfg.Tree.Node(node)
	if n == nil {
		return fmt.Errorf("%w: node %q is not in the org tree", ErrInvalid, node)
	}
	if want, ok := levelOf[role]; ok && n.Level != want {
		return fmt.Errorf("%w: a %s holds a %s node, %q is a %s", ErrInvalid, role, want, node, n.Level)
	}
	if n.Level == protocol.LevelKiosk {
		return fmt.Errorf("%w: an account cannot be scoped to a kiosk", ErrInvalid)
	}
	return nil
}

func view(r store.AccountRecord) Account {
	a := Account{ID: r.ID, Username: r.Username, DisplayName: r.DisplayName, Role: Role(r.Role), Node: r.Node}
	if !r.LockedUntil.IsZero() {
		a.LockedUntil = r.LockedUntil.Format(time.RFC3339)
	}
	return a
}

func object(id string) string { return "account:" + id }

// CreateAccount creates an account and audits it as done by actor. The
// caller decides whether actor may (CanManage); a bootstrap tool passes
// "cli".
func (s *Service) CreateAccount(ctx context.Context, actor string, n NewAccount) (Account, error) {
	if !validUsername(n.Username) {
		return Account{}, fmt.Errorf("%w: username must be 3-32 of a-z 0-9 . _ -", ErrInvalid)
	}
	if len(n.DisplayName) > 100 {
		return Account{}, fmt.Errorf("%w: display name longer than 100 bytes", ErrInvalid)
	}
	if err := s.checkScope(n.Role, n.Node); err != nil {
		return Account{}, err
	}
	hash, err := HashPassword(n.Password, s.cfg.Params)
	if err != nil {
		return Account{}, err
	}
	now := s.cfg.Now()
	r := store.AccountRecord{ID: protocol.NewID(), Username: n.Username, DisplayName: n.DisplayName, Role: string(n.Role),
		Node: n.Node, Password: hash, CreatedAt: now, UpdatedAt: now}
	a := view(r)
	audit, err := s.record(AuditEntry{At: now, Actor: actor, Action: "account.create", Object: object(r.ID), After: a})
	if err != nil {
		return Account{}, err
	}
	if err := s.cfg.Store.CreateAccount(ctx, r, audit); err != nil {
		return Account{}, fmt.Errorf("accounts: create %s: %w", n.Username, err)
	}
	return a, nil
}

// Account returns the account with the id.
func (s *Service) Account(ctx context.Context, id string) (Account, error) {
	r, err := s.cfg.Store.Account(ctx, id)
	if err != nil {
		return Account{}, fmt.Errorf("accounts: %w", err)
	}
	return view(r), nil
}

// update applies change to the stored account and stores it with an audit
// entry holding the account before and after.
func (s *Service) update(ctx context.Context, actor, action, id string, change func(*store.AccountRecord) error) (Account, error) {
	r, err := s.cfg.Store.Account(ctx, id)
	if err != nil {
		return Account{}, fmt.Errorf("accounts: %s: %w", action, err)
	}
	before := view(r)
	if err := change(&r); err != nil {
		return Account{}, err
	}
	r.UpdatedAt = s.cfg.Now()
	after := view(r)
	audit, err := s.record(AuditEntry{At: r.UpdatedAt, Actor: actor, Action: action, Object: object(id), Before: before, After: after})
	if err != nil {
		return Account{}, err
	}
	if err := s.cfg.Store.UpdateAccount(ctx, r, audit); err != nil {
		return Account{}, fmt.Errorf("accounts: %s: %w", action, err)
	}
	return after, nil
}

// SetRole changes an account's role and scope node; its sessions end.
func (s *Service) SetRole(ctx context.Context, actor, id string, role Role, node string) (Account, error) {
	if err := s.checkScope(role, node); err != nil {
		return Account{}, err
	}
	return s.update(ctx, actor, "account.set_role", id, func(r *store.AccountRecord) error {
		r.Role, r.Node = string(role), node
		return nil
	})
}

// SetPassword changes an account's password; its sessions end.
func (s *Service) SetPassword(ctx context.Context, actor, id, password string) (Account, error) {
	hash, err := HashPassword(password, s.cfg.Params)
	if err != nil {
		return Account{}, err
	}
	return s.update(ctx, actor, "account.set_password", id, func(r *store.AccountRecord) error {
		r.Password = hash
		return nil
	})
}

// Lock refuses the account's logins until until and ends its sessions.
func (s *Service) Lock(ctx context.Context, actor, id string, until time.Time) (Account, error) {
	return s.update(ctx, actor, "account.lock", id, func(r *store.AccountRecord) error {
		r.LockedUntil = until.UTC()
		return nil
	})
}

// Unlock lifts a lock and forgets the account's failed logins.
func (s *Service) Unlock(ctx context.Context, actor, id string) (Account, error) {
	return s.update(ctx, actor, "account.unlock", id, func(r *store.AccountRecord) error {
		r.LockedUntil = time.Time{}
		return nil
	})
}

// Login checks the username and password and, when they are right and the
// account is not locked, starts a session and returns its token (for the
// cookie). An account with two-step verification on gets no session but
// ErrSecondFactor: logins that can ask for a code use BeginLogin. Every
// attempt is audited. ip is the client's address, for the per-IP limiter
// and the audit log.
func (s *Service) Login(ctx context.Context, username, password, ip string) (string, Account, error) {
	res, err := s.BeginLogin(ctx, username, password, ip)
	if err != nil {
		return "", Account{}, err
	}
	if res.Pending != "" {
		return "", res.Account, ErrSecondFactor
	}
	return res.Session, res.Account, nil
}

// BeginLogin checks the username and password. When they are right and the
// account is not locked it starts a session, or, for an account with
// two-step verification on, returns a pending-login token for
// CompleteLogin instead (audited as "login.2fa.challenge"). Wrong
// passwords count toward the account's lockout; every attempt is audited.
func (s *Service) BeginLogin(ctx context.Context, username, password, ip string) (LoginResult, error) {
	if s.cfg.Limiter != nil {
		if ok, _ := s.cfg.Limiter.Allow(ip); !ok {
			return LoginResult{}, ErrRateLimited
		}
	}
	now := s.cfg.Now()
	fail := func(obj, reason string, cause error) (LoginResult, error) {
		err := s.Audit(ctx, AuditEntry{At: now, Actor: "ip:" + ip, Action: "login.failure", Object: obj,
			After: map[string]string{"username": username, "reason": reason}})
		return LoginResult{}, errors.Join(cause, err)
	}
	r, err := s.cfg.Store.AccountByUsername(ctx, username)
	if errors.Is(err, store.ErrNotFound) {
		if _, err := VerifyPassword(s.dummyHash, password); err != nil {
			return LoginResult{}, fmt.Errorf("accounts: login: %w", err)
		}
		return fail("username:"+username, "unknown user", ErrBadCredentials)
	}
	if err != nil {
		return LoginResult{}, fmt.Errorf("accounts: login: %w", err)
	}
	if r.LockedUntil.After(now) {
		// Spend the time of a verification so a lock cannot be told by timing.
		if _, err := VerifyPassword(s.dummyHash, password); err != nil {
			return LoginResult{}, fmt.Errorf("accounts: login: %w", err)
		}
		return fail(object(r.ID), "locked", errors.Join(ErrBadCredentials, ErrLocked))
	}
	ok, err := VerifyPassword(r.Password, password)
	if err != nil {
		return LoginResult{}, fmt.Errorf("accounts: login %s: %w", r.ID, err)
	}
	if !ok {
		if err := s.addFailure(ctx, r.ID, ip, now); err != nil {
			return LoginResult{}, err
		}
		return fail(object(r.ID), "wrong password", ErrBadCredentials)
	}
	a := view(r)
	st, err := s.TwoFactor(ctx, a)
	if err != nil {
		return LoginResult{}, err
	}
	if st.On {
		if err := s.Audit(ctx, AuditEntry{At: now, Actor: "ip:" + ip, Action: "login.2fa.challenge", Object: object(r.ID),
			After: map[string]string{"ip": ip}}); err != nil {
			return LoginResult{}, err
		}
		return LoginResult{Pending: s.pendingToken(r, now), Account: a}, nil
	}
	token, a, err := s.startSession(ctx, r, now, map[string]string{"ip": ip})
	if err != nil {
		return LoginResult{}, err
	}
	return LoginResult{Session: token, Account: a, MustEnrol: st.Required}, nil
}

func hashToken(token string) string {
	h := sha256.Sum256([]byte(token))
	return hex.EncodeToString(h[:])
}

// touchEvery is how often a session's last use is written: at most once a
// minute per session, so reading pages does not write the database each
// time. The idle timeout therefore runs from a last use up to a minute old.
const touchEvery = time.Minute

// Authenticate returns the account of a live session and extends its idle
// timeout. An unknown, idle or too old session is ErrNoSession (an expired
// one is deleted).
func (s *Service) Authenticate(ctx context.Context, token string) (Account, error) {
	if token == "" || len(token) > 64 {
		return Account{}, ErrNoSession
	}
	h := hashToken(token)
	r, err := s.cfg.Store.Session(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return Account{}, ErrNoSession
	}
	if err != nil {
		return Account{}, fmt.Errorf("accounts: authenticate: %w", err)
	}
	now := s.cfg.Now()
	if now.Sub(r.LastSeen) >= s.cfg.IdleTimeout || now.Sub(r.CreatedAt) >= s.cfg.AbsoluteTimeout {
		if err := s.cfg.Store.DeleteSession(ctx, h); err != nil {
			return Account{}, fmt.Errorf("accounts: authenticate: %w", err)
		}
		return Account{}, ErrNoSession
	}
	acct, err := s.cfg.Store.Account(ctx, r.AccountID)
	if err != nil {
		return Account{}, fmt.Errorf("accounts: authenticate: %w", err)
	}
	if acct.LockedUntil.After(now) {
		return Account{}, ErrNoSession
	}
	if now.Sub(r.LastSeen) >= touchEvery {
		if err := s.cfg.Store.TouchSession(ctx, h, now); err != nil {
			return Account{}, fmt.Errorf("accounts: authenticate: %w", err)
		}
	}
	return view(acct), nil
}

// Logout ends the session and audits it.
func (s *Service) Logout(ctx context.Context, token string, a Account) error {
	if err := s.cfg.Store.DeleteSession(ctx, hashToken(token)); err != nil {
		return fmt.Errorf("accounts: logout: %w", err)
	}
	return s.Audit(ctx, AuditEntry{Actor: object(a.ID), Action: "logout", Object: object(a.ID)})
}

// ExpireSessions deletes every session past its idle or absolute timeout and
// returns how many; the hub may call it now and then.
func (s *Service) ExpireSessions(ctx context.Context) (int64, error) {
	now := s.cfg.Now()
	n, err := s.cfg.Store.DeleteSessionsBefore(ctx, now.Add(-s.cfg.IdleTimeout), now.Add(-s.cfg.AbsoluteTimeout))
	if err != nil {
		return 0, fmt.Errorf("accounts: %w", err)
	}
	return n, nil
}

// CSRFToken returns the CSRF token of the session with the token.
func (s *Service) CSRFToken(sessionToken string) string {
	m := hmac.New(sha256.New, s.cfg.Secret)
	m.Write([]byte("shequ csrf v1\x00" + sessionToken))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// CheckCSRF reports, in constant time, whether csrf is the session's token.
func (s *Service) CheckCSRF(sessionToken, csrf string) bool {
	return csrf != "" && hmac.Equal([]byte(csrf), []byte(s.CSRFToken(sessionToken)))
}
