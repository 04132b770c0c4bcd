package sdnotify

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/shequ/shequ/cmd/internal/sdnotify/sdnotifytest"
)

// waitFor bounds every wait for a notification.
const waitFor = 10 * time.Second

// listen opens a notification socket like systemd's: a datagram socket at
// a path, or an abstract one ("@…").
func listen(t *testing.T, abstract bool) (name string, conn *net.UnixConn) {
	t.Helper()
	name = filepath.Join(t.TempDir(), "notify.sock")
	if abstract {
		name = "@shequ-sdnotify-test-" + uuid.NewString()
	}
	conn, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: name, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return name, conn
}

// recv returns the next notification.
func recv(t *testing.T, conn *net.UnixConn) string {
	t.Helper()
	return sdnotifytest.Recv(t, conn, waitFor)
}

// serve runs Serve in the background; the returned function stops it and
// returns Serve's error.
func serve(t *testing.T, cfg Config, check func(context.Context) error) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- Serve(ctx, cfg, slog.New(slog.DiscardHandler), check) }()
	t.Cleanup(cancel)
	return func() error {
		cancel()
		select {
		case err := <-done:
			return err
		case <-time.After(waitFor):
			t.Fatal("Serve did not return after its context ended")
			return nil
		}
	}
}

// scripted returns a check that answers with script's results in turn,
// then nil, and counts its calls.
func scripted(script ...func(context.Context) error) (func(context.Context) error, *atomic.Int32) {
	var calls atomic.Int32
	return func(ctx context.Context) error {
		i := int(calls.Add(1)) - 1
		if i < len(script) && script[i] != nil {
			return script[i](ctx)
		}
		return nil
	}, &calls
}

func fails(msg string) func(context.Context) error {
	return func(context.Context) error { return errors.New(msg) }
}

// hangs waits for its context to end, as a check stuck on a database that
// does not answer would.
func hangs(ctx context.Context) error {
	<-ctx.Done()
	return ctx.Err()
}

// TestServe checks the exact notifications for scripted check results: a
// ping after each passing check only, the reason in STATUS= while
// failing, and STOPPING=1 at the end.
func TestServe(t *testing.T) {
	const ready = "READY=1\nSTATUS=test service"
	const recovered = "WATCHDOG=1\nSTATUS=test service"
	tests := []struct {
		name         string
		abstract     bool
		checkTimeout time.Duration
		script       []func(context.Context) error // nil: passes
		want         []string                      // the first notifications, in order
	}{
		{"pings while the check passes", false, waitFor, []func(context.Context) error{nil, nil},
			[]string{ready, Watchdog, Watchdog, Watchdog}},
		{"abstract socket", true, waitFor, nil, []string{ready, Watchdog, Watchdog}},
		{"no ping while the check fails", false, waitFor,
			[]func(context.Context) error{nil, fails("database: closed"), fails("database: closed"), fails("database: closed")},
			[]string{ready, Watchdog, "STATUS=unhealthy: database: closed", recovered, Watchdog}},
		{"a new reason is shown", false, waitFor,
			[]func(context.Context) error{fails("loop: stuck"), fails("disk:\n full")},
			[]string{ready, "STATUS=unhealthy: loop: stuck", "STATUS=unhealthy: disk: full", recovered}},
		{"a check that does not answer in time fails", false, 20 * time.Millisecond,
			[]func(context.Context) error{hangs, hangs},
			[]string{ready, "STATUS=unhealthy: health check did not answer within 20ms", recovered, Watchdog}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sock, conn := listen(t, tc.abstract)
			check, calls := scripted(tc.script...)
			stop := serve(t, Config{Socket: sock, Watchdog: 20 * time.Millisecond, CheckTimeout: tc.checkTimeout,
				Status: "test service"}, check)
			var got []string
			for range tc.want {
				got = append(got, recv(t, conn))
			}
			if !slices.Equal(got, tc.want) {
				t.Fatalf("notifications\n%q\nwant\n%q", got, tc.want)
			}
			if n := int(calls.Load()); n < len(tc.script) {
				t.Errorf("check ran %d times, want at least %d", n, len(tc.script))
			}
			if err := stop(); err != nil {
				t.Fatalf("Serve: %v", err)
			}
			// Pings sent before the context ended may still be queued.
			for {
				m := recv(t, conn)
				if m == Stopping {
					break
				}
				if m != Watchdog {
					t.Fatalf("after the script: %q, want only pings then %q", m, Stopping)
				}
			}
		})
	}
}

