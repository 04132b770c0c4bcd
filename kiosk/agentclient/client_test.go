package agentclient

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

// testClaim is the claim code the fake agent's hub accepts.
const testClaim = "123456789012"

// fakeAgent is a hand-written stand-in for the agent's local API.
type fakeAgent struct {
	mu       sync.Mutex
	notices  protocol.LocalNotices
	feedback []protocol.FeedbackRequest
	subs     map[chan protocol.LocalEvent]bool
	// claim is the one claim code the fake hub accepts; enrolled is set
	// once it has been used. enrols lists the codes received.
	claim    string
	enrolled bool
	enrols   []string
	hits     map[string]int // requests by path
	plays    []protocol.PlayEvent
	broken   []protocol.MediaError
	// override, when set for a path, replaces the reply: status and raw body.
	override map[string]struct {
		code int
		body string
	}
}

func newFakeAgent(version int64) *fakeAgent {
	return &fakeAgent{
		notices:  content(version),
		subs:     map[chan protocol.LocalEvent]bool{},
		claim:    testClaim,
		enrolled: true,
	}
}

func content(version int64) protocol.LocalNotices {
	return protocol.LocalNotices{
		Kiosk: "k-01", Version: version,
		Station: protocol.Station{Name: "工作室", Community: "c1"},
		Notices: []protocol.Notice{{
			ID: fmt.Sprintf("n%d", version), Title: "通知", Category: protocol.NoticeEvent, Priority: protocol.PriorityNormal,
			ValidFrom: t0, Targets: []protocol.Target{{Level: protocol.LevelKiosk, ID: "k-01"}},
		}},
	}
}

func (a *fakeAgent) setNotices(n protocol.LocalNotices) {
	a.mu.Lock()
	a.notices = n
	a.mu.Unlock()
	a.broadcast(protocol.LocalEvent{Type: protocol.EventNotices, Version: n.Version})
}

func (a *fakeAgent) broadcast(ev protocol.LocalEvent) {
	a.mu.Lock()
	subs := make([]chan protocol.LocalEvent, 0, len(a.subs))
	for ch := range a.subs {
		subs = append(subs, ch)
	}
	a.mu.Unlock()
	for _, ch := range subs {
		ch <- ev
	}
}

func (a *fakeAgent) status() protocol.AgentStatus {
	a.mu.Lock()
	defer a.mu.Unlock()
	st := protocol.AgentStatus{Enrolled: a.enrolled, SoftwareVersion: "test", StartedAt: t0}
	if a.enrolled {
		st.Kiosk, st.Connected = "k-01", true
	}
	return st
}

// enrol is the fake POST /v1/enrol: the replies the agent specifies.
func (a *fakeAgent) enrol(w http.ResponseWriter, r *http.Request) {
	data, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxEnrolRequestSize+1))
	if err != nil {
		writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
		return
	}
	req, err := protocol.DecodeLocalEnrolRequest(data)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
		return
	}
	a.mu.Lock()
	a.enrols = append(a.enrols, req.ClaimCode)
	code, msg := http.StatusOK, ""
	switch {
	case a.enrolled:
		code, msg = http.StatusConflict, "already enrolled as k-01"
	case req.ClaimCode != a.claim:
		code, msg = http.StatusForbidden, "hub refused the claim code: unknown, used or expired"
	default:
		a.enrolled = true
	}
	a.mu.Unlock()
	if code != http.StatusOK {
		writeJSON(w, code, protocol.ErrorResponse{Error: msg})
		return
	}
	writeJSON(w, http.StatusOK, a.status())
	a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
}

func (a *fakeAgent) subscribers() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.subs)
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		panic(err)
	}
}

