package e2e

import (
	"bytes"
	"context"
	"fmt"
	"image"
	"image/color"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/shequ/shequ/cmd/internal/vm"
	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/kiosk/ui"
	"github.com/shequ/shequ/protocol"
)

// The kiosk image test's inputs, set by packaging/dev/test.sh after
// `make package image`: the raw image, and a directory with a newer
// shequ-agent and shequ-kiosk .deb for the upgrade step.
const (
	envImage       = "SHEQU_IMAGE"
	envUpgradeDebs = "SHEQU_UPGRADE_DEBS"
)

// The guest reaches the hub at this address of QEMU's user network; QEMU
// hands each connection to the hub on the host's loopback (vm.Service).
const (
	guestHubAddr  = "10.0.2.100"
	guestHTTPPort = 443
	guestMQTTPort = 8883
)

// kioskReady is the line the image's shequ-kiosk-ready.service writes on the serial
// console once the kiosk UI has drawn its first screen.
var kioskReady = regexp.MustCompile(`shequ: kiosk ready`)

// keyFace is the colour of a keypad key (kiosk/ui's colorButton).
var keyFace = color.NRGBA{0xE4, 0xE9, 0xF0, 0xFF}

// colorUrgent is the background of the urgent-notice takeover (kiosk/ui).
var colorUrgent = color.NRGBA{0xB0, 0x00, 0x0F, 0xFF}

