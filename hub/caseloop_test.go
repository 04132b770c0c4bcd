package hub

import (
	"context"
	"errors"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/fleet"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// TestBackfillCases: feedback stored before cases existed gets its case
// when the hub starts, once.
func TestBackfillCases(t *testing.T) {
	dir := t.TempDir()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	fb := protocol.Feedback{Ticket: "261126-K-SANGCHENG-01-0001", Kiosk: "k-sangcheng-01", Kind: protocol.KindComplaint,
		Category: protocol.CatFacade, Where: protocol.Where{Building: "5"}, Description: "外墙被改", SubmittedAt: time.Now().UTC()}
	if _, err := st.InsertFeedback(ctx, protocol.NewID(), fb, time.Now().UTC()); err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	for range 2 { // a second start creates nothing more
		h := startHub(t, dir, nil)
		c, err := h.store.CaseByTicket(ctx, fb.Ticket)
		if err != nil || c.Source != string(cases.SourceKiosk) || c.State != string(cases.StateReceived) {
			t.Fatalf("backfilled case %+v, %v", c, err)
		}
		left, err := h.store.FeedbackWithoutCase(ctx, 10)
		if err != nil || len(left) != 0 {
			t.Fatalf("feedback without a case after start: %d, %v", len(left), err)
		}
		if err := h.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestKioskRating: a rating from a kiosk applies once per record; one the
// case cannot take is rejected, so the kiosk stops resending it.
func TestKioskRating(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	ctx := context.Background()
	cs := h.cases
	c, _, err := cs.FromFeedback(ctx, protocol.NewID(), protocol.Feedback{Ticket: "261126-K-SANGCHENG-01-0002",
		Kiosk: "k-sangcheng-01", Kind: protocol.KindComplaint, Category: protocol.CatOther}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	rate := func(id, kiosk, ticket string) error {
		return h.kioskRating(ctx, cs, id, protocol.CaseRating{Kiosk: kiosk, Ticket: ticket,
			Rating: protocol.RatingSatisfied, At: time.Now().UTC()}, time.Now().UTC())
	}
	if err := rate("r0", "k-sangcheng-01", c.Ticket); !errors.Is(err, fleet.ErrRejected) {
		t.Fatalf("rating an unanswered case: %v, want rejected", err)
	}
	// Answer it.
	if err := h.store.UpdateCase(ctx, []string{c.ID}, func(cs []*store.CaseRecord) ([]store.CaseEvent, error) {
		cs[0].State, cs[0].Assignee = string(cases.StateAnswered), "o1"
		return []store.CaseEvent{{CaseID: c.ID, At: time.Now(), Actor: "o1", Role: "officer", Action: "answer",
			From: "in_progress", To: "answered", Note: "已整改"}}, nil
	}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, id, kiosk, ticket string
		rejected                bool
	}{
		{"unknown ticket", "r1", "k-sangcheng-01", "261126-NOPE-0001", true},
		{"another kiosk's case", "r2", "k-ruiyi-01", c.Ticket, true},
		{"applies", "r3", "k-sangcheng-01", c.Ticket, false},
		{"the same record again", "r3", "k-sangcheng-01", c.Ticket, false},
		{"a second rating", "r4", "k-sangcheng-01", c.Ticket, true},
		{"a refused record again", "r2", "k-ruiyi-01", c.Ticket, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rate(tt.id, tt.kiosk, tt.ticket)
			if tt.rejected != errors.Is(err, fleet.ErrRejected) || !tt.rejected && err != nil {
				t.Fatalf("err = %v, want rejected=%v", err, tt.rejected)
			}
		})
	}
	got, err := h.store.Case(ctx, c.ID)
	if err != nil || got.State != string(cases.StateRated) || got.Rating != string(cases.Satisfied) {
		t.Fatalf("case after rating: %s %s %v", got.State, got.Rating, err)
	}
	evs, err := h.store.CaseEvents(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	rates := 0
	for _, e := range evs {
		if e.Action == string(cases.ActionRate) {
			rates++
		}
	}
	if rates != 1 {
		t.Errorf("%d rate events, want 1", rates)
	}
	b, err := h.caseBoard(ctx, "k-sangcheng-01")
	if err != nil || len(b.Cases) != 1 || b.Cases[0].Answer != "已整改" || b.Cases[0].Rateable || b.Cases[0].Rating != protocol.RatingSatisfied {
		t.Fatalf("board %+v, %v", b, err)
	}
	b.Version = 1 // publishBoard sets it
	if err := b.Validate(); err != nil {
		t.Errorf("board invalid: %v", err)
	}
}

// TestPagesMounted: the console, the Open311 server and the admin account
// endpoint answer on the hub's HTTPS listener.
func TestPagesMounted(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	c := h.HTTPClient()
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	tests := []struct {
		path, auth string
		code       int
		location   string
	}{
		{"/login", "", http.StatusOK, ""},
		{"/cases", "", http.StatusSeeOther, "/login"},
		{"/static/pico.min.css", "", http.StatusOK, ""},
		{"/open311/v2/discovery.json", "", http.StatusOK, ""},
		{"/open311/v2/services.xml", "", http.StatusOK, ""},
		{"/api/v1/accounts", "", http.StatusUnauthorized, ""},
		{"/api/v1/accounts", "Bearer " + h.AdminToken(), http.StatusOK, ""},
	}
	for _, tt := range tests {
		t.Run(tt.path+tt.auth, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodGet, h.HTTPURL()+tt.path, nil)
			if err != nil {
				t.Fatal(err)
			}
			if tt.auth != "" {
				req.Header.Set("Authorization", tt.auth)
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tt.code || resp.Header.Get("Location") != tt.location {
				t.Errorf("%s: %d %q, want %d %q", tt.path, resp.StatusCode, resp.Header.Get("Location"), tt.code, tt.location)
			}
		})
	}
}
