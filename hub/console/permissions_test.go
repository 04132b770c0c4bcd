package console

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/protocol"
)

// permCases are the cases of the permission tests, by name.
type permCases struct {
	sangcheng, xuhui, partner, hotline cases.Case
}

// setupPermissions creates the standard accounts and four cases: one in
// Sangcheng dispatched to officer A, one in Xuhui's Hengfu, one filed by
// the partner through the console, one filed by hotline staff in Ruiyi.
func setupPermissions(t *testing.T) (*fixture, permCases) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	var pc permCases
	pc.sangcheng = f.newCase("squad", cases.NewCase{Source: cases.SourceHotline, Community: "sangcheng",
		Where: protocol.Where{Building: "3号"}, Description: "桑城 3 号楼违法搭建", Phone: "13800138000"})
	if _, err := f.cases.Dispatch(ctx, pc.sangcheng.ID, f.principal("squad"), f.accounts["officer-a"].ID, ""); err != nil {
		t.Fatal(err)
	}
	pc.xuhui = f.newCase("xuhui", cases.NewCase{Source: cases.SourceHotline, Community: "hengfu",
		Description: "衡复小区占绿", Phone: "13900139000"})
	partnerID := f.login("partner").createCaseForm(url.Values{"source": {"partner"}, "community": {"sangcheng"},
		"kind": {"complaint"}, "category": {"green_space"}, "building": {"5号"}, "description": {"居委报告：5 号楼毁绿"},
		"phone": {"13800138000"}})
	pc.partner = f.caseNow(partnerID)
	hotlineID := f.login("huangpu").createCaseForm(url.Values{"source": {"hotline"}, "community": {"ruiyi"},
		"kind": {"complaint"}, "category": {"facade"}, "description": {"12345 来电：瑞一外立面"}, "phone": {"13700137000"}})
	pc.hotline = f.caseNow(hotlineID)
	return f, pc
}

func TestPermissions(t *testing.T) {
	f, pc := setupPermissions(t)
	all := map[string]cases.Case{"sangcheng": pc.sangcheng, "xuhui": pc.xuhui, "partner": pc.partner, "hotline": pc.hotline}
	users := []struct {
		name string
		// sees lists the cases the account may read; the others are 404.
		sees []string
		// forbidden: every case page and the inbox are 403 (a role
		// without cases).
		forbidden bool
	}{
		{"bureau", []string{"sangcheng", "xuhui", "partner", "hotline"}, false},
		{"huangpu", []string{"sangcheng", "partner", "hotline"}, false},
		{"xuhui", []string{"xuhui"}, false},
		{"squad", []string{"sangcheng", "partner", "hotline"}, false},
		{"officer-a", []string{"sangcheng"}, false},
		{"officer-b", nil, false},
		{"partner", []string{"partner"}, false},
		{"tech", nil, true},
	}
	for _, u := range users {
		t.Run(u.name, func(t *testing.T) {
			c := f.login(u.name)
			for name, cs := range all {
				want := http.StatusNotFound
				switch {
				case u.forbidden:
					want = http.StatusForbidden
				case slices.Contains(u.sees, name):
					want = http.StatusOK
				}
				for _, path := range []string{"/cases/" + cs.ID} {
					if res := c.get(path); res.code != want {
						t.Errorf("GET %s (%s case): %d, want %d", path, name, res.code, want)
					} else if want == http.StatusOK && !strings.Contains(res.body, cs.Ticket) {
						t.Errorf("GET %s: the page does not show ticket %s", path, cs.Ticket)
					} else if want == http.StatusNotFound && strings.Contains(res.body, cs.Ticket) {
						t.Errorf("GET %s: the 404 page shows ticket %s", path, cs.Ticket)
					}
				}
			}
			res := c.get("/cases")
			if u.forbidden {
				if res.code != http.StatusForbidden {
					t.Errorf("GET /cases: %d, want 403", res.code)
				}
				return
			}
			if res.code != http.StatusOK {
				t.Fatalf("GET /cases: %d %s", res.code, errorText(res.body))
			}
			var want []string
			for _, name := range u.sees {
				want = append(want, all[name].ID)
			}
			got := inboxIDs(res.body)
			slices.Sort(got)
			slices.Sort(want)
			if !slices.Equal(got, want) {
				t.Errorf("inbox lists %v, want %v", got, want)
			}
		})
	}
}

