package store

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

func openTemp(t *testing.T) (*SQLite, string) {
	t.Helper()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return s, path
}

func TestOpenPragmas(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	var mode string
	var sync int
	if err := s.db.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&mode); err != nil {
		t.Fatal(err)
	}
	if err := s.db.QueryRowContext(ctx, `PRAGMA synchronous`).Scan(&sync); err != nil {
		t.Fatal(err)
	}
	if mode != "wal" || sync != 2 {
		t.Errorf("journal_mode=%q synchronous=%d, want wal and 2 (FULL)", mode, sync)
	}
}

func TestMigrationsIdempotent(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	ms, err := migrations()
	if err != nil {
		t.Fatal(err)
	}
	latest := len(ms)
	if latest < 2 {
		t.Fatalf("found %d migrations, want at least 2", latest)
	}
	for i := range 3 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatalf("Open #%d: %v", i, err)
		}
		v, err := s.SchemaVersion(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var n int
		if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if v != latest || n != latest {
			t.Errorf("open #%d: schema version %d with %d rows, want %d and %d", i, v, n, latest, latest)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

// TestOpenSchemaV1File opens a database file written by schema v1 and checks
// its data survives opening (and any later migrations).
func TestOpenSchemaV1File(t *testing.T) {
	src, err := os.ReadFile(filepath.Join("testdata", "schema-v1.db"))
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "hub.db")
	if err := os.WriteFile(path, src, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatalf("Open v1 file: %v", err)
	}
	defer s.Close()
	fb, err := s.Feedback(ctx, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	if len(fb) != 1 || fb[0].Ticket != "T-V1-0001" {
		t.Errorf("feedback from v1 file = %+v", fb)
	}
	k, err := s.Kiosk(ctx, "k-sangcheng-01")
	if err != nil {
		t.Fatal(err)
	}
	if k.DesiredVersion != 3 {
		t.Errorf("desired version from v1 file = %d, want 3", k.DesiredVersion)
	}
	v, changed, err := s.SetDesired(ctx, "k-sangcheng-01", "new-hash")
	if err != nil || !changed || v <= 3 {
		t.Errorf("SetDesired after v1 = %d, %v, %v; want > 3, changed", v, changed, err)
	}
	if devs, err := s.Devices(ctx); err != nil || len(devs) != 0 {
		t.Errorf("devices after v1 = %v, %v; want none", devs, err)
	}
	if floor, err := s.TicketFloor(ctx, "k-sangcheng-01"); err != nil || floor != 2 {
		t.Errorf("ticket floor from v1 file = %d, %v; want 2 (after T-V1-0001)", floor, err)
	}
}

func feedback(ticket string) protocol.Feedback {
	return protocol.Feedback{
		Ticket: ticket, Kiosk: "k-sangcheng-01", Kind: protocol.KindComplaint,
		Category: protocol.CatIllegalConstruction, Where: protocol.Where{Building: "12号", Unit: "3", Room: "401"},
		Description: "楼顶违建", Phone: "13800000000",
		SubmittedAt: time.Date(2026, 7, 1, 9, 30, 0, 0, time.UTC),
	}
}

func TestInsertFeedbackExactlyOnce(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	id1, id2 := protocol.NewID(), protocol.NewID()
	recv := time.Date(2026, 7, 1, 9, 31, 0, 0, time.UTC)
	tests := []struct {
		name    string
		id      string
		ticket  string
		wantDup bool
		wantErr error
	}{
		{"first", id1, "T-0001", false, nil},
		{"same id again", id1, "T-0001", true, nil},
		{"same id, other ticket", id1, "T-0009", true, nil},
		{"second record", id2, "T-0002", false, nil},
		{"ticket of another record", protocol.NewID(), "T-0001", false, ErrTicketConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			dup, err := s.InsertFeedback(ctx, tc.id, feedback(tc.ticket), recv)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("err = %v, want %v", err, tc.wantErr)
			}
			if dup != tc.wantDup {
				t.Errorf("duplicate = %v, want %v", dup, tc.wantDup)
			}
		})
	}
	all, err := s.Feedback(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("%d rows, want 2", len(all))
	}
	got := all[1] // newest first; both received at the same time, so by id desc
	if got.ID != id1 || got.Feedback != feedback("T-0001") || !got.ReceivedAt.Equal(recv) {
		t.Errorf("stored %+v", got)
	}
	other, err := s.Feedback(ctx, "k-other", 100)
	if err != nil || len(other) != 0 {
		t.Errorf("Feedback(k-other) = %v, %v", other, err)
	}
}

