package console

import (
	"context"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// statsPhone and statsDescription are in every seeded case and must
// appear nowhere on the analysis page or in its CSV files.
const (
	statsPhone       = "13912345678"
	statsDescription = "邻居在阳台私自搭建彩钢棚"
)

// seedStatsCases stores 300 cases, one every 7 hours back from t0, and 60
// check-ins; see statsCaseN for what each case is.
func seedStatsCases(t *testing.T, f *fixture) ([]store.CaseRecord, map[string]time.Time, []store.Checkin) {
	t.Helper()
	ctx := context.Background()
	var cs []store.CaseRecord
	var evs []store.CaseEvent
	answered := map[string]time.Time{}
	for i := range 300 {
		c, at := statsCaseN(i)
		cs = append(cs, c)
		evs = append(evs, store.CaseEvent{CaseID: c.ID, At: c.CreatedAt, Actor: cases.RoleSystem, Role: cases.RoleSystem,
			Action: string(cases.ActionCreate), To: string(cases.StateReceived)})
		if !at.IsZero() {
			answered[c.ID] = at
			evs = append(evs, store.CaseEvent{CaseID: c.ID, At: at, Actor: "officer", Role: cases.RoleOfficer,
				Action: string(cases.ActionAnswer), From: string(cases.StateInProgress), To: string(cases.StateAnswered)})
		}
	}
	if err := f.st.BulkInsertCases(ctx, cs, evs); err != nil {
		t.Fatal(err)
	}
	var checkins []store.Checkin
	for i := range 60 {
		k := []string{"k-sangcheng-01", "k-ruiyi-01", "k-hengfu-01"}[i%3]
		c := store.Checkin{ID: fmt.Sprintf("ck-%03d", i), Officer: f.accounts["officer-a"].ID, Kiosk: k,
			Community: []string{"sangcheng", "ruiyi", "hengfu"}[i%3], Slot: int64(i), Kind: "visit",
			At: t0.Add(-time.Duration(i*i) * time.Hour).UTC()}
		if _, dup, err := f.st.AddCheckin(ctx, c); err != nil || dup {
			t.Fatalf("check-in %d: %v %v", i, dup, err)
		}
		checkins = append(checkins, c)
	}
	return cs, answered, checkins
}

// statsCaseN is the i-th seeded case: in Sangcheng, Ruiyi or Hengfu by
// i%3, source by i%5, kind by i%4, category by i%8, state by i%7; due 5
// days after receipt once dispatched; closed cases closed i%10 days after
// receipt (on time up to 5); rated ones rated by (i/7)%3; answered ones
// (answered, rated, closed) answered i%48+1 hours after receipt.
func statsCaseN(i int) (store.CaseRecord, time.Time) {
	comm := []string{"sangcheng", "ruiyi", "hengfu"}[i%3]
	street, district := "wuliqiao", "huangpu"
	if comm == "hengfu" {
		street, district = "tianping", "xuhui"
	}
	created := t0.Add(-time.Duration(i*7) * time.Hour).UTC()
	st := cases.States[i%7]
	c := store.CaseRecord{ID: fmt.Sprintf("st-%04d", i), Ticket: fmt.Sprintf("ST-%04d", i), Source: string(cases.Sources[i%5]),
		SourceRef: fmt.Sprintf("st-ref-%04d", i), Community: comm, Street: street, District: district,
		Kind: string(protocol.FeedbackKinds[i%4]), Category: string(protocol.FeedbackCategories[i%8]),
		Building: "3号", Description: statsDescription, Phone: statsPhone, State: string(st),
		ReportedAt: created, CreatedAt: created, UpdatedAt: created}
	if st != cases.StateReceived {
		c.DispatchedAt = created.Add(time.Hour)
		c.DueAt = created.Add(5 * 24 * time.Hour)
	}
	if st == cases.StateClosed {
		c.ClosedAt = created.Add(time.Duration(i%10) * 24 * time.Hour)
	}
	if st == cases.StateRated || st == cases.StateClosed {
		c.Rating = string(cases.Ratings[(i/7)%3])
	}
	var answered time.Time
	if st == cases.StateAnswered || st == cases.StateRated || st == cases.StateClosed {
		answered = created.Add(time.Duration(i%48+1) * time.Hour)
	}
	return c, answered
}

// statsExpect is an independent count over the seeded cases.
type statsExpect struct {
	cases, closed, open, overdue, dueClosed, onTime, rated, satisfied int
	sources                                                           map[string]int
	perCommunity                                                      map[string]int
	overduePer                                                        map[string]int
	checkinsPer                                                       map[string]int
}

func expectFor(cs []store.CaseRecord, checkins []store.Checkin, communities []string, from, to time.Time, now time.Time) statsExpect {
	e := statsExpect{sources: map[string]int{}, perCommunity: map[string]int{}, overduePer: map[string]int{}, checkinsPer: map[string]int{}}
	for _, c := range cs {
		if !slices.Contains(communities, c.Community) || c.CreatedAt.Before(from) || !c.CreatedAt.Before(to) {
			continue
		}
		e.cases++
		e.perCommunity[c.Community]++
		e.sources[c.Source]++
		if slices.Contains(cases.OpenStates, cases.State(c.State)) {
			e.open++
			if !c.DueAt.IsZero() && c.DueAt.Before(now) {
				e.overdue++
				e.overduePer[c.Community]++
			}
		}
		if c.State == string(cases.StateClosed) {
			e.closed++
			if !c.DueAt.IsZero() {
				e.dueClosed++
				if !c.ClosedAt.After(c.DueAt) {
					e.onTime++
				}
			}
		}
		if c.Rating != "" {
			e.rated++
			if c.Rating != string(cases.NotSatisfied) {
				e.satisfied++
			}
		}
	}
	for _, ck := range checkins {
		if slices.Contains(communities, ck.Community) && !ck.At.Before(from) && ck.At.Before(to) {
			e.checkinsPer[ck.Community]++
		}
	}
	return e
}

// statsCSV fetches one table as CSV and returns its rows after the header.
func (c *client) statsCSV(table, query string) [][]string {
	c.f.t.Helper()
	res := c.get("/stats/csv/" + table + "?" + query)
	if res.code != http.StatusOK || !strings.HasPrefix(res.body, "\ufeff") {
		c.f.t.Fatalf("%s: CSV %s: %d %q", c.name, table, res.code, errorText(res.body))
	}
	rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(res.body, "\ufeff"))).ReadAll()
	if err != nil || len(rows) == 0 {
		c.f.t.Fatalf("CSV %s: %v", table, err)
	}
	for _, bad := range []string{statsPhone, statsDescription} {
		if strings.Contains(res.body, bad) {
			c.f.t.Errorf("CSV %s shows %q", table, bad)
		}
	}
	return rows[1:]
}

