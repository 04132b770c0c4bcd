// Package store is the hub's database: notices, feedback, kiosk status and
// per-kiosk desired versions, in SQLite through database/sql with the pure-Go
// driver modernc.org/sqlite.
//
// The database runs in WAL mode with synchronous=FULL, so a transaction that
// has committed is on disk: the hub acknowledges a record only after that.
// The schema is created and upgraded by the numbered migrations embedded from
// migrations/, recorded in schema_migrations. How an existing database is
// upgraded (a backup first, every pending migration in one transaction, a
// database newer than the build refused) is in upgrade.go.
package store

import (
	"context"
	"database/sql"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/protocol"

	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

// Errors returned (wrapped) by the store.
var (
	// ErrNotFound means no row has the requested id.
	ErrNotFound = errors.New("store: not found")
	// ErrTicketConflict means another record already uses the feedback's ticket.
	ErrTicketConflict = errors.New("store: ticket already used by another record")
	// ErrSchemaTooNew means the database was upgraded by a newer build than
	// this one: this build refuses to run on it (upgrade.go).
	ErrSchemaTooNew = errors.New("store: database schema is newer than this build")
	// ErrInUse means Restore found the database open in another process
	// (a running hub).
	ErrInUse = errors.New("store: database is in use")
)

//go:embed migrations/*.sql
var migrationFS embed.FS

// SQLite is the hub database in one SQLite file. It is safe for concurrent use.
type SQLite struct {
	db *sql.DB
}

// Open opens (creating if needed) the database at path and applies pending
// migrations, logging nothing; see OpenWith.
func Open(ctx context.Context, path string) (*SQLite, error) {
	return OpenWith(ctx, path, Options{})
}

// Options configure OpenWith. The zero Options log nothing.
type Options struct {
	// Logger receives what an upgrade does: the backup taken before
	// migrating (with its path) and the versions migrated from and to.
	// nil: discarded.
	Logger *slog.Logger
}

// OpenWith opens (creating if needed) the database at path and upgrades it
// to the schema of this build (upgrade.go): an existing database is backed
// up beside path first, and one whose schema is newer than this build
// knows is refused with ErrSchemaTooNew.
func OpenWith(ctx context.Context, path string, opts Options) (*SQLite, error) {
	ms, err := migrations()
	if err != nil {
		return nil, err
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return open(ctx, path, upgrader{migrations: ms, log: log, now: time.Now})
}

// open is OpenWith with the migrations and the clock given, so tests can
// build databases of older schemas and inject failing migrations.
func open(ctx context.Context, path string, up upgrader) (*SQLite, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(1)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", path, err)
	}
	db.SetMaxOpenConns(4)
	s := &SQLite{db: db}
	if err := s.upgrade(ctx, path, up); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	// Let the query planner know the tables' shapes (bounded work: each
	// index's statistics come from a sample), so scoped inboxes pick the
	// index that needs no sort.
	if _, err := db.ExecContext(ctx, `PRAGMA analysis_limit = 1000; PRAGMA optimize = 0x10002`); err != nil {
		return nil, errors.Join(fmt.Errorf("store: optimize %s: %w", path, err), db.Close())
	}
	return s, nil
}

// Close closes the database.
func (s *SQLite) Close() error {
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("store: close: %w", err)
	}
	return nil
}

// migration is one numbered schema change.
type migration struct {
	version int
	name    string
	sql     string
}

func migrations() ([]migration, error) {
	entries, err := fs.ReadDir(migrationFS, "migrations")
	if err != nil {
		return nil, fmt.Errorf("store: read migrations: %w", err)
	}
	var out []migration
	for _, e := range entries {
		num, _, ok := strings.Cut(e.Name(), "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v <= 0 {
			return nil, fmt.Errorf("store: migration %q is not named NNNN_name.sql", e.Name())
		}
		b, err := migrationFS.ReadFile("migrations/" + e.Name())
		if err != nil {
			return nil, fmt.Errorf("store: read migration %s: %w", e.Name(), err)
		}
		out = append(out, migration{version: v, name: e.Name(), sql: string(b)})
	}
	slices.SortFunc(out, func(a, b migration) int { return a.version - b.version })
	for i, m := range out {
		if m.version != i+1 {
			return nil, fmt.Errorf("store: migration %s out of sequence, want version %d", m.name, i+1)
		}
	}
	return out, nil
}

// SchemaVersion returns the highest migration applied.
func (s *SQLite) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.db.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("store: schema version: %w", err)
	}
	return v, nil
}

