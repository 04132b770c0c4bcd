package media

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// genVideo writes a test video with ffmpeg (testsrc, seconds long) and
// returns its path.
func genVideo(t testing.TB, size string, seconds string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "in.mkv")
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc=size="+size+":rate=25",
		"-f", "lavfi", "-i", "sine=frequency=440", "-t", seconds, "-c:v", "mpeg4", "-q:v", "5", "-c:a", "mp2", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

// genPNG writes a test PNG and returns its path.
func genPNG(t testing.TB) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), "in.png")
	cmd := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1", out)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	return out
}

func openStore(t *testing.T, dir string) *store.SQLite {
	t.Helper()
	st, err := store.Open(context.Background(), filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

// progressStore records every update of the records.
type progressStore struct {
	*store.SQLite
	mu      sync.Mutex
	updates []store.MediaRecord
}

func (p *progressStore) UpdateMedia(ctx context.Context, m store.MediaRecord) error {
	p.mu.Lock()
	p.updates = append(p.updates, m)
	p.mu.Unlock()
	return p.SQLite.UpdateMedia(ctx, m)
}

func waitStatus(t *testing.T, st Store, id string, want ...string) store.MediaRecord {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		m, err := st.Media(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		if slices.Contains(want, m.Status) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("media %s: status %s (%d%%, %q), want %v", id, m.Status, m.Percent, m.Reason, want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestProbe(t *testing.T) {
	text := filepath.Join(t.TempDir(), "clip.mp4")
	if err := os.WriteFile(text, []byte("this is a text file pretending to be a video\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		path string
		kind protocol.MediaKind
		err  error
	}{
		{"png", genPNG(t), protocol.MediaImage, nil},
		{"video", genVideo(t, "640x360", "1"), protocol.MediaVideo, nil},
		{"text disguised as mp4", text, "", ErrUnsupported},
		{"testdata readme", filepath.Join("testdata", "not-media.txt"), "", ErrUnsupported},
	} {
		t.Run(tc.name, func(t *testing.T) {
			info, err := Probe(context.Background(), DefaultFFprobe, tc.path)
			if !errors.Is(err, tc.err) {
				t.Fatalf("Probe: %v, want %v", err, tc.err)
			}
			if info.Kind != tc.kind {
				t.Errorf("kind %q, want %q", info.Kind, tc.kind)
			}
		})
	}
}

func TestUploadAndTranscode(t *testing.T) {
	dir := t.TempDir()
	ps := &progressStore{SQLite: openStore(t, dir)}
	var readyMu sync.Mutex
	var ready []string
	lib, err := New(Config{Dir: filepath.Join(dir, "media"), Store: ps, Bitrate: 1_000_000,
		OnReady: func(_ context.Context, m store.MediaRecord) {
			readyMu.Lock()
			ready = append(ready, m.ID)
			readyMu.Unlock()
		}}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	lib.Start()
	t.Cleanup(func() {
		if err := lib.Close(); err != nil {
			t.Error(err)
		}
	})
	ctx := context.Background()

	png, err := os.ReadFile(genPNG(t))
	if err != nil {
		t.Fatal(err)
	}
	img, err := lib.Upload(ctx, bytes.NewReader(png), "a.png")
	if err != nil {
		t.Fatal(err)
	}
	if img.Status != store.MediaReady || img.Kind != protocol.MediaImage || img.SHA256 != img.OrigSHA256 ||
		img.Width != 320 || img.Height != 240 || !lib.Files().Has(img.SHA256) {
		t.Errorf("image: %+v", img)
	}

	f, err := os.Open(genVideo(t, "2560x1440", "3"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	vid, err := lib.Upload(ctx, f, "clip.mkv")
	if err != nil {
		t.Fatal(err)
	}
	if vid.Kind != protocol.MediaVideo || vid.Status != store.MediaQueued {
		t.Fatalf("video upload: %+v", vid)
	}
	done := waitStatus(t, ps, vid.ID, store.MediaReady, store.MediaFailed)
	if done.Status != store.MediaReady {
		t.Fatalf("transcode: %s %q", done.Status, done.Reason)
	}
	if done.Width != 1920 || done.Height != 1080 || done.DurationMS < 2900 || done.DurationMS > 3200 ||
		done.SHA256 == done.OrigSHA256 || !lib.Files().Has(done.SHA256) || !lib.Files().Has(done.OrigSHA256) {
		t.Errorf("transcoded: %+v", done)
	}
	info, err := Probe(ctx, DefaultFFprobe, lib.Files().Path(done.SHA256))
	if err != nil || info.Audio {
		t.Errorf("kiosk file: %+v %v (audio must be dropped)", info, err)
	}
	// Progress: transcoding at 0, rising, never above 99 before ready at 100.
	ps.mu.Lock()
	var pcts []int
	for _, u := range ps.updates {
		if u.ID == vid.ID && u.Status == store.MediaTranscoding {
			pcts = append(pcts, u.Percent)
		}
	}
	ps.mu.Unlock()
	if len(pcts) < 3 || pcts[0] != 0 || !slices.IsSorted(pcts) || pcts[len(pcts)-1] > 99 || pcts[len(pcts)-1] < 50 {
		t.Errorf("progress %v: want 0, rising, some in between, at most 99", pcts)
	}
	readyMu.Lock()
	if !slices.Equal(ready, []string{vid.ID}) {
		t.Errorf("OnReady for %v, want [%s]", ready, vid.ID)
	}
	readyMu.Unlock()
}

// TestJobSurvivesRestart stops the queue in the middle of a transcode; a new
// library on the same directory and database finishes the job.
func TestJobSurvivesRestart(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	log := slog.New(slog.DiscardHandler)
	cfg := Config{Dir: filepath.Join(dir, "media"), Store: st}
	lib, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	lib.Start()
	f, err := os.Open(genVideo(t, "1280x720", "20"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	m, err := lib.Upload(context.Background(), f, "")
	if err != nil {
		t.Fatal(err)
	}
	waitStatus(t, st, m.ID, store.MediaTranscoding)
	if err := lib.Close(); err != nil {
		t.Fatal(err)
	}
	if got := waitStatus(t, st, m.ID, store.MediaTranscoding, store.MediaReady); got.Status != store.MediaTranscoding {
		t.Fatalf("the transcode finished before Close (status %s): use a longer input", got.Status)
	}
	lib2, err := New(cfg, log)
	if err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(cfg.Dir, "tmp"))
	if err != nil || len(entries) != 0 {
		t.Errorf("tmp after restart: %v %v, want empty", entries, err)
	}
	lib2.Start()
	defer lib2.Close()
	if got := waitStatus(t, st, m.ID, store.MediaReady, store.MediaFailed); got.Status != store.MediaReady {
		t.Fatalf("after restart: %s %q", got.Status, got.Reason)
	}
}

// TestImageTooLarge: an image kiosks could not hold in memory is refused at
// upload, and nothing is kept.
func TestImageTooLarge(t *testing.T) {
	dir := t.TempDir()
	lib, err := New(Config{Dir: filepath.Join(dir, "media"), Store: openStore(t, dir)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	huge := filepath.Join(t.TempDir(), "huge.png")
	if b, err := exec.Command("ffmpeg", "-v", "error", "-nostdin", "-f", "lavfi", "-i", "color=c=red:size=8000x6000",
		"-frames:v", "1", huge).CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	f, err := os.Open(huge)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := lib.Upload(context.Background(), f, "huge.png"); !errors.Is(err, ErrUnsupported) {
		t.Fatalf("upload of a 48-megapixel image = %v, want ErrUnsupported", err)
	}
	if list, err := lib.cfg.Store.(*store.SQLite).MediaList(context.Background()); err != nil || len(list) != 0 {
		t.Fatalf("media after a refused upload: %v, %v", list, err)
	}
}

func TestTranscodeTimeout(t *testing.T) {
	for _, tc := range []struct{ video, want time.Duration }{
		{10 * time.Second, 10 * time.Minute},
		{5 * time.Minute, 50 * time.Minute},
	} {
		if got := TranscodeTimeout(tc.video); got != tc.want {
			t.Errorf("TranscodeTimeout(%v) = %v, want %v", tc.video, got, tc.want)
		}
	}
}
