package store_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// TestFlushPlays: counts are kept per hour and item; FlushPlays turns each
// finished hour into records of at most MaxPlayItems items, once.
func TestFlushPlays(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	h0 := now.Truncate(time.Hour).Add(-3 * time.Hour)
	h1 := h0.Add(time.Hour)
	n := protocol.MaxPlayItems + 1 // two records for h0
	for i := range n {
		if err := s.AddPlay(protocol.PlayEvent{Kind: protocol.ItemNotice, Notice: fmt.Sprintf("n-%d", i), At: h0.Add(time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	for _, m := range []int{10, 40, 20} {
		if err := s.AddPlay(protocol.PlayEvent{Kind: protocol.ItemNotice, Notice: "n-0", At: h1.Add(time.Duration(m) * time.Minute)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.AddPlay(protocol.PlayEvent{Kind: protocol.ItemNotice, Notice: "n-0", At: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddPlay(protocol.PlayEvent{Kind: protocol.ItemNotice, At: now}); err == nil {
		t.Fatal("AddPlay accepted a notice play with no notice")
	}
	got, err := s.FlushPlays("k-1", now)
	if err != nil || got != 3 {
		t.Fatalf("FlushPlays = %d, %v; want 3 records", got, err)
	}
	recs, err := s.Outbox("", 10)
	if err != nil || len(recs) != 3 {
		t.Fatalf("outbox = %d records, %v", len(recs), err)
	}
	items := map[time.Time]int{}
	for _, r := range recs {
		env, ps, err := protocol.DecodePlays(r.Data)
		if err != nil || env.ID != r.ID {
			t.Fatalf("record %s: %v (envelope id %s)", r.ID, err, env.ID)
		}
		items[ps.Hour] += len(ps.Items)
		if ps.Hour.Equal(h1) && (ps.Items[0].Count != 3 || !ps.Items[0].Last.Equal(h1.Add(40*time.Minute))) {
			t.Errorf("hour %v: %+v, want count 3, last :40", h1, ps.Items[0])
		}
	}
	if items[h0] != n || items[h1] != 1 {
		t.Errorf("items per hour = %v, want %d and 1", items, n)
	}
	if got, err := s.FlushPlays("k-1", now); err != nil || got != 0 {
		t.Errorf("second FlushPlays = %d, %v; want 0", got, err)
	}
	if got, err := s.FlushPlays("k-1", now.Add(time.Hour)); err != nil || got != 1 {
		t.Errorf("FlushPlays an hour later = %d, %v; want the current hour's record", got, err)
	}
}
