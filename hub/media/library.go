package media

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Store is what the library needs from the hub database.
type Store interface {
	CreateMedia(ctx context.Context, m store.MediaRecord) error
	UpdateMedia(ctx context.Context, m store.MediaRecord) error
	Media(ctx context.Context, id string) (store.MediaRecord, error)
	ReadyMedia(ctx context.Context, sha string) (store.MediaRecord, error)
	MediaList(ctx context.Context) ([]store.MediaRecord, error)
	MediaJobs(ctx context.Context) ([]store.MediaRecord, error)
}

var _ Store = (*store.SQLite)(nil)

// Defaults for zero Config fields.
const (
	DefaultMaxUpload = 500 << 20
	DefaultBitrate   = 4_000_000
	DefaultChunkSize = 256 << 10
	DefaultFFmpeg    = "ffmpeg"
	DefaultFFprobe   = "ffprobe"
	// retryAfter is how long the job queue waits after a database error.
	retryAfter = 5 * time.Second
)

// Config configures the library. Zero values mean the defaults.
type Config struct {
	Dir       string // required: the file store, e.g. DataDir/media
	Store     Store  // required
	MaxUpload int64  // bytes; default 500 MiB
	Bitrate   int    // kiosk video bitrate, bits/s; default 4 Mb/s
	Audio     bool   // keep the audio of videos (AAC)
	ChunkSize int    // manifest chunk size; default 256 KiB
	FFmpeg    string // default "ffmpeg" (from PATH)
	FFprobe   string // default "ffprobe"
	// OnReady, if set, is called after a video's transcode finished and
	// was stored (ready or failed).
	OnReady func(ctx context.Context, m store.MediaRecord)
	// Audit, if set, records a stored upload in the hub's audit log:
	// media.upload of "media:<id>", after: its filename, kind, sha256 and
	// size. Who uploaded it is jsonhttp.Actor(ctx), which the function
	// resolves itself. nil: no audit.
	Audit func(ctx context.Context, action, object string, before, after any)
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// UploadAudit is what the audit log records of an upload (media.upload):
// the original file as uploaded.
type UploadAudit struct {
	Filename string             `json:"filename,omitempty"`
	Kind     protocol.MediaKind `json:"kind"`
	Format   string             `json:"format,omitempty"`
	SHA256   string             `json:"sha256"`
	Size     int64              `json:"size"`
}

// Library stores uploads and runs the transcode queue.
type Library struct {
	cfg   Config
	log   *slog.Logger
	files *Files
	kick  chan struct{}

	cancel context.CancelFunc
	done   chan struct{}
}

// New checks cfg, creates the store's directories and removes leftovers of
// interrupted uploads and transcodes.
func New(cfg Config, log *slog.Logger) (*Library, error) {
	if cfg.Dir == "" || cfg.Store == nil {
		return nil, errors.New("media: Dir and Store are required")
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	if cfg.MaxUpload > protocol.MaxMediaSize {
		return nil, fmt.Errorf("media: MaxUpload %d above the protocol's limit %d", cfg.MaxUpload, int64(protocol.MaxMediaSize))
	}
	if cfg.Bitrate <= 0 {
		cfg.Bitrate = DefaultBitrate
	}
	if cfg.ChunkSize == 0 {
		cfg.ChunkSize = DefaultChunkSize
	}
	if cfg.ChunkSize < protocol.MinChunkSize || cfg.ChunkSize > protocol.MaxChunkSize {
		return nil, fmt.Errorf("media: ChunkSize %d out of %d..%d", cfg.ChunkSize, protocol.MinChunkSize, protocol.MaxChunkSize)
	}
	if cfg.FFmpeg == "" {
		cfg.FFmpeg = DefaultFFmpeg
	}
	if cfg.FFprobe == "" {
		cfg.FFprobe = DefaultFFprobe
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	files, err := NewFiles(cfg.Dir)
	if err != nil {
		return nil, err
	}
	if err := files.CleanTemp(); err != nil {
		return nil, err
	}
	return &Library{cfg: cfg, log: log, files: files, kick: make(chan struct{}, 1)}, nil
}

// Files returns the file store.
func (l *Library) Files() *Files { return l.files }

// ChunkSize returns the manifest chunk size in use.
func (l *Library) ChunkSize() int { return l.cfg.ChunkSize }

// Start starts the transcode queue; jobs left queued or running by an
// earlier run are picked up first.
func (l *Library) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel, l.done = cancel, make(chan struct{})
	go l.run(ctx)
}

// Close stops the queue. A transcode still running is killed; its job stays
// in the database and starts again at the next Start.
func (l *Library) Close() error {
	if l.cancel != nil {
		l.cancel()
		<-l.done
		l.cancel = nil
	}
	return nil
}

func (l *Library) wake() {
	select {
	case l.kick <- struct{}{}:
	default:
	}
}

// Upload stores a file read from r (at most MaxUpload bytes) named filename
// for display: its type is detected with ffprobe (ErrUnsupported: nothing is
// kept); an image is ready at once, a video is queued for its transcode.
// A stored upload is audited (Config.Audit).
func (l *Library) Upload(ctx context.Context, r io.Reader, filename string) (store.MediaRecord, error) {
	t, err := l.files.Write(r, l.cfg.MaxUpload)
	if err != nil {
		return store.MediaRecord{}, err
	}
	info, err := Probe(ctx, l.cfg.FFprobe, t.Path)
	if err == nil && info.Kind == protocol.MediaImage && int64(info.Width)*int64(info.Height) > MaxImagePixels {
		err = fmt.Errorf("%w: image of %d×%d pixels, at most %d megapixels", ErrUnsupported, info.Width, info.Height, MaxImagePixels/1_000_000)
	}
	if err != nil {
		return store.MediaRecord{}, errors.Join(err, os.Remove(t.Path))
	}
	if err := l.files.Commit(t); err != nil {
		return store.MediaRecord{}, errors.Join(err, os.Remove(t.Path))
	}
	now := l.cfg.Now().UTC()
	m := store.MediaRecord{
		ID: protocol.NewID(), Filename: filename, OrigSHA256: t.SHA256, OrigSize: t.Size, Kind: info.Kind,
		Format: info.Format, Status: store.MediaQueued, CreatedAt: now, UpdatedAt: now,
	}
	if info.Kind == protocol.MediaImage {
		m.Status, m.Percent = store.MediaReady, 100
		m.SHA256, m.Size, m.Width, m.Height = t.SHA256, t.Size, info.Width, info.Height
	}
	if err := l.cfg.Store.CreateMedia(ctx, m); err != nil {
		return m, err
	}
	l.log.Info("media uploaded", "id", m.ID, "kind", m.Kind, "format", m.Format, "sha256", m.OrigSHA256,
		"size", m.OrigSize, "status", m.Status)
	if l.cfg.Audit != nil {
		l.cfg.Audit(ctx, "media.upload", "media:"+m.ID, nil, UploadAudit{Filename: m.Filename, Kind: m.Kind,
			Format: m.Format, SHA256: m.OrigSHA256, Size: m.OrigSize})
	}
	if m.Status == store.MediaQueued {
		l.wake()
	}
	return m, nil
}

func (l *Library) run(ctx context.Context) {
	defer close(l.done)
	for {
		jobs, err := l.cfg.Store.MediaJobs(ctx)
		if ctx.Err() != nil {
			return
		}
		var wait <-chan time.Time
		switch {
		case err != nil:
			l.log.Error("reading the transcode queue failed; retrying", "err", err)
			wait = time.After(retryAfter)
		case len(jobs) > 0:
			l.transcode(ctx, jobs[0])
			continue
		}
		select {
		case <-ctx.Done():
			return
		case <-l.kick:
		case <-wait:
		}
	}
}

// transcode runs one job. A job interrupted by Close stays as it is in the
// database (and runs again at the next start); a failure is recorded.
func (l *Library) transcode(ctx context.Context, m store.MediaRecord) {
	log := l.log.With("media", m.ID)
	m.Status, m.Percent, m.UpdatedAt = store.MediaTranscoding, 0, l.cfg.Now().UTC()
	if err := l.cfg.Store.UpdateMedia(ctx, m); err != nil {
		if ctx.Err() == nil {
			log.Error("recording the transcode's start failed", "err", err)
			sleep(ctx, retryAfter)
		}
		return
	}
	log.Info("transcode started", "sha256", m.OrigSHA256)
	res, err := l.runJob(ctx, m, func(pct int) {
		m.Percent, m.UpdatedAt = pct, l.cfg.Now().UTC()
		if err := l.cfg.Store.UpdateMedia(ctx, m); err != nil && ctx.Err() == nil {
			log.Warn("recording transcode progress failed", "err", err)
		}
	})
	if ctx.Err() != nil {
		log.Info("transcode interrupted; it restarts at the next start")
		return
	}
	if err != nil {
		log.Error("transcode failed", "err", err)
		m.Status, m.Reason = store.MediaFailed, err.Error()
	} else {
		m = res
		m.Status, m.Percent = store.MediaReady, 100
		log.Info("transcode done", "sha256", m.SHA256, "size", m.Size, "width", m.Width, "height", m.Height)
	}
	m.UpdatedAt = l.cfg.Now().UTC()
	if err := l.cfg.Store.UpdateMedia(ctx, m); err != nil {
		log.Error("recording the transcode's result failed; it runs again", "err", err)
		sleep(ctx, retryAfter)
		return
	}
	if l.cfg.OnReady != nil {
		l.cfg.OnReady(ctx, m)
	}
}

func (l *Library) runJob(ctx context.Context, m store.MediaRecord, progress func(int)) (store.MediaRecord, error) {
	in := l.files.Path(m.OrigSHA256)
	info, err := Probe(ctx, l.cfg.FFprobe, in)
	if err != nil {
		return m, err
	}
	out := l.files.TempPath(m.ID + ".mp4")
	if err := Transcode(ctx, l.cfg.FFmpeg, in, out, Profile{Bitrate: l.cfg.Bitrate, Audio: l.cfg.Audio},
		info.Duration, progress); err != nil {
		return m, errors.Join(err, removeIfExists(out))
	}
	t, err := l.files.Hash(out)
	if err != nil {
		return m, errors.Join(err, removeIfExists(out))
	}
	got, err := Probe(ctx, l.cfg.FFprobe, out)
	if err == nil && got.Kind != protocol.MediaVideo {
		err = fmt.Errorf("media: transcode of %s produced a %s", m.ID, got.Kind)
	}
	if err != nil {
		return m, errors.Join(err, removeIfExists(out))
	}
	if err := l.files.Commit(t); err != nil {
		return m, errors.Join(err, removeIfExists(out))
	}
	m.SHA256, m.Size = t.SHA256, t.Size
	m.Width, m.Height, m.DurationMS = got.Width, got.Height, got.Duration.Milliseconds()
	return m, nil
}

func removeIfExists(path string) error {
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("media: remove %s: %w", filepath.Base(path), err)
	}
	return nil
}

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
