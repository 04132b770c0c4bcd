package accounts

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Personal API tokens: a bureau admin makes tokens for scripts, which
// present one to the JSON API as "Authorization: Bearer shq_…" instead of
// the hub's shared admin token, so every API request is attributable to a
// person and each token can be revoked on its own.
//
// Only bureau admins hold tokens: the API's endpoints are not scoped by
// org node, so a token acts city-wide, which only that role may. A token
// works while it is neither expired nor revoked and its account exists,
// is not locked and is still a bureau admin: a lock or role change stops
// its tokens at once, since every request checks the account.
//
// A token is APITokenPrefix and 32 random bytes in unpadded base64url
// (secret scanners recognise the prefix). It is shown once; the database
// keeps only its SHA-256, looked up through a unique index.

// APITokenPrefix begins every personal API token.
const APITokenPrefix = "shq_"

// Token limits.
const (
	apiTokenBytes = 32
	// apiTokenLen is the length of a token: the prefix and the base64url
	// of the random bytes.
	apiTokenLen = len(APITokenPrefix) + (apiTokenBytes*8+5)/6
	// MaxAPITokenName bounds a token's name, in characters.
	MaxAPITokenName = 100
	// DefaultAPITokenDays is a new token's lifetime when none is given.
	DefaultAPITokenDays = 90
)

// APITokenDays are the lifetimes, in days, a token may be made with.
var APITokenDays = []int{30, 90, 365}

// ErrNoAPIToken means a bearer token is not a working personal API token:
// malformed, unknown, expired, revoked, or its account is locked, gone or
// no longer a bureau admin (not told apart to the client).
var ErrNoAPIToken = errors.New("accounts: no valid API token")

// APIToken is a personal API token as the rest of the hub sees it (never
// the token or its hash).
type APIToken struct {
	ID        string
	Name      string
	CreatedAt time.Time
	ExpiresAt time.Time
	LastUsed  time.Time // zero while never used
	RevokedAt time.Time // zero while not revoked
}

// Expired reports whether the token has expired at now.
func (t APIToken) Expired(now time.Time) bool { return !now.Before(t.ExpiresAt) }

// Revoked reports whether the token was revoked.
func (t APIToken) Revoked() bool { return !t.RevokedAt.IsZero() }

// Active reports whether the token is neither expired nor revoked at now.
func (t APIToken) Active(now time.Time) bool { return !t.Expired(now) && !t.Revoked() }

func tokenView(r store.APITokenRecord) APIToken {
	return APIToken{ID: r.ID, Name: r.Name, CreatedAt: r.CreatedAt, ExpiresAt: r.ExpiresAt, LastUsed: r.LastUsed, RevokedAt: r.RevokedAt}
}

// tokenAudit is a token as its audit entries record it.
type tokenAudit struct {
	ID        string `json:"token_id"`
	Name      string `json:"token_name"`
	ExpiresAt string `json:"expires_at"`
	RevokedAt string `json:"revoked_at,omitempty"`
}

func auditOf(t APIToken) tokenAudit {
	a := tokenAudit{ID: t.ID, Name: t.Name, ExpiresAt: t.ExpiresAt.UTC().Format(time.RFC3339)}
	if t.Revoked() {
		a.RevokedAt = t.RevokedAt.UTC().Format(time.RFC3339)
	}
	return a
}

// MayHoldAPITokens reports whether the account may make personal API
// tokens (and whether its tokens work): bureau admins only.
func MayHoldAPITokens(a Account) bool { return a.Role == RoleBureauAdmin }

// CheckAPITokenName returns the name trimmed, or ErrInvalid when it is
// empty, longer than MaxAPITokenName characters or has control characters.
func CheckAPITokenName(name string) (string, error) {
	name = strings.TrimSpace(name)
	switch {
	case name == "":
		return "", fmt.Errorf("%w: the token needs a name", ErrInvalid)
	case !utf8.ValidString(name):
		return "", fmt.Errorf("%w: token name is not UTF-8", ErrInvalid)
	case utf8.RuneCountInString(name) > MaxAPITokenName:
		return "", fmt.Errorf("%w: token name longer than %d characters", ErrInvalid, MaxAPITokenName)
	case strings.ContainsFunc(name, unicode.IsControl):
		return "", fmt.Errorf("%w: token name has control characters", ErrInvalid)
	}
	return name, nil
}

