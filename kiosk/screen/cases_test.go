package screen

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/protocol"
)

const caseTicket = "250301-K-01-0007"

// fakeCases is a hand-written CaseClient and CheckinClient with the
// agent's behaviour: one case, rateable until rated once.
type fakeCases struct {
	c       protocol.LocalCase
	lookups []string
	ratings []protocol.Rating
	err     error // returned by every call while set
	codes   int   // check-in codes handed out
}

func newFakeCases() *fakeCases {
	return &fakeCases{c: protocol.LocalCase{CaseStatus: protocol.CaseStatus{Ticket: caseTicket, State: protocol.CaseAnswered,
		Category: protocol.CatFacade, Kind: protocol.KindComplaint, Answer: "已责令恢复原状", AnsweredAt: t0, Rateable: true, Updated: t0},
		BoardVersion: 2, BoardReceived: t0}}
}

func (f *fakeCases) Case(_ context.Context, key string) (protocol.LocalCase, error) {
	f.lookups = append(f.lookups, key)
	if f.err != nil {
		return protocol.LocalCase{}, f.err
	}
	if code, _ := protocol.QueryCode(f.c.Ticket); key != code && key != f.c.Ticket {
		return protocol.LocalCase{}, &agentErr{code: http.StatusNotFound, reason: "no such case"}
	}
	return f.c, nil
}

func (f *fakeCases) RateCase(_ context.Context, key string, r protocol.Rating) (protocol.RatingReceipt, error) {
	if f.err != nil {
		return protocol.RatingReceipt{}, f.err
	}
	if !f.c.Rateable {
		return protocol.RatingReceipt{}, &agentErr{code: http.StatusConflict, reason: "not rateable"}
	}
	f.ratings = append(f.ratings, r)
	f.c.Rateable, f.c.Rating = false, r
	return protocol.RatingReceipt{ID: protocol.NewID(), Ticket: f.c.Ticket, Rating: r, At: t0}, nil
}

func (f *fakeCases) CheckinCode(context.Context) (protocol.CheckinCode, error) {
	if f.err != nil {
		return protocol.CheckinCode{}, f.err
	}
	f.codes++
	slot := protocol.CheckinSlot(t0) + int64(f.codes)
	return protocol.CheckinCode{URL: "https://hub/m/checkin?k=k-01", Expires: protocol.CheckinSlotEnd(slot)}, nil
}

func TestLookupAndRate(t *testing.T) {
	ctx := context.Background()
	m := newModel(t, Config{})
	m.SetStatus(protocol.AgentStatus{Enrolled: true, Kiosk: "k-01", Connected: true})
	f := newFakeCases()
	now := t0

	m.StartLookup(now)
	if v := m.View(now); v.Screen != Lookup || v.KeypadMax != protocol.MaxQueryCode {
		t.Fatalf("after StartLookup: %v max %d", v.Screen, v.KeypadMax)
	}
	tests := []struct {
		name   string
		digits string
		err    error
		want   Screen
		msg    i18n.Key
	}{
		{"too short, not sent", "2503", nil, Lookup, i18n.ErrQueryCode},
		{"unknown code", "2503010099", nil, Lookup, i18n.ErrCaseNotFound},
		{"agent down", "2503010007", errors.New("dial unix: no such file"), Lookup, i18n.ErrCaseLookup},
		{"found", "2503010007", nil, CaseResult, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			m.Clear(now)
			typeDigits(m, tc.digits, now)
			f.err = tc.err
			err := m.LookUp(ctx, f, now)
			v := m.View(now)
			if v.Screen != tc.want || v.Err != tc.msg || (err == nil) != (tc.msg == "") {
				t.Fatalf("LookUp(%s) = %v: screen %v message %q, want %v %q", tc.digits, err, v.Screen, v.Err, tc.want, tc.msg)
			}
		})
	}
	if len(f.lookups) != 3 {
		t.Errorf("agent asked %d times (%v), want 3: a short code is not sent", len(f.lookups), f.lookups)
	}
	v := m.View(now)
	if v.Case.Ticket != caseTicket || !v.Case.Rateable || v.Case.Answer == "" || v.CaseStale {
		t.Fatalf("case view %+v stale=%v", v.Case, v.CaseStale)
	}

	if err := m.Rate(ctx, f, "great", now); err == nil || m.View(now).Err != i18n.ErrRate {
		t.Fatalf("invalid rating: %v, message %q", err, m.View(now).Err)
	}
	if err := m.Rate(ctx, f, protocol.RatingBasicallySatisfied, now); err != nil {
		t.Fatal(err)
	}
	if v := m.View(now); v.Screen != Rated || v.Rating != protocol.RatingBasicallySatisfied {
		t.Fatalf("after rating: %v %q", v.Screen, v.Rating)
	}
	// Looked up again: rated, no buttons; a second rating is not sent.
	m.Back(now)
	m.StartLookup(now)
	typeDigits(m, "2503010007", now)
	if err := m.LookUp(ctx, f, now); err != nil {
		t.Fatal(err)
	}
	if v := m.View(now); v.Case.Rateable || v.Case.Rating != protocol.RatingBasicallySatisfied {
		t.Fatalf("case after rating %+v", v.Case)
	}
	if err := m.Rate(ctx, f, protocol.RatingSatisfied, now); err != nil || len(f.ratings) != 1 {
		t.Fatalf("rating a rated case: %v, ratings %v", err, f.ratings)
	}
	m.Back(now)
	if v := m.View(now); v.Screen != Lookup || v.Keypad != "" {
		t.Fatalf("Back from the case: %v keypad %q, want an empty Lookup", v.Screen, v.Keypad)
	}
	m.Back(now)
	if m.View(now).Screen != Home {
		t.Fatal("Back from Lookup does not go home")
	}
}

