package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shequ/shequ/protocol"
)

// CaseRecord is a stored case. Its states, sources and the rules that move
// it between states belong to package hub/cases; here they are plain strings.
type CaseRecord struct {
	ID          string
	Ticket      string
	Source      string
	SourceRef   string
	Kiosk       string
	Community   string
	Street      string
	District    string
	Kind        string
	Category    string
	Building    string
	Unit        string
	Room        string
	Description string
	Phone       string
	State       string
	Assignee    string
	// ReturnReason is the reason of the last return (退单).
	ReturnReason     string
	Supervised       bool
	SupervisionLevel string // '', street, district or city
	Rating           string
	MergedInto       string
	ReportedAt       time.Time
	CreatedAt        time.Time
	UpdatedAt        time.Time
	DispatchedAt     time.Time // zero until first dispatched
	DueAt            time.Time // zero until first dispatched
	EscalateAt       time.Time // zero: no further escalation scheduled
	ClosedAt         time.Time
}

// CaseEvent is one entry of a case's timeline.
type CaseEvent struct {
	Seq    int64
	CaseID string
	At     time.Time
	Actor  string
	Role   string
	Action string
	From   string
	To     string
	Note   string
}

// Complainant is one complainant of a case: a record and its phone.
type Complainant struct {
	Source    string
	SourceRef string
	Phone     string
	AddedAt   time.Time
}

// CaseFilter selects cases for an inbox. Empty fields do not filter.
// Results are newest first (by creation) or, when DueBefore is set, the
// earliest deadline first; Limit at a time; pass the last case of a page
// as After for the next one.
type CaseFilter struct {
	States    []string
	Source    string
	Category  string
	Community string
	Street    string
	District  string
	Assignee  string
	// Reporter selects the cases an account filed itself (partners): the
	// source reference is "<account id>/<nonce>".
	Reporter string
	// DueBefore selects open cases (received, dispatched, in_progress,
	// returned) due before it; DueFrom, with it, due at or after DueFrom.
	DueBefore time.Time
	DueFrom   time.Time
	// EscalateBy selects cases whose next escalation is at or before it,
	// the earliest first (without DueBefore); such a list is not paged
	// (After is ignored): handle the page and ask again.
	EscalateBy time.Time
	Limit      int // default and maximum 500
	After      *CaseRecord
}

// MaxCasePage bounds one page of cases.
const MaxCasePage = 500

const caseCols = `id, ticket, source, source_ref, kiosk, community, street, district, kind, category,
	building, unit, room, description, phone, state, assignee, return_reason, supervised, supervision_level,
	rating, merged_into, reported_at, created_at, updated_at, dispatched_at, due_at, escalate_at, closed_at`

// openStates is the SQL form of the states in which a case counts as open
// (it must match the partial index cases_due).
const openStates = `state IN ('received', 'dispatched', 'in_progress', 'returned')`

func scanCase(sc scanner) (CaseRecord, error) {
	var (
		c                                 CaseRecord
		reported, created, updated        sql.NullInt64
		dispatched, due, escalate, closed sql.NullInt64
	)
	if err := sc.Scan(&c.ID, &c.Ticket, &c.Source, &c.SourceRef, &c.Kiosk, &c.Community, &c.Street, &c.District,
		&c.Kind, &c.Category, &c.Building, &c.Unit, &c.Room, &c.Description, &c.Phone, &c.State, &c.Assignee,
		&c.ReturnReason, &c.Supervised, &c.SupervisionLevel, &c.Rating, &c.MergedInto,
		&reported, &created, &updated, &dispatched, &due, &escalate, &closed); err != nil {
		return c, err
	}
	c.ReportedAt, c.CreatedAt, c.UpdatedAt = fromNanos(reported), fromNanos(created), fromNanos(updated)
	c.DispatchedAt, c.DueAt, c.EscalateAt, c.ClosedAt = fromNanos(dispatched), fromNanos(due), fromNanos(escalate), fromNanos(closed)
	return c, nil
}