// TestKioskImage boots the kiosk OS image the way a technician meets it:
// power on, the setup screen, the claim code typed on the touchscreen, the
// community's notices. Then, in the same machine, it upgrades the
// packages, shows that systemd's watchdog restarts a stopped agent, and
// removes and purges the packages. The guest reaches only the hub on the
// host's loopback.
func TestKioskImage(t *testing.T) {
	img := builtImage(t)
	log := testLogger(t)
	dir := t.TempDir()
	// The deployment's update keys: the hub checks releases against the CA,
	// and so does the kiosk.
	updKeys := filepath.Join(dir, "keys")
	run(t, filepath.Join(repoRoot(), "packaging/image/update-key.sh"), updKeys)

	// The hub, on loopback, with a certificate for the address the guest
	// knows it by.
	httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
	e := &env{t: t, cfg: hub.Config{
		DataDir:         t.TempDir(),
		OrgFile:         demoOrg,
		MQTTListen:      mqttAddr,
		HTTPListen:      httpAddr,
		Hostnames:       []string{guestHubAddr},
		PublicBrokerURL: fmt.Sprintf("ssl://%s:%d", guestHubAddr, guestMQTTPort),
		EnrolPerMinute:  100,
		UpdateCA:        filepath.Join(updKeys, "ca.pem"),
	}}
	e.start()
	t.Cleanup(e.stop)
	const kiosk = "k-sangcheng-01"

	// The deployment's image: the built one with this hub's address, CA
	// pin and update CA on its EFI partition.
	disk := filepath.Join(dir, "kiosk.img")
	run(t, "cp", "--sparse=always", img, disk)
	// A disk larger than the image, as a kiosk's is: the data partition
	// grows into it at first boot, and the media cache keeps 512 MiB free.
	run(t, "truncate", "-s", "+1G", disk)
	run(t, filepath.Join(repoRoot(), "packaging/image/configure.sh"), disk,
		fmt.Sprintf("https://%s:%d", guestHubAddr, guestHTTPPort), e.hub.CAPin(), filepath.Join(updKeys, "ca.pem"))

	m, accel, slow := bootImage(t, vm.Config{
		Image: disk, Dir: filepath.Join(dir, "vm"), Log: log,
		Net: vm.NetConfig{Restrict: true, Services: []vm.Service{
			{GuestAddr: guestHubAddr, GuestPort: guestHTTPPort, HostPort: port(t, httpAddr)},
			{GuestAddr: guestHubAddr, GuestPort: guestMQTTPort, HostPort: port(t, mqttAddr)},
		}},
	}, "journalctl -b --no-pager -o short-monotonic -u shequ-agent.service -u shequ-kiosk.service -u seatd.service | tail -n 150")
	powerOn := time.Now()

	// 1. Power on → the setup screen.
	wait(t, 4*time.Minute*slow, "the kiosk-ready marker on the serial console", func(ctx context.Context) error {
		_, err := m.WaitSerial(ctx, kioskReady)
		return err
	})
	bootTime := time.Since(powerOn)
	t.Logf("power-on to kiosk ready: %s (%s)", bootTime.Round(100*time.Millisecond), accel)
	keys := setupKeys(t)
	shot := waitScreen(t, m, 2*time.Minute*slow, "the setup screen", func(img image.Image) (bool, string) {
		// The setup screen has the keypad where the model puts it: the
		// key faces are the theme's button colour.
		n := keypadKeys(img, keys)
		return n == 10, fmt.Sprintf("%d of 10 keypad keys seen", n)
	})
	saveShot(t, "kiosk-image-setup.png", shot)

	// 2. The technician types the claim code and taps 注册, looking at the
	// screen as a person would: a digit that did not appear is typed
	// again, an extra one deleted, and 注册 is tapped once it is enabled.
	code := strings.ReplaceAll(e.claim(kiosk), "-", "")
	enrolStart := time.Now()
	typeClaimCode(t, m, keys, code, 2*time.Minute*slow)
	t.Logf("claim code typed in %s", time.Since(enrolStart).Round(100*time.Millisecond))
	p := keys["enrol"]
	if err := m.Tap(timeout(t, 10*time.Second), int(p.X), int(p.Y)); err != nil {
		t.Fatalf("tap enrol: %v", err)
	}
	a := e.api()
	waitFor(t, 3*time.Minute*slow, "the kiosk online at the hub", func() (bool, error) {
		k, ok := a.kiosk(kiosk)
		return ok && k.Online, nil
	})
	t.Logf("enrol tap to online at the hub: %s", time.Since(enrolStart).Round(100*time.Millisecond))

	// 3. The community's notices: a normal one is held, an urgent one
	// takes over the screen.
	n := a.createNotice("桑城小区公告：镜像测试", protocol.PriorityNormal, kioskTarget(kiosk))
	waitFor(t, 2*time.Minute*slow, "the notice held by the kiosk", func() (bool, error) {
		k, _ := a.kiosk(kiosk)
		return k.DesiredVersion > 0 && k.ContentVersion >= k.DesiredVersion, nil
	})
	home := waitScreen(t, m, time.Minute*slow, "the home screen", func(img image.Image) (bool, string) {
		f := fraction(img, colorUrgent, 30)
		return !looksLikeSetup(img, keys), fmt.Sprintf("urgent %.2f", f)
	})
	saveShot(t, "kiosk-image-home.png", home)
	urgent := a.createNotice("紧急通知：镜像测试", protocol.PriorityUrgent, kioskTarget(kiosk))
	shot = waitScreen(t, m, 2*time.Minute*slow, "the urgent takeover", func(img image.Image) (bool, string) {
		f := fraction(img, colorUrgent, 30)
		return f > 0.5, fmt.Sprintf("%.0f%% of the screen in the urgent colour", 100*f)
	})
	saveShot(t, "kiosk-image-urgent.png", shot)
	t.Logf("power-on to enrolled and showing notices: %s (%s)", time.Since(powerOn).Round(time.Second), accel)
	a.withdraw(urgent.ID)
	a.withdraw(n.ID)

	// 4. The services: the agent is up under its own user, the UI under
	// the kiosk's; a stopped agent is restarted by the watchdog.
	agentPID := mainPID(t, m, "shequ-agent.service")
	restarts := restartsOf(t, m, "shequ-agent.service")
	guest(t, m, "/bin/systemctl", "kill", "--kill-whom=main", "--signal=SIGSTOP", "shequ-agent.service")
	waitFor(t, 3*time.Minute*slow, "systemd's watchdog to restart the stopped agent", func() (bool, error) {
		pid := mainPID(t, m, "shequ-agent.service")
		return pid != 0 && pid != agentPID && restartsOf(t, m, "shequ-agent.service") > restarts, nil
	})
	if out := guest(t, m, "/bin/journalctl", "-u", "shequ-agent.service", "--no-pager", "-o", "cat"); !strings.Contains(out, "Watchdog timeout") {
		t.Errorf("the agent's journal does not say the watchdog restarted it:\n%s", tail(out, 2000))
	}
	waitFor(t, 2*time.Minute*slow, "the restarted agent online again", func() (bool, error) {
		k, ok := a.kiosk(kiosk)
		return ok && k.Online, nil
	})

	// 5. A release through the hub: the kiosk reports its slot and
	// release, is offered a release older than the one it runs, fetches
	// it, and RAUC (driven by the sandboxed agent over D-Bus) refuses it
	// before writing anything; the refusal, with the pre-install handler's
	// reason, halts the rollout.
	rolloutStart := time.Now()
	down := makeBundle(t, updKeys, tinyRoot(t, dir), "0.0.0~git1.20000101.g0000000", filepath.Join(dir, "downgrade.raucb"))
	a.uploadRelease(down)
	var ro rolloutView
	a.do(http.MethodPost, "/api/v1/rollouts", map[string]any{"release": "0.0.0~git1.20000101.g0000000", "soak_seconds": -1,
		"stages": []map[string]any{{"name": "canary", "targets": []string{kiosk}}}}, &ro)
	waitFor(t, 5*time.Minute*slow, "the kiosk's refusal halting the rollout", func() (bool, error) {
		a.do(http.MethodGet, "/api/v1/rollouts/"+ro.ID, nil, &ro)
		return ro.State == "halted" && len(ro.Kiosks) == 1 && ro.Kiosks[0].State == string(protocol.UpdateRefused), nil
	})
	if k := ro.Kiosks[0]; !strings.Contains(k.Reason, "not newer than slot A") || k.Slot != "A" || k.Version != imageVersion(t, img) {
		t.Errorf("the refusing kiosk: %+v; want slot A running %s, refused as not newer than slot A", k, imageVersion(t, img))
	}
	t.Logf("rollout start to the kiosk's refusal at the hub: %s (%s)", time.Since(rolloutStart).Round(time.Second), accel)
	// Only root and the agent may drive RAUC: the kiosk UI's user may not.
	guest(t, m, "/bin/sh", "-c", "head -c 4096 /dev/zero >/run/nothing.raucb && chmod 0644 /run/nothing.raucb")
	rOut, rErr, rCode, err := m.Exec(timeout(t, time.Minute*slow), "/usr/sbin/runuser", "-u", "shequ-kiosk", "--",
		"/usr/bin/rauc", "install", "/run/nothing.raucb")
	if err != nil || rCode == 0 || !strings.Contains(string(rOut)+string(rErr), "AccessDenied") {
		t.Errorf("rauc install as the kiosk UI's user: exit %d, err %v, want D-Bus AccessDenied:\n%s%s", rCode, err, rOut, rErr)
	}

	// 6. Upgrade: newer packages over the running ones keep the identity
	// and the data, and the hub sees the new version.
	if dir := os.Getenv(envUpgradeDebs); dir != "" {
		debs := copyDebs(t, m, dir)
		guest(t, m, "/usr/bin/env", append([]string{"DEBIAN_FRONTEND=noninteractive", "dpkg", "-i"}, debs...)...)
		want := debVersion(t, filepath.Join(dir, filepath.Base(debs[0])))
		waitFor(t, 3*time.Minute*slow, "the upgraded agent reporting "+want, func() (bool, error) {
			return kioskVersion(t, a, kiosk) == want, nil
		})
		guest(t, m, "/bin/systemctl", "is-active", "shequ-agent.service", "shequ-kiosk.service")
	} else if os.Getenv("CI") != "" {
		t.Errorf("%s is not set: CI must test a package upgrade", envUpgradeDebs)
	}

	// 7. Remove keeps the data; purge deletes it.
	guest(t, m, "/usr/bin/env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-r", "shequ-kiosk", "shequ-agent")
	if out := guestStatus(t, m, "/bin/systemctl", "is-active", "shequ-agent.service"); strings.TrimSpace(out) == "active" {
		t.Errorf("shequ-agent.service still active after dpkg -r")
	}
	guest(t, m, "/usr/bin/test", "-s", "/var/lib/shequ-agent/agent.db")
	guest(t, m, "/usr/bin/env", "DEBIAN_FRONTEND=noninteractive", "dpkg", "-P", "shequ-kiosk", "shequ-agent")
	if _, _, code, err := m.Exec(timeout(t, time.Minute), "/usr/bin/test", "-e", "/var/lib/shequ-agent/agent.db"); err != nil || code == 0 {
		t.Errorf("agent.db still there after dpkg -P (exit %d, err %v)", code, err)
	}
}

