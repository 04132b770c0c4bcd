package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Open311Key is a stored API key of a partner system (hub/open311). The key
// itself is never stored, only its SHA-256.
type Open311Key struct {
	ID        string
	Name      string
	KeyHash   []byte
	Nodes     []string // org nodes it may file and read cases in
	Source    string   // hotline or partner: the source of the cases it files
	CreatedAt time.Time
	RevokedAt time.Time // zero while the key works
}

const open311KeyCols = `id, name, key_hash, nodes, source, created_at, revoked_at`

func scanOpen311Key(sc scanner) (Open311Key, error) {
	var (
		k                Open311Key
		nodes            string
		created, revoked sql.NullInt64
	)
	err := sc.Scan(&k.ID, &k.Name, &k.KeyHash, &nodes, &k.Source, &created, &revoked)
	if nodes != "" {
		k.Nodes = strings.Split(nodes, ",")
	}
	k.CreatedAt, k.RevokedAt = fromNanos(created), fromNanos(revoked)
	return k, err
}

// CreateOpen311Key stores a new key.
func (s *SQLite) CreateOpen311Key(ctx context.Context, k Open311Key) error {
	if len(k.Nodes) == 0 || len(k.KeyHash) == 0 {
		return fmt.Errorf("store: create open311 key %s: nodes and key hash are required", k.ID)
	}
	for _, n := range k.Nodes {
		if n == "" || strings.Contains(n, ",") {
			return fmt.Errorf("store: create open311 key %s: bad node id %q", k.ID, n)
		}
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO open311_keys (`+open311KeyCols+`) VALUES (?, ?, ?, ?, ?, ?, ?)`,
		k.ID, k.Name, k.KeyHash, strings.Join(k.Nodes, ","), k.Source, nanos(k.CreatedAt), nanos(k.RevokedAt)); err != nil {
		return fmt.Errorf("store: create open311 key %s: %w", k.ID, err)
	}
	return nil
}

// Open311KeyByHash returns the key with the SHA-256 hash, revoked or not,
// or ErrNotFound.
func (s *SQLite) Open311KeyByHash(ctx context.Context, hash []byte) (Open311Key, error) {
	return queryOne(ctx, s.db, "open311 key by hash", scanOpen311Key,
		`SELECT `+open311KeyCols+` FROM open311_keys WHERE key_hash = ?`, hash)
}

// Open311Keys returns every key, oldest first.
func (s *SQLite) Open311Keys(ctx context.Context) ([]Open311Key, error) {
	return queryAll(ctx, s.db, "list open311 keys", scanOpen311Key,
		`SELECT `+open311KeyCols+` FROM open311_keys ORDER BY created_at, id`)
}

// RevokeOpen311Key marks a key revoked at the given time and returns it; a
// key revoked already keeps its first revocation time.
func (s *SQLite) RevokeOpen311Key(ctx context.Context, id string, at time.Time) (Open311Key, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE open311_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL`,
		nanos(at), id); err != nil {
		return Open311Key{}, fmt.Errorf("store: revoke open311 key %s: %w", id, err)
	}
	return queryOne(ctx, s.db, "open311 key "+id, scanOpen311Key,
		`SELECT `+open311KeyCols+` FROM open311_keys WHERE id = ?`, id)
}

// Open311Case is a case as the Open311 server reads it: the stored case and
// the note of its latest answer (the reply to the complainant), if any.
type Open311Case struct {
	CaseRecord
	Answer string
}

// Open311Query selects the cases one key filed. Reporter is required.
// When IDs or Tickets are set the other filters (but Reporter and Nodes)
// are ignored. Results are newest first by reporting time.
type Open311Query struct {
	Source   string // the key's case source (required)
	Reporter string // the key id: source_ref "<Reporter>/<ref>" (required)
	// Nodes, if set, keeps cases whose community, street or district is
	// one of them.
	Nodes      []string
	IDs        []string
	Tickets    []string
	Categories []string
	States     []string
	From, To   time.Time // reported_at in [From, To]; zero: unbounded
	Limit      int       // default and maximum MaxOpen311Page
}

// MaxOpen311Page bounds the cases and updates of one Open311 reply (the
// GeoReport v2 limit).
const MaxOpen311Page = 1000

func sqlIn(col string, vals []string) (string, []any) {
	args := make([]any, len(vals))
	for i, v := range vals {
		args[i] = v
	}
	return col + " IN (?" + strings.Repeat(", ?", len(vals)-1) + ")", args
}

