package console

import (
	"html"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/cases"
)

// TestFindCase: staff find a case by its ticket number or by the query code
// on the resident's receipt; a case outside the account's reach is "not
// found", like an unknown one; a query code several kiosks share lists
// the cases the account may see.
func TestFindCase(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	mk := func(ticket, kiosk string) cases.Case {
		return f.newCase("bureau", cases.NewCase{Source: cases.SourceKiosk, Ticket: ticket, Kiosk: kiosk,
			Description: "楼道堆物"})
	}
	a := mk("261102-K-SANGCHENG-01-0007", "k-sangcheng-01")
	b := mk("261102-K-RUIYI-01-0007", "k-ruiyi-01")
	x := mk("261102-K-HENGFU-01-0007", "k-hengfu-01")
	other := mk("261102-K-HENGFU-01-0008", "k-hengfu-01")
	huangpu, xuhui := f.login("huangpu"), f.login("xuhui")
	find := func(c *client, q string) response {
		return c.get("/cases/find?" + url.Values{"q": {q}}.Encode())
	}
	tests := []struct {
		name     string
		c        *client
		q        string
		code     int
		location string   // for 303
		listed   []string // ids on the page for 200
		message  string
	}{
		{"ticket", huangpu, "261102-K-SANGCHENG-01-0007", http.StatusSeeOther, "/cases/" + a.ID, nil, ""},
		{"ticket in lower case with spaces", huangpu, "  261102-k-sangcheng-01-0007 ", http.StatusSeeOther, "/cases/" + a.ID, nil, ""},
		{"another district's ticket", huangpu, "261102-K-HENGFU-01-0008", http.StatusNotFound, "", nil, "未找到“261102-K-HENGFU-01-0008”对应的工单，或该工单不在您的范围内"},
		{"unknown ticket", huangpu, "261102-K-HENGFU-01-0099", http.StatusNotFound, "", nil, "未找到"},
		{"shared query code", huangpu, "2611020007", http.StatusOK, "", []string{b.ID, a.ID}, "查询码“2611020007”对应 2 个工单"},
		{"shared query code, one in reach", xuhui, "2611020007", http.StatusSeeOther, "/cases/" + x.ID, nil, ""},
		{"query code of another district", huangpu, "2611020008", http.StatusNotFound, "", nil, "未找到"},
		{"neither", huangpu, "楼道", http.StatusBadRequest, "", nil, "请输入完整的工单号"},
		{"markup", huangpu, "<script>alert(1)</script>", http.StatusBadRequest, "", nil, "请输入完整的工单号"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			res := find(tc.c, tc.q)
			if res.code != tc.code {
				t.Fatalf("GET /cases/find?q=%s: %d, want %d\n%s", tc.q, res.code, tc.code, errorText(res.body))
			}
			if tc.location != "" && res.header.Get("Location") != tc.location {
				t.Errorf("Location %q, want %q", res.header.Get("Location"), tc.location)
			}
			if tc.code == http.StatusSeeOther {
				return
			}
			body := html.UnescapeString(res.body)
			if !strings.Contains(body, tc.message) {
				t.Errorf("page lacks %q", tc.message)
			}
			if got := inboxIDs(res.body); strings.Join(got, ",") != strings.Join(tc.listed, ",") {
				t.Errorf("listed %v, want %v", got, tc.listed)
			}
			if strings.Contains(res.body, "<script>alert(1)</script>") {
				t.Error("the query is echoed as markup")
			}
			if strings.Contains(body, other.ID) || strings.Contains(body, x.ID) {
				t.Errorf("a xuhui case shows for huangpu")
			}
		})
	}
}