// colorPrimary is the face of an enabled primary button, such as 注册
// (kiosk/ui's theme).
var colorPrimary = color.NRGBA{0x0B, 0x4F, 0x9C, 0xFF}

// typeClaimCode taps the digits of code on the setup screen's keypad,
// reading the claim-code cells from screendumps as it goes, as a person
// looks at what they typed: an emulated kiosk can drop a tap (the first
// pointer event after boot only gives Xwayland's window focus) or draw it
// seconds later. A digit that has not appeared 15 s after its tap is
// tapped again; an extra one is deleted (删除). It returns once the whole
// code shows and 注册 is enabled.
func typeClaimCode(t *testing.T, m *vm.VM, keys map[string]fyne.Position, code string, d time.Duration) {
	t.Helper()
	tap := func(key string) {
		p := keys[key]
		if err := m.Tap(timeout(t, 10*time.Second), int(p.X), int(p.Y)); err != nil {
			t.Fatalf("tap %s: %v", key, err)
		}
	}
	const settle = 15 * time.Second // how long a tap may take to show
	deadline := time.Now().Add(d)
	want, tapped, retaps := 0, time.Time{}, 0 // digits that should show after the last tap
	for {
		img, err := m.Screendump(timeout(t, 30*time.Second))
		if err != nil {
			t.Fatalf("screendump: %v", err)
		}
		shown := filledCells(img, keys)
		e := keys["enrol"]
		if shown == len(code) && near(img.At(int(e.X), int(e.Y)-40), colorPrimary, 40) {
			if retaps > 0 {
				t.Logf("typing the claim code took %d taps again", retaps)
			}
			return
		}
		if time.Now().After(deadline) {
			path := filepath.Join(t.TempDir(), "last.png")
			_ = vm.SavePNG(path, img)
			t.Fatalf("typing the claim code: %d of %d digits on screen after %s (last screen in %s)", shown, len(code), d, path)
		}
		late := time.Since(tapped) > settle
		switch {
		case shown == want && want < len(code):
			tap(string(code[want]))
			want++
			tapped = time.Now()
		case shown < want && late: // the tap was dropped
			want = shown
			retaps++
		case shown > want && late: // a tap counted twice
			tap("delete")
			want = shown - 1
			tapped = time.Now()
			retaps++
		}
		time.Sleep(500 * time.Millisecond)
	}
}

