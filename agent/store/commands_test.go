package store_test

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

func TestClaimCommand(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	old, fresh := protocol.NewID(), protocol.NewID()
	for _, c := range []struct {
		name string
		id   string
		exp  time.Time
		now  time.Time
		want bool
	}{
		{"first arrival", old, now.Add(time.Minute), now, true},
		{"redelivered", old, now.Add(time.Minute), now.Add(time.Second), false},
		{"another command", fresh, now.Add(2 * time.Minute), now, true},
		{"replayed two hours later", old, now.Add(time.Minute), now.Add(2 * time.Hour), false},
	} {
		got, err := s.ClaimCommand(c.id, c.exp, c.now)
		if err != nil || got != c.want {
			t.Fatalf("%s: ClaimCommand = %v, %v; want %v", c.name, got, err, c.want)
		}
	}
	// Survives a restart.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = store.Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // test
	if got, err := s.ClaimCommand(fresh, now.Add(2*time.Minute), now); err != nil || got {
		t.Fatalf("after reopening: ClaimCommand = %v, %v; want seen", got, err)
	}
	// Two days later the old ids are forgotten: the expiry refuses them.
	later := now.Add(48 * time.Hour)
	if _, err := s.ClaimCommand(protocol.NewID(), later.Add(time.Minute), later); err != nil {
		t.Fatal(err)
	}
	if got, err := s.ClaimCommand(old, now.Add(time.Minute), later); err != nil || !got {
		t.Fatalf("a long-expired id: ClaimCommand = %v, %v; want forgotten (new)", got, err)
	}
}

func TestAddResult(t *testing.T) {
	s, err := store.Open(filepath.Join(t.TempDir(), "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close() //nolint:errcheck // test
	r := protocol.CommandResult{Kiosk: "k1", Command: protocol.NewID(), Action: protocol.ActionRestartAgent,
		Status: protocol.ResultOK, At: time.Now()}
	id, err := s.AddResult(r)
	if err != nil {
		t.Fatal(err)
	}
	if in, err := s.InOutbox(id); err != nil || !in {
		t.Fatalf("InOutbox = %v, %v", in, err)
	}
	recs, err := s.Outbox("", 10)
	if err != nil || len(recs) != 1 {
		t.Fatalf("Outbox = %v, %v", recs, err)
	}
	if _, got, err := protocol.DecodeResult(recs[0].Data); err != nil || got.Command != r.Command {
		t.Fatalf("outbox record decodes to %+v, %v", got, err)
	}
	bad := r
	bad.Status = protocol.ResultRefused // no reason
	if _, err := s.AddResult(bad); err == nil {
		t.Fatal("AddResult took an invalid result")
	}
	if n, err := s.Ack(id); err != nil || n != 1 {
		t.Fatal(n, err)
	}
	if in, err := s.InOutbox(id); err != nil || in {
		t.Fatalf("InOutbox after ack = %v, %v", in, err)
	}
}
