// Package store is the agent's on-device database: one bbolt file holding the
// device's identity (its private key and what enrolment gave it), the
// feedback outbox, the records the hub rejected, the desired state held and
// a few counters, with a schema version and a migration table.
//
// Every write is one bbolt transaction, and bbolt fsyncs on commit, so a
// method that returns without error has made its change durable.
package store

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	bolt "go.etcd.io/bbolt"

	"github.com/shequ/shequ/protocol"
)

// SchemaVersion is the schema this build writes. Files with an older schema
// are migrated on Open; files with a newer one are refused.
const SchemaVersion = 7

// Sentinel errors, returned wrapped; test with errors.Is.
var (
	// ErrSchemaNewer means the file was written by a newer agent; this build
	// refuses to open it rather than corrupt it.
	ErrSchemaNewer = errors.New("store: database schema is newer than this agent supports")
	// ErrCorrupt means a stored value could not be decoded.
	ErrCorrupt = errors.New("store: corrupt stored value")
	// ErrNotEnrolled means the device holds no identity yet.
	ErrNotEnrolled = errors.New("store: device not enrolled")
	// ErrStaleKey means a hub key was offered whose serial is not newer
	// than the trusted key's.
	ErrStaleKey = errors.New("store: hub key not newer than the trusted key")
)

// Bucket and key names.
var (
	bucketMeta       = []byte("meta")
	bucketOutbox     = []byte("outbox")
	bucketDeadLetter = []byte("deadletter")
	bucketState      = []byte("state")
	bucketIdentity   = []byte("identity")
	bucketPlays      = []byte("plays")    // hour (RFC 3339) + "|" + item → JSON protocol.PlayCount
	bucketCases      = []byte("cases")    // keyBoard, keyBoardAt
	bucketRated      = []byte("rated")    // ticket → JSON ratedMark: rated here, waiting for the hub's board
	bucketCommands   = []byte("commands") // command id → RFC 3339 expiry: remote commands seen (commands.go)

	keySchema    = []byte("schema")     // uint64, big-endian
	keyEpoch     = []byte("epoch")      // int64, big-endian: last session epoch issued
	keyTicketSeq = []byte("ticket_seq") // uint64, big-endian: last ticket sequence issued

	keyDesired   = []byte("desired")    // JSON protocol.DesiredState
	keyVersion   = []byte("version")    // int64, big-endian: version of keyDesired
	keyAppliedAt = []byte("applied_at") // RFC 3339 time keyDesired was applied

	keyDeviceKey = []byte("device_key") // ed25519 seed (32 bytes)
	keyNextKey   = []byte("next_key")   // ed25519 seed of a re-enrolment in progress
	keyIdentity  = []byte("identity")   // JSON Identity

	keyBoard   = []byte("board")    // JSON protocol.CaseBoard
	keyBoardAt = []byte("board_at") // RFC 3339 time keyBoard was stored
)

// maxDeadRecordSize bounds a stored dead-letter value: a feedback envelope
// (base64 in JSON) plus its reason.
const maxDeadRecordSize = 4*max(protocol.MaxFeedbackSize, protocol.MaxPlaysSize, protocol.MaxRatingSize, protocol.MaxResultSize) + 4<<10

// migrations[i] migrates a file from schema i to schema i+1. Append only;
// never edit a migration that has shipped.
var migrations = []func(tx *bolt.Tx) error{
	// 0 → 1: the first schema.
	func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketMeta, bucketOutbox, bucketDeadLetter, bucketState} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	// 1 → 2: protocol v2. Outbox records were encoded as
	// protocol v1 envelopes, which a v2 hub refuses; their bodies did not
	// change, so re-wrap each one as v2 with the same id, type, time and
	// exact body bytes.
	rewrapOutbox,
	// 2 → 3: enrolment. The identity bucket holds the device key and what
	// the hub gave the device; a file without it is not enrolled.
	func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketIdentity); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketIdentity, err)
		}
		return nil
	},
	// 3 → 4: protocol v3 (media). Feedback did not change; re-wrap the
	// outbox's v2 envelopes as v3, as 1 → 2 did.
	rewrapOutbox,
	// 4 → 5: proof of play. Plays counted per hour and item until the hour
	// is over and becomes a PlayStats record in the outbox.
	func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketPlays); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketPlays, err)
		}
		return nil
	},
	// 5 → 6: cases. The case board the hub publishes for this kiosk, and
	// the cases rated here whose rating the board does not show yet.
	func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketCases, bucketRated} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return fmt.Errorf("create bucket %s: %w", name, err)
			}
		}
		return nil
	},
	// 6 → 7: remote commands. The ids of the commands seen, so a
	// command is run at most once.
	func(tx *bolt.Tx) error {
		if _, err := tx.CreateBucketIfNotExists(bucketCommands); err != nil {
			return fmt.Errorf("create bucket %s: %w", bucketCommands, err)
		}
		return nil
	},
}

