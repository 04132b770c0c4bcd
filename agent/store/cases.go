package store

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/shequ/shequ/protocol"
)

// Case errors, returned wrapped.
var (
	// ErrNoCase means the board held has no case with that ticket or
	// query code (or no board is held yet).
	ErrNoCase = errors.New("store: no such case")
	// ErrNotRateable means the case may not be rated now: the board says
	// so, or it was rated here and the hub's board does not show it yet.
	ErrNotRateable = errors.New("store: case not rateable")
)

// ratedMark records a rating made here that the board held does not show
// yet. While it exists the case is not rateable.
type ratedMark struct {
	ID     string          `json:"id"` // the rating record's id
	Rating protocol.Rating `json:"rating"`
	At     time.Time       `json:"at"`
}

// ApplyCaseBoard replaces the case board held with b, unless b.Version is
// not greater than the version held (applied is false). Marks of cases
// rated here are dropped once the new board says the case is not
// rateable (the hub has taken the rating, or the case moved on).
func (s *Store) ApplyCaseBoard(b protocol.CaseBoard, now time.Time) (applied bool, err error) {
	if err := b.Validate(); err != nil {
		return false, fmt.Errorf("store: apply case board: %w", err)
	}
	data, err := json.Marshal(b)
	if err != nil {
		return false, fmt.Errorf("store: apply case board: encode: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		cb := tx.Bucket(bucketCases)
		if v := cb.Get(keyBoard); v != nil {
			held, err := decodeBoard(v)
			if err != nil {
				return err
			}
			if b.Version <= held.Version {
				return nil
			}
		}
		if err := cb.Put(keyBoard, data); err != nil {
			return fmt.Errorf("put board: %w", err)
		}
		if err := cb.Put(keyBoardAt, []byte(now.UTC().Format(time.RFC3339Nano))); err != nil {
			return fmt.Errorf("put board time: %w", err)
		}
		rated := tx.Bucket(bucketRated)
		var done [][]byte
		if err := rated.ForEach(func(k, _ []byte) error {
			if c, ok := b.Find(string(k)); !ok || !c.Rateable {
				done = append(done, k)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range done {
			if err := rated.Delete(k); err != nil {
				return fmt.Errorf("delete rated mark %s: %w", k, err)
			}
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: apply case board: %w", err)
	}
	return applied, nil
}

// CaseBoard returns the case board held, when it was stored, and whether
// one is held.
func (s *Store) CaseBoard() (b protocol.CaseBoard, at time.Time, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b, at, ok, err = boardIn(tx)
		return err
	})
	if err != nil {
		return protocol.CaseBoard{}, time.Time{}, false, fmt.Errorf("store: read case board: %w", err)
	}
	return b, at, ok, nil
}

// Case looks a case up by ticket or query code in the board held. A case
// rated here whose rating the board does not show yet is returned with
// that rating and not rateable.
func (s *Store) Case(ticketOrCode string) (protocol.LocalCase, error) {
	var out protocol.LocalCase
	err := s.db.View(func(tx *bolt.Tx) error {
		c, err := caseIn(tx, ticketOrCode)
		out = c
		return err
	})
	if err != nil {
		return protocol.LocalCase{}, fmt.Errorf("store: case %q: %w", ticketOrCode, err)
	}
	return out, nil
}

func caseIn(tx *bolt.Tx, ticketOrCode string) (protocol.LocalCase, error) {
	b, at, ok, err := boardIn(tx)
	if err != nil {
		return protocol.LocalCase{}, err
	}
	c, found := b.Find(ticketOrCode)
	if !ok || !found {
		return protocol.LocalCase{}, ErrNoCase
	}
	out := protocol.LocalCase{CaseStatus: c, BoardVersion: b.Version, BoardReceived: at}
	if v := tx.Bucket(bucketRated).Get([]byte(c.Ticket)); v != nil {
		var m ratedMark
		if err := json.Unmarshal(v, &m); err != nil {
			return protocol.LocalCase{}, fmt.Errorf("%w: rated mark %s: %v", ErrCorrupt, c.Ticket, err)
		}
		out.Rating, out.Rateable = m.Rating, false
	}
	return out, nil
}

// AddRating rates a case of the board held and stores the rating record
// in the outbox, in one transaction, if the case is rateable now
// (ErrNotRateable otherwise); from then on the case is not rateable here
// until the hub's board says what became of it.
func (s *Store) AddRating(kiosk, ticketOrCode string, r protocol.Rating, now time.Time) (protocol.RatingReceipt, error) {
	var rc protocol.RatingReceipt
	id, err := uuid.NewV7()
	if err != nil {
		return rc, fmt.Errorf("store: add rating: new id: %w", err)
	}
	now = now.UTC().Truncate(time.Millisecond)
	err = s.db.Update(func(tx *bolt.Tx) error {
		c, err := caseIn(tx, ticketOrCode)
		if err != nil {
			return err
		}
		if !c.Rateable {
			return fmt.Errorf("%w: case %s is %s", ErrNotRateable, c.Ticket, c.State)
		}
		rec := protocol.CaseRating{Kiosk: kiosk, Ticket: c.Ticket, Rating: r, At: now}
		if err := rec.Validate(); err != nil {
			return err
		}
		data, err := protocol.EncodeID(id.String(), protocol.TypeRating, now, rec)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutbox).Put([]byte(id.String()), data); err != nil {
			return fmt.Errorf("put outbox record: %w", err)
		}
		mark, err := json.Marshal(ratedMark{ID: id.String(), Rating: r, At: now})
		if err != nil {
			return fmt.Errorf("encode rated mark: %w", err)
		}
		if err := tx.Bucket(bucketRated).Put([]byte(c.Ticket), mark); err != nil {
			return fmt.Errorf("put rated mark: %w", err)
		}
		rc = protocol.RatingReceipt{ID: id.String(), Ticket: c.Ticket, Rating: r, At: now}
		return nil
	})
	if err != nil {
		return protocol.RatingReceipt{}, fmt.Errorf("store: add rating: %w", err)
	}
	return rc, nil
}

// unmarkRejectedRating drops the rated mark of a rating record the hub
// rejected, so the board alone says again whether the case is rateable.
func unmarkRejectedRating(tx *bolt.Tx, id string, data []byte) error {
	e, r, err := protocol.DecodeRating(data)
	if err != nil || e.ID != id {
		return nil // not a rating record
	}
	rated := tx.Bucket(bucketRated)
	v := rated.Get([]byte(r.Ticket))
	if v == nil {
		return nil
	}
	var m ratedMark
	if err := json.Unmarshal(v, &m); err == nil && m.ID != id {
		return nil // a later rating's mark
	}
	if err := rated.Delete([]byte(r.Ticket)); err != nil {
		return fmt.Errorf("delete rated mark %s: %w", r.Ticket, err)
	}
	return nil
}

func boardIn(tx *bolt.Tx) (protocol.CaseBoard, time.Time, bool, error) {
	cb := tx.Bucket(bucketCases)
	v := cb.Get(keyBoard)
	if v == nil {
		return protocol.CaseBoard{}, time.Time{}, false, nil
	}
	b, err := decodeBoard(v)
	if err != nil {
		return b, time.Time{}, false, err
	}
	var at time.Time
	if raw := cb.Get(keyBoardAt); raw != nil {
		if at, err = time.Parse(time.RFC3339Nano, string(raw)); err != nil {
			return b, time.Time{}, false, fmt.Errorf("%w: board time: %v", ErrCorrupt, err)
		}
	}
	return b, at, true, nil
}

func decodeBoard(v []byte) (protocol.CaseBoard, error) {
	var b protocol.CaseBoard
	if len(v) > protocol.MaxCaseBoardSize {
		return b, fmt.Errorf("%w: case board is %d bytes, limit %d", ErrCorrupt, len(v), protocol.MaxCaseBoardSize)
	}
	if err := json.Unmarshal(v, &b); err != nil {
		return b, fmt.Errorf("%w: case board: %v", ErrCorrupt, err)
	}
	if err := b.Validate(); err != nil {
		return b, fmt.Errorf("%w: case board: %v", ErrCorrupt, err)
	}
	return b, nil
}
