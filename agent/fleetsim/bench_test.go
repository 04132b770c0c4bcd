package fleetsim_test

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/fleetsim"
	"github.com/shequ/shequ/agent/fleetsim/load"
	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/hub"
)

// benchWait bounds each wait of a benchmark iteration.
const benchWait = 5 * time.Minute

// BenchmarkNoticeFanout1000 measures, with 1,000 agents connected to a hub
// with an org of 1,000 kiosks, the time from creating a notice aimed at the
// city through the hub's HTTPS API until every agent holds it in its bbolt
// file: each kiosk's document is signed by the hub and verified by its agent,
// over TLS with per-device MQTT accounts and ACLs. Starting the hub and
// enrolling and starting the fleet is outside the timed loop.
func BenchmarkNoticeFanout1000(b *testing.B) {
	const n = 1000
	// The hub's log is discarded: closing the fleet makes it log every
	// offline presence it could not record before it closed itself.
	h := startHub(b, n, slog.New(slog.DiscardHandler))
	c := newClient(b, h)
	fl := benchFleet(b, h, c, n, 0)
	ctx := context.Background()
	var (
		total time.Duration
		count int
	)
	for b.Loop() {
		wctx, cancel := context.WithTimeout(ctx, benchWait)
		s, err := load.SendNotice(wctx, fl, c, city, "基准测试通知")
		cancel()
		if err != nil {
			b.Fatal(err)
		}
		total += s.Fanout
		count++
	}
	b.ReportMetric(float64(total.Milliseconds())/float64(count), "ms/fanout")
}

// BenchmarkFeedbackIngest measures feedback ingestion: 100 agents submit 20
// records each per iteration (32 submissions at a time) and the iteration
// ends when every outbox is empty, that is when the hub has stored every
// record durably and acknowledged it. Afterwards every receipt is looked up
// through the hub's API; a record lost, duplicated or unasked fails the
// benchmark. Agents keep at most 8 records in flight, so the fleet's 800
// stay within the hub's uplink queues (4 workers × 256).
func BenchmarkFeedbackIngest(b *testing.B) {
	const (
		n           = 100
		perAgent    = 20
		concurrency = 32
		inFlight    = 8
	)
	// The hub's log is discarded: closing the fleet makes it log every
	// offline presence it could not record before it closed itself.
	h := startHub(b, n, slog.New(slog.DiscardHandler))
	c := newClient(b, h)
	fl := benchFleet(b, h, c, n, inFlight)
	ctx := context.Background()
	var (
		receipts []fleetsim.Receipt
		elapsed  time.Duration
	)
	since := time.Now()
	for b.Loop() {
		wctx, cancel := context.WithTimeout(ctx, benchWait)
		t0 := time.Now()
		rcs, err := fl.Submit(wctx, perAgent, concurrency)
		receipts = append(receipts, rcs...)
		if err == nil {
			err = fl.WaitDrained(wctx)
		}
		elapsed += time.Since(t0)
		cancel()
		if err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(receipts))/elapsed.Seconds(), "records/s")
	tally, err := load.Verify(ctx, c, fl.KioskIDs(), receipts, since)
	if err != nil {
		b.Fatal(err)
	}
	if !tally.OK() || tally.Stored != n*perAgent*b.N {
		b.Fatalf("records at the hub: %+v, want %d stored exactly once and nothing else", tally, n*perAgent*b.N)
	}
}

// benchFleet starts a fleet of n agents, enrolled with h through claim
// codes, with agent logs discarded.
func benchFleet(b *testing.B, h *hub.Hub, c *load.Client, n, inFlight int) *fleetsim.Fleet {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), benchWait)
	defer cancel()
	ids := orgfile.KioskIDs(n)
	cfg := enrolWith(b, h, c, fleetsim.Config{Root: b.TempDir(), KioskIDs: ids, MaxInFlight: inFlight})
	t0 := time.Now()
	fl, err := fleetsim.Start(ctx, cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := fl.Close(); err != nil {
			b.Errorf("fleet close: %v", err)
		}
	})
	for _, wait := range []func(context.Context) error{fl.WaitConnected, fl.WaitSynced} {
		if err := wait(ctx); err != nil {
			b.Fatal(err)
		}
	}
	if err := load.WaitHubSees(ctx, c, ids); err != nil {
		b.Fatal(err)
	}
	b.Logf("%d agents enrolled, connected and seen by the hub after %v", fl.Enrolled(), time.Since(t0))
	return fl
}
