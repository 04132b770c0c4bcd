package protocol

import (
	"encoding/hex"
	"fmt"
	"time"
)

// Media, playlists and proof of play (protocol v3).
//
// Media files are content-addressed: a file is named by the SHA-256 of its
// bytes. The desired state lists the playlists a kiosk should play and the
// media they need (MediaRef). The agent fetches each file in chunks: it asks
// for the file's Manifest (signed by the hub: the size, the chunk size and
// the SHA-256 of every chunk), then for chunks, each checked against the
// manifest as it arrives, then the whole file against its name, and only
// then renames it into place. Chunks are not signed one by one: the signed
// manifest covers them.
//
//	shequ/v3/up/{kiosk}/media       agent → hub  QoS 1        MediaRequest (a manifest, or chunks)
//	shequ/v3/down/{kiosk}/manifest  hub → agent  QoS 1        Manifest (signed)
//	shequ/v3/down/{kiosk}/chunk     hub → agent  QoS 1        Chunk (checked against the manifest)
//	shequ/v3/up/{kiosk}/plays       agent → hub  QoS 1        PlayStats (an outbox record, acknowledged)
//
// The same manifest envelope and the file's bytes (with Range) are also
// served over HTTPS by the hub, for kiosks configured to fetch media that way.

// MediaKind is the kind of a media file.
type MediaKind string

// Media kinds.
const (
	MediaImage MediaKind = "image"
	MediaVideo MediaKind = "video"
)

// MediaKinds lists every media kind.
var MediaKinds = []MediaKind{MediaImage, MediaVideo}

// ItemKind is the kind of a playlist item.
type ItemKind string

// Playlist item kinds.
const (
	ItemImage  ItemKind = "image"  // a still image shown for DurationMS
	ItemVideo  ItemKind = "video"  // a video played to its end
	ItemNotice ItemKind = "notice" // a notice drawn as a card for DurationMS
)

// ItemKinds lists every playlist item kind.
var ItemKinds = []ItemKind{ItemImage, ItemVideo, ItemNotice}

// MediaState is where a kiosk is with one media file.
type MediaState string

// Media states, as reported in heartbeats.
const (
	MediaPending     MediaState = "pending"     // wanted, not started (e.g. waiting for its staggered start)
	MediaDownloading MediaState = "downloading" // chunks arriving
	MediaHeld        MediaState = "held"        // complete and verified
	MediaFailed      MediaState = "failed"      // gave up for now; Reason says why
)

// MediaStates lists every media state.
var MediaStates = []MediaState{MediaPending, MediaDownloading, MediaHeld, MediaFailed}

// Limits of media messages.
const (
	MaxMedia          = 100              // media files in one desired state
	MaxPlaylists      = 20               // playlists in one desired state
	MaxPlaylistItems  = 100              // items in one playlist
	MaxMediaSize      = 2 << 30          // bytes in one media file
	MinChunkSize      = 16 << 10         // bytes
	MaxChunkSize      = 4 << 20          // bytes
	MaxManifestChunks = 1 << 15          // chunks in one manifest
	MaxRequestChunks  = 64               // chunk indexes in one MediaRequest
	MaxPlayItems      = 500              // items in one PlayStats record
	MaxItemDuration   = 10 * time.Minute // display time of an image or notice card
)

// ValidSHA256 checks a hex SHA-256 (64 lowercase hex digits).
func ValidSHA256(s string) error {
	if len(s) != 64 {
		return fmt.Errorf("%w: sha256 %q is not 64 hex digits", ErrInvalid, s)
	}
	if _, err := hex.DecodeString(s); err != nil {
		return fmt.Errorf("%w: sha256 %q is not hex", ErrInvalid, s)
	}
	for _, r := range s {
		if r >= 'A' && r <= 'F' {
			return fmt.Errorf("%w: sha256 %q must be lowercase", ErrInvalid, s)
		}
	}
	return nil
}

// MediaRef names a media file a kiosk should hold.
type MediaRef struct {
	SHA256 string    `json:"sha256"`
	Kind   MediaKind `json:"kind"`
	Size   int64     `json:"size"`
}

// Validate checks a media reference.
func (m MediaRef) Validate() error {
	if err := firstErr(ValidSHA256(m.SHA256), oneOf("media kind", m.Kind, MediaKinds)); err != nil {
		return err
	}
	if m.Size <= 0 || m.Size > MaxMediaSize {
		return fmt.Errorf("%w: media size %d out of 1..%d", ErrInvalid, m.Size, int64(MaxMediaSize))
	}
	return nil
}

// PlaylistItem is one step of a playlist.
type PlaylistItem struct {
	Kind       ItemKind `json:"kind"`
	Media      string   `json:"media,omitempty"`       // sha256, for image and video items
	Notice     string   `json:"notice,omitempty"`      // notice id, for notice items
	DurationMS int64    `json:"duration_ms,omitempty"` // display time of image and notice items
}

