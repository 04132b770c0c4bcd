package releases

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// Info is what a bundle's signed manifest says.
type Info struct {
	Compatible string `json:"compatible"`
	Version    string `json:"version"`
	Build      string `json:"build"`
}

// ErrRefused means a bundle is not one the kiosks would take: its
// signature does not check out against the update CA, or it is not a
// bundle at all.
var ErrRefused = errors.New("releases: bundle refused")

// RAUC checks bundles with Debian's rauc, as the kiosks do: the signature
// against the update CA with the code-signing purpose, verity format only.
type RAUC struct {
	Binary  string // default "rauc" on PATH
	Keyring string // the update CA certificate (PEM); required
	Timeout time.Duration
}

// Inspect verifies the bundle's signature and returns its manifest.
func (r RAUC) Inspect(ctx context.Context, path string) (Info, error) {
	bin := r.Binary
	if bin == "" {
		bin = "rauc"
	}
	if r.Keyring == "" {
		return Info{}, errors.New("releases: no update CA configured (hub -update-ca)")
	}
	keyring, err := filepath.Abs(r.Keyring)
	if err != nil {
		return Info{}, fmt.Errorf("releases: update CA: %w", err)
	}
	if _, err := os.Stat(keyring); err != nil {
		return Info{}, fmt.Errorf("releases: update CA: %w", err)
	}
	dir, err := os.MkdirTemp("", "shequ-rauc-")
	if err != nil {
		return Info{}, fmt.Errorf("releases: %w", err)
	}
	defer os.RemoveAll(dir)
	// The same checks as the kiosk's /etc/rauc/system.conf, without slots.
	conf := filepath.Join(dir, "system.conf")
	if err := os.WriteFile(conf, []byte("[system]\ncompatible=hub\nbootloader=noop\nbundle-formats=-plain\n"+
		"[keyring]\npath="+keyring+"\ncheck-purpose=codesign\n"), 0o600); err != nil {
		return Info{}, fmt.Errorf("releases: %w", err)
	}
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "info", "--conf="+conf, "--output-format=json", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "TMPDIR="+dir)
	if err := cmd.Run(); err != nil {
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return Info{}, fmt.Errorf("%w: %s", ErrRefused, lastLine(stderr.String()))
		}
		return Info{}, fmt.Errorf("releases: run %s: %w", bin, err)
	}
	var info Info
	if err := json.Unmarshal(stdout.Bytes(), &info); err != nil {
		return Info{}, fmt.Errorf("releases: rauc info output: %w", err)
	}
	return info, nil
}

// lastLine returns the last non-empty line of s, without rauc's
// "rauc-Message:" chatter.
func lastLine(s string) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	for i := len(lines) - 1; i >= 0; i-- {
		l := strings.TrimSpace(lines[i])
		if l != "" && !strings.HasPrefix(l, "rauc-Message:") {
			return l
		}
	}
	return "rauc refused the bundle"
}
