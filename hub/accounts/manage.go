package accounts

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sort"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// This file holds the account administration an actor does through the
// staff console: every change is checked against CanManage here, in one
// place, and audited with the actor as "account:<id>". An account the actor
// may not manage is reported as not found (store.ErrNotFound, wrapped), as
// if it did not exist; a change of the actor's own account, or one that
// would give a role or scope the actor may not give, is ErrForbidden.

// Level returns the org level a node held by the role must have; false
// for technicians, who may hold any level but a kiosk.
func (r Role) Level() (protocol.Level, bool) {
	l, ok := levelOf[r]
	return l, ok
}

// ValidUsername reports whether u may be a username: 3-32 characters of
// a-z, 0-9, '.', '_' and '-'.
func ValidUsername(u string) bool { return validUsername(u) }

// mayManage reports whether actor may change target: CanManage, and never
// the actor's own account.
func (s *Service) mayManage(actor, target Account) bool {
	return actor.ID != target.ID && s.CanManage(actor, target)
}

// GrantableRoles returns the roles actor may give an account in its scope,
// most powerful first; none for a role that manages no accounts.
func (s *Service) GrantableRoles(actor Account) []Role {
	var out []Role
	for _, r := range Roles {
		if s.CanManage(actor, Account{Role: r, Node: actor.Node}) {
			out = append(out, r)
		}
	}
	return out
}

// ScopeNodes returns the nodes an account in actor's scope may hold: the
// actor's node and every node under it but kiosks, in tree order.
func (s *Service) ScopeNodes(actor Account) []*orgtree.Node {
	var out []*orgtree.Node
	var walk func(n *orgtree.Node)
	walk = func(n *orgtree.Node) {
		if n.Level == protocol.LevelKiosk {
			return
		}
		out = append(out, n)
		for _, ch := range n.Children {
			walk(ch)
		}
	}
	if n := s.cfg.Tree.Node(actor.Node); n != nil {
		walk(n)
	}
	return out
}

// Manageable returns the accounts actor may manage (its own excluded),
// ordered by username.
func (s *Service) Manageable(ctx context.Context, actor Account) ([]Account, error) {
	rs, err := s.cfg.Store.Accounts(ctx)
	if err != nil {
		return nil, fmt.Errorf("accounts: list: %w", err)
	}
	var out []Account
	for _, r := range rs {
		if a := view(r); s.mayManage(actor, a) {
			out = append(out, a)
		}
	}
	return out, nil
}

// ManagedAccount returns the account with the id if actor may manage it.
func (s *Service) ManagedAccount(ctx context.Context, actor Account, id string) (Account, error) {
	a, err := s.Account(ctx, id)
	if err != nil {
		return Account{}, err
	}
	if !s.mayManage(actor, a) {
		return Account{}, fmt.Errorf("accounts: account %q: %w", id, store.ErrNotFound)
	}
	return a, nil
}

// checkGrant checks that actor may give role and node: the pair is valid
// (ErrInvalid) and within what actor manages (ErrForbidden).
func (s *Service) checkGrant(actor Account, role Role, node string) error {
	if err := s.checkScope(role, node); err != nil {
		return err
	}
	if !s.CanManage(actor, Account{Role: role, Node: node}) {
		return fmt.Errorf("%w: a %s may not give the role %s at %q", ErrForbidden, actor.Role, role, node)
	}
	return nil
}

// CreateAccountAs creates an account as actor, who must be allowed to give
// its role and node.
func (s *Service) CreateAccountAs(ctx context.Context, actor Account, n NewAccount) (Account, error) {
	if err := s.checkGrant(actor, n.Role, n.Node); err != nil {
		return Account{}, err
	}
	return s.CreateAccount(ctx, object(actor.ID), n)
}

// managedUpdate is update with the check, on the stored account, that
// actor may manage it.
func (s *Service) managedUpdate(ctx context.Context, actor Account, action, id string, change func(*store.AccountRecord) error) (Account, error) {
	return s.update(ctx, object(actor.ID), action, id, func(r *store.AccountRecord) error {
		if t := view(*r); actor.ID == t.ID {
			return fmt.Errorf("%w: an account cannot %s itself", ErrForbidden, action)
		} else if !s.mayManage(actor, t) {
			return fmt.Errorf("accounts: %s %q: %w", action, id, store.ErrNotFound)
		}
		return change(r)
	})
}

