package console

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

func TestCSRF(t *testing.T) {
	f, pc := setupPermissions(t)
	admin := f.login("huangpu")
	other := f.login("squad").csrf()
	path := "/cases/" + pc.sangcheng.ID + "/action"
	tests := []struct {
		name  string
		token string // "" sends no csrf field
		want  int
	}{
		{"no token", "", http.StatusForbidden},
		{"wrong token", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", http.StatusForbidden},
		{"another user's token", other, http.StatusForbidden},
		{"the session's token", admin.csrf(), http.StatusSeeOther},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.caseNow(pc.sangcheng.ID)
			form := url.Values{"action": {"supervise"}}
			if tt.token != "" {
				form.Set("csrf", tt.token)
			}
			res := admin.postForm(path, form, f.srv.URL)
			if res.code != tt.want {
				t.Fatalf("POST action: %d %q, want %d", res.code, res.body, tt.want)
			}
			after := f.caseNow(pc.sangcheng.ID)
			if tt.want != http.StatusSeeOther {
				if after != before {
					t.Errorf("the case changed:\n%+v\nwas\n%+v", after, before)
				}
				return
			}
			if !after.Supervised || before.Supervised {
				t.Errorf("supervised %v → %v, want false → true", before.Supervised, after.Supervised)
			}
			if loc := res.header.Get("Location"); loc != "/cases/"+pc.sangcheng.ID+"?ok=act.done" {
				t.Errorf("redirect to %q", loc)
			}
		})
	}
	t.Run("token in the header", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/cases/"+pc.hotline.ID+"/action",
			strings.NewReader(url.Values{"action": {"supervise"}}.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("X-CSRF-Token", other)
		if res := admin.do(req); res.code != http.StatusForbidden {
			t.Errorf("another user's token in the header: %d, want 403", res.code)
		}
		if f.caseNow(pc.hotline.ID).Supervised {
			t.Error("the case was supervised")
		}
	})
	t.Run("multipart without token", func(t *testing.T) {
		body, ct := multipartBody(t, map[string]string{"note": "x"}, nil)
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/cases/"+pc.sangcheng.ID+"/work", body)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", ct)
		if res := f.login("officer-a").do(req); res.code != http.StatusForbidden {
			t.Errorf("work record without a token: %d, want 403", res.code)
		}
	})
	t.Run("cross-site login", func(t *testing.T) {
		c := f.newClient("evil")
		res := c.postForm("/login", url.Values{"username": {"huangpu"}, "password": {password}}, "https://evil.example")
		if res.code != http.StatusForbidden {
			t.Errorf("login with Origin https://evil.example: %d, want 403", res.code)
		}
		if cs := res.header.Values("Set-Cookie"); len(cs) != 0 {
			t.Errorf("cross-site login set cookies %v", cs)
		}
	})
	t.Run("logout without token", func(t *testing.T) {
		c := f.login("partner")
		if res := c.postForm("/logout", url.Values{}, f.srv.URL); res.code != http.StatusForbidden {
			t.Errorf("logout without a token: %d, want 403", res.code)
		}
		if res := c.get("/cases"); res.code != http.StatusOK {
			t.Errorf("after a refused logout: GET /cases %d, want 200", res.code)
		}
	})
}

// markup is what an attacker puts in every free-text field.
const markup = `<script>alert(1)</script><img src=x onerror=alert(1)>`

