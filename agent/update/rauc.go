package update

import (
	"bufio"
	"bytes"
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
)

// RAUC is the Engine of the kiosk image: Debian's rauc (over D-Bus, through
// its command-line client) writes the other slot; files that root-run
// units of the image keep in RunDir say which slot booted and why RAUC
// refused a bundle; a root-run path unit reboots when asked.
type RAUC struct {
	Binary  string // default "rauc"
	Cmdline string // default /proc/cmdline: rauc.slot= names the booted slot
	// RunDir holds booted-version (written at boot by
	// shequ-update-prepare.service from the EFI partition) and refusal
	// (written by the pre-install handler); default /run/shequ-update.
	RunDir string
	// AgentRunDir is the agent's own runtime directory: allow-downgrade
	// (read by the pre-install handler) and reboot (watched by
	// shequ-update-reboot.path) are written there; default /run/shequ-agent.
	AgentRunDir string
}

func (r RAUC) binary() string      { return cmp.Or(r.Binary, "rauc") }
func (r RAUC) cmdline() string     { return cmp.Or(r.Cmdline, "/proc/cmdline") }
func (r RAUC) runDir() string      { return cmp.Or(r.RunDir, "/run/shequ-update") }
func (r RAUC) agentRunDir() string { return cmp.Or(r.AgentRunDir, "/run/shequ-agent") }

var slotRE = regexp.MustCompile(`(?:^|\s)rauc\.slot=([AB])(?:\s|$)`)

// Booted reads the booted slot from the kernel command line and its
// release from RunDir/booted-version.
func (r RAUC) Booted(context.Context) (Slot, error) {
	cmd, err := os.ReadFile(r.cmdline())
	if err != nil {
		return Slot{}, fmt.Errorf("update: %w", err)
	}
	m := slotRE.FindSubmatch(cmd)
	if m == nil {
		return Slot{}, fmt.Errorf("%w: no rauc.slot= on the kernel command line", ErrUnsupported)
	}
	if _, err := exec.LookPath(r.binary()); err != nil {
		return Slot{}, fmt.Errorf("%w: %v", ErrUnsupported, err)
	}
	v, err := os.ReadFile(filepath.Join(r.runDir(), "booted-version"))
	if err != nil {
		return Slot{}, fmt.Errorf("update: the booted slot's version: %w", err)
	}
	return Slot{Name: string(m[1]), Version: strings.TrimSpace(string(v))}, nil
}

var percentRE = regexp.MustCompile(`^\s*(\d{1,3})%`)

// Install runs rauc install on the bundle, passing on its progress. A
// downgrade is allowed by writing its version where the pre-install
// handler looks.
func (r RAUC) Install(ctx context.Context, bundle, allowDowngrade string, progress func(int)) error {
	allow := filepath.Join(r.agentRunDir(), "allow-downgrade")
	refusal := filepath.Join(r.runDir(), "refusal")
	if allowDowngrade != "" {
		if err := os.WriteFile(allow, []byte(allowDowngrade+"\n"), 0o644); err != nil {
			return fmt.Errorf("update: allow the downgrade: %w", err)
		}
		defer os.Remove(allow)
	} else if err := os.Remove(allow); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("update: %w", err)
	}
	cmd := exec.CommandContext(ctx, r.binary(), "install", bundle)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("update: rauc install: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("update: rauc install: %w", err)
	}
	var last string
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		line := sc.Text()
		if strings.TrimSpace(line) != "" {
			last = strings.TrimSpace(line)
		}
		if m := percentRE.FindStringSubmatch(line); m != nil {
			if p, err := strconv.Atoi(m[1]); err == nil && p <= 100 {
				progress(p)
			}
		}
	}
	_, _ = io.Copy(io.Discard, out)
	if err := cmd.Wait(); err != nil {
		why := lastLine(stderr.String(), last)
		if b, rerr := os.ReadFile(refusal); rerr == nil && len(bytes.TrimSpace(b)) > 0 {
			why = strings.TrimSpace(string(b))
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) && refused(why) {
			return &RefusedError{Reason: why}
		}
		return fmt.Errorf("update: rauc install: %s: %w", why, err)
	}
	return nil
}

// refused tells a bundle RAUC refused (it was never going to be written)
// from a failure while writing.
func refused(why string) bool {
	for _, s := range []string{"signature verification failed", "not newer than", "compatible", "Pre-install handler",
		"Failed to verify", "bundle format"} {
		if strings.Contains(why, s) {
			return true
		}
	}
	return false
}

func lastLine(s, fallback string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		if l := strings.TrimSpace(lines[i]); l != "" && !strings.HasPrefix(l, "rauc-Message:") {
			return l
		}
	}
	return cmp.Or(fallback, "rauc install failed")
}

// Reboot asks the image's root-run shequ-update-reboot.path to reboot.
func (r RAUC) Reboot(context.Context) error {
	if err := os.WriteFile(filepath.Join(r.agentRunDir(), "reboot"), []byte("update\n"), 0o644); err != nil {
		return fmt.Errorf("update: ask for a reboot: %w", err)
	}
	return nil
}
