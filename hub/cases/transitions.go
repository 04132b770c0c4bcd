package cases

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/shequ/shequ/hub/store"
)

// State is where a case stands.
type State string

// States. A case is open while received, dispatched, in_progress or
// returned; its time limit runs (once dispatched) only while open.
const (
	StateReceived   State = "received"    // 已受理: waiting for dispatch
	StateDispatched State = "dispatched"  // 已派单: assigned to an officer
	StateInProgress State = "in_progress" // 处置中: the officer accepted it
	StateAnswered   State = "answered"    // 已答复: waiting for the complainant's rating
	StateRated      State = "rated"       // 已评价
	StateClosed     State = "closed"      // 已办结 (also: merged into another case)
	StateReturned   State = "returned"    // 已退单: waiting for the leader's decision
)

// States lists every state.
var States = []State{StateReceived, StateDispatched, StateInProgress, StateAnswered, StateRated, StateClosed, StateReturned}

// OpenStates are the states in which a case is still being handled.
var OpenStates = []State{StateReceived, StateDispatched, StateInProgress, StateReturned}

// Action is a step of the workflow.
type Action string

// Actions.
const (
	ActionCreate       Action = "create"        // 受理 (recorded at creation; not in the table)
	ActionDispatch     Action = "dispatch"      // 派单: to an officer (Dispatch)
	ActionAccept       Action = "accept"        // 签收
	ActionReturn       Action = "return"        // 退单, with a reason
	ActionReassign     Action = "reassign"      // 改派: the leader approves a return, to another officer (Dispatch)
	ActionRejectReturn Action = "reject_return" // 驳回退单: back to the same officer
	ActionSendBack     Action = "send_back"     // the leader approves a return and sends it back to received
	ActionAnswer       Action = "answer"        // 答复
	ActionRate         Action = "rate"          // 评价 (Rate)
	ActionReopen       Action = "reopen"        // 重新处置: after a "not satisfied" rating, or by a leader
	ActionClose        Action = "close"         // 办结; from received: 不予受理, with a reason
	ActionSupervise    Action = "supervise"     // 督办: marks the case supervised
	ActionEscalate     Action = "escalate"      // overdue: supervision one level up the org tree
	ActionMerge        Action = "merge"         // 并单: closed as merged into another case (Merge)
	ActionMergeIn      Action = "merge_in"      // recorded on the case others merge into (not in the table)
)

// Transition is one rule: from a state, an action leads to a state, for
// the listed roles only.
type Transition struct {
	From   State
	Action Action
	To     State
	Roles  []string
	// NeedsNote: the action requires a note (a reason).
	NeedsNote bool
}

var (
	leaders   = []string{RoleSquadLeader, RoleDistrictAdmin, RoleBureauAdmin}
	handlers  = []string{RoleOfficer, RoleSquadLeader}
	admins    = []string{RoleDistrictAdmin, RoleBureauAdmin}
	closers   = []string{RoleSquadLeader, RoleDistrictAdmin, RoleBureauAdmin, RoleSystem}
	raters    = []string{RoleResident, RoleSquadLeader}
	reopeners = []string{RoleSystem, RoleSquadLeader, RoleDistrictAdmin, RoleBureauAdmin}
)

