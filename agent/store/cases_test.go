package store_test

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

func board(version int64, cases ...protocol.CaseStatus) protocol.CaseBoard {
	return protocol.CaseBoard{Kiosk: "k-sangcheng-01", Version: version, Cases: cases}
}

func caseStatus(ticket string, state protocol.CaseState, rateable bool) protocol.CaseStatus {
	c := protocol.CaseStatus{Ticket: ticket, State: state, Category: protocol.CatOther, Kind: protocol.KindHelp,
		Rateable: rateable, Updated: time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)}
	if state == protocol.CaseAnswered || state == protocol.CaseRated {
		c.Answer = "已处理"
	}
	return c
}

func TestCaseBoardAndRating(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	now := time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)
	const ticket = "261126-K-SANGCHENG-01-0007"
	if _, err := s.Case("2611260007"); !errors.Is(err, store.ErrNoCase) {
		t.Fatalf("Case before any board: %v, want ErrNoCase", err)
	}
	if _, err := s.AddRating("k-sangcheng-01", "2611260007", protocol.RatingSatisfied, now); !errors.Is(err, store.ErrNoCase) {
		t.Fatalf("AddRating before any board: %v, want ErrNoCase", err)
	}
	apply := func(b protocol.CaseBoard, want bool) {
		t.Helper()
		applied, err := s.ApplyCaseBoard(b, now)
		if err != nil || applied != want {
			t.Fatalf("ApplyCaseBoard(v%d) = %v, %v; want %v", b.Version, applied, err, want)
		}
	}
	apply(board(5, caseStatus(ticket, protocol.CaseAnswered, true), caseStatus("261126-K-SANGCHENG-01-0008", protocol.CaseReceived, false)), true)
	apply(board(4), false)
	apply(board(5), false)
	c, err := s.Case("2611260007")
	if err != nil || c.Ticket != ticket || !c.Rateable || c.BoardVersion != 5 || !c.BoardReceived.Equal(now) {
		t.Fatalf("Case by query code = %+v, %v", c, err)
	}
	if _, err := s.AddRating("k-sangcheng-01", "2611260008", protocol.RatingSatisfied, now); !errors.Is(err, store.ErrNotRateable) {
		t.Fatalf("rating a received case: %v, want ErrNotRateable", err)
	}
	depth0, err := s.OutboxDepth()
	if err != nil {
		t.Fatal(err)
	}
	rc, err := s.AddRating("k-sangcheng-01", ticket, protocol.RatingBasicallySatisfied, now)
	if err != nil || rc.Ticket != ticket || rc.Rating != protocol.RatingBasicallySatisfied {
		t.Fatalf("AddRating = %+v, %v", rc, err)
	}
	recs, err := s.Outbox("", 10)
	if err != nil || len(recs) != depth0+1 {
		t.Fatalf("outbox: %d records, %v", len(recs), err)
	}
	e, r, err := protocol.DecodeRating(recs[len(recs)-1].Data)
	if err != nil || e.ID != rc.ID || r.Ticket != ticket || r.Kiosk != "k-sangcheng-01" {
		t.Fatalf("rating record: %+v %+v %v", e, r, err)
	}
	if _, err := s.AddRating("k-sangcheng-01", ticket, protocol.RatingSatisfied, now); !errors.Is(err, store.ErrNotRateable) {
		t.Fatalf("second rating: %v, want ErrNotRateable", err)
	}
	if c, err := s.Case(ticket); err != nil || c.Rateable || c.Rating != protocol.RatingBasicallySatisfied {
		t.Fatalf("case after rating: %+v, %v", c, err)
	}
	// A newer board that still shows the case rateable (the hub has not
	// taken the rating yet) keeps it not rateable here.
	apply(board(6, caseStatus(ticket, protocol.CaseAnswered, true)), true)
	if _, err := s.AddRating("k-sangcheng-01", ticket, protocol.RatingSatisfied, now); !errors.Is(err, store.ErrNotRateable) {
		t.Fatalf("rating again before the hub took it: %v, want ErrNotRateable", err)
	}
	// The hub took it; then it reopened and answered again: rateable.
	rated := caseStatus(ticket, protocol.CaseRated, false)
	rated.Rating = protocol.RatingBasicallySatisfied
	apply(board(7, rated), true)
	apply(board(8, caseStatus(ticket, protocol.CaseAnswered, true)), true)
	rc2, err := s.AddRating("k-sangcheng-01", ticket, protocol.RatingNotSatisfied, now)
	if err != nil {
		t.Fatalf("rating a case answered again: %v", err)
	}
	// The hub rejects it: the mark goes, the board decides again.
	if moved, err := s.DeadLetter(rc2.ID, "not rateable", now); err != nil || !moved {
		t.Fatalf("DeadLetter = %v, %v", moved, err)
	}
	if c, err := s.Case(ticket); err != nil || !c.Rateable || c.Rating != "" {
		t.Fatalf("case after a rejected rating: %+v, %v", c, err)
	}
}

func TestCaseBoardSurvivesReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s := open(t, path)
	if _, err := s.ApplyCaseBoard(board(3, caseStatus("261126-K-SANGCHENG-01-0001", protocol.CaseInProgress, false)), time.Now()); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	b, _, ok, err := s.CaseBoard()
	if err != nil || !ok || b.Version != 3 || len(b.Cases) != 1 {
		t.Fatalf("CaseBoard after reopen = %+v, %v, %v", b, ok, err)
	}
	if _, err := s.ApplyCaseBoard(protocol.CaseBoard{Kiosk: "k1"}, time.Now()); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("invalid board: %v, want ErrInvalid", err)
	}
}
