package vm

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// startAgent runs Debian's qemu-ga on this host, listening on a unix
// socket, and returns a client connected to it and the agent's process. It
// is the same program the guest image runs; here it serves the host, so
// Exec and the files are the host's. The socket is passed by systemd-style
// socket activation, so it listens before qemu-ga starts and nothing waits
// for it to appear.
func startAgent(t *testing.T) (*agent, *os.Process) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs qemu-ga; skipped with -short")
	}
	qga, err := exec.LookPath("qemu-ga")
	if err != nil {
		if qga, err = exec.LookPath("/usr/sbin/qemu-ga"); err != nil {
			t.Fatalf("%v: apt-get install -y qemu-guest-agent", err)
		}
	}
	dir := t.TempDir()
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: filepath.Join(dir, "qga.sock"), Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	lf, err := l.File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	// LISTEN_PID must be qemu-ga's own: the shell's, which exec keeps.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ LISTEN_FDS=1 exec "$0" "$@"`,
		qga, "-t", dir, "-f", filepath.Join(dir, "qga.pid"), "-l", filepath.Join(dir, "qga.log"))
	cmd.ExtraFiles = []*os.File{lf} // fd 3, as socket activation wants
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait() // killed: the error says so
		if log, err := os.ReadFile(filepath.Join(dir, "qga.log")); err == nil && len(log) > 0 {
			t.Logf("qemu-ga log:\n%s", log)
		}
		if out.Len() > 0 {
			t.Logf("qemu-ga output:\n%s", out.Bytes())
		}
	})
	conn, err := net.Dial("unix", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	l.Close() // qemu-ga has its own copy
	a := newAgent(conn, testLogger(t))
	t.Cleanup(func() { a.c.close() })
	return a, cmd.Process
}

func TestAgent(t *testing.T) {
	a, _ := startAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}

	t.Run("exec", func(t *testing.T) {
		stdout, stderr, code, err := a.exec(ctx, "/bin/sh", []string{"-c", "echo out; echo err >&2; exit 3"})
		if err != nil || string(stdout) != "out\n" || string(stderr) != "err\n" || code != 3 {
			t.Errorf("exec = %q, %q, %d, %v; want out, err, 3", stdout, stderr, code, err)
		}
		stdout, _, code, err = a.exec(ctx, "/bin/echo", nil)
		if err != nil || string(stdout) != "\n" || code != 0 {
			t.Errorf("exec without arguments = %q, %d, %v", stdout, code, err)
		}
	})
	t.Run("exec killed", func(t *testing.T) {
		_, _, code, err := a.exec(ctx, "/bin/sh", []string{"-c", "kill -9 $$"})
		if err == nil || !strings.Contains(err.Error(), "signal 9") || code != -1 {
			t.Errorf("exec killed by a signal = %d, %v; want -1 and the signal", code, err)
		}
	})
	t.Run("exec missing", func(t *testing.T) {
		var ce *CommandError
		if _, _, _, err := a.exec(ctx, "/nonexistent/program", nil); !errors.As(err, &ce) {
			t.Errorf("exec of a missing program: %v; want a CommandError", err)
		}
	})
	t.Run("exec timeout", func(t *testing.T) {
		short, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer cancel()
		if _, _, _, err := a.exec(short, "/bin/sleep", []string{"5"}); !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("exec past its context: %v; want a deadline error", err)
		}
	})

	t.Run("files", func(t *testing.T) {
		dir := t.TempDir()
		data := make([]byte, 2*fileChunk+12345) // three writes
		rand.Read(data)
		path := filepath.Join(dir, "package.deb")
		if err := a.writeFile(ctx, path, data); err != nil {
			t.Fatalf("writeFile: %v", err)
		}
		if got, err := os.ReadFile(path); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("file written differs (%d bytes, want %d): %v", len(got), len(data), err)
		}
		got, err := a.readFile(ctx, path)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("readFile = %d bytes, %v; want %d", len(got), err, len(data))
		}
		empty := filepath.Join(dir, "empty")
		if err := a.writeFile(ctx, empty, nil); err != nil {
			t.Fatalf("writeFile empty: %v", err)
		}
		if got, err := a.readFile(ctx, empty); err != nil || len(got) != 0 {
			t.Fatalf("readFile empty = %q, %v", got, err)
		}
		var ce *CommandError
		if _, err := a.readFile(ctx, filepath.Join(dir, "missing")); !errors.As(err, &ce) {
			t.Errorf("readFile of a missing file: %v; want a CommandError", err)
		}
		if err := a.writeFile(ctx, filepath.Join(dir, "no", "such", "dir"), data); !errors.As(err, &ce) {
			t.Errorf("writeFile into a missing directory: %v; want a CommandError", err)
		}
	})
}

// TestAgentResync: a reply that comes after its command gave up must not
// be taken for the next command's. The agent is stopped while a command
// waits, then let go, and answers the old command first.
func TestAgentResync(t *testing.T) {
	a, p := startAgent(t)
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	if err := a.ping(ctx); err != nil {
		t.Fatalf("ping: %v", err)
	}
	if err := p.Signal(syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel2()
	if err := a.call(short, "guest-get-time", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("call to a stopped agent: %v; want a deadline error", err)
	}
	if err := p.Signal(syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	var info struct {
		Version string `json:"version"`
	}
	if err := a.call(ctx, "guest-info", nil, &info); err != nil || info.Version == "" {
		t.Fatalf("guest-info after the agent resumed = %+v, %v; want its version (not the late guest-get-time reply)", info, err)
	}
	t.Logf("qemu-ga %s", info.Version)

	// Debian's agent allows guest-exec and guest-file-*: no block list.
	var all struct {
		Commands []struct {
			Name    string `json:"name"`
			Enabled bool   `json:"enabled"`
		} `json:"supported_commands"`
	}
	if err := a.call(ctx, "guest-info", nil, &all); err != nil {
		t.Fatal(err)
	}
	need := map[string]bool{"guest-exec": false, "guest-exec-status": false, "guest-file-open": false, "guest-file-write": false, "guest-file-read": false, "guest-file-close": false}
	for _, c := range all.Commands {
		if _, ok := need[c.Name]; ok {
			need[c.Name] = c.Enabled
		}
	}
	for name, enabled := range need {
		if !enabled {
			t.Errorf("qemu-ga: %s is not enabled", name)
		}
	}
}
