package vm

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// describe summarises what decoder.next returned, for comparing.
func describe(m *message, err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "EOF"
	case errors.Is(err, ErrMessageTooLarge):
		return "too large"
	case errors.Is(err, ErrBadMessage):
		return "malformed"
	case err != nil:
		return "error " + err.Error()
	}
	var s string
	switch {
	case m.Greeting != nil:
		s = "greeting"
	case m.Return != nil:
		s = "return " + string(m.Return)
	case m.Error != nil:
		s = "error " + m.Error.Class
	default:
		s = "event " + m.Event
	}
	if m.ID != nil {
		s += " id=" + string(m.ID)
	}
	if m.delimited {
		s = "delimited " + s
	}
	return s
}

func TestDecoder(t *testing.T) {
	long := `{"return": "` + strings.Repeat("x", 200<<10) + `"}` + "\n"
	cases := []struct {
		name string
		in   string
		max  int
		want []string
	}{
		{"qmp session", `{"QMP": {"version": {"qemu": {"micro": 22, "minor": 2, "major": 7}}, "capabilities": ["oob"]}}` + "\r\n" +
			`{"return": {}, "id": "qmp-1"}` + "\r\n" +
			`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "RESET", "data": {"guest": false}}` + "\r\n" +
			`{"id": "qmp-2", "error": {"class": "GenericError", "desc": "no"}}` + "\r\n",
			0, []string{"greeting", `return {} id="qmp-1"`, "event RESET", `error GenericError id="qmp-2"`, "EOF"}},
		{"blank lines", "\n\r\n  \n{\"return\": 1}\n\n", 0, []string{"return 1", "EOF"}},
		{"pretty printed is not one a line", "{\n\"return\": {}\n}\n", 0, []string{"malformed", "malformed", "malformed", "EOF"}},
		{"not json, then json", "hello\n{\"return\": 2}\n", 0, []string{"malformed", "return 2", "EOF"}},
		{"array", "[1, 2]\n", 0, []string{"malformed", "EOF"}},
		{"two kinds", `{"return": 1, "event": "X"}` + "\n", 0, []string{"malformed", "EOF"}},
		{"no kind", `{"id": 1}` + "\n", 0, []string{"malformed", "EOF"}},
		{"empty event name", `{"event": ""}` + "\n", 0, []string{"malformed", "EOF"}},
		{"wrong type", `{"event": 5}` + "\n", 0, []string{"malformed", "EOF"}},
		{"null return", `{"return": null}` + "\n", 0, []string{"return null", "EOF"}},
		{"too large, then fine", `{"return": "` + strings.Repeat("y", 100) + `"}` + "\n{\"return\": 3}\n", 64, []string{"too large", "return 3", "EOF"}},
		{"too large past the read buffer", long + "{\"return\": 4}\n", 100 << 10, []string{"too large", "return 4", "EOF"}},
		{"exactly the limit", `{"return": 5}` + "\n", 14, []string{"return 5", "EOF"}},
		{"one over the limit", `{"return": 5}` + "\n", 13, []string{"too large", "EOF"}},
		{"agent delimiter", "\xff{\"return\": 7}\n", 0, []string{"delimited return 7", "EOF"}},
		{"junk before the delimiter", "{\"ret\xff{\"return\": 8}\n", 0, []string{"delimited return 8", "EOF"}},
		{"delimiter alone", "\xff\n", 0, []string{"EOF"}},
		{"partial line at the end", `{"return": {}`, 0, []string{"EOF"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			max := c.max
			if max == 0 {
				max = maxQMPMessage
			}
			d := newDecoder(strings.NewReader(c.in), max)
			var got []string
			for len(got) < len(c.want)+3 {
				got = append(got, describe(d.next()))
				if got[len(got)-1] == "EOF" {
					break
				}
			}
			if strings.Join(got, "\n") != strings.Join(c.want, "\n") {
				t.Errorf("got\n\t%s\nwant\n\t%s", strings.Join(got, "\n\t"), strings.Join(c.want, "\n\t"))
			}
		})
	}
}

