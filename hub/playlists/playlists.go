// Package playlists is the staff API of playlists (what kiosks play when
// nobody uses them):
//
//	POST /api/v1/playlists                 Request → 201 View
//	GET  /api/v1/playlists[?all=1]         → {"playlists":[View]} (scheduled and active; all=1 adds expired and withdrawn)
//	GET  /api/v1/playlists/{id}            → View
//	POST /api/v1/playlists/{id}/withdraw   → 200 View (idempotent)
//
// A playlist is validated like a notice (targets in the org tree) and each
// image or video item must name a ready media file (by media id or by the
// SHA-256 of its kiosk file) of the item's kind; a notice item must name an
// existing notice. Items are stored with the kiosk file's SHA-256.
//
// Playlists created and withdrawn are recorded in the audit log with the
// request's actor (Config.Audit).
package playlists

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// MaxRequestSize bounds a playlist request body.
const MaxRequestSize = 64 << 10

// Store is what the playlists API needs from the hub database.
type Store interface {
	CreatePlaylist(ctx context.Context, p protocol.Playlist, createdAt time.Time) error
	Playlist(ctx context.Context, id string) (store.PlaylistRecord, error)
	Playlists(ctx context.Context) ([]store.PlaylistRecord, error)
	WithdrawPlaylist(ctx context.Context, id string, at time.Time) (store.PlaylistRecord, error)
	Media(ctx context.Context, id string) (store.MediaRecord, error)
	ReadyMedia(ctx context.Context, sha string) (store.MediaRecord, error)
	Notice(ctx context.Context, id string) (store.NoticeRecord, error)
}

var _ Store = (*store.SQLite)(nil)