// filledCells counts the claim-code cells, from the left, that show a
// digit: dark pixels around the cell's centre ("cell0", "cell1", ... in
// keys; an empty cell is white there).
func filledCells(img image.Image, keys map[string]fyne.Position) int {
	n := 0
	for ; ; n++ {
		c, ok := keys[fmt.Sprintf("cell%d", n)]
		if !ok {
			return n
		}
		dark := 0
		for y := int(c.Y) - 20; y <= int(c.Y)+20; y += 2 {
			for x := int(c.X) - 12; x <= int(c.X)+12; x += 2 {
				if near(img.At(x, y), color.NRGBA{0x11, 0x11, 0x11, 0xFF}, 0x50) {
					dark++
				}
			}
		}
		if dark < 10 {
			return n
		}
	}
}

// builtImage returns the kiosk image the test boots ($SHEQU_IMAGE), or
// skips the test where there is none (CI must have one).
func builtImage(t *testing.T) string {
	t.Helper()
	img := os.Getenv(envImage)
	if img == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must build the kiosk image (make package image) and boot it", envImage)
		}
		t.Skipf("%s is not set: run `make package image`, then %s=dist/image/shequ-kiosk.img go test ./cmd/e2e -run %s", envImage, envImage, t.Name())
	}
	if testing.Short() {
		t.Skip("boots a virtual machine")
	}
	return img
}