// rewrapOutbox re-wraps every outbox record of an older protocol version as
// the current one (rewrap).
func rewrapOutbox(tx *bolt.Tx) error {
	out := tx.Bucket(bucketOutbox)
	return out.ForEach(func(k, v []byte) error {
		up, err := rewrap(v)
		if err != nil {
			return fmt.Errorf("outbox record %s: %w", k, err)
		}
		return out.Put(k, up)
	})
}

// rewrap turns an uplink envelope of an older protocol version into the
// same message in the current version: same id, type, time and exact body
// bytes (uplink bodies have not changed since v1). A current envelope is
// returned unchanged.
func rewrap(data []byte) ([]byte, error) {
	var e protocol.Envelope
	if err := json.Unmarshal(data, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if e.V >= protocol.Version {
		return data, nil
	}
	e.V = protocol.Version
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("re-encode as protocol v%d: %w", protocol.Version, err)
	}
	return b, nil
}

// shanghai is the time zone tickets are dated in (China has no DST, so a
// fixed zone needs no tzdata on the device).
var shanghai = time.FixedZone("CST", 8*3600)

// Store is the agent's database. Its methods are safe for concurrent use.
type Store struct {
	db *bolt.DB
}

// Record is one outbox entry: the record id and the exact envelope bytes to
// publish, unchanged on every resend.
type Record struct {
	ID   string
	Data []byte
}

