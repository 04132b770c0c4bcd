package cases

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// actor is a Scope over the demo org tree: it sees its node and everything
// under it.
type actor struct {
	id, role, node string
	tree           *orgtree.Tree
}

func (a actor) ID() string   { return a.id }
func (a actor) Role() string { return a.role }
func (a actor) CanSee(node string) bool {
	for n := a.tree.Node(node); n != nil; n = n.Parent() {
		if n.ID == a.node {
			return true
		}
	}
	return false
}

// clock is a controllable clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.t = t }

// monday 09:00 in Shanghai.
var monday = time.Date(2026, 11, 2, 9, 0, 0, 0, shanghai)

type fixture struct {
	svc   *Service
	st    *store.SQLite
	tree  *orgtree.Tree
	clock *clock
}

func newFixture(t testing.TB, cfg Config) *fixture {
	t.Helper()
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	clk := &clock{t: monday}
	cfg.Store, cfg.Tree, cfg.Now = st, tree, clk.Now
	svc, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return &fixture{svc: svc, st: st, tree: tree, clock: clk}
}

func (f *fixture) actor(id, role, node string) actor {
	return actor{id: id, role: role, node: node, tree: f.tree}
}

var seq int

// create makes a case in sangcheng at building 5号.
func (f *fixture) create(t testing.TB, cat protocol.FeedbackCategory) Case {
	t.Helper()
	seq++
	c, dup, err := f.svc.Create(context.Background(), NewCase{
		Source: SourceHotline, SourceRef: fmt.Sprintf("h-%d", seq), Community: "sangcheng",
		Kind: protocol.KindComplaint, Category: cat, Where: protocol.Where{Building: "5号"}, Phone: "13812348000",
	}, System)
	if err != nil || dup {
		t.Fatalf("Create: %v dup=%v", err, dup)
	}
	return c
}

