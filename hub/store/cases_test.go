package store

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

var caseBase = time.Date(2026, 11, 2, 9, 0, 0, 0, time.UTC)

var (
	caseStates      = []string{"received", "dispatched", "in_progress", "answered", "rated", "closed", "returned"}
	caseCategories  = []string{"illegal_construction", "load_bearing", "facade", "other"}
	caseCommunities = []string{"sangcheng", "ruiyi", "c3"}
)

// testCase makes the i-th of a deterministic set of cases: state, category
// and community cycle with different periods; dispatched ones are due i
// hours after caseBase.
func testCase(i int) CaseRecord {
	created := caseBase.Add(time.Duration(i) * time.Minute)
	c := CaseRecord{
		ID: fmt.Sprintf("case-%07d", i), Ticket: fmt.Sprintf("T-%07d", i), Source: "kiosk", SourceRef: fmt.Sprintf("fb-%07d", i),
		Community: caseCommunities[i%3], Street: "wuliqiao", District: "huangpu",
		Kind: "complaint", Category: caseCategories[i%4], Building: fmt.Sprintf("%d号", i%10),
		Phone: "13800138000", State: caseStates[i%7], ReportedAt: created, CreatedAt: created, UpdatedAt: created,
	}
	if c.State != "received" {
		c.DispatchedAt = created
		c.DueAt = caseBase.Add(time.Duration(i) * time.Hour)
		c.EscalateAt = c.DueAt
	}
	return c
}

func TestInsertCaseIdempotent(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	c := testCase(1)
	ev := []CaseEvent{{CaseID: c.ID, At: c.CreatedAt, Actor: "system", Role: "system", Action: "create", To: c.State}}
	got, dup, err := s.InsertCase(ctx, c, ev)
	if err != nil || dup || got.ID != c.ID {
		t.Fatalf("first insert: %v dup=%v id=%s", err, dup, got.ID)
	}
	again := c
	again.ID = "case-other"
	again.Ticket = "T-other"
	got, dup, err = s.InsertCase(ctx, again, ev)
	if err != nil || !dup || got.ID != c.ID {
		t.Fatalf("second insert: %v dup=%v id=%s, want the first case and duplicate", err, dup, got.ID)
	}
	if got != c {
		t.Errorf("stored case\n%+v\nwant\n%+v", got, c)
	}
	evs, err := s.CaseEvents(ctx, c.ID)
	if err != nil || len(evs) != 1 {
		t.Fatalf("events %v %v, want one", evs, err)
	}
	cs, err := s.CaseComplainants(ctx, c.ID)
	if err != nil || len(cs) != 1 || cs[0].SourceRef != c.SourceRef || cs[0].Phone != c.Phone {
		t.Fatalf("complainants %+v %v", cs, err)
	}
	if _, err := s.Case(ctx, "nope"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Case(nope) = %v, want ErrNotFound", err)
	}
	if b, err := s.CaseByTicket(ctx, c.Ticket); err != nil || b.ID != c.ID {
		t.Errorf("CaseByTicket = %s %v", b.ID, err)
	}
}