func TestXSS(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	// Through the service, to store the markup in every field whatever
	// the form's limits.
	c := f.newCase("squad", cases.NewCase{Source: cases.SourceHotline, Community: "sangcheng",
		Where:       protocol.Where{Building: markup, Unit: `"><b>u</b>`, Room: `'><i>r</i>`},
		Description: markup, Phone: "13800138000"})
	if _, err := f.cases.Dispatch(ctx, c.ID, f.principal("squad"), f.accounts["officer-a"].ID, markup); err != nil {
		t.Fatal(err)
	}
	// Through the form, as a partner would.
	formID := f.login("partner").createCaseForm(url.Values{"source": {"partner"}, "community": {"sangcheng"},
		"kind": {"complaint"}, "category": {"facade"}, "building": {"<b>7</b>"}, "description": {markup}})
	admin := f.login("huangpu")
	res := admin.submit("/notices", url.Values{"title": {markup}, "body": {markup}, "category": {"publicity"},
		"priority": {"normal"}, "target": {"huangpu"}})
	noticePath := res.header.Get("Location")
	if res.code != http.StatusSeeOther || !strings.HasPrefix(noticePath, "/notices/") {
		t.Fatalf("POST /notices: %d %q %s", res.code, noticePath, errorText(res.body))
	}
	pages := []struct {
		user, path string
	}{
		{"huangpu", "/cases/" + c.ID},
		{"huangpu", "/cases/" + formID},
		{"huangpu", "/cases"},
		{"squad", "/cases/" + c.ID},
		{"officer-a", "/m/cases/" + c.ID},
		{"officer-a", "/m"},
		{"partner", "/cases/" + formID},
		{"partner", "/cases"},
		{"huangpu", "/notices"},
		{"huangpu", noticePath},
	}
	for _, p := range pages {
		t.Run(p.user+" "+p.path, func(t *testing.T) {
			res := f.login(p.user).get(p.path)
			if res.code != http.StatusOK {
				t.Fatalf("GET: %d %s", res.code, errorText(res.body))
			}
			for _, live := range []string{"<script>alert", "<img src=x", "<b>u</b>", "<i>r</i>", "<b>7</b>", "onerror=alert(1)>"} {
				if strings.Contains(res.body, live) {
					t.Errorf("the page holds live markup %q", live)
				}
			}
			if !strings.Contains(res.body, "&lt;script&gt;alert(1)&lt;/script&gt;") && !strings.Contains(res.body, "&lt;b&gt;7&lt;/b&gt;") {
				t.Errorf("the page does not show the markup escaped")
			}
			csp := res.header.Get("Content-Security-Policy")
			if csp == "" || strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") ||
				!strings.Contains(csp, "default-src 'self'") {
				t.Errorf("Content-Security-Policy %q", csp)
			}
			if res.header.Get("X-Content-Type-Options") != "nosniff" || res.header.Get("X-Frame-Options") != "DENY" {
				t.Errorf("headers %v", res.header)
			}
		})
	}
	t.Run("error page echoes input escaped", func(t *testing.T) {
		res := admin.get("/cases?state=" + url.QueryEscape(markup))
		if res.code != http.StatusBadRequest || strings.Contains(res.body, "<script>alert") {
			t.Errorf("%d, live markup: %v", res.code, strings.Contains(res.body, "<script>alert"))
		}
	})
	t.Run("language switch back to another site", func(t *testing.T) {
		for _, back := range []string{"//evil.example/x", "https://evil.example/", `/\evil.example`, "javascript:alert(1)"} {
			res := admin.get("/lang?to=en&back=" + url.QueryEscape(back))
			if res.code != http.StatusSeeOther || res.header.Get("Location") != "/" {
				t.Errorf("back=%s: %d → %q, want 303 → /", back, res.code, res.header.Get("Location"))
			}
		}
	})
}

// filterCase is the i-th case of the filter tests: states, sources,
// categories and communities cycle with different periods; dispatched
// ones are due between 30 hours ago and 90 hours ahead of t0.
func filterCase(i int) store.CaseRecord {
	states := cases.States
	sources := []cases.Source{cases.SourceKiosk, cases.SourceHotline, cases.SourcePatrol, cases.SourcePartner}
	comms := []string{"sangcheng", "ruiyi", "hengfu"}
	created := t0.Add(-time.Duration(200-i) * time.Hour).UTC()
	comm := comms[i%3]
	street, district := "wuliqiao", "huangpu"
	if comm == "hengfu" {
		street, district = "tianping", "xuhui"
	}
	c := store.CaseRecord{
		ID: fmt.Sprintf("f%04d", i), Ticket: fmt.Sprintf("T-%04d", i), Source: string(sources[i%4]),
		SourceRef: fmt.Sprintf("ref-%d", i), Community: comm, Street: street, District: district,
		Kind: "complaint", Category: string(protocol.FeedbackCategories[i%5]), Phone: "13800138000",
		State: string(states[i%7]), ReportedAt: created, CreatedAt: created, UpdatedAt: created,
	}
	if c.State != string(cases.StateReceived) {
		c.DispatchedAt = created
		c.DueAt = t0.Add(time.Duration(i%120-30) * time.Hour).UTC()
	}
	return c
}

