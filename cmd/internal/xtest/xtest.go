// Package xtest gives the tests of the commands a real X display and
// screenshots of it: a private Xvfb the size of a portrait kiosk screen
// (or $SHEQU_XTEST_DISPLAY, to watch a test on a real screen). It is test support, used only from _test.go
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

// Display returns an X display to draw on: a private Xvfb (1080×1920×24)
// stopped when the test ends. It never uses $DISPLAY: test binaries run in
// parallel, and a screenshot of a shared screen can show another test's
// window (CI saw a kiosk test capture the e2e test's full-screen kiosk).
// Xvfb chooses a free display number itself (-displayfd), so tests running
// at the same time never race for one. $SHEQU_XTEST_DISPLAY names a display
// to use instead, for watching one test at a time. A missing Xvfb fails the
// test: the test command installs it.
func Display(t testing.TB) string {
	t.Helper()
	d, _ := Server(t)
	return d
}

// Server is Display that also returns the X server's process id, for
// measuring its CPU; the id is 0 for $SHEQU_XTEST_DISPLAY, whose server the
// test did not start.
func Server(t testing.TB) (display string, pid int) {
	t.Helper()
	if d := os.Getenv("SHEQU_XTEST_DISPLAY"); d != "" {
		if err := exec.Command("xdpyinfo", "-display", d).Run(); err != nil {
			t.Fatalf("SHEQU_XTEST_DISPLAY=%s does not answer: %v", d, err)
		}
		return d, 0
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
		// Wait reports the kill itself; anything else is worth a line.
		if err := cmd.Wait(); err != nil && cmd.ProcessState.String() != "signal: killed" {
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
		return ":" + n, cmd.Process.Pid
	case <-time.After(30 * time.Second):
		t.Fatal("Xvfb did not report its display within 30 s")
		return "", 0
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
