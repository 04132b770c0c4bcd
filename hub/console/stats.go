package console

import (
	"encoding/csv"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/htmlpage"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// statsPages are the analysis pages and their layout.
var statsPages = map[string]string{"stats": "desk"}

// statsMessages are the analysis pages' messages.
var statsMessages = htmlpage.Messages{
	"stats":              {"数据分析", "Analysis"},
	"stats.period":       {"统计期", "Period"},
	"stats.days7":        {"近 7 天", "Last 7 days"},
	"stats.days30":       {"近 30 天", "Last 30 days"},
	"stats.days90":       {"近 90 天", "Last 90 days"},
	"stats.days365":      {"近一年", "Last 365 days"},
	"stats.custom":       {"自定义日期", "Custom dates"},
	"stats.from":         {"起始日期", "From"},
	"stats.to":           {"截止日期", "To"},
	"stats.show":         {"统计", "Show"},
	"stats.cohort":       {"以下均为统计期内受理的工单（并单后的被并工单不计），按其当前状态统计。", "All numbers are about the cases received in the period (cases merged into another are not counted), by their current state."},
	"stats.csv":          {"CSV", "CSV"},
	"stats.totals":       {"总体情况", "Totals"},
	"stats.metric":       {"指标", "Measure"},
	"stats.value":        {"数值", "Value"},
	"stats.received":     {"受理", "Received"},
	"stats.closed":       {"已办结", "Closed"},
	"stats.open":         {"办理中", "Open now"},
	"stats.overdue":      {"已超期", "Overdue now"},
	"stats.ontime":       {"按期办结率", "On-time closure rate"},
	"stats.satisfaction": {"满意率", "Satisfaction"},
	"stats.avganswer":    {"平均答复用时", "Mean time to answer"},
	"stats.medanswer":    {"答复用时中位数", "Median time to answer"},
	"stats.hours":        {"小时", "h"},
	"stats.count":        {"件数", "Cases"},
	"stats.share":        {"占比", "Share"},
	"stats.bysource":     {"案件来源", "By source"},
	"stats.bykind":       {"诉求类型", "By kind"},
	"stats.bycategory":   {"问题类别", "By problem"},
	"stats.communities":  {"各社区情况", "Per community"},
	"stats.top3":         {"主要问题（前三）", "Top 3 problems"},
	"stats.checkins":     {"驻点签到次数", "Check-ins"},
	"stats.checkindays":  {"签到天数", "Days with a check-in"},
	"stats.ranking":      {"工作室排名（示范点评选）", "Workstation ranking (model workstations)"},
	"stats.rank":         {"名次", "Rank"},
	"stats.score":        {"综合得分", "Score"},
	"stats.regularity":   {"驻点规律性", "Check-in regularity"},
	"stats.response":     {"答复及时性", "Responsiveness"},
	"stats.unranked":     {"样本不足", "Too few cases"},
	"stats.scorehelp":    {"评分方法", "How the score is computed"},
	"stats.scoredef": {"综合得分 = 100 ×（30% 按期办结率 + 30% 满意率 + 20% 驻点规律性 + 20% 答复及时性）。按期办结率 = 按期办结件数 ÷（有时限的已办结件数 + 已超期未办结件数）；满意率 = （满意 + 基本满意）÷ 已评价件数；驻点规律性 = 有队员签到的天数 ÷ 统计期天数；答复及时性 = 1 − 平均答复用时 ÷ 168 小时（不低于 0）。某项无数据时不计入，其余各项按权重折算。统计期内受理少于 5 件的工作室不参与排名。",
		"Score = 100 × (30% on-time closure rate + 30% satisfaction + 20% check-in regularity + 20% responsiveness). On-time closure rate = cases closed by their deadline ÷ (closed cases that had a deadline + open cases past their deadline); satisfaction = (satisfied + basically satisfied) ÷ rated cases; check-in regularity = days with an officer's check-in ÷ days in the period; responsiveness = 1 − mean time to answer ÷ 168 hours (at least 0). A measure without data is left out and the others' weights scaled up. Workstations with fewer than 5 cases received in the period are not ranked."},
	"stats.series": {"受理趋势", "Cases over time"},
	"stats.daily":  {"按日", "per day"},
	"stats.weekly": {"按周（周一起）", "per week (from Monday)"},
	"stats.bucket": {"日期", "Date"},
	"stats.total":  {"合计", "Total"},
	"stats.chart":  {"各来源受理件数", "Cases received by source"},
}

// Period presets of the analysis page, in days.
var statsPeriods = []string{"7", "30", "90", "365"}

// periodCustom is the period value of a from–to range.
const periodCustom = "custom"

// MaxStatsDays bounds a custom period.
const MaxStatsDays = 366

// MinRankCases is the fewest cases received in the period for a
// workstation to be ranked.
const MinRankCases = 5

// registerStats adds the analysis pages.
func (c *Console) registerStats(m Mux) {
	roles := []accounts.Role{accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin, accounts.RoleSquadLeader}
	c.page(m, "GET /stats", c.statsPage, roles...)
	c.page(m, "GET /stats/csv/{table}", c.statsCSV, roles...)
}

// statsFilter is the analysis page's query, validated.
type statsFilter struct {
	Period    string // a preset of statsPeriods or periodCustom
	From, To  string // dates (2006-01-02) of a custom period
	Community string // one community within scope, or all
}

// query returns the filter as a query string.
func (f statsFilter) query() string {
	v := url.Values{"period": {f.Period}}
	if f.Period == periodCustom {
		v.Set("from", f.From)
		v.Set("to", f.To)
	}
	if f.Community != "" {
		v.Set("community", f.Community)
	}
	return v.Encode()
}

// parseStats validates the analysis query like parseInbox: every value
// must be one the page offers. The period defaults to 30 days; a custom
// one needs both dates, from before to, at most MaxStatsDays days.
func parseStats(q url.Values) (statsFilter, error) {
	f := statsFilter{Period: "30"}
	one := func(k string) (string, error) {
		switch vs := q[k]; {
		case len(vs) == 0:
			return "", nil
		case len(vs) > 1:
			return "", fmt.Errorf("%w: %s given twice", errInvalid, k)
		default:
			return vs[0], nil
		}
	}
	p, err := one("period")
	if err != nil {
		return f, err
	}
	if p != "" {
		if !contains(statsPeriods, p) && p != periodCustom {
			return f, fmt.Errorf("%w: unknown period %q", errInvalid, p)
		}
		f.Period = p
	}
	var from, to time.Time
	for _, d := range []struct {
		key string
		s   *string
		t   *time.Time
	}{{"from", &f.From, &from}, {"to", &f.To, &to}} {
		v, err := one(d.key)
		if err != nil {
			return f, err
		}
		if v == "" {
			continue
		}
		t, err := time.ParseInLocation(time.DateOnly, v, shanghai)
		if err != nil || t.Year() < 2000 || t.Year() > 2100 {
			return f, fmt.Errorf("%w: %s date %q", errInvalid, d.key, v)
		}
		*d.s, *d.t = v, t
	}
	if f.Period == periodCustom {
		switch days := int(to.Sub(from).Hours()/24) + 1; {
		case f.From == "" || f.To == "":
			return f, fmt.Errorf("%w: a custom period needs both dates", errInvalid)
		case to.Before(from):
			return f, fmt.Errorf("%w: the period ends before it starts", errInvalid)
		case days > MaxStatsDays:
			return f, fmt.Errorf("%w: %d days, at most %d", errInvalid, days, MaxStatsDays)
		}
	}
	if f.Community, err = one("community"); err != nil {
		return f, err
	}
	if f.Community != "" && protocol.ValidID(f.Community) != nil {
		return f, fmt.Errorf("%w: community %q", errInvalid, f.Community)
	}
	return f, nil
}

// days returns the filter's first and last day (Shanghai) at now.
func (f statsFilter) days(now time.Time) (store.Day, store.Day) {
	if f.Period == periodCustom {
		from, _ := time.ParseInLocation(time.DateOnly, f.From, shanghai)
		to, _ := time.ParseInLocation(time.DateOnly, f.To, shanghai)
		return store.DayOf(from), store.DayOf(to)
	}
	n, _ := strconv.Atoi(f.Period)
	today := store.DayOf(now)
	return today - store.Day(n-1), today
}

// statsCell is one cell of an analysis table; Bar, if set, is the CSS
// class of a bar of its share ("w0" to "w100" in steps of 5).
type statsCell struct {
	Text string
	Bar  string
}

// statsTable is one table of the page, the same in HTML and CSV.
type statsTable struct {
	ID    string // its CSV name
	Title string // message key
	Head  []string
	Rows  [][]statsCell
}

// chartBar is one segment of the SVG chart.
type chartBar struct {
	X, Y, W, H int
	Class      string
	Title      string
}

// chartLabel is a label of the chart's axes.
type chartLabel struct {
	X, Y  int
	Text  string
	Class string // "y" for the value axis (anchored at its end)
}

// statsChart is the series as a stacked bar chart (an SVG of Width ×
// Height drawn by the template).
type statsChart struct {
	Width, Height int
	Bars          []chartBar
	Labels        []chartLabel
	Sources       []string // the legend
	Axis          chartBar // the x axis line (Y, W)
}

type statsData struct {
	Filter      statsFilter
	Periods     []string
	Communities []communityOption
	FromDay     string // the period's first and last day, shown
	ToDay       string
	Weekly      bool
	Tables      []statsTable // totals first
	Chart       statsChart
	Query       template.URL // the filter, for the CSV links
}

type communityOption struct{ ID, Name string }

// statsReport validates the request and computes the page's tables.
func (c *Console) statsReport(r *http.Request) (statsData, error) {
	_, a := c.principal(r)
	lang := langOf(r)
	f, err := parseStats(r.URL.Query())
	if err != nil {
		return statsData{}, err
	}
	if c.cfg.Tree.Node(a.Node) == nil {
		return statsData{}, fmt.Errorf("%w: account node %q not in the org tree", errForbidden, a.Node)
	}
	d := statsData{Filter: f, Periods: statsPeriods, Query: template.URL(f.query())}
	var scope []string
	for _, n := range c.communities(a.Node) {
		d.Communities = append(d.Communities, communityOption{n.ID, n.Name})
		scope = append(scope, n.ID)
	}
	if f.Community != "" {
		if !contains(scope, f.Community) {
			return d, fmt.Errorf("%w: community %s", errNotFound, f.Community)
		}
		scope = []string{f.Community}
	}
	now := c.cfg.Now()
	from, to := f.days(now)
	d.FromDay, d.ToDay = from.Start().In(shanghai).Format(time.DateOnly), to.Start().In(shanghai).Format(time.DateOnly)
	d.Weekly = to-from+1 > 31
	var st store.Stats
	if len(scope) > 0 {
		st, err = c.cfg.Store.Stats(r.Context(), store.StatsQuery{Communities: scope, From: from, To: to, Now: now, Weekly: d.Weekly})
		if err != nil {
			return d, err
		}
	}
	days := int64(to - from + 1)
	d.Tables = []statsTable{
		totalsTable(lang, st),
		countTable(lang, "sources", "stats.bysource", "source", st.Sources, st.Total.Cases),
		countTable(lang, "kinds", "stats.bykind", "kind", st.Kinds, st.Total.Cases),
		countTable(lang, "categories", "stats.bycategory", "category", st.Categories, st.Total.Cases),
		c.communityTable(lang, st),
		c.rankingTable(lang, st, days),
		seriesTable(lang, st, from, to, d.Weekly),
	}
	d.Chart = seriesChart(lang, st, from, to, d.Weekly)
	return d, nil
}

func (c *Console) statsPage(w http.ResponseWriter, r *http.Request) {
	d, err := c.statsReport(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, http.StatusOK, "stats", T(langOf(r), "stats"), d)
}

// statsCSV writes one table of the page as CSV (UTF-8 with a byte-order
// mark, cells defused like the case export's).
func (c *Console) statsCSV(w http.ResponseWriter, r *http.Request) {
	d, err := c.statsReport(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	i := slices.IndexFunc(d.Tables, func(t statsTable) bool { return t.ID == r.PathValue("table") })
	if i < 0 {
		c.fail(w, r, fmt.Errorf("%w: table %q", errNotFound, r.PathValue("table")))
		return
	}
	t := d.Tables[i]
	name := "stats-" + t.ID + "-" + strings.ReplaceAll(d.FromDay, "-", "") + "-" + strings.ReplaceAll(d.ToDay, "-", "") + ".csv"
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="`+name+`"`)
	if _, err := w.Write([]byte("\ufeff")); err != nil {
		return
	}
	cw := csv.NewWriter(w)
	lang := langOf(r)
	row := make([]string, len(t.Head))
	for i, h := range t.Head {
		row[i] = csvSafe(T(lang, h))
	}
	if err := cw.Write(row); err != nil {
		return
	}
	for _, cells := range t.Rows {
		row = row[:0]
		for _, cell := range cells {
			row = append(row, csvSafe(cell.Text))
		}
		if err := cw.Write(row); err != nil {
			return
		}
	}
	cw.Flush()
	if err := cw.Error(); err != nil {
		c.log.Debug("writing a stats export", "err", err)
	}
}

// ratio returns n/d, and false when d is 0.
func ratio(n, d int64) (float64, bool) {
	if d == 0 {
		return 0, false
	}
	return float64(n) / float64(d), true
}

// pct formats a share, "—" if there is none.
func pct(v float64, ok bool) string {
	if !ok {
		return "—"
	}
	return strconv.FormatFloat(v*100, 'f', 1, 64) + "%"
}

// barClass is the CSS class of a bar of share v (0 to 1), in 5 % steps.
func barClass(v float64) string {
	step := int(math.Round(min(max(v, 0), 1)*20)) * 5
	return "w" + strconv.Itoa(step)
}

// hours formats a duration in hours, "—" if there is none.
func hours(lang Lang, d time.Duration, ok bool) string {
	if !ok {
		return "—"
	}
	return strconv.FormatFloat(d.Hours(), 'f', 1, 64) + " " + T(lang, "stats.hours")
}

// meanAnswer is the mean time from receipt to first answer.
func meanAnswer(t store.Tally) (time.Duration, bool) {
	if t.Answered == 0 {
		return 0, false
	}
	return time.Duration(t.AnswerSeconds/t.Answered) * time.Second, true
}

// onTimeRate is closed-by-the-deadline over closed cases that had one,
// plus the open ones past it.
func onTimeRate(t store.Tally) (float64, bool) { return ratio(t.OnTime, t.DueClosed+t.Overdue) }

// satisfaction is satisfied and basically satisfied over rated.
func satisfaction(t store.Tally) (float64, bool) { return ratio(t.Satisfied, t.Rated) }

func num(n int64) statsCell { return statsCell{Text: strconv.FormatInt(n, 10)} }

func totalsTable(lang Lang, st store.Stats) statsTable {
	t := st.Total
	mean, hasMean := meanAnswer(t)
	ot, hasOT := onTimeRate(t)
	sat, hasSat := satisfaction(t)
	rows := []struct {
		key  string
		cell statsCell
	}{
		{"stats.received", num(t.Cases)},
		{"stats.closed", num(t.Closed)},
		{"stats.open", num(t.Open)},
		{"stats.overdue", num(t.Overdue)},
		{"stats.ontime", statsCell{Text: pct(ot, hasOT)}},
		{"stats.satisfaction", statsCell{Text: pct(sat, hasSat)}},
		{"stats.avganswer", statsCell{Text: hours(lang, mean, hasMean)}},
		{"stats.medanswer", statsCell{Text: hours(lang, st.AnswerMedian, t.Answered > 0)}},
	}
	out := statsTable{ID: "totals", Title: "stats.totals", Head: []string{"stats.metric", "stats.value"}}
	for _, r := range rows {
		out.Rows = append(out.Rows, []statsCell{{Text: T(lang, r.key)}, r.cell})
	}
	return out
}

// countTable lists counts by a column's value (labelled from group) with
// their share of total.
func countTable(lang Lang, id, title, group string, counts []store.Count, total int64) statsTable {
	out := statsTable{ID: id, Title: title, Head: []string{"col." + group, "stats.count", "stats.share"}}
	for _, c := range counts {
		share, ok := ratio(c.N, total)
		out.Rows = append(out.Rows, []statsCell{{Text: label(lang, group, c.Key)}, num(c.N), {Text: pct(share, ok), Bar: barClass(share)}})
	}
	return out
}

func (c *Console) communityTable(lang Lang, st store.Stats) statsTable {
	out := statsTable{ID: "communities", Title: "stats.communities", Head: []string{"col.community", "stats.received",
		"stats.top3", "stats.overdue", "stats.ontime", "stats.satisfaction", "stats.checkins", "stats.checkindays"}}
	for _, cs := range st.Communities {
		var top []string
		for _, cat := range cs.Categories[:min(3, len(cs.Categories))] {
			top = append(top, label(lang, "category", cat.Key)+" "+strconv.FormatInt(cat.N, 10))
		}
		ot, hasOT := onTimeRate(cs.Tally)
		sat, hasSat := satisfaction(cs.Tally)
		out.Rows = append(out.Rows, []statsCell{{Text: c.nodeName(cs.Community)}, num(cs.Cases), {Text: strings.Join(top, "、")},
			num(cs.Overdue), {Text: pct(ot, hasOT)}, {Text: pct(sat, hasSat)}, num(cs.Checkins), num(cs.CheckinDays)})
	}
	return out
}

// Score weights of the workstation ranking (示范点).
const (
	weightOnTime       = 0.3
	weightSatisfaction = 0.3
	weightRegularity   = 0.2
	weightResponse     = 0.2
	// responseHorizon is the mean time to answer that scores 0 for
	// responsiveness (answering at once scores 1).
	responseHorizon = 7 * 24 * time.Hour
)

// rankEntry is one workstation's score and its parts.
type rankEntry struct {
	store.CommunityStats
	Score                                   float64
	OnTime, Satisfaction, Regularity, Reply float64
	HasOnTime, HasSatisfaction, HasReply    bool
	Ranked                                  bool
}

// rankScore scores a workstation over a period of days: 100 × the
// weighted mean of its on-time closure rate (0.3), satisfaction (0.3),
// check-in regularity (0.2: days with a check-in over days in the period)
// and responsiveness (0.2: 1 − mean time to answer / 7 days, at least 0).
// A part without data (no case with a deadline decided, none rated, none
// answered) is left out and the other weights scaled up; regularity
// always counts. Workstations with fewer than MinRankCases cases are not
// ranked.
func rankScore(cs store.CommunityStats, days int64) rankEntry {
	e := rankEntry{CommunityStats: cs, Ranked: cs.Cases >= MinRankCases}
	e.OnTime, e.HasOnTime = onTimeRate(cs.Tally)
	e.Satisfaction, e.HasSatisfaction = satisfaction(cs.Tally)
	e.Regularity, _ = ratio(cs.CheckinDays, days)
	e.Regularity = min(e.Regularity, 1)
	if mean, ok := meanAnswer(cs.Tally); ok {
		e.Reply, e.HasReply = max(0, 1-float64(mean)/float64(responseHorizon)), true
	}
	sum, weights := weightRegularity*e.Regularity, weightRegularity
	for _, p := range []struct {
		v, w float64
		ok   bool
	}{{e.OnTime, weightOnTime, e.HasOnTime}, {e.Satisfaction, weightSatisfaction, e.HasSatisfaction}, {e.Reply, weightResponse, e.HasReply}} {
		if p.ok {
			sum += p.v * p.w
			weights += p.w
		}
	}
	e.Score = 100 * sum / weights
	return e
}

// ranking orders the workstations by score, top first: ranked ones
// before unranked, then by score, cases and id.
func ranking(st store.Stats, days int64) []rankEntry {
	var out []rankEntry
	for _, cs := range st.Communities {
		out = append(out, rankScore(cs, days))
	}
	slices.SortStableFunc(out, func(a, b rankEntry) int {
		switch {
		case a.Ranked != b.Ranked:
			if a.Ranked {
				return -1
			}
			return 1
		case a.Score != b.Score:
			if a.Score > b.Score {
				return -1
			}
			return 1
		case a.Cases != b.Cases:
			if a.Cases > b.Cases {
				return -1
			}
			return 1
		}
		return strings.Compare(a.Community, b.Community)
	})
	return out
}

func (c *Console) rankingTable(lang Lang, st store.Stats, days int64) statsTable {
	out := statsTable{ID: "ranking", Title: "stats.ranking", Head: []string{"stats.rank", "col.community", "stats.score",
		"stats.ontime", "stats.satisfaction", "stats.regularity", "stats.avganswer", "stats.received"}}
	for i, e := range ranking(st, days) {
		rank, score := strconv.Itoa(i+1), statsCell{Text: strconv.FormatFloat(e.Score, 'f', 1, 64), Bar: barClass(e.Score / 100)}
		if !e.Ranked {
			rank, score = T(lang, "stats.unranked"), statsCell{Text: "—"}
		}
		mean, hasMean := meanAnswer(e.Tally)
		out.Rows = append(out.Rows, []statsCell{{Text: rank}, {Text: c.nodeName(e.Community)}, score,
			{Text: pct(e.OnTime, e.HasOnTime)}, {Text: pct(e.Satisfaction, e.HasSatisfaction)}, {Text: pct(e.Regularity, true)},
			{Text: hours(lang, mean, hasMean)}, num(e.Cases)})
	}
	return out
}

// buckets returns the first day of every bucket of the period: each day,
// or each week from the Monday of from's week.
func buckets(from, to store.Day, weekly bool) []store.Day {
	var out []store.Day
	if !weekly {
		for d := from; d <= to; d++ {
			out = append(out, d)
		}
		return out
	}
	for d := from.Week(); d <= to; d += 7 {
		out = append(out, d)
	}
	return out
}

// seriesCounts returns the series as counts by bucket and source.
func seriesCounts(st store.Stats, from, to store.Day, weekly bool) ([]store.Day, map[store.Day]map[string]int64) {
	bs := buckets(from, to, weekly)
	m := make(map[store.Day]map[string]int64, len(bs))
	for _, b := range bs {
		m[b] = map[string]int64{}
	}
	for _, p := range st.Series {
		if m[p.Start] != nil {
			m[p.Start][p.Source] += p.N
		}
	}
	return bs, m
}

// bucketLabel names a bucket by its first day in the period.
func bucketLabel(b, from store.Day) string {
	return max(b, from).Start().In(shanghai).Format(time.DateOnly)
}

func seriesTable(lang Lang, st store.Stats, from, to store.Day, weekly bool) statsTable {
	out := statsTable{ID: "series", Title: "stats.series", Head: []string{"stats.bucket"}}
	for _, s := range cases.Sources {
		out.Head = append(out.Head, "source."+string(s))
	}
	out.Head = append(out.Head, "stats.total")
	bs, m := seriesCounts(st, from, to, weekly)
	for _, b := range bs {
		row := []statsCell{{Text: bucketLabel(b, from)}}
		var total int64
		for _, s := range cases.Sources {
			row = append(row, num(m[b][string(s)]))
			total += m[b][string(s)]
		}
		out.Rows = append(out.Rows, append(row, num(total)))
	}
	return out
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH       = 760, 220
	chartLeft, chartBase = 44, 190 // the plot's left edge and baseline
	chartTop             = 12
)

// seriesChart draws the series as stacked bars, one colour (a CSS class)
// per source.
func seriesChart(lang Lang, st store.Stats, from, to store.Day, weekly bool) statsChart {
	ch := statsChart{Width: chartW, Height: chartH, Axis: chartBar{X: chartLeft, Y: chartBase, W: chartW - chartLeft - 4}}
	for _, s := range cases.Sources {
		ch.Sources = append(ch.Sources, string(s))
	}
	bs, m := seriesCounts(st, from, to, weekly)
	var top int64
	for _, b := range bs {
		var t int64
		for _, n := range m[b] {
			t += n
		}
		top = max(top, t)
	}
	top = niceCeil(top)
	plotW := chartW - chartLeft - 4
	slot := float64(plotW) / float64(len(bs))
	barW := max(1, int(slot*0.8))
	scale := float64(chartBase-chartTop) / float64(top)
	every := max(1, int(math.Ceil(float64(len(bs))/8))) // at most 8 date labels
	for i, b := range bs {
		x := chartLeft + int(float64(i)*slot+slot*0.1)
		y := chartBase
		for _, s := range ch.Sources {
			n := m[b][s]
			if n == 0 {
				continue
			}
			h := max(1, int(math.Round(float64(n)*scale)))
			y -= h
			ch.Bars = append(ch.Bars, chartBar{X: x, Y: y, W: barW, H: h, Class: "src-" + s,
				Title: bucketLabel(b, from) + " " + label(lang, "source", s) + " " + strconv.FormatInt(n, 10)})
		}
		if i%every == 0 {
			ch.Labels = append(ch.Labels, chartLabel{X: x, Y: chartBase + 16, Text: bucketLabel(b, from)[5:]})
		}
	}
	ch.Labels = append(ch.Labels, chartLabel{X: chartLeft - 6, Y: chartTop + 4, Text: strconv.FormatInt(top, 10), Class: "y"},
		chartLabel{X: chartLeft - 6, Y: chartBase, Text: "0", Class: "y"})
	return ch
}

// niceCeil rounds n up to 1, 2 or 5 times a power of ten (at least 1).
func niceCeil(n int64) int64 {
	for p := int64(1); ; p *= 10 {
		for _, f := range []int64{1, 2, 5} {
			if f*p >= n {
				return f * p
			}
		}
	}
}
