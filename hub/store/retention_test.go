package store

import (
	"context"
	"fmt"
	"maps"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// phones returns every stored phone: "feedback/<id>", "case/<id>" and
// "complainant/<case>/<source ref>" to the phone.
func phones(t *testing.T, s *SQLite) map[string]string {
	t.Helper()
	rows, err := s.db.QueryContext(context.Background(), `SELECT 'feedback/' || id, phone FROM feedback
		UNION ALL SELECT 'case/' || id, phone FROM cases
		UNION ALL SELECT 'complainant/' || case_id || '/' || source_ref, phone FROM case_complainants`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := make(map[string]string)
	for rows.Next() {
		var k, p string
		if err := rows.Scan(&k, &p); err != nil {
			t.Fatal(err)
		}
		out[k] = p
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// retentionCase stores a case created at created, its kiosk feedback
// record first when source is kiosk (source ref "fb-<id>").
func retentionCase(t *testing.T, s *SQLite, id, source, phone string, created time.Time) CaseRecord {
	t.Helper()
	ctx := context.Background()
	c := CaseRecord{ID: id, Ticket: "T-" + id, Source: source, SourceRef: "ref-" + id, Community: "ruiyi",
		Street: "wuliqiao", District: "huangpu", Kind: "complaint", Category: "facade", Building: "1号",
		Phone: phone, State: "received", ReportedAt: created, CreatedAt: created, UpdatedAt: created}
	if source == "kiosk" {
		c.SourceRef, c.Kiosk = "fb-"+id, "k1"
		f := protocol.Feedback{Ticket: c.Ticket, Kiosk: "k1", Kind: "complaint", Category: "facade",
			Where: protocol.Where{Building: "1号"}, Phone: phone, SubmittedAt: created}
		if _, err := s.InsertFeedback(ctx, c.SourceRef, f, created); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := s.InsertCase(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	return c
}

// setCase changes one case as UpdateCase does (a merge copies the
// complainants to the case merged into).
func setCase(t *testing.T, s *SQLite, id string, change func(c *CaseRecord)) {
	t.Helper()
	if err := s.UpdateCase(context.Background(), []string{id}, func(cs []*CaseRecord) ([]CaseEvent, error) {
		change(cs[0])
		return nil, nil
	}); err != nil {
		t.Fatal(err)
	}
}

func closeAt(at time.Time) func(c *CaseRecord) {
	return func(c *CaseRecord) { c.State, c.ClosedAt, c.UpdatedAt = "closed", at, at }
}

func mergeInto(target string, at time.Time) func(c *CaseRecord) {
	return func(c *CaseRecord) { c.State, c.ClosedAt, c.UpdatedAt, c.MergedInto = "closed", at, at, target }
}

// TestForgetPhones: cases closed before the cutoff lose their phones in
// the case, its complainants (merged-in ones too) and their feedback
// records; every other phone stays; a second run changes nothing.
func TestForgetPhones(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	cutoff := t0.Add(400 * 24 * time.Hour)
	before, after := cutoff.Add(-time.Hour), cutoff.Add(24*time.Hour)

	// Closed before the cutoff: forgotten.
	retentionCase(t, s, "old", "kiosk", "13800000001", t0)
	setCase(t, s, "old", closeAt(before))
	retentionCase(t, s, "hotline", "hotline", "13800000002", t0)
	setCase(t, s, "hotline", closeAt(before))
	// A hotline case without a phone of its own, with a kiosk case merged
	// in (its complainant copy has the phone), then closed.
	retentionCase(t, s, "target", "hotline", "", t0)
	retentionCase(t, s, "merged", "kiosk", "13800000003", t0)
	setCase(t, s, "merged", mergeInto("target", t0.Add(time.Hour)))
	setCase(t, s, "target", closeAt(before))
	// Closed before the cutoff without any phone: nothing to forget.
	retentionCase(t, s, "nophone", "kiosk", "", t0)
	setCase(t, s, "nophone", closeAt(before))

	// Kept: closed at or after the cutoff, open, answered, and a case
	// merged long ago into a case still open.
	retentionCase(t, s, "atcutoff", "kiosk", "13800000004", t0)
	setCase(t, s, "atcutoff", closeAt(cutoff))
	retentionCase(t, s, "recent", "kiosk", "13800000005", t0)
	setCase(t, s, "recent", closeAt(after))
	retentionCase(t, s, "open", "kiosk", "13800000006", t0)
	setCase(t, s, "open", func(c *CaseRecord) { c.State = "in_progress" })
	retentionCase(t, s, "answered", "partner", "13800000007", t0)
	setCase(t, s, "answered", func(c *CaseRecord) { c.State = "answered" })
	retentionCase(t, s, "opentarget", "kiosk", "13800000008", t0)
	retentionCase(t, s, "waiting", "kiosk", "13800000009", t0)
	setCase(t, s, "waiting", mergeInto("opentarget", t0.Add(time.Hour)))

	was := phones(t, s)
	forgotten := []string{
		"case/old", "complainant/old/fb-old", "feedback/fb-old",
		"case/hotline", "complainant/hotline/ref-hotline",
		"complainant/target/fb-merged",
		"case/merged", "complainant/merged/fb-merged", "feedback/fb-merged",
	}
	for _, k := range forgotten {
		if was[k] == "" {
			t.Fatalf("%s has no phone before forgetting: %v", k, was)
		}
	}
	kept := 0
	for k, p := range was {
		if p != "" && !slices.Contains(forgotten, k) {
			kept++
		}
	}
	if kept < 15 {
		t.Fatalf("only %d phones to keep: %v", kept, was)
	}

	n, err := s.ForgetPhones(ctx, cutoff, 0)
	if err != nil || n != 4 {
		t.Fatalf("ForgetPhones = %d, %v; want 4 cases (old, hotline, target, merged)", n, err)
	}
	now := phones(t, s)
	for _, k := range slices.Sorted(maps.Keys(was)) {
		want := was[k]
		if slices.Contains(forgotten, k) {
			want = ""
		}
		if now[k] != want {
			t.Errorf("%s: phone %q, want %q", k, now[k], want)
		}
	}
	if len(now) != len(was) {
		t.Errorf("%d phones stored after, %d before: forgetting removed or added rows", len(now), len(was))
	}
	c, err := s.Case(ctx, "old")
	if err != nil || c.State != "closed" || !c.UpdatedAt.Equal(before) || c.Ticket != "T-old" {
		t.Errorf("forgotten case = %+v, %v; want it unchanged but for the phone", c, err)
	}

	if n, err := s.ForgetPhones(ctx, cutoff, 0); err != nil || n != 0 {
		t.Errorf("second ForgetPhones = %d, %v; want 0", n, err)
	}
	if again := phones(t, s); !maps.Equal(again, now) {
		t.Errorf("second run changed phones:\n%v\nwant\n%v", again, now)
	}

	// Once the open target closes (and the cutoff passes it), the case
	// merged into it goes too.
	setCase(t, s, "opentarget", closeAt(after))
	if n, err := s.ForgetPhones(ctx, after.Add(time.Second), 0); err != nil || n != 4 {
		t.Errorf("ForgetPhones after the target closed = %d, %v; want 4 (atcutoff, recent, opentarget, waiting)", n, err)
	}
	last := phones(t, s)
	for _, k := range []string{"case/waiting", "feedback/fb-waiting", "complainant/opentarget/fb-waiting", "case/opentarget"} {
		if last[k] != "" {
			t.Errorf("%s: phone %q after the target closed, want none", k, last[k])
		}
	}
	for _, k := range []string{"case/open", "complainant/open/fb-open", "feedback/fb-open", "case/answered"} {
		if last[k] != was[k] {
			t.Errorf("%s: phone %q after the target closed, want %q", k, last[k], was[k])
		}
	}
}

// seedClosed stores n kiosk cases with a phone, closed at closed, each
// with its feedback record and complainant, in one transaction.
func seedClosed(t *testing.T, s *SQLite, prefix string, n int, closed time.Time) {
	t.Helper()
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		id := fmt.Sprintf("%s-%05d", prefix, i)
		c := CaseRecord{ID: id, Ticket: "T-" + id, Source: "kiosk", SourceRef: "fb-" + id, Kiosk: "k1",
			Community: "ruiyi", Street: "wuliqiao", District: "huangpu", Kind: "complaint", Category: "facade",
			Phone: "13800138000", State: "closed", ReportedAt: closed, CreatedAt: closed, UpdatedAt: closed, ClosedAt: closed}
		if _, err := tx.ExecContext(ctx, `INSERT INTO feedback (`+feedbackCols+`) VALUES (?, ?, 'k1', 'complaint', 'facade', '', '', '', '', ?, ?, ?)`,
			c.SourceRef, c.Ticket, c.Phone, nanos(closed), nanos(closed)); err != nil {
			t.Fatal(err)
		}
		if err := insertCase(ctx, tx, c); err != nil {
			t.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO case_complainants (case_id, source, source_ref, phone, added_at) VALUES (?, 'kiosk', ?, ?, ?)`,
			c.ID, c.SourceRef, c.Phone, nanos(closed)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		t.Fatal(err)
	}
}

// TestForgetPhonesBatches: one call handles at most the batch size; the
// caller's loop until 0 clears them all, and cases after the cutoff stay.
func TestForgetPhonesBatches(t *testing.T) {
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	cutoff := t0.Add(24 * time.Hour)
	tests := []struct {
		name  string
		limit int
		old   int
		want  []int
	}{
		{"default batch", 0, 2*MaxForgetBatch + 37, []int{MaxForgetBatch, MaxForgetBatch, 37, 0}},
		{"over the maximum", MaxForgetBatch + 1, MaxForgetBatch + 1, []int{MaxForgetBatch, 1, 0}},
		{"small batch", 300, 700, []int{300, 300, 100, 0}},
		{"exact", 50, 100, []int{50, 50, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, _ := openTemp(t)
			ctx := context.Background()
			seedClosed(t, s, "old", tt.old, cutoff.Add(-time.Minute))
			seedClosed(t, s, "new", 20, cutoff)
			var got []int
			for range len(tt.want) + 1 {
				n, err := s.ForgetPhones(ctx, cutoff, tt.limit)
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, n)
				if n == 0 {
					break
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("cases per call = %v, want %v", got, tt.want)
			}
			left := 0
			for k, p := range phones(t, s) {
				isOld := strings.Contains(k, "/old-") || strings.Contains(k, "/fb-old-")
				if isOld && p != "" {
					t.Fatalf("%s kept its phone", k)
				}
				if !isOld && p != "" {
					left++
				}
			}
			if left != 3*20 {
				t.Errorf("%d phones left, want 60 (the 20 cases closed at the cutoff)", left)
			}
		})
	}
}

// checkForgetPlan: finding the cases to forget searches the two partial
// indexes by time, and scans neither table.
func checkForgetPlan(t *testing.T, s *SQLite) {
	t.Helper()
	for q, want := range map[string]string{
		forgetCases:        "SEARCH c USING INDEX cases_closed_phone (closed_at<?)",
		forgetComplainants: "SEARCH p USING INDEX case_complainants_phone (added_at<?)",
	} {
		p := queryPlan(t, s, q, int64(1), 10)
		t.Logf("%s", p)
		if !strings.HasPrefix(p, want) {
			t.Errorf("plan %q does not start with %q", p, want)
		}
		if strings.Contains(p, "SCAN") || strings.Contains(p, "ORDER BY") {
			t.Errorf("plan %q scans or sorts", p)
		}
	}
}

func TestForgetPhonesUsesIndexes(t *testing.T) {
	s, _ := openTemp(t)
	seedCases(t, s, 2000)
	seedClosed(t, s, "old", 200, caseBase)
	if _, err := s.db.ExecContext(context.Background(), `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	checkForgetPlan(t, s)
}

// TestRetentionMigration: a database at schema 11 with closed cases gets
// the retention indexes from migration 12, and forgetting works and uses
// them.
func TestRetentionMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 1, 5, 9, 0, 0, 0, time.UTC)
	// Back to schema 11: what migrations 12 and later add goes, their
	// records too.
	if _, err := s.db.ExecContext(ctx, `DROP INDEX cases_closed_phone; DROP INDEX case_complainants_phone;
		DROP TABLE update_reports; DROP TABLE kiosk_updates; DROP TABLE rollouts; DROP TABLE releases;
		DROP TABLE IF EXISTS commands; DROP TABLE IF EXISTS kiosk_screenshots;
		DELETE FROM schema_migrations WHERE version >= 12`); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != 11 {
		t.Fatalf("schema version after going back = %d, %v; want 11", v, err)
	}
	seedClosed(t, s, "old", 30, t0)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if v, err := s.SchemaVersion(ctx); err != nil || v < 12 {
		t.Fatalf("schema version %d, %v; want at least 12", v, err)
	}
	checkForgetPlan(t, s)
	if n, err := s.ForgetPhones(ctx, t0.Add(time.Second), 0); err != nil || n != 30 {
		t.Errorf("ForgetPhones after migrating = %d, %v; want 30", n, err)
	}
	for k, p := range phones(t, s) {
		if p != "" {
			t.Errorf("%s kept its phone %q", k, p)
		}
	}
}