func (a *fakeAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a.mu.Lock()
	if a.hits == nil {
		a.hits = map[string]int{}
	}
	a.hits[r.URL.Path]++
	o, ok := a.override[r.URL.Path]
	a.mu.Unlock()
	if ok {
		w.WriteHeader(o.code)
		io.WriteString(w, o.body)
		return
	}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalPathNotices:
		a.mu.Lock()
		n := a.notices
		a.mu.Unlock()
		writeJSON(w, http.StatusOK, n)
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalPathStatus:
		writeJSON(w, http.StatusOK, a.status())
	case r.Method == http.MethodPost && r.URL.Path == protocol.LocalPathEnrol:
		a.enrol(w, r)
	case r.Method == http.MethodPost && r.URL.Path == protocol.LocalPathPlays:
		data, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxPlayEventSize+1))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		ev, err := protocol.DecodePlayEvent(data)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		a.mu.Lock()
		a.plays = append(a.plays, ev)
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && r.URL.Path == protocol.LocalPathMediaErrors:
		data, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxPlayEventSize+1))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		e, err := protocol.DecodeMediaError(data)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		a.mu.Lock()
		a.broken = append(a.broken, e)
		a.mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	case r.Method == http.MethodPost && r.URL.Path == protocol.LocalPathFeedback:
		data, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxFeedbackRequestSize+1))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		req, err := protocol.DecodeFeedbackRequest(data)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		a.mu.Lock()
		a.feedback = append(a.feedback, req)
		n := len(a.feedback)
		a.mu.Unlock()
		writeJSON(w, http.StatusCreated, protocol.FeedbackReceipt{ID: protocol.NewID(), Ticket: fmt.Sprintf("T-%d", n), SubmittedAt: t0})
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalPathEvents:
		ch := make(chan protocol.LocalEvent, 16)
		a.mu.Lock()
		a.subs[ch] = true
		a.mu.Unlock()
		defer func() {
			a.mu.Lock()
			delete(a.subs, ch)
			a.mu.Unlock()
		}()
		w.Header().Set("Content-Type", "text/event-stream")
		w.WriteHeader(http.StatusOK)
		io.WriteString(w, ": hello\n\n")
		w.(http.Flusher).Flush()
		for {
			select {
			case <-r.Context().Done():
				return
			case ev := <-ch:
				b, err := json.Marshal(ev)
				if err != nil {
					panic(err)
				}
				fmt.Fprintf(w, "data: %s\n\n", b)
				w.(http.Flusher).Flush()
			}
		}
	default:
		writeJSON(w, http.StatusNotFound, protocol.ErrorResponse{Error: "no such path"})
	}
}

// serve starts h on a real Unix socket at path and stops it at test end.
func serve(t *testing.T, path string, h http.Handler) *httptest.Server {
	t.Helper()
	l, err := net.Listen("unix", path)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	srv := httptest.NewUnstartedServer(h)
	srv.Listener = l
	srv.Start()
	t.Cleanup(func() { stop(srv) })
	return srv
}

// stop closes a server, cutting open event streams first. Closing twice is fine.
func stop(srv *httptest.Server) {
	srv.CloseClientConnections()
	srv.Close()
}

func sockPath(t *testing.T) string {
	return filepath.Join(t.TempDir(), "a.sock")
}

func TestClient(t *testing.T) {
	fb := protocol.FeedbackRequest{Kind: protocol.KindHelp, Category: protocol.CatOther, Phone: "12345"}
	tests := []struct {
		name     string
		override map[string]struct {
			code int
			body string
		}
		call    func(c *Client) (any, error)
		want    any
		wantErr error
		status  int // expected StatusError code, 0 for none
	}{
		{"notices", nil, func(c *Client) (any, error) { return c.Notices(context.Background()) }, content(2), nil, 0},
		{"status", nil, func(c *Client) (any, error) {
			s, err := c.Status(context.Background())
			return s.Kiosk, err
		}, "k-01", nil, 0},
		{"feedback", nil, func(c *Client) (any, error) {
			r, err := c.SubmitFeedback(context.Background(), fb)
			return r.Ticket, err
		}, "T-1", nil, 0},
		{"invalid feedback not sent", nil, func(c *Client) (any, error) {
			_, err := c.SubmitFeedback(context.Background(), protocol.FeedbackRequest{Kind: "x"})
			return nil, err
		}, nil, protocol.ErrInvalid, 0},
		{"error reply", map[string]struct {
			code int
			body string
		}{protocol.LocalPathFeedback: {503, `{"error":"outbox full"}`}}, func(c *Client) (any, error) {
			_, err := c.SubmitFeedback(context.Background(), fb)
			return nil, err
		}, nil, nil, 503},
		{"unknown field", map[string]struct {
			code int
			body string
		}{protocol.LocalPathStatus: {200, `{"kiosk":"k","surprise":1}`}}, func(c *Client) (any, error) {
			_, err := c.Status(context.Background())
			return nil, err
		}, nil, ErrMalformed, 0},
		{"trailing data", map[string]struct {
			code int
			body string
		}{protocol.LocalPathStatus: {200, `{"kiosk":"k"} {}`}}, func(c *Client) (any, error) {
			_, err := c.Status(context.Background())
			return nil, err
		}, nil, ErrMalformed, 0},
		{"too large", map[string]struct {
			code int
			body string
		}{protocol.LocalPathNotices: {200, `{"kiosk":"` + strings.Repeat("x", MaxResponseSize) + `"}`}}, func(c *Client) (any, error) {
			_, err := c.Notices(context.Background())
			return nil, err
		}, nil, ErrTooLarge, 0},
		{"bad ticket", map[string]struct {
			code int
			body string
		}{protocol.LocalPathFeedback: {201, `{"id":"x","ticket":"bad ticket","submitted_at":"2025-03-01T09:00:00Z"}`}}, func(c *Client) (any, error) {
			_, err := c.SubmitFeedback(context.Background(), fb)
			return nil, err
		}, nil, ErrMalformed, 0},
		{"wrong success status", map[string]struct {
			code int
			body string
		}{protocol.LocalPathFeedback: {200, `{}`}}, func(c *Client) (any, error) {
			_, err := c.SubmitFeedback(context.Background(), fb)
			return nil, err
		}, nil, nil, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAgent(2)
			a.override = tt.override
			path := sockPath(t)
			serve(t, path, a)
			c := New(path)
			defer c.Close()
			got, err := tt.call(c)
			var se *StatusError
			switch {
			case tt.status != 0:
				if !errors.As(err, &se) || se.Code != tt.status {
					t.Fatalf("err = %v, want status %d", err, tt.status)
				}
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if gj, wj := mustJSON(t, got), mustJSON(t, tt.want); gj != wj {
					t.Fatalf("got %s, want %s", gj, wj)
				}
			}
		})
	}
}