func TestInboxFilters(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	const n = 420
	var all []store.CaseRecord
	for i := range n {
		all = append(all, filterCase(i))
	}
	if err := f.st.BulkInsertCases(context.Background(), all, nil); err != nil {
		t.Fatal(err)
	}
	open := func(c store.CaseRecord) bool { return slices.Contains(cases.OpenStates, cases.State(c.State)) }
	now := t0.UTC()
	tests := []struct {
		name, user, query string
		want              func(c store.CaseRecord) bool
		byDue             bool
	}{
		{"bureau, no filter", "bureau", "", func(store.CaseRecord) bool { return true }, false},
		{"huangpu, no filter", "huangpu", "", func(c store.CaseRecord) bool { return c.District == "huangpu" }, false},
		{"xuhui, no filter", "xuhui", "", func(c store.CaseRecord) bool { return c.District == "xuhui" }, false},
		{"state", "huangpu", "state=received", func(c store.CaseRecord) bool { return c.District == "huangpu" && c.State == "received" }, false},
		{"source", "huangpu", "source=hotline", func(c store.CaseRecord) bool { return c.District == "huangpu" && c.Source == "hotline" }, false},
		{"category", "bureau", "category=facade", func(c store.CaseRecord) bool { return c.Category == "facade" }, false},
		{"community", "huangpu", "community=ruiyi", func(c store.CaseRecord) bool { return c.Community == "ruiyi" }, false},
		{"state and category", "bureau", "state=dispatched&category=illegal_construction", func(c store.CaseRecord) bool {
			return c.State == "dispatched" && c.Category == "illegal_construction"
		}, false},
		{"overdue", "huangpu", "overdue=1", func(c store.CaseRecord) bool {
			return c.District == "huangpu" && open(c) && !c.DueAt.IsZero() && c.DueAt.Before(now)
		}, true},
		{"due soon", "bureau", "duesoon=1", func(c store.CaseRecord) bool {
			return open(c) && !c.DueAt.IsZero() && !c.DueAt.Before(now) && c.DueAt.Before(now.Add(DueSoon))
		}, true},
		{"overdue in a community", "bureau", "overdue=1&community=sangcheng&state=in_progress", func(c store.CaseRecord) bool {
			return c.Community == "sangcheng" && c.State == "in_progress" && !c.DueAt.IsZero() && c.DueAt.Before(now)
		}, true},
		{"nothing", "xuhui", "state=returned&source=qrcode", func(store.CaseRecord) bool { return false }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []store.CaseRecord
			for _, c := range all {
				if tt.want(c) {
					want = append(want, c)
				}
			}
			if tt.byDue {
				slices.SortFunc(want, func(a, b store.CaseRecord) int {
					if d := a.DueAt.Compare(b.DueAt); d != 0 {
						return d
					}
					return strings.Compare(a.ID, b.ID)
				})
			} else {
				slices.SortFunc(want, func(a, b store.CaseRecord) int {
					if d := b.CreatedAt.Compare(a.CreatedAt); d != 0 {
						return d
					}
					return strings.Compare(b.ID, a.ID)
				})
			}
			var wantIDs []string
			for _, c := range want {
				wantIDs = append(wantIDs, c.ID)
			}
			got, err := f.login(tt.user).inboxAll(tt.query)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got, wantIDs) {
				t.Errorf("inbox lists %d cases %v\nwant %d %v", len(got), got, len(wantIDs), wantIDs)
			}
		})
	}
	t.Run("pages", func(t *testing.T) {
		res := f.login("bureau").get("/cases")
		if ids := inboxIDs(res.body); len(ids) != InboxPage {
			t.Errorf("first page lists %d cases, want %d", len(ids), InboxPage)
		}
		if !nextLink.MatchString(res.body) {
			t.Error("first page has no next link")
		}
	})
}

// TestInboxInjection: values the console does not offer are refused with
// 400 and a message naming the field, before anything reaches the store.
func TestInboxInjection(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	f.newCase("squad", cases.NewCase{Source: cases.SourceHotline, Community: "sangcheng"})
	xh := f.newCase("bureau", cases.NewCase{Source: cases.SourceHotline, Community: "hengfu"})
	c := f.login("huangpu")
	tests := []struct {
		name, query, want string
	}{
		{"state", "state=" + url.QueryEscape("' OR 1=1--"), "unknown state"},
		{"community", "community=" + url.QueryEscape("x' OR '1'='1"), "community"},
		{"category quote", "category=%27", "unknown category"},
		{"source", "source=" + url.QueryEscape("kiosk' --"), "unknown source"},
		{"after union", "after=" + url.QueryEscape("1 UNION SELECT phone FROM cases--"), "after"},
		{"after unknown id", "after=no-such-case", ""},
		{"after a case of another district", "after=" + xh.ID, ""},
		{"overdue", "overdue=" + url.QueryEscape("1 OR 1=1"), "unknown overdue"},
		{"duesoon", "duesoon=true", "unknown duesoon"},
		{"state twice", "state=received&state=closed", "state given twice"},
		{"community twice", "community=sangcheng&community=ruiyi", "community given twice"},
		{"category twice", "category=facade&category=other", "category given twice"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := c.get("/cases?" + tt.query)
			want := http.StatusBadRequest
			if tt.want == "" {
				want = http.StatusNotFound
			}
			if res.code != want {
				t.Fatalf("GET /cases?%s: %d %s, want %d", tt.query, res.code, errorText(res.body), want)
			}
			msg := errorText(res.body)
			if !strings.Contains(msg, tt.want) {
				t.Errorf("message %q does not name %q", msg, tt.want)
			}
			if want == http.StatusBadRequest && !strings.HasPrefix(msg, T(Zh, "err.invalid")) {
				t.Errorf("message %q does not start with %q", msg, T(Zh, "err.invalid"))
			}
			if ids := inboxIDs(res.body); len(ids) != 0 {
				t.Errorf("the error page lists cases %v", ids)
			}
		})
	}
	t.Run("community outside the account's area", func(t *testing.T) {
		if res := c.get("/cases?community=hengfu"); res.code != http.StatusNotFound {
			t.Errorf("huangpu filters by xuhui's hengfu: %d, want 404", res.code)
		}
	})
}