// SetRoleAs changes an account's role and node as actor, who must manage
// the account as it is and be allowed to give the new role and node.
func (s *Service) SetRoleAs(ctx context.Context, actor Account, id string, role Role, node string) (Account, error) {
	if err := s.checkGrant(actor, role, node); err != nil {
		return Account{}, err
	}
	return s.managedUpdate(ctx, actor, "account.set_role", id, func(r *store.AccountRecord) error {
		r.Role, r.Node = string(role), node
		return nil
	})
}

// SetDisplayNameAs changes an account's display name (shown on case
// timelines and in the console) as actor; its sessions stay. The name is
// trimmed and at most 100 bytes; it may be empty (the username is shown).
func (s *Service) SetDisplayNameAs(ctx context.Context, actor Account, id, name string) (Account, error) {
	name = strings.TrimSpace(name)
	if len(name) > 100 || !utf8.ValidString(name) || strings.ContainsFunc(name, unicode.IsControl) {
		return Account{}, fmt.Errorf("%w: display name must be at most 100 bytes of text", ErrInvalid)
	}
	return s.managedUpdate(ctx, actor, "account.set_display_name", id, func(r *store.AccountRecord) error {
		r.DisplayName = name
		return nil
	})
}

// SetPasswordAs sets an account's password as actor; its sessions end.
func (s *Service) SetPasswordAs(ctx context.Context, actor Account, id, password string) (Account, error) {
	hash, err := HashPassword(password, s.cfg.Params)
	if err != nil {
		return Account{}, err
	}
	return s.managedUpdate(ctx, actor, "account.set_password", id, func(r *store.AccountRecord) error {
		r.Password = hash
		return nil
	})
}

// LockAs locks an account until until, which must be in the future, as
// actor; its sessions end.
func (s *Service) LockAs(ctx context.Context, actor Account, id string, until time.Time) (Account, error) {
	if !until.After(s.cfg.Now()) {
		return Account{}, fmt.Errorf("%w: a lock must end in the future", ErrInvalid)
	}
	return s.managedUpdate(ctx, actor, "account.lock", id, func(r *store.AccountRecord) error {
		r.LockedUntil = until.UTC()
		return nil
	})
}

// UnlockAs lifts an account's lock as actor.
func (s *Service) UnlockAs(ctx context.Context, actor Account, id string) (Account, error) {
	return s.managedUpdate(ctx, actor, "account.unlock", id, func(r *store.AccountRecord) error {
		r.LockedUntil = time.Time{}
		return nil
	})
}

// ChangePassword changes the password of the account with the id, which
// must give its current password. A wrong current password counts as a
// failed login (and may lock the account, which ends its sessions) and is
// ErrBadCredentials. On success every session of the account ends and a
// new one starts for the caller: its token is returned, for the cookie
// (SessionCookie). ip is the client's address, for the audit log.
func (s *Service) ChangePassword(ctx context.Context, id, current, next, ip string) (string, Account, error) {
	if err := CheckPassword(next); err != nil {
		return "", Account{}, err
	}
	r, err := s.cfg.Store.Account(ctx, id)
	if err != nil {
		return "", Account{}, fmt.Errorf("accounts: change password: %w", err)
	}
	now := s.cfg.Now()
	ok, err := VerifyPassword(r.Password, current)
	if err != nil {
		return "", Account{}, fmt.Errorf("accounts: change password %s: %w", id, err)
	}
	if !ok {
		n, err := s.cfg.Store.AddLoginFailure(ctx, id, now, now.Add(-s.cfg.FailureWindow))
		if err != nil {
			return "", Account{}, fmt.Errorf("accounts: change password %s: %w", id, err)
		}
		if n >= s.cfg.MaxFailures {
			if _, err := s.Lock(ctx, "system", id, now.Add(s.cfg.LockDuration)); err != nil {
				return "", Account{}, err
			}
			s.log.Warn("account locked after wrong current passwords", "account", id, "failures", n, "ip", ip)
		}
		err = s.Audit(ctx, AuditEntry{At: now, Actor: object(id), Action: "password.change_failure", Object: object(id),
			After: map[string]string{"ip": ip, "reason": "wrong current password"}})
		return "", Account{}, errors.Join(ErrBadCredentials, err)
	}
	hash, err := HashPassword(next, s.cfg.Params)
	if err != nil {
		return "", Account{}, err
	}
	a, err := s.update(ctx, object(id), "account.set_password", id, func(r *store.AccountRecord) error {
		r.Password = hash
		return nil
	})
	if err != nil {
		return "", Account{}, err
	}
	raw := make([]byte, 32)
	if _, err := rand.Read(raw); err != nil {
		return "", Account{}, fmt.Errorf("accounts: session id: %w", err)
	}
	token := base64.RawURLEncoding.EncodeToString(raw)
	audit, err := s.record(AuditEntry{At: now, Actor: object(id), Action: "session.renew", Object: object(id),
		After: map[string]string{"ip": ip, "reason": "password changed"}})
	if err != nil {
		return "", Account{}, err
	}
	if err := s.cfg.Store.CreateSession(ctx, store.SessionRecord{IDHash: hashToken(token), AccountID: id,
		CreatedAt: now, LastSeen: now}, audit); err != nil {
		return "", Account{}, fmt.Errorf("accounts: change password %s: %w", id, err)
	}
	return token, a, nil
}

