package orgtree

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shequ/shequ/protocol"
)

func loadDemo(t *testing.T) *Tree {
	t.Helper()
	tr, err := Load(filepath.Join("testdata", "demo.json"))
	if err != nil {
		t.Fatalf("Load demo: %v", err)
	}
	return tr
}

func TestLoadDemo(t *testing.T) {
	tr := loadDemo(t)
	var ids []string
	for _, k := range tr.Kiosks() {
		ids = append(ids, k.ID)
	}
	want := []string{"k-sangcheng-01", "k-sangcheng-02", "k-ruiyi-01"}
	if !slices.Equal(ids, want) {
		t.Errorf("Kiosks = %v, want %v", ids, want)
	}
	st := tr.Station("k-sangcheng-01")
	if st.Name != "桑城社区城管执法工作室" || st.Community != "sangcheng" || st.CommunityName != "桑城居委" {
		t.Errorf("Station = %+v", st)
	}
	if err := st.Validate(); err != nil {
		t.Errorf("Station.Validate: %v", err)
	}
	if n := tr.Node("wuliqiao"); n == nil || n.Name != "五里桥街道" || n.Parent().ID != "huangpu" {
		t.Errorf("Node(wuliqiao) = %+v", n)
	}
	if tr.Node("nope") != nil {
		t.Error("Node(nope) != nil")
	}
}

func TestAncestors(t *testing.T) {
	tr := loadDemo(t)
	tests := []struct {
		name  string
		kiosk string
		want  []protocol.Target
	}{
		{"kiosk", "k-ruiyi-01", []protocol.Target{
			{Level: protocol.LevelCity, ID: "shanghai"},
			{Level: protocol.LevelDistrict, ID: "huangpu"},
			{Level: protocol.LevelStreet, ID: "wuliqiao"},
			{Level: protocol.LevelCommunity, ID: "ruiyi"},
			{Level: protocol.LevelKiosk, ID: "k-ruiyi-01"},
		}},
		{"not a kiosk", "ruiyi", nil},
		{"unknown", "k-x", nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := tr.Ancestors(tc.kiosk); !slices.Equal(got, tc.want) {
				t.Errorf("Ancestors(%q) = %v, want %v", tc.kiosk, got, tc.want)
			}
		})
	}
}

