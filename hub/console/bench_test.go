package console

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

var benchCases = flag.Int("console.cases", 1_000_000, "cases seeded by BenchmarkPages")

// benchCase is the i-th of n seeded cases: spread over Sangcheng, Ruiyi
// (Huangpu) and Hengfu (Xuhui), the 8 categories and the 7 states, one
// every 30 seconds up to t0; cases past received were dispatched to an
// officer and are due from 10 days before t0 to 10 days after, by i. It
// returns its timeline too (1 to 4 events by state).
func benchCase(i, n int, officer string) (store.CaseRecord, []store.CaseEvent) {
	comms := []string{"sangcheng", "ruiyi", "hengfu"}
	comm := comms[i%3]
	street, district := "wuliqiao", "huangpu"
	if comm == "hengfu" {
		street, district = "tianping", "xuhui"
	}
	created := t0.Add(-time.Duration(n-i) * 30 * time.Second).UTC()
	st := cases.States[i%7]
	c := store.CaseRecord{
		ID: fmt.Sprintf("bench-%07d", i), Ticket: fmt.Sprintf("B-%07d", i), Source: string(cases.Sources[i%5]),
		SourceRef: fmt.Sprintf("bench-ref-%07d", i), Community: comm, Street: street, District: district,
		Kind: string(protocol.FeedbackKinds[i%len(protocol.FeedbackKinds)]), Category: string(protocol.FeedbackCategories[i%8]),
		Building: fmt.Sprintf("%d号", i%20), Unit: fmt.Sprintf("%d", i%4+1), Room: fmt.Sprintf("%d", 101+i%6),
		Description: fmt.Sprintf("第 %d 号测试工单：楼道堆物，外墙私自开窗，请尽快处理。", i), Phone: "13800138000",
		State: string(st), ReportedAt: created, CreatedAt: created, UpdatedAt: created,
	}
	evs := []store.CaseEvent{{CaseID: c.ID, At: created, Actor: cases.RoleSystem, Role: cases.RoleSystem,
		Action: string(cases.ActionCreate), To: string(cases.StateReceived), Note: "来源：社区终端"}}
	if st == cases.StateReceived {
		return c, evs
	}
	c.Assignee = officer
	c.DispatchedAt = created.Add(time.Hour)
	c.DueAt = t0.Add(time.Duration(i%(20*24)-10*24) * time.Hour).UTC()
	evs = append(evs, store.CaseEvent{CaseID: c.ID, At: c.DispatchedAt, Actor: cases.RoleSystem, Role: cases.RoleSquadLeader,
		Action: string(cases.ActionDispatch), From: string(cases.StateReceived), To: string(cases.StateDispatched), Note: "承办人：" + officer})
	if st != cases.StateDispatched && st != cases.StateReturned {
		evs = append(evs, store.CaseEvent{CaseID: c.ID, At: c.DispatchedAt.Add(time.Hour), Actor: officer, Role: cases.RoleOfficer,
			Action: string(cases.ActionAccept), From: string(cases.StateDispatched), To: string(cases.StateInProgress)})
	}
	if st == cases.StateAnswered || st == cases.StateRated || st == cases.StateClosed {
		evs = append(evs, store.CaseEvent{CaseID: c.ID, At: c.DispatchedAt.Add(5 * time.Hour), Actor: officer, Role: cases.RoleOfficer,
			Action: string(cases.ActionAnswer), From: string(cases.StateInProgress), To: string(cases.StateAnswered), Note: "已处理完毕"})
	}
	return c, evs
}

// benchClient is a logged-in user over plain HTTP: the benchmark's server
// is httptest.NewServer, not TLS, so the Secure session cookie is added to
// each request by hand instead of by a cookie jar.
type benchClient struct {
	base   string
	cookie *http.Cookie
	http   *http.Client
}

func benchLogin(b *testing.B, f *fixture, username string) *benchClient {
	c := &benchClient{base: f.srv.URL, http: &http.Client{Timeout: time.Minute,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
	req, err := http.NewRequest(http.MethodPost, c.base+"/login",
		strings.NewReader(url.Values{"username": {username}, "password": {password}}.Encode()))
	if err != nil {
		b.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := c.http.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	res.Body.Close()
	for _, ck := range res.Cookies() {
		if ck.Name == accounts.CookieName {
			c.cookie = ck
		}
	}
	if res.StatusCode != http.StatusSeeOther || c.cookie == nil {
		b.Fatalf("login %s: %d, cookie %v", username, res.StatusCode, c.cookie)
	}
	return c
}

// get fetches a page and checks it is 200 and holds want.
func (c *benchClient) get(b *testing.B, path, want string) {
	req, err := http.NewRequest(http.MethodGet, c.base+path, nil)
	if err != nil {
		b.Fatal(err)
	}
	req.AddCookie(&http.Cookie{Name: c.cookie.Name, Value: c.cookie.Value})
	res, err := c.http.Do(req)
	if err != nil {
		b.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		b.Fatal(err)
	}
	if res.StatusCode != http.StatusOK || !strings.Contains(string(body), want) {
		b.Fatalf("GET %s: %d, %d bytes, without %q", path, res.StatusCode, len(body), want)
	}
}

// BenchmarkPages seeds -console.cases cases (default 1,000,000, each with
// a complainant and 1 to 4 timeline events; see benchCase) and measures
// the console's pages over HTTP as a logged-in district admin of Huangpu
// (two thirds of the cases): the inbox's first page without a filter,
// filtered by state and category, the overdue list, and a case's detail
// page (a different case each time). It reports the p50 and p99 latency
// of one request, from sending it to reading the whole page. The server is
// a plain httptest.NewServer (no TLS, which is not what is measured).
// Seeding a million cases takes a few minutes. Run it alone:
//
//	go test ./hub/console -run '^$' -bench BenchmarkPages -benchtime 500x
//
// and with fewer cases, e.g. -console.cases 10000, for a quick look.
func BenchmarkPages(b *testing.B) {
	f := newFixture(b, true)
	f.standardAccounts()
	officer := f.accounts["officer-a"].ID
	n := *benchCases
	ctx := context.Background()
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
		if err := f.st.BulkInsertCases(ctx, cs, evs); err != nil {
			b.Fatal(err)
		}
	}
	b.Logf("seeded %d cases in %v", n, time.Since(start).Round(time.Millisecond))
	c := benchLogin(b, f, "huangpu")
	// Detail pages: Huangpu's cases (i%3 != 2), spread over the table.
	var detail []string
	for i := 0; len(detail) < 1000 && i < 1000*3; i++ {
		if j := i * 7919 % n; j%3 != 2 {
			detail = append(detail, fmt.Sprintf("bench-%07d", j))
		}
	}
	pages := []struct {
		name string
		path func(i int) string
		want string
	}{
		{"inbox", func(int) string { return "/cases" }, `id="next"`},
		{"inbox_filtered", func(int) string { return "/cases?state=received&category=facade" }, `<tr data-id=`},
		{"overdue", func(int) string { return "/cases?overdue=1" }, `class="overdue"`},
		{"detail", func(i int) string { return "/cases/" + detail[i%len(detail)] }, `id="timeline"`},
	}
	for _, p := range pages {
		b.Run(p.name, func(b *testing.B) {
			c.get(b, p.path(0), p.want) // warm up, and check the page once
			var lat []time.Duration
			for i := 0; b.Loop(); i++ {
				t := time.Now()
				c.get(b, p.path(i), p.want)
				lat = append(lat, time.Since(t))
			}
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds())/1000, "p50-ms")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds())/1000, "p99-ms")
		})
	}
}