func TestStatusErrorMessage(t *testing.T) {
	path := sockPath(t)
	a := newFakeAgent(1)
	a.override = map[string]struct {
		code int
		body string
	}{protocol.LocalPathFeedback: {400, `{"error":"kind is required"}`}}
	serve(t, path, a)
	_, err := New(path).SubmitFeedback(context.Background(), protocol.FeedbackRequest{Kind: protocol.KindHelp, Category: protocol.CatOther})
	if err == nil || !strings.Contains(err.Error(), "kind is required") {
		t.Fatalf("err = %v, want the agent's message", err)
	}
}

func TestNoAgent(t *testing.T) {
	c := New(filepath.Join(t.TempDir(), "missing.sock"))
	if _, err := c.Notices(context.Background()); err == nil {
		t.Fatal("Notices without an agent succeeded")
	}
	if err := c.Events(context.Background(), func(protocol.LocalEvent) {}); err == nil {
		t.Fatal("Events without an agent succeeded")
	}
}

func TestEvents(t *testing.T) {
	path := sockPath(t)
	a := newFakeAgent(1)
	srv := serve(t, path, a)
	c := New(path)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	got := make(chan protocol.LocalEvent, 4)
	done := make(chan error, 1)
	go func() { done <- c.Events(ctx, func(ev protocol.LocalEvent) { got <- ev }) }()
	waitFor(t, func() bool { return a.subscribers() == 1 })
	for v := int64(2); v <= 3; v++ {
		a.setNotices(content(v))
		select {
		case ev := <-got:
			if ev.Type != protocol.EventNotices || ev.Version != v {
				t.Fatalf("event %+v, want notices v%d", ev, v)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("no event v%d", v)
		}
	}
	// The agent going away ends the stream with an error.
	stop(srv)
	select {
	case err := <-done:
		if err == nil || errors.Is(err, context.Canceled) {
			t.Fatalf("Events after agent stop = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events did not return when the agent stopped")
	}
}

func TestEventsCancel(t *testing.T) {
	path := sockPath(t)
	a := newFakeAgent(1)
	serve(t, path, a)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- New(path).Events(ctx, func(protocol.LocalEvent) {}) }()
	waitFor(t, func() bool { return a.subscribers() == 1 })
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Fatalf("Events after cancel = %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Events did not return on cancel")
	}
}