// FuzzQMP feeds the decoder arbitrary bytes: it must not panic, must make
// progress, must only return messages of exactly one kind, and must fail
// only with its own errors until the input ends.
func FuzzQMP(f *testing.F) {
	for _, s := range []string{
		`{"QMP": {"version": {}, "capabilities": []}}` + "\r\n",
		`{"return": {}, "id": "qmp-1"}` + "\n",
		`{"timestamp": {"seconds": 1, "microseconds": 2}, "event": "STOP"}` + "\n",
		`{"error": {"class": "GenericError", "desc": "x"}}` + "\n",
		"\xff{\"return\": 12345}\n",
		"{\"ret\xff\xff{\"return\": [1, 2, {\"a\": null}]}\n\n\n",
		strings.Repeat("{", 600) + "\n{\"return\": 1}\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		// A limit of 512 bytes reaches every path with small inputs;
		// larger ones only make each run (and the minimising of an
		// interesting input) slower.
		const max = 512
		if len(data) > 4*max {
			return
		}
		d := newDecoder(bytes.NewReader(data), max)
		lines := bytes.Count(data, []byte("\n"))
		for i := 0; ; i++ {
			if i > lines+1 {
				t.Fatalf("%d messages from %d lines", i, lines)
			}
			m, err := d.next()
			switch {
			case errors.Is(err, io.EOF):
				return
			case errors.Is(err, ErrBadMessage) || errors.Is(err, ErrMessageTooLarge):
				continue
			case err != nil:
				t.Fatalf("next: unexpected error %v", err)
			}
			if n := m.kinds(); n != 1 {
				t.Fatalf("message of %d kinds: %+v", n, m)
			}
			if m.Return != nil && !json.Valid(m.Return) {
				t.Fatalf("return value is not JSON: %q", m.Return)
			}
		}
	})
}

// fakeQMP serves a client's connection: it sends greeting lines, then for
// every request line calls answer and writes the lines it returns; the
// line CLOSE hangs up.
func fakeQMP(t *testing.T, conn net.Conn, greeting string, answer func(req request) []string) {
	t.Helper()
	go func() {
		defer conn.Close()
		w := bufio.NewWriter(conn)
		if greeting != "" {
			w.WriteString(greeting + "\n")
			if w.Flush() != nil {
				return
			}
		}
		sc := bufio.NewScanner(conn)
		for sc.Scan() {
			var req request
			if err := json.Unmarshal(bytes.TrimLeft(sc.Bytes(), "\xff"), &req); err != nil {
				w.WriteString(`{"error": {"class": "GenericError", "desc": "JSON parse error"}}` + "\n")
			} else {
				for _, line := range answer(req) {
					if line == "CLOSE" {
						w.Flush()
						return
					}
					w.WriteString(line + "\n")
				}
			}
			if w.Flush() != nil {
				return
			}
		}
	}()
}

func newTestClient(t *testing.T, greeting string, answer func(req request) []string) *client {
	t.Helper()
	a, b := net.Pipe()
	fakeQMP(t, b, greeting, answer)
	c := newClient("qmp", a, maxQMPMessage, newEventLog(), testLogger(t))
	t.Cleanup(func() { c.close() })
	return c
}

