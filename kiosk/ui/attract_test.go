package ui

import (
	"image"
	"image/color"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

func shaOf(c byte) string { return strings.Repeat(string(c), 64) }

// attractContent is demoContent with a playlist of items and the files
// held for them.
func attractContent(items []protocol.PlaylistItem, files map[string]string) protocol.LocalNotices {
	c := demoContent()
	c.Playlists = []protocol.Playlist{{
		ID: "pl-1", Name: "宣传片", Items: items, ValidFrom: t0.Add(-time.Hour),
		Targets: []protocol.Target{{Level: protocol.LevelCommunity, ID: "jingan-caojiadu-01"}},
	}}
	for _, it := range items {
		if path, ok := files[it.Media]; ok {
			k := protocol.MediaImage
			if it.Kind == protocol.ItemVideo {
				k = protocol.MediaVideo
			}
			c.Media = append(c.Media, protocol.LocalMedia{SHA256: it.Media, Kind: k, Path: path})
		}
	}
	return c
}

// writeTestPNG writes a 320×180 PNG: left half red, right half blue.
func writeTestPNG(t *testing.T) string {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 320, 180))
	for y := range 180 {
		for x := range 320 {
			c := color.RGBA{0xE0, 0x10, 0x10, 0xFF}
			if x >= 160 {
				c = color.RGBA{0x10, 0x10, 0xE0, 0xFF}
			}
			img.Set(x, y, c)
		}
	}
	path := filepath.Join(t.TempDir(), "poster.png")
	writePNG(t, path, img)
	return path
}

// startAttract moves the harness clock past the attract delay.
func (h *harness) startAttract() {
	h.t.Helper()
	h.now = h.now.Add(2 * time.Minute)
	h.ui.Tick()
	h.want(screen.Attract)
}

// images returns the canvas images on screen that hold a picture.
func (h *harness) images() []*canvas.Image {
	var out []*canvas.Image
	for _, o := range test.LaidOutObjects(h.win.Canvas().Content()) {
		if img, ok := o.(*canvas.Image); ok && img.Image != nil && img.Visible() {
			out = append(out, img)
		}
	}
	return out
}

func TestAttractImageNoticeAndTouch(t *testing.T) {
	poster := writeTestPNG(t)
	items := []protocol.PlaylistItem{
		{Kind: protocol.ItemImage, Media: shaOf('a'), DurationMS: 5000},
		{Kind: protocol.ItemNotice, Notice: "n-green", DurationMS: 8000},
	}
	c := attractContent(items, map[string]string{shaOf('a'): poster})
	h := newHarness(t, &c)
	h.startAttract()

	imgs := h.images()
	if len(imgs) != 1 || imgs[0].Image.Bounds().Dx() != 320 || imgs[0].FillMode != canvas.ImageFillContain {
		t.Fatalf("attract image: %d images on screen; broken %v; view %+v; slot %+v", len(imgs), h.model.Broken(), h.model.View(h.now).Current, h.ui.slot(h.model.View(h.now).Current.Seq))
	}
	if !h.shows("轻触屏幕") {
		t.Errorf("no touch hint: %v", h.texts())
	}
	// After its 5 s the notice card follows.
	h.now = h.now.Add(5 * time.Second)
	h.ui.Tick()
	if v := h.model.View(h.now); v.Current.Item.Kind != protocol.ItemNotice {
		t.Fatalf("after the image: %+v", v.Current.Item)
	}
	if !h.shows("爱护小区绿化") || len(h.images()) != 0 {
		t.Fatalf("card texts: %v", h.texts())
	}
	h.tap("轻触屏幕 · 我要反映")
	h.want(screen.Home)
	if !h.shows("我要反映") {
		t.Fatalf("home not drawn after touch: %v", h.texts())
	}
}

func TestAttractNoticeCardGolden(t *testing.T) {
	items := []protocol.PlaylistItem{{Kind: protocol.ItemNotice, Notice: "n-green", DurationMS: 8000}}
	c := attractContent(items, nil)
	h := newHarness(t, &c)
	h.startAttract()
	img := h.win.Canvas().Capture()
	if b := img.Bounds(); b.Dx() != 540 || b.Dy() != 960 {
		t.Fatalf("capture is %v, want 540×960", b)
	}
	test.AssertImageMatches(t, "attract-notice.png", img)
}

func TestAttractBrokenImageSkipped(t *testing.T) {
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.png")
	if err := os.WriteFile(bad, []byte("not a picture"), 0o644); err != nil {
		t.Fatal(err)
	}
	poster := writeTestPNG(t)
	tests := []struct {
		name  string
		files map[string]string
		want  screen.Screen
	}{
		{"broken first, good second", map[string]string{shaOf('a'): bad, shaOf('b'): poster}, screen.Attract},
		{"missing file only", map[string]string{shaOf('a'): filepath.Join(dir, "gone.png")}, screen.Home},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			items := []protocol.PlaylistItem{
				{Kind: protocol.ItemImage, Media: shaOf('a'), DurationMS: 5000},
				{Kind: protocol.ItemImage, Media: shaOf('b'), DurationMS: 5000},
			}
			c := attractContent(items, tt.files)
			h := newHarness(t, &c)
			h.now = h.now.Add(2 * time.Minute)
			h.ui.Tick()
			h.want(tt.want)
			if len(h.model.Broken()) != 1 {
				t.Errorf("broken %v", h.model.Broken())
			}
			if tt.want == screen.Attract {
				if v := h.model.View(h.now); v.Current.Path != poster || len(h.images()) != 1 {
					t.Errorf("current %q, %d images", v.Current.Path, len(h.images()))
				}
			}
		})
	}
}