// TestServeStuckCheck: a check that ignores its context is not started
// again while it runs, and no ping is sent until it has returned.
func TestServeStuckCheck(t *testing.T) {
	sock, conn := listen(t, false)
	release := make(chan struct{})
	var calls atomic.Int32
	check := func(ctx context.Context) error {
		if calls.Add(1) == 1 {
			<-release // ignores ctx
		}
		return nil
	}
	stop := serve(t, Config{Socket: sock, Watchdog: 20 * time.Millisecond, CheckTimeout: 5 * time.Millisecond}, check)
	want := []string{
		"READY=1\nSTATUS=running",
		"STATUS=unhealthy: health check did not answer within 5ms",
		"STATUS=unhealthy: the health check started earlier has not returned (more than 5ms)",
	}
	for _, w := range want {
		if got := recv(t, conn); got != w {
			t.Fatalf("notification %q, want %q", got, w)
		}
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("the check was started %d times while the first still ran", n)
	}
	close(release)
	if got := recv(t, conn); got != "WATCHDOG=1\nSTATUS=running" {
		t.Errorf("after the stuck check returned: %q, want a ping", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// TestServeWithoutWatchdog: READY=1 and STOPPING=1 only; the check never
// runs.
func TestServeWithoutWatchdog(t *testing.T) {
	sock, conn := listen(t, false)
	check, calls := scripted()
	stop := serve(t, Config{Socket: sock, Status: "up"}, check)
	if got := recv(t, conn); got != "READY=1\nSTATUS=up" {
		t.Fatalf("first notification %q", got)
	}
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if got := recv(t, conn); got != Stopping {
		t.Fatalf("last notification %q, want %q", got, Stopping)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("check ran %d times without a watchdog", n)
	}
}

// TestServeWithoutSocket: outside systemd Serve only waits for ctx.
func TestServeWithoutSocket(t *testing.T) {
	check, calls := scripted()
	stop := serve(t, Config{Watchdog: time.Millisecond}, check)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	if n := calls.Load(); n != 0 {
		t.Errorf("check ran %d times without a notification socket", n)
	}
}

// TestServeUnreachableSocket: READY=1 that cannot be sent is an error, so
// the service does not run on unseen by the systemd that waits for it.
func TestServeUnreachableSocket(t *testing.T) {
	check, _ := scripted()
	err := Serve(context.Background(), Config{Socket: filepath.Join(t.TempDir(), "nobody.sock")},
		slog.New(slog.DiscardHandler), check)
	if err == nil || !strings.Contains(err.Error(), "sdnotify") {
		t.Fatalf("Serve with a socket nobody listens on: %v, want an error", err)
	}
}

func TestFromEnv(t *testing.T) {
	const pid = 4242
	tests := []struct {
		name    string
		env     map[string]string
		want    Config
		wantErr string
	}{
		{"not under systemd", nil, Config{}, ""},
		{"notify only", map[string]string{"NOTIFY_SOCKET": "/run/systemd/notify"}, Config{Socket: "/run/systemd/notify"}, ""},
		{"watchdog", map[string]string{"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "30000000"},
			Config{Socket: "@sd", Watchdog: 30 * time.Second}, ""},
		{"watchdog for this process", map[string]string{"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "4242"},
			Config{Socket: "@sd", Watchdog: 30 * time.Second}, ""},
		{"watchdog of another process", map[string]string{"NOTIFY_SOCKET": "@sd", "WATCHDOG_USEC": "30000000", "WATCHDOG_PID": "1"},
			Config{Socket: "@sd"}, ""},
		{"bad usec", map[string]string{"WATCHDOG_USEC": "30s"}, Config{}, "WATCHDOG_USEC"},
		{"zero usec", map[string]string{"WATCHDOG_USEC": "0"}, Config{}, "WATCHDOG_USEC"},
		{"bad pid", map[string]string{"WATCHDOG_USEC": "1000", "WATCHDOG_PID": "me"}, Config{}, "WATCHDOG_PID"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromEnv(func(k string) string { return tc.env[k] }, pid)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("FromEnv = %+v, %v; want an error naming %s", got, err, tc.wantErr)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("FromEnv = %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}
