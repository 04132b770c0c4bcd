package localapi_test

import (
	"bufio"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/protocol"
)

const kiosk = "k-sangcheng-01"

const wait = 10 * time.Second

var groups = []string{"shanghai", "huangpu", "wuliqiao", "sangcheng"}

// startAgent starts a real agent, enrolled with hub as kiosk, with its
// local API on a socket in a temp dir; brokerURL, if set, overrides the
// enrolled broker (e.g. to point nowhere).
func startAgent(t *testing.T, hub *hubtest.Hub, brokerURL string) (*agent.Agent, *http.Client, string) {
	t.Helper()
	dir := t.TempDir()
	hub.EnrolDir(t, dir, kiosk, groups...)
	return startAgentIn(t, dir, agent.Config{BrokerURL: brokerURL})
}

// startAgentIn starts an agent on dir (enrolled or not) with cfg.
func startAgentIn(t *testing.T, dir string, cfg agent.Config) (*agent.Agent, *http.Client, string) {
	t.Helper()
	sock := filepath.Join(dir, "agent.sock")
	cfg.DataDir, cfg.Socket = dir, sock
	cfg.ReconnectMin, cfg.ReconnectMax = 10*time.Millisecond, 100*time.Millisecond
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return a, unixClient(sock), sock
}

// newHub starts a broker and a fake hub.
func newHub(t *testing.T) (*hubtest.Broker, *hubtest.Hub) {
	t.Helper()
	b := hubtest.StartBroker(t)
	return b, hubtest.NewHub(t, b)
}

func unixClient(sock string) *http.Client {
	return &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
	}}
}

// nowhere is a broker address nothing listens on.
const nowhere = "ssl://127.0.0.1:1"

func do(t *testing.T, c *http.Client, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, "http://agent"+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		t.Errorf("%s %s: Content-Type %q", method, path, ct)
	}
	return resp.StatusCode, data
}

func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return v
}

func TestFeedbackOffline(t *testing.T) {
	_, hub := newHub(t)
	_, c, sock := startAgent(t, hub, nowhere)
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket mode %v, %v; want 0660", fi.Mode().Perm(), err)
	}
	good, err := os.ReadFile("../../protocol/testdata/feedback_request.json")
	if err != nil {
		t.Fatal(err)
	}
	code, body := do(t, c, http.MethodPost, protocol.LocalPathFeedback, string(good))
	if code != http.StatusCreated {
		t.Fatalf("POST feedback = %d %s, want 201", code, body)
	}
	rc := decode[protocol.FeedbackReceipt](t, body)
	if protocol.ValidTicket(rc.Ticket) != nil || rc.ID == "" || rc.SubmittedAt.IsZero() {
		t.Fatalf("receipt %+v", rc)
	}
	code, body = do(t, c, http.MethodGet, protocol.LocalPathStatus, "")
	st := decode[protocol.AgentStatus](t, body)
	if code != http.StatusOK || st.OutboxDepth != 1 || st.Connected || st.Kiosk != kiosk {
		t.Fatalf("status = %d %+v, want outbox_depth 1, disconnected", code, st)
	}
}

func TestErrors(t *testing.T) {
	_, hub := newHub(t)
	_, c, _ := startAgent(t, hub, nowhere)
	tests := []struct {
		name, method, path, body string
		code                     int
		mention                  string
	}{
		{"not JSON", "POST", protocol.LocalPathFeedback, "kind=help", 400, "malformed"},
		{"unknown field", "POST", protocol.LocalPathFeedback, `{"kind":"help","category":"other","where":{},"name":"x"}`, 400, "name"},
		{"bad kind", "POST", protocol.LocalPathFeedback, `{"kind":"praise","category":"other","where":{}}`, 400, "kind"},
		{"bad phone", "POST", protocol.LocalPathFeedback, `{"kind":"help","category":"other","where":{},"phone":"12ab5"}`, 400, "phone"},
		{"too large", "POST", protocol.LocalPathFeedback, `{"kind":"help","category":"other","where":{},"description":"` + strings.Repeat("x", 9000) + `"}`, 413, "larger"},
		{"wrong method", "GET", protocol.LocalPathFeedback, "", 405, "not allowed"},
		{"unknown path", "GET", "/v1/nothing", "", 404, "no such endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, c, tc.method, tc.path, tc.body)
			e := decode[protocol.ErrorResponse](t, body)
			if code != tc.code || !strings.Contains(e.Error, tc.mention) {
				t.Errorf("%s %s = %d %q, want %d mentioning %q", tc.method, tc.path, code, e.Error, tc.code, tc.mention)
			}
		})
	}
	_, body := do(t, c, http.MethodGet, protocol.LocalPathStatus, "")
	if st := decode[protocol.AgentStatus](t, body); st.OutboxDepth != 0 {
		t.Errorf("bad requests reached the outbox: depth %d", st.OutboxDepth)
	}
}

