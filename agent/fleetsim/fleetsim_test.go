package fleetsim_test

import (
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

	"github.com/shequ/shequ/agent/fleetsim"
	"github.com/shequ/shequ/agent/fleetsim/load"
	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/protocol"
)

// waitFor bounds every wait of the small-fleet tests.
const waitFor = 60 * time.Second

var city = protocol.Target{Level: protocol.LevelCity, ID: "shanghai"}

// quiet logs warnings and errors only, through tb.Logf.
func quiet(tb testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tbWriter{tb}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type tbWriter struct{ tb testing.TB }

func (w tbWriter) Write(p []byte) (int, error) {
	w.tb.Helper()
	w.tb.Logf("%s", strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// fleetEnrolPerMinute is the hub's enrolment limit in the tests and
// benchmarks: a whole fleet enrols from one address within seconds.
const fleetEnrolPerMinute = 100000

// startHub starts a real hub (TLS broker on a free port with auth and ACLs,
// HTTPS API, SQLite in a temporary directory, signed downlink) with a
// generated org of n kiosks, allowing a fleet's enrolments, logging to log.
func startHub(tb testing.TB, n int, log *slog.Logger) *hub.Hub {
	tb.Helper()
	return startHubWith(tb, n, fleetEnrolPerMinute, log)
}

// startHubWith is startHub with the hub's enrolment limit; 0 is the hub's
// default.
func startHubWith(tb testing.TB, n, enrolPerMinute int, log *slog.Logger) *hub.Hub {
	tb.Helper()
	data, err := orgfile.Generate(n)
	if err != nil {
		tb.Fatal(err)
	}
	tree, err := orgtree.Parse(data)
	if err != nil {
		tb.Fatal(err)
	}
	h, err := hub.New(hub.Config{
		DataDir: tb.TempDir(), Org: tree, MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		EnrolPerMinute: enrolPerMinute,
	}, log)
	if err != nil {
		tb.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		tb.Fatalf("hub start: %v", err)
	}
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("hub close: %v", err)
		}
	})
	return h
}

// enrolWith sets what cfg needs to enrol its agents with h: the hub's URL,
// its CA pin and claim codes from the staff API through c.
func enrolWith(tb testing.TB, h *hub.Hub, c *load.Client, cfg fleetsim.Config) fleetsim.Config {
	tb.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	claim, err := c.Claimer(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	cfg.HubURL, cfg.CAPin, cfg.Claim = h.HTTPURL(), h.CAPin(), claim
	return cfg
}

// startFleet starts a fleet enrolled with h and waits until it is
// connected, synced and seen by the hub.
func startFleet(tb testing.TB, h *hub.Hub, c *load.Client, cfg fleetsim.Config) *fleetsim.Fleet {
	tb.Helper()
	cfg = enrolWith(tb, h, c, cfg)
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if cfg.Root == "" {
		cfg.Root = tb.TempDir()
	}
	fl, err := fleetsim.Start(ctx, cfg, quiet(tb))
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := fl.Close(); err != nil {
			tb.Errorf("fleet close: %v", err)
		}
	})
	if err := fl.WaitConnected(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := fl.WaitSynced(ctx); err != nil {
		tb.Fatal(err)
	}
	if err := load.WaitHubSees(ctx, c, cfg.KioskIDs); err != nil {
		tb.Fatal(err)
	}
	return fl
}

func newClient(tb testing.TB, h *hub.Hub) *load.Client {
	tb.Helper()
	c, err := load.NewClient(load.ClientConfig{HubURL: h.HTTPURL(), Token: h.AdminToken(), CAPin: h.CAPin()})
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(c.Close) // before the hub closes
	return c
}

func TestStartRejectsBadConfig(t *testing.T) {
	tests := []struct {
		name string
		cfg  fleetsim.Config
		want string
	}{
		{"no root", fleetsim.Config{KioskIDs: []string{"k-1"}}, "Root"},
		{"no kiosks", fleetsim.Config{Root: t.TempDir()}, "no kiosk ids"},
		{"kiosk twice", fleetsim.Config{Root: t.TempDir(), KioskIDs: []string{"k-1", "k-2", "k-1"}}, "twice"},
		{"invalid kiosk id", fleetsim.Config{Root: t.TempDir(), KioskIDs: []string{"K 1"}}, "kiosk id"},
		{"not enrolled, no hub", fleetsim.Config{Root: t.TempDir(), KioskIDs: []string{"k-1", "k-2"},
			Claim: func(context.Context, string) (string, error) { return "", errors.New("unused") }},
			"2 agents are not enrolled"},
		{"not enrolled, no claim codes", fleetsim.Config{Root: t.TempDir(), KioskIDs: []string{"k-1"},
			HubURL: "https://127.0.0.1:1"}, "1 agents are not enrolled"},
		{"claim code refused", fleetsim.Config{Root: t.TempDir(), KioskIDs: []string{"k-1"}, HubURL: "https://127.0.0.1:1",
			Claim: func(context.Context, string) (string, error) { return "", errors.New("401 Unauthorized") }},
			"claim code for k-1: 401 Unauthorized"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			fl, err := fleetsim.Start(context.Background(), tc.cfg, quiet(t))
			if err == nil {
				t.Cleanup(func() { fl.Close() })
				t.Fatal("Start succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Start = %v, want an error about %q", err, tc.want)
			}
		})
	}
}

