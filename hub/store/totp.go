package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// ErrTOTPStep means a one-time code's step is not after the last one
// accepted for the account (a replay), or the account has no TOTP in force.
var ErrTOTPStep = errors.New("store: totp step already used")

// TOTPRecord is an account's two-step verification secret.
type TOTPRecord struct {
	AccountID string
	Secret    []byte    // sealed by the caller; the store never sees it in the clear
	EnabledAt time.Time // zero while offered for enrolment only
	LastStep  int64     // the last step accepted, 0 for none
	CreatedAt time.Time
}

// Enabled reports whether the secret is in force.
func (r TOTPRecord) Enabled() bool { return !r.EnabledAt.IsZero() }

func scanTOTP(sc scanner) (TOTPRecord, error) {
	var (
		r                TOTPRecord
		enabled, created sql.NullInt64
	)
	err := sc.Scan(&r.AccountID, &r.Secret, &enabled, &r.LastStep, &created)
	r.EnabledAt, r.CreatedAt = fromNanos(enabled), fromNanos(created)
	return r, err
}

// TOTP returns the account's TOTP record, or ErrNotFound.
func (s *SQLite) TOTP(ctx context.Context, accountID string) (TOTPRecord, error) {
	return queryOne(ctx, s.db, "totp of "+accountID, scanTOTP,
		`SELECT account_id, secret, enabled_at, last_step, created_at FROM totp WHERE account_id = ?`, accountID)
}

// OfferTOTP stores a secret offered for enrolment (not in force), replacing
// an earlier offer. It refuses, with ErrTOTPStep, when the account has TOTP
// in force already.
func (s *SQLite) OfferTOTP(ctx context.Context, r TOTPRecord) error {
	res, err := s.db.ExecContext(ctx, `INSERT INTO totp (account_id, secret, enabled_at, last_step, created_at)
		VALUES (?, ?, NULL, 0, ?)
		ON CONFLICT (account_id) DO UPDATE SET secret = excluded.secret, last_step = 0, created_at = excluded.created_at
		WHERE enabled_at IS NULL`, r.AccountID, r.Secret, nanos(r.CreatedAt))
	if err != nil {
		return fmt.Errorf("store: offer totp %s: %w", r.AccountID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: offer totp %s: %w", r.AccountID, err)
	} else if n == 0 {
		return fmt.Errorf("store: offer totp %s: already enabled: %w", r.AccountID, ErrTOTPStep)
	}
	return nil
}

// EnableTOTP puts the offered secret in force at t with step as the last
// step accepted, replaces the account's recovery codes by codeHashes, and
// records the audit entry, in one transaction. Without an offer (or with
// TOTP in force already) it is ErrNotFound.
func (s *SQLite) EnableTOTP(ctx context.Context, accountID string, t time.Time, step int64, codeHashes []string, audit AuditRecord) error {
	return s.withAudit(ctx, "enable totp "+accountID, audit, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE totp SET enabled_at = ?, last_step = ? WHERE account_id = ? AND enabled_at IS NULL`,
			nanos(t), step, accountID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil {
			return err
		} else if n == 0 {
			return ErrNotFound
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM totp_recovery WHERE account_id = ?`, accountID); err != nil {
			return err
		}
		for _, h := range codeHashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO totp_recovery (account_id, code_hash) VALUES (?, ?)`, accountID, h); err != nil {
				return err
			}
		}
		return nil
	})
}

// UseTOTPStep records step as the last step accepted for the account, if
// it is after the one stored and TOTP is in force; otherwise it is
// ErrTOTPStep. The check and the write are one statement, so two requests
// cannot both use a code.
func (s *SQLite) UseTOTPStep(ctx context.Context, accountID string, step int64) error {
	res, err := s.db.ExecContext(ctx, `UPDATE totp SET last_step = ? WHERE account_id = ? AND last_step < ? AND enabled_at IS NOT NULL`,
		step, accountID, step)
	if err != nil {
		return fmt.Errorf("store: use totp step %s: %w", accountID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: use totp step %s: %w", accountID, err)
	} else if n == 0 {
		return fmt.Errorf("store: use totp step %s: %w", accountID, ErrTOTPStep)
	}
	return nil
}

// UseRecoveryCode marks the account's unused recovery code with the hash
// used at t. A code that is unknown or used already is ErrNotFound.
func (s *SQLite) UseRecoveryCode(ctx context.Context, accountID, codeHash string, t time.Time) error {
	res, err := s.db.ExecContext(ctx, `UPDATE totp_recovery SET used_at = ? WHERE account_id = ? AND code_hash = ? AND used_at IS NULL`,
		nanos(t), accountID, codeHash)
	if err != nil {
		return fmt.Errorf("store: use recovery code %s: %w", accountID, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return fmt.Errorf("store: use recovery code %s: %w", accountID, err)
	} else if n == 0 {
		return fmt.Errorf("store: use recovery code %s: %w", accountID, ErrNotFound)
	}
	return nil
}

// RecoveryCodesLeft returns how many unused recovery codes the account has.
func (s *SQLite) RecoveryCodesLeft(ctx context.Context, accountID string) (int, error) {
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM totp_recovery WHERE account_id = ? AND used_at IS NULL`,
		accountID).Scan(&n); err != nil {
		return 0, fmt.Errorf("store: recovery codes %s: %w", accountID, err)
	}
	return n, nil
}

// DeleteTOTP removes the account's TOTP secret (in force or offered) and
// recovery codes with the audit entry, in one transaction; with
// endSessions the account's sessions end too. Deleting what is not there
// is no error.
func (s *SQLite) DeleteTOTP(ctx context.Context, accountID string, endSessions bool, audit AuditRecord) error {
	return s.withAudit(ctx, "delete totp "+accountID, audit, func(tx *sql.Tx) error {
		for _, q := range []string{`DELETE FROM totp WHERE account_id = ?`, `DELETE FROM totp_recovery WHERE account_id = ?`} {
			if _, err := tx.ExecContext(ctx, q, accountID); err != nil {
				return err
			}
		}
		if endSessions {
			if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE account_id = ?`, accountID); err != nil {
				return err
			}
		}
		return nil
	})
}