// column returns the cells of a CSV table keyed by their first cell.
func column(rows [][]string, col int) map[string]string {
	out := map[string]string{}
	for _, r := range rows {
		out[r[0]] = r[col]
	}
	return out
}

func pctOf(n, d int) string {
	if d == 0 {
		return "—"
	}
	return strconv.FormatFloat(float64(n)*100/float64(d), 'f', 1, 64) + "%"
}

// TestStatsNumbers checks the page's tables (through their CSV files)
// against a count over 300 seeded cases, per role and scope, and that
// the page shows no phone number or description.
func TestStatsNumbers(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	cs, _, checkins := seedStatsCases(t, f)
	now := t0
	today := time.Date(2026, 11, 2, 0, 0, 0, 0, shanghai)
	tests := []struct {
		name, user, query string
		communities       []string
		from, to          time.Time
	}{
		{"bureau, 30 days", "bureau", "period=30", []string{"sangcheng", "ruiyi", "hengfu"}, today.AddDate(0, 0, -29), today.AddDate(0, 0, 1)},
		{"huangpu, 7 days", "huangpu", "period=7", []string{"sangcheng", "ruiyi"}, today.AddDate(0, 0, -6), today.AddDate(0, 0, 1)},
		{"huangpu, 90 days", "huangpu", "period=90", []string{"sangcheng", "ruiyi"}, today.AddDate(0, 0, -89), today.AddDate(0, 0, 1)},
		{"xuhui, 365 days", "xuhui", "period=365", []string{"hengfu"}, today.AddDate(0, 0, -364), today.AddDate(0, 0, 1)},
		{"squad, custom dates", "squad", "period=custom&from=2026-09-01&to=2026-10-15", []string{"sangcheng", "ruiyi"},
			time.Date(2026, 9, 1, 0, 0, 0, 0, shanghai), time.Date(2026, 10, 16, 0, 0, 0, 0, shanghai)},
		{"huangpu, one community", "huangpu", "period=90&community=ruiyi", []string{"ruiyi"}, today.AddDate(0, 0, -89), today.AddDate(0, 0, 1)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := f.login(tt.user)
			want := expectFor(cs, checkins, tt.communities, tt.from, tt.to, now)
			if want.cases == 0 || want.overdue == 0 && tt.name != "huangpu, 7 days" {
				t.Fatalf("the seed gives %+v: nothing to test", want)
			}
			page := c.get("/stats?" + tt.query)
			if page.code != http.StatusOK {
				t.Fatalf("GET /stats?%s: %d %s", tt.query, page.code, errorText(page.body))
			}
			for _, bad := range []string{statsPhone, statsDescription} {
				if strings.Contains(page.body, bad) {
					t.Errorf("the page shows %q", bad)
				}
			}
			if !strings.Contains(page.body, `id="chart"`) || !strings.Contains(page.body, `<rect class="src-`) {
				t.Error("no chart with bars on the page")
			}
			totals := column(c.statsCSV("totals", tt.query), 1)
			for key, v := range map[string]string{
				"stats.received": strconv.Itoa(want.cases), "stats.closed": strconv.Itoa(want.closed),
				"stats.open": strconv.Itoa(want.open), "stats.overdue": strconv.Itoa(want.overdue),
				"stats.ontime":       pctOf(want.onTime, want.dueClosed+want.overdue),
				"stats.satisfaction": pctOf(want.satisfied, want.rated),
			} {
				if got := totals[T(Zh, key)]; got != v {
					t.Errorf("%s = %q, want %q", T(Zh, key), got, v)
				}
			}
			sources := column(c.statsCSV("sources", tt.query), 1)
			if len(sources) != len(want.sources) {
				t.Errorf("sources %v, want %v", sources, want.sources)
			}
			for s, n := range want.sources {
				if got := sources[label(Zh, "source", s)]; got != strconv.Itoa(n) {
					t.Errorf("source %s: %q, want %d", s, got, n)
				}
			}
			comms := c.statsCSV("communities", tt.query)
			if len(comms) != len(tt.communities) {
				t.Errorf("%d communities, want %v", len(comms), tt.communities)
			}
			for _, id := range tt.communities {
				name := f.con.nodeName(id)
				i := slices.IndexFunc(comms, func(r []string) bool { return r[0] == name })
				if i < 0 {
					t.Errorf("community %s missing", name)
					continue
				}
				r := comms[i]
				if r[1] != strconv.Itoa(want.perCommunity[id]) || r[3] != strconv.Itoa(want.overduePer[id]) ||
					r[6] != strconv.Itoa(want.checkinsPer[id]) {
					t.Errorf("community %s: %v, want %d cases, %d overdue, %d check-ins", name, r,
						want.perCommunity[id], want.overduePer[id], want.checkinsPer[id])
				}
			}
			series := c.statsCSV("series", tt.query)
			total := 0
			for _, r := range series {
				n, err := strconv.Atoi(r[len(r)-1])
				if err != nil {
					t.Fatal(err)
				}
				total += n
			}
			if total != want.cases {
				t.Errorf("the series counts %d cases, want %d", total, want.cases)
			}
			rank := c.statsCSV("ranking", tt.query)
			if len(rank) != len(tt.communities) {
				t.Errorf("ranking %v", rank)
			}
			for i := 1; i < len(rank); i++ {
				a, errA := strconv.ParseFloat(rank[i-1][2], 64)
				b, errB := strconv.ParseFloat(rank[i][2], 64)
				if errA == nil && errB == nil && a < b || errA != nil && errB == nil {
					t.Errorf("ranking out of order: %v", rank)
				}
			}
		})
	}
}