// Validate checks an item.
func (i PlaylistItem) Validate() error {
	if err := oneOf("item kind", i.Kind, ItemKinds); err != nil {
		return err
	}
	switch i.Kind {
	case ItemNotice:
		if i.Media != "" {
			return fmt.Errorf("%w: a notice item names no media", ErrInvalid)
		}
		if err := id("item notice", i.Notice); err != nil {
			return err
		}
	default:
		if i.Notice != "" {
			return fmt.Errorf("%w: a %s item names no notice", ErrInvalid, i.Kind)
		}
		if err := ValidSHA256(i.Media); err != nil {
			return err
		}
	}
	if i.Kind == ItemVideo {
		if i.DurationMS != 0 {
			return fmt.Errorf("%w: a video plays to its end; duration_ms must be empty", ErrInvalid)
		}
		return nil
	}
	if i.DurationMS < 1000 || time.Duration(i.DurationMS)*time.Millisecond > MaxItemDuration {
		return fmt.Errorf("%w: duration_ms %d out of 1000..%d", ErrInvalid, i.DurationMS, MaxItemDuration.Milliseconds())
	}
	return nil
}

// Playlist is what a kiosk plays when nobody is using it (the attract loop).
type Playlist struct {
	ID         string         `json:"id"`
	Name       string         `json:"name"`
	Items      []PlaylistItem `json:"items"`
	ValidFrom  time.Time      `json:"valid_from"`
	ValidUntil time.Time      `json:"valid_until,omitzero"` // zero: no end
	Targets    []Target       `json:"targets"`
}

// Active reports whether the playlist should play at t.
func (p Playlist) Active(t time.Time) bool {
	return !t.Before(p.ValidFrom) && (p.ValidUntil.IsZero() || t.Before(p.ValidUntil))
}

// Validate checks a playlist.
func (p Playlist) Validate() error {
	if err := firstErr(id("playlist id", p.ID), text("playlist name", p.Name, true, MaxTitle)); err != nil {
		return err
	}
	if len(p.Items) == 0 || len(p.Items) > MaxPlaylistItems {
		return fmt.Errorf("%w: playlist needs 1-%d items, has %d", ErrInvalid, MaxPlaylistItems, len(p.Items))
	}
	for i, it := range p.Items {
		if err := it.Validate(); err != nil {
			return fmt.Errorf("items[%d]: %w", i, err)
		}
	}
	if p.ValidFrom.IsZero() {
		return fmt.Errorf("%w: playlist valid_from is required", ErrInvalid)
	}
	if !p.ValidUntil.IsZero() && !p.ValidUntil.After(p.ValidFrom) {
		return fmt.Errorf("%w: playlist valid_until is not after valid_from", ErrInvalid)
	}
	if len(p.Targets) == 0 || len(p.Targets) > MaxTargets {
		return fmt.Errorf("%w: playlist needs 1-%d targets, has %d", ErrInvalid, MaxTargets, len(p.Targets))
	}
	for i, t := range p.Targets {
		if err := t.Validate(); err != nil {
			return fmt.Errorf("targets[%d]: %w", i, err)
		}
	}
	return nil
}

// MediaRequest asks the hub for a file's manifest, or for some of its chunks.
type MediaRequest struct {
	SHA256   string `json:"sha256"`
	Manifest bool   `json:"manifest,omitempty"` // send the manifest
	Chunks   []int  `json:"chunks,omitempty"`   // send these chunks (indexes)
}

// Validate checks a request.
func (r MediaRequest) Validate() error {
	if err := ValidSHA256(r.SHA256); err != nil {
		return err
	}
	if !r.Manifest && len(r.Chunks) == 0 {
		return fmt.Errorf("%w: media request asks for nothing", ErrInvalid)
	}
	if len(r.Chunks) > MaxRequestChunks {
		return fmt.Errorf("%w: %d chunks requested, limit %d", ErrInvalid, len(r.Chunks), MaxRequestChunks)
	}
	for _, c := range r.Chunks {
		if c < 0 || c >= MaxManifestChunks {
			return fmt.Errorf("%w: chunk index %d out of range", ErrInvalid, c)
		}
	}
	return nil
}

// Manifest describes a media file for a chunked download; the hub signs it.
type Manifest struct {
	SHA256    string   `json:"sha256"`
	Size      int64    `json:"size"`
	ChunkSize int      `json:"chunk_size"`
	Chunks    []string `json:"chunks"` // SHA-256 of each chunk, in order
}

// ChunkCount is how many chunks a file of size has with chunks of chunkSize.
func ChunkCount(size int64, chunkSize int) int {
	return int((size + int64(chunkSize) - 1) / int64(chunkSize))
}

