package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"
)

var cst = time.FixedZone("CST", 8*3600)

func TestDay(t *testing.T) {
	tests := []struct {
		name string
		at   time.Time
		date string // the Shanghai date
		week string // the Monday of its week
	}{
		{"midnight in Shanghai", time.Date(2026, 11, 2, 0, 0, 0, 0, cst), "2026-11-02", "2026-11-02"},
		{"one second before", time.Date(2026, 11, 1, 23, 59, 59, 0, cst), "2026-11-01", "2026-10-26"},
		{"UTC afternoon is the next day", time.Date(2026, 11, 1, 16, 30, 0, 0, time.UTC), "2026-11-02", "2026-11-02"},
		{"Sunday", time.Date(2026, 11, 8, 12, 0, 0, 0, cst), "2026-11-08", "2026-11-02"},
		{"the epoch's Thursday", time.Date(1970, 1, 1, 9, 0, 0, 0, cst), "1970-01-01", "1969-12-29"},
		{"leap day", time.Date(2028, 2, 29, 10, 0, 0, 0, cst), "2028-02-29", "2028-02-28"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := DayOf(tt.at)
			if got := d.Start().In(cst).Format(time.DateTime); got != tt.date+" 00:00:00" {
				t.Errorf("DayOf(%v).Start() = %s, want %s 00:00:00", tt.at, got, tt.date)
			}
			if got := d.Week().Start().In(cst).Format(time.DateOnly); got != tt.week {
				t.Errorf("week of %v starts %s, want %s", tt.at, got, tt.week)
			}
			if d.Week().Start().In(cst).Weekday() != time.Monday {
				t.Errorf("week of %v starts on a %v", tt.at, d.Week().Start().In(cst).Weekday())
			}
		})
	}
}

// statsCase is one seeded case and what happened to it later.
type statsCase struct {
	rec      CaseRecord
	answered time.Time // first answer, zero if none
}

// statsNow is the seeded data's clock: a Monday afternoon in Shanghai.
var statsNow = time.Date(2026, 11, 2, 15, 0, 0, 0, cst)

var (
	statsCommunities = []string{"sangcheng", "ruiyi", "hengfu"}
	statsSources     = []string{"kiosk", "qrcode", "patrol", "partner", "hotline"}
	statsKinds       = []string{"complaint", "consultation", "help", "suggestion"}
	statsCategories  = []string{"illegal_construction", "load_bearing", "change_of_use", "facade", "illegal_renting",
		"green_space", "property_duty", "other"}
	statsStates  = []string{"received", "dispatched", "in_progress", "answered", "rated", "closed", "returned"}
	statsRatings = []string{"", "satisfied", "basically_satisfied", "not_satisfied"}
)

