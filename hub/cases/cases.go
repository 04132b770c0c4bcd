// Package cases is the hub's case workflow (工单): one case per feedback
// record whatever its source (kiosk, 城管码 QR code, patrol, partner,
// hotline), moved through its states by the rules of one transition table
// (see transitions.go), with a timeline of every step, time limits per
// category counted in working days, escalation of overdue cases up the org
// tree, merging (并单) of cases about one building, ratings that reopen a
// case, and masking of complainants' phones for those who do not handle it.
//
// Actors are given as a Scope, so this package needs nothing of how staff
// accounts are stored: hub/accounts provides one, System acts for the hub
// itself. Cases are stored in hub/store (cases, case_complainants,
// case_events).
package cases

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Errors returned (wrapped) by this package.
var (
	// ErrForbiddenTransition means the action is not allowed from the case's
	// state, or not to the actor's role.
	ErrForbiddenTransition = errors.New("cases: forbidden transition")
	// ErrNotInScope means the case lies outside the actor's part of the org
	// tree, or (for an officer) is assigned to someone else.
	ErrNotInScope = errors.New("cases: case not in the actor's scope")
	// ErrInvalid means a request lacks something it needs (a reason, an
	// assignee, a known rating, a community) or has a bad value.
	ErrInvalid = errors.New("cases: invalid request")
	// ErrNotMergeable means cases differ in community, category or building,
	// lie too far apart in time, or are not in a state that may be merged.
	ErrNotMergeable = errors.New("cases: cases cannot be merged")
	// ErrNotFound means no case has the id or ticket.
	ErrNotFound = store.ErrNotFound
)

// Case is a stored case. Its State, Source and Rating hold the values of
// this package's State, Source and Rating types.
type Case = store.CaseRecord

// Source is where a case came from.
type Source string

// Sources.
const (
	SourceKiosk   Source = "kiosk"   // a kiosk's feedback record
	SourceQRCode  Source = "qrcode"  // 城管码: a resident scanning a QR code
	SourcePatrol  Source = "patrol"  // found by an officer on patrol
	SourcePartner Source = "partner" // reported by a residents' or owners' committee or property company
	SourceHotline Source = "hotline" // 12345 hotline
)

// Sources lists every source.
var Sources = []Source{SourceKiosk, SourceQRCode, SourcePatrol, SourcePartner, SourceHotline}

// ticketCodes are the source parts of generated tickets.
var ticketCodes = map[Source]string{SourceQRCode: "QR", SourcePatrol: "PT", SourcePartner: "PN", SourceHotline: "HL", SourceKiosk: "KS"}

// sourceNames are the sources' names on the timeline.
var sourceNames = map[Source]string{SourceKiosk: "社区终端", SourceQRCode: "城管码", SourcePatrol: "巡查发现",
	SourcePartner: "共建单位", SourceHotline: "12345 热线"}

// Rating is a complainant's verdict on the answer.
type Rating string

// Ratings.
const (
	Satisfied          Rating = "satisfied"           // 满意
	BasicallySatisfied Rating = "basically_satisfied" // 基本满意
	NotSatisfied       Rating = "not_satisfied"       // 不满意: reopens the case
)

// ratingNames are the ratings' names on the timeline.
var ratingNames = map[Rating]string{Satisfied: "满意", BasicallySatisfied: "基本满意", NotSatisfied: "不满意"}

// Ratings lists every rating.
var Ratings = []Rating{Satisfied, BasicallySatisfied, NotSatisfied}

// Roles an actor may have. The staff roles are those of hub/accounts;
// resident is a complainant acting on a case through its ticket, system the
// hub itself.
const (
	RoleBureauAdmin   = "bureau_admin"
	RoleDistrictAdmin = "district_admin"
	RoleSquadLeader   = "squad_leader"
	RoleOfficer       = "officer"
	RolePartner       = "partner"
	RoleTechnician    = "technician"
	RoleResident      = "resident"
	RoleSystem        = "system"
)

// Scope is an actor: who it is, its role, and which org nodes it may see
// (a node and everything under it). hub/accounts' accounts satisfy it.
type Scope interface {
	CanSee(node string) bool
	Role() string
	ID() string
}

