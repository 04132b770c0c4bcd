package ui

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"math/rand/v2"
	"sync"
	"testing"

	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

// fakeReplier records the answers to commands, as the agent would take them.
type fakeReplier struct {
	mu      sync.Mutex
	replies map[string]protocol.LocalCommandReply
}

func (f *fakeReplier) ReplyCommand(_ context.Context, id string, r protocol.LocalCommandReply) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if err := r.Validate(); err != nil {
		return err
	}
	if f.replies == nil {
		f.replies = map[string]protocol.LocalCommandReply{}
	}
	f.replies[id] = r
	return nil
}

func (f *fakeReplier) reply(t *testing.T, id string) protocol.LocalCommandReply {
	t.Helper()
	f.mu.Lock()
	defer f.mu.Unlock()
	r, ok := f.replies[id]
	if !ok {
		t.Fatalf("no reply to %s", id)
	}
	return r
}

// TestRemoteScreenshot: the kiosk captures its window on the home screen
// and refuses while a resident is in the feedback form.
func TestRemoteScreenshot(t *testing.T) {
	c := demoContent()
	h := newHarness(t, &c)
	r := &fakeReplier{}
	quit := func() { t.Fatal("a screenshot quit the UI") }
	ctx := context.Background()

	home := protocol.LocalEvent{Type: protocol.EventCommand, Command: protocol.NewID(), Action: protocol.ActionScreenshot}
	if err := h.ui.Command(ctx, home, r, quit); err != nil {
		t.Fatal(err)
	}
	got := r.reply(t, home.Command)
	if got.Status != protocol.ResultOK || got.Screenshot == nil || got.Screenshot.Type != protocol.ImagePNG {
		t.Fatalf("screenshot on the home screen: %+v", got)
	}
	img, err := png.Decode(bytes.NewReader(got.Screenshot.Data))
	if err != nil {
		t.Fatal(err)
	}
	// The window is 1080×1920 drawn at scale 0.5.
	if b := img.Bounds(); b.Dx() != 540 || b.Dy() != 960 || got.Screenshot.Width != 540 || got.Screenshot.Height != 960 {
		t.Fatalf("screenshot is %v (says %d×%d), want 540×960", b, got.Screenshot.Width, got.Screenshot.Height)
	}
	if !got.Screenshot.TakenAt.Equal(t0) {
		t.Errorf("taken at %v, want the UI's clock %v", got.Screenshot.TakenAt, t0)
	}
	if !hasColours(img) {
		t.Error("the screenshot is blank")
	}

	h.tap("我要反映")
	h.tap("投诉")
	if h.model.Screen(h.now) != screen.Category {
		t.Fatalf("on %s, want the category step", h.model.Screen(h.now))
	}
	form := protocol.LocalEvent{Type: protocol.EventCommand, Command: protocol.NewID(), Action: protocol.ActionScreenshot}
	if err := h.ui.Command(ctx, form, r, quit); err != nil {
		t.Fatal(err)
	}
	if got := r.reply(t, form.Command); got.Status != protocol.ResultRefused || got.Screenshot != nil || got.Reason != "居民正在使用 / resident is using the kiosk" {
		t.Fatalf("screenshot during the form: %+v", got)
	}
	if h.model.Screen(h.now) != screen.Category {
		t.Fatalf("the refused screenshot moved the resident to %s", h.model.Screen(h.now))
	}
}

// TestRemoteRestartUI: the UI answers ok, then quits.
func TestRemoteRestartUI(t *testing.T) {
	c := demoContent()
	h := newHarness(t, &c)
	r := &fakeReplier{}
	quits := 0
	ev := protocol.LocalEvent{Type: protocol.EventCommand, Command: protocol.NewID(), Action: protocol.ActionRestartUI}
	if err := h.ui.Command(context.Background(), ev, r, func() {
		quits++
		if r.reply(t, ev.Command).Status != protocol.ResultOK {
			t.Error("quit before answering ok")
		}
	}); err != nil {
		t.Fatal(err)
	}
	if quits != 1 {
		t.Fatalf("quit %d times", quits)
	}
	bad := protocol.LocalEvent{Type: protocol.EventCommand, Command: protocol.NewID(), Action: protocol.ActionRestartAgent}
	if err := h.ui.Command(context.Background(), bad, r, func() { t.Fatal("quit on restart_agent") }); err == nil {
		t.Fatal("the UI took the agent's own command")
	}
}

// TestEncodeScreenshotFallsBackToJPEG: a screen whose PNG is over the limit
// (a full-screen photograph) is sent as JPEG within it.
func TestEncodeScreenshotFallsBackToJPEG(t *testing.T) {
	img := image.NewRGBA(image.Rect(0, 0, 1080, 1920))
	rng := rand.New(rand.NewPCG(1, 2))
	for y := range 1920 {
		for x := range 1080 {
			n := uint8(rng.IntN(48))
			img.Set(x, y, color.RGBA{uint8(x / 5), uint8(y / 8), n * 4, 0xff})
		}
	}
	var p bytes.Buffer
	if err := png.Encode(&p, img); err != nil {
		t.Fatal(err)
	}
	if p.Len() <= protocol.MaxScreenshotBytes {
		t.Fatalf("test image is only %d bytes as PNG; make it noisier", p.Len())
	}
	shot, err := encodeScreenshot(img, t0)
	if err != nil {
		t.Fatal(err)
	}
	if shot.Type != protocol.ImageJPEG || len(shot.Data) > protocol.MaxScreenshotBytes || shot.Width != 1080 || shot.Height != 1920 {
		t.Fatalf("%s of %d bytes, %d×%d", shot.Type, len(shot.Data), shot.Width, shot.Height)
	}
	if _, err := jpeg.Decode(bytes.NewReader(shot.Data)); err != nil {
		t.Fatal(err)
	}
}

// hasColours reports whether an image has more than one colour.
func hasColours(img image.Image) bool {
	b := img.Bounds()
	first := img.At(b.Min.X, b.Min.Y)
	for y := b.Min.Y; y < b.Max.Y; y += 7 {
		for x := b.Min.X; x < b.Max.X; x += 7 {
			if img.At(x, y) != first {
				return true
			}
		}
	}
	return false
}