// seedStats stores n random cases received over the 120 days before
// statsNow: half in one bulk insert, half one by one, and then moves a
// third of them on (answer, rate, close, merge) through UpdateCase, so the
// triggers see inserts and updates. It returns the cases as they end up.
func seedStats(t *testing.T, s *SQLite, n int, seed uint64) []*statsCase {
	t.Helper()
	ctx := context.Background()
	rnd := rand.New(rand.NewPCG(seed, 42))
	pick := func(vs []string) string { return vs[rnd.IntN(len(vs))] }
	var all []*statsCase
	var bulk []CaseRecord
	var bulkEvs []CaseEvent
	for i := range n {
		created := statsNow.Add(-time.Duration(rnd.Int64N(int64(120 * 24 * time.Hour)))).UTC().Truncate(time.Second)
		comm := pick(statsCommunities)
		c := CaseRecord{ID: fmt.Sprintf("c%04d", i), Ticket: fmt.Sprintf("T%04d", i), Source: pick(statsSources),
			SourceRef: fmt.Sprintf("r%04d", i), Community: comm, Street: "s-" + comm, District: "d-" + comm,
			Kind: pick(statsKinds), Category: pick(statsCategories), State: pick(statsStates),
			Phone: "13800138000", Description: "楼道堆物", ReportedAt: created, CreatedAt: created, UpdatedAt: created}
		sc := &statsCase{rec: c}
		if c.State != "received" {
			sc.rec.DispatchedAt = created.Add(time.Hour)
			sc.rec.DueAt = created.Add(time.Duration(1+rnd.IntN(15*24)) * time.Hour)
		}
		evs := []CaseEvent{{CaseID: c.ID, At: created, Actor: "system", Role: "system", Action: "create", To: "received"}}
		switch sc.rec.State {
		case "answered", "rated", "closed":
			if rnd.IntN(5) > 0 { // closed unanswered: refused at receipt
				sc.answered = created.Add(time.Duration(1+rnd.IntN(200)) * time.Hour)
				evs = append(evs, CaseEvent{CaseID: c.ID, At: sc.answered, Actor: "o", Role: "officer", Action: "answer",
					From: "in_progress", To: "answered"})
			}
		}
		if sc.rec.State == "rated" || sc.rec.State == "closed" {
			sc.rec.Rating = pick(statsRatings)
		}
		if sc.rec.State == "closed" {
			sc.rec.ClosedAt = created.Add(time.Duration(1+rnd.IntN(20*24)) * time.Hour)
		}
		all = append(all, sc)
		if i%2 == 0 {
			bulk = append(bulk, sc.rec)
			bulkEvs = append(bulkEvs, evs...)
		} else if _, dup, err := s.InsertCase(ctx, sc.rec, evs); err != nil || dup {
			t.Fatalf("insert %s: %v %v", c.ID, dup, err)
		}
	}
	if err := s.BulkInsertCases(ctx, bulk, bulkEvs); err != nil {
		t.Fatal(err)
	}
	// Move a third on.
	for i, sc := range all {
		if i%3 != 0 {
			continue
		}
		var evs []CaseEvent
		at := sc.rec.CreatedAt.Add(300 * time.Hour)
		switch sc.rec.State {
		case "dispatched", "in_progress", "returned":
			if i%2 == 0 {
				// Answered now, answered a second time later (the
				// first answer counts).
				sc.rec.State = "answered"
				sc.answered = at
				evs = append(evs, CaseEvent{CaseID: sc.rec.ID, At: at, Action: "answer", Actor: "o", Role: "officer"},
					CaseEvent{CaseID: sc.rec.ID, At: at.Add(time.Hour), Action: "answer", Actor: "o", Role: "officer"})
			} else if j := i + 3; j < len(all) && all[j].rec.Community == sc.rec.Community {
				sc.rec.State, sc.rec.MergedInto = "closed", all[j].rec.ID
				evs = append(evs, CaseEvent{CaseID: sc.rec.ID, At: at, Action: "merge", Actor: "l", Role: "squad_leader"})
			} else {
				sc.rec.Supervised = true // no change to any count
			}
		case "answered", "rated":
			sc.rec.State, sc.rec.Rating, sc.rec.ClosedAt = "closed", "satisfied", at
		case "received":
			sc.rec.Category = "other"
			sc.rec.Kind = "help"
		case "closed":
			sc.rec.Rating = "not_satisfied"
		}
		err := s.UpdateCase(ctx, []string{sc.rec.ID}, func(cs []*CaseRecord) ([]CaseEvent, error) {
			*cs[0] = sc.rec
			return evs, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	// Touch every case, merged ones too, as escalation does: no count
	// changes.
	for _, sc := range all {
		err := s.UpdateCase(ctx, []string{sc.rec.ID}, func(cs []*CaseRecord) ([]CaseEvent, error) {
			cs[0].UpdatedAt = statsNow.UTC()
			return nil, nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return all
}

// seedCheckins stores check-ins: officer o<k> at community c, by
// hour offsets from statsNow.
func seedCheckins(t *testing.T, s *SQLite, n int, seed uint64) []Checkin {
	t.Helper()
	rnd := rand.New(rand.NewPCG(seed, 7))
	var out []Checkin
	for i := range n {
		at := statsNow.Add(-time.Duration(rnd.IntN(100*24)) * time.Hour).UTC()
		c := Checkin{ID: fmt.Sprintf("ck%04d", i), Officer: fmt.Sprintf("o%d", rnd.IntN(4)), Kiosk: "k",
			Community: statsCommunities[rnd.IntN(3)], Slot: int64(i), At: at, Kind: "visit"}
		if _, dup, err := s.AddCheckin(context.Background(), c); err != nil || dup {
			t.Fatalf("check-in %d: %v %v", i, dup, err)
		}
		out = append(out, c)
	}
	return out
}

// expectStats counts the seeded cases in Go, case by case, the way
// Stats documents it.
func expectStats(all []*statsCase, checkins []Checkin, q StatsQuery) Stats {
	date := func(t time.Time) string { return t.In(cst).Format(time.DateOnly) }
	first, last := date(q.From.Start()), date(q.To.Start())
	inPeriod := func(t time.Time) bool { d := date(t); return d >= first && d <= last }
	var out Stats
	idx := map[string]int{}
	for _, c := range q.Communities {
		if _, ok := idx[c]; !ok {
			idx[c] = len(out.Communities)
			out.Communities = append(out.Communities, CommunityStats{Community: c})
		}
	}
	cats, srcs, kinds := map[string]int64{}, map[string]int64{}, map[string]int64{}
	ccats := map[string]map[string]int64{}
	series := map[SeriesPoint]int64{}
	var answers []time.Duration
	for _, sc := range all {
		c := sc.rec
		i, ok := idx[c.Community]
		if !ok || !inPeriod(c.CreatedAt) || c.MergedInto != "" {
			continue
		}
		cs := &out.Communities[i]
		cs.Cases++
		open := slices.Contains([]string{"received", "dispatched", "in_progress", "returned"}, c.State)
		if open {
			cs.Open++
			if !c.DueAt.IsZero() && c.DueAt.Before(q.Now) {
				cs.Overdue++
			}
		}
		if c.State == "closed" {
			cs.Closed++
			if !c.DueAt.IsZero() {
				cs.DueClosed++
				if !c.ClosedAt.After(c.DueAt) {
					cs.OnTime++
				}
			}
		}
		if c.Rating != "" {
			cs.Rated++
			if c.Rating == "satisfied" || c.Rating == "basically_satisfied" {
				cs.Satisfied++
			}
		}
		if !sc.answered.IsZero() {
			cs.Answered++
			d := sc.answered.Sub(c.CreatedAt)
			cs.AnswerSeconds += int64(d / time.Second)
			answers = append(answers, d)
		}
		cats[c.Category]++
		srcs[c.Source]++
		kinds[c.Kind]++
		if ccats[c.Community] == nil {
			ccats[c.Community] = map[string]int64{}
		}
		ccats[c.Community][c.Category]++
		start, _ := time.ParseInLocation(time.DateOnly, date(c.CreatedAt), cst)
		if q.Weekly {
			start = start.AddDate(0, 0, -(int(start.Weekday())+6)%7)
		}
		series[SeriesPoint{Start: Day(start.Unix()+8*3600) / 86400, Source: c.Source}]++
	}
	for _, ck := range checkins {
		i, ok := idx[ck.Community]
		if !ok || !inPeriod(ck.At) {
			continue
		}
		out.Communities[i].Checkins++
	}
	for i := range out.Communities {
		cs := &out.Communities[i]
		days := map[string]bool{}
		for _, ck := range checkins {
			if ck.Community == cs.Community && inPeriod(ck.At) {
				days[date(ck.At)] = true
			}
		}
		cs.CheckinDays = int64(len(days))
		cs.Categories = counts(ccats[cs.Community])
		out.Total.add(cs.Tally)
	}
	out.Categories, out.Sources, out.Kinds = counts(cats), counts(srcs), counts(kinds)
	for p, n := range series {
		p.N = n
		out.Series = append(out.Series, p)
	}
	slices.SortFunc(out.Series, func(a, b SeriesPoint) int {
		if a.Start != b.Start {
			return int(a.Start - b.Start)
		}
		return map[bool]int{true: -1, false: 1}[a.Source < b.Source]
	})
	if n := len(answers); n > 0 {
		slices.Sort(answers)
		out.AnswerMedian = answers[(n-1)/2]
		if n%2 == 0 {
			out.AnswerMedian = (answers[n/2-1] + answers[n/2]) / 2
		}
	}
	return out
}

func counts(m map[string]int64) []Count {
	var out []Count
	for k, n := range m {
		out = append(out, Count{k, n})
	}
	sortCounts(out)
	return out
}

// statsQueries are the queries both tests check.
func statsQueries() []struct {
	name string
	q    StatsQuery
} {
	today := DayOf(statsNow)
	return []struct {
		name string
		q    StatsQuery
	}{
		{"all, 7 days", StatsQuery{Communities: statsCommunities, From: today - 6, To: today, Now: statsNow}},
		{"all, 30 days", StatsQuery{Communities: statsCommunities, From: today - 29, To: today, Now: statsNow}},
		{"all, 365 days weekly", StatsQuery{Communities: statsCommunities, From: today - 364, To: today, Now: statsNow, Weekly: true}},
		{"two communities, 90 days weekly", StatsQuery{Communities: []string{"sangcheng", "ruiyi"}, From: today - 89, To: today,
			Now: statsNow, Weekly: true}},
		{"one community, a past month", StatsQuery{Communities: []string{"hengfu"}, From: today - 75, To: today - 45, Now: statsNow}},
		{"one day", StatsQuery{Communities: statsCommunities, From: today - 10, To: today - 10, Now: statsNow}},
		{"an unknown community and a repeated one", StatsQuery{Communities: []string{"nowhere", "ruiyi", "ruiyi"}, From: today - 119,
			To: today, Now: statsNow}},
		{"overdue at a later clock", StatsQuery{Communities: statsCommunities, From: today - 119, To: today, Now: statsNow.AddDate(0, 0, 10)}},
	}
}

func checkStats(t *testing.T, got, want Stats) {
	t.Helper()
	if !reflect.DeepEqual(got.Total, want.Total) {
		t.Errorf("total\n got %+v\nwant %+v", got.Total, want.Total)
	}
	for i := range max(len(got.Communities), len(want.Communities)) {
		if i >= len(got.Communities) || i >= len(want.Communities) || !reflect.DeepEqual(got.Communities[i], want.Communities[i]) {
			t.Errorf("communities\n got %+v\nwant %+v", got.Communities, want.Communities)
			break
		}
	}
	for _, g := range []struct {
		name      string
		got, want []Count
	}{{"sources", got.Sources, want.Sources}, {"kinds", got.Kinds, want.Kinds}, {"categories", got.Categories, want.Categories}} {
		if !reflect.DeepEqual(g.got, g.want) {
			t.Errorf("%s: got %v, want %v", g.name, g.got, g.want)
		}
	}
	if !reflect.DeepEqual(got.Series, want.Series) {
		t.Errorf("series\n got %v\nwant %v", got.Series, want.Series)
	}
	if got.AnswerMedian != want.AnswerMedian {
		t.Errorf("median answer time %v, want %v", got.AnswerMedian, want.AnswerMedian)
	}
}

// TestStats checks every number of Stats against a count in Go over 400
// random cases that were inserted in bulk and one by one and then moved
// on, and 300 check-ins.
func TestStats(t *testing.T) {
	s, _ := openTemp(t)
	all := seedStats(t, s, 400, 1)
	checkins := seedCheckins(t, s, 300, 1)
	nonEmpty := 0
	for _, tt := range statsQueries() {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Stats(context.Background(), tt.q)
			if err != nil {
				t.Fatal(err)
			}
			want := expectStats(all, checkins, tt.q)
			checkStats(t, got, want)
			if want.Total.Cases > 0 && want.Total.Overdue > 0 && want.Total.OnTime > 0 && want.Total.Answered > 1 {
				nonEmpty++
			}
		})
	}
	if nonEmpty < 4 {
		t.Errorf("only %d queries found cases overdue, on time and answered: the seed tests little", nonEmpty)
	}
}

// TestStatsMigration: a database with cases at schema 8 gets its answer
// times and daily counts filled in by migration 9.
func TestStatsMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	// A database of schema 8, as a build before migration 9 left it.
	s, err := openWith(t, path, realMigrations(t)[:8], nil)
	if err != nil {
		t.Fatal(err)
	}
	all := seedStats(t, s, 200, 2)
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
	if v, err := s.SchemaVersion(ctx); err != nil || v < 9 {
		t.Fatalf("schema version %d, %v", v, err)
	}
	for _, tt := range statsQueries() {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Stats(ctx, tt.q)
			if err != nil {
				t.Fatal(err)
			}
			checkStats(t, got, expectStats(all, nil, tt.q))
		})
	}
}

func TestStatsInvalid(t *testing.T) {
	s, _ := openTemp(t)
	today := DayOf(statsNow)
	tests := []struct {
		name string
		q    StatsQuery
	}{
		{"no communities", StatsQuery{From: today, To: today}},
		{"ends before it starts", StatsQuery{Communities: []string{"ruiyi"}, From: today, To: today - 1}},
		{"too many communities", StatsQuery{Communities: make([]string, MaxStatsCommunities+1), From: today, To: today}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := s.Stats(context.Background(), tt.q); err == nil {
				t.Error("no error")
			}
		})
	}
}

// TestStatsDuringWrite: the analysis reads a snapshot without the write
// lock, so it answers while a writer holds a transaction open and does not
// see the writer's uncommitted cases; the writer commits afterwards.
func TestStatsDuringWrite(t *testing.T) {
	ctx := context.Background()
	s, _ := openTemp(t)
	all := seedStats(t, s, 50, 1)
	q := statsQueries()[0].q
	before, err := s.Stats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := s.db.BeginTx(ctx, nil) // IMMEDIATE: holds the write lock
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.ExecContext(ctx, `DELETE FROM case_stats_daily`); err != nil {
		t.Fatal(err)
	}
	during, err := s.Stats(ctx, q)
	if err != nil {
		t.Fatalf("stats while a write transaction is open: %v", err)
	}
	if err := tx.Commit(); err != nil {
		t.Fatalf("the writer could not commit after the analysis: %v", err)
	}
	checkStats(t, during, before)
	if before.Total.Cases == 0 || before.Total != expectStats(all, nil, q).Total {
		t.Fatalf("the seed gave %+v", before.Total)
	}
	after, err := s.Stats(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if after.Total.Cases != 0 {
		t.Errorf("after the commit the analysis still counts %d cases", after.Total.Cases)
	}
}
