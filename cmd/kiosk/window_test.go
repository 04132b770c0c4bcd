package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"image"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/xtest"
	"github.com/shequ/shequ/protocol"
)

// fakeAgent serves the agent's local API on a real Unix socket: the
// content it is given, an enrolled status, an event stream that stays
// open, and POST /v1/plays recorded.
type fakeAgent struct {
	content protocol.LocalNotices
	mu      sync.Mutex
	plays   []protocol.PlayEvent
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	reply := func(code int, v any) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(code)
		if err := json.NewEncoder(w).Encode(v); err != nil {
			panic(err)
		}
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalPathNotices:
		reply(http.StatusOK, a.content)
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalPathStatus:
		reply(http.StatusOK, protocol.AgentStatus{Enrolled: true, Kiosk: a.content.Kiosk, Connected: true, ContentVersion: a.content.Version})
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalPathEvents:
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, ": hello\n\n")
		w.(http.Flusher).Flush()
		<-r.Context().Done()
	case r.Method == http.MethodPost && r.URL.Path == protocol.LocalPathPlays:
		data, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxPlayEventSize+1))
		if err != nil {
			reply(http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		ev, err := protocol.DecodePlayEvent(data)
		if err != nil {
			reply(http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		a.mu.Lock()
		a.plays = append(a.plays, ev)
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	default:
		reply(http.StatusNotFound, protocol.ErrorResponse{Error: "no such path"})
	}
}

func (a *fakeAgent) videoPlays(sha string) int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, p := range a.plays {
		if p.Kind == protocol.ItemVideo && p.Media == sha {
			n++
		}
	}
	return n
}

// serveAgent starts a on a Unix socket under a short temporary directory.
func serveAgent(t testing.TB, a *fakeAgent) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "kiosk-sock")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := os.RemoveAll(dir); err != nil {
			t.Logf("remove %s: %v", dir, err)
		}
	})
	path := filepath.Join(dir, "agent.sock")
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := &http.Server{Handler: a, ReadHeaderTimeout: 5 * time.Second}
	go func() {
		if err := srv.Serve(l); err != nil && err != http.ErrServerClosed {
			t.Errorf("serve: %v", err)
		}
	}()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		if err := srv.Shutdown(ctx); err != nil {
			if err := srv.Close(); err != nil {
				t.Logf("close agent: %v", err)
			}
		}
	})
	return path
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t testing.TB, within time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(within)
	var last error
	for time.Now().Before(deadline) {
		ok, err := cond()
		if ok {
			return
		}
		last = err
		<-time.After(100 * time.Millisecond)
	}
	t.Fatalf("timed out after %v waiting for %s: %v", within, what, last)
}

// testsrcColours counts, in r, pixels of the saturated colours of ffmpeg's
// testsrc pattern; it returns the names of those covering at least min
// pixels.
func testsrcColours(img *image.RGBA, r image.Rectangle, min int) []string {
	counts := map[string]int{}
	for y := r.Min.Y; y < r.Max.Y; y++ {
		for x := r.Min.X; x < r.Max.X; x++ {
			o := img.PixOffset(x, y)
			cr, cg, cb := int(img.Pix[o]), int(img.Pix[o+1]), int(img.Pix[o+2])
			hi := func(v int) bool { return v > 190 }
			lo := func(v int) bool { return v < 70 }
			switch {
			case hi(cr) && lo(cg) && lo(cb):
				counts["red"]++
			case lo(cr) && hi(cg) && lo(cb):
				counts["green"]++
			case lo(cr) && lo(cg) && hi(cb):
				counts["blue"]++
			case hi(cr) && hi(cg) && lo(cb):
				counts["yellow"]++
			case lo(cr) && hi(cg) && hi(cb):
				counts["cyan"]++
			case hi(cr) && lo(cg) && hi(cb):
				counts["magenta"]++
			}
		}
	}
	var out []string
	for _, name := range []string{"red", "green", "blue", "yellow", "cyan", "magenta"} {
		if counts[name] >= min {
			out = append(out, name)
		}
	}
	return out
}