// TestRateRefusedByAgent: a 409 takes the buttons away with a message.
func TestRateRefusedByAgent(t *testing.T) {
	ctx := context.Background()
	m := newModel(t, Config{})
	f := newFakeCases()
	m.StartLookup(t0)
	typeDigits(m, "2503010007", t0)
	if err := m.LookUp(ctx, f, t0); err != nil {
		t.Fatal(err)
	}
	if v := m.View(t0); !v.CaseStale {
		t.Error("case not marked stale without an agent status saying connected")
	}
	f.c.Rateable = false // rated meanwhile at the hub
	if err := m.Rate(ctx, f, protocol.RatingSatisfied, t0); err == nil {
		t.Fatal("refused rating returned no error")
	}
	v := m.View(t0)
	if v.Screen != CaseResult || v.Err != i18n.ErrNotRateable || v.Case.Rateable {
		t.Fatalf("after a refused rating: %v %q rateable=%v", v.Screen, v.Err, v.Case.Rateable)
	}
}

// TestRefreshCase: a new board updates the case on screen, and nothing
// elsewhere.
func TestRefreshCase(t *testing.T) {
	ctx := context.Background()
	m := newModel(t, Config{})
	f := newFakeCases()
	f.c.State, f.c.Answer, f.c.Rateable = protocol.CaseInProgress, "", false
	if err := m.RefreshCase(ctx, f); err != nil || len(f.lookups) != 0 {
		t.Fatalf("refresh on Home: %v, %d lookups", err, len(f.lookups))
	}
	m.StartLookup(t0)
	typeDigits(m, "2503010007", t0)
	if err := m.LookUp(ctx, f, t0); err != nil {
		t.Fatal(err)
	}
	f.c.State, f.c.Answer, f.c.Rateable = protocol.CaseAnswered, "已处理", true
	if err := m.RefreshCase(ctx, f); err != nil {
		t.Fatal(err)
	}
	if v := m.View(t0); v.Case.State != protocol.CaseAnswered || !v.Case.Rateable || v.Case.Answer != "已处理" {
		t.Fatalf("after refresh %+v", v.Case)
	}
}

// ticketSubmitter answers with a kiosk ticket.
type ticketSubmitter struct{}

func (ticketSubmitter) SubmitFeedback(context.Context, protocol.FeedbackRequest) (protocol.FeedbackReceipt, error) {
	return protocol.FeedbackReceipt{ID: protocol.NewID(), Ticket: caseTicket, SubmittedAt: t0}, nil
}

func TestReceiptShowsQueryCode(t *testing.T) {
	m := newModel(t, Config{})
	m.StartFeedback(t0)
	m.ChooseKind(protocol.KindHelp, t0)
	m.ChooseCategory(protocol.CatOther, t0)
	for range 5 {
		m.Skip(t0)
	}
	if err := m.Submit(context.Background(), ticketSubmitter{}, t0); err != nil {
		t.Fatal(err)
	}
	v := m.View(t0)
	if want := "2503010007"; v.Screen != Receipt || v.QueryCode != want {
		t.Fatalf("receipt %v ticket %s query code %q, want 2503010007", v.Screen, v.Receipt.Ticket, v.QueryCode)
	}
}

func TestCheckin(t *testing.T) {
	ctx := context.Background()
	m := newModel(t, Config{})
	f := newFakeCases()
	now := t0
	if m.CheckinDue(now) {
		t.Fatal("check-in code due on Home")
	}
	m.StartCheckin(now)
	if v := m.View(now); v.Screen != Checkin || v.HasCheckin {
		t.Fatalf("StartCheckin: %v has code %v", v.Screen, v.HasCheckin)
	}
	if !m.CheckinDue(now) {
		t.Fatal("no code yet, but none due")
	}
	if err := m.LoadCheckin(ctx, f, now); err != nil {
		t.Fatal(err)
	}
	v := m.View(now)
	if !v.HasCheckin || v.Checkin.URL == "" || m.CheckinDue(now) {
		t.Fatalf("after LoadCheckin: %+v due=%v", v.Checkin, m.CheckinDue(now))
	}
	// Due again CheckinRefresh before it expires.
	if due := v.Checkin.Expires.Add(-CheckinRefresh); !m.CheckinDue(due) || m.CheckinDue(due.Add(-time.Second)) {
		t.Fatalf("CheckinDue around %v is wrong", due)
	}
	f.err = errors.New("agent gone")
	if err := m.LoadCheckin(ctx, f, now); err == nil || m.View(now).Err != i18n.ErrCheckin || !m.View(now).HasCheckin {
		t.Fatalf("failed refresh: %v, view %+v", err, m.View(now))
	}
	// Touching the screen does not keep it up: home after CheckinTimeout.
	m.Touch(now.Add(50 * time.Second))
	m.Tick(now.Add(CheckinTimeout - time.Second))
	if m.View(now.Add(CheckinTimeout-time.Second)).Screen != Checkin {
		t.Fatal("check-in screen left early")
	}
	m.Tick(now.Add(CheckinTimeout))
	if v := m.View(now.Add(CheckinTimeout)); v.Screen != Home || v.HasCheckin {
		t.Fatalf("after %v: %v, code kept %v", CheckinTimeout, v.Screen, v.HasCheckin)
	}
	// Back leaves at once.
	m.StartCheckin(now)
	m.Back(now)
	if m.View(now).Screen != Home {
		t.Fatal("Back does not leave the check-in screen")
	}
}