func TestStatsScope(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	seedStatsCases(t, f)
	tests := []struct {
		user  string
		query string
		code  int
	}{
		{"huangpu", "community=hengfu", http.StatusNotFound},
		{"xuhui", "community=sangcheng", http.StatusNotFound},
		{"squad", "community=hengfu", http.StatusNotFound},
		{"xuhui", "community=nowhere", http.StatusNotFound},
		{"officer-a", "", http.StatusForbidden},
		{"partner", "", http.StatusForbidden},
		{"tech", "", http.StatusForbidden},
		{"xuhui", "community=hengfu", http.StatusOK},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.query, func(t *testing.T) {
			c := f.login(tt.user)
			for _, path := range []string{"/stats?" + tt.query, "/stats/csv/totals?" + tt.query} {
				if res := c.get(path); res.code != tt.code {
					t.Errorf("GET %s: %d, want %d", path, res.code, tt.code)
				}
			}
		})
	}
	t.Run("not logged in", func(t *testing.T) {
		if res := f.newClient("anon").get("/stats"); res.code != http.StatusSeeOther {
			t.Errorf("GET /stats: %d, want a redirect to the login", res.code)
		}
	})
	t.Run("a district's page names only its communities", func(t *testing.T) {
		body := f.login("xuhui").get("/stats?period=365").body
		for _, other := range []string{"桑城居委", "瑞一居委"} {
			if strings.Contains(body, other) {
				t.Errorf("Xuhui's page names %s", other)
			}
		}
		if !strings.Contains(body, "衡复居委") {
			t.Error("Xuhui's page lacks 衡复居委")
		}
	})
}