// Table is every allowed transition; anything else is forbidden. An
// officer may act only on cases assigned to them; every actor only within
// its scope. Squad leaders and officers hold a street node (their squad).
// A rating of not_satisfied is followed at once by a reopen by System.
var Table = []Transition{
	{StateReceived, ActionDispatch, StateDispatched, leaders, false},
	{StateReceived, ActionClose, StateClosed, leaders, true},
	{StateReceived, ActionMerge, StateClosed, leaders, false},
	{StateDispatched, ActionAccept, StateInProgress, handlers, false},
	{StateDispatched, ActionReturn, StateReturned, handlers, true},
	{StateDispatched, ActionMerge, StateClosed, leaders, false},
	{StateInProgress, ActionReturn, StateReturned, handlers, true},
	{StateInProgress, ActionAnswer, StateAnswered, handlers, true},
	{StateReturned, ActionReassign, StateDispatched, leaders, false},
	{StateReturned, ActionRejectReturn, StateDispatched, leaders, true},
	{StateReturned, ActionSendBack, StateReceived, leaders, false},
	{StateReturned, ActionMerge, StateClosed, leaders, false},
	{StateAnswered, ActionRate, StateRated, raters, false},
	{StateAnswered, ActionReopen, StateInProgress, reopeners, true},
	{StateAnswered, ActionClose, StateClosed, closers, false},
	{StateRated, ActionReopen, StateInProgress, reopeners, true},
	{StateRated, ActionClose, StateClosed, closers, false},
	{StateReceived, ActionSupervise, StateReceived, admins, false},
	{StateDispatched, ActionSupervise, StateDispatched, admins, false},
	{StateInProgress, ActionSupervise, StateInProgress, admins, false},
	{StateReturned, ActionSupervise, StateReturned, admins, false},
	{StateReceived, ActionEscalate, StateReceived, []string{RoleSystem}, false},
	{StateDispatched, ActionEscalate, StateDispatched, []string{RoleSystem}, false},
	{StateInProgress, ActionEscalate, StateInProgress, []string{RoleSystem}, false},
	{StateReturned, ActionEscalate, StateReturned, []string{RoleSystem}, false},
}

// Lookup returns the rule for an action from a state.
func Lookup(from State, a Action) (Transition, bool) {
	for _, t := range Table {
		if t.From == from && t.Action == a {
			return t, true
		}
	}
	return Transition{}, false
}

// check says whether actor may take action a on c.
func check(c *Case, a Action, actor Scope, note string) (Transition, error) {
	if actor == nil {
		return Transition{}, fmt.Errorf("%w: no actor", ErrInvalid)
	}
	t, ok := Lookup(State(c.State), a)
	if !ok {
		return t, fmt.Errorf("%w: cannot %s a case that is %s", ErrForbiddenTransition, a, c.State)
	}
	if !slices.Contains(t.Roles, actor.Role()) {
		return t, fmt.Errorf("%w: role %q may not %s a case that is %s", ErrForbiddenTransition, actor.Role(), a, c.State)
	}
	if !actor.CanSee(c.Community) {
		return t, fmt.Errorf("%w: %s cannot see community %s of case %s", ErrNotInScope, actor.ID(), c.Community, c.ID)
	}
	if actor.Role() == RoleOfficer && c.Assignee != actor.ID() {
		return t, fmt.Errorf("%w: case %s is assigned to %q, not to officer %s", ErrNotInScope, c.ID, c.Assignee, actor.ID())
	}
	if t.NeedsNote && note == "" {
		return t, fmt.Errorf("%w: %s needs a reason", ErrInvalid, a)
	}
	return t, nil
}

// Apply takes an action on a case for actor, after checking the table, the
// actor's role and scope, and records it on the timeline. Dispatch,
// reassign and rate need more than a note: use Dispatch and Rate.
func (s *Service) Apply(ctx context.Context, caseID string, a Action, actor Scope, note string) (Case, error) {
	switch a {
	case ActionDispatch, ActionReassign, ActionRate, ActionMerge:
		return Case{}, fmt.Errorf("%w: %s needs its own call (Dispatch, Rate, Merge)", ErrInvalid, a)
	}
	return s.apply(ctx, caseID, a, actor, note, "", "")
}

// Dispatch assigns a received case to an officer (派单), or a returned one to
// another officer (改派). The time limit starts at the first dispatch.
func (s *Service) Dispatch(ctx context.Context, caseID string, actor Scope, officer, note string) (Case, error) {
	if officer == "" {
		return Case{}, fmt.Errorf("%w: dispatch needs an officer", ErrInvalid)
	}
	c, err := s.cfg.Store.Case(ctx, caseID)
	if err != nil {
		return c, fmt.Errorf("cases: dispatch %s: %w", caseID, err)
	}
	a := ActionDispatch
	if State(c.State) == StateReturned {
		a = ActionReassign
	}
	return s.apply(ctx, caseID, a, actor, note, officer, "")
}

