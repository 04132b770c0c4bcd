package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/sdnotify/sdnotifytest"
)

const waitFor = 30 * time.Second

// build builds this command with the version set the way packaging does.
func build(t *testing.T, version string) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the hub binary")
	}
	gobin, err := exec.LookPath("go")
	if err != nil {
		gobin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		if os.Getenv("GOROOT") == "" {
			gobin = "/usr/local/go/bin/go"
		}
	}
	bin := filepath.Join(t.TempDir(), "hub")
	cmd := exec.Command(gobin, "build", "-o", bin, "-ldflags", "-X main.version="+version, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// TestVersion: "hub version" prints the version given with -ldflags.
func TestVersion(t *testing.T) {
	const version = "v1.2.3-4-gdeadbee-dirty"
	out, err := exec.Command(build(t, version), "version").Output()
	if err != nil {
		t.Fatalf("hub version: %v", err)
	}
	if string(out) != version+"\n" {
		t.Errorf("hub version printed %q, want %q", out, version+"\n")
	}
}

// TestServeUnderSystemd runs "hub serve" as systemd would (Type=notify,
// WatchdogSec=2s): READY=1 once started, watchdog pings, STOPPING=1 and a
// clean exit on SIGTERM.
func TestServeUnderSystemd(t *testing.T) {
	bin := build(t, "v0.0.0-test")
	sock := filepath.Join(t.TempDir(), "notify.sock")
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: sock, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	cmd := exec.Command(bin, "serve", "-data", t.TempDir(), "-org", filepath.Join("..", "..", "packaging", "demo", "org.json"),
		"-http", "127.0.0.1:0", "-mqtt", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "NOTIFY_SOCKET="+sock, "WATCHDOG_USEC=2000000")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if t.Failed() {
			cmd.Process.Kill()
			<-exited
			t.Logf("hub log:\n%s", stderr.String())
		}
	}()
	recv := func() string {
		t.Helper()
		return sdnotifytest.Recv(t, conn, waitFor)
	}
	if got := recv(); got != "READY=1\nSTATUS=hub v0.0.0-test serving" {
		t.Fatalf("first notification %q, want READY=1", got)
	}
	if got := recv(); got != "WATCHDOG=1" {
		t.Fatalf("second notification %q, want a watchdog ping", got)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	sdnotifytest.UntilStopping(t, conn, waitFor)
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("hub exited with %v\n%s", err, stderr.String())
		}
	case <-time.After(waitFor):
		t.Fatal("hub did not exit after SIGTERM")
	}
	if !strings.Contains(stderr.String(), "version=v0.0.0-test") {
		t.Errorf("the hub did not log its version:\n%s", stderr.String())
	}
}
