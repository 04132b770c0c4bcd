package store

import (
	"context"
	"database/sql"
	"fmt"
	"time"
)

// APITokenRecord is a stored personal API token, known by the hash of the
// token; the token itself is never stored.
type APITokenRecord struct {
	ID        string
	AccountID string
	Name      string
	Hash      string // hex SHA-256 of the token
	CreatedAt time.Time
	ExpiresAt time.Time
	LastUsed  time.Time // zero while never used
	RevokedAt time.Time // zero while not revoked
}

const apiTokenCols = `id, account_id, name, hash, created_at, expires_at, last_used, revoked_at`

func scanAPIToken(sc scanner) (APITokenRecord, error) {
	var (
		r                             APITokenRecord
		created, expires, used, revkd sql.NullInt64
	)
	err := sc.Scan(&r.ID, &r.AccountID, &r.Name, &r.Hash, &created, &expires, &used, &revkd)
	r.CreatedAt, r.ExpiresAt, r.LastUsed, r.RevokedAt = fromNanos(created), fromNanos(expires), fromNanos(used), fromNanos(revkd)
	return r, err
}

// CreateAPIToken stores a new API token with its audit entry, in one
// transaction.
func (s *SQLite) CreateAPIToken(ctx context.Context, r APITokenRecord, audit AuditRecord) error {
	return s.withAudit(ctx, "create api token "+r.ID, audit, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO api_tokens (`+apiTokenCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
			r.ID, r.AccountID, r.Name, r.Hash, nanos(r.CreatedAt), nanos(r.ExpiresAt), nanos(r.LastUsed), nanos(r.RevokedAt))
		return err
	})
}

// APITokenByHash returns the token with the hash, or ErrNotFound: one
// lookup in the index of the hash column.
func (s *SQLite) APITokenByHash(ctx context.Context, hash string) (APITokenRecord, error) {
	return queryOne(ctx, s.db, "api token by hash", scanAPIToken,
		`SELECT `+apiTokenCols+` FROM api_tokens WHERE hash = ?`, hash)
}

// APIToken returns the token with the id, or ErrNotFound.
func (s *SQLite) APIToken(ctx context.Context, id string) (APITokenRecord, error) {
	return queryOne(ctx, s.db, "api token "+id, scanAPIToken,
		`SELECT `+apiTokenCols+` FROM api_tokens WHERE id = ?`, id)
}

// APITokens returns the account's tokens, newest first.
func (s *SQLite) APITokens(ctx context.Context, accountID string) ([]APITokenRecord, error) {
	return queryAll(ctx, s.db, "api tokens of "+accountID, scanAPIToken,
		`SELECT `+apiTokenCols+` FROM api_tokens WHERE account_id = ? ORDER BY created_at DESC, id`, accountID)
}

// RevokeAPIToken marks the account's token revoked at t and records the
// audit entry, in one transaction. A token that is unknown, of another
// account or revoked already is ErrNotFound.
func (s *SQLite) RevokeAPIToken(ctx context.Context, accountID, id string, t time.Time, audit AuditRecord) error {
	return s.withAudit(ctx, "revoke api token "+id, audit, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE id = ? AND account_id = ? AND revoked_at IS NULL`,
			nanos(t), id, accountID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		return nil
	})
}

// TouchAPIToken sets the token's last use to t unless it was last used
// after t-every, and reports whether it wrote. The check and the write are
// one statement, so concurrent requests write at most once per interval.
func (s *SQLite) TouchAPIToken(ctx context.Context, id string, t time.Time, every time.Duration) (bool, error) {
	res, err := s.db.ExecContext(ctx, `UPDATE api_tokens SET last_used = ? WHERE id = ? AND (last_used IS NULL OR last_used <= ?)`,
		t.UnixNano(), id, t.Add(-every).UnixNano())
	if err != nil {
		return false, fmt.Errorf("store: touch api token %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: touch api token %s: %w", id, err)
	}
	return n > 0, nil
}
