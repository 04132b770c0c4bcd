package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/store"
)

// TestPhoneRetention: the tick forgets the phones of cases closed more
// than PhoneRetention ago, at most once an hour, and audits each run that
// cleared something as made by "system".
func TestPhoneRetention(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	var (
		mu  sync.Mutex
		now = time.Now().UTC() // the hub's certificates are made at Now
	)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	const retention = 30 * 24 * time.Hour
	st, err := store.Open(ctx, filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	addClosed := func(st *store.SQLite, id string, closed time.Time) {
		t.Helper()
		c := store.CaseRecord{ID: id, Ticket: "T-" + id, Source: "hotline", SourceRef: id, Community: "sangcheng",
			Street: "wuliqiao", District: "huangpu", Kind: "complaint", Category: "facade", Phone: "13800138000",
			State: "closed", ReportedAt: closed, CreatedAt: closed, UpdatedAt: closed, ClosedAt: closed}
		if _, _, err := st.InsertCase(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	addClosed(st, "old", now.Add(-retention-time.Hour))
	addClosed(st, "recent", now.Add(-retention+time.Hour))
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	h, err := New(Config{DataDir: dir, Org: demoTree(t), MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		ReconcileEvery: 10 * time.Millisecond, Now: clock, PhoneRetention: retention}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	hs := h.store.(*store.SQLite)
	audits := func() []store.AuditRecord {
		t.Helper()
		rs, err := hs.AuditLog(ctx, "cases", 10)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	waitAudits := func(n int) []store.AuditRecord {
		t.Helper()
		deadline := time.Now().Add(waitFor)
		for {
			rs := audits()
			if len(rs) >= n {
				return rs
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d retention audit entries, want %d", len(rs), n)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	phone := func(id string) string {
		t.Helper()
		c, err := hs.Case(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		return c.Phone
	}

	// waitTick returns after the loop has run a whole tick that began
	// after it was called: each tick's escalation clears the escalate_at
	// of a closed case, then it forgets phones.
	ticks := 0
	waitTick := func() {
		t.Helper()
		for range 2 {
			ticks++
			id := fmt.Sprintf("tick-%d", ticks)
			c := store.CaseRecord{ID: id, Ticket: "T-" + id, Source: "hotline", SourceRef: id, Community: "sangcheng",
				Street: "wuliqiao", District: "huangpu", Kind: "complaint", Category: "facade", State: "closed",
				ReportedAt: clock(), CreatedAt: clock(), UpdatedAt: clock(), ClosedAt: clock(), EscalateAt: clock().Add(-time.Hour)}
			if _, _, err := hs.InsertCase(ctx, c, nil); err != nil {
				t.Fatal(err)
			}
			deadline := time.Now().Add(waitFor)
			for {
				c, err := hs.Case(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				if c.EscalateAt.IsZero() {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("no tick escalated %s", id)
				}
				time.Sleep(5 * time.Millisecond)
			}
		}
	}

	rs := waitAudits(1)
	var after struct {
		Cases        int       `json:"cases"`
		ClosedBefore time.Time `json:"closed_before"`
	}
	if err := json.Unmarshal([]byte(rs[0].After), &after); err != nil {
		t.Fatal(err)
	}
	if rs[0].Action != "retention.phones" || rs[0].Actor != "system" || after.Cases != 1 || !after.ClosedBefore.Equal(now.Add(-retention)) {
		t.Errorf("audit %+v (after %+v), want retention.phones by system, 1 case closed before %v", rs[0], after, now.Add(-retention))
	}
	if phone("old") != "" || phone("recent") == "" {
		t.Errorf("phones old %q recent %q, want only recent's", phone("old"), phone("recent"))
	}

	// Within the hour nothing runs, though "recent" is now past the cutoff
	// and another old case appeared; after the hour both go.
	addClosed(hs, "old2", now.Add(-2*retention))
	mu.Lock()
	now = now.Add(59 * time.Minute)
	mu.Unlock()
	// A run within the hour would clear old2 alone (recent is not yet past
	// its cutoff): the next run clearing both shows there was none, and
	// waitTick shows the loop ran at this time.
	waitTick()
	if n := len(audits()); n != 1 || phone("old2") == "" {
		t.Fatalf("within the hour: %d audits, old2's phone %q; want no second run", n, phone("old2"))
	}
	mu.Lock()
	now = now.Add(2 * time.Minute)
	mu.Unlock()
	rs = waitAudits(2)
	if phone("recent") != "" || phone("old2") != "" {
		t.Errorf("after the hour: phones recent %q old2 %q, want none", phone("recent"), phone("old2"))
	}
	if err := json.Unmarshal([]byte(rs[0].After), &after); err != nil || after.Cases != 2 || len(rs) != 2 {
		t.Errorf("audits %+v: %v; want a second one of 2 cases (recent and old2)", rs, err)
	}
}
