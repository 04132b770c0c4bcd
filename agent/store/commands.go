package store

import (
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/shequ/shequ/protocol"
)

// forgetCommandsAfter is how long after its expiry a command id is kept.
// An expired command is refused whatever its id, so ids need not be kept
// for ever; the margin covers a clock that is set back a little.
const forgetCommandsAfter = 24 * time.Hour

// ClaimCommand records that the command with id, valid until expires, has
// arrived, and reports whether it is new: false means it was seen before
// (a redelivery or a replay) and must not run again. Ids of commands that
// expired more than a day ago are forgotten in the same transaction.
func (s *Store) ClaimCommand(id string, expires, now time.Time) (fresh bool, err error) {
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketCommands)
		if b.Get([]byte(id)) != nil {
			return nil
		}
		var stale [][]byte
		if err := b.ForEach(func(k, v []byte) error {
			exp, err := time.Parse(time.RFC3339Nano, string(v))
			if err != nil || now.Sub(exp) > forgetCommandsAfter {
				stale = append(stale, k)
			}
			return nil
		}); err != nil {
			return err
		}
		for _, k := range stale {
			if err := b.Delete(k); err != nil {
				return fmt.Errorf("forget command %s: %w", k, err)
			}
		}
		if err := b.Put([]byte(id), []byte(expires.UTC().Format(time.RFC3339Nano))); err != nil {
			return fmt.Errorf("put command %s: %w", id, err)
		}
		fresh = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: claim command %s: %w", id, err)
	}
	return fresh, nil
}

// AddResult stores a command's result in the outbox and returns its record
// id. When it returns without error the record is on disk and will be sent
// until acknowledged.
func (s *Store) AddResult(r protocol.CommandResult) (string, error) {
	if err := r.Validate(); err != nil {
		return "", fmt.Errorf("store: add result: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return "", fmt.Errorf("store: add result: new id: %w", err)
	}
	data, err := protocol.EncodeID(id.String(), protocol.TypeResult, r.At, r)
	if err != nil {
		return "", fmt.Errorf("store: add result: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketOutbox).Put([]byte(id.String()), data)
	})
	if err != nil {
		return "", fmt.Errorf("store: add result: %w", err)
	}
	return id.String(), nil
}

// InOutbox reports whether the record id is still waiting for its ack.
func (s *Store) InOutbox(id string) (bool, error) {
	var in bool
	err := s.db.View(func(tx *bolt.Tx) error {
		in = tx.Bucket(bucketOutbox).Get([]byte(id)) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: outbox %s: %w", id, err)
	}
	return in, nil
}