// TestWaitConnectedReportsShortfall enrols agents with a real hub but
// points them at a port nobody listens on: they keep retrying, and the wait
// ends with the deadline and says how many are connected.
func TestWaitConnectedReportsShortfall(t *testing.T) {
	h := startHub(t, 4, quiet(t))
	ids := orgfile.KioskIDs(3)
	cfg := enrolWith(t, h, newClient(t, h), fleetsim.Config{
		Root: t.TempDir(), KioskIDs: ids, BrokerURL: "ssl://127.0.0.1:1",
		ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond,
	})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	fl, err := fleetsim.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := fl.Close(); err != nil {
			t.Error(err)
		}
	}()
	if got := fl.KioskIDs(); !slices.Equal(got, ids) || fl.Len() != 3 || fl.Enrolled() != 3 {
		t.Fatalf("KioskIDs = %v, Len = %d, Enrolled = %d", got, fl.Len(), fl.Enrolled())
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	err = fl.WaitConnected(short)
	if err == nil || !strings.Contains(err.Error(), "0 of 3 connected") {
		t.Fatalf("WaitConnected = %v, want a deadline error saying 0 of 3 connected", err)
	}
	// Records are durable offline; the outboxes cannot drain.
	rcs, err := fl.Submit(ctx, 2, 2)
	if err != nil || len(rcs) != 6 {
		t.Fatalf("Submit offline = %d receipts, %v; want 6", len(rcs), err)
	}
	short2, cancelShort2 := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort2()
	if err := fl.WaitDrained(short2); err == nil || !strings.Contains(err.Error(), "6 records left on 3 agents") {
		t.Fatalf("WaitDrained offline = %v, want 6 records left on 3 agents", err)
	}
}

// TestEnrolment checks how a fleet enrols: at most EnrolConcurrency at
// once, only agents not enrolled yet, each into its own kiosk's slot, and
// with a hint when the hub's rate limit refuses it.
func TestEnrolment(t *testing.T) {
	h := startHub(t, 12, quiet(t))
	c := newClient(t, h)
	root := t.TempDir()
	ids := orgfile.KioskIDs(10)

	// counting wraps cfg.Claim to count calls and the most running at once.
	type counter struct {
		mu            sync.Mutex
		calls, now, n int
	}
	counting := func(cfg fleetsim.Config, ct *counter) fleetsim.Config {
		claim := cfg.Claim
		cfg.Claim = func(ctx context.Context, kiosk string) (string, error) {
			ct.mu.Lock()
			ct.calls++
			ct.now++
			ct.n = max(ct.n, ct.now)
			ct.mu.Unlock()
			defer func() {
				ct.mu.Lock()
				ct.now--
				ct.mu.Unlock()
			}()
			return claim(ctx, kiosk)
		}
		return cfg
	}
	run := func(t *testing.T, cfg fleetsim.Config) (*fleetsim.Fleet, error) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), waitFor)
		defer cancel()
		fl, err := fleetsim.Start(ctx, cfg, quiet(t))
		if err != nil {
			return nil, err
		}
		if err := fl.WaitConnected(ctx); err != nil {
			return nil, errors.Join(err, fl.Close())
		}
		if err := load.WaitHubSees(ctx, c, cfg.KioskIDs); err != nil {
			return nil, errors.Join(err, fl.Close())
		}
		return fl, nil
	}

	// run waits until the hub sees every agent online with a heartbeat, so
	// the agents enrolled before connected with their stored credentials.
	t.Run("new data directories enrol, two at a time", func(t *testing.T) {
		var ct counter
		cfg := counting(enrolWith(t, h, c, fleetsim.Config{Root: root, KioskIDs: ids[:6], EnrolConcurrency: 2}), &ct)
		fl, err := run(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := fl.Close(); err != nil {
			t.Fatal(err)
		}
		if fl.Enrolled() != 6 || ct.calls != 6 || ct.n > 2 {
			t.Fatalf("enrolled %d with %d claim codes, %d at once; want 6, 6, at most 2", fl.Enrolled(), ct.calls, ct.n)
		}
	})

	t.Run("enrolled data directories are not enrolled again", func(t *testing.T) {
		var ct counter
		cfg := counting(enrolWith(t, h, c, fleetsim.Config{Root: root, KioskIDs: ids}), &ct)
		fl, err := run(t, cfg)
		if err != nil {
			t.Fatal(err)
		}
		if err := fl.Close(); err != nil {
			t.Fatal(err)
		}
		if fl.Enrolled() != 4 || ct.calls != 4 {
			t.Fatalf("enrolled %d with %d claim codes; want the 4 new ones", fl.Enrolled(), ct.calls)
		}
	})

	t.Run("a data directory enrolled as another kiosk is refused", func(t *testing.T) {
		if err := os.Rename(filepath.Join(root, ids[0]), filepath.Join(root, "k-0011")); err != nil {
			t.Fatal(err)
		}
		_, err := run(t, enrolWith(t, h, c, fleetsim.Config{Root: root, KioskIDs: []string{"k-0011"}}))
		if err == nil || !strings.Contains(err.Error(), "enrolled as kiosk "+ids[0]) {
			t.Fatalf("Start = %v, want an error about the data directory enrolled as %s", err, ids[0])
		}
	})

	t.Run("the hub's default rate limit stops a fleet with a hint", func(t *testing.T) {
		hl := startHubWith(t, 12, 0, slog.New(slog.DiscardHandler))
		cfg := enrolWith(t, hl, newClient(t, hl), fleetsim.Config{Root: t.TempDir(), KioskIDs: ids})
		_, err := run(t, cfg)
		if err == nil || !strings.Contains(err.Error(), "429") || !strings.Contains(err.Error(), "-enrol-per-minute") {
			t.Fatalf("Start = %v, want the hub's 429 with a hint about -enrol-per-minute", err)
		}
	})
}