func TestDesiredVersionMonotonic(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	var last int64
	steps := []struct {
		name, kiosk, hash string
		wantChanged       bool
	}{
		{"first", "k1", "a", true},
		{"same content", "k1", "a", false},
		{"other kiosk", "k2", "a", true},
		{"changed", "k1", "b", true},
		{"changed back", "k1", "a", true},
	}
	for round := range 2 {
		s, err := Open(ctx, path)
		if err != nil {
			t.Fatal(err)
		}
		for _, st := range steps {
			v, changed, err := s.SetDesired(ctx, st.kiosk, st.hash+string(rune('0'+round)))
			if err != nil {
				t.Fatalf("round %d %s: %v", round, st.name, err)
			}
			want := st.wantChanged
			if changed != want {
				t.Errorf("round %d %s: changed = %v, want %v", round, st.name, changed, want)
			}
			if changed && v <= last {
				t.Errorf("round %d %s: version %d not above %d", round, st.name, v, last)
			}
			if changed {
				last = v
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
}

func TestPresenceEpochRule(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	at := time.Now()
	p := func(state protocol.PresenceState, epoch int64) protocol.Presence {
		return protocol.Presence{Kiosk: "k1", State: state, Epoch: epoch}
	}
	steps := []struct {
		name        string
		p           protocol.Presence
		wantApplied bool
		wantOnline  bool
		wantEpoch   int64
	}{
		{"birth", p(protocol.Online, 10), true, true, 10},
		{"new session", p(protocol.Online, 11), true, true, 11},
		{"late will of old session", p(protocol.Offline, 10), false, true, 11},
		{"will of current session", p(protocol.Offline, 11), true, false, 11},
		{"repeated birth of ended session", p(protocol.Online, 11), false, false, 11},
		{"next session", p(protocol.Online, 12), true, true, 12},
	}
	for _, st := range steps {
		applied, err := s.ApplyPresence(ctx, st.p, at)
		if err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		k, err := s.Kiosk(ctx, "k1")
		if err != nil {
			t.Fatal(err)
		}
		if applied != st.wantApplied || k.Online != st.wantOnline || k.Epoch != st.wantEpoch {
			t.Errorf("%s: applied=%v online=%v epoch=%d, want %v %v %d",
				st.name, applied, k.Online, k.Epoch, st.wantApplied, st.wantOnline, st.wantEpoch)
		}
	}
}

func TestHeartbeat(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	at := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	hb := protocol.Heartbeat{Kiosk: "k1", Epoch: 5, SoftwareVersion: "0.1.0", UptimeSeconds: 60,
		OutboxDepth: 2, ContentVersion: 7, FreeDiskBytes: 1 << 30}
	if _, err := s.ApplyPresence(ctx, protocol.Presence{Kiosk: "k1", State: protocol.Online, Epoch: 5}, at); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.ApplyHeartbeat(ctx, hb, at); err != nil || !ok {
		t.Fatalf("ApplyHeartbeat = %v, %v", ok, err)
	}
	old := hb
	old.Epoch, old.SoftwareVersion = 4, "old"
	if ok, err := s.ApplyHeartbeat(ctx, old, at.Add(time.Second)); err != nil || ok {
		t.Fatalf("ApplyHeartbeat(old epoch) = %v, %v; want ignored", ok, err)
	}
	k, err := s.Kiosk(ctx, "k1")
	if err != nil {
		t.Fatal(err)
	}
	want := KioskRecord{ID: "k1", Online: true, LastSeen: at, Epoch: 5, SoftwareVersion: "0.1.0", UptimeSeconds: 60,
		OutboxDepth: 2, ContentVersion: 7, FreeDiskBytes: 1 << 30}
	if k != want {
		t.Errorf("kiosk = %+v\nwant     %+v", k, want)
	}
}

func TestNotices(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)
	mk := func(id string, from, until time.Time) protocol.Notice {
		return protocol.Notice{ID: id, Title: "标题 " + id, Body: "正文", Category: protocol.NoticeEvent,
			Priority: protocol.PriorityNormal, ValidFrom: from, ValidUntil: until,
			Targets: []protocol.Target{{Level: protocol.LevelDistrict, ID: "huangpu"}}}
	}
	ns := []protocol.Notice{
		mk("active", now.Add(-time.Hour), time.Time{}),
		mk("future", now.Add(time.Hour), now.Add(2*time.Hour)),
		mk("expired", now.Add(-2*time.Hour), now.Add(-time.Hour)),
		mk("withdrawn", now.Add(-time.Hour), time.Time{}),
	}
	for i, n := range ns {
		if err := s.CreateNotice(ctx, n, now.Add(time.Duration(i)*time.Second)); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateNotice(ctx, ns[0], now); err == nil {
		t.Error("CreateNotice with an existing id succeeded")
	}
	w1, err := s.WithdrawNotice(ctx, "withdrawn", now)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := s.WithdrawNotice(ctx, "withdrawn", now.Add(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	if !w1.WithdrawnAt.Equal(now) || !w2.WithdrawnAt.Equal(now) {
		t.Errorf("withdrawn_at = %v then %v, want %v both times", w1.WithdrawnAt, w2.WithdrawnAt, now)
	}
	if _, err := s.WithdrawNotice(ctx, "nope", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("WithdrawNotice(nope) = %v, want ErrNotFound", err)
	}
	live, err := s.LiveNotices(ctx, now)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, n := range live {
		ids = append(ids, n.ID)
	}
	if len(ids) != 2 || ids[0] != "active" || ids[1] != "future" {
		t.Errorf("LiveNotices = %v, want [active future]", ids)
	}
	got, err := s.Notice(ctx, "future")
	if err != nil {
		t.Fatal(err)
	}
	if !got.ValidFrom.Equal(ns[1].ValidFrom) || !got.ValidUntil.Equal(ns[1].ValidUntil) || got.Targets[0] != ns[1].Targets[0] {
		t.Errorf("Notice(future) = %+v", got)
	}
	all, err := s.Notices(ctx)
	if err != nil || len(all) != 4 || all[0].ID != "withdrawn" {
		t.Errorf("Notices = %d records (first %v), %v; want 4 newest first", len(all), all[0].ID, err)
	}
}

// queryPlan returns the EXPLAIN QUERY PLAN details of query.
func queryPlan(t *testing.T, s *SQLite, query string, args ...any) string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+query, args...)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return strings.Join(plan, "; ")
}
