package console

import (
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/htmlpage"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// checkinPages are the check-in overview pages and their layout.
var checkinPages = map[string]string{"checkins": "desk"}

// checkinMessages are the check-in overview's messages.
var checkinMessages = htmlpage.Messages{
	"checkins":           {"驻点签到", "Workstation check-ins"},
	"checkins.help":      {"队员在社区工作室扫描终端上的签到码，记录走访或巡查；签到码每分钟更换并由终端签名，证明人在现场。", "Officers scan the kiosk's check-in code at a community workstation to record a visit or patrol; the code changes every minute and is signed by the kiosk, so it proves presence."},
	"checkins.days":      {"时间范围", "Period"},
	"checkins.lastdays":  {"最近 %d 天", "Last %d days"},
	"checkins.summary":   {"各社区工作室", "Per workstation"},
	"checkins.count":     {"签到次数", "Check-ins"},
	"checkins.officers":  {"到访队员", "Officers"},
	"checkins.last":      {"最近一次", "Last"},
	"checkins.never":     {"期间无签到", "None in the period"},
	"checkins.list":      {"签到记录", "Check-ins"},
	"checkins.truncated": {"只显示最近 %d 条。", "Only the latest %d are shown."},
	"col.officer":        {"队员", "Officer"},
}

// checkinDays are the periods the overview offers.
var checkinDays = []int{7, 30, 90}

// registerCheckins adds the check-in overview.
func (c *Console) registerCheckins(m Mux) {
	c.page(m, "GET /checkins", c.checkinsPage, accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin, accounts.RoleSquadLeader)
}

type checkinRow struct {
	store.Checkin
	OfficerName string
}

type communityPresence struct {
	Community *orgtree.Node
	Count     int
	Officers  int
	Last      time.Time
}

type checkinsData struct {
	Days        int
	DayChoices  []int
	Community   string
	Communities []*orgtree.Node
	Summary     []communityPresence
	Rows        []checkinRow
	Truncated   bool
	Limit       int
}

// checkinsPage shows the check-ins at the workstations under the account:
// per community how often and by how many officers in the period, when
// last, and the latest check-ins themselves.
func (c *Console) checkinsPage(w http.ResponseWriter, r *http.Request) {
	p, a := c.principal(r)
	q := r.URL.Query()
	d := checkinsData{Days: checkinDays[1], DayChoices: checkinDays, Limit: store.MaxCasePage}
	if s := q.Get("days"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || !slices.Contains(checkinDays, n) || len(q["days"]) > 1 {
			c.fail(w, r, fmt.Errorf("%w: days must be one of %v", errInvalid, checkinDays))
			return
		}
		d.Days = n
	}
	d.Communities = c.communities(a.Node)
	comms := make([]string, 0, len(d.Communities))
	for _, n := range d.Communities {
		comms = append(comms, n.ID)
	}
	if s := q.Get("community"); s != "" {
		if protocol.ValidID(s) != nil || !p.CanSee(s) || c.cfg.Tree.Node(s) == nil || c.cfg.Tree.Node(s).Level != protocol.LevelCommunity {
			c.fail(w, r, fmt.Errorf("%w: community %q", errNotFound, s))
			return
		}
		d.Community, comms = s, []string{s}
	}
	if len(comms) == 0 {
		c.render(w, r, http.StatusOK, "checkins", T(langOf(r), "checkins"), d)
		return
	}
	since := c.cfg.Now().Add(-time.Duration(d.Days) * 24 * time.Hour)
	list, err := c.cfg.Store.Checkins(r.Context(), store.CheckinFilter{Communities: comms, Since: since, Limit: d.Limit})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	d.Truncated = len(list) == d.Limit
	accts, err := c.cfg.Store.Accounts(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	names := make(map[string]string, len(accts))
	for _, ac := range accts {
		names[ac.ID] = ac.DisplayName
		if names[ac.ID] == "" {
			names[ac.ID] = ac.Username
		}
	}
	per := make(map[string]*communityPresence)
	seen := make(map[string]map[string]bool)
	for _, id := range comms {
		per[id] = &communityPresence{Community: c.cfg.Tree.Node(id)}
		seen[id] = make(map[string]bool)
	}
	for _, ci := range list {
		d.Rows = append(d.Rows, checkinRow{Checkin: ci, OfficerName: names[ci.Officer]})
		cp, ok := per[ci.Community]
		if !ok {
			continue
		}
		cp.Count++
		if !seen[ci.Community][ci.Officer] {
			seen[ci.Community][ci.Officer] = true
			cp.Officers++
		}
		if ci.At.After(cp.Last) {
			cp.Last = ci.At
		}
	}
	for _, id := range comms {
		d.Summary = append(d.Summary, *per[id])
	}
	// Workstations without check-ins first: they need attention.
	slices.SortStableFunc(d.Summary, func(x, y communityPresence) int { return x.Count - y.Count })
	c.render(w, r, http.StatusOK, "checkins", T(langOf(r), "checkins"), d)
}