func TestStatsFilterValidation(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	c := f.login("huangpu")
	tests := []struct {
		name, query string
		code        int
	}{
		{"default", "", http.StatusOK},
		{"a preset", "period=90", http.StatusOK},
		{"a preset ignores valid dates", "period=7&from=2026-01-01&to=2026-02-01", http.StatusOK},
		{"custom of 366 days", "period=custom&from=2025-11-01&to=2026-11-01", http.StatusOK},
		{"custom of one day", "period=custom&from=2026-11-01&to=2026-11-01", http.StatusOK},
		{"unknown period", "period=14", http.StatusBadRequest},
		{"injected period", "period=30%27%20OR%201%3D1--", http.StatusBadRequest},
		{"period twice", "period=7&period=30", http.StatusBadRequest},
		{"custom without dates", "period=custom", http.StatusBadRequest},
		{"custom without to", "period=custom&from=2026-10-01", http.StatusBadRequest},
		{"custom of 367 days", "period=custom&from=2025-10-31&to=2026-11-01", http.StatusBadRequest},
		{"custom backwards", "period=custom&from=2026-10-02&to=2026-10-01", http.StatusBadRequest},
		{"bad date", "period=custom&from=2026-13-01&to=2026-12-01", http.StatusBadRequest},
		{"injected date", "period=custom&from=2026-10-01%27--&to=2026-10-02", http.StatusBadRequest},
		{"date far away", "period=custom&from=1970-01-01&to=1970-01-02", http.StatusBadRequest},
		{"injected community", "community=" + url.QueryEscape("ruiyi' OR '1'='1"), http.StatusBadRequest},
		{"community twice", "community=ruiyi&community=sangcheng", http.StatusBadRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			for _, path := range []string{"/stats?" + tt.query, "/stats/csv/sources?" + tt.query} {
				if res := c.get(path); res.code != tt.code {
					t.Errorf("GET %s: %d, want %d (%s)", path, res.code, tt.code, errorText(res.body))
				}
			}
		})
	}
	for _, table := range []string{"nosuch", "totals.csv", "..%2f..%2fetc"} {
		if res := c.get("/stats/csv/" + table); res.code != http.StatusNotFound {
			t.Errorf("GET /stats/csv/%s: %d, want 404", table, res.code)
		}
	}
}