type system struct{}

func (system) CanSee(string) bool { return true }
func (system) Role() string       { return RoleSystem }
func (system) ID() string         { return RoleSystem }

// System is the hub acting on its own: creating cases from feedback,
// escalating overdue cases, reopening a case rated not satisfied.
var System Scope = system{}

// Store is what cases need from the hub database.
type Store interface {
	InsertCase(ctx context.Context, c store.CaseRecord, evs []store.CaseEvent, sameRef ...string) (store.CaseRecord, bool, error)
	Case(ctx context.Context, id string) (store.CaseRecord, error)
	CaseByTicket(ctx context.Context, ticket string) (store.CaseRecord, error)
	CasesByQueryCode(ctx context.Context, code string) ([]store.CaseRecord, error)
	UpdateCase(ctx context.Context, ids []string, change func([]*store.CaseRecord) ([]store.CaseEvent, error)) error
	CaseEvents(ctx context.Context, id string) ([]store.CaseEvent, error)
	CaseComplainants(ctx context.Context, id string) ([]store.Complainant, error)
	ListCases(ctx context.Context, f store.CaseFilter) ([]store.CaseRecord, error)
	MergeCandidates(ctx context.Context, community, category, building string, from, to time.Time) ([]store.CaseRecord, error)
	AddWork(ctx context.Context, w store.WorkRecord, photos []store.Photo) error
	CaseWork(ctx context.Context, caseID string) ([]store.WorkRecord, error)
	CasePhoto(ctx context.Context, caseID, sha string) (store.Photo, error)
}

var _ Store = (*store.SQLite)(nil)

// Defaults for zero Config fields.
const (
	// DefaultTimeLimit is the time limit, in working days, of a category
	// without its own in DefaultTimeLimits.
	DefaultTimeLimit     = 3
	DefaultEscalateEvery = 24 * time.Hour
	DefaultDispatchLimit = 1
	DefaultMergeWindow   = 7 * 24 * time.Hour
)

// DefaultTimeLimits are the time limits, in working days from dispatch, of
// categories that differ from DefaultTimeLimit: illegal construction needs
// a survey and a notice period (5); damage to load-bearing structures is a
// safety risk (2). Every other category has 3.
var DefaultTimeLimits = map[protocol.FeedbackCategory]int{
	protocol.CatIllegalConstruction: 5,
	protocol.CatLoadBearing:         2,
}

// shanghai is China Standard Time (no daylight saving time), where working
// days are counted.
var shanghai = time.FixedZone("CST", 8*3600)

// Config configures the case service. Zero values mean the defaults.
type Config struct {
	Store Store         // required
	Tree  *orgtree.Tree // required: the community of a kiosk, a community's street and district
	// TimeLimits maps categories to working days; missing categories use
	// DefaultTimeLimits, then DefaultTimeLimit.
	TimeLimits map[protocol.FeedbackCategory]int
	// WorkingDay reports whether a date (in Shanghai time) is a working
	// day; default Monday to Friday. Set it to a calendar with public
	// holidays and make-up working days (调休) for exact limits.
	WorkingDay func(time.Time) bool
	// DispatchLimit is the time, in working days from receipt, within
	// which a received case must be dispatched (派单时限); default 1. A
	// case still waiting for dispatch after it is overdue and escalated
	// like any other.
	DispatchLimit int
	// EscalateEvery is how long an overdue case stays at one supervision
	// level before escalation raises it to the next; default 24h.
	EscalateEvery time.Duration
	// MergeWindow is how far apart in creation time merged cases may be;
	// default 7 days.
	MergeWindow time.Duration
	Now         func() time.Time // default time.Now
	// Changed, if set, is called with every case a committed change
	// touched (created, moved, merged, escalated, worked on), e.g. to
	// publish the case boards of kiosks.
	Changed func(ctx context.Context, c Case)
}

// Service runs the case workflow. It is safe for concurrent use.
type Service struct {
	cfg Config
}

