// Package report answers staff questions about content on kiosks, from
// what the hub published (deliveries), what kiosks report in heartbeats
// (content version, media states) and their proof of play:
//
//	GET /api/v1/kiosks/{id}/media        → KioskMedia: every file the kiosk should hold and its state
//	GET /api/v1/playlists/{id}/status    → {"kiosks":[PlaylistKiosk]}: per targeted kiosk, per item
//	GET /api/v1/notices/{id}/delivery    → {"kiosks":[Delivery]}: sent, held, shown
//	GET /api/v1/media/{id}/delivery      → {"kiosks":[Delivery]}: the same for a media file
package report

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"time"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Store is what the reports need from the hub database.
type Store interface {
	Kiosk(ctx context.Context, id string) (store.KioskRecord, error)
	KioskMedia(ctx context.Context, kiosk string) (store.KioskMedia, error)
	Deliveries(ctx context.Context, kind, ref string) (map[string]store.Delivery, error)
	PlayTotals(ctx context.Context, kind, ref string) (map[string]store.PlayTotal, error)
	Notice(ctx context.Context, id string) (store.NoticeRecord, error)
	Playlist(ctx context.Context, id string) (store.PlaylistRecord, error)
	Media(ctx context.Context, id string) (store.MediaRecord, error)
}

var _ Store = (*store.SQLite)(nil)

// Config configures the reports.
type Config struct {
	Store Store         // required
	Tree  *orgtree.Tree // required
	// Wanted returns the media files of a kiosk's current desired state, in
	// order. Required.
	Wanted func(kiosk string) []protocol.MediaRef
}

// Reports serves the report endpoints.
type Reports struct {
	cfg Config
	log *slog.Logger
}

// New returns the reports.
func New(cfg Config, log *slog.Logger) (*Reports, error) {
	if cfg.Store == nil || cfg.Tree == nil || cfg.Wanted == nil {
		return nil, errors.New("report: Store, Tree and Wanted are required")
	}
	return &Reports{cfg: cfg, log: log}, nil
}

// Register adds the endpoints.
func (r *Reports) Register(m interface {
	Handle(pattern string, h http.Handler)
}) {
	m.Handle("GET /api/v1/kiosks/{id}/media", http.HandlerFunc(r.kioskMedia))
	m.Handle("GET /api/v1/playlists/{id}/status", http.HandlerFunc(r.playlistStatus))
	m.Handle("GET /api/v1/notices/{id}/delivery", http.HandlerFunc(r.noticeDelivery))
	m.Handle("GET /api/v1/media/{id}/delivery", http.HandlerFunc(r.mediaDelivery))
}

// FileState is one media file on one kiosk.
type FileState struct {
	SHA256  string              `json:"sha256"`
	Kind    protocol.MediaKind  `json:"kind,omitempty"`
	Size    int64               `json:"size,omitempty"`
	State   protocol.MediaState `json:"state"` // pending until the kiosk reports the file
	Percent int                 `json:"percent"`
	Reason  string              `json:"reason,omitempty"`
}

// KioskMedia is the reply of GET /api/v1/kiosks/{id}/media.
type KioskMedia struct {
	Kiosk      string      `json:"kiosk"`
	CacheBytes int64       `json:"cache_bytes"`
	CacheQuota int64       `json:"cache_quota"`
	ReportedAt time.Time   `json:"reported_at,omitzero"`
	Media      []FileState `json:"media"`
}

// states merges what the kiosk should hold with what it reported.
func states(wanted []protocol.MediaRef, reported []protocol.MediaStatus) []FileState {
	by := make(map[string]protocol.MediaStatus, len(reported))
	for _, s := range reported {
		by[s.SHA256] = s
	}
	out := []FileState{}
	for _, w := range wanted {
		fs := FileState{SHA256: w.SHA256, Kind: w.Kind, Size: w.Size, State: protocol.MediaPending}
		if s, ok := by[w.SHA256]; ok {
			fs.State, fs.Percent, fs.Reason = s.State, s.Percent, s.Reason
			delete(by, w.SHA256)
		}
		out = append(out, fs)
	}
	for _, s := range reported { // reported but no longer wanted (an older desired state)
		if _, ok := by[s.SHA256]; ok {
			out = append(out, FileState{SHA256: s.SHA256, State: s.State, Percent: s.Percent, Reason: s.Reason})
		}
	}
	return out
}

