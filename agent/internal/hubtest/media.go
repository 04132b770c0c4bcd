package hubtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"slices"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/protocol"
)

// mediaFile is a file the fake hub serves.
type mediaFile struct {
	data     []byte
	ref      protocol.MediaRef
	manifest []byte // signed envelope
	chunk    int
}

// mediaServer is the fake hub's media side: it answers MediaRequests with
// signed manifests and chunks, counting what was asked.
type mediaServer struct {
	mu        sync.Mutex
	files     map[string]*mediaFile
	chunkReqs map[string]map[int]int // sha → index → times requested
	manReqs   map[string]int
	corrupt   map[string]map[int]bool // chunks to corrupt the next time they are sent
	budget    int                     // chunks still to serve; negative: unlimited
	served    int
	sent      map[string]map[int]int // sha → index → times sent
	ranges    int
}

// AddMedia makes the hub serve data as a media file of kind in chunks of
// chunkSize and returns its reference.
func (h *Hub) AddMedia(data []byte, kind protocol.MediaKind, chunkSize int) protocol.MediaRef {
	h.t.Helper()
	return h.AddMediaSigned(data, kind, chunkSize, h.Key())
}

// AddMediaSigned is AddMedia with the manifest signed by key (a key the
// kiosk may not trust).
func (h *Hub) AddMediaSigned(data []byte, kind protocol.MediaKind, chunkSize int, key ed25519.PrivateKey) protocol.MediaRef {
	h.t.Helper()
	sum := sha256.Sum256(data)
	ref := protocol.MediaRef{SHA256: hex.EncodeToString(sum[:]), Kind: kind, Size: int64(len(data))}
	m := protocol.Manifest{SHA256: ref.SHA256, Size: ref.Size, ChunkSize: chunkSize}
	for i := range protocol.ChunkCount(ref.Size, chunkSize) {
		c := sha256.Sum256(data[i*chunkSize : min(len(data), (i+1)*chunkSize)])
		m.Chunks = append(m.Chunks, hex.EncodeToString(c[:]))
	}
	env := Sign(h.t, protocol.TypeManifest, m, key)
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	h.media.files[ref.SHA256] = &mediaFile{data: data, ref: ref, manifest: env, chunk: chunkSize}
	return ref
}

// AddMediaMislabelled makes the hub serve data under the name (hash) and
// size of other, with a manifest whose chunk hashes match data: every chunk
// passes, the whole file does not. It returns the reference the kiosk is
// given.
func (h *Hub) AddMediaMislabelled(data, other []byte, kind protocol.MediaKind, chunkSize int) protocol.MediaRef {
	h.t.Helper()
	if len(data) != len(other) {
		h.t.Fatal("hubtest: mislabelled media needs two files of one size")
	}
	named := h.AddMedia(other, kind, chunkSize)
	m := protocol.Manifest{SHA256: named.SHA256, Size: named.Size, ChunkSize: chunkSize}
	for i := range protocol.ChunkCount(named.Size, chunkSize) {
		c := sha256.Sum256(data[i*chunkSize : min(len(data), (i+1)*chunkSize)])
		m.Chunks = append(m.Chunks, hex.EncodeToString(c[:]))
	}
	env := Sign(h.t, protocol.TypeManifest, m, h.Key())
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	h.media.files[named.SHA256] = &mediaFile{data: data, ref: named, manifest: env, chunk: chunkSize}
	return named
}

// ChunkRequests returns how often each chunk of sha was requested.
func (h *Hub) ChunkRequests(sha string) map[int]int {
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	out := map[int]int{}
	for i, n := range h.media.chunkReqs[sha] {
		out[i] = n
	}
	return out
}

// ChunksSent returns how often each chunk of sha was sent.
func (h *Hub) ChunksSent(sha string) map[int]int {
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	out := map[int]int{}
	for i, n := range h.media.sent[sha] {
		out[i] = n
	}
	return out
}

// ManifestRequests returns how often the manifest of sha was requested.
func (h *Hub) ManifestRequests(sha string) int {
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	return h.media.manReqs[sha]
}

// ChunksServed returns how many chunks the hub sent.
func (h *Hub) ChunksServed() int {
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	return h.media.served
}

// CorruptChunk makes the next copy of chunk idx of sha sent carry a flipped
// byte.
func (h *Hub) CorruptChunk(sha string, idx int) {
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	if h.media.corrupt[sha] == nil {
		h.media.corrupt[sha] = map[int]bool{}
	}
	h.media.corrupt[sha][idx] = true
}

// LimitChunks makes the hub send only n more chunks (requests beyond are
// counted, not answered); a negative n lifts the limit.
func (h *Hub) LimitChunks(n int) {
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	h.media.budget = n
}

// mediaRequest is a MediaRequest received from a kiosk.
type mediaRequest struct {
	kiosk string
	req   protocol.MediaRequest
}

