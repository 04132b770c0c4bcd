package agent_test

import (
	"context"
	"log/slog"
	"os"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/protocol"
)

const kiosk = "k-sangcheng-01"

const wait = 10 * time.Second

var groups = []string{"shanghai", "huangpu", "wuliqiao", "sangcheng"}

// nowhere is a broker address nothing listens on.
const nowhere = "ssl://127.0.0.1:1"

func newAgent(t *testing.T, cfg agent.Config) *agent.Agent {
	t.Helper()
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	cfg.ReconnectMin, cfg.ReconnectMax = 10*time.Millisecond, 100*time.Millisecond
	a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// enrolledDir returns a data directory enrolled with hub as kiosk.
func enrolledDir(t *testing.T, hub *hubtest.Hub) string {
	t.Helper()
	dir := t.TempDir()
	hub.EnrolDir(t, dir, kiosk, groups...)
	return dir
}

func start(t *testing.T, a *agent.Agent) {
	t.Helper()
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
}

func request(t *testing.T) protocol.FeedbackRequest {
	t.Helper()
	data, err := os.ReadFile("../protocol/testdata/feedback_request.json")
	if err != nil {
		t.Fatal(err)
	}
	req, err := protocol.DecodeFeedbackRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func TestNewValidates(t *testing.T) {
	tests := []struct {
		name string
		cfg  agent.Config
	}{
		{"no data dir", agent.Config{}},
		{"bad pin", agent.Config{DataDir: "x", CAPin: "abc"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := agent.New(tc.cfg, slog.New(slog.DiscardHandler)); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

// TestOfflineThenDelivered: feedback is accepted with no broker, survives a
// restart, and reaches the hub when the agent comes back with one.
func TestOfflineThenDelivered(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	a := newAgent(t, agent.Config{DataDir: dir, BrokerURL: nowhere})
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	rc, err := a.SubmitFeedback(request(t))
	if err != nil {
		t.Fatal(err)
	}
	if st := a.Status(); st.Connected || st.OutboxDepth != 1 || !st.Enrolled {
		t.Fatalf("offline status %+v", st)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := a.SubmitFeedback(request(t)); err == nil {
		t.Fatal("SubmitFeedback after Close succeeded")
	}

	a = newAgent(t, agent.Config{DataDir: dir})
	events, cancel := a.Subscribe()
	defer cancel()
	start(t, a)
	id, fb := hub.Feedback(kiosk, wait)
	if id != rc.ID || fb.Ticket != rc.Ticket {
		t.Fatalf("hub got %s %s, want %s %s", id, fb.Ticket, rc.ID, rc.Ticket)
	}
	hub.Ack(kiosk, id, protocol.AckStored, "")
	hubtest.Eventually(t, wait, "outbox empty and connected", func() bool {
		st := a.Status()
		return st.OutboxDepth == 0 && st.Connected
	})
	select {
	case ev := <-events:
		if ev.Type != protocol.EventStatus {
			t.Errorf("first event %+v, want status", ev)
		}
	case <-time.After(wait):
		t.Fatal("no status event")
	}
}

func TestDesiredReachesNotices(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	a := newAgent(t, agent.Config{DataDir: enrolledDir(t, hub)})
	start(t, a)
	data, err := os.ReadFile("../protocol/testdata/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, err := protocol.DecodeDesired(data)
	if err != nil {
		t.Fatal(err)
	}
	events, cancel := a.Subscribe()
	defer cancel()
	hub.Desired(kiosk, doc)
	if ev := nextNotices(t, events); ev.Version != doc.Version {
		t.Fatalf("notices event for version %d, want %d", ev.Version, doc.Version)
	}
	n, err := a.Notices()
	if err != nil {
		t.Fatal(err)
	}
	if n.Version != doc.Version || n.Station != doc.Station || len(n.Notices) != len(doc.Notices) {
		t.Fatalf("notices %+v", n)
	}
	// Another kiosk's document on our topic is ignored.
	other := doc
	other.Kiosk, other.Version = "k-other", doc.Version+1
	hub.Desired(kiosk, other)
	newer := doc
	newer.Version = doc.Version + 2
	newer.Notices = nil
	hub.Desired(kiosk, newer)
	if ev := nextNotices(t, events); ev.Version != newer.Version {
		t.Fatalf("notices event for version %d, want only %d", ev.Version, newer.Version)
	}
	if n, err := a.Notices(); err != nil || n.Version != newer.Version || len(n.Notices) != 0 {
		t.Fatalf("notices after update = %+v, %v", n, err)
	}
}

func TestSlowSubscriberNeverBlocks(t *testing.T) {
	hub := hubtest.NewHub(t, hubtest.StartBroker(t))
	a := newAgent(t, agent.Config{DataDir: enrolledDir(t, hub), BrokerURL: nowhere})
	start(t, a)
	events, cancel := a.Subscribe()
	const n = 40
	for range n {
		if _, err := a.SubmitFeedback(request(t)); err != nil {
			t.Fatal(err)
		}
	}
	var got []protocol.LocalEvent
	for len(events) > 0 {
		got = append(got, <-events)
	}
	if len(got) == 0 || len(got) >= n {
		t.Fatalf("slow subscriber holds %d events, want coalesced below %d", len(got), n)
	}
	hasNotices := false
	for _, ev := range got {
		hasNotices = hasNotices || ev.Type == protocol.EventNotices
	}
	if !hasNotices {
		t.Errorf("coalesced events %v lack a notices refetch hint", got)
	}
	cancel()
	cancel() // idempotent
	if _, ok := <-events; ok {
		t.Error("stream open after cancel")
	}
}

func nextNotices(t *testing.T, events <-chan protocol.LocalEvent) protocol.LocalEvent {
	t.Helper()
	timeout := time.After(wait)
	for {
		select {
		case ev, ok := <-events:
			if !ok {
				t.Fatal("event stream closed")
			}
			if ev.Type == protocol.EventNotices {
				return ev
			}
		case <-timeout:
			t.Fatal("no notices event")
		}
	}
}

// TestMediaHTTPNeedsTLS: the device's credentials go with every media
// request, so a plain http:// media URL is refused.
func TestMediaHTTPNeedsTLS(t *testing.T) {
	for _, u := range []string{"http://hub.example:8080", "hub.example:8443", "https://"} {
		if _, err := agent.New(agent.Config{DataDir: t.TempDir(), MediaHTTP: u}, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("New accepted media URL %q", u)
		}
	}
	if _, err := agent.New(agent.Config{DataDir: t.TempDir(), MediaHTTP: "https://hub.example:8443"}, slog.New(slog.DiscardHandler)); err != nil {
		t.Errorf("New refused an https media URL: %v", err)
	}
}