// bootImage boots cfg.Image as a kiosk (2 CPUs, 2 GiB, the portrait
// screen, the guest agent) under KVM where it can run firmware, else
// QEMU's emulator, and returns the machine, the accelerator and how much
// slower than KVM every wait must allow. When the test fails, the log gets
// what the guest shell command story prints, and the serial console.
func bootImage(t *testing.T, cfg vm.Config, story string) (*vm.VM, string, time.Duration) {
	t.Helper()
	accel, err := vm.ProbeAccel(context.Background(), cfg.Log)
	if err != nil {
		t.Fatalf("no QEMU accelerator: %v", err)
	}
	if accel != "kvm" {
		t.Logf("KVM cannot run firmware here (a nested hypervisor): booting under %s, QEMU's emulator", accel)
	}
	// Emulation is ~10× slower than KVM: every wait scales with it.
	slow := time.Duration(1)
	if accel != "kvm" {
		slow = 4
	}
	cfg.MemoryMiB, cfg.CPUs, cfg.Width, cfg.Height = 2048, 2, 1080, 1920
	cfg.GuestAgent, cfg.Accel = true, accel
	m, err := vm.Start(context.Background(), cfg)
	if err != nil {
		t.Fatalf("boot the image: %v", err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			// The guest's own story, while it still runs.
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			out, errOut, _, err := m.Exec(ctx, "/bin/sh", "-c", story)
			cancel()
			t.Logf("guest: %s (err %v):\n%s%s", story, err, tail(string(out), 8000), errOut)
		}
		if err := m.Close(); err != nil {
			t.Logf("closing the VM: %v", err)
		}
		if t.Failed() {
			if b, err := os.ReadFile(filepath.Join(m.Dir(), "serial.log")); err == nil {
				t.Logf("serial console (tail):\n%s", tail(string(b), 6000))
			}
		}
	})
	return m, accel, slow
}

// setupKeys lays out the setup screen with Fyne's test driver at the
// kiosk's 1080×1920 and returns where each keypad key ("0"…"9") and the
// enrol button ("enrol") are, in screen pixels.
func setupKeys(t *testing.T) map[string]fyne.Position {
	t.Helper()
	t.Setenv("LANG", "zh_CN.UTF-8")
	a := test.NewTempApp(t)
	a.Settings().SetTheme(ui.Theme{})
	m, err := screen.New(screen.Config{})
	if err != nil {
		t.Fatal(err)
	}
	win := test.NewWindow(nil)
	defer win.Close()
	win.SetPadded(false)
	win.Resize(fyne.NewSize(1080, 1920))
	u := ui.New(win, m, nil, ui.Options{Async: func(f func()) { f() }})
	defer u.Close()
	m.SetStatus(protocol.AgentStatus{SoftwareVersion: "test"})
	u.Tick()
	enrol, del := i18n.T(i18n.Zh, i18n.Enrol), i18n.T(i18n.Zh, i18n.Delete)
	out := map[string]fyne.Position{}
	var cells []fyne.Position
	d := a.Driver()
	for _, o := range test.LaidOutObjects(win.Canvas().Content()) {
		centre := func() fyne.Position {
			p := d.AbsolutePositionForObject(o)
			return p.Add(fyne.NewPos(o.Size().Width/2, o.Size().Height/2))
		}
		switch o := o.(type) {
		case *canvas.Text:
			switch {
			case len(o.Text) == 1 && o.Text[0] >= '0' && o.Text[0] <= '9' && o.TextSize > 40:
				out[o.Text] = centre()
			case o.Text == del:
				out["delete"] = centre()
			}
		case *canvas.Rectangle:
			// The claim-code cells: white, outlined, one digit tall.
			if o.StrokeWidth > 0 && o.FillColor == color.Color(color.NRGBA{0xFF, 0xFF, 0xFF, 0xFF}) && o.Size().Height > 80 && o.Size().Width < 100 {
				cells = append(cells, centre())
			}
		case *widget.Button:
			if o.Text == enrol {
				out["enrol"] = centre()
			}
		}
	}
	sort.Slice(cells, func(i, j int) bool { return cells[i].X < cells[j].X })
	for i, c := range cells {
		out[fmt.Sprintf("cell%d", i)] = c
	}
	if len(out) != 12+12 || len(cells) != 12 {
		t.Fatalf("setup screen: found %d of the 12 keys and %d of the 12 claim-code cells (%v)", len(out)-len(cells), len(cells), out)
	}
	return out
}

