package vm

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"regexp"
	"strings"
	"sync"
)

// Console sizes.
const (
	// maxConsole bounds the console output kept in memory; older output
	// is dropped (serial.log keeps all of it).
	maxConsole = 16 << 20
	// consoleTail is how much of the console an error shows.
	consoleTail = 3000
)

// console keeps what the guest writes to its serial port and wakes the
// waiters on every write.
type console struct {
	limit int // maxConsole; smaller in tests

	mu      sync.Mutex
	buf     []byte
	base    int64         // position of buf[0] in the whole output
	changed chan struct{} // closed and replaced on every write
	err     error         // why the output ended; nil while it goes on
}

func newConsole() *console {
	return &console{limit: maxConsole, changed: make(chan struct{})}
}

// copy reads the serial port until it ends, writing everything to log
// too.
func (c *console) copy(r io.Reader, log io.Writer, logger *slog.Logger) {
	b := make([]byte, 32<<10)
	logOK := true
	for {
		n, err := r.Read(b)
		if n > 0 {
			if logOK {
				if _, werr := log.Write(b[:n]); werr != nil {
					logger.Warn("vm: serial log", "err", werr)
					logOK = false
				}
			}
			c.append(b[:n])
		}
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF // the port never ends while QEMU runs
			}
			c.end(err)
			return
		}
	}
}

func (c *console) append(p []byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.buf = append(c.buf, p...)
	if len(c.buf) > c.limit {
		drop := len(c.buf) - c.limit/2
		c.buf = append(c.buf[:0], c.buf[drop:]...)
		c.base += int64(drop)
	}
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *console) end(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.err = err
	close(c.changed)
	c.changed = make(chan struct{})
}

// pos returns the length of the whole output so far.
func (c *console) pos() int64 {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.base + int64(len(c.buf))
}

// wait waits until the output from position from on matches re and
// returns the match and the position after it.
func (c *console) wait(ctx context.Context, from int64, re *regexp.Regexp) (string, int64, error) {
	for {
		c.mu.Lock()
		start := min(max(from-c.base, 0), int64(len(c.buf)))
		if loc := re.FindIndex(c.buf[start:]); loc != nil {
			m := string(c.buf[start+int64(loc[0]) : start+int64(loc[1])])
			end := c.base + start + int64(loc[1])
			c.mu.Unlock()
			return m, end, nil
		}
		changed, ended := c.changed, c.err
		tail := c.tailLocked()
		c.mu.Unlock()
		if ended != nil {
			return "", from, fmt.Errorf("vm: waiting for %q on the serial console: it ended (%w); it ends with:\n%s", re, ended, tail)
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", from, fmt.Errorf("vm: waiting for %q on the serial console: %w; it ends with:\n%s", re, context.Cause(ctx), tail)
		}
	}
}

// tailLocked returns the end of the output, readable: terminal escape
// sequences and carriage returns removed. c.mu must be held.
func (c *console) tailLocked() string {
	b := c.buf[max(len(c.buf)-consoleTail, 0):]
	return readable(string(b))
}

// escapeSeq matches the terminal control sequences OVMF and Linux write.
var escapeSeq = regexp.MustCompile(`\x1b(\[[0-9;=?]*[ -/]*[@-~]|[@-Z\\-_])`)

func readable(s string) string {
	s = escapeSeq.ReplaceAllString(s, "")
	s = strings.ReplaceAll(s, "\r\n", "\n")
	return strings.Map(func(r rune) rune {
		switch {
		case r == '\n' || r == '\t':
			return r
		case r < ' ' || r == 0x7f || r == 0xfffd:
			return -1
		}
		return r
	}, s)
}
