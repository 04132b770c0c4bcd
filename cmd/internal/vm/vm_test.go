package vm

// These tests boot Debian's OVMF in a real QEMU, with no operating system:
// the firmware finds nothing to boot on an empty disk and starts its UEFI
// shell, which is enough to see the console, the display, the keyboard,
// resets and a power-off. They need
//
//	apt-get install -y qemu-system-x86 ovmf qemu-utils qemu-guest-agent
//
// (qemu-guest-agent for agent_test.go, whose host-side qemu-ga stands in
// for a guest's) and fail without them; -short skips them. KVM is used
// where it boots OVMF, else TCG (see ProbeAccel).
//
//	go test ./cmd/internal/vm

import (
	"context"
	"errors"
	"fmt"
	"image"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// bootTimeout bounds each wait for the firmware; OVMF needs about 6 s
// under TCG on two cores, 1 s under KVM.
const bootTimeout = 60 * time.Second

// requireQEMU fails the test when QEMU or OVMF is missing, and skips it
// under -short.
func requireQEMU(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("boots a virtual machine; skipped with -short")
	}
	if _, err := exec.LookPath(qemuBinary); err != nil {
		t.Fatalf("%v: apt-get install -y qemu-system-x86 ovmf qemu-utils", err)
	}
	for _, f := range []string{DefaultOVMFCode, DefaultOVMFVars} {
		if _, err := os.Stat(f); err != nil {
			t.Fatalf("%v: apt-get install -y ovmf", err)
		}
	}
}

var probe struct {
	once  sync.Once
	accel string
	err   error
}

// testAccel returns the accelerator that boots OVMF here, probing once
// per test binary.
func testAccel(t *testing.T) string {
	t.Helper()
	probe.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		start := time.Now()
		probe.accel, probe.err = ProbeAccel(ctx, testLogger(t))
		t.Logf("ProbeAccel: %s in %v", probe.accel, time.Since(start).Round(time.Millisecond))
	})
	if probe.err != nil {
		t.Fatalf("ProbeAccel: %v", probe.err)
	}
	return probe.accel
}

// testLogger logs through t.Logf.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(logWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type logWriter struct{ t testing.TB }

func (w logWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSuffix(string(p), "\n"))
	return len(p), nil
}

// startVM starts a VM for the test and closes it when the test ends.
func startVM(t *testing.T, cfg Config) *VM {
	t.Helper()
	if cfg.Accel == "" {
		cfg.Accel = testAccel(t)
	}
	if cfg.Dir == "" {
		cfg.Dir = t.TempDir()
	}
	cfg.Log = testLogger(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	v, err := Start(ctx, cfg)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := v.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		requireGone(t, v.PID())
	})
	return v
}

// requireGone fails unless no process has id pid (QEMU was reaped).
func requireGone(t *testing.T, pid int) {
	t.Helper()
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("qemu (pid %d) still exists: kill -0: %v", pid, err)
	}
}

// typeText types s on the VM's keyboard: lower-case letters, digits,
// space, '-', '.' and '\n'.
func typeText(ctx context.Context, v *VM, s string) error {
	for _, r := range s {
		var q string
		switch {
		case r >= 'a' && r <= 'z', r >= '0' && r <= '9':
			q = string(r)
		case r == ' ':
			q = "spc"
		case r == '-':
			q = "minus"
		case r == '.':
			q = "dot"
		case r == '\n':
			q = "ret"
		default:
			return fmt.Errorf("typeText: no key for %q", r)
		}
		if err := v.Key(ctx, q); err != nil {
			return err
		}
	}
	return nil
}

// The firmware's console lines the test waits for.
var (
	bdsLine     = regexp.MustCompile(`BdsDxe: [^\r\n]*`)
	shellPrompt = regexp.MustCompile(`Shell> `)
	startupNsh  = regexp.MustCompile(`startup\.nsh`)
)