// looksLikeSetup reports whether the keypad is on the screen.
func looksLikeSetup(img image.Image, keys map[string]fyne.Position) bool {
	return keypadKeys(img, keys) == 10
}

// keypadKeys counts the digit keys whose face is where setupKeys put them.
func keypadKeys(img image.Image, keys map[string]fyne.Position) int {
	n := 0
	for _, d := range "0123456789" {
		p := keys[string(d)]
		if near(img.At(int(p.X), int(p.Y)-30), keyFace, 40) {
			n++
		}
	}
	return n
}

// waitScreen takes screendumps until ok accepts one, and returns it.
func waitScreen(t *testing.T, m *vm.VM, d time.Duration, what string, ok func(image.Image) (bool, string)) image.Image {
	t.Helper()
	var last image.Image
	var why string
	deadline := time.Now().Add(d)
	for {
		img, err := m.Screendump(timeout(t, 30*time.Second))
		if err != nil {
			t.Fatalf("screendump: %v", err)
		}
		last = img
		var good bool
		if good, why = ok(img); good {
			return img
		}
		if time.Now().After(deadline) {
			path := filepath.Join(t.TempDir(), "last.png")
			if err := vm.SavePNG(path, last); err == nil {
				why += "; last screen in " + path
			}
			t.Fatalf("timed out after %s waiting for %s: %s", d, what, why)
		}
		time.Sleep(time.Second)
	}
}

// saveShot writes a screendump to docs/screenshots with -screenshots.
func saveShot(t *testing.T, name string, img image.Image) {
	t.Helper()
	if !*writeShots {
		return
	}
	if err := vm.SavePNG(filepath.Join(repoRoot(), "docs/screenshots", name), img); err != nil {
		t.Errorf("save %s: %v", name, err)
	}
}

// near reports whether c is within tol of want in every channel.
func near(c color.Color, want color.NRGBA, tol int) bool {
	r, g, b, _ := c.RGBA()
	d := func(x uint32, w uint8) bool { v := int(x>>8) - int(w); return v <= tol && v >= -tol }
	return d(r, want.R) && d(g, want.G) && d(b, want.B)
}

// fraction is the share of img's pixels near c (every 4th pixel each way).
func fraction(img image.Image, c color.NRGBA, tol int) float64 {
	b := img.Bounds()
	n, all := 0, 0
	for y := b.Min.Y; y < b.Max.Y; y += 4 {
		for x := b.Min.X; x < b.Max.X; x += 4 {
			all++
			if near(img.At(x, y), c, tol) {
				n++
			}
		}
	}
	return float64(n) / float64(max(all, 1))
}

// guest runs a command in the guest through the guest agent and fails the
// test unless it exits 0; it returns standard output.
func guest(t *testing.T, m *vm.VM, path string, args ...string) string {
	t.Helper()
	out, errOut, code, err := m.Exec(timeout(t, 5*time.Minute), path, args...)
	if err != nil || code != 0 {
		t.Fatalf("guest: %s %s: exit %d, %v\n%s%s", path, strings.Join(args, " "), code, err, out, errOut)
	}
	return string(out)
}