func (r *Reports) kioskMedia(w http.ResponseWriter, req *http.Request) {
	id := req.PathValue("id")
	if _, ok := r.cfg.Tree.Kiosk(id); !ok {
		jsonhttp.Error(w, r.log, http.StatusNotFound, fmt.Errorf("no kiosk %q in the org tree", id))
		return
	}
	km, err := r.KioskMedia(req.Context(), id)
	if err != nil {
		jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
		return
	}
	jsonhttp.Write(w, r.log, http.StatusOK, km)
}

// ItemState is one playlist item on one kiosk.
type ItemState struct {
	Index   int                 `json:"index"`
	Kind    protocol.ItemKind   `json:"kind"`
	Media   string              `json:"media,omitempty"`
	Notice  string              `json:"notice,omitempty"`
	State   protocol.MediaState `json:"state"` // notices: held once the kiosk holds a version with the notice
	Percent int                 `json:"percent"`
	Reason  string              `json:"reason,omitempty"`
}

// PlaylistKiosk is one targeted kiosk in a playlist's status.
type PlaylistKiosk struct {
	Kiosk string      `json:"kiosk"`
	Items []ItemState `json:"items"`
}

func (r *Reports) playlistStatus(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	p, err := r.cfg.Store.Playlist(ctx, req.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		jsonhttp.Error(w, r.log, http.StatusNotFound, fmt.Errorf("no playlist %q", req.PathValue("id")))
		return
	}
	if err != nil {
		jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
		return
	}
	kiosks, err := r.cfg.Tree.Resolve(p.Targets)
	if err != nil {
		jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
		return
	}
	notices := map[string]map[string]store.Delivery{}
	for _, it := range p.Items {
		if it.Kind == protocol.ItemNotice && notices[it.Notice] == nil {
			d, err := r.cfg.Store.Deliveries(ctx, store.RefNotice, it.Notice)
			if err != nil {
				jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
				return
			}
			notices[it.Notice] = d
		}
	}
	out := []PlaylistKiosk{}
	for _, k := range kiosks {
		km, err := r.cfg.Store.KioskMedia(ctx, k)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
			return
		}
		rec, err := r.cfg.Store.Kiosk(ctx, k)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
			return
		}
		by := map[string]protocol.MediaStatus{}
		for _, s := range km.Media {
			by[s.SHA256] = s
		}
		pk := PlaylistKiosk{Kiosk: k, Items: []ItemState{}}
		for i, it := range p.Items {
			is := ItemState{Index: i, Kind: it.Kind, Media: it.Media, Notice: it.Notice, State: protocol.MediaPending}
			if it.Kind == protocol.ItemNotice {
				if d, ok := notices[it.Notice][k]; ok && rec.ContentVersion >= d.Version {
					is.State, is.Percent = protocol.MediaHeld, 100
				}
			} else if s, ok := by[it.Media]; ok {
				is.State, is.Percent, is.Reason = s.State, s.Percent, s.Reason
			}
			pk.Items = append(pk.Items, is)
		}
		out = append(out, pk)
	}
	jsonhttp.Write(w, r.log, http.StatusOK, struct {
		Playlist string          `json:"playlist"`
		Kiosks   []PlaylistKiosk `json:"kiosks"`
	}{p.ID, out})
}

// Delivery is where one notice or media file is on one targeted kiosk.
type Delivery struct {
	Kiosk   string    `json:"kiosk"`
	Sent    bool      `json:"sent"`              // a desired state holding it was published
	Version int64     `json:"version,omitempty"` // the first such version
	SentAt  time.Time `json:"sent_at,omitzero"`
	Held    bool      `json:"held"` // the kiosk holds it
	Shown   int64     `json:"shown"`
	Last    time.Time `json:"last_shown,omitzero"`
}