// Config configures the API.
type Config struct {
	Store Store         // required
	Tree  *orgtree.Tree // required
	// Changed, if set, is called after a playlist was created or withdrawn
	// and committed, before the reply.
	Changed func(ctx context.Context, p protocol.Playlist)
	// Audit, if set, records a committed change in the hub's audit log:
	// playlist.create and playlist.withdraw of "playlist:<id>", with the
	// View before and after. Who made it is jsonhttp.Actor(ctx), which the
	// function resolves itself. nil: no audit.
	Audit func(ctx context.Context, action, object string, before, after any)
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// API serves the playlist endpoints.
type API struct {
	cfg Config
	log *slog.Logger
}

// New returns the API.
func New(cfg Config, log *slog.Logger) (*API, error) {
	if cfg.Store == nil || cfg.Tree == nil {
		return nil, errors.New("playlists: Store and Tree are required")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &API{cfg: cfg, log: log}, nil
}

// Mux is where the API adds its endpoints (hub/api.API).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Register adds the endpoints.
func (a *API) Register(m Mux) {
	m.Handle("POST /api/v1/playlists", http.HandlerFunc(a.create))
	m.Handle("GET /api/v1/playlists", http.HandlerFunc(a.list))
	m.Handle("GET /api/v1/playlists/{id}", http.HandlerFunc(a.get))
	m.Handle("POST /api/v1/playlists/{id}/withdraw", http.HandlerFunc(a.withdraw))
}

// Item is one item of a playlist request.
type Item struct {
	Kind       protocol.ItemKind `json:"kind"`
	Media      string            `json:"media,omitempty"` // media id, or the sha256 of a ready kiosk file
	Notice     string            `json:"notice,omitempty"`
	DurationMS int64             `json:"duration_ms,omitempty"`
}

// Request is the body of POST /api/v1/playlists. The hub assigns the id.
type Request struct {
	Name       string            `json:"name"`
	Items      []Item            `json:"items"`
	ValidFrom  time.Time         `json:"valid_from,omitzero"`  // default: now
	ValidUntil time.Time         `json:"valid_until,omitzero"` // default: no end
	Targets    []protocol.Target `json:"targets"`
}

// DecodeRequest strictly decodes a playlist request: at most MaxRequestSize
// bytes, one JSON object, no unknown fields. It does not validate values.
func DecodeRequest(data []byte) (Request, error) {
	var req Request
	if len(data) > MaxRequestSize {
		return req, fmt.Errorf("playlist request is %d bytes, limit %d", len(data), MaxRequestSize)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return req, fmt.Errorf("playlist request: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return req, errors.New("playlist request: trailing data after JSON object")
	}
	if len(req.Items) > protocol.MaxPlaylistItems {
		return req, fmt.Errorf("playlist request: %d items, limit %d", len(req.Items), protocol.MaxPlaylistItems)
	}
	return req, nil
}

// View is a playlist as the API shows it.
type View struct {
	protocol.Playlist
	Status      string    `json:"status"` // scheduled, active, expired or withdrawn
	CreatedAt   time.Time `json:"created_at"`
	WithdrawnAt time.Time `json:"withdrawn_at,omitzero"`
}

// Playlist statuses.
const (
	StatusScheduled = store.StatusScheduled
	StatusActive    = store.StatusActive
	StatusExpired   = store.StatusExpired
	StatusWithdrawn = store.StatusWithdrawn
)

// ViewOf returns the API view of a stored playlist at now.
func ViewOf(r store.PlaylistRecord, now time.Time) View {
	st := store.ScheduleStatus(r.ValidFrom, r.ValidUntil, r.WithdrawnAt, now)
	return View{Playlist: r.Playlist, Status: st, CreatedAt: r.CreatedAt, WithdrawnAt: r.WithdrawnAt}
}

// errBad marks a request error (400) found while resolving items.
type errBad struct{ error }

// resolve turns a request into a playlist: media ids become kiosk-file
// hashes; every referenced file must be ready and of the item's kind, every
// notice must exist.
func (a *API) resolve(ctx context.Context, req Request, id string, now time.Time) (protocol.Playlist, error) {
	p := protocol.Playlist{ID: id, Name: req.Name, ValidFrom: req.ValidFrom, ValidUntil: req.ValidUntil, Targets: req.Targets}
	if p.ValidFrom.IsZero() {
		p.ValidFrom = now
	}
	for i, it := range req.Items {
		out := protocol.PlaylistItem{Kind: it.Kind, Notice: it.Notice, DurationMS: it.DurationMS}
		switch it.Kind {
		case protocol.ItemImage, protocol.ItemVideo:
			var (
				m   store.MediaRecord
				err error
			)
			if protocol.ValidSHA256(it.Media) == nil {
				m, err = a.cfg.Store.ReadyMedia(ctx, it.Media)
			} else if protocol.ValidID(it.Media) == nil {
				m, err = a.cfg.Store.Media(ctx, it.Media)
			} else {
				return p, errBad{fmt.Errorf("items[%d]: media %q is neither a media id nor a sha256", i, it.Media)}
			}
			if errors.Is(err, store.ErrNotFound) {
				return p, errBad{fmt.Errorf("items[%d]: no media %q", i, it.Media)}
			}
			if err != nil {
				return p, err
			}
			if m.Status != store.MediaReady {
				return p, errBad{fmt.Errorf("items[%d]: media %s is %s, not ready", i, m.ID, m.Status)}
			}
			if string(m.Kind) != string(it.Kind) {
				return p, errBad{fmt.Errorf("items[%d]: media %s is a %s, the item a %s", i, m.ID, m.Kind, it.Kind)}
			}
			out.Media = m.SHA256
		case protocol.ItemNotice:
			if protocol.ValidID(it.Notice) == nil {
				if _, err := a.cfg.Store.Notice(ctx, it.Notice); errors.Is(err, store.ErrNotFound) {
					return p, errBad{fmt.Errorf("items[%d]: no notice %q", i, it.Notice)}
				} else if err != nil {
					return p, err
				}
			}
		}
		p.Items = append(p.Items, out)
	}
	if err := p.Validate(); err != nil {
		return p, errBad{err}
	}
	if _, err := a.cfg.Tree.Resolve(p.Targets); err != nil {
		return p, errBad{err}
	}
	return p, nil
}

func (a *API) create(w http.ResponseWriter, r *http.Request) {
	body, code, err := jsonhttp.ReadBody(r, MaxRequestSize)
	if err != nil {
		jsonhttp.Error(w, a.log, code, err)
		return
	}
	req, err := DecodeRequest(body)
	if err != nil {
		jsonhttp.Error(w, a.log, http.StatusBadRequest, err)
		return
	}
	now := a.cfg.Now().UTC()
	p, err := a.resolve(r.Context(), req, protocol.NewID(), now)
	var bad errBad
	if errors.As(err, &bad) {
		jsonhttp.Error(w, a.log, http.StatusBadRequest, bad.error)
		return
	}
	if err != nil {
		jsonhttp.Error(w, a.log, http.StatusInternalServerError, err)
		return
	}
	if err := a.cfg.Store.CreatePlaylist(r.Context(), p, now); err != nil {
		jsonhttp.Error(w, a.log, http.StatusInternalServerError, err)
		return
	}
	rec, err := a.cfg.Store.Playlist(r.Context(), p.ID)
	if err != nil {
		jsonhttp.Error(w, a.log, http.StatusInternalServerError, err)
		return
	}
	a.log.Info("playlist created", "id", p.ID, "name", p.Name, "items", len(p.Items), "targets", p.Targets)
	v := ViewOf(rec, now)
	a.audit(r.Context(), "playlist.create", p.ID, nil, v)
	if a.cfg.Changed != nil {
		a.cfg.Changed(r.Context(), rec.Playlist)
	}
	jsonhttp.Write(w, a.log, http.StatusCreated, v)
}

func (a *API) list(w http.ResponseWriter, r *http.Request) {
	all := r.URL.Query().Get("all")
	if all != "" && all != "0" && all != "1" {
		jsonhttp.Error(w, a.log, http.StatusBadRequest, fmt.Errorf("all must be 0 or 1, got %q", all))
		return
	}
	recs, err := a.cfg.Store.Playlists(r.Context())
	if err != nil {
		jsonhttp.Error(w, a.log, http.StatusInternalServerError, err)
		return
	}
	now := a.cfg.Now()
	out := []View{}
	for _, rec := range recs {
		v := ViewOf(rec, now)
		if all == "1" || v.Status == StatusActive || v.Status == StatusScheduled {
			out = append(out, v)
		}
	}
	jsonhttp.Write(w, a.log, http.StatusOK, struct {
		Playlists []View `json:"playlists"`
	}{out})
}

func (a *API) get(w http.ResponseWriter, r *http.Request) {
	rec, err := a.cfg.Store.Playlist(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		jsonhttp.Error(w, a.log, http.StatusNotFound, fmt.Errorf("no playlist %q", r.PathValue("id")))
		return
	}
	if err != nil {
		jsonhttp.Error(w, a.log, http.StatusInternalServerError, err)
		return
	}
	jsonhttp.Write(w, a.log, http.StatusOK, ViewOf(rec, a.cfg.Now()))
}

func (a *API) withdraw(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	now := a.cfg.Now().UTC()
	before, err := a.cfg.Store.Playlist(r.Context(), id)
	if errors.Is(err, store.ErrNotFound) {
		jsonhttp.Error(w, a.log, http.StatusNotFound, fmt.Errorf("no playlist %q", id))
		return
	}
	if err != nil {
		jsonhttp.Error(w, a.log, http.StatusInternalServerError, err)
		return
	}
	rec, err := a.cfg.Store.WithdrawPlaylist(r.Context(), id, now)
	if errors.Is(err, store.ErrNotFound) {
		jsonhttp.Error(w, a.log, http.StatusNotFound, fmt.Errorf("no playlist %q", id))
		return
	}
	if err != nil {
		jsonhttp.Error(w, a.log, http.StatusInternalServerError, err)
		return
	}
	a.log.Info("playlist withdrawn", "id", id)
	v := ViewOf(rec, now)
	if before.WithdrawnAt.IsZero() { // a repeated withdrawal changes nothing
		a.audit(r.Context(), "playlist.withdraw", id, ViewOf(before, now), v)
	}
	if a.cfg.Changed != nil {
		a.cfg.Changed(r.Context(), rec.Playlist)
	}
	jsonhttp.Write(w, a.log, http.StatusOK, v)
}

// audit records a change of playlist id through Config.Audit, if set.
func (a *API) audit(ctx context.Context, action, id string, before, after any) {
	if a.cfg.Audit != nil {
		a.cfg.Audit(ctx, action, "playlist:"+id, before, after)
	}
}
