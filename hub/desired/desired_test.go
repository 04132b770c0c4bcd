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

func sha(c byte) string { return strings.Repeat(string(c), 64) }

func TestAddPlaylists(t *testing.T) {
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	district := protocol.Target{Level: protocol.LevelDistrict, ID: "huangpu"}
	sangcheng := protocol.Target{Level: protocol.LevelCommunity, ID: "sangcheng"}
	ruiyi := protocol.Target{Level: protocol.LevelCommunity, ID: "ruiyi"}
	kiosk := protocol.Target{Level: protocol.LevelKiosk, ID: "k-sangcheng-01"}
	hour := time.Hour
	refs := map[string]protocol.MediaRef{
		sha('a'): {SHA256: sha('a'), Kind: protocol.MediaVideo, Size: 10},
		sha('b'): {SHA256: sha('b'), Kind: protocol.MediaImage, Size: 20},
		sha('c'): {SHA256: sha('c'), Kind: protocol.MediaImage, Size: 30},
	}
	pl := func(id string, from, until time.Time, target protocol.Target, media ...string) protocol.Playlist {
		p := protocol.Playlist{ID: id, Name: "节目" + id, ValidFrom: from, ValidUntil: until, Targets: []protocol.Target{target}}
		for _, m := range media {
			kind := protocol.ItemImage
			if m == sha('a') {
				kind = protocol.ItemVideo
			}
			it := protocol.PlaylistItem{Kind: kind, Media: m}
			if kind == protocol.ItemImage {
				it.DurationMS = 5000
			}
			p.Items = append(p.Items, it)
		}
		p.Items = append(p.Items, protocol.PlaylistItem{Kind: protocol.ItemNotice, Notice: "n1", DurationMS: 8000})
		return p
	}
	live := []protocol.Playlist{
		pl("district-old", now.Add(-3*hour), time.Time{}, district, sha('a'), sha('b')),
		pl("district-new", now.Add(-1*hour), time.Time{}, district, sha('b')),
		pl("community", now.Add(-5*hour), time.Time{}, sangcheng, sha('c')),
		pl("kiosk", now.Add(-5*hour), time.Time{}, kiosk, sha('a')),
		pl("scheduled", now.Add(2*hour), time.Time{}, kiosk, sha('b')),
		pl("expired", now.Add(-5*hour), now, kiosk, sha('b')),
		pl("missing-file", now.Add(-5*hour), time.Time{}, kiosk, sha('d')),
		pl("elsewhere", now.Add(-5*hour), time.Time{}, ruiyi, sha('a')),
	}
	d := Build(tree, "k-sangcheng-01", nil, now)
	d.AddPlaylists(tree, live, refs, now)
	var ids []string
	for _, p := range d.Playlists {
		ids = append(ids, p.ID)
	}
	if want := []string{"scheduled", "kiosk", "community", "district-new", "district-old"}; !slices.Equal(ids, want) {
		t.Errorf("playlists = %v, want %v", ids, want)
	}
	var media []string
	for _, m := range d.Media {
		media = append(media, m.SHA256[:1])
	}
	if want := []string{"b", "a", "c"}; !slices.Equal(media, want) {
		t.Errorf("media = %v, want %v", media, want)
	}
	if !slices.Equal(d.Dropped, []string{"missing-file"}) {
		t.Errorf("dropped = %v", d.Dropped)
	}
	if err := d.State(3).Validate(); err != nil {
		t.Errorf("state does not validate: %v", err)
	}
	h1, err := d.Hash()
	if err != nil {
		t.Fatal(err)
	}
	other := Build(tree, "k-ruiyi-01", nil, now)
	other.AddPlaylists(tree, live, refs, now)
	if len(other.Playlists) != 3 || other.Playlists[0].ID != "elsewhere" {
		t.Errorf("ruiyi playlists: %v", other.Playlists)
	}
	plain := Build(tree, "k-sangcheng-01", nil, now)
	if h0, err := plain.Hash(); err != nil || h0 == h1 {
		t.Errorf("hash without playlists %s = with %s (%v)", h0, h1, err)
	}
}
