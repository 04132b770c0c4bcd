package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"
)

func TestWorkRecordsAndPhotos(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	c := testCase(2)
	if _, _, err := s.InsertCase(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	jpeg := []byte("\xff\xd8not really a jpeg\xff\xd9")
	w := WorkRecord{ID: "w1", CaseID: c.ID, At: caseBase, Actor: "officer-1", Note: "现场已整改"}
	if err := s.AddWork(ctx, w, []Photo{{PhotoRef{"abc", 4, 3}, jpeg}}); err != nil {
		t.Fatal(err)
	}
	if err := s.AddWork(ctx, WorkRecord{ID: "w2", CaseID: c.ID, At: caseBase.Add(time.Hour), Actor: "officer-1"}, nil); err != nil {
		t.Fatal(err)
	}
	if err := s.AddWork(ctx, WorkRecord{ID: "w3", CaseID: "no-such-case", At: caseBase, Actor: "x"}, nil); err == nil {
		t.Error("work on an unknown case was stored")
	}
	ws, err := s.CaseWork(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 2 || ws[0].Note != w.Note || len(ws[0].Photos) != 1 || ws[0].Photos[0].SHA256 != "abc" || len(ws[1].Photos) != 0 {
		t.Fatalf("work records %+v", ws)
	}
	p, err := s.CasePhoto(ctx, c.ID, "abc")
	if err != nil || !bytes.Equal(p.JPEG, jpeg) || p.Width != 4 {
		t.Fatalf("photo %+v, %v", p.PhotoRef, err)
	}
	if _, err := s.CasePhoto(ctx, "other-case", "abc"); !errors.Is(err, ErrNotFound) {
		t.Errorf("photo through another case: %v, want ErrNotFound", err)
	}
}

func TestCheckinsIdempotent(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	c := Checkin{ID: "c1", Officer: "o1", Kiosk: "k1", Community: "sangcheng", Slot: 100, At: caseBase, Kind: "visit"}
	if _, dup, err := s.AddCheckin(ctx, c); err != nil || dup {
		t.Fatalf("first: dup=%v %v", dup, err)
	}
	again := c
	again.ID = "c2"
	got, dup, err := s.AddCheckin(ctx, again)
	if err != nil || !dup || got.ID != "c1" {
		t.Fatalf("second: %+v dup=%v %v", got, dup, err)
	}
	if got, err := s.Checkins(ctx, CheckinFilter{Since: caseBase.Add(time.Second)}); err != nil || len(got) != 0 {
		t.Errorf("Checkins since after the only one = %d, %v", len(got), err)
	}
	bad := c
	bad.ID, bad.Slot, bad.Kind = "c3", 101, "party"
	if _, _, err := s.AddCheckin(ctx, bad); err == nil {
		t.Error("a check-in of an unknown kind was stored")
	}
	for _, q := range []struct {
		officer string
		comms   []string
		want    int
	}{{"o1", nil, 1}, {"o2", nil, 0}, {"", []string{"sangcheng"}, 1}, {"", []string{"ruiyi"}, 0}} {
		got, err := s.Checkins(ctx, CheckinFilter{Officer: q.officer, Communities: q.comms, Limit: 10})
		if err != nil || len(got) != q.want {
			t.Errorf("Checkins(%q, %v) = %d, %v; want %d", q.officer, q.comms, len(got), err, q.want)
		}
	}
}

func TestKioskRatingsAndBoard(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	if _, seen, err := s.KioskRatingOutcome(ctx, "r1"); err != nil || seen {
		t.Fatalf("unseen record: seen=%v %v", seen, err)
	}
	for _, o := range []string{"applied", "refused"} {
		if err := s.RecordKioskRating(ctx, "r1", "k1", "T-1", "satisfied", o, caseBase); err != nil {
			t.Fatal(err)
		}
	}
	if o, seen, err := s.KioskRatingOutcome(ctx, "r1"); err != nil || !seen || o != "applied" {
		t.Fatalf("outcome %q seen=%v %v, want the first", o, seen, err)
	}
	v1, err := s.NextBoardVersion(ctx, "k1", caseBase)
	if err != nil {
		t.Fatal(err)
	}
	v2, err := s.NextBoardVersion(ctx, "k1", caseBase.Add(-time.Hour)) // clock went back
	if err != nil || v2 != v1+1 {
		t.Fatalf("versions %d then %d (%v), want +1", v1, v2, err)
	}
	c := testCase(3)
	c.Kiosk, c.State = "k1", "answered"
	ev := []CaseEvent{{CaseID: c.ID, At: caseBase, Actor: "o1", Role: "officer", Action: "answer", From: "in_progress", To: "answered", Note: "已清理"}}
	if _, _, err := s.InsertCase(ctx, c, ev); err != nil {
		t.Fatal(err)
	}
	cs, err := s.KioskCases(ctx, "k1", 10)
	if err != nil || len(cs) != 1 || cs[0].ID != c.ID {
		t.Fatalf("kiosk cases %d, %v", len(cs), err)
	}
	a, err := s.LatestAnswer(ctx, c.ID)
	if err != nil || a.Text != "已清理" {
		t.Fatalf("answer %+v, %v", a, err)
	}
	if a, err := s.LatestAnswer(ctx, "case-none"); err != nil || a.Text != "" {
		t.Fatalf("answer of unanswered case %+v, %v", a, err)
	}
}
