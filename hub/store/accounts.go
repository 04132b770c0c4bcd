package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// ErrUsernameTaken means another account already has the username. It sits
// here rather than in store.go's block because it belongs to accounts alone.
var ErrUsernameTaken = errors.New("store: username already taken")

// AccountRecord is a stored staff account.
type AccountRecord struct {
	ID          string
	Username    string
	DisplayName string
	Role        string
	Node        string
	Password    string    // PHC string of the password hash
	LockedUntil time.Time // zero when not locked
	CreatedAt   time.Time
	UpdatedAt   time.Time
}

// SessionRecord is a stored login session, known by the hash of its id.
type SessionRecord struct {
	IDHash    string
	AccountID string
	CreatedAt time.Time
	LastSeen  time.Time
}

// AuditRecord is one entry of the audit log. Before and After are JSON, or
// empty when there is no such state (a creation has no Before).
type AuditRecord struct {
	Seq    int64
	At     time.Time
	Actor  string
	Action string
	Object string
	Before string
	After  string
}

const accountCols = `id, username, display_name, role, node, password, locked_until, created_at, updated_at`

func scanAccount(sc scanner) (AccountRecord, error) {
	var (
		a                        AccountRecord
		locked, created, updated sql.NullInt64
	)
	err := sc.Scan(&a.ID, &a.Username, &a.DisplayName, &a.Role, &a.Node, &a.Password, &locked, &created, &updated)
	a.LockedUntil, a.CreatedAt, a.UpdatedAt = fromNanos(locked), fromNanos(created), fromNanos(updated)
	return a, err
}

func insertAudit(ctx context.Context, ex interface {
	ExecContext(context.Context, string, ...any) (sql.Result, error)
}, e AuditRecord) error {
	if _, err := ex.ExecContext(ctx, `INSERT INTO audit_log (at, actor, action, object, before, after) VALUES (?, ?, ?, ?, ?, ?)`,
		nanos(e.At), e.Actor, e.Action, e.Object, e.Before, e.After); err != nil {
		return fmt.Errorf("audit %s %s: %w", e.Action, e.Object, err)
	}
	return nil
}

// withAudit runs fn and records the audit entry in one transaction, so a
// change is never stored without its audit entry nor the other way round.
func (s *SQLite) withAudit(ctx context.Context, op string, e AuditRecord, fn func(*sql.Tx) error) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: %s: begin: %w", op, err)
	}
	defer rollback(tx, &err)
	if err := fn(tx); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if err := insertAudit(ctx, tx, e); err != nil {
		return fmt.Errorf("store: %s: %w", op, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: %s: commit: %w", op, err)
	}
	return nil
}

// CreateAccount stores a new account and its audit entry. A username in use
// is ErrUsernameTaken.
func (s *SQLite) CreateAccount(ctx context.Context, a AccountRecord, audit AuditRecord) error {
	return s.withAudit(ctx, "create account "+a.ID, audit, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO accounts (`+accountCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.Username, a.DisplayName, a.Role, a.Node, a.Password, nanos(a.LockedUntil), nanos(a.CreatedAt), nanos(a.UpdatedAt))
		if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed: accounts.username") {
			return fmt.Errorf("%q: %w", a.Username, ErrUsernameTaken)
		}
		return err
	})
}

// UpdateAccount replaces the stored account's display name, role, node,
// password, lock and update time, with its audit entry. When the account is
// locked (LockedUntil after UpdatedAt) or its role, node or password changes,
// its sessions are deleted too.
func (s *SQLite) UpdateAccount(ctx context.Context, a AccountRecord, audit AuditRecord) error {
	return s.withAudit(ctx, "update account "+a.ID, audit, func(tx *sql.Tx) error {
		old, err := scanAccount(tx.QueryRowContext(ctx, `SELECT `+accountCols+` FROM accounts WHERE id = ?`, a.ID))
		if errors.Is(err, sql.ErrNoRows) {
			return ErrNotFound
		}
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE accounts SET display_name = ?, role = ?, node = ?, password = ?,
			locked_until = ?, updated_at = ? WHERE id = ?`,
			a.DisplayName, a.Role, a.Node, a.Password, nanos(a.LockedUntil), nanos(a.UpdatedAt), a.ID); err != nil {
			return err
		}
		if a.LockedUntil.After(a.UpdatedAt) || old.Role != a.Role || old.Node != a.Node || old.Password != a.Password {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = ?`, a.ID); err != nil {
				return err
			}
		}
		if a.LockedUntil.IsZero() {
			if _, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE account_id = ?`, a.ID); err != nil {
				return err
			}
		}
		return nil
	})
}

// Account returns the account with the id, or ErrNotFound.
func (s *SQLite) Account(ctx context.Context, id string) (AccountRecord, error) {
	return s.queryAccount(ctx, "id", id)
}

// AccountByUsername returns the account with the username, or ErrNotFound.
func (s *SQLite) AccountByUsername(ctx context.Context, username string) (AccountRecord, error) {
	return s.queryAccount(ctx, "username", username)
}

func (s *SQLite) queryAccount(ctx context.Context, col, v string) (AccountRecord, error) {
	return queryOne(ctx, s.db, fmt.Sprintf("account %s %q", col, v), scanAccount,
		`SELECT `+accountCols+` FROM accounts WHERE `+col+` = ?`, v)
}

