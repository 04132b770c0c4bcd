package hubtest

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"
)

// Logs is a slog handler that keeps every record, so tests can wait for
// and inspect what was logged. It also passes records to t.Logf.
type Logs struct {
	t     testing.TB
	mu    *sync.Mutex
	recs  *[]Record
	attrs []slog.Attr
}

// Record is one logged line: level, message and attributes rendered as
// "key=value".
type Record struct {
	Level slog.Level
	Msg   string
	Attrs map[string]string
}

// String renders a record for test messages.
func (r Record) String() string { return fmt.Sprintf("%s %q %v", r.Level, r.Msg, r.Attrs) }

// NewLogs returns an empty log recorder.
func NewLogs(t testing.TB) *Logs {
	return &Logs{t: t, mu: &sync.Mutex{}, recs: &[]Record{}}
}

// Logger returns a logger writing to l.
func (l *Logs) Logger() *slog.Logger { return slog.New(l) }

// Enabled implements slog.Handler: everything from debug up.
func (l *Logs) Enabled(context.Context, slog.Level) bool { return true }

// Handle implements slog.Handler.
func (l *Logs) Handle(_ context.Context, r slog.Record) error {
	rec := Record{Level: r.Level, Msg: r.Message, Attrs: map[string]string{}}
	for _, a := range l.attrs {
		rec.Attrs[a.Key] = a.Value.Resolve().String()
	}
	r.Attrs(func(a slog.Attr) bool {
		rec.Attrs[a.Key] = a.Value.Resolve().String()
		return true
	})
	l.mu.Lock()
	*l.recs = append(*l.recs, rec)
	l.mu.Unlock()
	return nil
}

// WithAttrs implements slog.Handler.
func (l *Logs) WithAttrs(as []slog.Attr) slog.Handler {
	c := *l
	c.attrs = append(append([]slog.Attr(nil), l.attrs...), as...)
	return &c
}

// WithGroup implements slog.Handler (groups are flattened).
func (l *Logs) WithGroup(string) slog.Handler { return l }

// Records returns the records whose message contains msg at level or above.
func (l *Logs) Records(level slog.Level, msg string) []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []Record
	for _, r := range *l.recs {
		if r.Level >= level && strings.Contains(r.Msg, msg) {
			out = append(out, r)
		}
	}
	return out
}

// All returns every record.
func (l *Logs) All() []Record {
	l.mu.Lock()
	defer l.mu.Unlock()
	return append([]Record(nil), *l.recs...)
}

// WaitFor waits until at least n records at level or above contain msg and
// returns them.
func (l *Logs) WaitFor(level slog.Level, msg string, n int, timeout time.Duration) []Record {
	l.t.Helper()
	var got []Record
	Eventually(l.t, timeout, fmt.Sprintf("%d log records %q at %s", n, msg, level), func() bool {
		got = l.Records(level, msg)
		return len(got) >= n
	})
	return got
}