// CreateAPIToken makes a personal API token of the actor's own, named
// name, working for days days (one of APITokenDays; 0 means
// DefaultAPITokenDays), and audits it as "api_token.create". It returns
// the token, to show once. Accounts other than bureau admins get
// ErrForbidden.
func (s *Service) CreateAPIToken(ctx context.Context, actor Account, name string, days int) (string, APIToken, error) {
	if !MayHoldAPITokens(actor) {
		return "", APIToken{}, fmt.Errorf("%w: only bureau admins hold API tokens", ErrForbidden)
	}
	return s.createAPIToken(ctx, object(actor.ID), actor, name, days)
}

func (s *Service) createAPIToken(ctx context.Context, actor string, owner Account, name string, days int) (string, APIToken, error) {
	name, err := CheckAPITokenName(name)
	if err != nil {
		return "", APIToken{}, err
	}
	if days == 0 {
		days = DefaultAPITokenDays
	}
	if !slices.Contains(APITokenDays, days) {
		return "", APIToken{}, fmt.Errorf("%w: a token lasts one of %v days, not %d", ErrInvalid, APITokenDays, days)
	}
	b := make([]byte, apiTokenBytes)
	if _, err := rand.Read(b); err != nil {
		return "", APIToken{}, fmt.Errorf("accounts: create api token: %w", err)
	}
	token := APITokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	now := s.cfg.Now().UTC()
	r := store.APITokenRecord{ID: protocol.NewID(), AccountID: owner.ID, Name: name, Hash: hashToken(token),
		CreatedAt: now, ExpiresAt: now.AddDate(0, 0, days)}
	t := tokenView(r)
	audit, err := s.record(AuditEntry{At: now, Actor: actor, Action: "api_token.create", Object: object(owner.ID), After: auditOf(t)})
	if err != nil {
		return "", APIToken{}, err
	}
	if err := s.cfg.Store.CreateAPIToken(ctx, r, audit); err != nil {
		return "", APIToken{}, fmt.Errorf("accounts: create api token: %w", err)
	}
	s.log.Info("api token created", "account", owner.ID, "token_id", t.ID, "name", t.Name, "expires", t.ExpiresAt, "by", actor)
	return token, t, nil
}

// APITokens returns the account's tokens, newest first, revoked and
// expired ones included.
func (s *Service) APITokens(ctx context.Context, a Account) ([]APIToken, error) {
	rs, err := s.cfg.Store.APITokens(ctx, a.ID)
	if err != nil {
		return nil, fmt.Errorf("accounts: %w", err)
	}
	out := make([]APIToken, len(rs))
	for i, r := range rs {
		out[i] = tokenView(r)
	}
	return out, nil
}

// RevokeAPIToken revokes one of the actor's own tokens and audits it as
// "api_token.revoke". Revoking a revoked token changes nothing and is no
// error; a token of another account or unknown wraps store.ErrNotFound.
func (s *Service) RevokeAPIToken(ctx context.Context, actor Account, id string) (APIToken, error) {
	r, err := s.cfg.Store.APIToken(ctx, id)
	if err == nil && r.AccountID != actor.ID {
		err = fmt.Errorf("api token %s: %w", id, store.ErrNotFound)
	}
	if err != nil {
		return APIToken{}, fmt.Errorf("accounts: revoke api token: %w", err)
	}
	before := tokenView(r)
	if before.Revoked() {
		return before, nil
	}
	after := before
	after.RevokedAt = s.cfg.Now().UTC()
	audit, err := s.record(AuditEntry{At: after.RevokedAt, Actor: object(actor.ID), Action: "api_token.revoke", Object: object(actor.ID),
		Before: auditOf(before), After: auditOf(after)})
	if err != nil {
		return APIToken{}, err
	}
	if err := s.cfg.Store.RevokeAPIToken(ctx, actor.ID, id, after.RevokedAt, audit); err != nil {
		return APIToken{}, fmt.Errorf("accounts: revoke api token: %w", err)
	}
	s.log.Info("api token revoked", "account", actor.ID, "token_id", id, "name", before.Name)
	return after, nil
}