// waitFor polls cond until it holds or a deadline passes.
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met before the deadline")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestSync(t *testing.T) {
	path := sockPath(t)
	c := New(path)
	applied := make(chan protocol.LocalNotices, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	// Sync starts before the agent: it must keep retrying.
	go func() { done <- Sync(ctx, c, func(n protocol.LocalNotices) { applied <- n }, log) }()

	expect := func(version int64) {
		t.Helper()
		deadline := time.After(15 * time.Second)
		for {
			select {
			case n := <-applied:
				if n.Version == version {
					return
				}
				if n.Version > version {
					t.Fatalf("applied v%d, want v%d", n.Version, version)
				}
			case <-deadline:
				t.Fatalf("v%d never applied", version)
			}
		}
	}

	a := newFakeAgent(1)
	srv := serve(t, path, a)
	expect(1)
	waitFor(t, func() bool { return a.subscribers() == 1 })
	a.setNotices(content(2))
	expect(2)

	// The agent restarts with new content.
	stop(srv)
	if err := os.Remove(path); err != nil && !errors.Is(err, os.ErrNotExist) {
		t.Fatal(err)
	}
	b := newFakeAgent(3)
	serve(t, path, b)
	expect(3)
	waitFor(t, func() bool { return b.subscribers() == 1 })
	b.setNotices(content(4))
	expect(4)

	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Sync = %v, want nil on cancel", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Sync did not return on cancel")
	}
}

func TestSyncBadNoticesReconnects(t *testing.T) {
	path := sockPath(t)
	a := newFakeAgent(1)
	a.override = map[string]struct {
		code int
		body string
	}{protocol.LocalPathNotices: {500, `{"error":"db closed"}`}}
	serve(t, path, a)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var mu sync.Mutex
	var logs strings.Builder
	log := slog.New(slog.NewTextHandler(lockedWriter{&mu, &logs}, nil))
	done := make(chan error, 1)
	go func() {
		done <- Sync(ctx, New(path), func(protocol.LocalNotices) { t.Error("applied a failed fetch") }, log)
	}()
	waitFor(t, func() bool {
		mu.Lock()
		defer mu.Unlock()
		return strings.Contains(logs.String(), "db closed")
	})
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("Sync = %v", err)
	}
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

type lockedWriter struct {
	mu *sync.Mutex
	b  *strings.Builder
}

func (w lockedWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestPostPlay(t *testing.T) {
	video := protocol.PlayEvent{Kind: protocol.ItemVideo, Media: strings.Repeat("ab", 32), At: t0}
	tests := []struct {
		name     string
		ev       protocol.PlayEvent
		override *struct {
			code int
			body string
		}
		wantErr  bool
		wantSent bool
	}{
		{"video", video, nil, false, true},
		{"notice", protocol.PlayEvent{Kind: protocol.ItemNotice, Notice: "n-1", At: t0}, nil, false, true},
		{"invalid not sent", protocol.PlayEvent{Kind: protocol.ItemVideo, Media: "short", At: t0}, nil, true, false},
		{"agent refuses", video, &struct {
			code int
			body string
		}{http.StatusBadRequest, `{"error":"bad"}`}, true, false},
		{"body on 204", video, &struct {
			code int
			body string
		}{http.StatusOK, `{}`}, true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAgent(1)
			if tt.override != nil {
				a.override = map[string]struct {
					code int
					body string
				}{protocol.LocalPathPlays: *tt.override}
			}
			path := sockPath(t)
			serve(t, path, a)
			c := New(path)
			defer c.Close()
			err := c.PostPlay(context.Background(), tt.ev)
			if (err != nil) != tt.wantErr {
				t.Fatalf("PostPlay: %v, wantErr %v", err, tt.wantErr)
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if got := len(a.plays) == 1 && a.plays[0].At.Equal(tt.ev.At) && a.plays[0].Kind == tt.ev.Kind; got != tt.wantSent {
				t.Errorf("agent got %+v, want sent %v", a.plays, tt.wantSent)
			}
		})
	}
}

func TestPostMediaError(t *testing.T) {
	for _, tt := range []struct {
		name     string
		e        protocol.MediaError
		wantErr  bool
		wantSent bool
	}{
		{"held file", protocol.MediaError{SHA256: strings.Repeat("ab", 32), Reason: "ffmpeg: Invalid data", At: t0}, false, true},
		{"invalid not sent", protocol.MediaError{SHA256: "short", Reason: "x", At: t0}, true, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAgent(1)
			path := sockPath(t)
			serve(t, path, a)
			c := New(path)
			defer c.Close()
			if err := c.PostMediaError(context.Background(), tt.e); (err != nil) != tt.wantErr {
				t.Fatalf("PostMediaError: %v, wantErr %v", err, tt.wantErr)
			}
			a.mu.Lock()
			defer a.mu.Unlock()
			if got := len(a.broken) == 1 && a.broken[0].SHA256 == tt.e.SHA256; got != tt.wantSent {
				t.Errorf("agent got %+v, want sent %v", a.broken, tt.wantSent)
			}
		})
	}
}
