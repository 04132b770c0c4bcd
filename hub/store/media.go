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

// Media statuses of an upload.
const (
	MediaQueued      = "queued"      // a video waiting for its transcode
	MediaTranscoding = "transcoding" // the transcode is running (or was, when the hub stopped)
	MediaReady       = "ready"       // the kiosk file is in the store
	MediaFailed      = "failed"      // the transcode failed; Reason says why
)

// MediaRecord is one uploaded file and, once ready, its kiosk file.
type MediaRecord struct {
	ID         string
	Filename   string
	OrigSHA256 string
	OrigSize   int64
	Kind       protocol.MediaKind
	Format     string // ffprobe's format name of the original
	Status     string
	Percent    int
	Reason     string
	SHA256     string // the kiosk file (set when ready)
	Size       int64
	DurationMS int64
	Width      int
	Height     int
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

// Ref returns the media reference of a ready record.
func (m MediaRecord) Ref() protocol.MediaRef {
	return protocol.MediaRef{SHA256: m.SHA256, Kind: m.Kind, Size: m.Size}
}

const mediaCols = `id, filename, orig_sha256, orig_size, kind, format, status, percent, reason, sha256, size,
	duration_ms, width, height, created_at, updated_at`

func scanMedia(sc scanner) (MediaRecord, error) {
	var (
		m                MediaRecord
		created, updated sql.NullInt64
	)
	err := sc.Scan(&m.ID, &m.Filename, &m.OrigSHA256, &m.OrigSize, &m.Kind, &m.Format, &m.Status, &m.Percent,
		&m.Reason, &m.SHA256, &m.Size, &m.DurationMS, &m.Width, &m.Height, &created, &updated)
	m.CreatedAt, m.UpdatedAt = fromNanos(created), fromNanos(updated)
	return m, err
}

// CreateMedia stores a new media record.
func (s *SQLite) CreateMedia(ctx context.Context, m MediaRecord) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO media (`+mediaCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)`,
		m.ID, m.Filename, m.OrigSHA256, m.OrigSize, string(m.Kind), m.Format, m.Status, m.Percent, m.Reason,
		m.SHA256, m.Size, m.DurationMS, m.Width, m.Height, nanos(m.CreatedAt), nanos(m.UpdatedAt)); err != nil {
		return fmt.Errorf("store: create media %s: %w", m.ID, err)
	}
	return nil
}

// UpdateMedia stores a record's status and result fields.
func (s *SQLite) UpdateMedia(ctx context.Context, m MediaRecord) error {
	res, err := s.db.ExecContext(ctx, `UPDATE media SET status = ?, percent = ?, reason = ?, sha256 = ?, size = ?,
		duration_ms = ?, width = ?, height = ?, updated_at = ? WHERE id = ?`,
		m.Status, m.Percent, m.Reason, m.SHA256, m.Size, m.DurationMS, m.Width, m.Height, nanos(m.UpdatedAt), m.ID)
	if err != nil {
		return fmt.Errorf("store: update media %s: %w", m.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("store: update media %s: %w", m.ID, errors.Join(err, ErrNotFound))
	}
	return nil
}

// Media returns one media record, or ErrNotFound.
func (s *SQLite) Media(ctx context.Context, id string) (MediaRecord, error) {
	return queryOne(ctx, s.db, "media "+id, scanMedia, `SELECT `+mediaCols+` FROM media WHERE id = ?`, id)
}

// ReadyMedia returns the oldest ready record whose kiosk file has the given
// SHA-256, or ErrNotFound.
func (s *SQLite) ReadyMedia(ctx context.Context, sha string) (MediaRecord, error) {
	m, err := scanMedia(s.db.QueryRowContext(ctx, `SELECT `+mediaCols+` FROM media
		WHERE sha256 = ? AND status = 'ready' ORDER BY created_at, id LIMIT 1`, sha))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("store: media file %s: %w", sha, ErrNotFound)
	}
	if err != nil {
		return m, fmt.Errorf("store: media file %s: %w", sha, err)
	}
	return m, nil
}

// MediaList returns every media record, newest first.
func (s *SQLite) MediaList(ctx context.Context) ([]MediaRecord, error) {
	return s.queryMedia(ctx, `SELECT `+mediaCols+` FROM media ORDER BY created_at DESC, id DESC`)
}

// MediaJobs returns the records whose transcode is queued or was running,
// oldest first.
func (s *SQLite) MediaJobs(ctx context.Context) ([]MediaRecord, error) {
	return s.queryMedia(ctx, `SELECT `+mediaCols+` FROM media WHERE status IN ('queued', 'transcoding')
		ORDER BY created_at, id`)
}