// New checks cfg and returns a Service.
func New(cfg Config) (*Service, error) {
	if cfg.Store == nil || cfg.Tree == nil {
		return nil, errors.New("cases: Store and Tree are required")
	}
	limits := make(map[protocol.FeedbackCategory]int)
	for _, c := range protocol.FeedbackCategories {
		limits[c] = DefaultTimeLimit
	}
	for c, d := range DefaultTimeLimits {
		limits[c] = d
	}
	for c, d := range cfg.TimeLimits {
		if d <= 0 {
			return nil, fmt.Errorf("cases: time limit of %s is %d working days, want at least 1", c, d)
		}
		limits[c] = d
	}
	cfg.TimeLimits = limits
	if cfg.WorkingDay == nil {
		cfg.WorkingDay = func(t time.Time) bool { return t.Weekday() != time.Saturday && t.Weekday() != time.Sunday }
	}
	if cfg.DispatchLimit <= 0 {
		cfg.DispatchLimit = DefaultDispatchLimit
	}
	if cfg.EscalateEvery <= 0 {
		cfg.EscalateEvery = DefaultEscalateEvery
	}
	if cfg.MergeWindow <= 0 {
		cfg.MergeWindow = DefaultMergeWindow
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg}, nil
}

func (s *Service) now() time.Time { return s.cfg.Now().UTC() }

func (s *Service) changed(ctx context.Context, cs ...Case) {
	if s.cfg.Changed == nil {
		return
	}
	for _, c := range cs {
		s.cfg.Changed(ctx, c)
	}
}

// NewCase is a case to create.
type NewCase struct {
	Source    Source
	SourceRef string // required: the feedback record id, or the source's own reference
	Ticket    string // the resident's ticket; generated when empty
	Kiosk     string // kiosk cases: the kiosk; its community is looked up
	Community string // required unless Kiosk is set
	Kind      protocol.FeedbackKind
	Category  protocol.FeedbackCategory
	Where     protocol.Where
	// Description and Phone are the complainant's words and number.
	Description string
	Phone       string
	ReportedAt  time.Time // default now
	// SameRefAs are other sources whose references share SourceRef's
	// namespace: a case with the reference under any of them is this case
	// (a console form sent again with another source picked).
	SameRefAs []Source
}

// Create stores a new case in state received, exactly once by source and
// source reference: creating it again returns the stored case and
// duplicate. actor is recorded on the timeline.
func (s *Service) Create(ctx context.Context, n NewCase, actor Scope) (c Case, duplicate bool, err error) {
	if n.Kiosk != "" {
		k, ok := s.cfg.Tree.Kiosk(n.Kiosk)
		if !ok {
			return c, false, fmt.Errorf("%w: kiosk %q is not in the org tree", ErrInvalid, n.Kiosk)
		}
		n.Community = k.Community
	}
	node := s.cfg.Tree.Node(n.Community)
	switch {
	case !slices.Contains(Sources, n.Source):
		return c, false, fmt.Errorf("%w: source %q", ErrInvalid, n.Source)
	case n.SourceRef == "":
		return c, false, fmt.Errorf("%w: source reference is empty", ErrInvalid)
	case node == nil || node.Level != protocol.LevelCommunity:
		return c, false, fmt.Errorf("%w: %q is not a community of the org tree", ErrInvalid, n.Community)
	case !slices.Contains(protocol.FeedbackKinds, n.Kind):
		return c, false, fmt.Errorf("%w: kind %q", ErrInvalid, n.Kind)
	case !slices.Contains(protocol.FeedbackCategories, n.Category):
		return c, false, fmt.Errorf("%w: category %q", ErrInvalid, n.Category)
	case actor == nil:
		return c, false, fmt.Errorf("%w: no actor", ErrInvalid)
	}
	now := s.now()
	if n.ReportedAt.IsZero() {
		n.ReportedAt = now
	}
	if n.Ticket == "" {
		n.Ticket = newTicket(n.Source, n.ReportedAt)
	}
	street := node.Parent()
	c = Case{
		ID: protocol.NewID(), Ticket: n.Ticket, Source: string(n.Source), SourceRef: n.SourceRef, Kiosk: n.Kiosk,
		Community: node.ID, Street: street.ID, District: street.Parent().ID,
		Kind: string(n.Kind), Category: string(n.Category),
		Building: n.Where.Building, Unit: n.Where.Unit, Room: n.Where.Room,
		Description: n.Description, Phone: n.Phone, State: string(StateReceived),
		ReportedAt: n.ReportedAt.UTC(), CreatedAt: now, UpdatedAt: now,
		DueAt: s.addWorkingDays(now, s.cfg.DispatchLimit),
	}
	c.EscalateAt = c.DueAt
	ev := store.CaseEvent{CaseID: c.ID, At: now, Actor: actor.ID(), Role: actor.Role(), Action: string(ActionCreate),
		To: string(StateReceived), Note: "来源：" + sourceNames[n.Source]}
	sameRef := make([]string, len(n.SameRefAs))
	for i, src := range n.SameRefAs {
		sameRef[i] = string(src)
	}
	c, duplicate, err = s.cfg.Store.InsertCase(ctx, c, []store.CaseEvent{ev}, sameRef...)
	if err != nil {
		return c, false, fmt.Errorf("cases: create from %s %s: %w", n.Source, n.SourceRef, err)
	}
	if !duplicate {
		s.changed(ctx, c)
	}
	return c, duplicate, nil
}

