package hub

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/shequ/shequ/hub/photo"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/fleet"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// The case loop's side of the hub: kiosk case boards, ratings from kiosks,
// the escalation of overdue cases and the backfill of cases for feedback
// stored before cases existed.

// backfillBatch is how many feedback records without a case are turned
// into cases per query at start.
const backfillBatch = 500

// backfillCases creates the case of every stored feedback record that has
// none (records stored before cases existed, or whose case creation
// failed after the record was committed). It returns how many it created.
func (h *Hub) backfillCases(ctx context.Context, cs *cases.Service) (int, error) {
	n := 0
	for {
		fbs, err := h.store.FeedbackWithoutCase(ctx, backfillBatch)
		if err != nil {
			return n, fmt.Errorf("backfill cases: %w", err)
		}
		if len(fbs) == 0 {
			return n, nil
		}
		for _, f := range fbs {
			if _, _, err := cs.FromFeedback(ctx, f.ID, f.Feedback, f.ReceivedAt); err != nil {
				// A record whose kiosk left the org tree cannot get a case;
				// stop rather than loop over it forever.
				return n, fmt.Errorf("backfill the case of feedback %s: %w", f.ID, err)
			}
			n++
		}
	}
}

// caseChanged is called after every committed change of a case: the board
// of the kiosk it was filed at is published again.
func (h *Hub) caseChanged(_ context.Context, c cases.Case) {
	if c.Kiosk != "" {
		h.markBoards(c.Kiosk)
	}
}

// markBoards has the board loop publish the kiosks' case boards again.
func (h *Hub) markBoards(kiosks ...string) {
	h.boardMu.Lock()
	for _, k := range kiosks {
		h.boardDirty[k] = true
	}
	h.boardMu.Unlock()
	select {
	case h.boardCh <- struct{}{}:
	default: // a publish is already pending
	}
}

// boardLoop publishes the boards of kiosks whose cases changed, coalescing
// bursts of changes into one publish per kiosk.
func (h *Hub) boardLoop(ctx context.Context) {
	defer h.wg.Done()
	for {
		select {
		case <-ctx.Done():
			return
		case <-h.boardCh:
		}
		h.boardMu.Lock()
		dirty := h.boardDirty
		h.boardDirty = make(map[string]bool)
		h.boardMu.Unlock()
		for k := range dirty {
			if err := h.publishBoard(ctx, k); err != nil {
				h.log.Error("publishing a case board failed; retrying on the next change or reconnect", "kiosk", k, "err", err)
			}
		}
	}
}

// publishAllBoards has every kiosk's case board published again by the
// board loop (at start, and after a reconnection to the broker, which may
// have lost retained messages), off the caller's path.
func (h *Hub) publishAllBoards() { h.markBoards(h.kioskIDs()...) }

// caseBoard builds the public board of a kiosk: its most recently updated
// cases with state and answer, no personal data.
func (h *Hub) caseBoard(ctx context.Context, kiosk string) (protocol.CaseBoard, error) {
	recs, err := h.store.KioskCases(ctx, kiosk, protocol.MaxBoardCases)
	if err != nil {
		return protocol.CaseBoard{}, err
	}
	b := protocol.CaseBoard{Kiosk: kiosk, Cases: []protocol.CaseStatus{}}
	for _, c := range recs {
		st := protocol.CaseStatus{Ticket: c.Ticket, State: protocol.CaseState(c.State),
			Category: protocol.FeedbackCategory(c.Category), Kind: protocol.FeedbackKind(c.Kind),
			Rating: protocol.Rating(c.Rating), Rateable: c.State == string(cases.StateAnswered), Updated: c.UpdatedAt}
		if c.MergedInto != "" {
			// A merged case is answered through the case it joined.
			if t, err := h.store.Case(ctx, c.MergedInto); err == nil {
				st.State, st.Rateable = protocol.CaseState(t.State), false
				c.ID = t.ID
			}
		}
		switch cases.State(st.State) {
		case cases.StateAnswered, cases.StateRated, cases.StateClosed:
			a, err := h.store.LatestAnswer(ctx, c.ID)
			if err != nil {
				return b, err
			}
			st.Answer, st.AnsweredAt = truncateRunes(a.Text, protocol.MaxAnswer), a.At
		}
		b.Cases = append(b.Cases, st)
	}
	return b, nil
}