// DeadRecord is a record the hub rejected, kept for a technician.
type DeadRecord struct {
	ID     string    `json:"id"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
	Data   []byte    `json:"data"`
}

// Open opens (creating if needed) the database at path and migrates it to
// SchemaVersion.
func Open(path string) (*Store, error) {
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	if err := db.Update(migrate); err != nil {
		if cerr := db.Close(); cerr != nil {
			err = errors.Join(err, cerr)
		}
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	return &Store{db: db}, nil
}

// migrate brings the schema up to date in one transaction.
func migrate(tx *bolt.Tx) error {
	var have uint64
	if meta := tx.Bucket(bucketMeta); meta != nil {
		if v := meta.Get(keySchema); v != nil {
			if len(v) != 8 {
				return fmt.Errorf("%w: schema version is %d bytes", ErrCorrupt, len(v))
			}
			have = binary.BigEndian.Uint64(v)
		}
	}
	if have > SchemaVersion {
		return fmt.Errorf("%w: file has schema %d, this agent supports up to %d", ErrSchemaNewer, have, SchemaVersion)
	}
	for v := have; v < SchemaVersion; v++ {
		if err := migrations[v](tx); err != nil {
			return fmt.Errorf("migrate schema %d to %d: %w", v, v+1, err)
		}
	}
	if have == SchemaVersion {
		return nil
	}
	return tx.Bucket(bucketMeta).Put(keySchema, u64(SchemaVersion))
}

// Close closes the database.
func (s *Store) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// Path returns the database file's path.
func (s *Store) Path() string { return s.db.Path() }

// SchemaVersion returns the schema version recorded in the file.
func (s *Store) SchemaVersion() (uint64, error) {
	var v uint64
	err := s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketMeta).Get(keySchema)
		if len(b) != 8 {
			return fmt.Errorf("%w: schema version", ErrCorrupt)
		}
		v = binary.BigEndian.Uint64(b)
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// AddFeedback turns a resident's request into a feedback record with a new
// ticket and stores it in the outbox, in one transaction. When it returns
// without error the record is on disk and will be sent until acknowledged.
func (s *Store) AddFeedback(kiosk string, req protocol.FeedbackRequest, now time.Time) (protocol.FeedbackReceipt, error) {
	var rc protocol.FeedbackReceipt
	if err := req.Validate(); err != nil {
		return rc, fmt.Errorf("store: add feedback: %w", err)
	}
	id, err := uuid.NewV7()
	if err != nil {
		return rc, fmt.Errorf("store: add feedback: new id: %w", err)
	}
	now = now.UTC().Truncate(time.Millisecond)
	err = s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		seq := getU64(meta.Get(keyTicketSeq)) + 1
		if err := meta.Put(keyTicketSeq, u64(seq)); err != nil {
			return fmt.Errorf("put ticket sequence: %w", err)
		}
		fb := protocol.Feedback{
			Ticket:      Ticket(kiosk, now, seq),
			Kiosk:       kiosk,
			Kind:        req.Kind,
			Category:    req.Category,
			Where:       req.Where,
			Description: req.Description,
			Phone:       req.Phone,
			SubmittedAt: now,
		}
		if err := fb.Validate(); err != nil {
			return err
		}
		data, err := protocol.EncodeID(id.String(), protocol.TypeFeedback, now, fb)
		if err != nil {
			return err
		}
		if err := tx.Bucket(bucketOutbox).Put([]byte(id.String()), data); err != nil {
			return fmt.Errorf("put outbox record: %w", err)
		}
		rc = protocol.FeedbackReceipt{ID: id.String(), Ticket: fb.Ticket, SubmittedAt: now}
		return nil
	})
	if err != nil {
		return protocol.FeedbackReceipt{}, fmt.Errorf("store: add feedback: %w", err)
	}
	return rc, nil
}

// Ticket returns the ticket for the seq-th feedback of a kiosk, submitted at
// t: the date in Shanghai, the kiosk's code and the sequence, e.g.
// "261126-PD-0042-0007". The sequence never resets, so tickets of one kiosk
// are unique even if its clock goes backwards; see KioskCode for uniqueness
// across kiosks.
func Ticket(kiosk string, t time.Time, seq uint64) string {
	return fmt.Sprintf("%s-%s-%04d", t.In(shanghai).Format("060102"), KioskCode(kiosk), seq)
}

// crockford is Crockford's base-32 alphabet: no I, L, O or U, so a code read
// aloud or copied from paper is not misread.
const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// KioskCode is the kiosk part of a ticket. A kiosk id of at most 16
// characters of [a-z0-9-] is used as is, upper-cased, so it is unique and
// readable; any other id is replaced by 8 Crockford base-32 characters of its
// SHA-256 (40 bits: a collision among 10,000 such kiosks has odds of about
// 1 in 20,000).
func KioskCode(kiosk string) string {
	if len(kiosk) <= 16 && strings.Trim(kiosk, "abcdefghijklmnopqrstuvwxyz0123456789-") == "" && kiosk != "" {
		return strings.ToUpper(kiosk)
	}
	sum := sha256.Sum256([]byte(kiosk))
	v := binary.BigEndian.Uint64(sum[:8]) >> 24 // 40 bits
	var b [8]byte
	for i := 7; i >= 0; i-- {
		b[i] = crockford[v&31]
		v >>= 5
	}
	return string(b[:])
}

// Outbox returns up to limit records whose id sorts after after (all from
// the start when after is empty), in id order, which is time order.
func (s *Store) Outbox(after string, limit int) ([]Record, error) {
	var out []Record
	err := s.db.View(func(tx *bolt.Tx) error {
		c := tx.Bucket(bucketOutbox).Cursor()
		var k, v []byte
		if after == "" {
			k, v = c.First()
		} else {
			k, v = c.Seek([]byte(after))
			if k != nil && string(k) == after {
				k, v = c.Next()
			}
		}
		for ; k != nil && len(out) < limit; k, v = c.Next() {
			out = append(out, Record{ID: string(k), Data: bytes.Clone(v)})
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("store: read outbox: %w", err)
	}
	return out, nil
}

// Ack deletes acknowledged records from the outbox in one transaction and
// reports how many were there. Unknown ids (already acknowledged) are fine.
func (s *Store) Ack(ids ...string) (int, error) {
	n := 0
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketOutbox)
		for _, id := range ids {
			if b.Get([]byte(id)) == nil {
				continue
			}
			if err := b.Delete([]byte(id)); err != nil {
				return fmt.Errorf("delete %s: %w", id, err)
			}
			n++
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: ack: %w", err)
	}
	return n, nil
}

// DeadLetter moves a record the hub rejected from the outbox to the
// dead-letter bucket with the reason, and reports whether it was in the
// outbox.
func (s *Store) DeadLetter(id, reason string, now time.Time) (bool, error) {
	moved := false
	err := s.db.Update(func(tx *bolt.Tx) error {
		out := tx.Bucket(bucketOutbox)
		data := out.Get([]byte(id))
		if data == nil {
			return nil
		}
		v, err := json.Marshal(DeadRecord{ID: id, Reason: reason, At: now.UTC(), Data: data})
		if err != nil {
			return fmt.Errorf("encode dead record: %w", err)
		}
		if err := tx.Bucket(bucketDeadLetter).Put([]byte(id), v); err != nil {
			return fmt.Errorf("put dead record: %w", err)
		}
		if err := out.Delete([]byte(id)); err != nil {
			return fmt.Errorf("delete outbox record: %w", err)
		}
		if err := unmarkRejectedRating(tx, id, data); err != nil {
			return err
		}
		moved = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: dead-letter %s: %w", id, err)
	}
	return moved, nil
}

// DeadLetters returns the records the hub rejected, in id order.
func (s *Store) DeadLetters() ([]DeadRecord, error) {
	var out []DeadRecord
	err := s.db.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketDeadLetter).ForEach(func(k, v []byte) error {
			r, err := decodeDeadRecord(v)
			if err != nil {
				return fmt.Errorf("record %s: %w", k, err)
			}
			out = append(out, r)
			return nil
		})
	})
	if err != nil {
		return nil, fmt.Errorf("store: read dead letters: %w", err)
	}
	return out, nil
}

func decodeDeadRecord(v []byte) (DeadRecord, error) {
	var r DeadRecord
	if len(v) > maxDeadRecordSize {
		return r, fmt.Errorf("%w: dead record is %d bytes, limit %d", ErrCorrupt, len(v), maxDeadRecordSize)
	}
	if err := json.Unmarshal(v, &r); err != nil {
		return r, fmt.Errorf("%w: dead record: %v", ErrCorrupt, err)
	}
	return r, nil
}

// OutboxDepth returns the number of records waiting for an ack.
func (s *Store) OutboxDepth() (int, error) {
	var n int
	err := s.db.View(func(tx *bolt.Tx) error {
		n = tx.Bucket(bucketOutbox).Stats().KeyN
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: outbox depth: %w", err)
	}
	return n, nil
}

// ApplyDesired replaces the desired state held with doc, unless doc.Version
// is not greater than the version held, in which case it is ignored and
// applied is false. The document must be valid.
func (s *Store) ApplyDesired(doc protocol.DesiredState, now time.Time) (applied bool, err error) {
	if err := doc.Validate(); err != nil {
		return false, fmt.Errorf("store: apply desired: %w", err)
	}
	data, err := json.Marshal(doc)
	if err != nil {
		return false, fmt.Errorf("store: apply desired: encode: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		if held := int64(getU64(b.Get(keyVersion))); doc.Version <= held {
			return nil
		}
		for _, kv := range [][2][]byte{
			{keyDesired, data},
			{keyVersion, u64(uint64(doc.Version))},
			{keyAppliedAt, []byte(now.UTC().Format(time.RFC3339Nano))},
		} {
			if err := b.Put(kv[0], kv[1]); err != nil {
				return fmt.Errorf("put %s: %w", kv[0], err)
			}
		}
		applied = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: apply desired: %w", err)
	}
	return applied, nil
}

// Desired returns the desired state held, if any, and when it was applied.
func (s *Store) Desired() (doc protocol.DesiredState, appliedAt time.Time, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketState)
		v := b.Get(keyDesired)
		if v == nil {
			return nil
		}
		if doc, err = decodeDesired(v); err != nil {
			return err
		}
		if at := b.Get(keyAppliedAt); at != nil {
			if appliedAt, err = time.Parse(time.RFC3339Nano, string(at)); err != nil {
				return fmt.Errorf("%w: applied_at: %v", ErrCorrupt, err)
			}
		}
		ok = true
		return nil
	})
	if err != nil {
		return protocol.DesiredState{}, time.Time{}, false, fmt.Errorf("store: read desired: %w", err)
	}
	return doc, appliedAt, ok, nil
}

// DesiredVersion returns the version of the desired state held; 0 if none.
func (s *Store) DesiredVersion() (int64, error) {
	var v int64
	err := s.db.View(func(tx *bolt.Tx) error {
		v = int64(getU64(tx.Bucket(bucketState).Get(keyVersion)))
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("store: read desired version: %w", err)
	}
	return v, nil
}

func decodeDesired(v []byte) (protocol.DesiredState, error) {
	var d protocol.DesiredState
	if len(v) > protocol.MaxDesiredSize {
		return d, fmt.Errorf("%w: desired state is %d bytes, limit %d", ErrCorrupt, len(v), protocol.MaxDesiredSize)
	}
	if err := json.Unmarshal(v, &d); err != nil {
		return d, fmt.Errorf("%w: desired state: %v", ErrCorrupt, err)
	}
	if err := d.Validate(); err != nil {
		return d, fmt.Errorf("%w: desired state: %v", ErrCorrupt, err)
	}
	return d, nil
}

// NextEpoch issues a new session epoch, durable before it returns: greater
// than every epoch issued before from this file, and at least now in Unix
// milliseconds, so a device whose database was wiped still starts above the
// epochs the hub has seen from it (given a sane clock).
func (s *Store) NextEpoch(now time.Time) (int64, error) {
	var e int64
	err := s.db.Update(func(tx *bolt.Tx) error {
		meta := tx.Bucket(bucketMeta)
		e = max(int64(getU64(meta.Get(keyEpoch)))+1, now.UnixMilli())
		return meta.Put(keyEpoch, u64(uint64(e)))
	})
	if err != nil {
		return 0, fmt.Errorf("store: next epoch: %w", err)
	}
	return e, nil
}

func u64(v uint64) []byte { return binary.BigEndian.AppendUint64(nil, v) }

// getU64 reads a big-endian counter; absent (or malformed) reads as 0.
func getU64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

// String describes the store for logs.
func (s *Store) String() string { return "store " + strconv.Quote(s.db.Path()) }
