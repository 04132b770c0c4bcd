package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/shequ/shequ/protocol"
)

// CommandRecord is a remote command sent to a kiosk and, once the kiosk
// answered, its result.
type CommandRecord struct {
	ID          string
	Kiosk       string
	Action      string
	RequestedBy string // the audit log's actor: account:{id}, token:{id}, admin
	RequestedAt time.Time
	ExpiresAt   time.Time
	Status      string // "sent", then "ok", "refused" or "failed"
	Reason      string
	FinishedAt  time.Time // zero while sent
}

// CommandSent is the status of a command the kiosk has not answered yet.
const CommandSent = "sent"

// ScreenshotRecord is the latest screenshot of a kiosk.
type ScreenshotRecord struct {
	Kiosk       string
	Command     string
	ContentType string
	Width       int
	Height      int
	TakenAt     time.Time
	ReceivedAt  time.Time
	Data        []byte
}

// InsertCommand stores a command about to be sent.
func (s *SQLite) InsertCommand(ctx context.Context, c CommandRecord) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO commands (id, kiosk, action, requested_by, requested_at, expires_at, status)
		VALUES (?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Kiosk, c.Action, c.RequestedBy, nanos(c.RequestedAt), nanos(c.ExpiresAt), CommandSent)
	if err != nil {
		return fmt.Errorf("store: insert command %s: %w", c.ID, err)
	}
	return nil
}

const commandCols = `id, kiosk, action, requested_by, requested_at, expires_at, status, reason, finished_at`

func scanCommand(sc scanner) (CommandRecord, error) {
	var c CommandRecord
	var req, exp, fin sql.NullInt64
	err := sc.Scan(&c.ID, &c.Kiosk, &c.Action, &c.RequestedBy, &req, &exp, &c.Status, &c.Reason, &fin)
	c.RequestedAt, c.ExpiresAt, c.FinishedAt = fromNanos(req), fromNanos(exp), fromNanos(fin)
	return c, err
}

// FinishCommand records the result (record id resultID) of a command of
// the result's kiosk, with its screenshot if any, in one transaction. A
// result already recorded under resultID is a duplicate; a command this
// kiosk was never sent is ErrNotFound. It returns the command as stored.
func (s *SQLite) FinishCommand(ctx context.Context, resultID string, r protocol.CommandResult, at time.Time) (c CommandRecord, duplicate bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return c, false, fmt.Errorf("store: finish command: begin: %w", err)
	}
	defer rollback(tx, &err)
	var prev sql.NullString
	c, err = scanCommand(tx.QueryRowContext(ctx, `SELECT `+commandCols+` FROM commands WHERE id = ? AND kiosk = ? AND action = ?`,
		r.Command, r.Kiosk, string(r.Action)))
	if errors.Is(err, sql.ErrNoRows) {
		return c, false, fmt.Errorf("store: command %s of %s: %w", r.Command, r.Kiosk, ErrNotFound)
	}
	if err != nil {
		return c, false, fmt.Errorf("store: finish command %s: %w", r.Command, err)
	}
	if err := tx.QueryRowContext(ctx, `SELECT result_id FROM commands WHERE id = ?`, r.Command).Scan(&prev); err != nil {
		return c, false, fmt.Errorf("store: finish command %s: %w", r.Command, err)
	}
	if prev.Valid {
		// A resent result (same record id), or a second result of one
		// command, which an agent never sends: keep the first.
		return c, true, tx.Commit()
	}
	if _, err := tx.ExecContext(ctx, `UPDATE commands SET status = ?, reason = ?, result_id = ?, finished_at = ? WHERE id = ?`,
		string(r.Status), r.Reason, resultID, nanos(at), r.Command); err != nil {
		return c, false, fmt.Errorf("store: finish command %s: %w", r.Command, err)
	}
	if sh := r.Screenshot; sh != nil {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kiosk_screenshots (kiosk, command, content_type, width, height, taken_at, received_at, data)
			VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)
			ON CONFLICT (kiosk) DO UPDATE SET command = ?2, content_type = ?3, width = ?4, height = ?5, taken_at = ?6, received_at = ?7, data = ?8`,
			r.Kiosk, r.Command, sh.Type, sh.Width, sh.Height, nanos(sh.TakenAt), nanos(at), sh.Data); err != nil {
			return c, false, fmt.Errorf("store: screenshot of %s: %w", r.Kiosk, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return c, false, fmt.Errorf("store: finish command %s: commit: %w", r.Command, err)
	}
	c.Status, c.Reason, c.FinishedAt = string(r.Status), r.Reason, at
	return c, false, nil
}

// KioskCommands returns the newest commands sent to a kiosk, newest first.
func (s *SQLite) KioskCommands(ctx context.Context, kiosk string, limit int) ([]CommandRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+commandCols+` FROM commands WHERE kiosk = ?
		ORDER BY requested_at DESC, id DESC LIMIT ?`, kiosk, limit)
	if err != nil {
		return nil, fmt.Errorf("store: commands of %s: %w", kiosk, err)
	}
	defer rows.Close()
	var out []CommandRecord
	for rows.Next() {
		c, err := scanCommand(rows)
		if err != nil {
			return nil, fmt.Errorf("store: commands of %s: %w", kiosk, err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: commands of %s: %w", kiosk, err)
	}
	return out, nil
}

// Screenshot returns the latest screenshot of a kiosk (ErrNotFound if it
// has none).
func (s *SQLite) Screenshot(ctx context.Context, kiosk string) (ScreenshotRecord, error) {
	var r ScreenshotRecord
	var taken, received sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT kiosk, command, content_type, width, height, taken_at, received_at, data
		FROM kiosk_screenshots WHERE kiosk = ?`, kiosk).Scan(&r.Kiosk, &r.Command, &r.ContentType, &r.Width, &r.Height, &taken, &received, &r.Data)
	if errors.Is(err, sql.ErrNoRows) {
		return r, fmt.Errorf("store: screenshot of %s: %w", kiosk, ErrNotFound)
	}
	if err != nil {
		return r, fmt.Errorf("store: screenshot of %s: %w", kiosk, err)
	}
	r.TakenAt, r.ReceivedAt = fromNanos(taken), fromNanos(received)
	return r, nil
}