func caseArgs(c CaseRecord) []any {
	return []any{c.ID, c.Ticket, c.Source, c.SourceRef, c.Kiosk, c.Community, c.Street, c.District,
		c.Kind, c.Category, c.Building, c.Unit, c.Room, c.Description, c.Phone, c.State, c.Assignee,
		c.ReturnReason, c.Supervised, c.SupervisionLevel, c.Rating, c.MergedInto,
		nanos(c.ReportedAt), nanos(c.CreatedAt), nanos(c.UpdatedAt), nanos(c.DispatchedAt), nanos(c.DueAt),
		nanos(c.EscalateAt), nanos(c.ClosedAt)}
}

type execer interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
}

func insertCase(ctx context.Context, tx execer, c CaseRecord) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO cases (`+caseCols+`)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, caseArgs(c)...)
	return err
}

func insertEvents(ctx context.Context, tx execer, evs []CaseEvent) error {
	for _, e := range evs {
		if _, err := tx.ExecContext(ctx, `INSERT INTO case_events (case_id, at, actor, role, action, from_state, to_state, note)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?)`, e.CaseID, nanos(e.At), e.Actor, e.Role, e.Action, e.From, e.To, e.Note); err != nil {
			return fmt.Errorf("event %s of %s: %w", e.Action, e.CaseID, err)
		}
	}
	return nil
}

// InsertCase stores a new case with its first complainant (its own record)
// and its first timeline events, exactly once by (source, source ref). When
// a case with them exists already it returns that case and duplicate. A
// case with the source ref under one of sameRef (sources sharing the
// reference's namespace, e.g. the console's forms) counts as existing too.
func (s *SQLite) InsertCase(ctx context.Context, c CaseRecord, evs []CaseEvent, sameRef ...string) (stored CaseRecord, duplicate bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return c, false, fmt.Errorf("store: insert case %s: begin: %w", c.ID, err)
	}
	defer rollback(tx, &err)
	sources := append([]any{c.Source}, anys(sameRef)...)
	existing, err := scanCase(tx.QueryRowContext(ctx, `SELECT `+caseCols+` FROM cases WHERE source_ref = ? AND source IN (?`+
		strings.Repeat(", ?", len(sources)-1)+`) ORDER BY created_at LIMIT 1`, append([]any{c.SourceRef}, sources...)...))
	switch {
	case err == nil:
		return existing, true, nil
	case !errors.Is(err, sql.ErrNoRows):
		return c, false, fmt.Errorf("store: insert case %s: lookup: %w", c.ID, err)
	}
	if err := insertCase(ctx, tx, c); err != nil {
		return c, false, fmt.Errorf("store: insert case %s: %w", c.ID, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO case_complainants (case_id, source, source_ref, phone, added_at)
		VALUES (?, ?, ?, ?, ?)`, c.ID, c.Source, c.SourceRef, c.Phone, nanos(c.CreatedAt)); err != nil {
		return c, false, fmt.Errorf("store: insert case %s: complainant: %w", c.ID, err)
	}
	if err := insertEvents(ctx, tx, evs); err != nil {
		return c, false, fmt.Errorf("store: insert case %s: %w", c.ID, err)
	}
	if err := tx.Commit(); err != nil {
		return c, false, fmt.Errorf("store: insert case %s: commit: %w", c.ID, err)
	}
	return c, false, nil
}

// Case returns one case, or ErrNotFound.
func (s *SQLite) Case(ctx context.Context, id string) (CaseRecord, error) {
	return s.caseWhere(ctx, "id", id)
}

// CaseByTicket returns the case with the ticket, or ErrNotFound.
func (s *SQLite) CaseByTicket(ctx context.Context, ticket string) (CaseRecord, error) {
	return s.caseWhere(ctx, "ticket", ticket)
}

func (s *SQLite) caseWhere(ctx context.Context, col, v string) (CaseRecord, error) {
	return queryOne(ctx, s.db, fmt.Sprintf("case %s %s", col, v), scanCase,
		`SELECT `+caseCols+` FROM cases WHERE `+col+` = ?`, v)
}

// UpdateCase changes cases in one transaction: it loads each case named by
// ids (ErrNotFound if one is missing), lets change modify them and return
// timeline events, then writes them back with the events. An error from
// change aborts the transaction and is returned as it is.
func (s *SQLite) UpdateCase(ctx context.Context, ids []string, change func(cs []*CaseRecord) ([]CaseEvent, error)) (err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("store: update cases: begin: %w", err)
	}
	defer rollback(tx, &err)
	cs := make([]*CaseRecord, len(ids))
	for i, id := range ids {
		c, err := scanCase(tx.QueryRowContext(ctx, `SELECT `+caseCols+` FROM cases WHERE id = ?`, id))
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("store: case %s: %w", id, ErrNotFound)
		}
		if err != nil {
			return fmt.Errorf("store: update case %s: load: %w", id, err)
		}
		cs[i] = &c
	}
	evs, err := change(cs)
	if err != nil {
		return err
	}
	for i, c := range cs {
		if c.ID != ids[i] {
			return fmt.Errorf("store: update case %s: the change altered its id", ids[i])
		}
		args := caseArgs(*c)
		if _, err := tx.ExecContext(ctx, `UPDATE cases SET (`+caseCols+`) =
			(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) WHERE id = ?`,
			append(args, c.ID)...); err != nil {
			return fmt.Errorf("store: update case %s: %w", c.ID, err)
		}
		if c.MergedInto != "" {
			// The case the others merge into keeps every complainant.
			if _, err := tx.ExecContext(ctx, `INSERT OR IGNORE INTO case_complainants (case_id, source, source_ref, phone, added_at)
				SELECT ?, source, source_ref, phone, ? FROM case_complainants WHERE case_id = ?`,
				c.MergedInto, nanos(c.UpdatedAt), c.ID); err != nil {
				return fmt.Errorf("store: merge case %s into %s: %w", c.ID, c.MergedInto, err)
			}
		}
	}
	if err := insertEvents(ctx, tx, evs); err != nil {
		return fmt.Errorf("store: update cases: %w", err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("store: update cases: commit: %w", err)
	}
	return nil
}

// CaseEvents returns a case's timeline, oldest first.
func (s *SQLite) CaseEvents(ctx context.Context, id string) ([]CaseEvent, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT seq, case_id, at, actor, role, action, from_state, to_state, note
		FROM case_events WHERE case_id = ? ORDER BY seq`, id)
	if err != nil {
		return nil, fmt.Errorf("store: case %s events: %w", id, err)
	}
	defer rows.Close()
	var out []CaseEvent
	for rows.Next() {
		var (
			e  CaseEvent
			at sql.NullInt64
		)
		if err := rows.Scan(&e.Seq, &e.CaseID, &at, &e.Actor, &e.Role, &e.Action, &e.From, &e.To, &e.Note); err != nil {
			return nil, fmt.Errorf("store: case %s events: %w", id, err)
		}
		e.At = fromNanos(at)
		out = append(out, e)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: case %s events: %w", id, err)
	}
	return out, nil
}

