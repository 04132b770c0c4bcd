package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/shequ/shequ/protocol"
)

// KioskRecord is what the hub knows about one kiosk.
type KioskRecord struct {
	ID              string
	Online          bool // the last presence said online (see LastSeen for freshness)
	LastSeen        time.Time
	Epoch           int64
	SoftwareVersion string
	UptimeSeconds   int64
	OutboxDepth     int
	ContentVersion  int64
	FreeDiskBytes   int64
	DesiredVersion  int64
	DesiredHash     string
}

// EnsureKiosks adds a row for each kiosk that has none.
func (s *SQLite) EnsureKiosks(ctx context.Context, ids []string) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: ensure kiosks: begin: %w", err)
	}
	defer rollback(tx, &err)
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `INSERT INTO kiosks (id) VALUES (?) ON CONFLICT (id) DO NOTHING`, id); err != nil {
			return fmt.Errorf("store: ensure kiosk %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: ensure kiosks: commit: %w", err)
	}
	return nil
}

// ApplyPresence records a birth or last-will message under the epoch rule: a
// presence with an epoch older than the newest seen is ignored; a newer epoch
// takes over; with the current epoch, offline is final (a late or repeated
// online of an ended session does not revive it). It reports whether the
// presence was applied.
func (s *SQLite) ApplyPresence(ctx context.Context, p protocol.Presence, at time.Time) (bool, error) {
	online := p.State == protocol.Online
	res, err := s.db.ExecContext(ctx, `INSERT INTO kiosks (id, online, last_seen, epoch) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (id) DO UPDATE SET online = ?2, last_seen = ?3, epoch = ?4
		WHERE ?4 > kiosks.epoch OR (?4 = kiosks.epoch AND (?2 = 0 OR kiosks.online = 1))`,
		p.Kiosk, online, at.UnixNano(), p.Epoch)
	if err != nil {
		return false, fmt.Errorf("store: presence of %s: %w", p.Kiosk, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: presence of %s: %w", p.Kiosk, err)
	}
	return n > 0, nil
}

// ApplyHeartbeat records a heartbeat's health fields. A heartbeat of an
// older epoch is ignored; one of a newer epoch (its birth was missed) marks
// the kiosk online; one of the current epoch keeps the online state as it is
// (a heartbeat that arrives after the session's last will does not revive
// it). It reports whether the heartbeat was applied.
func (s *SQLite) ApplyHeartbeat(ctx context.Context, h protocol.Heartbeat, at time.Time) (bool, error) {
	media := h.Media
	if media == nil {
		media = []protocol.MediaStatus{}
	}
	mediaJSON, err := json.Marshal(media)
	if err != nil {
		return false, fmt.Errorf("store: heartbeat of %s: media: %w", h.Kiosk, err)
	}
	res, err := s.db.ExecContext(ctx, `INSERT INTO kiosks
		(id, online, last_seen, epoch, software_version, uptime, outbox_depth, content_version, free_disk,
		 media, cache_bytes, cache_quota)
		VALUES (?1, 1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)
		ON CONFLICT (id) DO UPDATE SET
			online = CASE WHEN ?3 > kiosks.epoch THEN 1 ELSE kiosks.online END,
			last_seen = ?2, epoch = ?3, software_version = ?4, uptime = ?5,
			outbox_depth = ?6, content_version = ?7, free_disk = ?8,
			media = ?9, cache_bytes = ?10, cache_quota = ?11
		WHERE ?3 >= kiosks.epoch`,
		h.Kiosk, at.UnixNano(), h.Epoch, h.SoftwareVersion, h.UptimeSeconds, h.OutboxDepth, h.ContentVersion, h.FreeDiskBytes,
		string(mediaJSON), h.CacheBytes, h.CacheQuota)
	if err != nil {
		return false, fmt.Errorf("store: heartbeat of %s: %w", h.Kiosk, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: heartbeat of %s: %w", h.Kiosk, err)
	}
	return n > 0, nil
}

const kioskCols = `id, online, last_seen, epoch, software_version, uptime, outbox_depth, content_version,
	free_disk, desired_version, desired_hash`

func scanKiosk(sc scanner) (KioskRecord, error) {
	var (
		k        KioskRecord
		lastSeen sql.NullInt64
	)
	err := sc.Scan(&k.ID, &k.Online, &lastSeen, &k.Epoch, &k.SoftwareVersion, &k.UptimeSeconds, &k.OutboxDepth,
		&k.ContentVersion, &k.FreeDiskBytes, &k.DesiredVersion, &k.DesiredHash)
	k.LastSeen = fromNanos(lastSeen)
	return k, err
}

// Kiosk returns one kiosk, or ErrNotFound.
func (s *SQLite) Kiosk(ctx context.Context, id string) (KioskRecord, error) {
	return queryOne(ctx, s.db, "kiosk "+id, scanKiosk, `SELECT `+kioskCols+` FROM kiosks WHERE id = ?`, id)
}

// Kiosks returns every kiosk the hub knows, by id.
func (s *SQLite) Kiosks(ctx context.Context) ([]KioskRecord, error) {
	return queryAll(ctx, s.db, "list kiosks", scanKiosk, `SELECT `+kioskCols+` FROM kiosks ORDER BY id`)
}

// SetDesired records the content hash of a kiosk's desired document and
// returns the document's version. When the hash differs from the one stored
// (or the kiosk has no version yet) the version is bumped to the next value
// of a hub-wide sequence, so it grows strictly, across restarts too; changed
// reports that.
func (s *SQLite) SetDesired(ctx context.Context, kiosk, hash string) (version int64, changed bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return 0, false, fmt.Errorf("store: set desired of %s: begin: %w", kiosk, err)
	}
	defer rollback(tx, &err)
	var cur int64
	var curHash string
	switch err := tx.QueryRowContext(ctx, `SELECT desired_version, desired_hash FROM kiosks WHERE id = ?`, kiosk).
		Scan(&cur, &curHash); {
	case errors.Is(err, sql.ErrNoRows):
		if _, err := tx.ExecContext(ctx, `INSERT INTO kiosks (id) VALUES (?)`, kiosk); err != nil {
			return 0, false, fmt.Errorf("store: set desired of %s: add kiosk: %w", kiosk, err)
		}
	case err != nil:
		return 0, false, fmt.Errorf("store: set desired of %s: %w", kiosk, err)
	case cur > 0 && curHash == hash:
		return cur, false, nil
	}
	if err := tx.QueryRowContext(ctx, `UPDATE desired_seq SET value = value + 1 WHERE id = 1 RETURNING value`).
		Scan(&version); err != nil {
		return 0, false, fmt.Errorf("store: set desired of %s: next version: %w", kiosk, err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE kiosks SET desired_version = ?, desired_hash = ? WHERE id = ?`,
		version, hash, kiosk); err != nil {
		return 0, false, fmt.Errorf("store: set desired of %s: %w", kiosk, err)
	}
	if err := tx.Commit(); err != nil {
		return 0, false, fmt.Errorf("store: set desired of %s: commit: %w", kiosk, err)
	}
	return version, true, nil
}
