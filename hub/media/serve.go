package media

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/protocol"
)

// Defaults of the sender.
const (
	DefaultSends = 4
	// SendQueue is how many media requests may wait; beyond that they are
	// dropped (the agents ask again after their timeout).
	SendQueue = 1024
	// serveDeadline is how long one HTTP file transfer may take.
	serveDeadline = time.Hour
)

// Signer gives the key downlink messages are signed with (it may change).
type Signer interface {
	Signer() ed25519.PrivateKey
}

// Publisher publishes a downlink message (the hub's fleet client).
type Publisher interface {
	Publish(ctx context.Context, t protocol.Topic, payload []byte) error
}

// SenderConfig configures a Sender.
type SenderConfig struct {
	Files     *Files // required
	ChunkSize int    // required
	Signer    Signer // required
	// References reports whether a kiosk's desired state references a
	// file; requests for other files are refused. Required.
	References func(kiosk, sha string) bool
	// Sends bounds the requests served at once (each sends its chunks one
	// after the other); default DefaultSends.
	Sends int
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Sender answers kiosks' media requests over MQTT: the signed manifest to
// down/{kiosk}/manifest, each chunk (read with ReadAt) to down/{kiosk}/chunk.
// At most Sends requests are served at once, so a file wanted by the whole
// city cannot take every connection and all memory of the hub.
type Sender struct {
	cfg   SenderConfig
	log   *slog.Logger
	queue chan request

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

type request struct {
	kiosk string
	req   protocol.MediaRequest
}

// NewSender checks cfg and returns an unstarted sender; requests handed to
// it before Start wait in its queue.
func NewSender(cfg SenderConfig, log *slog.Logger) (*Sender, error) {
	if cfg.Files == nil || cfg.Signer == nil || cfg.References == nil || cfg.ChunkSize <= 0 {
		return nil, errors.New("media: sender needs Files, ChunkSize, Signer and References")
	}
	if cfg.Sends <= 0 {
		cfg.Sends = DefaultSends
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	s := &Sender{cfg: cfg, log: log, queue: make(chan request, SendQueue)}
	s.ctx, s.cancel = context.WithCancel(context.Background())
	return s, nil
}

// Start starts the send workers publishing through p.
func (s *Sender) Start(p Publisher) {
	for range s.cfg.Sends {
		s.wg.Add(1)
		go s.work(p)
	}
}

// Close stops the workers; requests not served yet are dropped.
func (s *Sender) Close() error {
	s.cancel()
	s.wg.Wait()
	return nil
}

// HandleRequest queues a kiosk's media request (it never blocks). A request
// for a file the kiosk's desired state does not reference is refused.
func (s *Sender) HandleRequest(kiosk string, req protocol.MediaRequest) {
	if !s.cfg.References(kiosk, req.SHA256) {
		s.log.Warn("refusing a media request for a file not in the kiosk's desired state", "kiosk", kiosk, "sha256", req.SHA256)
		return
	}
	select {
	case s.queue <- request{kiosk, req}:
	default:
		s.log.Warn("media send queue full; dropping a request (the kiosk asks again)", "kiosk", kiosk, "sha256", req.SHA256)
	}
}

func (s *Sender) work(p Publisher) {
	defer s.wg.Done()
	for {
		select {
		case <-s.ctx.Done():
			return
		case r := <-s.queue:
			if err := s.serve(s.ctx, p, r); err != nil && s.ctx.Err() == nil {
				s.log.Warn("serving a media request failed", "kiosk", r.kiosk, "sha256", r.req.SHA256, "err", err)
			}
		}
	}
}

// SignedManifest returns the file's manifest as a signed envelope.
func (s *Sender) SignedManifest(sha string) ([]byte, protocol.Manifest, error) {
	m, err := s.cfg.Files.Manifest(sha, s.cfg.ChunkSize)
	if err != nil {
		return nil, m, err
	}
	b, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeManifest, s.cfg.Now(), m, s.cfg.Signer.Signer())
	if err != nil {
		return nil, m, fmt.Errorf("media: manifest %s: %w", sha, err)
	}
	return b, m, nil
}

func (s *Sender) serve(ctx context.Context, p Publisher, r request) error {
	signed, m, err := s.SignedManifest(r.req.SHA256)
	if err != nil {
		return err
	}
	if r.req.Manifest {
		if err := p.Publish(ctx, protocol.DownTopic(r.kiosk, protocol.ChannelManifest), signed); err != nil {
			return err
		}
	}
	if len(r.req.Chunks) == 0 {
		return nil
	}
	f, err := s.cfg.Files.Open(r.req.SHA256)
	if err != nil {
		return err
	}
	defer f.Close()
	buf := make([]byte, m.ChunkSize)
	topic := protocol.DownTopic(r.kiosk, protocol.ChannelChunk)
	for _, i := range r.req.Chunks {
		if i < 0 || i >= len(m.Chunks) {
			s.log.Warn("media request for a chunk out of range", "kiosk", r.kiosk, "sha256", m.SHA256, "chunk", i)
			continue
		}
		n := m.ChunkLen(i)
		if _, err := f.ReadAt(buf[:n], int64(i)*int64(m.ChunkSize)); err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("media: read chunk %d of %s: %w", i, m.SHA256, err)
		}
		payload, err := protocol.EncodeID(protocol.NewID(), protocol.TypeChunk, s.cfg.Now(),
			protocol.Chunk{SHA256: m.SHA256, Index: i, Data: buf[:n]})
		if err != nil {
			return fmt.Errorf("media: chunk %d of %s: %w", i, m.SHA256, err)
		}
		if err := p.Publish(ctx, topic, payload); err != nil {
			return err
		}
	}
	return nil
}

// HTTPConfig configures the HTTPS file endpoints.
type HTTPConfig struct {
	// Authenticate checks a device's MQTT username and password (sent as
	// HTTP Basic auth) and returns its kiosk id. Required.
	Authenticate func(username, password string) (kiosk string, ok bool)
}

// RegisterHTTP adds the device endpoints (outside /api/, so no admin token):
//
//	GET /media/{sha256}           the file, with Range (206) support
//	GET /media/{sha256}/manifest  the signed manifest envelope
//
// Both need HTTP Basic auth with the device's MQTT credentials (401) and
// serve only files the device's desired state references (404 otherwise).
func (s *Sender) RegisterHTTP(m interface {
	Handle(pattern string, h http.Handler)
}, cfg HTTPConfig) {
	m.Handle("GET /media/{sha}", s.authorized(cfg, s.serveFile))
	m.Handle("GET /media/{sha}/manifest", s.authorized(cfg, s.serveManifest))
}

func (s *Sender) authorized(cfg HTTPConfig, next func(w http.ResponseWriter, r *http.Request, sha string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		user, pass, ok := r.BasicAuth()
		kiosk := ""
		if ok {
			kiosk, ok = cfg.Authenticate(user, pass)
		}
		if !ok {
			w.Header().Set("WWW-Authenticate", `Basic realm="shequ-media"`)
			jsonhttp.Error(w, s.log, http.StatusUnauthorized, errors.New("device credentials required (HTTP Basic auth)"))
			return
		}
		sha := r.PathValue("sha")
		if protocol.ValidSHA256(sha) != nil || !s.cfg.References(kiosk, sha) || !s.cfg.Files.Has(sha) {
			jsonhttp.Error(w, s.log, http.StatusNotFound, fmt.Errorf("no media %q for kiosk %s", sha, kiosk))
			return
		}
		next(w, r, sha)
	})
}

func (s *Sender) serveManifest(w http.ResponseWriter, _ *http.Request, sha string) {
	b, _, err := s.SignedManifest(sha)
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	if _, err := w.Write(b); err != nil {
		s.log.Debug("writing a manifest", "err", err)
	}
}

func (s *Sender) serveFile(w http.ResponseWriter, r *http.Request, sha string) {
	f, err := s.cfg.Files.Open(sha)
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
		return
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
		return
	}
	if err := http.NewResponseController(w).SetWriteDeadline(time.Now().Add(serveDeadline)); err != nil {
		s.log.Warn("could not extend a file transfer's deadline", "err", err)
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+sha+`"`)
	w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	http.ServeContent(w, r, "", st.ModTime(), f)
}