// guestStatus is guest for a command whose exit status is an answer.
func guestStatus(t *testing.T, m *vm.VM, path string, args ...string) string {
	t.Helper()
	out, _, _, err := m.Exec(timeout(t, time.Minute), path, args...)
	if err != nil {
		t.Fatalf("guest: %s: %v", path, err)
	}
	return string(out)
}

func mainPID(t *testing.T, m *vm.VM, unit string) int {
	t.Helper()
	v, _ := strconv.Atoi(strings.TrimSpace(guest(t, m, "/bin/systemctl", "show", "-P", "MainPID", unit)))
	return v
}

func restartsOf(t *testing.T, m *vm.VM, unit string) int {
	t.Helper()
	v, _ := strconv.Atoi(strings.TrimSpace(guest(t, m, "/bin/systemctl", "show", "-P", "NRestarts", unit)))
	return v
}

// copyDebs copies dir's shequ-agent and shequ-kiosk amd64 .debs into the
// guest and returns their paths there, the agent's first.
func copyDebs(t *testing.T, m *vm.VM, dir string) []string {
	t.Helper()
	var out []string
	for _, name := range []string{"shequ-agent", "shequ-kiosk"} {
		matches, _ := filepath.Glob(filepath.Join(dir, name+"_*_amd64.deb"))
		if len(matches) == 0 {
			t.Fatalf("no %s .deb in %s", name, dir)
		}
		sort.Strings(matches)
		src := matches[len(matches)-1]
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		dst := "/var/tmp/" + filepath.Base(src)
		if err := m.WriteFile(timeout(t, 5*time.Minute), dst, b); err != nil {
			t.Fatalf("copy %s into the guest: %v", src, err)
		}
		out = append(out, dst)
	}
	return out
}

func debVersion(t *testing.T, deb string) string {
	t.Helper()
	return strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, "Version"))
}

// kioskVersion is the software version the hub's fleet list shows for id.
func kioskVersion(t *testing.T, a api, id string) string {
	t.Helper()
	var out struct {
		Kiosks []struct {
			ID              string `json:"id"`
			SoftwareVersion string `json:"software_version"`
		} `json:"kiosks"`
	}
	a.do("GET", "/api/v1/kiosks", nil, &out)
	for _, k := range out.Kiosks {
		if k.ID == id {
			return k.SoftwareVersion
		}
	}
	return ""
}

// run runs a host command and fails the test unless it succeeds.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out)
}

