// Package accounts is the hub's staff accounts: roles scoped by the org tree,
// argon2id password hashes, login sessions in SQLite behind a secure cookie,
// CSRF tokens, lockout after repeated failed logins, and the audit log every
// change here writes to.
//
// Every account has one role and one org node, its scope: it sees the node
// and everything under it (CanSee). Squads (中队) are not in the org tree
// yet, so a squad is modelled as the street it serves: squad leaders and
// officers hold a street node. Partners (residents' committee, owners'
// committee, property company) hold a community; district admins a
// district; the bureau admin the city; technicians any node (they work on
// the fleet only, which later handlers enforce by role).
//
// Sessions: the cookie carries a random 32-byte id; the database keeps only
// its SHA-256. A session ends after 30 minutes idle or 12 hours in all. Each
// session has a CSRF token, an HMAC of its id under the hub's secret, which
// every state-changing request must carry in the X-CSRF-Token header or the
// csrf form field. Five failed logins of an account within 15 minutes lock
// it for 15 minutes; an optional per-IP limiter bounds guessing across
// accounts.
//
// Two-step verification (twofactor.go): an account may add time-based
// one-time codes (hub/totp); with it on, a right password leads to a
// pending login that only a code (or a recovery code) turns into a
// session, and wrong codes count toward the same lockout. Config.Require2FA
// makes it compulsory for roles.
package accounts

import (
	"errors"
	"slices"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/protocol"
)

// Errors returned (wrapped) by this package.
var (
	// ErrBadCredentials means the username or password is wrong, or the
	// account is locked (the two are not told apart to the client).
	ErrBadCredentials = errors.New("accounts: wrong username or password")
	// ErrLocked means the account is locked after repeated failed logins.
	// It is returned wrapped together with ErrBadCredentials.
	ErrLocked = errors.New("accounts: account locked")
	// ErrRateLimited means the client made too many login attempts.
	ErrRateLimited = errors.New("accounts: too many login attempts")
	// ErrNoSession means the request has no valid, unexpired session.
	ErrNoSession = errors.New("accounts: no valid session")
	// ErrWeakPassword means a new password is too short or too long.
	ErrWeakPassword = errors.New("accounts: password does not meet the rules")
	// ErrBadHash means a stored password hash is malformed.
	ErrBadHash = errors.New("accounts: malformed password hash")
	// ErrInvalid means an account's fields break a rule (role, node level,
	// username).
	ErrInvalid = errors.New("accounts: invalid account")
	// ErrForbidden means the actor may not make the change.
	ErrForbidden = errors.New("accounts: forbidden")
)

// Role is what an account may do.
type Role string

// The roles.
const (
	RoleBureauAdmin   Role = "bureau_admin"
	RoleDistrictAdmin Role = "district_admin"
	RoleSquadLeader   Role = "squad_leader"
	RoleOfficer       Role = "officer"
	RolePartner       Role = "partner"
	RoleTechnician    Role = "technician"
)

// Roles lists every role, most powerful first.
var Roles = []Role{RoleBureauAdmin, RoleDistrictAdmin, RoleSquadLeader, RoleOfficer, RolePartner, RoleTechnician}

// levelOf is the org level each role's node must have; technicians may hold
// any level and are absent.
var levelOf = map[Role]protocol.Level{
	RoleBureauAdmin:   protocol.LevelCity,
	RoleDistrictAdmin: protocol.LevelDistrict,
	RoleSquadLeader:   protocol.LevelStreet,
	RoleOfficer:       protocol.LevelStreet,
	RolePartner:       protocol.LevelCommunity,
}

// Valid reports whether r is one of Roles.
func (r Role) Valid() bool { return slices.Contains(Roles, r) }

// Account is a staff account as the rest of the hub sees it (no password).
type Account struct {
	ID          string `json:"id"`
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        Role   `json:"role"`
	Node        string `json:"node"`
	LockedUntil string `json:"locked_until,omitempty"` // RFC 3339, empty when not locked
}

// CanSee reports whether an account scoped at scope may see node: node is
// scope or lies under it in the tree. Unknown nodes are seen by nobody.
func CanSee(tree *orgtree.Tree, scope, node string) bool {
	for n := tree.Node(node); n != nil; n = n.Parent() {
		if n.ID == scope {
			return true
		}
	}
	return false
}

// Principal is an account together with the tree it is scoped in; it
// answers the scope questions other packages ask through their own small
// interfaces (CanSee, Role, ID).
type Principal struct {
	acct Account
	tree *orgtree.Tree
}

// NewPrincipal returns the principal of the account in the tree.
func NewPrincipal(tree *orgtree.Tree, a Account) Principal { return Principal{acct: a, tree: tree} }

// CanSee reports whether the account's scope covers node.
func (p Principal) CanSee(node string) bool { return CanSee(p.tree, p.acct.Node, node) }

// Role returns the account's role.
func (p Principal) Role() string { return string(p.acct.Role) }

// ID returns the account's id.
func (p Principal) ID() string { return p.acct.ID }

// Node returns the account's scope node.
func (p Principal) Node() string { return p.acct.Node }

// Account returns the account.
func (p Principal) Account() Account { return p.acct }