func (r *Reports) delivery(ctx context.Context, kind, ref string, kiosks []string) ([]Delivery, error) {
	sent, err := r.cfg.Store.Deliveries(ctx, kind, ref)
	if err != nil {
		return nil, err
	}
	plays, err := r.cfg.Store.PlayTotals(ctx, kind, ref)
	if err != nil {
		return nil, err
	}
	out := []Delivery{}
	for _, k := range kiosks {
		d := Delivery{Kiosk: k}
		if s, ok := sent[k]; ok {
			d.Sent, d.Version, d.SentAt = true, s.Version, s.PublishedAt
			if kind == store.RefNotice {
				rec, err := r.cfg.Store.Kiosk(ctx, k)
				if err != nil && !errors.Is(err, store.ErrNotFound) {
					return nil, err
				}
				d.Held = rec.ContentVersion >= s.Version
			}
		}
		if kind == store.RefMedia {
			km, err := r.cfg.Store.KioskMedia(ctx, k)
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return nil, err
			}
			for _, s := range km.Media {
				if s.SHA256 == ref && s.State == protocol.MediaHeld {
					d.Held = true
				}
			}
		}
		if p, ok := plays[k]; ok {
			d.Shown, d.Last = p.Count, p.Last
		}
		out = append(out, d)
	}
	return out, nil
}

// NoticeDelivery returns where a notice is on each kiosk it targets; an
// unknown id wraps store.ErrNotFound.
func (r *Reports) NoticeDelivery(ctx context.Context, id string) ([]Delivery, error) {
	n, err := r.cfg.Store.Notice(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("report: notice %q: %w", id, err)
	}
	kiosks, err := r.cfg.Tree.Resolve(n.Targets)
	if err != nil {
		return nil, fmt.Errorf("report: notice %q: %w", id, err)
	}
	return r.delivery(ctx, store.RefNotice, n.ID, kiosks)
}

// KioskMedia returns the media a kiosk should hold and what it reported.
func (r *Reports) KioskMedia(ctx context.Context, id string) (KioskMedia, error) {
	km, err := r.cfg.Store.KioskMedia(ctx, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return KioskMedia{}, fmt.Errorf("report: kiosk %q media: %w", id, err)
	}
	return KioskMedia{Kiosk: id, CacheBytes: km.CacheBytes, CacheQuota: km.CacheQuota,
		ReportedAt: km.At, Media: states(r.cfg.Wanted(id), km.Media)}, nil
}

func (r *Reports) noticeDelivery(w http.ResponseWriter, req *http.Request) {
	out, err := r.NoticeDelivery(req.Context(), req.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		jsonhttp.Error(w, r.log, http.StatusNotFound, fmt.Errorf("no notice %q", req.PathValue("id")))
		return
	}
	if err != nil {
		jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
		return
	}
	jsonhttp.Write(w, r.log, http.StatusOK, struct {
		Kiosks []Delivery `json:"kiosks"`
	}{out})
}

func (r *Reports) mediaDelivery(w http.ResponseWriter, req *http.Request) {
	m, err := r.cfg.Store.Media(req.Context(), req.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		jsonhttp.Error(w, r.log, http.StatusNotFound, fmt.Errorf("no media %q", req.PathValue("id")))
		return
	}
	if err != nil {
		jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
		return
	}
	if m.Status != store.MediaReady {
		jsonhttp.Error(w, r.log, http.StatusConflict, fmt.Errorf("media %s is %s, not ready", m.ID, m.Status))
		return
	}
	sent, err := r.cfg.Store.Deliveries(req.Context(), store.RefMedia, m.SHA256)
	if err != nil {
		jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
		return
	}
	var kiosks []string
	for _, k := range r.cfg.Tree.Kiosks() {
		if _, ok := sent[k.ID]; ok {
			kiosks = append(kiosks, k.ID)
		}
	}
	r.writeDelivery(w, req.Context(), store.RefMedia, m.SHA256, kiosks)
}

func (r *Reports) writeDelivery(w http.ResponseWriter, ctx context.Context, kind, ref string, kiosks []string) {
	out, err := r.delivery(ctx, kind, ref, kiosks)
	if err != nil {
		jsonhttp.Error(w, r.log, http.StatusInternalServerError, err)
		return
	}
	jsonhttp.Write(w, r.log, http.StatusOK, struct {
		Kiosks []Delivery `json:"kiosks"`
	}{out})
}
