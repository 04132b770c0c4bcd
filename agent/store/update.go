package store

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/shequ/shequ/protocol"
)

// keyUpdate holds the update manager's state (agent/update), as JSON, in
// the state bucket: no schema change, so an agent of the release a kiosk
// rolls back to still opens the file.
var keyUpdate = []byte("update")

// maxUpdateState bounds the stored update state.
const maxUpdateState = 16 << 10

// UpdateState returns the update manager's stored state; nil if none.
func (s *Store) UpdateState() ([]byte, error) {
	var out []byte
	err := s.db.View(func(tx *bolt.Tx) error {
		if v := tx.Bucket(bucketState).Get(keyUpdate); v != nil {
			if len(v) > maxUpdateState {
				return fmt.Errorf("%w: update state is %d bytes", ErrCorrupt, len(v))
			}
			out = append([]byte(nil), v...)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: update state: %w", err)
	}
	return out, nil
}

// SaveUpdate stores the update manager's state and, when report is set,
// queues it as an outbox record, in one durable transaction: a step of an
// update is reported exactly when it is recorded.
func (s *Store) SaveUpdate(state []byte, report *protocol.UpdateReport) error {
	if len(state) > maxUpdateState {
		return fmt.Errorf("store: save update: state of %d bytes, limit %d", len(state), maxUpdateState)
	}
	var rec []byte
	var id string
	if report != nil {
		if err := report.Validate(); err != nil {
			return fmt.Errorf("store: save update: %w", err)
		}
		u, err := uuid.NewV7()
		if err != nil {
			return fmt.Errorf("store: save update: new id: %w", err)
		}
		id = u.String()
		if rec, err = protocol.EncodeID(id, protocol.TypeUpdate, time.Now().UTC().Truncate(time.Millisecond), report); err != nil {
			return fmt.Errorf("store: save update: %w", err)
		}
	}
	err := s.db.Update(func(tx *bolt.Tx) error {
		if err := tx.Bucket(bucketState).Put(keyUpdate, state); err != nil {
			return fmt.Errorf("put update state: %w", err)
		}
		if rec != nil {
			if err := tx.Bucket(bucketOutbox).Put([]byte(id), rec); err != nil {
				return fmt.Errorf("put outbox record: %w", err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save update: %w", err)
	}
	return nil
}