// SessionCookie returns the session cookie carrying token, as LoginHandler
// sets it.
func (s *Service) SessionCookie(token string) *http.Cookie {
	return s.cookie(token, int(s.cfg.AbsoluteTimeout.Seconds()))
}

// GeneratePassword returns a random password of 80 bits: four groups of
// four characters of base32 (A-Z, 2-7), easy to read out and type.
func GeneratePassword() string {
	t := rand.Text()[:16]
	return t[0:4] + "-" + t[4:8] + "-" + t[8:12] + "-" + t[12:16]
}

// Change is one audit entry about an account, its before and after states
// reduced to the fields that differ.
type Change struct {
	Seq    int64
	At     time.Time
	Object string // what changed: "account:<id>", "notice:<id>", …
	Actor  string // "account:<id>", "system", "cli", "ip:<address>", ...
	Action string // e.g. "account.set_role"
	Fields []FieldChange
}

// FieldChange is one field of a change; Before or After is empty when the
// state had no such field.
type FieldChange struct {
	Field, Before, After string
}

// History returns the audit entries about the account with the id, newest
// first, at most limit.
func (s *Service) History(ctx context.Context, id string, limit int) ([]Change, error) {
	return s.ObjectHistory(ctx, object(id), limit)
}

// ObjectHistory returns the audit entries about any audited object, e.g.
// "notice:<id>", newest first, at most limit.
func (s *Service) ObjectHistory(ctx context.Context, obj string, limit int) ([]Change, error) {
	rs, err := s.cfg.Store.AuditLog(ctx, obj, limit)
	if err != nil {
		return nil, fmt.Errorf("accounts: history %s: %w", obj, err)
	}
	return changes(rs)
}

// RecentChanges returns at most limit audit entries of every object with a
// sequence number below before (0: the newest), newest first: the whole
// audit log, page by page.
func (s *Service) RecentChanges(ctx context.Context, before int64, limit int) ([]Change, error) {
	rs, err := s.cfg.Store.AuditBefore(ctx, before, limit)
	if err != nil {
		return nil, fmt.Errorf("accounts: audit log: %w", err)
	}
	return changes(rs)
}

// changes reduces audit records to the fields that differ.
func changes(rs []store.AuditRecord) ([]Change, error) {
	out := make([]Change, len(rs))
	for i, r := range rs {
		before, err := flatJSON(r.Before)
		if err != nil {
			return nil, fmt.Errorf("accounts: audit entry %d: before: %w", r.Seq, err)
		}
		after, err := flatJSON(r.After)
		if err != nil {
			return nil, fmt.Errorf("accounts: audit entry %d: after: %w", r.Seq, err)
		}
		out[i] = Change{Seq: r.Seq, At: r.At, Object: r.Object, Actor: r.Actor, Action: r.Action, Fields: diff(before, after)}
	}
	return out, nil
}

// flatJSON decodes a JSON object's fields as strings (other values as
// their JSON); empty input is an empty map.
func flatJSON(s string) (map[string]string, error) {
	out := map[string]string{}
	if s == "" {
		return out, nil
	}
	var m map[string]json.RawMessage
	if err := json.Unmarshal([]byte(s), &m); err != nil {
		return nil, err
	}
	for k, v := range m {
		var str string
		if err := json.Unmarshal(v, &str); err == nil {
			out[k] = str
		} else {
			out[k] = strings.TrimSpace(string(v))
		}
	}
	return out, nil
}

// diff lists the fields whose values differ, by name; the id, which the
// audit object already names, is left out.
func diff(before, after map[string]string) []FieldChange {
	var keys []string
	for k := range before {
		keys = append(keys, k)
	}
	for k := range after {
		if _, ok := before[k]; !ok {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	var out []FieldChange
	for _, k := range keys {
		if k == "id" || before[k] == after[k] {
			continue
		}
		out = append(out, FieldChange{Field: k, Before: before[k], After: after[k]})
	}
	return slices.Clip(out)
}
