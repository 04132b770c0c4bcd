package desired

import (
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/protocol"
)

var now = time.Date(2026, 7, 1, 12, 0, 0, 0, time.UTC)

func notice(id string, p protocol.Priority, from time.Time, until time.Time, targets ...protocol.Target) protocol.Notice {
	return protocol.Notice{ID: id, Title: "通知" + id, Body: "正文", Category: protocol.NoticePublicity, Priority: p,
		ValidFrom: from, ValidUntil: until, Targets: targets}
}

func TestBuild(t *testing.T) {
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	district := protocol.Target{Level: protocol.LevelDistrict, ID: "huangpu"}
	ruiyi := protocol.Target{Level: protocol.LevelCommunity, ID: "ruiyi"}
	kiosk := protocol.Target{Level: protocol.LevelKiosk, ID: "k-sangcheng-01"}
	hour := time.Hour
	live := []protocol.Notice{
		notice("old-normal", protocol.PriorityNormal, now.Add(-3*hour), time.Time{}, district),
		notice("new-normal", protocol.PriorityNormal, now.Add(-1*hour), time.Time{}, district),
		notice("urgent", protocol.PriorityUrgent, now.Add(-5*hour), time.Time{}, kiosk),
		notice("scheduled", protocol.PriorityImportant, now.Add(5*hour), now.Add(6*hour), district),
		notice("expired-since", protocol.PriorityUrgent, now.Add(-5*hour), now, district),
		notice("elsewhere", protocol.PriorityUrgent, now.Add(-5*hour), time.Time{}, ruiyi),
	}
	tests := []struct {
		name  string
		kiosk string
		want  []string
	}{
		{"sangcheng-01", "k-sangcheng-01", []string{"urgent", "scheduled", "new-normal", "old-normal"}},
		{"sangcheng-02", "k-sangcheng-02", []string{"scheduled", "new-normal", "old-normal"}},
		{"ruiyi", "k-ruiyi-01", []string{"elsewhere", "scheduled", "new-normal", "old-normal"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := Build(tree, tc.kiosk, live, now)
			var ids []string
			for _, n := range d.Notices {
				ids = append(ids, n.ID)
			}
			if !slices.Equal(ids, tc.want) {
				t.Errorf("notices = %v, want %v", ids, tc.want)
			}
			if d.Station != tree.Station(tc.kiosk) {
				t.Errorf("station = %+v", d.Station)
			}
			if err := d.State(1).Validate(); err != nil {
				t.Errorf("State.Validate: %v", err)
			}
		})
	}
	a, b := Build(tree, "k-sangcheng-01", live, now), Build(tree, "k-sangcheng-01", live[1:], now)
	ha, err := a.Hash()
	if err != nil {
		t.Fatal(err)
	}
	ha2, err := Build(tree, "k-sangcheng-01", live, now).Hash()
	if err != nil {
		t.Fatal(err)
	}
	hb, err := b.Hash()
	if err != nil {
		t.Fatal(err)
	}
	if ha != ha2 || ha == hb {
		t.Errorf("hashes: same content %s/%s, other content %s", ha, ha2, hb)
	}
}

func TestBuildLimits(t *testing.T) {
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	district := protocol.Target{Level: protocol.LevelDistrict, ID: "huangpu"}
	tests := []struct {
		name      string
		count     int
		body      string
		wantKept  int
		wantFirst string
	}{
		{"too many", protocol.MaxNotices + 5, "短", protocol.MaxNotices, "n-0204"},
		{"too large", 150, strings.Repeat("长", protocol.MaxNoticeBody), 0, "n-0149"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var live []protocol.Notice
			for i := range tc.count {
				n := notice(fmt.Sprintf("n-%04d", i), protocol.PriorityNormal, now.Add(-time.Duration(tc.count-i)*time.Minute), time.Time{}, district)
				n.Body = tc.body
				live = append(live, n)
			}
			d := Build(tree, "k-ruiyi-01", live, now)
			if tc.wantKept > 0 && len(d.Notices) != tc.wantKept {
				t.Errorf("kept %d, want %d", len(d.Notices), tc.wantKept)
			}
			if len(d.Notices)+len(d.Dropped) != tc.count || len(d.Dropped) == 0 {
				t.Errorf("kept %d dropped %d of %d", len(d.Notices), len(d.Dropped), tc.count)
			}
			if d.Notices[0].ID != tc.wantFirst {
				t.Errorf("first kept %s, want newest %s", d.Notices[0].ID, tc.wantFirst)
			}
			b, err := protocol.Encode(protocol.TypeDesired, now, d.State(1))
			if err != nil {
				t.Fatalf("Encode: %v", err)
			}
			if _, _, err := protocol.DecodeDesired(b); err != nil {
				t.Fatalf("DecodeDesired: %v", err)
			}
		})
	}
}
