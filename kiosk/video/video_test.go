package video

import (
	"context"
	"errors"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

// testVideo writes a testsrc video of the given size and length with the
// real ffmpeg and returns its path.
func testVideo(t *testing.T, size string, seconds string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "testsrc.mp4")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size="+size+":rate=25",
		"-t", seconds, "-pix_fmt", "yuv420p", "-c:v", "libx264", path).CombinedOutput()
	if err != nil {
		t.Fatalf("generate test video: %v\n%s", err, out)
	}
	return path
}

func TestFit(t *testing.T) {
	tests := []struct {
		name         string
		w, h, mw, mh int
		wantW, wantH int
	}{
		{"fits", 640, 360, 1280, 1280, 640, 360},
		{"landscape too wide", 1920, 1080, 1280, 1280, 1280, 720},
		{"portrait too tall", 1080, 1920, 1280, 1280, 720, 1280},
		{"odd made even", 321, 181, 1280, 1280, 320, 180},
		{"tiny", 1, 1, 1280, 1280, 2, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w, h := fit(tt.w, tt.h, tt.mw, tt.mh)
			if w != tt.wantW || h != tt.wantH {
				t.Errorf("fit = %dx%d, want %dx%d", w, h, tt.wantW, tt.wantH)
			}
		})
	}
}

// collector records frames shown, copying what it needs, and releases
// each frame when the next one arrives, as a UI does.
type collector struct {
	p     *Player
	mu    sync.Mutex
	times []time.Time
	first *image.RGBA
	prev  *image.RGBA
}

func (c *collector) show(img *image.RGBA) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.times = append(c.times, time.Now())
	if c.first == nil {
		c.first = &image.RGBA{Pix: append([]uint8(nil), img.Pix...), Stride: img.Stride, Rect: img.Rect}
	}
	c.p.Release(c.prev)
	c.prev = img
}

func waitDone(t *testing.T, p *Player, within time.Duration) {
	t.Helper()
	select {
	case <-p.Done():
	case <-time.After(within):
		t.Fatalf("player not done within %v", within)
	}
}

func TestPlayToEnd(t *testing.T) {
	path := testVideo(t, "320x180", "2")
	p, err := Open(context.Background(), path, Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer p.Close()
	if w, h := p.Size(); w != 320 || h != 180 {
		t.Fatalf("size %dx%d", w, h)
	}
	if d := p.FrameDuration(); d != 40*time.Millisecond {
		t.Fatalf("frame duration %v", d)
	}
	c := &collector{p: p}
	start := time.Now()
	p.Play(c.show)
	waitDone(t, p, 20*time.Second)
	took := time.Since(start)
	if err := p.Err(); err != nil {
		t.Fatalf("Err: %v", err)
	}
	// Every frame is accounted for: shown, or dropped when the machine was
	// too busy to show it on time (how many depends on the load, so it is
	// measured by the playback benchmark, not asserted here).
	shown, dropped := p.Stats()
	if shown+dropped != 50 || shown == 0 {
		t.Errorf("shown %d dropped %d, want 50 frames", shown, dropped)
	}
	// Paced at 25 fps: 50 frames take at least about two seconds, never a
	// burst (a busy machine only makes it slower).
	if took < 1800*time.Millisecond {
		t.Errorf("playing 2 s took only %v", took)
	}
	// testsrc's first frame has its saturated colour bars.
	want := map[string]bool{}
	for x := 0; x < 320; x += 2 {
		for y := 0; y < 180; y += 2 {
			r, g, b, _ := c.first.At(x, y).RGBA()
			r, g, b = r>>8, g>>8, b>>8
			switch {
			case r > 180 && g < 70 && b < 70:
				want["red"] = true
			case g > 180 && r < 70 && b < 70:
				want["green"] = true
			case b > 180 && r < 70 && g < 70:
				want["blue"] = true
			}
		}
	}
	if len(want) < 3 {
		t.Errorf("first frame shows only %v of red, green, blue", want)
	}
}

func TestPreparedStartsAtOnce(t *testing.T) {
	path := testVideo(t, "320x180", "2")
	p, err := Open(context.Background(), path, Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	defer p.Close()
	first := make(chan time.Time, 1)
	// Wait until ffmpeg has decoded the first frame (the decoder has taken
	// a buffer and is blocked handing it over), as a prepared next item.
	select {
	case <-p.Ready():
	case <-p.Done():
		t.Fatalf("done before play: %v", p.Err())
	case <-time.After(10 * time.Second):
		t.Fatal("first frame not decoded")
	}
	var once sync.Once
	start := time.Now()
	p.Play(func(img *image.RGBA) {
		once.Do(func() { first <- time.Now() })
		p.Release(img)
	})
	// Ready fired before Play: the frame was decoded ahead. How soon it is
	// shown is a matter of load, measured by the playback benchmark.
	select {
	case at := <-first:
		t.Logf("first frame of a prepared video shown %v after Play", at.Sub(start))
	case <-time.After(10 * time.Second):
		t.Fatal("no frame")
	}
}

func TestBadFiles(t *testing.T) {
	dir := t.TempDir()
	text := filepath.Join(dir, "fake.mp4")
	if err := os.WriteFile(text, []byte("this is not a video\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		path string
	}{
		{"missing", filepath.Join(dir, "missing.mp4")},
		{"text disguised as mp4", text},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Open(context.Background(), tt.path, Config{})
			if err == nil {
				p.Close()
				t.Fatal("Open succeeded")
			}
			if !errors.Is(err, ErrNotVideo) {
				t.Errorf("err %v, want ErrNotVideo", err)
			}
		})
	}
}

// TestTruncatedFailsBeforePlay: a file ffprobe accepts but ffmpeg cannot
// decode reports its failure through Done even before Play, so the UI can
// skip it while it is only the prepared next item.
func TestTruncatedFailsBeforePlay(t *testing.T) {
	path := testVideo(t, "320x180", "1")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Keep the header (moov is at the end without faststart: cut the
	// media data instead by zeroing it).
	bad := filepath.Join(t.TempDir(), "zeroed.mp4")
	for i := 64; i < len(data)*3/4; i++ {
		data[i] = 0
	}
	if err := os.WriteFile(bad, data, 0o644); err != nil {
		t.Fatal(err)
	}
	p, err := Open(context.Background(), bad, Config{})
	if err != nil {
		if !errors.Is(err, ErrNotVideo) {
			t.Fatalf("Open: %v", err)
		}
		t.Logf("refused by Open: %v", err)
		return // refused at once: as good
	}
	defer p.Close()
	waitDone(t, p, 20*time.Second)
	if p.Err() == nil {
		t.Fatal("a zeroed file played without error")
	}
	t.Logf("failed before play: %v", p.Err())
}

func TestCloseKillsFFmpeg(t *testing.T) {
	path := testVideo(t, "320x180", "10")
	p, err := Open(context.Background(), path, Config{})
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	c := &collector{p: p}
	p.Play(c.show)
	start := time.Now()
	if err := p.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	waitDone(t, p, time.Second)
	if err := p.Err(); err != nil {
		t.Errorf("Err after Close: %v", err)
	}
}
