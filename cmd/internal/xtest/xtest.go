// Package xtest gives the tests of the commands a real X display and
// screenshots of it: $DISPLAY when it answers, or a private Xvfb the size
// of a portrait kiosk screen. It is test support, used only from _test.go
// files of the cmd packages.
package xtest

import (
	"bufio"
	"bytes"
	"image"
	"image/draw"
	"image/png"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// Display returns an X display to draw on: $DISPLAY when it answers,
// otherwise a private Xvfb (1080×1920×24) stopped when the test ends. Xvfb
// chooses a free display number itself (-displayfd), so test binaries
// running at the same time never race for one. A missing Xvfb fails the
// test: the test command installs it.
func Display(t testing.TB) string {
	t.Helper()
	if d := os.Getenv("DISPLAY"); d != "" && exec.Command("xdpyinfo", "-display", d).Run() == nil {
		return d
	}
	xvfb, err := exec.LookPath("Xvfb")
	if err != nil {
		t.Fatalf("no usable DISPLAY and no Xvfb (%v): run packaging/dev/deps.sh", err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(xvfb, "-displayfd", "3", "-screen", "0", "1080x1920x24", "-nolisten", "tcp")
	cmd.ExtraFiles = []*os.File{w}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start Xvfb: %v", err)
	}
	w.Close()
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill Xvfb: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Logf("Xvfb exited: %v", err)
		}
	})
	// Xvfb writes the display number once it accepts connections.
	line := make(chan string, 1)
	go func() {
		s, _ := bufio.NewReader(r).ReadString('\n') // EOF: Xvfb died; reported below
		line <- strings.TrimSpace(s)
	}()
	select {
	case n := <-line:
		if n == "" {
			t.Fatal("Xvfb exited without a display")
		}
		return ":" + n
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not report its display within 30 s")
		return ""
	}
}

// Screenshot captures the whole screen of display with ImageMagick's import
// and returns it decoded and as PNG bytes.
func Screenshot(t testing.TB, display string) (*image.RGBA, []byte) {
	t.Helper()
	raw, err := exec.Command("import", "-display", display, "-window", "root", "png:-").Output()
	if err != nil {
		t.Fatalf("screenshot of %s: %v", display, err)
	}
	img, err := png.Decode(bytes.NewReader(raw))
	if err != nil {
		t.Fatalf("decode screenshot: %v", err)
	}
	rgba := image.NewRGBA(img.Bounds())
	draw.Draw(rgba, rgba.Bounds(), img, img.Bounds().Min, draw.Src)
	return rgba, raw
}