func desired(t *testing.T, version int64) protocol.DesiredState {
	t.Helper()
	data, err := os.ReadFile("../../protocol/testdata/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, err := protocol.DecodeDesired(data)
	if err != nil {
		t.Fatal(err)
	}
	doc.Version = version
	now := time.Now()
	base := doc.Notices[0]
	mk := func(id string, from, until time.Time) protocol.Notice {
		n := base
		n.ID, n.ValidFrom, n.ValidUntil = id, from, until
		return n
	}
	doc.Notices = []protocol.Notice{
		mk("expired", now.Add(-48*time.Hour), now.Add(-time.Hour)),
		mk("current", now.Add(-time.Hour), now.Add(time.Hour)),
		mk("open-ended", now.Add(-time.Hour), time.Time{}),
		mk("future", now.Add(time.Hour), now.Add(48*time.Hour)),
	}
	return doc
}

// sse reads events from GET /v1/events into a channel of data lines.
func sse(t *testing.T, c *http.Client) (<-chan string, *http.Response) {
	t.Helper()
	resp, err := c.Get("http://agent" + protocol.LocalPathEvents)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("events: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	lines := make(chan string, 100)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
			if data, ok := strings.CutPrefix(sc.Text(), "data: "); ok {
				lines <- data
			}
		}
	}()
	return lines, resp
}

func nextEvent(t *testing.T, lines <-chan string, typ string) protocol.LocalEvent {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case l, ok := <-lines:
			if !ok {
				t.Fatalf("event stream ended while waiting for %s", typ)
			}
			ev := decode[protocol.LocalEvent](t, []byte(l))
			if ev.Type == typ {
				return ev
			}
		case <-timeout:
			t.Fatalf("no %s event within %v", typ, wait)
		}
	}
}

func TestNoticesAndEvents(t *testing.T) {
	_, hub := newHub(t)
	a, c, _ := startAgent(t, hub, "")
	lines, _ := sse(t, c)
	hub.Presence(kiosk, wait)

	code, body := do(t, c, http.MethodGet, protocol.LocalPathNotices, "")
	if n := decode[protocol.LocalNotices](t, body); code != 200 || n.Version != 0 || len(n.Notices) != 0 {
		t.Fatalf("notices before any desired state = %d %+v", code, n)
	}

	hub.Desired(kiosk, desired(t, 21))
	if ev := nextEvent(t, lines, protocol.EventNotices); ev.Version != 21 {
		t.Fatalf("notices event version %d, want 21", ev.Version)
	}
	code, body = do(t, c, http.MethodGet, protocol.LocalPathNotices, "")
	n := decode[protocol.LocalNotices](t, body)
	var ids []string
	for _, x := range n.Notices {
		ids = append(ids, x.ID)
	}
	if code != 200 || n.Version != 21 || n.Kiosk != kiosk || n.Station.Name == "" || strings.Join(ids, ",") != "current,open-ended,future" {
		t.Fatalf("notices = %d v%d %v, want current,open-ended,future", code, n.Version, ids)
	}
	st := a.Status()
	if !st.Connected || st.ContentVersion != 21 || st.LastSync.IsZero() {
		t.Fatalf("status %+v", st)
	}

	// The stream ends when the agent shuts down.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	timeout := time.After(wait)
	for {
		select {
		case _, ok := <-lines:
			if !ok {
				return
			}
		case <-timeout:
			t.Fatal("event stream still open after Close")
		}
	}
}

func TestStaleSocket(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	ln.(*net.UnixListener).SetUnlinkOnClose(false)
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	a, err := agent.New(agent.Config{DataDir: dir, Socket: sock}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("Start with a stale socket: %v", err)
	}
	// A second agent on the same live socket is refused.
	b, err := agent.New(agent.Config{DataDir: t.TempDir(), Socket: sock}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Start(context.Background()); err == nil || !strings.Contains(err.Error(), "in use") {
		t.Errorf("second Start on a live socket = %v, want in-use error", err)
		if err == nil {
			b.Close()
		}
	}
	if code, _ := do(t, unixClient(sock), "GET", protocol.LocalPathStatus, ""); code != 200 {
		t.Errorf("status on first agent = %d", code)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}