// force puts a case into a state, assigned to officer-1.
func (f *fixture) force(t testing.TB, id string, s State) {
	t.Helper()
	err := f.st.UpdateCase(context.Background(), []string{id}, func(cs []*store.CaseRecord) ([]store.CaseEvent, error) {
		cs[0].State, cs[0].Assignee = string(s), "officer-1"
		return nil, nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

var allRoles = []string{RoleBureauAdmin, RoleDistrictAdmin, RoleSquadLeader, RoleOfficer, RolePartner, RoleTechnician, RoleResident, RoleSystem}

var tableActions = []Action{ActionDispatch, ActionAccept, ActionReturn, ActionReassign, ActionRejectReturn, ActionSendBack,
	ActionAnswer, ActionRate, ActionReopen, ActionClose, ActionSupervise, ActionEscalate, ActionMerge}

// TestTransitions tries every action from every state by every role and
// checks it is allowed exactly when the table says so.
func TestTransitions(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	allowed := 0
	for _, from := range States {
		for _, a := range tableActions {
			for _, role := range allRoles {
				t.Run(fmt.Sprintf("%s/%s/%s", from, a, role), func(t *testing.T) {
					c := f.create(t, protocol.CatFacade)
					f.force(t, c.ID, from)
					who := f.actor("officer-1", role, "huangpu")
					if role == RoleSystem {
						who = actor{id: "system", role: RoleSystem, node: "shanghai", tree: f.tree}
					}
					var err error
					switch a {
					case ActionMerge:
						target := f.create(t, protocol.CatFacade)
						_, err = f.svc.Merge(ctx, target.ID, []string{c.ID}, who, "")
					default:
						_, err = f.svc.apply(ctx, c.ID, a, who, "原因", "officer-2", Satisfied)
					}
					rule, ok := Lookup(from, a)
					want := ok && slices.Contains(rule.Roles, role)
					got, gerr := f.svc.Case(ctx, c.ID)
					if gerr != nil {
						t.Fatal(gerr)
					}
					if !want {
						if !errors.Is(err, ErrForbiddenTransition) {
							t.Fatalf("err = %v, want ErrForbiddenTransition", err)
						}
						if got.State != string(from) {
							t.Errorf("state %s after a forbidden transition, want %s", got.State, from)
						}
						return
					}
					allowed++
					if err != nil {
						t.Fatalf("err = %v, want allowed", err)
					}
					if got.State != string(rule.To) {
						t.Errorf("state %s, want %s", got.State, rule.To)
					}
					evs, err := f.st.CaseEvents(ctx, c.ID)
					if err != nil {
						t.Fatal(err)
					}
					last := evs[len(evs)-1]
					if last.Action != string(a) || last.From != string(from) || last.To != string(rule.To) || last.Role != role || last.At.IsZero() {
						t.Errorf("last event %+v, want %s %s→%s by %s", last, a, from, rule.To, role)
					}
				})
			}
		}
	}
	if allowed == 0 {
		t.Error("no transition was allowed")
	}
}

func TestApplyChecks(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	tests := []struct {
		name  string
		state State
		a     Action
		who   actor
		note  string
		want  error
	}{
		{"leader of another community", StateReceived, ActionClose, f.actor("l", RoleSquadLeader, "ruiyi"), "x", ErrNotInScope},
		{"officer not assigned", StateDispatched, ActionAccept, f.actor("officer-9", RoleOfficer, "wuliqiao"), "", ErrNotInScope},
		{"assigned officer", StateDispatched, ActionAccept, f.actor("officer-1", RoleOfficer, "wuliqiao"), "", nil},
		{"return without reason", StateDispatched, ActionReturn, f.actor("officer-1", RoleOfficer, "wuliqiao"), "", ErrInvalid},
		{"return with reason", StateDispatched, ActionReturn, f.actor("officer-1", RoleOfficer, "wuliqiao"), "不属本辖区", nil},
		{"answer from received", StateReceived, ActionAnswer, f.actor("officer-1", RoleOfficer, "wuliqiao"), "x", ErrForbiddenTransition},
		{"partner closes", StateAnswered, ActionClose, f.actor("p", RolePartner, "sangcheng"), "", ErrForbiddenTransition},
		{"dispatch through Apply", StateReceived, ActionDispatch, f.actor("l", RoleSquadLeader, "wuliqiao"), "", ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.create(t, protocol.CatOther)
			f.force(t, c.ID, tt.state)
			_, err := f.svc.Apply(ctx, c.ID, tt.a, tt.who, tt.note)
			if !errors.Is(err, tt.want) || (tt.want == nil) != (err == nil) {
				t.Errorf("Apply = %v, want %v", err, tt.want)
			}
		})
	}
	if _, err := f.svc.Apply(ctx, "nope", ActionClose, System, "x"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Apply(nope) = %v, want ErrNotFound", err)
	}
}

// TestReturnFlow walks dispatch → return → reassign (the time limit is kept)
// and return → send back → dispatch.
func TestReturnFlow(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	leader := f.actor("leader", RoleSquadLeader, "wuliqiao")
	c := f.create(t, protocol.CatOther)
	c, err := f.svc.Dispatch(ctx, c.ID, leader, "officer-1", "")
	if err != nil {
		t.Fatal(err)
	}
	due := c.DueAt
	f.clock.Set(monday.Add(2 * time.Hour))
	if c, err = f.svc.Apply(ctx, c.ID, ActionReturn, f.actor("officer-1", RoleOfficer, "wuliqiao"), "非本人片区"); err != nil {
		t.Fatal(err)
	}
	if c.State != string(StateReturned) || c.ReturnReason != "非本人片区" {
		t.Fatalf("after return: %s %q", c.State, c.ReturnReason)
	}
	if c, err = f.svc.Dispatch(ctx, c.ID, leader, "officer-2", "改派"); err != nil {
		t.Fatal(err)
	}
	if c.State != string(StateDispatched) || c.Assignee != "officer-2" || !c.DueAt.Equal(due) || c.ReturnReason != "" {
		t.Fatalf("after reassign: %s %s due %v (want %v) reason %q", c.State, c.Assignee, c.DueAt, due, c.ReturnReason)
	}
	evs, err := f.st.CaseEvents(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range evs {
		actions = append(actions, e.Action)
	}
	if want := []string{"create", "dispatch", "return", "reassign"}; !slices.Equal(actions, want) {
		t.Errorf("timeline %v, want %v", actions, want)
	}
}

func TestDue(t *testing.T) {
	friday := time.Date(2026, 11, 6, 10, 0, 0, 0, shanghai)
	holiday := time.Date(2026, 11, 10, 0, 0, 0, 0, shanghai) // a Tuesday, say
	tests := []struct {
		name string
		cfg  Config
		at   time.Time
		cat  protocol.FeedbackCategory
		want time.Time
	}{
		{"other, Monday", Config{}, monday, protocol.CatFacade, monday.AddDate(0, 0, 3)},
		{"other, Friday skips the weekend", Config{}, friday, protocol.CatOther, time.Date(2026, 11, 11, 10, 0, 0, 0, shanghai)},
		{"illegal construction, Friday", Config{}, friday, protocol.CatIllegalConstruction, time.Date(2026, 11, 13, 10, 0, 0, 0, shanghai)},
		{"load bearing", Config{}, monday, protocol.CatLoadBearing, monday.AddDate(0, 0, 2)},
		{"Saturday counts from Monday", Config{}, friday.AddDate(0, 0, 1), protocol.CatFacade, time.Date(2026, 11, 11, 10, 0, 0, 0, shanghai)},
		{"configured limit", Config{TimeLimits: map[protocol.FeedbackCategory]int{protocol.CatFacade: 1}}, friday, protocol.CatFacade, time.Date(2026, 11, 9, 10, 0, 0, 0, shanghai)},
		{"holiday calendar", Config{WorkingDay: func(t time.Time) bool {
			return t.Weekday() != time.Saturday && t.Weekday() != time.Sunday && t.YearDay() != holiday.YearDay()
		}}, friday, protocol.CatOther, time.Date(2026, 11, 12, 10, 0, 0, 0, shanghai)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, tt.cfg)
			if got := f.svc.Due(tt.at, string(tt.cat)); !got.Equal(tt.want) {
				t.Errorf("Due = %v, want %v", got.In(shanghai), tt.want)
			}
		})
	}
	if _, err := New(Config{Store: &store.SQLite{}, Tree: &orgtree.Tree{}, TimeLimits: map[protocol.FeedbackCategory]int{protocol.CatOther: 0}}); err == nil {
		t.Error("New accepted a time limit of 0 days")
	}
}

func TestDispatchLimit(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	leader := f.actor("leader", RoleSquadLeader, "wuliqiao")
	c := f.create(t, protocol.CatFacade) // Monday 09:00: to be dispatched by Tuesday 09:00
	tuesday := monday.AddDate(0, 0, 1)
	if !c.DueAt.Equal(tuesday) || !c.EscalateAt.Equal(tuesday) {
		t.Fatalf("received case due %v escalate %v, want %v", c.DueAt, c.EscalateAt, tuesday)
	}
	if got, err := f.svc.Overdue(ctx, tuesday.Add(time.Minute), store.CaseFilter{}); err != nil || len(got) != 1 || got[0].ID != c.ID {
		t.Fatalf("Overdue after the dispatch limit = %d cases %v", len(got), err)
	}
	f.clock.Set(tuesday)
	if n, err := f.svc.Escalate(ctx, tuesday); err != nil || n != 1 {
		t.Fatalf("Escalate = %d %v, want 1", n, err)
	}
	later := tuesday.Add(3 * time.Hour)
	f.clock.Set(later)
	c, err := f.svc.Dispatch(ctx, c.ID, leader, "officer-1", "")
	if err != nil {
		t.Fatal(err)
	}
	if !c.DueAt.Equal(f.svc.Due(later, c.Category)) || c.SupervisionLevel != string(protocol.LevelStreet) {
		t.Errorf("after a late dispatch: due %v (want %v), level %q", c.DueAt, f.svc.Due(later, c.Category), c.SupervisionLevel)
	}
	// A Friday report is due for dispatch on Monday.
	f.clock.Set(monday.AddDate(0, 0, 4))
	fri := f.create(t, protocol.CatOther)
	if want := monday.AddDate(0, 0, 7); !fri.DueAt.Equal(want) {
		t.Errorf("Friday's case due %v, want Monday %v", fri.DueAt, want)
	}
}

func TestOverdueAndEscalation(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	leader := f.actor("leader", RoleSquadLeader, "wuliqiao")
	c := f.create(t, protocol.CatFacade) // 3 working days: due Thursday 09:00
	done := f.create(t, protocol.CatFacade)
	idle := f.create(t, protocol.CatFacade) // refused at once (不予受理): no longer has a deadline
	if _, err := f.svc.Apply(ctx, idle.ID, ActionClose, leader, "重复反映"); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{c.ID, done.ID} {
		if _, err := f.svc.Dispatch(ctx, id, leader, "officer-1", ""); err != nil {
			t.Fatal(err)
		}
	}
	officer := f.actor("officer-1", RoleOfficer, "wuliqiao")
	if _, err := f.svc.Apply(ctx, done.ID, ActionAccept, officer, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Apply(ctx, done.ID, ActionAnswer, officer, "已拆除"); err != nil {
		t.Fatal(err)
	}
	due := monday.AddDate(0, 0, 3)
	ids := func(cs []Case) []string {
		var out []string
		for _, c := range cs {
			out = append(out, c.ID)
		}
		return out
	}
	if got, err := f.svc.DueSoon(ctx, due.Add(-time.Hour), 2*time.Hour, store.CaseFilter{}); err != nil || !slices.Equal(ids(got), []string{c.ID}) {
		t.Errorf("DueSoon = %v %v, want [%s]", ids(got), err, c.ID)
	}
	if got, err := f.svc.Overdue(ctx, due.Add(-time.Minute), store.CaseFilter{}); err != nil || len(got) != 0 {
		t.Errorf("Overdue before the deadline = %v %v", ids(got), err)
	}
	if got, err := f.svc.Overdue(ctx, due.Add(time.Minute), store.CaseFilter{}); err != nil || !slices.Equal(ids(got), []string{c.ID}) {
		t.Errorf("Overdue = %v %v, want [%s]", ids(got), err, c.ID)
	}
	steps := []struct {
		at    time.Time
		n     int
		level protocol.Level
	}{
		{due.Add(-time.Second), 0, ""},
		{due, 1, protocol.LevelStreet},
		{due.Add(time.Hour), 0, protocol.LevelStreet},
		{due.Add(DefaultEscalateEvery), 1, protocol.LevelDistrict},
		{due.Add(2 * DefaultEscalateEvery), 1, protocol.LevelCity},
		{due.Add(20 * DefaultEscalateEvery), 0, protocol.LevelCity},
	}
	for _, s := range steps {
		f.clock.Set(s.at)
		n, err := f.svc.Escalate(ctx, s.at)
		if err != nil || n != s.n {
			t.Fatalf("Escalate(%v) = %d %v, want %d", s.at, n, err, s.n)
		}
		got, err := f.svc.Case(ctx, c.ID)
		if err != nil {
			t.Fatal(err)
		}
		if got.SupervisionLevel != string(s.level) || got.Supervised != (s.level != "") {
			t.Fatalf("at %v: level %q supervised %v, want %q", s.at, got.SupervisionLevel, got.Supervised, s.level)
		}
	}
	evs, err := f.st.CaseEvents(ctx, c.ID)
	if err != nil {
		t.Fatal(err)
	}
	var notes []string
	for _, e := range evs {
		if e.Action == string(ActionEscalate) {
			notes = append(notes, e.Note)
		}
	}
	if want := []string{"超期督办：street wuliqiao", "超期督办：district huangpu", "超期督办：city shanghai"}; !slices.Equal(notes, want) {
		t.Errorf("escalation events %q, want %q", notes, want)
	}
	// A call made late takes every step due: 2 days overdue is city level.
	lateCase := f.create(t, protocol.CatFacade)
	f.clock.Set(monday)
	if _, err := f.svc.Dispatch(ctx, lateCase.ID, leader, "officer-1", ""); err != nil {
		t.Fatal(err)
	}
	if n, err := f.svc.Escalate(ctx, due.Add(2*DefaultEscalateEvery+time.Minute)); err != nil || n != 3 {
		t.Errorf("late Escalate = %d %v, want 3 steps", n, err)
	}
	if got, err := f.svc.Case(ctx, lateCase.ID); err != nil || got.SupervisionLevel != string(protocol.LevelCity) {
		t.Errorf("late case level %q %v, want city", got.SupervisionLevel, err)
	}
	for _, id := range []string{done.ID, idle.ID} {
		if got, err := f.svc.Case(ctx, id); err != nil || got.Supervised {
			t.Errorf("case %s supervised=%v %v, want not escalated", id, got.Supervised, err)
		}
	}
}

func TestRating(t *testing.T) {
	tests := []struct {
		name      string
		rating    Rating
		wantState State
		wantTail  []string
	}{
		{"satisfied", Satisfied, StateRated, []string{"answer", "rate"}},
		{"basically satisfied", BasicallySatisfied, StateRated, []string{"answer", "rate"}},
		{"not satisfied reopens", NotSatisfied, StateInProgress, []string{"answer", "rate", "reopen"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, Config{})
			ctx := context.Background()
			c := f.create(t, protocol.CatOther)
			if _, err := f.svc.Dispatch(ctx, c.ID, f.actor("l", RoleSquadLeader, "wuliqiao"), "officer-1", ""); err != nil {
				t.Fatal(err)
			}
			officer := f.actor("officer-1", RoleOfficer, "wuliqiao")
			if _, err := f.svc.Apply(ctx, c.ID, ActionAccept, officer, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := f.svc.Apply(ctx, c.ID, ActionAnswer, officer, "已处理"); err != nil {
				t.Fatal(err)
			}
			later := monday.AddDate(0, 0, 7)
			f.clock.Set(later)
			got, err := f.svc.Rate(ctx, c.ID, f.actor("resident", RoleResident, "sangcheng"), tt.rating, "")
			if err != nil {
				t.Fatal(err)
			}
			if got.State != string(tt.wantState) || got.Rating != string(tt.rating) {
				t.Errorf("state %s rating %s, want %s %s", got.State, got.Rating, tt.wantState, tt.rating)
			}
			if tt.rating == NotSatisfied && !got.DueAt.Equal(f.svc.Due(later, c.Category)) {
				t.Errorf("reopened case due %v, want a new limit from the rating", got.DueAt)
			}
			evs, err := f.st.CaseEvents(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			var actions []string
			for _, e := range evs[len(evs)-len(tt.wantTail):] {
				actions = append(actions, e.Action)
			}
			if !slices.Equal(actions, tt.wantTail) {
				t.Errorf("timeline ends %v, want %v", actions, tt.wantTail)
			}
		})
	}
	f := newFixture(t, Config{})
	if _, err := f.svc.Rate(context.Background(), "x", System, "great", ""); !errors.Is(err, ErrInvalid) {
		t.Errorf("Rate(great) = %v, want ErrInvalid", err)
	}
}

func TestMerge(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	leader := f.actor("leader", RoleSquadLeader, "wuliqiao")
	target := f.create(t, protocol.CatFacade)
	a := f.create(t, protocol.CatFacade)
	f.clock.Set(monday.Add(6 * 24 * time.Hour))
	b := f.create(t, protocol.CatFacade)
	otherCat := f.create(t, protocol.CatOther)
	f.clock.Set(monday.Add(8 * 24 * time.Hour))
	late := f.create(t, protocol.CatFacade)
	cands, err := f.svc.MergeCandidates(ctx, target.ID)
	if err != nil {
		t.Fatal(err)
	}
	var cids []string
	for _, c := range cands {
		cids = append(cids, c.ID)
	}
	if want := []string{a.ID, b.ID}; !slices.Equal(cids, want) {
		t.Errorf("candidates %v, want %v", cids, want)
	}
	bad := []struct {
		name   string
		others []string
		who    Scope
		want   error
	}{
		{"other category", []string{otherCat.ID}, leader, ErrNotMergeable},
		{"outside the window", []string{late.ID}, leader, ErrNotMergeable},
		{"self", []string{target.ID}, leader, ErrInvalid},
		{"nothing", nil, leader, ErrInvalid},
		{"officer", []string{a.ID}, f.actor("officer-1", RoleOfficer, "wuliqiao"), ErrForbiddenTransition},
		{"out of scope", []string{a.ID}, f.actor("l2", RoleSquadLeader, "ruiyi"), ErrNotInScope},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := f.svc.Merge(ctx, target.ID, tt.others, tt.who, ""); !errors.Is(err, tt.want) {
				t.Errorf("Merge = %v, want %v", err, tt.want)
			}
		})
	}
	got, err := f.svc.Merge(ctx, target.ID, []string{a.ID, b.ID}, leader, "同一违建")
	if err != nil {
		t.Fatal(err)
	}
	if got.State != string(StateReceived) {
		t.Errorf("target state %s", got.State)
	}
	for _, id := range []string{a.ID, b.ID} {
		c, err := f.svc.Case(ctx, id)
		if err != nil || c.State != string(StateClosed) || c.MergedInto != target.ID || c.ClosedAt.IsZero() {
			t.Errorf("merged case %s: %s into %q %v", id, c.State, c.MergedInto, err)
		}
	}
	cs, err := f.st.CaseComplainants(ctx, target.ID)
	if err != nil || len(cs) != 3 {
		t.Fatalf("target complainants %+v %v, want 3", cs, err)
	}
	if _, err := f.svc.Merge(ctx, target.ID, []string{a.ID}, leader, ""); !errors.Is(err, ErrForbiddenTransition) {
		t.Errorf("merging a closed case again = %v, want ErrForbiddenTransition", err)
	}
}

func TestView(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	c := f.create(t, protocol.CatFacade)
	if _, err := f.svc.Dispatch(ctx, c.ID, f.actor("l", RoleSquadLeader, "wuliqiao"), "officer-1", ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		who    Scope
		masked bool
	}{
		{"assigned officer", f.actor("officer-1", RoleOfficer, "wuliqiao"), false},
		{"other officer", f.actor("officer-2", RoleOfficer, "wuliqiao"), true},
		{"squad leader", f.actor("l", RoleSquadLeader, "wuliqiao"), false},
		{"district admin", f.actor("d", RoleDistrictAdmin, "huangpu"), false},
		{"bureau admin", f.actor("b", RoleBureauAdmin, "shanghai"), false},
		{"partner of the community", f.actor("p", RolePartner, "sangcheng"), true},
		{"technician", f.actor("t", RoleTechnician, "shanghai"), true},
		{"system", System, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := f.svc.Detail(ctx, c.ID, tt.who)
			if err != nil {
				t.Fatal(err)
			}
			want := "13812348000"
			if tt.masked {
				want = "138****8000"
			}
			if d.Case.Phone != want || d.Complainants[0].Phone != want || d.PhoneMasked != tt.masked {
				t.Errorf("phone %q, complainant %q, masked %v; want %q", d.Case.Phone, d.Complainants[0].Phone, d.PhoneMasked, want)
			}
			if len(d.Timeline) != 2 {
				t.Errorf("timeline of %d events, want 2", len(d.Timeline))
			}
		})
	}
	if _, err := f.svc.Detail(ctx, c.ID, f.actor("p", RolePartner, "ruiyi")); !errors.Is(err, ErrNotInScope) {
		t.Errorf("Detail for ruiyi partner = %v, want ErrNotInScope", err)
	}
	for in, want := range map[string]string{"13800138000": "138****8000", "": "", "12345": "****", "021-63010001": "021****0001"} {
		if got := MaskPhone(in); got != want {
			t.Errorf("MaskPhone(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestFromFeedback(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	fb := protocol.Feedback{Ticket: "261102-K-0001", Kiosk: "k-ruiyi-01", Kind: protocol.KindComplaint,
		Category: protocol.CatIllegalRenting, Where: protocol.Where{Building: "3号"}, Phone: "13900001111", SubmittedAt: monday}
	c1, dup, err := f.svc.FromFeedback(ctx, "rec-1", fb, monday)
	if err != nil || dup {
		t.Fatalf("first: %v dup=%v", err, dup)
	}
	if c1.Ticket != fb.Ticket || c1.Community != "ruiyi" || c1.Street != "wuliqiao" || c1.District != "huangpu" ||
		c1.Source != string(SourceKiosk) || c1.State != string(StateReceived) {
		t.Errorf("case %+v", c1)
	}
	c2, dup, err := f.svc.FromFeedback(ctx, "rec-1", fb, monday.Add(time.Minute))
	if err != nil || !dup || c2.ID != c1.ID {
		t.Errorf("again: %s dup=%v %v, want %s and duplicate", c2.ID, dup, err, c1.ID)
	}
	all, err := f.svc.List(ctx, store.CaseFilter{})
	if err != nil || len(all) != 1 {
		t.Errorf("List = %d cases %v, want 1", len(all), err)
	}
	bad := []struct {
		name string
		n    NewCase
	}{
		{"unknown kiosk", NewCase{Source: SourceKiosk, SourceRef: "r", Kiosk: "k-nowhere", Kind: protocol.KindHelp, Category: protocol.CatOther}},
		{"not a community", NewCase{Source: SourcePatrol, SourceRef: "r", Community: "wuliqiao", Kind: protocol.KindHelp, Category: protocol.CatOther}},
		{"unknown source", NewCase{Source: "fax", SourceRef: "r", Community: "ruiyi", Kind: protocol.KindHelp, Category: protocol.CatOther}},
		{"no reference", NewCase{Source: SourcePatrol, Community: "ruiyi", Kind: protocol.KindHelp, Category: protocol.CatOther}},
		{"unknown category", NewCase{Source: SourcePatrol, SourceRef: "r", Community: "ruiyi", Kind: protocol.KindHelp, Category: "noise"}},
	}
	for _, tt := range bad {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := f.svc.Create(ctx, tt.n, System); !errors.Is(err, ErrInvalid) {
				t.Errorf("Create = %v, want ErrInvalid", err)
			}
		})
	}
	qr, _, err := f.svc.Create(ctx, NewCase{Source: SourceQRCode, SourceRef: "scan-1", Community: "sangcheng",
		Kind: protocol.KindHelp, Category: protocol.CatOther}, System)
	if err != nil || len(qr.Ticket) != len("261102-QR-0123456789") || qr.Ticket[:10] != "261102-QR-" {
		t.Errorf("generated ticket %q %v", qr.Ticket, err)
	}
}

var update = flag.Bool("update", false, "rewrite testdata/transitions.txt from the table")

// TestTableGolden pins the table's rules: a change to who may do what must
// change testdata/transitions.txt too (go test -run TableGolden -update).
func TestTableGolden(t *testing.T) {
	var b strings.Builder
	for _, r := range Table {
		fmt.Fprintf(&b, "%-11s %-13s -> %-11s %s", r.From, r.Action, r.To, strings.Join(r.Roles, ","))
		if r.NeedsNote {
			b.WriteString(" (reason required)")
		}
		b.WriteString("\n")
	}
	path := filepath.Join("testdata", "transitions.txt")
	if *update {
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if b.String() != string(want) {
		t.Errorf("transition table differs from %s:\n%s", path, b.String())
	}
	seen := map[[2]string]bool{}
	for _, r := range Table {
		k := [2]string{string(r.From), string(r.Action)}
		if seen[k] {
			t.Errorf("two rules for %s from %s", r.Action, r.From)
		}
		seen[k] = true
	}
}
