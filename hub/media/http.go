package media

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// MaxFilename bounds the X-Filename header (bytes).
const MaxFilename = 255

// uploadDeadline is how long one upload may take to arrive.
const uploadDeadline = time.Hour

// ParseUpload checks the headers of an upload: Content-Length is required
// (411) and at most limit (413); X-Filename, optional, is a display name of
// at most MaxFilename bytes of printable UTF-8 without path separators (400);
// it may be percent-encoded (browsers cannot put other than Latin-1 in a
// header), and is decoded when it decodes to valid UTF-8.
func ParseUpload(h http.Header, contentLength, limit int64) (filename string, code int, err error) {
	if contentLength < 0 {
		return "", http.StatusLengthRequired, errors.New("Content-Length is required")
	}
	if contentLength == 0 {
		return "", http.StatusBadRequest, errors.New("empty upload")
	}
	if contentLength > limit {
		return "", http.StatusRequestEntityTooLarge, fmt.Errorf("upload of %d bytes, limit %d", contentLength, limit)
	}
	vals := h.Values("X-Filename")
	if len(vals) > 1 {
		return "", http.StatusBadRequest, errors.New("more than one X-Filename")
	}
	if len(vals) == 0 {
		return "", 0, nil
	}
	name := strings.TrimSpace(vals[0])
	if strings.Contains(name, "%") {
		if dec, err := url.PathUnescape(name); err == nil && utf8.ValidString(dec) {
			name = dec
		}
	}
	if len(name) > MaxFilename || !utf8.ValidString(name) {
		return "", http.StatusBadRequest, fmt.Errorf("X-Filename must be UTF-8 of at most %d bytes", MaxFilename)
	}
	for _, r := range name {
		if !unicode.IsPrint(r) || r == '/' || r == '\\' {
			return "", http.StatusBadRequest, errors.New("X-Filename holds a control character or a path separator")
		}
	}
	return name, 0, nil
}

// View is a media record as the API shows it.
type View struct {
	ID       string             `json:"id"`
	Filename string             `json:"filename,omitempty"`
	Kind     protocol.MediaKind `json:"kind"`
	Status   string             `json:"status"`
	Percent  int                `json:"percent"`
	Reason   string             `json:"reason,omitempty"`
	Original FileView           `json:"original"`
	File     *FileView          `json:"file,omitempty"` // the kiosk file, once ready
	Created  time.Time          `json:"created_at"`
	Updated  time.Time          `json:"updated_at"`
}

// FileView describes a stored file.
type FileView struct {
	SHA256     string `json:"sha256"`
	Size       int64  `json:"size"`
	Format     string `json:"format,omitempty"`
	DurationMS int64  `json:"duration_ms,omitempty"`
	Width      int    `json:"width,omitempty"`
	Height     int    `json:"height,omitempty"`
}

// ViewOf returns the API view of a record.
func ViewOf(m store.MediaRecord) View {
	v := View{ID: m.ID, Filename: m.Filename, Kind: m.Kind, Status: m.Status, Percent: m.Percent, Reason: m.Reason,
		Original: FileView{SHA256: m.OrigSHA256, Size: m.OrigSize, Format: m.Format}, Created: m.CreatedAt, Updated: m.UpdatedAt}
	if m.Status == store.MediaReady {
		v.File = &FileView{SHA256: m.SHA256, Size: m.Size, DurationMS: m.DurationMS, Width: m.Width, Height: m.Height}
	}
	return v
}

// Mux is where the library adds its endpoints (hub/api.API).
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandleLarge(pattern string, h http.Handler, limit int64)
}

// Register adds the staff endpoints:
//
//	POST /api/v1/media       raw file body (Content-Length, X-Filename) → 202 View; 415 if not an image or video
//	GET  /api/v1/media       → {"media":[View]} newest first
//	GET  /api/v1/media/{id}  → View
func (l *Library) Register(m Mux) {
	m.HandleLarge("POST /api/v1/media", http.HandlerFunc(l.upload), l.cfg.MaxUpload)
	m.Handle("GET /api/v1/media", http.HandlerFunc(l.list))
	m.Handle("GET /api/v1/media/{id}", http.HandlerFunc(l.get))
}

// UploadHandler is the upload endpoint's handler, for other front ends
// (the staff console) to mount behind their own authentication.
func (l *Library) UploadHandler() http.Handler { return http.HandlerFunc(l.upload) }

// MaxUpload is the largest upload accepted, in bytes.
func (l *Library) MaxUpload() int64 { return l.cfg.MaxUpload }

func (l *Library) upload(w http.ResponseWriter, r *http.Request) {
	name, code, err := ParseUpload(r.Header, r.ContentLength, l.cfg.MaxUpload)
	if err != nil {
		jsonhttp.Error(w, l.log, code, err)
		return
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(uploadDeadline)
	if err := errors.Join(rc.SetReadDeadline(deadline), rc.SetWriteDeadline(deadline)); err != nil {
		l.log.Warn("could not extend the upload's deadlines", "err", err)
	}
	body := &errReader{r: r.Body}
	m, err := l.Upload(r.Context(), body, name)
	var tooLarge *http.MaxBytesError
	switch {
	case errors.Is(err, ErrUnsupported):
		jsonhttp.Error(w, l.log, http.StatusUnsupportedMediaType,
			fmt.Errorf("not a PNG, JPEG or WebP image nor a video: %w", err))
	case errors.As(err, &tooLarge) || errors.Is(err, ErrTooLarge):
		jsonhttp.Error(w, l.log, http.StatusRequestEntityTooLarge, fmt.Errorf("upload larger than %d bytes", l.cfg.MaxUpload))
	case err != nil && (body.err != nil || r.Context().Err() != nil):
		jsonhttp.Error(w, l.log, http.StatusBadRequest, fmt.Errorf("upload interrupted: %w", err))
	case err != nil:
		jsonhttp.Error(w, l.log, http.StatusInternalServerError, err)
	default:
		jsonhttp.Write(w, l.log, http.StatusAccepted, ViewOf(m))
	}
}

// errReader remembers a read error of the request body, so an upload cut
// short by the client is told apart from a failure of the hub.
type errReader struct {
	r   io.Reader
	err error
}

func (e *errReader) Read(p []byte) (int, error) {
	n, err := e.r.Read(p)
	if err != nil && err != io.EOF {
		e.err = err
	}
	return n, err
}

func (l *Library) list(w http.ResponseWriter, r *http.Request) {
	ms, err := l.cfg.Store.MediaList(r.Context())
	if err != nil {
		jsonhttp.Error(w, l.log, http.StatusInternalServerError, err)
		return
	}
	out := make([]View, len(ms))
	for i, m := range ms {
		out[i] = ViewOf(m)
	}
	jsonhttp.Write(w, l.log, http.StatusOK, struct {
		Media []View `json:"media"`
	}{out})
}

func (l *Library) get(w http.ResponseWriter, r *http.Request) {
	m, err := l.cfg.Store.Media(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		jsonhttp.Error(w, l.log, http.StatusNotFound, fmt.Errorf("no media %q", r.PathValue("id")))
		return
	}
	if err != nil {
		jsonhttp.Error(w, l.log, http.StatusInternalServerError, err)
		return
	}
	jsonhttp.Write(w, l.log, http.StatusOK, ViewOf(m))
}