// TestFirmware boots OVMF from an empty disk into its UEFI shell and
// drives it: console, screendump, tablet and keyboard input, a QMP reset,
// and a power-off typed into the shell.
func TestFirmware(t *testing.T) {
	requireQEMU(t)
	t.Parallel()
	dir := t.TempDir()
	img := filepath.Join(dir, "empty.raw")
	extra := filepath.Join(dir, "extra.raw")
	for _, f := range []string{img, extra} {
		if err := os.WriteFile(f, nil, 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Truncate(f, 16<<20); err != nil {
			t.Fatal(err)
		}
	}
	v := startVM(t, Config{
		Image:      img,
		Snapshot:   true,
		Drives:     []Drive{{Path: extra, ReadOnly: true, Serial: "extra"}},
		MemoryMiB:  256,
		CPUs:       1,
		Width:      1080,
		Height:     1920,
		GuestAgent: true,
		Watchdog:   true,
		Net:        NetConfig{Forward: []Forward{{HostPort: freePort(t), GuestPort: 22}}},
		Dir:        filepath.Join(dir, "vm"),
	})
	ctx, cancel := context.WithTimeout(context.Background(), bootTimeout)
	defer cancel()

	// No agent runs in the firmware: GuestPing must give up when its
	// context ends, and say so.
	pingErr := make(chan error, 1)
	go func() {
		pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
		defer cancel()
		pingErr <- v.GuestPing(pctx)
	}()

	line, err := v.WaitSerial(ctx, bdsLine)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("console: %s", line)

	if st, err := v.Status(ctx); err != nil || st != "running" {
		t.Errorf("Status = %q, %v; want running", st, err)
	}

	img0, err := v.Screendump(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if v.ppmOnly {
		t.Errorf("QEMU refused PNG screendumps; want PNG on QEMU 7.2")
	}
	checkScreen(t, img0)
	// The PPM path, for QEMU before 7.1, decodes QEMU's own PPM to the
	// same picture.
	v.screenMu.Lock()
	v.ppmOnly = true
	v.screenMu.Unlock()
	ppm, err := v.Screendump(ctx)
	if err != nil {
		t.Fatalf("PPM screendump: %v", err)
	}
	if ppm.Bounds() != img0.Bounds() {
		t.Errorf("PPM screendump is %v; PNG was %v", ppm.Bounds(), img0.Bounds())
	}
	v.screenMu.Lock()
	v.ppmOnly = false
	v.screenMu.Unlock()
	if err := SavePNG(filepath.Join(dir, "firmware.png"), img0); err != nil {
		t.Fatal(err)
	}

	if err := v.Tap(ctx, 540, 960); err != nil {
		t.Errorf("Tap: %v", err)
	}
	if err := v.Tap(ctx, 1079, 1919); err != nil {
		t.Errorf("Tap at the far corner: %v", err)
	}
	if err := v.Tap(ctx, 1080, 0); err == nil {
		t.Errorf("Tap outside the display: no error")
	}
	if err := v.Key(ctx, "shift"); err != nil {
		t.Errorf("Key: %v", err)
	}
	if err := v.Key(ctx, "no-such-key"); err == nil {
		t.Errorf("Key(no-such-key): no error")
	}

	if err := <-pingErr; err == nil || !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("GuestPing without an agent: %v; want a deadline error", err)
	}

	// Reset: the firmware starts again.
	pos := v.SerialPos()
	if err := v.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WaitEvent(ctx, "RESET"); err != nil {
		t.Fatal(err)
	}
	if _, pos, err = v.WaitSerialFrom(ctx, pos, bdsLine); err != nil {
		t.Fatal(err)
	}

	// Into the shell, skipping its startup.nsh countdown with a key, and
	// power off from there.
	if _, pos, err = v.WaitSerialFrom(ctx, pos, startupNsh); err != nil {
		t.Fatal(err)
	}
	if err := v.Key(ctx, "esc"); err != nil {
		t.Fatal(err)
	}
	if _, pos, err = v.WaitSerialFrom(ctx, pos, shellPrompt); err != nil {
		t.Fatal(err)
	}
	if err := typeText(ctx, v, "ver\n"); err != nil {
		t.Fatal(err)
	}
	if _, pos, err = v.WaitSerialFrom(ctx, pos, regexp.MustCompile(`UEFI Interactive Shell v[0-9.]+`)); err != nil {
		t.Fatal(err)
	}
	if _, _, err = v.WaitSerialFrom(ctx, pos, shellPrompt); err != nil {
		t.Fatal(err)
	}
	if err := typeText(ctx, v, "reset -s\n"); err != nil {
		t.Fatal(err)
	}
	if _, err := v.WaitEvent(ctx, "SHUTDOWN"); err != nil {
		t.Fatal(err)
	}
	waitExit(t, v)
	if err := v.Wait(); err != nil {
		t.Errorf("Wait after the guest powered off: %v", err)
	}
	requireGone(t, v.PID())
	for _, f := range []string{"serial.log", "qemu.log", "OVMF_VARS.fd", "screen.png"} {
		if _, err := os.Stat(filepath.Join(v.Dir(), f)); err != nil {
			t.Errorf("VM directory: %v", err)
		}
	}
}

// waitExit waits for QEMU to exit, within bootTimeout.
func waitExit(t *testing.T, v *VM) {
	t.Helper()
	select {
	case <-v.Done():
	case <-time.After(bootTimeout):
		t.Fatalf("QEMU still runs after %v", bootTimeout)
	}
}

// checkScreen checks a screendump of the firmware. Its size is the
// firmware's own display mode, not Config's (OVMF does not read the size
// QEMU offers); it must not be all black, as OVMF draws its logo and
// boot messages.
func checkScreen(t *testing.T, img image.Image) {
	t.Helper()
	b := img.Bounds()
	t.Logf("screendump: %d×%d", b.Dx(), b.Dy())
	if b.Dx() < 320 || b.Dy() < 200 {
		t.Errorf("screendump is %d×%d; want a firmware display mode of at least 320×200", b.Dx(), b.Dy())
	}
	lit := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			if r, g, bl, _ := img.At(x, y).RGBA(); r|g|bl > 0x0fff {
				lit++
			}
		}
	}
	if lit == 0 {
		t.Errorf("screendump is all black")
	}
	t.Logf("screendump: %d lit pixels", lit)
}