func TestClient(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := newTestClient(t, `{"QMP": {"version": {}, "capabilities": []}}`, func(req request) []string {
		id, _ := json.Marshal(req.ID)
		switch req.Execute {
		case "query-status":
			// A late reply to another command and an event come first.
			return []string{
				`{"return": {"status": "paused"}, "id": "qmp-0"}`,
				`{"event": "RESET", "data": {"guest": true}, "timestamp": {"seconds": 1700000000, "microseconds": 5}}`,
				`{"return": {"status": "running", "running": true}, "id": ` + string(id) + `}`,
			}
		case "bad":
			return []string{`{"error": {"class": "CommandNotFound", "desc": "The command bad has not been found"}, "id": ` + string(id) + `}`}
		case "garbled":
			return []string{`{"return": `}
		case "silent":
			return nil
		case "quit":
			return []string{`{"return": {}, "id": ` + string(id) + `}`, `{"event": "SHUTDOWN"}`, "CLOSE"}
		}
		return []string{`{"return": {}, "id": ` + string(id) + `}`}
	})
	if err := c.greeting(ctx); err != nil {
		t.Fatalf("greeting: %v", err)
	}
	if err := c.call(ctx, "qmp_capabilities", nil, nil); err != nil {
		t.Fatalf("qmp_capabilities: %v", err)
	}

	var st struct {
		Status string `json:"status"`
	}
	if err := c.call(ctx, "query-status", nil, &st); err != nil || st.Status != "running" {
		t.Errorf("query-status = %+v, %v; want running (not the late reply)", st, err)
	}
	e, err := c.events.take(ctx, "RESET", c.done)
	if err != nil || string(e.Data) != `{"guest": true}` || e.Time.Unix() != 1700000000 {
		t.Errorf("RESET event = %+v, %v", e, err)
	}

	var ce *CommandError
	if err := c.call(ctx, "bad", nil, nil); !errors.As(err, &ce) || ce.Class != "CommandNotFound" || ce.Command != "bad" {
		t.Errorf("bad command: %v; want a CommandError of class CommandNotFound", err)
	}

	if err := c.call(ctx, "garbled", nil, nil); !errors.Is(err, ErrBadMessage) {
		t.Errorf("garbled reply: %v; want ErrBadMessage", err)
	}

	sctx, scancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer scancel()
	if err := c.call(sctx, "silent", nil, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("unanswered command: %v; want a deadline error", err)
	}
	if err := c.call(ctx, "query-status", nil, &st); err != nil || st.Status != "running" {
		t.Errorf("query-status after a timeout = %+v, %v", st, err)
	}

	// The server answers, emits an event and hangs up.
	if err := c.call(ctx, "quit", nil, nil); err != nil {
		t.Errorf("quit: %v", err)
	}
	if _, err := c.events.take(ctx, "SHUTDOWN", c.done); err != nil {
		t.Errorf("SHUTDOWN event: %v", err)
	}
	<-c.done
	if err := c.call(ctx, "query-status", nil, nil); !errors.Is(err, ErrClosed) {
		t.Errorf("command after hang-up: %v; want ErrClosed", err)
	}
	if _, err := c.events.take(ctx, "NEVER", c.done); !errors.Is(err, ErrClosed) {
		t.Errorf("waiting for an event after hang-up: %v; want ErrClosed", err)
	}
}

// TestClientWriteDeadline: a peer that stops reading (a guest agent that
// is not running) cannot block a command past its context.
func TestClientWriteDeadline(t *testing.T) {
	a, b := net.Pipe() // synchronous: a write blocks until b reads
	defer b.Close()
	c := newClient("guest agent", a, maxAgentMessage, nil, testLogger(t))
	defer c.close()
	for range 2 {
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		err := c.call(ctx, "guest-ping", nil, nil)
		cancel()
		if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrClosed) {
			t.Fatalf("call to a peer that does not read: %v; want a deadline error", err)
		}
	}
}

func TestEventLogOrder(t *testing.T) {
	l := newEventLog()
	for i := range 3 {
		l.add(Event{Name: "RESET", Data: json.RawMessage(fmt.Sprint(i))})
		l.add(Event{Name: "OTHER"})
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	for i := range 3 {
		e, err := l.take(ctx, "RESET", nil)
		if err != nil || string(e.Data) != fmt.Sprint(i) {
			t.Fatalf("take %d = %+v, %v", i, e, err)
		}
	}
	// A waiter wakes up for an event added later.
	got := make(chan error, 1)
	go func() {
		_, err := l.take(ctx, "WATCHDOG", nil)
		got <- err
	}()
	l.add(Event{Name: "WATCHDOG"})
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	short, cancel2 := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel2()
	if _, err := l.take(short, "RESET", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("take with none left: %v; want a deadline error", err)
	}
}