// TestAttractVideoPlaysAndEnds plays a real one-second video through the
// UI's player: frames are shown and its end moves the loop on.
func TestAttractVideoPlaysAndEnds(t *testing.T) {
	path := filepath.Join(t.TempDir(), "clip.mp4")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
		"-t", "1", "-pix_fmt", "yuv420p", "-c:v", "libx264", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	items := []protocol.PlaylistItem{
		{Kind: protocol.ItemVideo, Media: shaOf('v')},
		{Kind: protocol.ItemNotice, Notice: "n-green", DurationMS: 8000},
	}
	c := attractContent(items, map[string]string{shaOf('v'): path})
	h := newHarness(t, &c)
	h.startAttract()
	v := h.model.View(h.now)
	p := h.ui.slot(v.Current.Seq)
	if v.Current.Item.Kind != protocol.ItemVideo || p == nil {
		t.Fatalf("current %+v prepared %v", v.Current.Item, p != nil)
	}
	deadline := time.Now().Add(20 * time.Second)
	for h.model.View(h.now).Current.Seq == v.Current.Seq {
		if time.Now().After(deadline) {
			t.Fatal("the video never ended")
		}
		<-time.After(20 * time.Millisecond)
	}
	p.mu.Lock()
	pl := p.player
	p.mu.Unlock()
	if pl == nil {
		t.Fatal("no player")
	}
	// The window is 540×960 pixels: the 320×180 clip is decoded as is.
	if w, h := pl.Size(); w != 320 || h != 180 {
		t.Errorf("decoded at %d×%d", w, h)
	}
	if shown, dropped := pl.Stats(); shown+dropped != 25 || shown == 0 {
		t.Errorf("frames shown %d dropped %d, want 25", shown, dropped)
	}
	if got := h.model.View(h.now).Current.Item.Kind; got != protocol.ItemNotice {
		t.Errorf("after the video: %v", got)
	}
	if len(h.model.Broken()) != 0 {
		t.Errorf("broken: %v", h.model.Broken())
	}
}

// TestAttractVideoDecodedAtWindowSize: a 720p clip in a 540×960-pixel
// window is decoded at the window's width, not at 1280×720.
func TestAttractVideoDecodedAtWindowSize(t *testing.T) {
	path := filepath.Join(t.TempDir(), "720p.mp4")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=25",
		"-t", "1", "-pix_fmt", "yuv420p", "-c:v", "libx264", path).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	items := []protocol.PlaylistItem{{Kind: protocol.ItemVideo, Media: shaOf('v')}}
	c := attractContent(items, map[string]string{shaOf('v'): path})
	h := newHarness(t, &c)
	h.startAttract()
	p := h.ui.slot(h.model.View(h.now).Current.Seq)
	if p == nil {
		t.Fatal("video not prepared")
	}
	select {
	case <-p.opened:
	case <-time.After(20 * time.Second):
		t.Fatal("video not opened")
	}
	p.mu.Lock()
	pl := p.player
	p.mu.Unlock()
	if pl == nil {
		t.Fatalf("no player; broken %v", h.model.Broken())
	}
	if w, h := pl.Size(); w != 540 || h != 302 {
		t.Errorf("decoded at %d×%d, want 540×302", w, h)
	}
}

// TestAttractNextVideoPrepared: while an image shows, the next item's video
// is already decoding (its first frame ready), so it starts without a gap;
// a touch stops it.
func TestAttractNextVideoPrepared(t *testing.T) {
	clip := filepath.Join(t.TempDir(), "clip.mp4")
	out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=320x180:rate=25",
		"-t", "2", "-pix_fmt", "yuv420p", "-c:v", "libx264", clip).CombinedOutput()
	if err != nil {
		t.Fatalf("ffmpeg: %v\n%s", err, out)
	}
	items := []protocol.PlaylistItem{
		{Kind: protocol.ItemImage, Media: shaOf('a'), DurationMS: 5000},
		{Kind: protocol.ItemVideo, Media: shaOf('v')},
	}
	c := attractContent(items, map[string]string{shaOf('a'): writeTestPNG(t), shaOf('v'): clip})
	h := newHarness(t, &c)
	h.startAttract()
	v := h.model.View(h.now)
	if v.Current.Item.Kind != protocol.ItemImage || v.Next.Item.Kind != protocol.ItemVideo {
		t.Fatalf("current %v next %v", v.Current.Item.Kind, v.Next.Item.Kind)
	}
	p := h.ui.slot(v.Next.Seq)
	if p == nil {
		t.Fatal("next video not being prepared")
	}
	<-p.opened
	p.mu.Lock()
	pl := p.player
	p.mu.Unlock()
	if pl == nil {
		t.Fatalf("next video not opened; broken %v", h.model.Broken())
	}
	select {
	case <-pl.Ready():
	case <-time.After(20 * time.Second):
		t.Fatal("next video's first frame not decoded while the image shows")
	}
	if shown, _ := pl.Stats(); shown != 0 {
		t.Errorf("next video showed %d frames before its turn", shown)
	}
	h.tap("轻触屏幕 · 我要反映")
	h.want(screen.Home)
	select {
	case <-pl.Done():
	case <-time.After(10 * time.Second):
		t.Fatal("player not stopped after the touch")
	}
	if h.ui.slot(v.Next.Seq) != nil {
		t.Error("prepared slot kept after leaving the attract loop")
	}
}