// TestStatsScore checks the ranking score's definition on hand-made
// numbers.
func TestStatsScore(t *testing.T) {
	tests := []struct {
		name   string
		cs     store.CommunityStats
		days   int64
		score  float64
		ranked bool
	}{
		{"everything perfect", store.CommunityStats{Tally: store.Tally{Cases: 10, DueClosed: 4, OnTime: 4, Rated: 2, Satisfied: 2,
			Answered: 3, AnswerSeconds: 0}, CheckinDays: 30}, 30, 100, true},
		{"half everywhere", store.CommunityStats{Tally: store.Tally{Cases: 10, DueClosed: 2, Overdue: 2, OnTime: 2, Rated: 4, Satisfied: 2,
			Answered: 1, AnswerSeconds: 84 * 3600}, CheckinDays: 15}, 30, 50, true},
		{"no data but check-ins", store.CommunityStats{Tally: store.Tally{Cases: 5}, CheckinDays: 3}, 30, 10, true},
		{"slow answers score 0 for responsiveness", store.CommunityStats{Tally: store.Tally{Cases: 6, Answered: 2,
			AnswerSeconds: 2 * 400 * 3600}, CheckinDays: 30}, 30, 50, true},
		{"too few cases", store.CommunityStats{Tally: store.Tally{Cases: 4, DueClosed: 1, OnTime: 1}}, 7, 60, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := rankScore(tt.cs, tt.days)
			if diff := e.Score - tt.score; diff > 1e-9 || diff < -1e-9 || e.Ranked != tt.ranked {
				t.Errorf("score %v ranked %v, want %v %v", e.Score, e.Ranked, tt.score, tt.ranked)
			}
		})
	}
}

// TestStatsMessages: every message the analysis code names exists in both
// languages (the templates' keys are checked by TestMessageKeys).
func TestStatsMessages(t *testing.T) {
	src, err := os.ReadFile("stats.go")
	if err != nil {
		t.Fatal(err)
	}
	keys := regexp.MustCompile(`"((?:stats|col|source|category|kind)\.[a-z0-9_]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(keys) < 30 {
		t.Fatalf("found %d keys in stats.go", len(keys))
	}
	check := func(key string) {
		if m, ok := messages[key]; !ok || m[0] == "" || m[1] == "" {
			t.Errorf("message %q missing or empty: %q", key, m)
		}
	}
	for _, k := range keys {
		check(k[1])
	}
	for _, p := range statsPeriods {
		check("stats.days" + p)
	}
	for k := range statsMessages {
		check(k)
	}
	tree, err := orgtree.Parse([]byte(orgJSON))
	if err != nil {
		t.Fatal(err)
	}
	con := &Console{cfg: Config{Tree: tree}}
	st := store.Stats{Communities: []store.CommunityStats{{Community: "ruiyi"}}}
	for _, tb := range []statsTable{totalsTable(Zh, st), countTable(Zh, "kinds", "stats.bykind", "kind", nil, 0),
		con.communityTable(Zh, st), con.rankingTable(Zh, st, 7), seriesTable(Zh, st, 100, 106, false)} {
		check(tb.Title)
		for _, h := range tb.Head {
			check(h)
		}
	}
}

// seedBench stores -console.cases cases as BenchmarkPages does (benchCase).
func seedBench(b *testing.B, f *fixture) {
	officer := f.accounts["officer-a"].ID
	n := *benchCases
	start := time.Now()
	const batch = 10_000
	for lo := 0; lo < n; lo += batch {
		var cs []store.CaseRecord
		var evs []store.CaseEvent
		for i := lo; i < min(lo+batch, n); i++ {
			c, ev := benchCase(i, n, officer)
			cs = append(cs, c)
			evs = append(evs, ev...)
		}
		if err := f.st.BulkInsertCases(context.Background(), cs, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d cases in %v", n, time.Since(start).Round(time.Millisecond))
}

// BenchmarkStats seeds -console.cases cases (default 1,000,000, see
// benchCase) and measures the analysis page over HTTP as the district
// admin of Huangpu (two thirds of the cases) for the last 30 and 365 days,
// reporting p50 and p99 of one request. Run it alone:
//
//	go test ./hub/console -run '^$' -bench BenchmarkStats -benchtime 50x
func BenchmarkStats(b *testing.B) {
	f := newFixture(b, true)
	f.standardAccounts()
	seedBench(b, f)
	c := benchLogin(b, f, "huangpu")
	for _, days := range []string{"30", "365"} {
		b.Run(days+"d", func(b *testing.B) {
			path := "/stats?period=" + days
			c.get(b, path, `id="t-ranking"`)
			var lat []time.Duration
			for b.Loop() {
				t := time.Now()
				c.get(b, path, `id="t-ranking"`)
				lat = append(lat, time.Since(t))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