// scope is the WHERE part shared by Open311 case and update queries.
func (q Open311Query) scope(where []string, args []any) ([]string, []any) {
	where = append(where, "c.source = ?", "substr(c.source_ref, 1, ?) = ?")
	args = append(args, q.Source, len(q.Reporter)+1, q.Reporter+"/")
	if len(q.Nodes) > 0 {
		var ors []string
		for _, col := range []string{"c.community", "c.street", "c.district"} {
			w, a := sqlIn(col, q.Nodes)
			ors = append(ors, w)
			args = append(args, a...)
		}
		where = append(where, "("+strings.Join(ors, " OR ")+")")
	}
	return where, args
}

// Open311Cases returns the cases the query selects.
func (s *SQLite) Open311Cases(ctx context.Context, q Open311Query) ([]Open311Case, error) {
	if q.Reporter == "" || q.Source == "" {
		return nil, errors.New("store: open311 cases: source and reporter are required")
	}
	where, args := q.scope(nil, nil)
	add := func(col string, vals []string) {
		if len(vals) > 0 {
			w, a := sqlIn(col, vals)
			where = append(where, w)
			args = append(args, a...)
		}
	}
	switch {
	case len(q.IDs) > 0 || len(q.Tickets) > 0:
		add("c.id", q.IDs)
		add("c.ticket", q.Tickets)
	default:
		add("c.category", q.Categories)
		add("c.state", q.States)
		if !q.From.IsZero() {
			where = append(where, "c.reported_at >= ?")
			args = append(args, q.From.UnixNano())
		}
		if !q.To.IsZero() {
			where = append(where, "c.reported_at <= ?")
			args = append(args, q.To.UnixNano())
		}
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxOpen311Page {
		limit = MaxOpen311Page
	}
	args = append(args, limit)
	cols := strings.Fields(strings.ReplaceAll(caseCols, ",", " "))
	for i := range cols {
		cols[i] = "c." + cols[i]
	}
	query := `SELECT ` + strings.Join(cols, ", ") + `, COALESCE((SELECT e.note FROM case_events e WHERE e.case_id = c.id AND e.action = 'answer'
		ORDER BY e.seq DESC LIMIT 1), '') FROM cases c WHERE ` + strings.Join(where, " AND ") +
		` ORDER BY c.reported_at DESC, c.id DESC LIMIT ?`
	return queryAll(ctx, s.db, "open311 cases", func(sc scanner) (Open311Case, error) {
		var oc Open311Case
		c, err := scanCase(rowWithAnswer{sc, &oc.Answer})
		oc.CaseRecord = c
		return oc, err
	}, query, args...)
}

// rowWithAnswer scans a case row followed by one more column.
type rowWithAnswer struct {
	sc     scanner
	answer *string
}

func (r rowWithAnswer) Scan(dest ...any) error { return r.sc.Scan(append(dest, r.answer)...) }

// Open311Update is one timeline event of a case a key filed.
type Open311Update struct {
	CaseEvent
	Ticket string
}

// Open311Updates returns the timeline events, at times in [from, to], of
// the cases the query's Source, Reporter, Nodes and (if set) Tickets
// select, oldest first, at most Limit (default and maximum MaxOpen311Page).
func (s *SQLite) Open311Updates(ctx context.Context, q Open311Query, from, to time.Time) ([]Open311Update, error) {
	if q.Reporter == "" || q.Source == "" {
		return nil, errors.New("store: open311 updates: source and reporter are required")
	}
	where, args := q.scope(nil, nil)
	if len(q.Tickets) > 0 {
		w, a := sqlIn("c.ticket", q.Tickets)
		where = append(where, w)
		args = append(args, a...)
	}
	where = append(where, "e.at >= ?", "e.at <= ?")
	args = append(args, from.UnixNano(), to.UnixNano())
	limit := q.Limit
	if limit <= 0 || limit > MaxOpen311Page {
		limit = MaxOpen311Page
	}
	args = append(args, limit)
	return queryAll(ctx, s.db, "open311 updates", func(sc scanner) (Open311Update, error) {
		var (
			u  Open311Update
			at sql.NullInt64
		)
		err := sc.Scan(&u.Seq, &u.CaseID, &at, &u.Actor, &u.Role, &u.Action, &u.From, &u.To, &u.Note, &u.Ticket)
		u.At = fromNanos(at)
		return u, err
	}, `SELECT e.seq, e.case_id, e.at, e.actor, e.role, e.action, e.from_state, e.to_state, e.note, c.ticket
		FROM case_events e JOIN cases c ON c.id = e.case_id
		WHERE `+strings.Join(where, " AND ")+` ORDER BY e.seq LIMIT ?`, args...)
}