// serveMedia answers media requests, one at a time, until done closes.
func (h *Hub) serveMedia(reqs <-chan mediaRequest, done <-chan struct{}) {
	for {
		var r mediaRequest
		select {
		case <-done:
			return
		case r = <-reqs:
		}
		ms := &h.media
		ms.mu.Lock()
		f := ms.files[r.req.SHA256]
		if f == nil {
			ms.mu.Unlock()
			h.t.Errorf("hubtest: kiosk %s asked for unknown media %s", r.kiosk, r.req.SHA256)
			continue
		}
		if r.req.Manifest {
			ms.manReqs[r.req.SHA256]++
		}
		type out struct {
			topic protocol.Topic
			data  []byte
		}
		var send []out
		if r.req.Manifest {
			send = append(send, out{protocol.DownTopic(r.kiosk, protocol.ChannelManifest), f.manifest})
		}
		if ms.chunkReqs[r.req.SHA256] == nil {
			ms.chunkReqs[r.req.SHA256] = map[int]int{}
		}
		n := protocol.ChunkCount(f.ref.Size, f.chunk)
		for _, i := range r.req.Chunks {
			ms.chunkReqs[r.req.SHA256][i]++
			if i >= n || ms.budget == 0 {
				continue
			}
			if ms.budget > 0 {
				ms.budget--
			}
			ms.served++
			if ms.sent[r.req.SHA256] == nil {
				ms.sent[r.req.SHA256] = map[int]int{}
			}
			ms.sent[r.req.SHA256][i]++
			data := slices.Clone(f.data[i*f.chunk : min(len(f.data), (i+1)*f.chunk)])
			if ms.corrupt[r.req.SHA256][i] {
				delete(ms.corrupt[r.req.SHA256], i)
				data[0] ^= 0xff
			}
			env, err := protocol.EncodeID(protocol.NewID(), protocol.TypeChunk, time.Now(), protocol.Chunk{SHA256: r.req.SHA256, Index: i, Data: data})
			if err != nil {
				ms.mu.Unlock()
				h.t.Errorf("hubtest: encode chunk: %v", err)
				return
			}
			send = append(send, out{protocol.DownTopic(r.kiosk, protocol.ChannelChunk), env})
		}
		ms.mu.Unlock()
		for _, o := range send {
			tok := h.c.Publish(o.topic.String(), 1, false, o.data)
			if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
				// The kiosk asks again after its timeout.
				continue
			}
		}
	}
}

// onMediaRequest runs in paho's goroutine: decode and hand over.
func (h *Hub) onMediaRequest(reqs chan<- mediaRequest) paho.MessageHandler {
	return func(_ paho.Client, m paho.Message) {
		top, err := protocol.ParseTopic(m.Topic())
		if err != nil {
			h.t.Errorf("hubtest: media request on bad topic: %v", err)
			return
		}
		_, r, err := protocol.DecodeMediaRequest(m.Payload())
		if err != nil {
			h.t.Errorf("hubtest: media request: %v", err)
			return
		}
		select {
		case reqs <- mediaRequest{kiosk: top.Kiosk, req: r}:
		default:
			h.t.Errorf("hubtest: media request queue full")
		}
	}
}

// StartMediaHTTP serves media over HTTPS as the hub does (GET
// /media/{sha}/manifest and /media/{sha} with Range, device credentials
// as basic auth) and returns its base URL; it stops at the end of the
// test. Chunk limits and corruption apply to MQTT only; ranges are
// counted in HTTPRanges.
func (h *Hub) StartMediaHTTP(t testing.TB) string {
	t.Helper()
	mux := http.NewServeMux()
	auth := func(r *http.Request) bool {
		u, p, ok := r.BasicAuth()
		h.b.auth.mu.Lock()
		acc, known := h.b.auth.users[u]
		h.b.auth.mu.Unlock()
		return ok && known && !acc.hub && string(acc.password) == p
	}
	file := func(w http.ResponseWriter, r *http.Request) *mediaFile {
		if !auth(r) {
			http.Error(w, "unauthorised", http.StatusUnauthorized)
			return nil
		}
		h.media.mu.Lock()
		f := h.media.files[r.PathValue("sha")]
		h.media.mu.Unlock()
		if f == nil {
			http.NotFound(w, r)
		}
		return f
	}
	mux.HandleFunc("GET /media/{sha}/manifest", func(w http.ResponseWriter, r *http.Request) {
		if f := file(w, r); f != nil {
			h.media.mu.Lock()
			h.media.manReqs[f.ref.SHA256]++
			h.media.mu.Unlock()
			w.Header().Set("Content-Type", "application/json")
			if _, err := w.Write(f.manifest); err != nil {
				t.Logf("hubtest: write manifest: %v", err)
			}
		}
	})
	mux.HandleFunc("GET /media/{sha}", func(w http.ResponseWriter, r *http.Request) {
		if f := file(w, r); f != nil {
			h.media.mu.Lock()
			h.media.ranges++
			h.media.mu.Unlock()
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(f.data))
		}
	})
	srv := httptest.NewUnstartedServer(mux)
	srv.TLS = h.b.CA.ServerConfig(t)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv.URL
}

// HTTPRanges returns how many file requests the HTTP side served.
func (h *Hub) HTTPRanges() int {
	h.media.mu.Lock()
	defer h.media.mu.Unlock()
	return h.media.ranges
}
