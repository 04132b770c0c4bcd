package store

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/shequ/shequ/protocol"
)

// maxPlayCountSize bounds a stored play count.
const maxPlayCountSize = 1 << 10

// hourKey is the key prefix of an hour's counts: sortable RFC 3339 UTC.
func hourKey(t time.Time) string {
	return t.UTC().Truncate(time.Hour).Format(time.RFC3339) + "|"
}

// AddPlay counts a play event in its hour (the event's time, UTC).
func (s *Store) AddPlay(e protocol.PlayEvent) error {
	c := protocol.PlayCount{Kind: e.Kind, Media: e.Media, Notice: e.Notice, Count: 1, Last: e.At.UTC()}
	if err := c.Validate(); err != nil {
		return fmt.Errorf("store: add play: %w", err)
	}
	item := string(e.Kind) + ":" + e.Media + e.Notice
	key := []byte(hourKey(e.At) + item)
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPlays)
		if v := b.Get(key); v != nil {
			old, err := decodePlayCount(v)
			if err != nil {
				return err
			}
			c.Count = old.Count + 1
			if old.Last.After(c.Last) {
				c.Last = old.Last
			}
		}
		data, err := json.Marshal(c)
		if err != nil {
			return err
		}
		return b.Put(key, data)
	})
	if err != nil {
		return fmt.Errorf("store: add play: %w", err)
	}
	return nil
}

func decodePlayCount(v []byte) (protocol.PlayCount, error) {
	var c protocol.PlayCount
	if len(v) > maxPlayCountSize {
		return c, fmt.Errorf("%w: play count of %d bytes", ErrCorrupt, len(v))
	}
	if err := json.Unmarshal(v, &c); err != nil {
		return c, fmt.Errorf("%w: play count: %v", ErrCorrupt, err)
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("%w: play count: %v", ErrCorrupt, err)
	}
	return c, nil
}

// FlushPlays turns the counts of every hour that ended by now into
// PlayStats records of kiosk in the outbox (at most protocol.MaxPlayItems
// items each) and deletes the counts, in one transaction, so each hour is
// sent exactly once (and resent until acknowledged). It returns the
// records added.
func (s *Store) FlushPlays(kiosk string, now time.Time) (int, error) {
	current := []byte(hourKey(now))
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketPlays)
		type hour struct {
			at    time.Time
			items []protocol.PlayCount
			keys  [][]byte
		}
		var hours []*hour
		c := b.Cursor()
		for k, v := c.First(); k != nil && bytes.Compare(k, current) < 0; k, v = c.Next() {
			h, _, ok := bytes.Cut(k, []byte("|"))
			if !ok {
				return fmt.Errorf("%w: play key %q", ErrCorrupt, k)
			}
			at, err := time.Parse(time.RFC3339, string(h))
			if err != nil {
				return fmt.Errorf("%w: play key %q", ErrCorrupt, k)
			}
			pc, err := decodePlayCount(v)
			if err != nil {
				return err
			}
			if len(hours) == 0 || !hours[len(hours)-1].at.Equal(at) || len(hours[len(hours)-1].items) >= protocol.MaxPlayItems {
				hours = append(hours, &hour{at: at})
			}
			last := hours[len(hours)-1]
			last.items = append(last.items, pc)
			last.keys = append(last.keys, bytes.Clone(k))
		}
		for _, h := range hours {
			ps := protocol.PlayStats{Kiosk: kiosk, Hour: h.at, Items: h.items}
			id, err := uuid.NewV7()
			if err != nil {
				return fmt.Errorf("new id: %w", err)
			}
			data, err := protocol.EncodeID(id.String(), protocol.TypePlays, now.UTC().Truncate(time.Millisecond), ps)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketOutbox).Put([]byte(id.String()), data); err != nil {
				return fmt.Errorf("put outbox record: %w", err)
			}
			for _, k := range h.keys {
				if err := b.Delete(k); err != nil {
					return fmt.Errorf("delete play count: %w", err)
				}
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: flush plays: %w", err)
	}
	return n, nil
}
