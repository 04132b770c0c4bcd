package vm

import (
	"context"
	"errors"
	"io"
	"regexp"
	"strings"
	"testing"
	"time"
)

// feedConsole returns a console fed by the returned writer, as the serial
// port feeds one, and the log it copies to.
func feedConsole(t *testing.T, limit int) (*console, *io.PipeWriter, *strings.Builder) {
	t.Helper()
	c := newConsole()
	if limit > 0 {
		c.limit = limit
	}
	r, w := io.Pipe()
	var log strings.Builder
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.copy(r, &log, testLogger(t))
	}()
	t.Cleanup(func() {
		w.Close()
		<-done
	})
	return c, w, &log
}

func TestConsoleWait(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, w, _ := feedConsole(t, 0)

	// A match split across writes, written after the wait began. The
	// pattern ends with the line end: the output is matched as it grows,
	// and `login: \w+` could match "login: ro".
	got := make(chan string, 1)
	go func() {
		m, _, err := c.wait(ctx, 0, regexp.MustCompile(`login: \w+\r\n`))
		if err != nil {
			m = err.Error()
		}
		got <- m
	}()
	for _, s := range []string{"Debian GNU/Linux 12 kiosk ttyS0\r\n\r\nkiosk lo", "gin: ro", "ot\r\n"} {
		write(t, w, s)
	}
	if m := <-got; m != "login: root\r\n" {
		t.Fatalf("wait = %q; want %q", m, "login: root\r\n")
	}

	// From a position: an earlier match does not count.
	write(t, w, "step 1\nstep 2\n")
	m, end, err := c.wait(ctx, 0, regexp.MustCompile(`step \d`))
	if err != nil || m != "step 1" {
		t.Fatalf("wait from 0 = %q, %v", m, err)
	}
	m, end2, err := c.wait(ctx, end, regexp.MustCompile(`step \d`))
	if err != nil || m != "step 2" || end2 <= end || end2 != c.pos()-1 {
		t.Fatalf("wait from %d = %q, %d, %v (pos %d)", end, m, end2, err, c.pos())
	}

	// When ctx ends the error shows the console's end, readable.
	write(t, w, "\x1b[2J\x1b[01;01HBdsDxe: starting Boot0002\r\n\x1b[1m\x1b[33mShell\x1b[0m> ")
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	_, _, err = c.wait(short, c.pos(), regexp.MustCompile(`never`))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("wait for what never comes: %v; want a deadline error", err)
	}
	if msg := err.Error(); !strings.Contains(msg, "BdsDxe: starting Boot0002\nShell> ") || strings.ContainsAny(msg, "\x1b\r") {
		t.Fatalf("error does not end with the readable console: %q", msg)
	}

	// When the output ends the wait fails at once.
	w.Close()
	if _, _, err := c.wait(ctx, 0, regexp.MustCompile(`never`)); err == nil || !strings.Contains(err.Error(), "it ended") {
		t.Fatalf("wait after the end: %v", err)
	}
}

// TestConsoleLimit: old output is dropped beyond the limit, positions stay
// absolute, and the log keeps everything.
func TestConsoleLimit(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, w, log := feedConsole(t, 100)
	write(t, w, "first line\n")
	for range 20 {
		write(t, w, "0123456789")
	}
	write(t, w, "last line\n")
	m, end, err := c.wait(ctx, 0, regexp.MustCompile(`[a-z]+ line`))
	if err != nil || m != "last line" || end != c.pos()-1 {
		t.Fatalf("wait = %q, %d, %v; want the last line (the first is dropped)", m, end, err)
	}
	if c.pos() != int64(len("first line\n")+200+len("last line\n")) {
		t.Fatalf("pos = %d", c.pos())
	}
	w.Close()
	if _, _, err := c.wait(ctx, 0, regexp.MustCompile(`never`)); err == nil {
		t.Fatal("no error after the end")
	}
	if !strings.HasPrefix(log.String(), "first line\n") || !strings.HasSuffix(log.String(), "last line\n") {
		t.Fatalf("log lost output: %q", log.String())
	}
}

func write(t *testing.T, w io.Writer, s string) {
	t.Helper()
	if _, err := io.WriteString(w, s); err != nil {
		t.Fatal(err)
	}
}