// FromFeedback creates the case of a kiosk's feedback record (idempotent by
// the record id); the fleet calls it once the record is stored.
func (s *Service) FromFeedback(ctx context.Context, id string, f protocol.Feedback, receivedAt time.Time) (Case, bool, error) {
	return s.Create(ctx, NewCase{
		Source: SourceKiosk, SourceRef: id, Ticket: f.Ticket, Kiosk: f.Kiosk, Kind: f.Kind, Category: f.Category,
		Where: f.Where, Description: f.Description, Phone: f.Phone, ReportedAt: receivedAt,
	}, System)
}

// Case returns a case by id.
func (s *Service) Case(ctx context.Context, id string) (Case, error) {
	c, err := s.cfg.Store.Case(ctx, id)
	if err != nil {
		return c, fmt.Errorf("cases: %w", err)
	}
	return c, nil
}

// Find returns the cases a ticket number or a kiosk query code (printed on
// the receipt: the ticket's date and number) names, whatever their scope:
// the caller shows only those its account may see. Spaces around q and
// the case of its letters do not matter; anything that is neither is
// ErrInvalid.
func (s *Service) Find(ctx context.Context, q string) ([]Case, error) {
	q = strings.ToUpper(strings.TrimSpace(q))
	switch {
	case protocol.IsQueryCode(q):
		cs, err := s.cfg.Store.CasesByQueryCode(ctx, q)
		if err != nil {
			return nil, fmt.Errorf("cases: find %s: %w", q, err)
		}
		return cs, nil
	case protocol.ValidTicket(q) == nil:
		c, err := s.cfg.Store.CaseByTicket(ctx, q)
		if errors.Is(err, store.ErrNotFound) {
			return nil, nil
		}
		if err != nil {
			return nil, fmt.Errorf("cases: find %s: %w", q, err)
		}
		return []Case{c}, nil
	}
	return nil, fmt.Errorf("%w: %q is neither a ticket number nor a query code", ErrInvalid, q)
}

// List returns a page of cases the filter selects, newest first.
func (s *Service) List(ctx context.Context, f store.CaseFilter) ([]Case, error) {
	cs, err := s.cfg.Store.ListCases(ctx, f)
	if err != nil {
		return nil, fmt.Errorf("cases: %w", err)
	}
	return cs, nil
}

// newTicket makes a ticket for a case without one: the date in Shanghai,
// the source's code and 10 random Crockford base-32 characters (50 bits),
// e.g. "261126-QR-7K3M9PQ2XA"; the store refuses a repeated ticket.
func newTicket(src Source, t time.Time) string {
	const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
	var b [10]byte
	rand.Read(b[:]) // crypto/rand.Read never returns an error
	var sb strings.Builder
	for _, x := range b {
		sb.WriteByte(crockford[x&31])
	}
	return t.In(shanghai).Format("060102") + "-" + ticketCodes[src] + "-" + sb.String()
}
