package link_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/agent/link"
	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

const kiosk = "k-sangcheng-01"

const wait = 10 * time.Second

// recorder is an Observer that remembers what it was told.
type recorder struct {
	mu      sync.Mutex
	applied []int64
	ups     []bool
	changes int
	boards  []int64
}

func (r *recorder) CasesApplied(b protocol.CaseBoard) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.boards = append(r.boards, b.Version)
}

func (r *recorder) boardVersions() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.boards...)
}

func (r *recorder) Connected(up bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.ups = append(r.ups, up)
}

func (r *recorder) DesiredApplied(doc protocol.DesiredState) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.applied = append(r.applied, doc.Version)
}

func (r *recorder) OutboxChanged() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.changes++
}

func (r *recorder) appliedVersions() []int64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]int64(nil), r.applied...)
}

// groups are the test kiosk's org-tree ancestors, root first.
var groups = []string{"shanghai", "huangpu", "wuliqiao", "sangcheng"}

type fixture struct {
	broker *hubtest.Broker
	hub    *hubtest.Hub
	st     *store.Store
	link   *link.Link
	obs    *recorder
	logs   *hubtest.Logs
	stop   func() // cancels Run and waits for it to return
}

// enrolled opens a store in dir holding an identity the fake hub issued.
func enrolled(t *testing.T, hub *hubtest.Hub, dir string) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := st.DeviceKey(); err != nil {
		t.Fatal(err)
	}
	if err := st.SaveIdentity(store.IdentityFrom(hub.Enrolment(kiosk, groups...), "", time.Now()), 0); err != nil {
		t.Fatal(err)
	}
	return st
}