func TestUpdateCaseRollsBack(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	c := testCase(1)
	if _, _, err := s.InsertCase(ctx, c, nil); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	err := s.UpdateCase(ctx, []string{c.ID}, func(cs []*CaseRecord) ([]CaseEvent, error) {
		cs[0].State = "closed"
		return nil, boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("UpdateCase = %v, want boom", err)
	}
	if got, err := s.Case(ctx, c.ID); err != nil || got.State != c.State {
		t.Errorf("after failed update: state %q %v, want %q", got.State, err, c.State)
	}
	if err := s.UpdateCase(ctx, []string{"nope"}, nil); !errors.Is(err, ErrNotFound) {
		t.Errorf("UpdateCase(nope) = %v, want ErrNotFound", err)
	}
}

// seedCases inserts n testCases in one transaction.
func seedCases(tb testing.TB, s *SQLite, n int) {
	tb.Helper()
	ctx := context.Background()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		tb.Fatal(err)
	}
	for i := range n {
		if err := insertCase(ctx, tx, testCase(i)); err != nil {
			tb.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		tb.Fatal(err)
	}
}

func TestListCases(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	const n = 3000
	seedCases(t, s, n)
	now := caseBase.Add(100 * time.Hour)
	open := map[string]bool{"received": true, "dispatched": true, "in_progress": true, "returned": true}
	tests := []struct {
		name   string
		filter CaseFilter
		want   func(c CaseRecord) bool
	}{
		{"all", CaseFilter{}, func(CaseRecord) bool { return true }},
		{"state", CaseFilter{States: []string{"received"}}, func(c CaseRecord) bool { return c.State == "received" }},
		{"two states", CaseFilter{States: []string{"dispatched", "returned"}}, func(c CaseRecord) bool { return c.State == "dispatched" || c.State == "returned" }},
		{"category", CaseFilter{Category: "facade"}, func(c CaseRecord) bool { return c.Category == "facade" }},
		{"community and state", CaseFilter{Community: "ruiyi", States: []string{"in_progress"}}, func(c CaseRecord) bool { return c.Community == "ruiyi" && c.State == "in_progress" }},
		{"street", CaseFilter{Street: "wuliqiao"}, func(c CaseRecord) bool { return true }},
		{"district none", CaseFilter{District: "jingan"}, func(c CaseRecord) bool { return false }},
		{"overdue", CaseFilter{DueBefore: now}, func(c CaseRecord) bool { return open[c.State] && !c.DueAt.IsZero() && c.DueAt.Before(now) }},
		{"due soon", CaseFilter{DueFrom: now, DueBefore: now.Add(10 * time.Hour)}, func(c CaseRecord) bool {
			return open[c.State] && !c.DueAt.IsZero() && !c.DueAt.Before(now) && c.DueAt.Before(now.Add(10*time.Hour))
		}},
		{"escalate", CaseFilter{EscalateBy: now}, func(c CaseRecord) bool { return !c.EscalateAt.IsZero() && !c.EscalateAt.After(now) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []string
			for i := n - 1; i >= 0; i-- {
				if c := testCase(i); tt.want(c) {
					want = append(want, c.ID)
				}
			}
			if !tt.filter.DueBefore.IsZero() || !tt.filter.EscalateBy.IsZero() {
				slices.Reverse(want) // earliest deadline first; testCase deadlines grow with i
			}
			// Page through with a small limit.
			var got []string
			f := tt.filter
			f.Limit = 97
			if !f.EscalateBy.IsZero() {
				f.Limit = MaxCasePage // not paged
			}
			for {
				page, err := s.ListCases(ctx, f)
				if err != nil {
					t.Fatal(err)
				}
				for _, c := range page {
					got = append(got, c.ID)
				}
				if len(page) < f.Limit || !f.EscalateBy.IsZero() {
					break
				}
				f.After = &page[len(page)-1]
			}
			if strings.Join(got, ",") != strings.Join(want, ",") {
				t.Errorf("got %d cases, want %d (first got %v, want %v)", len(got), len(want), head(got), head(want))
			}
		})
	}
}

func head(s []string) []string { return s[:min(3, len(s))] }

// TestListCasesUsesIndexes checks the query plans of the inbox queries: no
// full scan of cases and no temporary sort.
func TestListCasesUsesIndexes(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	seedCases(t, s, 500)
	if _, err := s.db.ExecContext(ctx, `ANALYZE`); err != nil {
		t.Fatal(err)
	}
	queries := map[string]string{
		"state":     `SELECT id FROM cases WHERE state IN ('received') ORDER BY created_at DESC, id DESC LIMIT 50`,
		"community": `SELECT id FROM cases WHERE community = 'ruiyi' AND state IN ('received') ORDER BY created_at DESC, id DESC LIMIT 50`,
		"category":  `SELECT id FROM cases WHERE category = 'facade' AND state IN ('received') ORDER BY created_at DESC, id DESC LIMIT 50`,
		"source":    `SELECT id FROM cases WHERE source = 'hotline' AND state IN ('received') ORDER BY created_at DESC, id DESC LIMIT 50`,
		"kiosk":     `SELECT id FROM cases WHERE kiosk = 'k1' AND kiosk != '' ORDER BY updated_at DESC LIMIT 500`,
		"merge": `SELECT id FROM cases WHERE community = 'ruiyi' AND category = 'facade' AND building = '1号' AND created_at >= 1 AND created_at < 9
			AND state IN ('received', 'dispatched', 'returned') ORDER BY created_at, id LIMIT 500`,
		"district inbox":      `SELECT id FROM cases WHERE district = 'huangpu' ORDER BY created_at DESC, id DESC LIMIT 50`,
		"street inbox":        `SELECT id FROM cases WHERE street = 'wuliqiao' ORDER BY created_at DESC, id DESC LIMIT 50`,
		"community inbox":     `SELECT id FROM cases WHERE community = 'ruiyi' ORDER BY created_at DESC, id DESC LIMIT 50`,
		"officer tasks":       `SELECT id FROM cases WHERE assignee = 'o1' AND assignee != '' ORDER BY created_at DESC, id DESC LIMIT 50`,
		"district overdue":    `SELECT id FROM cases WHERE district = 'huangpu' AND ` + openStates + ` AND due_at < 5 ORDER BY due_at, id LIMIT 50`,
		"street overdue":      `SELECT id FROM cases WHERE street = 'wuliqiao' AND ` + openStates + ` AND due_at < 5 ORDER BY due_at, id LIMIT 50`,
		"overdue":             `SELECT id FROM cases WHERE ` + openStates + ` AND due_at < 5 ORDER BY due_at, id LIMIT 50`,
		"escalate":            `SELECT id FROM cases WHERE escalate_at <= 5 ORDER BY escalate_at LIMIT 50`,
		"detail":              `SELECT id FROM cases WHERE id = 'case-0000001'`,
		"query code":          `SELECT id FROM cases WHERE ticket GLOB '261127-*-0001' ORDER BY ticket LIMIT 50`,
		"insert dedupe":       `SELECT id FROM cases WHERE source_ref = 'a/b' AND source IN ('hotline', 'patrol', 'partner') LIMIT 1`,
		"audit of one object": `SELECT seq FROM audit_log WHERE object = 'account:x' ORDER BY seq DESC LIMIT 50`,
	}
	for name, q := range queries {
		t.Run(name, func(t *testing.T) {
			p := queryPlan(t, s, q)
			t.Logf("%s", p)
			if strings.Contains(p, "SCAN cases") || !strings.Contains(p, "INDEX") {
				t.Errorf("plan %q does not use an index", p)
			}
			if strings.Contains(p, "TEMP B-TREE") {
				t.Errorf("plan %q sorts in a temporary tree", p)
			}
		})
	}
}

var benchCases = flag.Int("cases.n", 1_000_000, "cases seeded by BenchmarkCases")

// BenchmarkCases seeds -cases.n cases (default 1,000,000; batched in one
// transaction, each with a complainant) and measures the first inbox page
// under common filters and a case's detail (case, complainants, timeline),
// reporting p50 and p99 latencies. Run it alone:
//
//	go test ./hub/store -run '^$' -bench BenchmarkCases -benchtime 2000x
func BenchmarkCases(b *testing.B) {
	ctx := context.Background()
	s, err := Open(ctx, filepath.Join(b.TempDir(), "hub.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() {
		if err := s.Close(); err != nil {
			b.Error(err)
		}
	})
	n := *benchCases
	start := time.Now()
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		c := testCase(i)
		if err := insertCase(ctx, tx, c); err != nil {
			b.Fatal(err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO case_complainants (case_id, source, source_ref, phone, added_at)
			VALUES (?, ?, ?, ?, ?)`, c.ID, c.Source, c.SourceRef, c.Phone, c.CreatedAt.UnixNano()); err != nil {
			b.Fatal(err)
		}
	}
	if err := tx.Commit(); err != nil {
		b.Fatal(err)
	}
	if _, err := s.db.ExecContext(ctx, `ANALYZE`); err != nil {
		b.Fatal(err)
	}
	b.Logf("seeded %d cases in %v", n, time.Since(start))
	now := caseBase.Add(time.Duration(n/2) * time.Hour)
	filters := []struct {
		name string
		f    CaseFilter
	}{
		{"inbox_all", CaseFilter{}},
		{"inbox_state", CaseFilter{States: []string{"received"}}},
		{"inbox_community_state", CaseFilter{Community: "ruiyi", States: []string{"dispatched", "in_progress"}}},
		{"inbox_category_state", CaseFilter{Category: "facade", States: []string{"returned"}}},
		{"inbox_district", CaseFilter{District: "huangpu"}},
		{"overdue", CaseFilter{DueBefore: now}},
	}
	for _, tc := range filters {
		b.Run(tc.name, func(b *testing.B) {
			f := tc.f
			f.Limit = 50
			measure(b, func(int) {
				page, err := s.ListCases(ctx, f)
				if err != nil || len(page) == 0 {
					b.Fatalf("ListCases: %d cases, %v", len(page), err)
				}
			})
		})
	}
	b.Run("detail", func(b *testing.B) {
		measure(b, func(i int) {
			id := testCase(i * 7919 % n).ID
			if _, err := s.Case(ctx, id); err != nil {
				b.Fatal(err)
			}
			if cs, err := s.CaseComplainants(ctx, id); err != nil || len(cs) != 1 {
				b.Fatalf("complainants %v %v", cs, err)
			}
			if _, err := s.CaseEvents(ctx, id); err != nil {
				b.Fatal(err)
			}
		})
	})
}

// measure runs op in b.Loop and reports the p50 and p99 of its latency.
func measure(b *testing.B, op func(i int)) {
	var lat []time.Duration
	for i := 0; b.Loop(); i++ {
		t0 := time.Now()
		op(i)
		lat = append(lat, time.Since(t0))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// TestCasesByQueryCode: a query code finds the cases of its day and number
// at every kiosk, and no other.
func TestCasesByQueryCode(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	tickets := []string{"261127-K-SANGCHENG-01-0007", "261127-K-RUIYI-02-0007", "261127-K-SANGCHENG-01-0070",
		"261127-K-SANGCHENG-01-10007", "261128-K-SANGCHENG-01-0007", "261127-QR-0007"}
	for i, tk := range tickets {
		c := testCase(i)
		c.Ticket = tk
		if _, _, err := s.InsertCase(ctx, c, nil); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		code string
		want []string
	}{
		{"2611270007", []string{"261127-K-RUIYI-02-0007", "261127-K-SANGCHENG-01-0007", "261127-QR-0007"}},
		{"26112710007", []string{"261127-K-SANGCHENG-01-10007"}},
		{"2611290007", nil},
	}
	for _, tc := range tests {
		got, err := s.CasesByQueryCode(ctx, tc.code)
		if err != nil {
			t.Fatalf("%s: %v", tc.code, err)
		}
		var tks []string
		for _, c := range got {
			tks = append(tks, c.Ticket)
		}
		if !slices.Equal(tks, tc.want) {
			t.Errorf("CasesByQueryCode(%s) = %v, want %v", tc.code, tks, tc.want)
		}
	}
	if _, err := s.CasesByQueryCode(ctx, "26112*"); err == nil {
		t.Error("a pattern was taken as a query code")
	}
}
