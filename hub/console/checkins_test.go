package console

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

func TestCheckinsOverview(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	now := f.clock.Now()
	add := func(officer, kiosk, community string, ago time.Duration, note string) {
		t.Helper()
		at := now.Add(-ago)
		if _, _, err := f.st.AddCheckin(ctx, store.Checkin{ID: protocol.NewID(), Officer: f.accounts[officer].ID, Kiosk: kiosk,
			Community: community, Slot: protocol.CheckinSlot(at), At: at, Kind: "visit", Note: note}); err != nil {
			t.Fatal(err)
		}
	}
	add("officer-a", "k-sangcheng-01", "sangcheng", time.Hour, "上午走访<b>")
	add("officer-b", "k-sangcheng-01", "sangcheng", 2*time.Hour, "")
	add("officer-a", "k-sangcheng-01", "sangcheng", 20*24*time.Hour, "二十天前")
	add("officer-a", "k-hengfu-01", "hengfu", time.Hour, "徐汇的签到")

	tests := []struct {
		name, user, query string
		code              int
		has, hasNot       []string
	}{
		{"district sees its own", "huangpu", "", http.StatusOK, []string{"上午走访&lt;b&gt;", "二十天前", "队员甲", "队员乙"}, []string{"徐汇的签到", "<b>"}},
		{"7 days", "huangpu", "?days=7", http.StatusOK, []string{"上午走访"}, []string{"二十天前"}},
		{"one community", "squad", "?community=ruiyi", http.StatusOK, []string{"期间无签到"}, []string{"上午走访"}},
		{"xuhui", "xuhui", "", http.StatusOK, []string{"徐汇的签到"}, []string{"上午走访"}},
		{"bureau sees all", "bureau", "", http.StatusOK, []string{"徐汇的签到", "上午走访"}, nil},
		{"community elsewhere", "huangpu", "?community=hengfu", http.StatusNotFound, nil, []string{"徐汇的签到"}},
		{"days not offered", "huangpu", "?days=100000", http.StatusBadRequest, nil, nil},
		{"days injected", "huangpu", "?days=7%20OR%201=1", http.StatusBadRequest, nil, nil},
		{"officer", "officer-a", "", http.StatusForbidden, nil, nil},
		{"partner", "partner", "", http.StatusForbidden, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			res := f.login(tt.user).get("/checkins" + tt.query)
			if res.code != tt.code {
				t.Fatalf("GET /checkins%s as %s: %d, want %d", tt.query, tt.user, res.code, tt.code)
			}
			for _, s := range tt.has {
				if !strings.Contains(res.body, s) {
					t.Errorf("page lacks %q", s)
				}
			}
			for _, s := range tt.hasNot {
				if strings.Contains(res.body, s) {
					t.Errorf("page shows %q", s)
				}
			}
		})
	}
	// The workstation without check-ins is listed first, marked.
	body := f.login("huangpu").get("/checkins").body
	presence := body[strings.Index(body, `id="presence"`):]
	if i, j := strings.Index(presence, "瑞一居委"), strings.Index(presence, "桑城居委"); i < 0 || j < 0 || i > j {
		t.Errorf("ruiyi (no check-ins) is not listed before sangcheng")
	}
	if !strings.Contains(presence, `<tr class="overdue"><td>瑞一居委`) {
		t.Errorf("ruiyi without check-ins is not marked")
	}
}