// diffBox returns the bounding box of the pixels that differ between a
// and b, and how many do.
func diffBox(a, b *image.RGBA) (image.Rectangle, int) {
	var box image.Rectangle
	n := 0
	for y := a.Rect.Min.Y; y < a.Rect.Max.Y; y++ {
		for x := a.Rect.Min.X; x < a.Rect.Max.X; x++ {
			o := a.PixOffset(x, y)
			if !bytes.Equal(a.Pix[o:o+3], b.Pix[o:o+3]) {
				n++
				box = box.Union(image.Rect(x, y, x+1, y+1))
			}
		}
	}
	return box, n
}

// TestAttractVideoInWindow runs the kiosk binary in a real X window fed by
// a fake agent whose playlist holds a testsrc video: after the attract
// delay the video plays (two screenshots a second apart differ in the video
// area, which shows testsrc's colours) and the play is reported.
func TestAttractVideoInWindow(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "kiosk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build kiosk: %v\n%s", err, out)
	}
	clip := filepath.Join(dir, "testsrc.mp4")
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25",
		"-t", "10", "-pix_fmt", "yuv420p", "-c:v", "libx264", clip).CombinedOutput(); err != nil {
		t.Fatalf("generate video: %v\n%s", err, out)
	}
	data, err := os.ReadFile(clip)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	now := time.Now()
	tg := []protocol.Target{{Level: protocol.LevelCommunity, ID: "c1"}}
	agent := &fakeAgent{content: protocol.LocalNotices{
		Kiosk: "k-01", Version: 4,
		Station: protocol.Station{Name: "曹家渡社区城管工作室", Community: "c1"},
		Playlists: []protocol.Playlist{{ID: "pl-1", Name: "宣传片", ValidFrom: now.Add(-time.Hour), Targets: tg,
			Items: []protocol.PlaylistItem{{Kind: protocol.ItemVideo, Media: sha}}}},
		Media: []protocol.LocalMedia{{SHA256: sha, Kind: protocol.MediaVideo, Path: clip}},
	}}
	if err := agent.content.Playlists[0].Validate(); err != nil {
		t.Fatalf("test playlist: %v", err)
	}
	socket := serveAgent(t, agent)
	disp := xtest.Display(t)

	cmd := exec.Command(bin, "-socket", socket, "-windowed", "-size", "540x960", "-attract", "1s")
	cmd.Env = append(os.Environ(), "DISPLAY="+disp, "LANG=zh_CN.UTF-8", "LIBGL_ALWAYS_SOFTWARE=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kiosk: %v", err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Signal(os.Interrupt); err != nil {
			t.Logf("interrupt kiosk: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Logf("kiosk exited: %v\n%s", err, out.String())
		}
	})

	// The video is on screen once testsrc's colours are.
	var first *image.RGBA
	waitFor(t, 60*time.Second, "the attract video on screen", func() (bool, error) {
		if cmd.ProcessState != nil {
			return false, fmt.Errorf("kiosk exited: %s", out.String())
		}
		img, _ := xtest.Screenshot(t, disp)
		if got := testsrcColours(img, img.Rect, 500); len(got) < 4 {
			return false, fmt.Errorf("testsrc colours on screen: %v", got)
		}
		first = img
		return true, nil
	})
	<-time.After(time.Second) // the second screenshot is a second later
	second, raw := xtest.Screenshot(t, disp)
	box, n := diffBox(first, second)
	t.Logf("changed: %d pixels in %v", n, box)
	if n < 1000 {
		t.Fatalf("the video area did not change within a second: %d pixels differ", n)
	}
	// What changed is the video: its box shows testsrc's colours, and the
	// touch hint below it does not change.
	if got := testsrcColours(second, box, 200); len(got) < 4 {
		t.Errorf("changed area %v shows only %v of testsrc's colours", box, got)
	}
	if box.Dx() < 200 || box.Dy() < 100 {
		t.Errorf("changed area %v is too small for the video", box)
	}
	if art := os.Getenv("SHEQU_ARTIFACTS"); art != "" { // kept for a reviewer
		if err := os.MkdirAll(art, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(art, "kiosk-attract-xvfb.png"), raw, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	waitFor(t, 10*time.Second, "the play reported to the agent", func() (bool, error) {
		return agent.videoPlays(sha) >= 1, nil
	})
	if strings.Contains(out.String(), "panic") {
		t.Errorf("kiosk log mentions a panic:\n%s", out.String())
	}
}