func (s *SQLite) queryMedia(ctx context.Context, query string, args ...any) ([]MediaRecord, error) {
	return queryAll(ctx, s.db, "list media", scanMedia, query, args...)
}

// PlaylistRecord is a stored playlist.
type PlaylistRecord struct {
	protocol.Playlist
	CreatedAt   time.Time
	WithdrawnAt time.Time // zero while not withdrawn
}

const playlistCols = `id, name, items, valid_from, valid_until, targets, created_at, withdrawn_at`

func scanPlaylist(sc scanner) (PlaylistRecord, error) {
	var (
		r                               PlaylistRecord
		from, until, created, withdrawn sql.NullInt64
		items, targets                  string
	)
	if err := sc.Scan(&r.ID, &r.Name, &items, &from, &until, &targets, &created, &withdrawn); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(items), &r.Items); err != nil {
		return r, fmt.Errorf("playlist %s: items: %w", r.ID, err)
	}
	if err := json.Unmarshal([]byte(targets), &r.Targets); err != nil {
		return r, fmt.Errorf("playlist %s: targets: %w", r.ID, err)
	}
	r.ValidFrom, r.ValidUntil = fromNanos(from), fromNanos(until)
	r.CreatedAt, r.WithdrawnAt = fromNanos(created), fromNanos(withdrawn)
	return r, nil
}