// ChunkLen is the length of chunk i of the manifest's file.
func (m Manifest) ChunkLen(i int) int {
	if i == len(m.Chunks)-1 {
		return int(m.Size - int64(i)*int64(m.ChunkSize))
	}
	return m.ChunkSize
}

// Validate checks a manifest.
func (m Manifest) Validate() error {
	if err := ValidSHA256(m.SHA256); err != nil {
		return err
	}
	if m.Size <= 0 || m.Size > MaxMediaSize {
		return fmt.Errorf("%w: manifest size %d out of 1..%d", ErrInvalid, m.Size, int64(MaxMediaSize))
	}
	if m.ChunkSize < MinChunkSize || m.ChunkSize > MaxChunkSize {
		return fmt.Errorf("%w: chunk size %d out of %d..%d", ErrInvalid, m.ChunkSize, MinChunkSize, MaxChunkSize)
	}
	n := ChunkCount(m.Size, m.ChunkSize)
	if n > MaxManifestChunks || len(m.Chunks) != n {
		return fmt.Errorf("%w: manifest lists %d chunks, the size needs %d (limit %d)", ErrInvalid, len(m.Chunks), n, MaxManifestChunks)
	}
	for i, c := range m.Chunks {
		if err := ValidSHA256(c); err != nil {
			return fmt.Errorf("chunks[%d]: %w", i, err)
		}
	}
	return nil
}

// Chunk is one piece of a media file.
type Chunk struct {
	SHA256 string `json:"sha256"` // the file
	Index  int    `json:"index"`
	Data   []byte `json:"data"` // base64 in JSON
}

// Validate checks a chunk's shape; its content is checked against the
// manifest by the receiver.
func (c Chunk) Validate() error {
	if err := ValidSHA256(c.SHA256); err != nil {
		return err
	}
	if c.Index < 0 || c.Index >= MaxManifestChunks {
		return fmt.Errorf("%w: chunk index %d out of range", ErrInvalid, c.Index)
	}
	if len(c.Data) == 0 || len(c.Data) > MaxChunkSize {
		return fmt.Errorf("%w: chunk of %d bytes, want 1..%d", ErrInvalid, len(c.Data), MaxChunkSize)
	}
	return nil
}

// PlayCount is how often one item was shown in one hour.
type PlayCount struct {
	Kind   ItemKind  `json:"kind"`
	Media  string    `json:"media,omitempty"`  // sha256 of image and video items
	Notice string    `json:"notice,omitempty"` // notice id of notice cards and notices shown on the home screen
	Count  int       `json:"count"`
	Last   time.Time `json:"last"` // when it was last shown in that hour
}

// Validate checks a count.
func (c PlayCount) Validate() error {
	if err := oneOf("play kind", c.Kind, ItemKinds); err != nil {
		return err
	}
	if c.Kind == ItemNotice {
		if err := id("play notice", c.Notice); err != nil {
			return err
		}
	} else if err := ValidSHA256(c.Media); err != nil {
		return err
	}
	if c.Count <= 0 {
		return fmt.Errorf("%w: play count must be positive", ErrInvalid)
	}
	if c.Last.IsZero() {
		return fmt.Errorf("%w: play last is required", ErrInvalid)
	}
	return nil
}

// PlayStats is a kiosk's proof of play for one hour: an uplink record sent
// through the outbox and acknowledged like feedback.
type PlayStats struct {
	Kiosk string      `json:"kiosk"`
	Hour  time.Time   `json:"hour"` // start of the hour, UTC
	Items []PlayCount `json:"items"`
}

// Validate checks play stats.
func (p PlayStats) Validate() error {
	if err := id("kiosk", p.Kiosk); err != nil {
		return err
	}
	if p.Hour.IsZero() || !p.Hour.Equal(p.Hour.Truncate(time.Hour)) {
		return fmt.Errorf("%w: hour must be the start of an hour", ErrInvalid)
	}
	if len(p.Items) == 0 || len(p.Items) > MaxPlayItems {
		return fmt.Errorf("%w: play stats need 1-%d items, have %d", ErrInvalid, MaxPlayItems, len(p.Items))
	}
	for i, c := range p.Items {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("items[%d]: %w", i, err)
		}
	}
	return nil
}

// MediaStatus is one media file's state on a kiosk, in its heartbeat.
type MediaStatus struct {
	SHA256  string     `json:"sha256"`
	State   MediaState `json:"state"`
	Percent int        `json:"percent"`          // 0..100
	Reason  string     `json:"reason,omitempty"` // why it failed
}

// Validate checks a media status.
func (s MediaStatus) Validate() error {
	if err := firstErr(ValidSHA256(s.SHA256), oneOf("media state", s.State, MediaStates),
		text("media reason", s.Reason, false, MaxReason)); err != nil {
		return err
	}
	if s.Percent < 0 || s.Percent > 100 {
		return fmt.Errorf("%w: percent %d out of 0..100", ErrInvalid, s.Percent)
	}
	return nil
}
