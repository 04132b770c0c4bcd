package agentclient

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

func TestEnrol(t *testing.T) {
	type override = map[string]struct {
		code int
		body string
	}
	tests := []struct {
		name       string
		enrolled   bool // the agent is enrolled already
		override   override
		code       string
		wantSent   string // the code the agent received, "" for no request
		wantStatus int    // expected StatusError code, 0 for success
		wantReason string
		wantErr    error
	}{
		{"enrolled", false, nil, testClaim, testClaim, 0, "", nil},
		{"groups normalised", false, nil, "1234 5678-9012", testClaim, 0, "", nil},
		{"refused by the hub", false, nil, "999999999999", "999999999999", http.StatusForbidden, "hub refused the claim code: unknown, used or expired", nil},
		{"already enrolled", true, nil, testClaim, testClaim, http.StatusConflict, "already enrolled as k-01", nil},
		{"hub unreachable", false, override{protocol.LocalPathEnrol: {http.StatusServiceUnavailable, `{"error":"hub unreachable: dial tcp 10.0.0.1:443: i/o timeout"}`}},
			testClaim, "", http.StatusServiceUnavailable, "hub unreachable: dial tcp 10.0.0.1:443: i/o timeout", nil},
		{"no hub configured", false, override{protocol.LocalPathEnrol: {http.StatusBadRequest, `{"error":"no hub configured: start the agent with -hub"}`}},
			testClaim, "", http.StatusBadRequest, "no hub configured: start the agent with -hub", nil},
		{"error without a body", false, override{protocol.LocalPathEnrol: {http.StatusBadGateway, ``}},
			testClaim, "", http.StatusBadGateway, "Bad Gateway", nil},
		{"short code not sent", false, nil, "12345678901", "", 0, "", protocol.ErrInvalid},
		{"letters not sent", false, nil, "12345678901x", "", 0, "", protocol.ErrInvalid},
		{"malformed reply", false, override{protocol.LocalPathEnrol: {http.StatusOK, `{"enrolled":true,"surprise":1}`}},
			testClaim, "", 0, "", ErrMalformed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := newFakeAgent(1)
			a.enrolled = tt.enrolled
			a.override = tt.override
			path := sockPath(t)
			serve(t, path, a)
			c := New(path)
			defer c.Close()

			st, err := c.Enrol(context.Background(), tt.code)
			switch {
			case tt.wantErr != nil:
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
			case tt.wantStatus != 0:
				var ae screen.AgentError
				if !errors.As(err, &ae) || ae.StatusCode() != tt.wantStatus || ae.Reason() != tt.wantReason {
					t.Fatalf("err = %v, want status %d with %q", err, tt.wantStatus, tt.wantReason)
				}
				if !strings.Contains(err.Error(), tt.wantReason) {
					t.Errorf("error text %q lacks the agent's reason", err)
				}
			default:
				if err != nil {
					t.Fatalf("err = %v", err)
				}
				if !st.Enrolled || st.Kiosk != "k-01" {
					t.Fatalf("status %+v, want enrolled as k-01", st)
				}
				if got, err := c.Status(context.Background()); err != nil || !got.Enrolled {
					t.Fatalf("status after enrolment %+v, %v", got, err)
				}
			}
			a.mu.Lock()
			sent := a.enrols
			a.mu.Unlock()
			if tt.wantSent == "" && len(sent) != 0 || tt.wantSent != "" && (len(sent) != 1 || sent[0] != tt.wantSent) {
				t.Errorf("agent received %q, want %q", sent, tt.wantSent)
			}
		})
	}
}

// TestSyncAllStatus checks that the status arrives before the content when
// the stream opens, and again after every EventStatus (here, enrolment).
func TestSyncAllStatus(t *testing.T) {
	path := sockPath(t)
	a := newFakeAgent(1)
	a.enrolled = false
	serve(t, path, a)
	c := New(path)
	defer c.Close()

	got := make(chan any, 16)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	log := slog.New(slog.NewTextHandler(testWriter{t}, nil))
	go func() {
		done <- SyncAll(ctx, c, Apply{
			Content: func(n protocol.LocalNotices) { got <- n },
			Status:  func(s protocol.AgentStatus) { got <- s },
		}, log)
	}()
	next := func() any {
		t.Helper()
		select {
		case v := <-got:
			return v
		case <-time.After(10 * time.Second):
			t.Fatal("nothing applied")
			return nil
		}
	}
	if st, ok := next().(protocol.AgentStatus); !ok || st.Enrolled {
		t.Fatalf("first applied %+v, want the status, not enrolled", st)
	}
	if n, ok := next().(protocol.LocalNotices); !ok || n.Version != 1 {
		t.Fatalf("second applied %+v, want notices v1", n)
	}
	waitFor(t, func() bool { return a.subscribers() == 1 })
	if _, err := c.Enrol(ctx, testClaim); err != nil {
		t.Fatal(err)
	}
	if st, ok := next().(protocol.AgentStatus); !ok || !st.Enrolled {
		t.Fatalf("after EventStatus applied %+v, want the status, enrolled", st)
	}
	a.setNotices(content(2))
	if n, ok := next().(protocol.LocalNotices); !ok || n.Version != 2 {
		t.Fatalf("after EventNotices applied %+v, want notices v2", n)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("SyncAll = %v", err)
	}
}

// TestSyncAllStatusOnly fetches no notices when Apply.Content is nil.
func TestSyncAllStatusOnly(t *testing.T) {
	path := sockPath(t)
	a := newFakeAgent(1)
	a.override = map[string]struct {
		code int
		body string
	}{protocol.LocalPathNotices: {500, `{"error":"must not be fetched"}`}}
	serve(t, path, a)
	got := make(chan protocol.AgentStatus, 4)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- SyncAll(ctx, New(path), Apply{Status: func(s protocol.AgentStatus) { got <- s }}, slog.New(slog.DiscardHandler))
	}()
	select {
	case st := <-got:
		if !st.Enrolled {
			t.Fatalf("status %+v", st)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("no status")
	}
	waitFor(t, func() bool { return a.subscribers() == 1 })
	a.setNotices(content(2)) // an EventNotices must not fetch
	a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
	select {
	case <-got:
	case <-time.After(10 * time.Second):
		t.Fatal("no status after EventStatus")
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("SyncAll = %v", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if n := a.hits[protocol.LocalPathNotices]; n != 0 {
		t.Errorf("notices fetched %d times with Apply.Content nil", n)
	}
	if n := a.hits[protocol.LocalPathEvents]; n != 1 {
		t.Errorf("event stream opened %d times, want 1 (no failure)", n)
	}
}