// CreatePlaylist stores a new playlist.
func (s *SQLite) CreatePlaylist(ctx context.Context, p protocol.Playlist, createdAt time.Time) error {
	items, err := json.Marshal(p.Items)
	if err != nil {
		return fmt.Errorf("store: create playlist %s: items: %w", p.ID, err)
	}
	targets, err := json.Marshal(p.Targets)
	if err != nil {
		return fmt.Errorf("store: create playlist %s: targets: %w", p.ID, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO playlists (`+playlistCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, NULL)`,
		p.ID, p.Name, string(items), nanos(p.ValidFrom), nanos(p.ValidUntil), string(targets), nanos(createdAt)); err != nil {
		return fmt.Errorf("store: create playlist %s: %w", p.ID, err)
	}
	return nil
}

// Playlist returns one playlist, or ErrNotFound.
func (s *SQLite) Playlist(ctx context.Context, id string) (PlaylistRecord, error) {
	return queryOne(ctx, s.db, "playlist "+id, scanPlaylist, `SELECT `+playlistCols+` FROM playlists WHERE id = ?`, id)
}

// Playlists returns every playlist, newest first.
func (s *SQLite) Playlists(ctx context.Context) ([]PlaylistRecord, error) {
	return s.queryPlaylists(ctx, `SELECT `+playlistCols+` FROM playlists ORDER BY created_at DESC, id DESC`)
}

// LivePlaylists returns the playlists neither withdrawn nor expired at now,
// scheduled ones included, oldest first.
func (s *SQLite) LivePlaylists(ctx context.Context, now time.Time) ([]PlaylistRecord, error) {
	return s.queryPlaylists(ctx, `SELECT `+playlistCols+` FROM playlists
		WHERE withdrawn_at IS NULL AND (valid_until IS NULL OR valid_until > ?)
		ORDER BY created_at, id`, now.UnixNano())
}

func (s *SQLite) queryPlaylists(ctx context.Context, query string, args ...any) ([]PlaylistRecord, error) {
	return queryAll(ctx, s.db, "list playlists", scanPlaylist, query, args...)
}

// WithdrawPlaylist marks a playlist withdrawn at t and returns it;
// withdrawing it again changes nothing.
func (s *SQLite) WithdrawPlaylist(ctx context.Context, id string, t time.Time) (PlaylistRecord, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE playlists SET withdrawn_at = ? WHERE id = ? AND withdrawn_at IS NULL`,
		t.UnixNano(), id); err != nil {
		return PlaylistRecord{}, fmt.Errorf("store: withdraw playlist %s: %w", id, err)
	}
	return s.Playlist(ctx, id)
}

// KioskMedia is the media state a kiosk reported in its last heartbeat.
type KioskMedia struct {
	Media      []protocol.MediaStatus
	CacheBytes int64
	CacheQuota int64
	At         time.Time // the heartbeat's arrival; zero if none yet
}

// KioskMedia returns a kiosk's last reported media state, or ErrNotFound.
func (s *SQLite) KioskMedia(ctx context.Context, kiosk string) (KioskMedia, error) {
	var (
		km    KioskMedia
		media string
		at    sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, `SELECT media, cache_bytes, cache_quota, last_seen FROM kiosks WHERE id = ?`, kiosk).
		Scan(&media, &km.CacheBytes, &km.CacheQuota, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return km, fmt.Errorf("store: media of kiosk %s: %w", kiosk, ErrNotFound)
	}
	if err != nil {
		return km, fmt.Errorf("store: media of kiosk %s: %w", kiosk, err)
	}
	if err := json.Unmarshal([]byte(media), &km.Media); err != nil {
		return km, fmt.Errorf("store: media of kiosk %s: %w", kiosk, err)
	}
	km.At = fromNanos(at)
	return km, nil
}

// InsertPlays stores a proof-of-play record exactly once by id; when it
// returns nil the record is durable.
func (s *SQLite) InsertPlays(ctx context.Context, id string, p protocol.PlayStats, receivedAt time.Time) (duplicate bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: plays %s: begin: %w", id, err)
	}
	defer rollback(tx, &err)
	res, err := tx.ExecContext(ctx, `INSERT INTO play_records (id, kiosk, hour, received_at) VALUES (?, ?, ?, ?)
		ON CONFLICT (id) DO NOTHING`, id, p.Kiosk, p.Hour.UnixNano(), receivedAt.UnixNano())
	if err != nil {
		return false, fmt.Errorf("store: plays %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("store: plays %s: %w", id, err)
	} else if n == 0 {
		return true, nil
	}
	for _, c := range p.Items {
		if _, err := tx.ExecContext(ctx, `INSERT INTO plays (record, kiosk, hour, kind, media, notice, count, last)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, id, p.Kiosk, p.Hour.UnixNano(), string(c.Kind), c.Media, c.Notice,
			c.Count, c.Last.UnixNano()); err != nil {
			return false, fmt.Errorf("store: plays %s: %w", id, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: plays %s: commit: %w", id, err)
	}
	return false, nil
}

// PlayTotal is how often an item was shown on one kiosk.
type PlayTotal struct {
	Count int64
	Last  time.Time
}

// Item kinds of deliveries and play totals.
const (
	RefNotice = "notice" // a notice id
	RefMedia  = "media"  // a media file's sha256
)

// PlayTotals returns, per kiosk, how often a notice (kind RefNotice) or a
// media file (RefMedia) was shown.
func (s *SQLite) PlayTotals(ctx context.Context, kind, ref string) (map[string]PlayTotal, error) {
	col := "notice"
	if kind == RefMedia {
		col = "media"
	}
	rows, err := s.db.QueryContext(ctx, `SELECT kiosk, SUM(count), MAX(last) FROM plays WHERE `+col+` = ? GROUP BY kiosk`, ref)
	if err != nil {
		return nil, fmt.Errorf("store: plays of %s: %w", ref, err)
	}
	defer rows.Close()
	out := map[string]PlayTotal{}
	for rows.Next() {
		var (
			k    string
			t    PlayTotal
			last sql.NullInt64
		)
		if err := rows.Scan(&k, &t.Count, &last); err != nil {
			return nil, fmt.Errorf("store: plays of %s: %w", ref, err)
		}
		t.Last = fromNanos(last)
		out[k] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: plays of %s: %w", ref, err)
	}
	return out, nil
}

// DeliveryRef names an item of a published desired state.
type DeliveryRef struct {
	Kind string // RefNotice or RefMedia
	Ref  string
}

// RecordDelivery notes that the kiosk's desired state of version, holding
// refs, was published at t; an item keeps the first version it was sent in.
func (s *SQLite) RecordDelivery(ctx context.Context, kiosk string, version int64, refs []DeliveryRef, t time.Time) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: delivery to %s: begin: %w", kiosk, err)
	}
	defer rollback(tx, &err)
	for _, r := range refs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO deliveries (kiosk, kind, ref, version, published_at)
			VALUES (?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, kiosk, r.Kind, r.Ref, version, t.UnixNano()); err != nil {
			return fmt.Errorf("store: delivery to %s: %w", kiosk, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: delivery to %s: commit: %w", kiosk, err)
	}
	return nil
}

// Delivery is when an item was first sent to a kiosk.
type Delivery struct {
	Version     int64
	PublishedAt time.Time
}

// Deliveries returns, per kiosk, the first desired version that held the item.
func (s *SQLite) Deliveries(ctx context.Context, kind, ref string) (map[string]Delivery, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT kiosk, version, published_at FROM deliveries WHERE kind = ? AND ref = ?`, kind, ref)
	if err != nil {
		return nil, fmt.Errorf("store: deliveries of %s: %w", ref, err)
	}
	defer rows.Close()
	out := map[string]Delivery{}
	for rows.Next() {
		var (
			k  string
			d  Delivery
			at sql.NullInt64
		)
		if err := rows.Scan(&k, &d.Version, &at); err != nil {
			return nil, fmt.Errorf("store: deliveries of %s: %w", ref, err)
		}
		d.PublishedAt = fromNanos(at)
		out[k] = d
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: deliveries of %s: %w", ref, err)
	}
	return out, nil
}
