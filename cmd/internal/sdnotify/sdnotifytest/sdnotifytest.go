// Package sdnotifytest reads, in tests, what a process sends to systemd's
// notify socket: the test listens on a unixgram socket, hands its path to
// the process as NOTIFY_SOCKET, and reads the notifications with Recv.
package sdnotifytest

import (
	"net"
	"testing"
	"time"
)

// Recv returns the next notification on conn, failing t if none arrives
// within d.
func Recv(t testing.TB, conn *net.UnixConn, d time.Duration) string {
	t.Helper()
	if err := conn.SetReadDeadline(time.Now().Add(d)); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4096)
	n, err := conn.Read(buf)
	if err != nil {
		t.Fatalf("no notification: %v", err)
	}
	return string(buf[:n])
}

// UntilStopping reads notifications until STOPPING=1, failing t on
// anything but watchdog pings before it.
func UntilStopping(t testing.TB, conn *net.UnixConn, d time.Duration) {
	t.Helper()
	for {
		switch got := Recv(t, conn, d); got {
		case "STOPPING=1":
			return
		case "WATCHDOG=1":
		default:
			t.Fatalf("notification %q while stopping", got)
		}
	}
}
