package main

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/sdnotify/sdnotifytest"
)

// noEnv is the environment outside systemd.
func noEnv(string) string { return "" }

const waitFor = 10 * time.Second

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		want    string
		wantErr bool
	}{
		{"default is run", []string{"-data", "/x"}, "run", false},
		{"run with socket group", []string{"run", "-socket-group", "kiosk", "-hub", "https://h:8443", "-ca-pin", "ab"}, "run", false},
		{"enrol", []string{"enrol", "-data", "/x", "-hub", "https://h:8443", "-code", "1234-5678-9012"}, "enrol", false},
		{"enrol without code", []string{"enrol", "-hub", "https://h:8443"}, "enrol", true},
		{"enrol without hub", []string{"enrol", "-code", "123456789012"}, "enrol", true},
		{"unknown flag", []string{"-kiosk", "k1"}, "run", true},
		{"stray argument", []string{"run", "extra"}, "run", true},
		{"status", []string{"status", "-data", "/x"}, "status", false},
		{"version", []string{"version"}, "version", false},
		{"version takes no arguments", []string{"version", "x"}, "version", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := parse(tc.args, io.Discard)
			if (err != nil) != tc.wantErr || c.name != tc.want {
				t.Fatalf("parse(%q) = %s, %v", tc.args, c.name, err)
			}
			if c.name == "run" && !tc.wantErr && c.run.SoftwareVersion == "" {
				t.Error("software version not set")
			}
		})
	}
}

func TestStatusOfFreshDevice(t *testing.T) {
	var out bytes.Buffer
	err := run(context.Background(), []string{"status", "-data", t.TempDir()}, &out, noEnv, slog.New(slog.DiscardHandler))
	if !errors.Is(err, errNotEnrolled) {
		t.Fatalf("status of a fresh device = %v, want errNotEnrolled", err)
	}
	if !strings.Contains(out.String(), "not enrolled") {
		t.Errorf("status printed %q", out.String())
	}
}

// TestVersion: "agent version" prints the version given with -ldflags.
func TestVersion(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), []string{"version"}, &out, noEnv, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	if out.String() != version+"\n" {
		t.Errorf("agent version printed %q, want %q", out.String(), version+"\n")
	}
	if testing.Short() {
		t.Skip("builds the agent binary")
	}
	const built = "v1.2.3-4-gdeadbee-dirty"
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if os.Getenv("GOROOT") == "" {
			gobin = "/usr/local/go/bin/go"
		}
	}
	bin := filepath.Join(t.TempDir(), "agent")
	if b, err := exec.Command(gobin, "build", "-o", bin, "-ldflags", "-X main.version="+built, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, b)
	}
	b, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatalf("agent version: %v", err)
	}
	if string(b) != built+"\n" {
		t.Errorf("agent version printed %q, want %q", b, built+"\n")
	}
}

// TestRunUnderSystemd: run, as systemd starts it (Type=notify,
// WatchdogSec=), says READY=1 although the device is not enrolled and no
// hub is reachable, pings the watchdog, and says STOPPING=1 at the end.
func TestRunUnderSystemd(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	env := map[string]string{"NOTIFY_SOCKET": sock, "WATCHDOG_USEC": "400000"}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		done <- run(ctx, []string{"run", "-data", filepath.Join(dir, "data"), "-socket", filepath.Join(dir, "agent.sock")},
			io.Discard, func(k string) string { return env[k] }, slog.New(slog.DiscardHandler))
	}()
	recv := func() string {
		t.Helper()
		return sdnotifytest.Recv(t, conn, waitFor)
	}
	if got := recv(); got != "READY=1\nSTATUS=agent "+version+" running" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if got := recv(); got != "WATCHDOG=1" {
		t.Fatalf("second notification %q, want a watchdog ping", got)
	}
	cancel()
	sdnotifytest.UntilStopping(t, conn, waitFor)
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("run: %v", err)
		}
	case <-time.After(waitFor):
		t.Fatal("run did not return after its context ended")
	}
}

// TestParseHealthGate: the gate watches the agent and the kiosk UI by
// default (a gate with no units would pass a kiosk whose UI never starts).
func TestParseHealthGate(t *testing.T) {
	c, err := parse([]string{"health-gate", "-stable", "30s", "-bless-boot", "/lib/systemd/systemd-bless-boot"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(c.gate.Units, ","); got != "shequ-agent.service,shequ-kiosk.service" {
		t.Errorf("units %q", got)
	}
	if c.gate.Stable != 30*time.Second || c.gate.Timeout != 150*time.Second || c.gate.MaxRestarts != 3 || c.bless == "" || c.socket != "/run/shequ-agent/agent.sock" {
		t.Errorf("gate config %+v, bless %q, socket %q", c.gate, c.bless, c.socket)
	}
	c, err = parse([]string{"health-gate", "-units", "a.service"}, io.Discard)
	if err != nil || len(c.gate.Units) != 1 || c.gate.Units[0] != "a.service" {
		t.Errorf("-units a.service: %v %v", c.gate.Units, err)
	}
}
