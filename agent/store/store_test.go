package store_test

import (
	"encoding/binary"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

var now = time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC)

func open(t *testing.T, path string) *store.Store {
	t.Helper()
	s, err := store.Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, bolt.ErrDatabaseNotOpen) {
			t.Errorf("Close: %v", err)
		}
	})
	return s
}

func feedbackRequest(t *testing.T) protocol.FeedbackRequest {
	t.Helper()
	data, err := os.ReadFile("../../protocol/testdata/feedback_request.json")
	if err != nil {
		t.Fatal(err)
	}
	req, err := protocol.DecodeFeedbackRequest(data)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func desired(t *testing.T, version int64) protocol.DesiredState {
	t.Helper()
	data, err := os.ReadFile("../../protocol/testdata/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, err := protocol.DecodeDesired(data)
	if err != nil {
		t.Fatal(err)
	}
	doc.Version = version
	return doc
}

func TestFeedbackDurableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	req := feedbackRequest(t)
	rc, err := s.AddFeedback("k-sangcheng-01", req, now)
	if err != nil {
		t.Fatalf("AddFeedback: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s = open(t, path)
	recs, err := s.Outbox("", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].ID != rc.ID {
		t.Fatalf("outbox after reopen = %v, want one record %s", recs, rc.ID)
	}
	env, fb, err := protocol.DecodeFeedback(recs[0].Data)
	if err != nil {
		t.Fatalf("stored record does not decode: %v", err)
	}
	if env.ID != rc.ID || fb.Ticket != rc.Ticket || fb.Kiosk != "k-sangcheng-01" || fb.Description != req.Description || !fb.SubmittedAt.Equal(rc.SubmittedAt) {
		t.Errorf("stored feedback %+v (envelope id %s) does not match receipt %+v", fb, env.ID, rc)
	}
}

func TestTicketsUnique(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	req := feedbackRequest(t)
	const writers, each = 4, 25
	var mu sync.Mutex
	tickets := map[string]bool{}
	ids := map[string]bool{}
	var wg sync.WaitGroup
	for range writers {
		wg.Go(func() {
			for range each {
				rc, err := s.AddFeedback("k-sangcheng-01", req, now)
				if err != nil {
					t.Error(err)
					return
				}
				if err := protocol.ValidTicket(rc.Ticket); err != nil {
					t.Error(err)
				}
				mu.Lock()
				if tickets[rc.Ticket] || ids[rc.ID] {
					t.Errorf("duplicate ticket %s or id %s", rc.Ticket, rc.ID)
				}
				tickets[rc.Ticket], ids[rc.ID] = true, true
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	depth, err := s.OutboxDepth()
	if err != nil {
		t.Fatal(err)
	}
	if depth != writers*each || len(tickets) != writers*each {
		t.Errorf("depth %d, tickets %d, want %d", depth, len(tickets), writers*each)
	}
	recs, err := s.Outbox("", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i < len(recs); i++ {
		if recs[i-1].ID >= recs[i].ID {
			t.Fatalf("outbox not in key order at %d", i)
		}
	}
}

func TestTicketFormat(t *testing.T) {
	tests := []struct {
		name  string
		kiosk string
		at    time.Time
		seq   uint64
		want  string
	}{
		{"short id used as is", "pd-0042", now, 7, "261126-PD-0042-0007"},
		{"date is Shanghai's", "pd-0042", time.Date(2026, 11, 26, 16, 30, 0, 0, time.UTC), 1, "261127-PD-0042-0001"},
		{"sequence grows past 4 digits", "pd-0042", now, 123456, "261126-PD-0042-123456"},
		{"long id hashed", "k-pudong-huamu-sangcheng-0001", now, 1, "261126-" + store.KioskCode("k-pudong-huamu-sangcheng-0001") + "-0001"},
		{"id with dot hashed", "pd.1", now, 1, "261126-" + store.KioskCode("pd.1") + "-0001"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got := store.Ticket(tc.kiosk, tc.at, tc.seq)
			if got != tc.want {
				t.Errorf("Ticket = %q, want %q", got, tc.want)
			}
			if err := protocol.ValidTicket(got); err != nil {
				t.Error(err)
			}
		})
	}
	if a, b := store.KioskCode("pd.1"), store.KioskCode("pd_1"); a == b || len(a) != 8 {
		t.Errorf("hashed codes %q, %q: want distinct 8-character codes", a, b)
	}
	long := "k-" + strings.Repeat("a", 62) // the longest valid kiosk id
	if err := protocol.ValidTicket(store.Ticket(long, now, 1<<62)); err != nil {
		t.Errorf("longest ticket invalid: %v", err)
	}
}

func TestAddFeedbackRejectsInvalid(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	req := feedbackRequest(t)
	req.Kind = "praise"
	if _, err := s.AddFeedback("k-sangcheng-01", req, now); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("AddFeedback(bad kind) = %v, want ErrInvalid", err)
	}
	if _, err := s.AddFeedback("K BAD", feedbackRequest(t), now); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("AddFeedback(bad kiosk) = %v, want ErrInvalid", err)
	}
	if d, err := s.OutboxDepth(); err != nil || d != 0 {
		t.Fatalf("depth = %d, %v; want 0", d, err)
	}
}

func TestOutboxAckDeadLetter(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	var ids []string
	for range 5 {
		rc, err := s.AddFeedback("k1", feedbackRequest(t), now)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rc.ID)
	}
	page, err := s.Outbox(ids[1], 2)
	if err != nil {
		t.Fatal(err)
	}
	if len(page) != 2 || page[0].ID != ids[2] || page[1].ID != ids[3] {
		t.Fatalf("Outbox(after %s, 2) = %v", ids[1], page)
	}
	if n, err := s.Ack(ids[0], ids[1], ids[0]); err != nil || n != 2 {
		t.Fatalf("Ack = %d, %v; want 2", n, err)
	}
	if n, err := s.Ack(ids[0]); err != nil || n != 0 {
		t.Fatalf("second Ack = %d, %v; want 0", n, err)
	}
	moved, err := s.DeadLetter(ids[2], "kiosk not enrolled", now)
	if err != nil || !moved {
		t.Fatalf("DeadLetter = %v, %v", moved, err)
	}
	if moved, err := s.DeadLetter(ids[2], "again", now); err != nil || moved {
		t.Fatalf("second DeadLetter = %v, %v; want false", moved, err)
	}
	dead, err := s.DeadLetters()
	if err != nil {
		t.Fatal(err)
	}
	if len(dead) != 1 || dead[0].ID != ids[2] || dead[0].Reason != "kiosk not enrolled" {
		t.Fatalf("DeadLetters = %+v", dead)
	}
	if _, _, err := protocol.DecodeFeedback(dead[0].Data); err != nil {
		t.Errorf("dead record lost its envelope: %v", err)
	}
	if d, err := s.OutboxDepth(); err != nil || d != 2 {
		t.Fatalf("depth = %d, %v; want 2", d, err)
	}
}

func TestApplyDesired(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	if _, _, ok, err := s.Desired(); err != nil || ok {
		t.Fatalf("Desired on empty store = %v, %v", ok, err)
	}
	steps := []struct {
		name    string
		version int64
		applied bool
		held    int64
	}{
		{"first", 17, true, 17},
		{"equal ignored", 17, false, 17},
		{"older ignored", 3, false, 17},
		{"newer applied", 18, true, 18},
	}
	for _, st := range steps {
		doc := desired(t, st.version)
		doc.Station.Hours = st.name
		applied, err := s.ApplyDesired(doc, now)
		if err != nil || applied != st.applied {
			t.Fatalf("%s: ApplyDesired = %v, %v; want %v", st.name, applied, err, st.applied)
		}
		got, at, ok, err := s.Desired()
		if err != nil || !ok || got.Version != st.held || !at.Equal(now) {
			t.Fatalf("%s: Desired = v%d at %v, %v, %v", st.name, got.Version, at, ok, err)
		}
		if v, err := s.DesiredVersion(); err != nil || v != st.held {
			t.Fatalf("%s: DesiredVersion = %d, %v", st.name, v, err)
		}
		if st.applied && got.Station.Hours != st.name {
			t.Fatalf("%s: held document not replaced", st.name)
		}
	}
	bad := desired(t, 99)
	bad.Notices[0].Title = ""
	if _, err := s.ApplyDesired(bad, now); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("ApplyDesired(invalid) = %v, want ErrInvalid", err)
	}
}

func TestEpochMonotonic(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	var last int64
	for i, at := range []time.Time{now, now, now.Add(-time.Hour)} {
		e, err := s.NextEpoch(at)
		if err != nil {
			t.Fatal(err)
		}
		if e <= last || e < now.Add(-time.Hour).UnixMilli() {
			t.Fatalf("epoch %d = %d after %d", i, e, last)
		}
		last = e
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	e, err := s.NextEpoch(time.Unix(0, 0)) // clock reset to 1970
	if err != nil {
		t.Fatal(err)
	}
	if e <= last {
		t.Fatalf("epoch after reopen %d, not above %d", e, last)
	}
}

func TestSchema(t *testing.T) {
	t.Run("new file gets current schema", func(t *testing.T) {
		s := open(t, filepath.Join(t.TempDir(), "agent.db"))
		if v, err := s.SchemaVersion(); err != nil || v != store.SchemaVersion {
			t.Fatalf("SchemaVersion = %d, %v", v, err)
		}
	})
	t.Run("newer schema refused", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "agent.db")
		db, err := bolt.Open(path, 0o600, nil)
		if err != nil {
			t.Fatal(err)
		}
		err = db.Update(func(tx *bolt.Tx) error {
			b, err := tx.CreateBucket([]byte("meta"))
			if err != nil {
				return err
			}
			return b.Put([]byte("schema"), binary.BigEndian.AppendUint64(nil, store.SchemaVersion+1))
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := db.Close(); err != nil {
			t.Fatal(err)
		}
		s, err := store.Open(path)
		if !errors.Is(err, store.ErrSchemaNewer) {
			if s != nil {
				s.Close()
			}
			t.Fatalf("Open(newer schema) = %v, want ErrSchemaNewer", err)
		}
	})
	t.Run("v1 file from testdata opens", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "agent.db")
		copyFile(t, "testdata/v1.db", path)
		s := open(t, path)
		recs, err := s.Outbox("", 10)
		if err != nil || len(recs) != 1 {
			t.Fatalf("v1 outbox = %v, %v; want 1 record", recs, err)
		}
		if _, fb, err := protocol.DecodeFeedback(recs[0].Data); err != nil || fb.Ticket != "261126-K-SANGCHENG-01-0001" {
			t.Fatalf("v1 record: ticket %q, %v", fb.Ticket, err)
		}
		doc, _, ok, err := s.Desired()
		if err != nil || !ok || doc.Version != 17 {
			t.Fatalf("v1 desired = v%d, %v, %v", doc.Version, ok, err)
		}
		rc, err := s.AddFeedback("k-sangcheng-01", feedbackRequest(t), now)
		if err != nil || rc.Ticket != "261126-K-SANGCHENG-01-0002" {
			t.Fatalf("AddFeedback on v1 file = %+v, %v; want sequence 2", rc, err)
		}
		e, err := s.NextEpoch(time.Unix(0, 0))
		if err != nil || e != 1795685400001 {
			t.Fatalf("NextEpoch on v1 file = %d, %v; want 1795685400001", e, err)
		}
		if err := s.AddPlay(protocol.PlayEvent{Kind: protocol.ItemNotice, Notice: "n-1", At: now}); err != nil {
			t.Fatalf("AddPlay on a migrated v1 file: %v", err)
		}
	})
}

func copyFile(t *testing.T, from, to string) {
	t.Helper()
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.Create(to)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