// Accounts returns every account ordered by username.
func (s *SQLite) Accounts(ctx context.Context) ([]AccountRecord, error) {
	return queryAll(ctx, s.db, "list accounts", scanAccount, `SELECT `+accountCols+` FROM accounts ORDER BY username`)
}

// AddLoginFailure records a failed login of the account at t and returns how
// many failures it has at or after since, this one included.
func (s *SQLite) AddLoginFailure(ctx context.Context, accountID string, t, since time.Time) (int, error) {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO login_failures (account_id, at) VALUES (?, ?)`,
		accountID, t.UnixNano()); err != nil {
		return 0, fmt.Errorf("store: login failure %s: %w", accountID, err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM login_failures WHERE account_id = ? AND at >= ?`,
		accountID, since.UnixNano()).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: login failures %s: %w", accountID, err)
	}
	return n, nil
}

// CreateSession stores a new session and the audit entry of the login.
func (s *SQLite) CreateSession(ctx context.Context, r SessionRecord, audit AuditRecord) error {
	return s.withAudit(ctx, "create session", audit, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM login_failures WHERE account_id = ?`, r.AccountID); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO sessions (id_hash, account_id, created_at, last_seen) VALUES (?, ?, ?, ?)`,
			r.IDHash, r.AccountID, nanos(r.CreatedAt), nanos(r.LastSeen))
		return err
	})
}

// Session returns the session with the id hash, or ErrNotFound.
func (s *SQLite) Session(ctx context.Context, idHash string) (SessionRecord, error) {
	var (
		r             SessionRecord
		created, seen sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, `SELECT id_hash, account_id, created_at, last_seen FROM sessions WHERE id_hash = ?`,
		idHash).Scan(&r.IDHash, &r.AccountID, &created, &seen)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("store: session: %w", ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("store: session: %w", err)
	}
	r.CreatedAt, r.LastSeen = fromNanos(created), fromNanos(seen)
	return r, nil
}

// TouchSession sets the session's last use to t.
func (s *SQLite) TouchSession(ctx context.Context, idHash string, t time.Time) error {
	if _, err := s.db.ExecContext(ctx, `UPDATE sessions SET last_seen = ? WHERE id_hash = ?`, t.UnixNano(), idHash); err != nil {
		return fmt.Errorf("store: touch session: %w", err)
	}
	return nil
}

// DeleteSession deletes the session; deleting a missing session is no error.
func (s *SQLite) DeleteSession(ctx context.Context, idHash string) error {
	if _, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE id_hash = ?`, idHash); err != nil {
		return fmt.Errorf("store: delete session: %w", err)
	}
	return nil
}

// DeleteSessionsBefore deletes the sessions last used before idle or created
// before absolute, and returns how many it deleted.
func (s *SQLite) DeleteSessionsBefore(ctx context.Context, idle, absolute time.Time) (int64, error) {
	res, err := s.db.ExecContext(ctx, `DELETE FROM sessions WHERE last_seen < ? OR created_at < ?`,
		idle.UnixNano(), absolute.UnixNano())
	if err != nil {
		return 0, fmt.Errorf("store: expire sessions: %w", err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return 0, fmt.Errorf("store: expire sessions: %w", err)
	}
	return n, nil
}

// InsertAudit records an audit entry that goes with no stored change (a
// failed login, say).
func (s *SQLite) InsertAudit(ctx context.Context, e AuditRecord) error {
	if err := insertAudit(ctx, s.db, e); err != nil {
		return fmt.Errorf("store: %w", err)
	}
	return nil
}

// AuditBefore returns at most limit audit entries of every object with a
// sequence number below before (0: from the newest), newest first.
func (s *SQLite) AuditBefore(ctx context.Context, before int64, limit int) ([]AuditRecord, error) {
	if before <= 0 {
		return s.AuditLog(ctx, "", limit)
	}
	return s.auditQuery(ctx, `SELECT seq, at, actor, action, object, before, after FROM audit_log
		WHERE seq < ? ORDER BY seq DESC LIMIT ?`, before, limit)
}

// AuditLog returns the audit entries about object (every entry when object is
// empty), newest first, at most limit.
func (s *SQLite) AuditLog(ctx context.Context, object string, limit int) ([]AuditRecord, error) {
	// Two statements, not "? = '' OR object = ?": with the OR the planner
	// cannot use audit_log_object and reads the whole log for one object.
	q, args := `SELECT seq, at, actor, action, object, before, after FROM audit_log
		ORDER BY seq DESC LIMIT ?`, []any{limit}
	if object != "" {
		q, args = `SELECT seq, at, actor, action, object, before, after FROM audit_log
		WHERE object = ? ORDER BY seq DESC LIMIT ?`, []any{object, limit}
	}
	return s.auditQuery(ctx, q, args...)
}

// auditQuery runs a query of audit_log rows (seq, at, actor, action,
// object, before, after).
func (s *SQLite) auditQuery(ctx context.Context, q string, args ...any) ([]AuditRecord, error) {
	rows, err := s.db.QueryContext(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	defer rows.Close()
	var out []AuditRecord
	for rows.Next() {
		var (
			e  AuditRecord
			at sql.NullInt64
		)
		if err := rows.Scan(&e.Seq, &at, &e.Actor, &e.Action, &e.Object, &e.Before, &e.After); err != nil {
			return nil, fmt.Errorf("store: audit log: %w", err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: audit log: %w", err)
	}
	return out, nil
}
