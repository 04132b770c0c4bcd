package update_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/agent/update"
	"github.com/shequ/shequ/protocol"
)

// engine is a fake RAUC: the slot it says booted, and what it was asked.
type engine struct {
	mu       sync.Mutex
	booted   update.Slot
	installs int
	reboots  int
}

func (e *engine) Booted(context.Context) (update.Slot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.booted, nil
}

func (e *engine) Install(context.Context, string, string, func(int)) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.installs++
	return nil
}

func (e *engine) counts() (installs, reboots int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.installs, e.reboots
}

func (e *engine) Reboot(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reboots++
	return nil
}

// held is a media cache that holds every file at once.
type held struct{}

func (held) WantBundle(*protocol.MediaRef) {}
func (held) Has(string) bool               { return true }
func (held) Path(sha string) string        { return "/nonexistent/" + sha }
func (held) Percent(string) int            { return 100 }
func (held) Failure(string) string         { return "" }

const sha = "b5bb9d8014a0f9b1d61e21e796d78dccdf1352f23cd32812f4850b878ae4944c"

func offer(seq int64, release string) protocol.UpdateOffer {
	return protocol.UpdateOffer{Kiosk: "k-1", Seq: seq, Rollout: "r-1", Release: release,
		Bundle: &protocol.MediaRef{SHA256: sha, Kind: protocol.MediaBundle, Size: 100}}
}

// boot is one run of the agent: a manager over the same store, on a boot
// with the given id, stepped until want says so.
func boot(t *testing.T, st *store.Store, eng *engine, dir, bootID string) *update.Manager {
	t.Helper()
	m, err := update.New(update.Config{Kiosk: "k-1", Engine: eng, Store: st, Media: held{},
		GateFile: filepath.Join(dir, "gate.json"), Poll: 5 * time.Millisecond,
		BootID: func() (string, error) { return bootID, nil }}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func run(t *testing.T, m *update.Manager, until func(protocol.UpdateStatus) bool) protocol.UpdateStatus {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { m.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	deadline := time.Now().Add(10 * time.Second)
	for {
		s := m.Status(1)
		if until(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("update status stuck at %+v", s)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// reports returns the update records in the outbox.
func reports(t *testing.T, st *store.Store) []protocol.UpdateReport {
	t.Helper()
	recs, err := st.Outbox("", 100)
	if err != nil {
		t.Fatal(err)
	}
	var out []protocol.UpdateReport
	for _, r := range recs {
		_, rep, err := protocol.DecodeUpdate(r.Data)
		if err != nil {
			t.Fatalf("outbox record %s: %v", r.ID, err)
		}
		out = append(out, rep)
	}
	return out
}

// TestRollback: a release installed from slot A whose new slot fails its
// health gate; the kiosk comes back on A on another boot, and the agent
// reports the rollback with the gate's reason, once, across restarts.
func TestRollback(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := &engine{booted: update.Slot{Name: "A", Version: "1.3.2"}}

	m := boot(t, st, eng, dir, "boot-1")
	m.Offer(offer(10, "1.4.0"))
	run(t, m, func(s protocol.UpdateStatus) bool { return s.State == protocol.UpdateInstalled })
	if i, r := eng.counts(); i != 1 || r < 1 {
		t.Fatalf("installs %d, reboots %d; want 1 and at least 1", i, r)
	}
	// The same boot after an agent restart: still waiting for the reboot,
	// asked again, nothing reported twice.
	m = boot(t, st, eng, dir, "boot-1")
	run(t, m, func(protocol.UpdateStatus) bool { _, r := eng.counts(); return r >= 2 })
	if rs := reports(t, st); len(rs) != 1 || rs[0].State != protocol.UpdateInstalled || rs[0].Slot != "A" {
		t.Fatalf("reports after install = %+v; want one installed from A", rs)
	}

	// Slot B booted and failed its gate; back on A, on a third boot.
	if err := update.WriteGate(filepath.Join(dir, "gate.json"), update.Gate{Slot: "B", BootID: "boot-2",
		Reason: "shequ-kiosk.service restarted 3 times (crash loop)", At: time.Now().Add(time.Second)}); err != nil {
		t.Fatal(err)
	}
	m = boot(t, st, eng, dir, "boot-3")
	s := run(t, m, func(s protocol.UpdateStatus) bool { return s.State == protocol.UpdateRolledBack })
	if !strings.Contains(s.Reason, "crash loop") {
		t.Errorf("rolled-back status reason %q; want the gate's", s.Reason)
	}
	rs := reports(t, st)
	if len(rs) != 2 || rs[1].State != protocol.UpdateRolledBack || rs[1].Slot != "A" || rs[1].Version != "1.3.2" ||
		!strings.Contains(rs[1].Reason, "health gate: shequ-kiosk.service restarted 3 times") {
		t.Fatalf("reports = %+v; want installed, then rolled back on A with the gate's reason", rs)
	}
	// Not installed again, not reported again, and a replayed older offer
	// changes nothing.
	m = boot(t, st, eng, dir, "boot-4")
	m.Offer(offer(9, "1.4.0"))
	run(t, m, func(s protocol.UpdateStatus) bool { return s.State == protocol.UpdateRolledBack })
	if i, _ := eng.counts(); i != 1 || len(reports(t, st)) != 2 {
		t.Errorf("after a restart: installs %d, reports %d; want 1 and 2", i, len(reports(t, st)))
	}
}

// TestNoGate: when the new slot never reaches its gate (a kernel panic, a
// root that does not mount), the rollback says its boot tries ran out.
func TestNoGate(t *testing.T) {
	dir := t.TempDir()
	st, err := store.Open(filepath.Join(dir, "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	eng := &engine{booted: update.Slot{Name: "B", Version: "1.4.0"}}
	m := boot(t, st, eng, dir, "boot-1")
	m.Offer(offer(10, "1.5.0"))
	run(t, m, func(s protocol.UpdateStatus) bool { return s.State == protocol.UpdateInstalled })
	m = boot(t, st, eng, dir, "boot-2")
	s := run(t, m, func(s protocol.UpdateStatus) bool { return s.State == protocol.UpdateRolledBack })
	if !strings.Contains(s.Reason, "boot tries ran out") {
		t.Errorf("reason %q; want the boot tries", s.Reason)
	}
	b, err := st.UpdateState()
	if err != nil || !json.Valid(b) {
		t.Errorf("stored state %s, %v", b, err)
	}
}
