package e2e

import (
	"bytes"
	"fmt"
	"image"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/xtest"
	"github.com/shequ/shequ/protocol"
)

// screenshotDir is where the window test keeps its screenshot for a
// reviewer: $SHEQU_ARTIFACTS, or .artifacts/ at the repository root.
func screenshotDir(t *testing.T) string {
	dir := os.Getenv("SHEQU_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(repoRoot(), ".artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("make artifacts dir: %v", err)
	}
	return dir
}

// TestKioskWindowShowsChinese runs the kiosk binary in a real X window fed by
// a real agent and hub, and checks the screenshot is not blank.
func TestKioskWindowShowsChinese(t *testing.T) {
	bin := buildCmd(t, "kiosk", true)
	disp := xtest.Display(t)

	e := newEnv(t, "mochi", nil)
	socket, agentDir := filepath.Join(t.TempDir(), "agent.sock"), t.TempDir()
	e.enrol(demoKiosk, agentDir)
	ag := e.startAgent(agentDir, socket)
	n := e.api().createNotice("以案释法：楼顶违法搭建被依法拆除", protocol.PriorityImportant, kioskTarget(demoKiosk))
	waitFor(t, 15*time.Second, "agent to hold the notice", func() (bool, error) {
		ln, err := ag.Notices()
		if err != nil {
			return false, err
		}
		for _, x := range ln.Notices {
			if x.ID == n.ID {
				return true, nil
			}
		}
		return false, nil
	})

	cmd := exec.Command(bin, "-socket", socket, "-lang", "zh")
	cmd.Env = append(os.Environ(), "DISPLAY="+disp, "LANG=zh_CN.UTF-8", "LIBGL_ALWAYS_SOFTWARE=1")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start kiosk: %v", err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill kiosk: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Logf("kiosk exited: %v\n%s", err, out.String())
		}
	})

	shot := filepath.Join(screenshotDir(t), "kiosk-xvfb.png")
	var last screenStats
	waitFor(t, 60*time.Second, "the kiosk window to draw its home screen", func() (bool, error) {
		if cmd.ProcessState != nil {
			return false, fmt.Errorf("kiosk exited: %s", out.String())
		}
		img, raw := xtest.Screenshot(t, disp)
		last = stats(img)
		if !last.drawn() || !last.showsQR() || !last.showsCallToAction() {
			return false, fmt.Errorf("home screen with content not drawn yet: %+v", last)
		}
		return true, os.WriteFile(shot, raw, 0o644)
	})
	t.Logf("kiosk screenshot: %s (%+v)", shot, last)
	if strings.Contains(out.String(), "panic") {
		t.Errorf("kiosk log mentions a panic:\n%s", out.String())
	}
}

// screenStats summarises a screenshot.
type screenStats struct {
	Colors      int     // distinct colours
	Minority    float64 // share of pixels not of the most common colour
	Black       float64 // share of pure black pixels
	CTA         float64 // share of the bottom fifth in the call-to-action blue
	Width, High int
}

// showsQR reports whether the 城管码 is on screen: the kiosk draws it, in
// pure black modules, only once the agent has given it the station, so this
// tells the home screen with content from the "connecting" placeholder
// (which has no pure black at all).
func (s screenStats) showsQR() bool { return s.Black >= 0.01 }

// ctaBlue is the kiosk's primary colour, the "我要反映" button's background.
const ctaBlue = 0x0B<<16 | 0x4F<<8 | 0x9C

// showsCallToAction reports whether the big "我要反映" button fills the
// bottom of the screen: no content may push it off.
func (s screenStats) showsCallToAction() bool { return s.CTA >= 0.3 }

// drawn reports whether the screen shows a laid-out page rather than a blank
// or single-colour window: text, a QR code and buttons give many colours and
// a sizeable share of pixels off the background.
func (s screenStats) drawn() bool { return s.Colors >= 32 && s.Minority >= 0.05 }

func stats(img image.Image) screenStats {
	b := img.Bounds()
	counts := map[uint32]int{}
	bottom, bottomCTA := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y += 2 {
		for x := b.Min.X; x < b.Max.X; x += 2 {
			r, g, bl, _ := img.At(x, y).RGBA()
			c := (r>>8)<<16 | (g>>8)<<8 | bl>>8
			counts[c]++
			if y >= b.Max.Y-b.Dy()/5 {
				bottom++
				if c == ctaBlue {
					bottomCTA++
				}
			}
		}
	}
	total, most := 0, 0
	for _, c := range counts {
		total += c
		most = max(most, c)
	}
	return screenStats{
		Colors:   len(counts),
		Minority: 1 - float64(most)/float64(total),
		Black:    float64(counts[0]) / float64(total),
		CTA:      float64(bottomCTA) / float64(max(bottom, 1)),
		Width:    b.Dx(), High: b.Dy(),
	}
}