// rollback ends a transaction that was not committed (after a commit it is a
// no-op) and joins a rollback failure into the caller's error.
func rollback(tx *sql.Tx, errp *error) {
	if err := tx.Rollback(); err != nil && !errors.Is(err, sql.ErrTxDone) {
		*errp = errors.Join(*errp, fmt.Errorf("store: rollback: %w", err))
	}
}

// nanos and fromNanos convert times to the stored form: Unix nanoseconds,
// NULL for the zero time.
func nanos(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: t.UnixNano(), Valid: true}
}

func fromNanos(n sql.NullInt64) time.Time {
	if !n.Valid {
		return time.Time{}
	}
	return time.Unix(0, n.Int64).UTC()
}

// NoticeRecord is a stored notice.
type NoticeRecord struct {
	protocol.Notice
	CreatedAt   time.Time
	WithdrawnAt time.Time // zero while not withdrawn
}

const noticeCols = `id, title, body, category, priority, valid_from, valid_until, targets, created_at, withdrawn_at`

type scanner interface{ Scan(dest ...any) error }

// queryOne runs query and scans its one row with scan; no row is
// ErrNotFound. what names the row in errors ("case ticket 261126-…").
func queryOne[T any](ctx context.Context, db *sql.DB, what string, scan func(scanner) (T, error), query string, args ...any) (T, error) {
	v, err := scan(db.QueryRowContext(ctx, query, args...))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("store: %s: %w", what, ErrNotFound)
	}
	if err != nil {
		return v, fmt.Errorf("store: %s: %w", what, err)
	}
	return v, nil
}

// queryAll runs query and scans every row with scan; op names the
// operation in errors ("list kiosks").
func queryAll[T any](ctx context.Context, db *sql.DB, op string, scan func(scanner) (T, error), query string, args ...any) ([]T, error) {
	rows, err := db.QueryContext(ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, fmt.Errorf("store: %s: %w", op, err)
		}
		out = append(out, v)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("store: %s: %w", op, err)
	}
	return out, nil
}

func scanNotice(sc scanner) (NoticeRecord, error) {
	var (
		r                    NoticeRecord
		from, until, created sql.NullInt64
		withdrawn            sql.NullInt64
		targets              string
	)
	if err := sc.Scan(&r.ID, &r.Title, &r.Body, &r.Category, &r.Priority, &from, &until, &targets, &created, &withdrawn); err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(targets), &r.Targets); err != nil {
		return r, fmt.Errorf("notice %s: targets: %w", r.ID, err)
	}
	r.ValidFrom, r.ValidUntil = fromNanos(from), fromNanos(until)
	r.CreatedAt, r.WithdrawnAt = fromNanos(created), fromNanos(withdrawn)
	return r, nil
}

// CreateNotice stores a new notice. Its times are kept to the nanosecond in UTC.
func (s *SQLite) CreateNotice(ctx context.Context, n protocol.Notice, createdAt time.Time) error {
	targets, err := json.Marshal(n.Targets)
	if err != nil {
		return fmt.Errorf("store: create notice %s: targets: %w", n.ID, err)
	}
	if _, err := s.db.ExecContext(ctx, `INSERT INTO notices (`+noticeCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
		n.ID, n.Title, n.Body, string(n.Category), string(n.Priority), nanos(n.ValidFrom), nanos(n.ValidUntil),
		string(targets), nanos(createdAt)); err != nil {
		return fmt.Errorf("store: create notice %s: %w", n.ID, err)
	}
	return nil
}

// Notice returns one notice, or ErrNotFound.
func (s *SQLite) Notice(ctx context.Context, id string) (NoticeRecord, error) {
	return queryOne(ctx, s.db, "notice "+id, scanNotice, `SELECT `+noticeCols+` FROM notices WHERE id = ?`, id)
}

// Notices returns every notice, newest first.
func (s *SQLite) Notices(ctx context.Context) ([]NoticeRecord, error) {
	return s.queryNotices(ctx, `SELECT `+noticeCols+` FROM notices ORDER BY created_at DESC, id DESC`)
}

// LiveNotices returns the notices neither withdrawn nor expired at now,
// future-scheduled ones included, oldest first.
func (s *SQLite) LiveNotices(ctx context.Context, now time.Time) ([]protocol.Notice, error) {
	rs, err := s.queryNotices(ctx, `SELECT `+noticeCols+` FROM notices
		WHERE withdrawn_at IS NULL AND (valid_until IS NULL OR valid_until > ?)
		ORDER BY created_at, id`, now.UnixNano())
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Notice, len(rs))
	for i, r := range rs {
		out[i] = r.Notice
	}
	return out, nil
}

