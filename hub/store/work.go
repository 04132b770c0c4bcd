package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// WorkRecord is an officer's work record on a case: a note and photos.
type WorkRecord struct {
	ID     string
	CaseID string
	At     time.Time
	Actor  string
	Note   string
	Photos []PhotoRef // filled by CaseWork
}

// PhotoRef names a stored photo of a case.
type PhotoRef struct {
	SHA256        string
	Width, Height int
}

// Photo is a stored photo: a JPEG already resized and stripped of metadata.
type Photo struct {
	PhotoRef
	JPEG []byte
}

// AddWork stores a work record and its photos in one transaction.
func (s *SQLite) AddWork(ctx context.Context, w WorkRecord, photos []Photo) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: add work on case %s: begin: %w", w.CaseID, err)
	}
	defer rollback(tx, &err)
	if _, err := tx.ExecContext(ctx, `INSERT INTO case_work (id, case_id, at, actor, note) VALUES (?, ?, ?, ?, ?)`,
		w.ID, w.CaseID, nanos(w.At), w.Actor, w.Note); err != nil {
		return fmt.Errorf("store: add work on case %s: %w", w.CaseID, err)
	}
	for _, p := range photos {
		if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO case_photos (work_id, case_id, sha256, width, height, jpeg)
			VALUES (?, ?, ?, ?, ?, ?)`, w.ID, w.CaseID, p.SHA256, p.Width, p.Height, p.JPEG); err != nil {
			return fmt.Errorf("store: add photo to case %s: %w", w.CaseID, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: add work on case %s: commit: %w", w.CaseID, err)
	}
	return nil
}

// CaseWork returns a case's work records, oldest first, with their photos.
func (s *SQLite) CaseWork(ctx context.Context, caseID string) ([]WorkRecord, error) {
	ws, err := queryAll(ctx, s.db, "case work", func(sc scanner) (WorkRecord, error) {
		var (
			w  WorkRecord
			at sql.NullInt64
		)
		err := sc.Scan(&w.ID, &w.CaseID, &at, &w.Actor, &w.Note)
		w.At = fromNanos(at)
		return w, err
	}, `SELECT id, case_id, at, actor, note FROM case_work WHERE case_id = ? ORDER BY at, id`, caseID)
	if err != nil || len(ws) == 0 {
		return ws, err
	}
	type ref struct {
		work string
		PhotoRef
	}
	refs, err := queryAll(ctx, s.db, "case photos", func(sc scanner) (ref, error) {
		var r ref
		err := sc.Scan(&r.work, &r.SHA256, &r.Width, &r.Height)
		return r, err
	}, `SELECT work_id, sha256, width, height FROM case_photos WHERE case_id = ? ORDER BY rowid`, caseID)
	if err != nil {
		return nil, err
	}
	for i := range ws {
		for _, r := range refs {
			if r.work == ws[i].ID {
				ws[i].Photos = append(ws[i].Photos, r.PhotoRef)
			}
		}
	}
	return ws, nil
}

// CasePhoto returns a photo of a case by its SHA-256.
func (s *SQLite) CasePhoto(ctx context.Context, caseID, sha string) (Photo, error) {
	return queryOne(ctx, s.db, "case photo "+sha, func(sc scanner) (Photo, error) {
		var p Photo
		err := sc.Scan(&p.SHA256, &p.Width, &p.Height, &p.JPEG)
		return p, err
	}, `SELECT sha256, width, height, jpeg FROM case_photos WHERE case_id = ? AND sha256 = ? LIMIT 1`, caseID, sha)
}

// Checkin is an officer's visit or patrol at a community workstation.
type Checkin struct {
	ID        string
	Officer   string
	Kiosk     string
	Community string
	Slot      int64 // the check-in code's minute
	At        time.Time
	Kind      string // visit or patrol
	Note      string
}

// AddCheckin stores a check-in; the same officer, kiosk and code minute
// again is a duplicate and returns the stored one.
func (s *SQLite) AddCheckin(ctx context.Context, c Checkin) (stored Checkin, duplicate bool, err error) {
	res, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO checkins (id, officer, kiosk, community, slot, at, kind, note)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, c.ID, c.Officer, c.Kiosk, c.Community, c.Slot, nanos(c.At), c.Kind, c.Note)
	if err != nil {
		return c, false, fmt.Errorf("store: add check-in: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return c, false, fmt.Errorf("store: add check-in: %w", err)
	} else if n == 1 {
		return c, false, nil
	}
	stored, err = queryOne(ctx, s.db, "check-in", scanCheckin, `SELECT `+checkinCols+` FROM checkins
		WHERE officer = ? AND kiosk = ? AND slot = ?`, c.Officer, c.Kiosk, c.Slot)
	return stored, true, err
}

const checkinCols = `id, officer, kiosk, community, slot, at, kind, note`

func scanCheckin(sc scanner) (Checkin, error) {
	var (
		c  Checkin
		at sql.NullInt64
	)
	err := sc.Scan(&c.ID, &c.Officer, &c.Kiosk, &c.Community, &c.Slot, &at, &c.Kind, &c.Note)
	c.At = fromNanos(at)
	return c, err
}

// CheckinFilter selects check-ins; empty fields do not filter.
type CheckinFilter struct {
	Officer     string
	Communities []string // any of them
	Since       time.Time
	Limit       int // default and maximum MaxCasePage
}

// Checkins returns the newest check-ins the filter selects.
func (s *SQLite) Checkins(ctx context.Context, f CheckinFilter) ([]Checkin, error) {
	limit := f.Limit
	if limit <= 0 || limit > MaxCasePage {
		limit = MaxCasePage
	}
	q := `SELECT ` + checkinCols + ` FROM checkins`
	var args []any
	var where []string
	if f.Officer != "" {
		where = append(where, "officer = ?")
		args = append(args, f.Officer)
	}
	if len(f.Communities) > 0 {
		where = append(where, "community IN (?"+strings.Repeat(", ?", len(f.Communities)-1)+")")
		for _, c := range f.Communities {
			args = append(args, c)
		}
	}
	if !f.Since.IsZero() {
		where = append(where, "at >= ?")
		args = append(args, f.Since.UnixNano())
	}
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += " ORDER BY at DESC LIMIT ?"
	return queryAll(ctx, s.db, "check-ins", scanCheckin, q, append(args, limit)...)
}

// KioskRatingOutcome returns what became of a kiosk's rating record, if it
// was seen before.
func (s *SQLite) KioskRatingOutcome(ctx context.Context, recordID string) (outcome string, seen bool, err error) {
	outcome, err = queryOne(ctx, s.db, "kiosk rating "+recordID, func(sc scanner) (string, error) {
		var o string
		err := sc.Scan(&o)
		return o, err
	}, `SELECT outcome FROM kiosk_ratings WHERE record_id = ?`, recordID)
	if errors.Is(err, ErrNotFound) {
		return "", false, nil
	}
	return outcome, err == nil, err
}

// RecordKioskRating remembers a kiosk's rating record and its outcome; a
// record seen before keeps its first outcome.
func (s *SQLite) RecordKioskRating(ctx context.Context, recordID, kiosk, ticket, rating, outcome string, at time.Time) error {
	if _, err := s.db.ExecContext(ctx, `INSERT OR IGNORE INTO kiosk_ratings (record_id, kiosk, ticket, rating, at, outcome)
		VALUES (?, ?, ?, ?, ?, ?)`, recordID, kiosk, ticket, rating, nanos(at), outcome); err != nil {
		return fmt.Errorf("store: record kiosk rating %s: %w", recordID, err)
	}
	return nil
}

// KioskCases returns the cases filed at a kiosk, most recently updated
// first, at most limit.
func (s *SQLite) KioskCases(ctx context.Context, kiosk string, limit int) ([]CaseRecord, error) {
	return queryAll(ctx, s.db, "kiosk cases", scanCase, `SELECT `+caseCols+` FROM cases
		WHERE kiosk = ? AND kiosk != '' ORDER BY updated_at DESC LIMIT ?`, kiosk, limit)
}

// Answer is the latest answer (答复) given on a case.
type Answer struct {
	Text string
	At   time.Time
}

// LatestAnswer returns the note of a case's latest answer event; a case
// never answered has a zero Answer.
func (s *SQLite) LatestAnswer(ctx context.Context, caseID string) (Answer, error) {
	a, err := queryOne(ctx, s.db, "case answer", func(sc scanner) (Answer, error) {
		var (
			a  Answer
			at sql.NullInt64
		)
		err := sc.Scan(&a.Text, &at)
		a.At = fromNanos(at)
		return a, err
	}, `SELECT note, at FROM case_events WHERE case_id = ? AND action = 'answer' ORDER BY seq DESC LIMIT 1`, caseID)
	if errors.Is(err, ErrNotFound) {
		return Answer{}, nil
	}
	return a, err
}

// NextBoardVersion returns a new version for a kiosk's case board, above
// every earlier one: max(previous+1, now in ms).
func (s *SQLite) NextBoardVersion(ctx context.Context, kiosk string, now time.Time) (int64, error) {
	var v int64
	err := s.db.QueryRowContext(ctx, `INSERT INTO case_boards (kiosk, version) VALUES (?, ?)
		ON CONFLICT (kiosk) DO UPDATE SET version = max(version + 1, excluded.version)
		RETURNING version`, kiosk, now.UnixMilli()).Scan(&v)
	if err != nil {
		return 0, fmt.Errorf("store: case board version of %s: %w", kiosk, err)
	}
	return v, nil
}
