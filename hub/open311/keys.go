package open311

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Errors of key management (wrapped).
var (
	// ErrInvalidKeyRequest means a key request lacks a name or nodes, or
	// names an unknown node or source.
	ErrInvalidKeyRequest = errors.New("open311: invalid key request")
	// ErrKeyNotFound means no key has the id.
	ErrKeyNotFound = errors.New("open311: no such key")
)

// Limits of a key request.
const (
	MaxKeyRequest = 8 << 10
	MaxKeyName    = 100
	MaxKeyNodes   = 50
)

// KeyPrefix starts every API key, so a leaked one is easy to recognise.
const KeyPrefix = "o311_"

// KeyRequest is the body of POST /api/v1/open311/keys.
type KeyRequest struct {
	Name   string   `json:"name"`
	Nodes  []string `json:"nodes"`
	Source string   `json:"source,omitempty"` // hotline or partner (default)
}

// Key is an API key as the admin endpoints show it (never the secret).
type Key struct {
	ID        string    `json:"id"`
	Name      string    `json:"name"`
	Nodes     []string  `json:"nodes"`
	Source    string    `json:"source"`
	CreatedAt time.Time `json:"created_at"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// KeyCreated is the reply to a key request: the key and its secret, shown
// this once.
type KeyCreated struct {
	Key    Key    `json:"key"`
	APIKey string `json:"api_key"`
}

func keyView(k store.Open311Key) Key {
	return Key{ID: k.ID, Name: k.Name, Nodes: k.Nodes, Source: k.Source, CreatedAt: k.CreatedAt, RevokedAt: k.RevokedAt}
}

// DecodeKeyRequest strictly decodes a key request: at most MaxKeyRequest
// bytes, one JSON object, no unknown fields.
func DecodeKeyRequest(data []byte) (KeyRequest, error) {
	var req KeyRequest
	if len(data) > MaxKeyRequest {
		return req, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidKeyRequest, len(data), MaxKeyRequest)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: %v", ErrInvalidKeyRequest, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return req, fmt.Errorf("%w: trailing data after the JSON object", ErrInvalidKeyRequest)
	}
	return req, nil
}

// CreateKey issues a key: 32 random bytes, of which only the SHA-256 is
// stored. Nodes must be city, district, street or community nodes of the
// org tree. The key (never its secret) is audited: open311_key.create, by
// jsonhttp.Actor(ctx) (Config.Audit).
func (s *Server) CreateKey(ctx context.Context, req KeyRequest) (KeyCreated, error) {
	name := strings.TrimSpace(req.Name)
	if name == "" || !utf8.ValidString(name) || utf8.RuneCountInString(name) > MaxKeyName ||
		strings.IndexFunc(name, unicode.IsControl) >= 0 {
		return KeyCreated{}, fmt.Errorf("%w: name must be 1-%d characters", ErrInvalidKeyRequest, MaxKeyName)
	}
	if len(req.Nodes) == 0 || len(req.Nodes) > MaxKeyNodes {
		return KeyCreated{}, fmt.Errorf("%w: give 1-%d nodes", ErrInvalidKeyRequest, MaxKeyNodes)
	}
	nodes := slices.Clone(req.Nodes)
	slices.Sort(nodes)
	nodes = slices.Compact(nodes)
	for _, id := range nodes {
		n := s.cfg.Tree.Node(id)
		if n == nil || n.Level == protocol.LevelKiosk {
			return KeyCreated{}, fmt.Errorf("%w: %q is not a city, district, street or community of the org tree", ErrInvalidKeyRequest, id)
		}
	}
	src := req.Source
	if src == "" {
		src = string(cases.SourcePartner)
	}
	if src != string(cases.SourcePartner) && src != string(cases.SourceHotline) {
		return KeyCreated{}, fmt.Errorf("%w: source must be hotline or partner", ErrInvalidKeyRequest)
	}
	var b [32]byte
	rand.Read(b[:]) // crypto/rand.Read never returns an error
	secret := KeyPrefix + base64.RawURLEncoding.EncodeToString(b[:])
	sum := sha256.Sum256([]byte(secret))
	k := store.Open311Key{ID: protocol.NewID(), Name: name, KeyHash: sum[:], Nodes: nodes, Source: src,
		CreatedAt: s.cfg.Now().UTC()}
	if err := s.cfg.Store.CreateOpen311Key(ctx, k); err != nil {
		return KeyCreated{}, fmt.Errorf("open311: create key: %w", err)
	}
	s.log.Info("open311: key issued", "id", k.ID, "name", name, "nodes", nodes, "source", src)
	s.audit(ctx, "open311_key.create", k.ID, nil, keyView(k))
	return KeyCreated{Key: keyView(k), APIKey: secret}, nil
}

// Keys lists every key, oldest first.
func (s *Server) Keys(ctx context.Context) ([]Key, error) {
	ks, err := s.cfg.Store.Open311Keys(ctx)
	if err != nil {
		return nil, fmt.Errorf("open311: keys: %w", err)
	}
	out := make([]Key, 0, len(ks))
	for _, k := range ks {
		out = append(out, keyView(k))
	}
	return out, nil
}

// RevokeKey revokes a key at once (idempotent). The revocation is audited
// (open311_key.revoke, by jsonhttp.Actor(ctx); not again for a key revoked
// already).
func (s *Server) RevokeKey(ctx context.Context, id string) (Key, error) {
	all, err := s.cfg.Store.Open311Keys(ctx)
	if err != nil {
		return Key{}, fmt.Errorf("open311: revoke key %s: %w", id, err)
	}
	i := slices.IndexFunc(all, func(k store.Open311Key) bool { return k.ID == id })
	if i < 0 {
		return Key{}, fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	before := all[i]
	k, err := s.cfg.Store.RevokeOpen311Key(ctx, id, s.cfg.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		return Key{}, fmt.Errorf("%w: %s", ErrKeyNotFound, id)
	}
	if err != nil {
		return Key{}, fmt.Errorf("open311: revoke key %s: %w", id, err)
	}
	s.log.Info("open311: key revoked", "id", k.ID, "name", k.Name)
	if before.RevokedAt.IsZero() {
		s.audit(ctx, "open311_key.revoke", k.ID, keyView(before), keyView(k))
	}
	return keyView(k), nil
}

// audit records a change of key id through Config.Audit, if set.
func (s *Server) audit(ctx context.Context, action, id string, before, after any) {
	if s.cfg.Audit != nil {
		s.cfg.Audit(ctx, action, "open311_key:"+id, before, after)
	}
}

// RegisterAdmin adds the key management endpoints, to be served behind
// the admin token (hub/api's Handle; the hub CLI calls them):
//
//	POST /api/v1/open311/keys               KeyRequest → 201 KeyCreated
//	GET  /api/v1/open311/keys               → {"keys":[Key]}
//	POST /api/v1/open311/keys/{id}/revoke   → 200 Key
func (s *Server) RegisterAdmin(m Mux) {
	m.Handle("POST /api/v1/open311/keys", http.HandlerFunc(s.createKeyHandler))
	m.Handle("GET /api/v1/open311/keys", http.HandlerFunc(s.listKeysHandler))
	m.Handle("POST /api/v1/open311/keys/{id}/revoke", http.HandlerFunc(s.revokeKeyHandler))
}

func (s *Server) createKeyHandler(w http.ResponseWriter, r *http.Request) {
	body, code, err := jsonhttp.ReadBody(r, MaxKeyRequest)
	if err != nil {
		s.jsonError(w, code, err)
		return
	}
	req, err := DecodeKeyRequest(body)
	if err != nil {
		s.jsonError(w, http.StatusBadRequest, err)
		return
	}
	kc, err := s.CreateKey(r.Context(), req)
	switch {
	case errors.Is(err, ErrInvalidKeyRequest):
		s.jsonError(w, http.StatusBadRequest, err)
	case err != nil:
		s.jsonError(w, http.StatusInternalServerError, err)
	default:
		jsonhttp.Write(w, s.log, http.StatusCreated, kc)
	}
}

// KeyList is the reply of GET /api/v1/open311/keys.
type KeyList struct {
	Keys []Key `json:"keys"`
}

func (s *Server) listKeysHandler(w http.ResponseWriter, r *http.Request) {
	ks, err := s.Keys(r.Context())
	if err != nil {
		s.jsonError(w, http.StatusInternalServerError, err)
		return
	}
	jsonhttp.Write(w, s.log, http.StatusOK, KeyList{Keys: ks})
}

func (s *Server) revokeKeyHandler(w http.ResponseWriter, r *http.Request) {
	k, err := s.RevokeKey(r.Context(), r.PathValue("id"))
	switch {
	case errors.Is(err, ErrKeyNotFound):
		s.jsonError(w, http.StatusNotFound, err)
	case err != nil:
		s.jsonError(w, http.StatusInternalServerError, err)
	default:
		jsonhttp.Write(w, s.log, http.StatusOK, k)
	}
}