func (s *SQLite) queryNotices(ctx context.Context, query string, args ...any) ([]NoticeRecord, error) {
	return queryAll(ctx, s.db, "list notices", scanNotice, query, args...)
}

// WithdrawNotice marks a notice withdrawn at t and returns it. Withdrawing a
// withdrawn notice changes nothing and returns it as it is.
func (s *SQLite) WithdrawNotice(ctx context.Context, id string, t time.Time) (NoticeRecord, error) {
	if _, err := s.db.ExecContext(ctx, `UPDATE notices SET withdrawn_at = ? WHERE id = ? AND withdrawn_at IS NULL`,
		t.UnixNano(), id); err != nil {
		return NoticeRecord{}, fmt.Errorf("store: withdraw notice %s: %w", id, err)
	}
	return s.Notice(ctx, id)
}

// FeedbackRecord is a stored feedback.
type FeedbackRecord struct {
	ID string // envelope id
	protocol.Feedback
	ReceivedAt time.Time
}

// InsertFeedback stores a feedback record exactly once by its id. It reports
// duplicate when a record with the id is already stored (the stored record is
// left as it is). A different record with the same ticket is ErrTicketConflict.
// When it returns without error the record is durable.
func (s *SQLite) InsertFeedback(ctx context.Context, id string, f protocol.Feedback, receivedAt time.Time) (duplicate bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: insert feedback %s: begin: %w", id, err)
	}
	defer rollback(tx, &err)
	var owner string
	switch err := tx.QueryRowContext(ctx, `SELECT id FROM feedback WHERE id = ? OR ticket = ? ORDER BY id = ? DESC LIMIT 1`,
		id, f.Ticket, id).Scan(&owner); {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, fmt.Errorf("store: insert feedback %s: lookup: %w", id, err)
	case owner == id:
		return true, nil
	default:
		return false, fmt.Errorf("store: insert feedback %s: ticket %s held by %s: %w", id, f.Ticket, owner, ErrTicketConflict)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO feedback
		(id, ticket, kiosk, kind, category, building, unit, room, description, phone, submitted_at, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		id, f.Ticket, f.Kiosk, string(f.Kind), string(f.Category), f.Where.Building, f.Where.Unit, f.Where.Room,
		f.Description, f.Phone, nanos(f.SubmittedAt), nanos(receivedAt)); err != nil {
		return false, fmt.Errorf("store: insert feedback %s: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: insert feedback %s: commit: %w", id, err)
	}
	return false, nil
}

// Feedback returns feedback newest first (by time received), at most limit
// records, of one kiosk when kiosk is not empty.
func (s *SQLite) Feedback(ctx context.Context, kiosk string, limit int) ([]FeedbackRecord, error) {
	return queryAll(ctx, s.db, "list feedback", scanFeedback, `SELECT `+feedbackCols+` FROM feedback
		WHERE ? = '' OR kiosk = ? ORDER BY received_at DESC, id DESC LIMIT ?`, kiosk, kiosk, limit)
}

const feedbackCols = `id, ticket, kiosk, kind, category, building, unit, room, description, phone, submitted_at, received_at`

func scanFeedback(sc scanner) (FeedbackRecord, error) {
	var (
		r                   FeedbackRecord
		submitted, received sql.NullInt64
	)
	err := sc.Scan(&r.ID, &r.Ticket, &r.Kiosk, &r.Kind, &r.Category, &r.Where.Building, &r.Where.Unit,
		&r.Where.Room, &r.Description, &r.Phone, &submitted, &received)
	r.SubmittedAt, r.ReceivedAt = fromNanos(submitted), fromNanos(received)
	return r, err
}

// FeedbackWithoutCase returns up to limit feedback records that have no
// case yet (stored before cases existed, or whose case creation failed),
// oldest first.
func (s *SQLite) FeedbackWithoutCase(ctx context.Context, limit int) ([]FeedbackRecord, error) {
	return queryAll(ctx, s.db, "feedback without case", scanFeedback, `SELECT `+feedbackCols+` FROM feedback f
		WHERE NOT EXISTS (SELECT 1 FROM cases c WHERE c.source = 'kiosk' AND c.source_ref = f.id)
		ORDER BY received_at, id LIMIT ?`, limit)
}