func truncateRunes(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n])
}

func (h *Hub) publishBoard(ctx context.Context, kiosk string) error {
	b, err := h.caseBoard(ctx, kiosk)
	if err != nil {
		return err
	}
	if b.Version, err = h.store.NextBoardVersion(ctx, kiosk, h.cfg.Now()); err != nil {
		return err
	}
	return h.fleet.PublishCaseBoard(ctx, b)
}

// kioskResident is the complainant acting through a kiosk: it may rate the
// cases of its kiosk's community.
type kioskResident struct{ community, kiosk string }

func (r kioskResident) CanSee(node string) bool { return node == r.community }
func (r kioskResident) Role() string            { return cases.RoleResident }
func (r kioskResident) ID() string              { return "kiosk:" + r.kiosk }

// kioskRating applies a resident's rating sent from a kiosk, once per
// record: a record seen before is acknowledged again with no change; a
// rating the case cannot take (not answered, not this kiosk's case) is
// rejected, so the kiosk stops resending it.
func (h *Hub) kioskRating(ctx context.Context, cs *cases.Service, id string, r protocol.CaseRating, at time.Time) error {
	if outcome, seen, err := h.store.KioskRatingOutcome(ctx, id); err != nil {
		return err
	} else if seen {
		if outcome != "applied" {
			return fmt.Errorf("%w: %s", fleet.ErrRejected, outcome)
		}
		return nil
	}
	refuse := func(reason string) error {
		if err := h.store.RecordKioskRating(ctx, id, r.Kiosk, r.Ticket, string(r.Rating), reason, at); err != nil {
			return err
		}
		return fmt.Errorf("%w: %s", fleet.ErrRejected, reason)
	}
	c, err := h.store.CaseByTicket(ctx, r.Ticket)
	if errors.Is(err, store.ErrNotFound) {
		return refuse("no case has this ticket")
	}
	if err != nil {
		return err
	}
	if c.Kiosk != r.Kiosk {
		return refuse("the case was not filed at this kiosk")
	}
	_, err = cs.Rate(ctx, c.ID, kioskResident{community: c.Community, kiosk: r.Kiosk}, cases.Rating(r.Rating), "终端评价")
	switch {
	case errors.Is(err, cases.ErrForbiddenTransition), errors.Is(err, cases.ErrInvalid), errors.Is(err, cases.ErrNotInScope):
		h.caseChanged(ctx, c) // the kiosk's board may be stale: send it again
		return refuse(err.Error())
	case err != nil:
		return err
	}
	return h.store.RecordKioskRating(ctx, id, r.Kiosk, r.Ticket, string(r.Rating), "applied", at)
}

// escalate raises the supervision of overdue cases; called every tick.
func (h *Hub) escalate(ctx context.Context, cs *cases.Service) {
	n, err := cs.Escalate(ctx, h.cfg.Now())
	if err != nil {
		h.log.Error("escalating overdue cases failed; retrying on the next tick", "err", err)
	}
	if n > 0 {
		h.log.Info("escalated overdue cases", "steps", n)
	}
}

// deviceKey returns the public key of a kiosk's enrolled device.
func (h *Hub) deviceKey(ctx context.Context, kiosk string) (ed25519.PublicKey, error) {
	d, err := h.store.EnrolledDevice(ctx, kiosk)
	if err != nil {
		return nil, err
	}
	pub, err := protocol.DecodeKey(d.PublicKey)
	if err != nil {
		return nil, fmt.Errorf("device %s of %s: %w", d.ID, kiosk, err)
	}
	return pub, nil
}

// photoSlots bounds the photos normalised at once: decoding a 40 MP photo
// takes up to ~300 MB.
var photoSlots = make(chan struct{}, 2)

// normalizePhoto makes an uploaded photo safe to store (hub/photo), at
// most two at a time.
func normalizePhoto(r io.Reader) (store.Photo, error) {
	photoSlots <- struct{}{}
	defer func() { <-photoSlots }()
	p, err := photo.Normalize(r, photo.Config{})
	if err != nil {
		return store.Photo{}, err
	}
	return store.Photo{PhotoRef: store.PhotoRef{SHA256: p.SHA256, Width: p.Width, Height: p.Height}, JPEG: p.JPEG}, nil
}