// TestKill kills a VM at once and leaves no process.
func TestKill(t *testing.T) {
	requireQEMU(t)
	t.Parallel()
	v := startVM(t, Config{MemoryMiB: 128, CPUs: 1, Net: NetConfig{Off: true}})
	pid := v.PID()
	if err := v.Kill(); err != nil {
		t.Fatal(err)
	}
	requireGone(t, pid)
	if err := v.Wait(); err == nil {
		t.Errorf("Wait after Kill: no error; want the kill")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := v.Screendump(ctx); !errors.Is(err, ErrClosed) {
		t.Errorf("Screendump after Kill: %v; want ErrClosed", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("Close: %v", err)
	}
	if err := v.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
}

// TestShutdownIgnored: firmware ignores the power button, so Shutdown
// gives up when its context ends and kills QEMU.
func TestShutdownIgnored(t *testing.T) {
	requireQEMU(t)
	t.Parallel()
	v := startVM(t, Config{MemoryMiB: 128, CPUs: 1, Net: NetConfig{Off: true}})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	if err := v.Shutdown(ctx); !errors.Is(err, ErrNotPoweredOff) {
		t.Errorf("Shutdown = %v; want ErrNotPoweredOff", err)
	}
	requireGone(t, v.PID())
	if _, err := v.WaitEvent(context.Background(), "POWERDOWN"); err != nil {
		t.Errorf("no POWERDOWN event: %v", err)
	}
}

// TestStartErrors: bad configurations and a QEMU that exits at once fail
// Start with the reason.
func TestStartErrors(t *testing.T) {
	requireQEMU(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cases := []struct {
		name string
		cfg  Config
		want string
	}{
		{"accel", Config{Accel: "xen"}, "neither kvm nor tcg"},
		{"display", Config{Width: 10, Height: 10}, "out of range"},
		{"firmware", Config{OVMFCode: "/nonexistent/OVMF_CODE.fd"}, "apt-get install ovmf"},
		{"image", Config{Image: "/nonexistent/disk.img"}, "no such file"},
		{"forward", Config{Net: NetConfig{Forward: []Forward{{HostPort: 0, GuestPort: 80}}}}, "port out of range"},
		{"qemu refuses", Config{Accel: "tcg", MemoryMiB: 1 << 30}, "qemu exited"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.cfg.Dir = t.TempDir()
			c.cfg.Log = testLogger(t)
			v, err := Start(ctx, c.cfg)
			if err == nil {
				v.Close()
				t.Fatalf("Start: no error; want %q", c.want)
			}
			if !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Start: %v; want %q", err, c.want)
			}
		})
	}
}

func TestAbsValue(t *testing.T) {
	cases := []struct{ p, n, want int }{
		{0, 1080, 15},
		{539, 1080, 16368},
		{1079, 1080, 32752},
		{0, 1, 16384},
		{0, 32768, 0},
		{32767, 32768, 32767},
	}
	for _, c := range cases {
		if got := absValue(c.p, c.n); got != c.want {
			t.Errorf("absValue(%d, %d) = %d; want %d", c.p, c.n, got, c.want)
		}
	}
}

// freePort returns a TCP port on 127.0.0.1 that was free a moment ago.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