func start(t *testing.T, cfg link.Config) *fixture {
	t.Helper()
	f := &fixture{broker: hubtest.StartBroker(t), obs: &recorder{}, logs: hubtest.NewLogs(t)}
	f.hub = hubtest.NewHub(t, f.broker)
	dir := t.TempDir()
	st := enrolled(t, f.hub, dir)
	f.st = st
	cfg.DataDir = dir
	if cfg.ReconnectMin == 0 {
		cfg.ReconnectMin = 10 * time.Millisecond
		cfg.ReconnectMax = 50 * time.Millisecond
	}
	var err error
	f.link, err = link.New(cfg, st, f.obs, f.logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- f.link.Run(ctx) }()
	var once sync.Once
	f.stop = func() {
		once.Do(func() {
			cancel()
			select {
			case err := <-done:
				if err != nil {
					t.Errorf("Run: %v", err)
				}
			case <-time.After(wait):
				t.Errorf("Run did not return after cancel")
			}
		})
	}
	t.Cleanup(func() {
		f.stop()
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return f
}

func (f *fixture) addFeedback(t *testing.T) string {
	t.Helper()
	rc, err := f.st.AddFeedback(kiosk, protocol.FeedbackRequest{Kind: protocol.KindHelp, Category: protocol.CatGreenSpace, Description: "绿化带被圈占"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.link.Wake()
	return rc.ID
}

func (f *fixture) depth(t *testing.T) int {
	t.Helper()
	d, err := f.st.OutboxDepth()
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func desired(t *testing.T, kiosk string, version int64) protocol.DesiredState {
	t.Helper()
	data, err := os.ReadFile("../../protocol/testdata/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, err := protocol.DecodeDesired(data)
	if err != nil {
		t.Fatal(err)
	}
	doc.Kiosk, doc.Version = kiosk, version
	return doc
}

func TestFeedbackReachesHubAndAckEmptiesOutbox(t *testing.T) {
	f := start(t, link.Config{})
	before := f.addFeedback(t) // queued before the first connect

	birth := f.hub.Presence(kiosk, wait)
	if birth.State != protocol.Online || birth.Epoch != f.link.Epoch() || birth.Epoch <= 0 {
		t.Fatalf("birth = %+v, link epoch %d", birth, f.link.Epoch())
	}
	after := f.addFeedback(t) // queued while connected

	for _, want := range []string{before, after} {
		id, fb := f.hub.Feedback(kiosk, wait)
		if id != want || fb.Kiosk != kiosk {
			t.Fatalf("feedback %s from %s, want %s", id, fb.Kiosk, want)
		}
		f.hub.Ack(kiosk, id, protocol.AckStored, "")
	}
	hubtest.Eventually(t, wait, "outbox empty after acks", func() bool { return f.depth(t) == 0 })

	m := f.hub.Next(kiosk, protocol.ChannelHeartbeat, wait)
	_, hb, err := protocol.DecodeHeartbeat(m.Payload)
	if err != nil {
		t.Fatal(err)
	}
	if hb.Epoch != birth.Epoch || hb.SoftwareVersion != "dev" || hb.FreeDiskBytes <= 0 {
		t.Errorf("heartbeat %+v", hb)
	}
}

func TestRejectedGoesToDeadLetters(t *testing.T) {
	f := start(t, link.Config{})
	id := f.addFeedback(t)
	got, _ := f.hub.Feedback(kiosk, wait)
	f.hub.Ack(kiosk, got, protocol.AckRejected, "kiosk not enrolled")
	hubtest.Eventually(t, wait, "record dead-lettered", func() bool { return f.depth(t) == 0 })
	dead, err := f.st.DeadLetters()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != id || dead[0].Reason != "kiosk not enrolled" {
		t.Fatalf("dead letters = %+v", dead)
	}
}

func TestResentAfterReconnectWithNewEpochAndWill(t *testing.T) {
	f := start(t, link.Config{ResendAfter: time.Hour})
	birth := f.hub.Presence(kiosk, wait)
	id := f.addFeedback(t)
	first := f.hub.Next(kiosk, protocol.ChannelFeedback, wait)

	if !f.broker.Kick(kiosk) {
		t.Fatal("agent was not connected")
	}
	will := f.hub.Presence(kiosk, wait)
	if will.State != protocol.Offline || will.Epoch != birth.Epoch {
		t.Fatalf("will = %+v, want offline with epoch %d", will, birth.Epoch)
	}
	rebirth := f.hub.Presence(kiosk, wait)
	if rebirth.State != protocol.Online || rebirth.Epoch <= birth.Epoch {
		t.Fatalf("birth after reconnect = %+v, want online with epoch > %d", rebirth, birth.Epoch)
	}
	again := f.hub.Next(kiosk, protocol.ChannelFeedback, wait)
	if !bytes.Equal(again.Payload, first.Payload) {
		t.Fatalf("record %s changed on resend:\n%s\n%s", id, first.Payload, again.Payload)
	}
	f.hub.Ack(kiosk, id, protocol.AckDuplicate, "")
	hubtest.Eventually(t, wait, "outbox empty after ack", func() bool { return f.depth(t) == 0 })

	f.stop()
	bye := f.hub.Presence(kiosk, wait)
	if bye.State != protocol.Offline || bye.Epoch != rebirth.Epoch {
		t.Fatalf("presence on shutdown = %+v, want offline with epoch %d", bye, rebirth.Epoch)
	}
}

func TestResentAfterTimeoutWhileConnected(t *testing.T) {
	f := start(t, link.Config{ResendAfter: 50 * time.Millisecond})
	f.hub.Presence(kiosk, wait)
	id := f.addFeedback(t)
	for range 3 {
		got, _ := f.hub.Feedback(kiosk, wait)
		if got != id {
			t.Fatalf("got %s, want %s", got, id)
		}
	}
	f.hub.Ack(kiosk, id, protocol.AckStored, "")
	hubtest.Eventually(t, wait, "outbox empty", func() bool { return f.depth(t) == 0 })
}

func TestInFlightBound(t *testing.T) {
	const maxInFlight, total = 8, 100
	f := start(t, link.Config{MaxInFlight: maxInFlight, ResendAfter: 30 * time.Millisecond})
	var ids []string
	for range total {
		ids = append(ids, f.addFeedback(t))
	}
	// Withhold acks: however long we watch, with resends going on, only
	// the first maxInFlight records may appear.
	seen := map[string]bool{}
	deadline := time.Now().Add(500 * time.Millisecond)
	for time.Now().Before(deadline) {
		m, ok := f.hub.TryNext(kiosk, protocol.ChannelFeedback, time.Until(deadline))
		if !ok {
			break
		}
		env, _, err := protocol.DecodeFeedback(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		seen[env.ID] = true
	}
	if len(seen) != maxInFlight {
		t.Fatalf("hub saw %d distinct records with acks withheld, want exactly %d", len(seen), maxInFlight)
	}
	for _, id := range ids[:maxInFlight] {
		if !seen[id] {
			t.Fatalf("record %s not among the first sent: not in key order", id)
		}
	}
	// Now ack everything as it arrives; the whole backlog drains.
	acked := map[string]bool{}
	for len(acked) < total {
		id, _ := f.hub.Feedback(kiosk, wait)
		if !acked[id] {
			acked[id] = true
			f.hub.Ack(kiosk, id, protocol.AckStored, "")
		}
	}
	hubtest.Eventually(t, wait, "outbox drained", func() bool { return f.depth(t) == 0 })
}

func TestDesired(t *testing.T) {
	f := start(t, link.Config{})
	f.hub.Presence(kiosk, wait)
	steps := []struct {
		name string
		doc  protocol.DesiredState
	}{
		{"first applied", desired(t, kiosk, 5)},
		{"older ignored", desired(t, kiosk, 3)},
		{"equal ignored", desired(t, kiosk, 5)},
		{"other kiosk ignored", desired(t, "k-other", 9)},
		{"newer applied", desired(t, kiosk, 6)},
	}
	for _, s := range steps {
		f.hub.Desired(kiosk, s.doc)
	}
	// The observer hears of a commit just after it: wait for it.
	hubtest.Eventually(t, wait, "version 6 applied and reported", func() bool {
		got := f.obs.appliedVersions()
		return len(got) > 0 && got[len(got)-1] == 6
	})
	// Documents that arrive together are coalesced (the newest wins), so 5
	// may be skipped; what is applied only ever goes up and ends at 6.
	if got := f.obs.appliedVersions(); !slices.Equal(got, []int64{5, 6}) && !slices.Equal(got, []int64{6}) {
		t.Fatalf("applied versions %v, want [5 6] or [6]", got)
	}

	// The retained document is applied again after a reconnect, but a
	// version not newer than held is not reported.
	f.broker.Kick(kiosk)
	f.hub.Presence(kiosk, wait) // will
	f.hub.Presence(kiosk, wait) // birth
	f.hub.Desired(kiosk, desired(t, kiosk, 7))
	hubtest.Eventually(t, wait, "version 7 applied and reported", func() bool {
		got := f.obs.appliedVersions()
		return len(got) > 0 && got[len(got)-1] == 7
	})
	if got := f.obs.appliedVersions(); !slices.Equal(got, []int64{5, 6, 7}) && !slices.Equal(got, []int64{6, 7}) {
		t.Fatalf("applied versions %v, want [5 6 7] or [6 7]: the retained 6 must not be reported again", got)
	}
}

func TestNewRefusesUnenrolled(t *testing.T) {
	st, err := store.Open(filepath.Join(t.TempDir(), "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := link.New(link.Config{}, st, &recorder{}, slog.New(slog.DiscardHandler)); !errors.Is(err, store.ErrNotEnrolled) {
		t.Fatalf("New before enrolment = %v, want ErrNotEnrolled", err)
	}
}

func TestTLSConfig(t *testing.T) {
	ca := hubtest.NewCA(t)
	tests := []struct {
		name    string
		url, ca string
		wantTLS bool
		wantErr bool
	}{
		{"ssl with CA", "ssl://127.0.0.1:8883", string(ca.PEM), true, false},
		{"mqtts with CA", "mqtts://hub.example:8883", string(ca.PEM), true, false},
		{"ssl without CA", "ssl://127.0.0.1:8883", "", false, true},
		{"ssl with garbage CA", "ssl://127.0.0.1:8883", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n", false, true},
		{"plain tcp", "tcp://127.0.0.1:1883", "", false, false},
		{"unknown scheme", "ws://127.0.0.1:80", string(ca.PEM), false, true},
		{"no host", "ssl://", string(ca.PEM), false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			c, err := link.TLSConfig(tc.url, tc.ca)
			if (err != nil) != tc.wantErr || (c != nil) != tc.wantTLS {
				t.Fatalf("TLSConfig = %v, %v", c, err)
			}
			if c != nil && (c.InsecureSkipVerify || c.RootCAs == nil || c.ServerName == "") {
				t.Fatalf("TLS config does not pin: %+v", c)
			}
		})
	}
}

func TestWrongCARefused(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if _, err := st.DeviceKey(); err != nil {
		t.Fatal(err)
	}
	r := hub.Enrolment(kiosk, groups...)
	r.CACert = string(hubtest.NewCA(t).PEM) // a CA that did not sign the broker's certificate
	if err := st.SaveIdentity(store.IdentityFrom(r, "", time.Now()), 0); err != nil {
		t.Fatal(err)
	}
	logs := hubtest.NewLogs(t)
	l, err := link.New(link.Config{DataDir: dir, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 20 * time.Millisecond}, st, &recorder{}, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- l.Run(ctx) }()
	recs := logs.WaitFor(slog.LevelWarn, "mqtt session ended", 2, wait)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(recs[0].Attrs["err"], "certificate") || l.Connected() || b.Connected(kiosk) {
		t.Fatalf("connected through a broker the pinned CA did not sign: %v", recs[0])
	}
}