// TestActionsOutsideScope posts actions on cases the account cannot see:
// each is 404 and leaves the case as it was.
func TestActionsOutsideScope(t *testing.T) {
	f, pc := setupPermissions(t)
	tests := []struct {
		name, user string
		c          cases.Case
		form       url.Values
	}{
		{"xuhui supervises a huangpu case", "xuhui", pc.sangcheng, url.Values{"action": {"supervise"}}},
		{"xuhui closes a huangpu case", "xuhui", pc.hotline, url.Values{"action": {"close"}, "note": {"不予受理"}}},
		{"xuhui dispatches a huangpu case", "xuhui", pc.hotline, url.Values{"action": {"dispatch"}, "officer": {f.accounts["officer-b"].ID}}},
		{"huangpu supervises a xuhui case", "huangpu", pc.xuhui, url.Values{"action": {"supervise"}}},
		{"officer B accepts officer A's task", "officer-b", pc.sangcheng, url.Values{"action": {"accept"}}},
		{"officer B returns officer A's task", "officer-b", pc.sangcheng, url.Values{"action": {"return"}, "note": {"不归我管"}}},
		{"partner closes a hotline case", "partner", pc.hotline, url.Values{"action": {"close"}, "note": {"x"}}},
		{"squad leader of huangpu dispatches in xuhui", "squad", pc.xuhui, url.Values{"action": {"dispatch"}, "officer": {f.accounts["officer-a"].ID}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := f.caseNow(tt.c.ID)
			evBefore, err := f.st.CaseEvents(context.Background(), tt.c.ID)
			if err != nil {
				t.Fatal(err)
			}
			res := f.login(tt.user).submit("/cases/"+tt.c.ID+"/action", tt.form)
			if res.code != http.StatusNotFound {
				t.Errorf("POST action: %d %s, want 404", res.code, errorText(res.body))
			}
			if after := f.caseNow(tt.c.ID); after != before {
				t.Errorf("the case changed:\n%+v\nwas\n%+v", after, before)
			}
			if ev, err := f.st.CaseEvents(context.Background(), tt.c.ID); err != nil || len(ev) != len(evBefore) {
				t.Errorf("timeline has %d events (%v), had %d", len(ev), err, len(evBefore))
			}
		})
	}
	t.Run("merge from another district", func(t *testing.T) {
		res := f.login("xuhui").submit("/cases/"+pc.xuhui.ID+"/merge", url.Values{"other": {pc.hotline.ID}})
		if res.code != http.StatusNotFound {
			t.Errorf("merge: %d %s, want 404", res.code, errorText(res.body))
		}
		if got := f.caseNow(pc.hotline.ID); got.State != pc.hotline.State || got.MergedInto != "" {
			t.Errorf("merged: %+v", got)
		}
	})
}

// TestAPINeedsToken: the JSON API does not accept a console session.
func TestAPINeedsToken(t *testing.T) {
	f, _ := setupPermissions(t)
	c := f.login("bureau")
	for _, path := range []string{"/api/v1/notices", "/api/v1/kiosks", "/api/v1/org", "/api/v1/feedback", "/api/v1/accounts"} {
		t.Run(path, func(t *testing.T) {
			if res := c.get(path); res.code != http.StatusUnauthorized {
				t.Errorf("GET %s with a session cookie: %d, want 401", path, res.code)
			}
		})
	}
	t.Run("POST notice", func(t *testing.T) {
		res := c.submit("/api/v1/notices", url.Values{"title": {"x"}})
		if res.code != http.StatusUnauthorized {
			t.Errorf("POST /api/v1/notices with a session and CSRF token: %d, want 401", res.code)
		}
	})
}

var phoneCell = regexp.MustCompile(`<dd id="phone">([^<]*)</dd>`)

// TestPhoneMasking: the complainant's phone is shown only to those who
// handle the case.
func TestPhoneMasking(t *testing.T) {
	f, pc := setupPermissions(t)
	tests := []struct {
		user string
		c    cases.Case
		want string
	}{
		{"partner", pc.partner, "138****8000"},
		{"officer-a", pc.sangcheng, "13800138000"},
		{"squad", pc.sangcheng, "13800138000"},
		{"squad", pc.partner, "13800138000"},
		{"huangpu", pc.hotline, "13700137000"},
		{"bureau", pc.xuhui, "13900139000"},
	}
	for _, tt := range tests {
		t.Run(tt.user+" "+tt.c.Ticket, func(t *testing.T) {
			c := f.login(tt.user)
			res := c.get("/cases/" + tt.c.ID)
			m := phoneCell.FindStringSubmatch(res.body)
			if res.code != http.StatusOK || m == nil {
				t.Fatalf("case page %d without a phone", res.code)
			}
			if m[1] != tt.want {
				t.Errorf("phone %q, want %q", m[1], tt.want)
			}
			masked := tt.want != tt.c.Phone
			inbox := c.get("/cases")
			if masked && strings.Contains(inbox.body+res.body, tt.c.Phone) {
				t.Errorf("the full number %s appears on a page of %s", tt.c.Phone, tt.user)
			}
			if !masked && !strings.Contains(inbox.body, tt.c.Phone) {
				t.Errorf("the inbox of %s does not show %s", tt.user, tt.c.Phone)
			}
		})
	}
	t.Run("officer's phone page", func(t *testing.T) {
		res := f.login("officer-a").get("/m/cases/" + pc.sangcheng.ID)
		if res.code != http.StatusOK || !strings.Contains(res.body, `href="tel:13800138000"`) {
			t.Errorf("task page %d does not link the full number", res.code)
		}
	})
}