// wellFormed reports whether token looks like a personal API token: the
// prefix and the base64url of 32 bytes.
func wellFormed(token string) bool {
	rest, ok := strings.CutPrefix(token, APITokenPrefix)
	if !ok || len(token) != apiTokenLen {
		return false
	}
	for _, c := range []byte(rest) {
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// AuthenticateAPIToken returns the account and the token a bearer token
// is, when it works (see ErrNoAPIToken), and records its use (at most
// once a minute). The check is one lookup of the token's SHA-256 in a
// unique index; a malformed token costs no lookup.
func (s *Service) AuthenticateAPIToken(ctx context.Context, token string) (Account, APIToken, error) {
	if !wellFormed(token) {
		return Account{}, APIToken{}, ErrNoAPIToken
	}
	h := hashToken(token)
	r, err := s.cfg.Store.APITokenByHash(ctx, h)
	if errors.Is(err, store.ErrNotFound) {
		return Account{}, APIToken{}, ErrNoAPIToken
	}
	if err != nil {
		return Account{}, APIToken{}, fmt.Errorf("accounts: api token: %w", err)
	}
	// The index found it by equality already; compare again in constant
	// time so no comparison of the secret's digest depends on its bytes.
	if subtle.ConstantTimeCompare([]byte(r.Hash), []byte(h)) != 1 {
		return Account{}, APIToken{}, ErrNoAPIToken
	}
	t := tokenView(r)
	now := s.cfg.Now()
	refuse := func(reason string) (Account, APIToken, error) {
		s.log.Info("api token refused", "token_id", t.ID, "account", r.AccountID, "reason", reason)
		return Account{}, APIToken{}, ErrNoAPIToken
	}
	switch {
	case t.Revoked():
		return refuse("revoked")
	case t.Expired(now):
		return refuse("expired")
	}
	ar, err := s.cfg.Store.Account(ctx, r.AccountID)
	if errors.Is(err, store.ErrNotFound) {
		return refuse("account gone")
	}
	if err != nil {
		return Account{}, APIToken{}, fmt.Errorf("accounts: api token: %w", err)
	}
	a := view(ar)
	switch {
	case ar.LockedUntil.After(now):
		return refuse("account locked")
	case !MayHoldAPITokens(a):
		return refuse("account is a " + string(a.Role))
	}
	if _, err := s.cfg.Store.TouchAPIToken(ctx, t.ID, now, touchEvery); err != nil {
		return Account{}, APIToken{}, fmt.Errorf("accounts: api token: %w", err)
	}
	return a, t, nil
}

// APITokenActor is AuthenticateAPIToken for hub/api's Config.Tokens: it
// returns the token's actor as the audit log names accounts,
// "account:<id>".
func (s *Service) APITokenActor(ctx context.Context, token string) (string, error) {
	a, _, err := s.AuthenticateAPIToken(ctx, token)
	if err != nil {
		return "", err
	}
	return object(a.ID), nil
}

// APITokenChecker is APITokenActor for hub/api's Config.Tokens: a token it
// refuses (ErrNoAPIToken) comes back wrapped in refused as well, so the API
// tells a refused token (401) from a failure to check one.
func (s *Service) APITokenChecker(refused error) func(ctx context.Context, token string) (string, error) {
	return func(ctx context.Context, token string) (string, error) {
		actor, err := s.APITokenActor(ctx, token)
		if errors.Is(err, ErrNoAPIToken) {
			return "", fmt.Errorf("%w: %w", refused, err)
		}
		return actor, err
	}
}