// TestFleetAgainstHub runs 20 agents against a real hub with a 24-kiosk
// org: notices reach exactly the agents they target, records arrive once.
func TestFleetAgainstHub(t *testing.T) {
	const n = 20
	h := startHub(t, 24, quiet(t))
	c := newClient(t, h)
	ids := orgfile.KioskIDs(n)
	root := t.TempDir()
	fl := startFleet(t, h, c, fleetsim.Config{Root: root, KioskIDs: ids, MaxInFlight: 4})
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()

	var cityNotice string
	t.Run("notice to the city reaches every agent", func(t *testing.T) {
		t0 := time.Now()
		s, err := load.SendNotice(ctx, fl, c, city, "全市通知")
		if err != nil {
			t.Fatal(err)
		}
		if s.Fanout <= 0 || s.Fanout > time.Since(t0) || s.Request <= 0 {
			t.Errorf("sample %+v: times out of range", s)
		}
		cityNotice = s.ID
	})

	var communityNotice string
	t.Run("notice to one community does not reach the fleet", func(t *testing.T) {
		// k-0001..k-0004 stand in the first community.
		id, err := c.CreateNotice(ctx, load.NoticeRequest{
			Title: "居委通知", Category: protocol.NoticeEvent, Priority: protocol.PriorityImportant,
			Targets: []protocol.Target{{Level: protocol.LevelCommunity, ID: "d-01-s1-c1"}},
		})
		if err != nil {
			t.Fatal(err)
		}
		communityNotice = id
		short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
		defer cancel()
		_, err = fl.WaitNotice(short, id, time.Now())
		if err == nil || !strings.Contains(err.Error(), "of 20 hold it") {
			t.Fatalf("WaitNotice = %v, want a deadline error", err)
		}
	})

	t.Run("records arrive exactly once", func(t *testing.T) {
		res, err := load.Ingest(ctx, fl, c, 10, 8, waitFor)
		if err != nil {
			t.Fatal(err)
		}
		if res.Records != 10*n || res.Tally.Stored != 10*n || !res.Tally.OK() || res.PerSecond <= 0 {
			t.Fatalf("ingest = %+v", res)
		}
	})

	t.Run("a record the hub never stored is reported lost", func(t *testing.T) {
		rcs, err := fl.Submit(ctx, 1, 4)
		if err != nil {
			t.Fatal(err)
		}
		if err := fl.WaitDrained(ctx); err != nil {
			t.Fatal(err)
		}
		forged := append(rcs, fleetsim.Receipt{Kiosk: ids[0], FeedbackReceipt: protocol.FeedbackReceipt{
			ID: protocol.NewID(), Ticket: "NEVER-SENT", SubmittedAt: time.Now()}})
		tally, err := load.Verify(ctx, c, ids, forged, time.Now().Add(-time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		// The earlier subtest's records are "extra" to this receipt list.
		if tally.Lost != 1 || tally.Stored != n || tally.Extra != 10*n || tally.OK() {
			t.Fatalf("tally = %+v, want 1 lost, %d stored, %d extra", tally, n, 10*n)
		}
	})

	if err := fl.Close(); err != nil {
		t.Fatal(err)
	}
	// The agents' databases, read directly, hold what the fleet reported.
	for i, id := range ids {
		st, err := store.Open(filepath.Join(root, id, "agent.db"))
		if err != nil {
			t.Fatal(err)
		}
		doc, _, ok, err := st.Desired()
		if cerr := st.Close(); cerr != nil {
			t.Fatal(cerr)
		}
		if err != nil || !ok {
			t.Fatalf("%s: desired state: ok=%v err=%v", id, ok, err)
		}
		held := map[string]bool{}
		for _, n := range doc.Notices {
			held[n.ID] = true
		}
		if cityNotice != "" && !held[cityNotice] {
			t.Errorf("%s does not hold the city notice", id)
		}
		if communityNotice != "" && held[communityNotice] != (i < orgfile.KiosksPerCommunity) {
			t.Errorf("%s holds the community notice: %v", id, held[communityNotice])
		}
	}
}