func port(t *testing.T, addr string) int {
	t.Helper()
	_, p, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	n, err := strconv.Atoi(p)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// timeout is a context that ends after d or with the test.
func timeout(t *testing.T, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// wait runs f with a context of d and fails the test if it fails.
func wait(t *testing.T, d time.Duration, what string, f func(ctx context.Context) error) {
	t.Helper()
	if err := f(timeout(t, d)); err != nil {
		t.Fatalf("waiting %s for %s: %v", d, what, err)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// TestKioskImageHoldsNoSecrets looks through the built image for what must
// never be baked into it: private keys, the hub's tokens and passwords,
// password hashes of accounts, and a device identity (a machine id, an
// agent database, SSH host keys).
func TestKioskImageHoldsNoSecrets(t *testing.T) {
	img := os.Getenv(envImage)
	if img == "" {
		if os.Getenv("CI") != "" {
			t.Fatalf("%s is not set: CI must build the kiosk image", envImage)
		}
		t.Skipf("%s is not set: run `make image` first", envImage)
	}
	// The file systems are read with debugfs (no loop device): the root
	// slot and the data partition, found by their GPT names.
	parts := map[string]int64{}
	for _, line := range strings.Split(run(t, "sfdisk", "-d", img), "\n") {
		m := regexp.MustCompile(`start=\s*(\d+),.*name="([^"]+)"`).FindStringSubmatch(line)
		if m != nil {
			start, _ := strconv.ParseInt(m[1], 10, 64)
			parts[m[2]] = start * 512
		}
	}
	fs := func(name string) string {
		off, ok := parts[name]
		if !ok {
			t.Fatalf("the image has no %s partition (%v)", name, parts)
		}
		return fmt.Sprintf("%s?offset=%d", img, off)
	}
	debugfs := func(part, req string) string {
		out, err := exec.Command("debugfs", "-R", req, fs(part)).Output()
		if err != nil {
			t.Fatalf("debugfs %s: %v", req, err)
		}
		return string(out)
	}
	// fileAt names the root file holding the image's byte off.
	fileAt := func(off int64) string {
		block := (off - parts["shequ-root-a"]) / 4096
		f := strings.Fields(lastLine(debugfs("shequ-root-a", fmt.Sprintf("icheck %d", block))))
		if len(f) < 2 {
			return "?"
		}
		f = strings.Fields(lastLine(debugfs("shequ-root-a", "ncheck "+f[1])))
		if len(f) < 2 {
			return "?"
		}
		return f[1]
	}

	// The raw bytes: a PEM private key (its header followed by key data,
	// not the bare header strings crypto libraries carry), a personal API
	// token.
	f, err := os.Open(img)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	secret := regexp.MustCompile(`-----BEGIN [A-Z ]*PRIVATE KEY-----\r?\n[A-Za-z0-9+/=]{40}|shq_[A-Za-z0-9_-]{40}`)
	buf := make([]byte, 8<<20)
	const keep = 256 // bytes carried over so a secret across two reads is found
	var off int64    // of buf[0] in the image
	n := 0           // bytes in buf
	for {
		m, err := f.Read(buf[n:])
		n += m
		chunk := buf[:n]
		if bytes.Contains(chunk, []byte("PRIVATE KEY-----")) || bytes.Contains(chunk, []byte("shq_")) {
			for _, loc := range secret.FindAllIndex(chunk, -1) {
				at := off + int64(loc[0])
				if file := fileAt(at); !publicTestKeys(file) {
					t.Errorf("the image holds %q at byte %d (in %s)", chunk[loc[0]:loc[1]], at, file)
				}
			}
		}
		if err != nil {
			break
		}
		if n > keep {
			copy(buf, buf[n-keep:n])
			off += int64(n - keep)
			n = keep
		}
	}
	cat := func(part, path string) string { return debugfs(part, "cat "+path) }
	if id := strings.TrimSpace(cat("shequ-root-a", "/etc/machine-id")); id != "" {
		t.Errorf("/etc/machine-id is %q: every kiosk would share it", id)
	}
	for _, line := range strings.Split(cat("shequ-root-a", "/etc/shadow"), "\n") {
		f := strings.Split(line, ":")
		if len(f) > 1 && f[1] != "*" && f[1] != "!" && f[1] != "!*" && !strings.HasPrefix(f[1], "!") {
			t.Errorf("account %s has a password in the image", f[0])
		}
	}
	ls := func(part, dir string) string {
		out, err := exec.Command("debugfs", "-R", "ls "+dir, fs(part)).CombinedOutput()
		if err != nil {
			t.Fatalf("debugfs ls %s: %v\n%s", dir, err, out)
		}
		return string(out)
	}
	if out := ls("shequ-root-a", "/etc/ssh"); strings.Contains(out, "ssh_host_") {
		t.Errorf("the image has SSH host keys: %s", out)
	}
	if out := ls("shequ-data", "/"); strings.Contains(out, "agent.db") {
		t.Errorf("the data partition holds an agent database: %s", out)
	}
	if out := ls("shequ-root-a", "/var/lib/shequ-agent"); strings.Contains(out, "agent.db") {
		t.Errorf("the root holds an agent database: %s", out)
	}
}

// publicTestKeys reports whether a file of the image may hold PEM private
// keys: libgnutls carries the published keys of its self-tests (RSA, DSA,
// EC, GOST test vectors), which are public.
func publicTestKeys(file string) bool {
	return strings.HasPrefix(file, "/usr/lib/x86_64-linux-gnu/libgnutls.so.")
}

func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	return lines[len(lines)-1]
}