func TestResolve(t *testing.T) {
	tr := loadDemo(t)
	tests := []struct {
		name    string
		targets []protocol.Target
		want    []string
		wantErr error
	}{
		{"district", []protocol.Target{{Level: protocol.LevelDistrict, ID: "huangpu"}},
			[]string{"k-ruiyi-01", "k-sangcheng-01", "k-sangcheng-02"}, nil},
		{"community", []protocol.Target{{Level: protocol.LevelCommunity, ID: "sangcheng"}},
			[]string{"k-sangcheng-01", "k-sangcheng-02"}, nil},
		{"overlap deduplicated", []protocol.Target{
			{Level: protocol.LevelCommunity, ID: "ruiyi"},
			{Level: protocol.LevelKiosk, ID: "k-ruiyi-01"},
		}, []string{"k-ruiyi-01"}, nil},
		{"unknown node", []protocol.Target{{Level: protocol.LevelCommunity, ID: "nowhere"}}, nil, ErrUnknownNode},
		{"wrong level", []protocol.Target{{Level: protocol.LevelStreet, ID: "huangpu"}}, nil, ErrLevel},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := tr.Resolve(tc.targets)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("Resolve err = %v, want %v", err, tc.wantErr)
			}
			if !slices.Equal(got, tc.want) {
				t.Errorf("Resolve = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestParseInvalid(t *testing.T) {
	const station = `"station":{"name":"工作室"}`
	tests := []struct {
		name string
		data string
		msg  string
	}{
		{"not json", `{`, "unexpected EOF"},
		{"trailing data", `{"version":1,"root":{"id":"c","name":"市","level":"city"}} {}`, "trailing"},
		{"wrong version", `{"version":2,"root":{"id":"c","name":"市","level":"city"}}`, "version 2"},
		{"no root", `{"version":1}`, "root is missing"},
		{"unknown field", `{"version":1,"root":{"id":"c","name":"市","level":"city","colour":"red"}}`, "unknown field"},
		{"bad id", `{"version":1,"root":{"id":"C!","name":"市","level":"city"}}`, "node id"},
		{"empty name", `{"version":1,"root":{"id":"c","name":"","level":"city"}}`, "name"},
		{"bad level", `{"version":1,"root":{"id":"c","name":"市","level":"planet"}}`, "level"},
		{"kiosk root", `{"version":1,"root":{"id":"k","name":"亭","level":"kiosk"}}`, "must not be a kiosk"},
		{"skipped level", `{"version":1,"root":{"id":"c","name":"市","level":"city","children":[
			{"id":"s","name":"街道","level":"street"}]}}`, "one level below"},
		{"kiosk under street", `{"version":1,"root":{"id":"s","name":"街道","level":"street","children":[
			{"id":"k","name":"亭","level":"kiosk"}]}}`, "one level below"},
		{"duplicate id", `{"version":1,"root":{"id":"c","name":"市","level":"city","children":[
			{"id":"d","name":"区","level":"district"},{"id":"d","name":"区","level":"district"}]}}`, "twice"},
		{"community without station", `{"version":1,"root":{"id":"m","name":"居委","level":"community"}}`, "no station"},
		{"station on street", `{"version":1,"root":{"id":"s","name":"街道","level":"street",` + station + `}}`, "only communities"},
		{"station without name", `{"version":1,"root":{"id":"m","name":"居委","level":"community","station":{"hours":"9-5"}}}`, "station name"},
		{"station name the kiosk cannot draw", `{"version":1,"root":{"id":"m","name":"居委","level":"community","station":{"name":"燚工作室"}}}`,
			`station name: the kiosk font cannot draw "燚"`},
		{"duty officer the kiosk cannot draw", `{"version":1,"root":{"id":"m","name":"居委","level":"community","station":{"name":"工作室","duty_officer":"王䶮"}}}`,
			`station duty_officer: the kiosk font cannot draw "䶮"`},
		{"community name the kiosk cannot draw", `{"version":1,"root":{"id":"m","name":"燚居委","level":"community",` + station + `}}`,
			`name: the kiosk font cannot draw "燚"`},
		{"kiosk with children", `{"version":1,"root":{"id":"m","name":"居委","level":"community",` + station + `,"children":[
			{"id":"k","name":"亭","level":"kiosk","children":[{"id":"k2","name":"亭","level":"kiosk"}]}]}}`, "one level below"},
		{"null child", `{"version":1,"root":{"id":"c","name":"市","level":"city","children":[null]}}`, "null node"},
		{"too large", `{"version":1,"root":{"id":"c","name":"` + strings.Repeat("x", MaxFileSize) + `","level":"city"}}`, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tr, err := Parse([]byte(tc.data))
			if err == nil {
				t.Fatalf("Parse succeeded: %+v", tr)
			}
			if !errors.Is(err, ErrInvalid) {
				t.Errorf("err = %v, want ErrInvalid", err)
			}
			if !strings.Contains(err.Error(), tc.msg) {
				t.Errorf("err = %q, want it to mention %q", err, tc.msg)
			}
		})
	}
}

func TestMarshalRoundTrip(t *testing.T) {
	tr := loadDemo(t)
	data, err := tr.MarshalJSON()
	if err != nil {
		t.Fatal(err)
	}
	again, err := Parse(data)
	if err != nil {
		t.Fatalf("Parse(MarshalJSON): %v", err)
	}
	if !slices.Equal(again.Kiosks(), tr.Kiosks()) {
		t.Errorf("round trip kiosks = %v, want %v", again.Kiosks(), tr.Kiosks())
	}
}

func TestLoadMissing(t *testing.T) {
	if _, err := Load(filepath.Join(t.TempDir(), "none.json")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("Load(missing) err = %v, want ErrNotExist", err)
	}
}

func FuzzParse(f *testing.F) {
	for _, name := range []string{"demo.json", "small.json"} {
		data, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte(`{"version":1,"root":{"id":"c","name":"市","level":"city","children":[null]}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		tr, err := Parse(data)
		if err != nil {
			return
		}
		for _, k := range tr.Kiosks() {
			anc := tr.Ancestors(k.ID)
			if len(anc) == 0 || anc[len(anc)-1].ID != k.ID {
				t.Fatalf("Ancestors(%q) = %v", k.ID, anc)
			}
			if err := tr.Station(k.ID).Validate(); err != nil {
				t.Fatalf("Station(%q): %v", k.ID, err)
			}
			got, err := tr.Resolve(anc[:1])
			if err != nil || !slices.Contains(got, k.ID) {
				t.Fatalf("Resolve(root) = %v, %v; missing %q", got, err, k.ID)
			}
		}
	})
}
