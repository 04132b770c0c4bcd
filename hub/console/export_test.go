package console

import (
	"encoding/csv"
	"net/http"
	"slices"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/protocol"
)

// TestExport: the CSV holds the cases of the filter within the account's
// area, phones masked as the inbox masks them, formulas defused, Chinese
// readable by spreadsheets (BOM).
func TestExport(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	hp := f.newCase("bureau", cases.NewCase{Source: cases.SourceHotline, Community: "sangcheng", Phone: "13800138000",
		Category: protocol.CatFacade, Description: "=HYPERLINK(\"http://evil.example\")", Where: protocol.Where{Building: "5"}})
	other := f.newCase("bureau", cases.NewCase{Source: cases.SourceHotline, Community: "ruiyi", Category: protocol.CatOther})
	xh := f.newCase("bureau", cases.NewCase{Source: cases.SourceHotline, Community: "hengfu", Category: protocol.CatFacade})
	read := func(t *testing.T, user, query string) [][]string {
		t.Helper()
		res := f.login(user).get("/cases/export.csv" + query)
		if res.code != http.StatusOK || !strings.HasPrefix(res.header.Get("Content-Type"), "text/csv") ||
			!strings.HasPrefix(res.header.Get("Content-Disposition"), "attachment;") {
			t.Fatalf("%s export: %d %v %q", user, res.code, res.header, res.body)
		}
		body, ok := strings.CutPrefix(res.body, "\ufeff")
		if !ok {
			t.Fatal("no byte-order mark")
		}
		rows, err := csv.NewReader(strings.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		return rows
	}
	tickets := func(rows [][]string) []string {
		var out []string
		for _, r := range rows[1:] {
			out = append(out, r[0])
		}
		slices.Sort(out)
		return out
	}
	sorted := func(s ...string) []string { slices.Sort(s); return s }
	tests := []struct {
		user, query string
		want        []string
	}{
		{"bureau", "", sorted(hp.Ticket, other.Ticket, xh.Ticket)},
		{"huangpu", "", sorted(hp.Ticket, other.Ticket)},
		{"huangpu", "?category=facade", []string{hp.Ticket}},
		{"xuhui", "", []string{xh.Ticket}},
		{"partner", "", nil},
	}
	for _, tt := range tests {
		t.Run(tt.user+tt.query, func(t *testing.T) {
			rows := read(t, tt.user, tt.query)
			if len(rows) == 0 || rows[0][0] != "工单号" {
				t.Fatalf("header %v", rows[:min(1, len(rows))])
			}
			if got := tickets(rows); !slices.Equal(got, tt.want) {
				t.Errorf("tickets %v, want %v", got, tt.want)
			}
		})
	}
	col := func(rows [][]string, name string) int {
		return slices.Index(rows[0], name)
	}
	rows := read(t, "partner", "")
	if len(rows) != 1 {
		t.Fatalf("partner exported %d rows of cases it did not file", len(rows)-1)
	}
	rows = read(t, "huangpu", "?category=facade")
	if got := rows[1][col(rows, "联系电话")]; got != "13800138000" {
		t.Errorf("district admin sees phone %q, want it whole", got)
	}
	if got := rows[1][col(rows, "问题描述")]; !strings.HasPrefix(got, "'=") {
		t.Errorf("description %q: a formula was not defused", got)
	}
	if res := f.login("tech").get("/cases/export.csv"); res.code != http.StatusForbidden {
		t.Errorf("technician export: %d, want 403", res.code)
	}
	if res := f.login("huangpu").get("/cases/export.csv?state=%27%20OR%201%3D1"); res.code != http.StatusBadRequest {
		t.Errorf("export with an injected state: %d, want 400", res.code)
	}
	// An officer exports only their own tasks, masked as for them.
	if _, err := f.cases.Dispatch(t.Context(), hp.ID, f.principal("squad"), f.accounts["officer-a"].ID, ""); err != nil {
		t.Fatal(err)
	}
	if got := tickets(read(t, "officer-b", "")); len(got) != 0 {
		t.Errorf("officer B exported %v", got)
	}
	if got := tickets(read(t, "officer-a", "")); !slices.Equal(got, []string{hp.Ticket}) {
		t.Errorf("officer A exported %v", got)
	}
}

func TestCSVSafe(t *testing.T) {
	for in, want := range map[string]string{"": "", "=1+1": "'=1+1", "+86": "'+86", "-2": "'-2", "@x": "'@x", "普通": "普通", "a=b": "a=b"} {
		if got := csvSafe(in); got != want {
			t.Errorf("csvSafe(%q) = %q, want %q", in, got, want)
		}
	}
}