// CaseComplainants returns a case's complainants in the order they joined.
func (s *SQLite) CaseComplainants(ctx context.Context, id string) ([]Complainant, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT source, source_ref, phone, added_at FROM case_complainants
		WHERE case_id = ? ORDER BY added_at, source, source_ref`, id)
	if err != nil {
		return nil, fmt.Errorf("store: case %s complainants: %w", id, err)
	}
	defer rows.Close()
	var out []Complainant
	for rows.Next() {
		var (
			c  Complainant
			at sql.NullInt64
		)
		if err := rows.Scan(&c.Source, &c.SourceRef, &c.Phone, &at); err != nil {
			return nil, fmt.Errorf("store: case %s complainants: %w", id, err)
		}
		c.AddedAt = fromNanos(at)
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: case %s complainants: %w", id, err)
	}
	return out, nil
}

// ListCases returns one page of the cases the filter selects, newest first.
func (s *SQLite) ListCases(ctx context.Context, f CaseFilter) ([]CaseRecord, error) {
	var (
		where []string
		args  []any
	)
	eq := func(col, v string) {
		if v != "" {
			where = append(where, col+" = ?")
			args = append(args, v)
		}
	}
	eq("source", f.Source)
	eq("category", f.Category)
	eq("community", f.Community)
	eq("street", f.Street)
	eq("district", f.District)
	eq("assignee", f.Assignee)
	if f.Assignee != "" {
		// Lets the planner use the partial indexes on assignee.
		where = append(where, "assignee != ''")
	}
	if f.Reporter != "" {
		where = append(where, "substr(source_ref, 1, ?) = ?")
		args = append(args, len(f.Reporter)+1, f.Reporter+"/")
	}
	if len(f.States) > 0 {
		where = append(where, "state IN (?"+strings.Repeat(", ?", len(f.States)-1)+")")
		for _, st := range f.States {
			args = append(args, st)
		}
	}
	if !f.DueBefore.IsZero() {
		where = append(where, openStates, "due_at < ?")
		args = append(args, f.DueBefore.UnixNano())
		if !f.DueFrom.IsZero() {
			where = append(where, "due_at >= ?")
			args = append(args, f.DueFrom.UnixNano())
		}
	}
	if !f.EscalateBy.IsZero() {
		where = append(where, "escalate_at <= ?")
		args = append(args, f.EscalateBy.UnixNano())
	}
	byDue := !f.DueBefore.IsZero()
	switch {
	case f.After != nil && byDue:
		where = append(where, "(due_at, id) > (?, ?)")
		args = append(args, f.After.DueAt.UnixNano(), f.After.ID)
	case f.After != nil && f.EscalateBy.IsZero():
		where = append(where, "(created_at, id) < (?, ?)")
		args = append(args, f.After.CreatedAt.UnixNano(), f.After.ID)
	}
	limit := f.Limit
	if limit <= 0 || limit > MaxCasePage {
		limit = MaxCasePage
	}
	q := `SELECT ` + caseCols + ` FROM cases`
	if len(where) > 0 {
		q += ` WHERE ` + strings.Join(where, " AND ")
	}
	switch {
	case byDue:
		q += ` ORDER BY due_at, id LIMIT ?`
	case !f.EscalateBy.IsZero():
		q += ` ORDER BY escalate_at LIMIT ?` // cases_escalate, no sort
	default:
		q += ` ORDER BY created_at DESC, id DESC LIMIT ?`
	}
	args = append(args, limit)
	return queryAll(ctx, s.db, "list cases", scanCase, q, args...)
}

// MergeCandidates returns the open cases of a community and category at a
// building created in [from, to), oldest first, at most MaxCasePage.
func (s *SQLite) MergeCandidates(ctx context.Context, community, category, building string, from, to time.Time) ([]CaseRecord, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+caseCols+` FROM cases
		WHERE community = ? AND category = ? AND building = ? AND created_at >= ? AND created_at < ?
		AND state IN ('received', 'dispatched', 'returned')
		ORDER BY created_at, id LIMIT ?`, community, category, building, from.UnixNano(), to.UnixNano(), MaxCasePage)
	if err != nil {
		return nil, fmt.Errorf("store: merge candidates: %w", err)
	}
	defer rows.Close()
	var out []CaseRecord
	for rows.Next() {
		c, err := scanCase(rows)
		if err != nil {
			return nil, fmt.Errorf("store: merge candidates: %w", err)
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: merge candidates: %w", err)
	}
	return out, nil
}

// MaxQueryMatches bounds the cases CasesByQueryCode returns.
const MaxQueryMatches = 50

// CasesByQueryCode returns the cases whose ticket has the query code's
// date and sequence (protocol.QueryCode): tickets of the same day and
// number at different kiosks share a code, so there may be several, at
// most MaxQueryMatches, by ticket. The ticket index serves the date prefix.
func (s *SQLite) CasesByQueryCode(ctx context.Context, code string) ([]CaseRecord, error) {
	if !protocol.IsQueryCode(code) {
		return nil, fmt.Errorf("store: cases by query code %q: not a query code", code)
	}
	pattern := code[:6] + "-*-" + code[6:]
	return queryAll(ctx, s.db, "cases by query code "+code, scanCase,
		`SELECT `+caseCols+` FROM cases WHERE ticket GLOB ? ORDER BY ticket LIMIT ?`, pattern, MaxQueryMatches)
}

// anys converts strings to query arguments.
func anys(ss []string) []any {
	out := make([]any, len(ss))
	for i, v := range ss {
		out[i] = v
	}
	return out
}
