package cases

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/shequ/shequ/hub/store"
)

// MergeCandidates returns the other open cases that could be merged into
// the case: same community, category and building, created within
// MergeWindow of it, in a state that may be merged.
func (s *Service) MergeCandidates(ctx context.Context, caseID string) ([]Case, error) {
	c, err := s.cfg.Store.Case(ctx, caseID)
	if err != nil {
		return nil, fmt.Errorf("cases: merge candidates of %s: %w", caseID, err)
	}
	w := s.cfg.MergeWindow
	cs, err := s.cfg.Store.MergeCandidates(ctx, c.Community, c.Category, c.Building,
		c.CreatedAt.Add(-w), c.CreatedAt.Add(w+1))
	if err != nil {
		return nil, fmt.Errorf("cases: merge candidates of %s: %w", caseID, err)
	}
	return slices.DeleteFunc(cs, func(o Case) bool { return o.ID == c.ID }), nil
}

// Merge merges the others into the target (并单): each other case is
// closed as merged and points to the target, which keeps every complainant.
// All must share community, category and building (a non-empty one), lie
// within MergeWindow of the target, and the others must be in a state the
// table lets actor merge; the target must be open. It returns the target.
func (s *Service) Merge(ctx context.Context, targetID string, others []string, actor Scope, note string) (Case, error) {
	if len(others) == 0 {
		return Case{}, fmt.Errorf("%w: nothing to merge into %s", ErrInvalid, targetID)
	}
	ids := append([]string{targetID}, others...)
	sorted := slices.Clone(ids)
	slices.Sort(sorted)
	if len(slices.Compact(sorted)) != len(ids) {
		return Case{}, fmt.Errorf("%w: a case is named twice", ErrInvalid)
	}
	var out Case
	var touched []Case
	err := s.cfg.Store.UpdateCase(ctx, ids, func(cs []*store.CaseRecord) ([]store.CaseEvent, error) {
		t := cs[0]
		now := s.now()
		if !slices.Contains(OpenStates, State(t.State)) {
			return nil, fmt.Errorf("%w: target %s is %s", ErrNotMergeable, t.ID, t.State)
		}
		if actor != nil && !actor.CanSee(t.Community) {
			return nil, fmt.Errorf("%w: target %s", ErrNotInScope, t.ID)
		}
		if t.Building == "" {
			return nil, fmt.Errorf("%w: target %s has no building", ErrNotMergeable, t.ID)
		}
		var evs []store.CaseEvent
		for _, o := range cs[1:] {
			gap := o.CreatedAt.Sub(t.CreatedAt)
			switch {
			case o.Community != t.Community || o.Category != t.Category || o.Building != t.Building:
				return nil, fmt.Errorf("%w: %s differs from %s in community, category or building", ErrNotMergeable, o.ID, t.ID)
			case gap > s.cfg.MergeWindow || -gap > s.cfg.MergeWindow:
				return nil, fmt.Errorf("%w: %s and %s were created %v apart, window %v", ErrNotMergeable, o.ID, t.ID, gap.Abs(), s.cfg.MergeWindow)
			}
			ev, err := s.step(o, ActionMerge, actor, joinNote("并入 "+t.Ticket, note), "", "", now)
			if err != nil {
				return nil, err
			}
			o.MergedInto = t.ID
			evs = append(evs, ev...)
		}
		tickets := make([]string, len(cs)-1)
		for i, o := range cs[1:] {
			tickets[i] = o.Ticket
		}
		t.UpdatedAt = now
		evs = append(evs, store.CaseEvent{CaseID: t.ID, At: now, Actor: actor.ID(), Role: actor.Role(),
			Action: string(ActionMergeIn), From: t.State, To: t.State,
			Note: joinNote("并入 "+strings.Join(tickets, "、"), note)})
		out = *t
		touched = touched[:0]
		for _, o := range cs[1:] {
			touched = append(touched, *o)
		}
		return evs, nil
	})
	if err != nil {
		return out, fmt.Errorf("cases: merge into %s: %w", targetID, err)
	}
	s.changed(ctx, append([]Case{out}, touched...)...)
	return out, nil
}