// Rate records the complainant's rating of an answered case. A rating of
// not_satisfied reopens it (in_progress again, with a new time limit).
func (s *Service) Rate(ctx context.Context, caseID string, actor Scope, r Rating, note string) (Case, error) {
	if !slices.Contains(Ratings, r) {
		return Case{}, fmt.Errorf("%w: rating %q", ErrInvalid, r)
	}
	return s.apply(ctx, caseID, ActionRate, actor, note, "", r)
}

func (s *Service) apply(ctx context.Context, id string, a Action, actor Scope, note, officer string, r Rating) (Case, error) {
	var out Case
	err := s.cfg.Store.UpdateCase(ctx, []string{id}, func(cs []*store.CaseRecord) ([]store.CaseEvent, error) {
		c := cs[0]
		now := s.now()
		evs, err := s.step(c, a, actor, note, officer, r, now)
		if err != nil {
			return nil, err
		}
		if a == ActionRate && r == NotSatisfied {
			ev, err := s.step(c, ActionReopen, System, "评价不满意，重新处置", "", "", now)
			if err != nil {
				return nil, err
			}
			evs = append(evs, ev...)
		}
		out = *c
		return evs, nil
	})
	if err != nil {
		return out, fmt.Errorf("cases: %s %s: %w", a, id, err)
	}
	s.changed(ctx, out)
	return out, nil
}

// Allowed lists the actions actor may take on c now, in the table's
// order, without their notes checked (a form asks for the note). Dispatch
// and reassign also need an officer; rate a rating.
func Allowed(c Case, actor Scope) []Action {
	var out []Action
	for _, t := range Table {
		if t.From != State(c.State) || t.Action == ActionEscalate || t.Action == ActionMerge {
			continue
		}
		if _, err := check(&c, t.Action, actor, "note"); err == nil {
			out = append(out, t.Action)
		}
	}
	return out
}

// step applies one transition to c in memory and returns its event.
func (s *Service) step(c *Case, a Action, actor Scope, note, officer string, r Rating, now time.Time) ([]store.CaseEvent, error) {
	t, err := check(c, a, actor, note)
	if err != nil {
		return nil, err
	}
	switch a {
	case ActionDispatch, ActionReassign:
		c.Assignee = officer
		c.ReturnReason = ""
		if c.DispatchedAt.IsZero() {
			c.DispatchedAt = now
			c.DueAt = s.Due(now, c.Category)
			c.EscalateAt = c.DueAt
		}
	case ActionRejectReturn:
		c.ReturnReason = ""
	case ActionReturn:
		c.ReturnReason = note
	case ActionSendBack:
		c.Assignee = ""
	case ActionAnswer:
		c.EscalateAt = time.Time{}
	case ActionRate:
		c.Rating = string(r)
	case ActionReopen:
		c.DueAt = s.Due(now, c.Category)
		c.EscalateAt = c.DueAt
	case ActionClose, ActionMerge:
		c.ClosedAt = now
		c.EscalateAt = time.Time{}
	case ActionSupervise:
		c.Supervised = true
	}
	from := c.State
	c.State = string(t.To)
	c.UpdatedAt = now
	if officer != "" {
		note = joinNote("承办人："+officer, note)
	}
	if r != "" {
		note = joinNote("评价："+ratingNames[r], note)
	}
	return []store.CaseEvent{{CaseID: c.ID, At: now, Actor: actor.ID(), Role: actor.Role(), Action: string(a),
		From: from, To: c.State, Note: note}}, nil
}

func joinNote(a, b string) string {
	if b == "" {
		return a
	}
	return a + "；" + b
}
