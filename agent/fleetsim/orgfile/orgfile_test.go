package orgfile_test

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/protocol"
)

func TestKioskIDs(t *testing.T) {
	tests := []struct {
		name       string
		n          int
		first, end string
	}{
		{"one", 1, "k-0001", "k-0001"},
		{"thousand", 1000, "k-0001", "k-1000"},
		{"ten thousand widens", 10000, "k-00001", "k-10000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			ids := orgfile.KioskIDs(tc.n)
			if len(ids) != tc.n || ids[0] != tc.first || ids[len(ids)-1] != tc.end {
				t.Fatalf("KioskIDs(%d) = %d ids %s..%s, want %s..%s", tc.n, len(ids), ids[0], ids[len(ids)-1], tc.first, tc.end)
			}
			if !slices.IsSorted(ids) {
				t.Error("ids do not sort in order")
			}
			for _, id := range ids {
				if err := protocol.ValidID(id); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

// TestGenerateAcceptedByHub checks every generated file against the hub's
// own org-tree parser, the authority on the format.
func TestGenerateAcceptedByHub(t *testing.T) {
	tests := []struct {
		name        string
		n           int
		communities int
	}{
		{"one kiosk", 1, 1},
		{"one community full", orgfile.KiosksPerCommunity, 1},
		{"second community", orgfile.KiosksPerCommunity + 1, 2},
		{"one district", 100, 25},
		{"district and one", 101, 26},
		{"thousand", 1000, 250},
		{"largest", orgfile.MaxKiosks, orgfile.MaxKiosks / orgfile.KiosksPerCommunity},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			data, err := orgfile.Generate(tc.n)
			if err != nil {
				t.Fatal(err)
			}
			tree, err := orgtree.Parse(data)
			if err != nil {
				t.Fatalf("hub refuses the generated file: %v", err)
			}
			var hubIDs []string
			communities := map[string]bool{}
			for _, k := range tree.Kiosks() {
				hubIDs = append(hubIDs, k.ID)
				communities[k.Community] = true
				if st := tree.Station(k.ID); st.Validate() != nil {
					t.Fatalf("kiosk %s: station %+v invalid: %v", k.ID, st, st.Validate())
				}
			}
			if want := orgfile.KioskIDs(tc.n); !slices.Equal(hubIDs, want) {
				t.Fatalf("hub sees %d kiosks, want %d (%v...)", len(hubIDs), len(want), want[:1])
			}
			if len(communities) != tc.communities {
				t.Errorf("%d communities, want %d", len(communities), tc.communities)
			}
			all, err := tree.Resolve([]protocol.Target{{Level: protocol.LevelCity, ID: "shanghai"}})
			if err != nil || len(all) != tc.n {
				t.Errorf("the city reaches %d kiosks (err %v), want %d", len(all), err, tc.n)
			}
			got, err := orgfile.Parse(data)
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(got.Kiosks, hubIDs) || got.Root != (protocol.Target{Level: protocol.LevelCity, ID: "shanghai"}) {
				t.Errorf("Parse = root %v and %d kiosks, want the city and %d", got.Root, len(got.Kiosks), len(hubIDs))
			}
		})
	}
}

func TestGenerateRejectsBadSizes(t *testing.T) {
	for _, n := range []int{-1, 0, orgfile.MaxKiosks + 1} {
		if _, err := orgfile.Generate(n); err == nil {
			t.Errorf("Generate(%d) succeeded", n)
		}
	}
}

func TestParseDemo(t *testing.T) {
	data := read(t, "demo.json")
	tree, err := orgtree.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := orgfile.Parse(data)
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, k := range tree.Kiosks() {
		want = append(want, k.ID)
	}
	if !slices.Equal(got.Kiosks, want) || got.Root.ID != tree.Root().ID || got.Root.Level != tree.Root().Level {
		t.Errorf("Parse(demo) = %+v, want root %s and kiosks %v", got, tree.Root().ID, want)
	}
}

// TestParseInvalid decodes every file under testdata/invalid, which the hub
// refuses as well.
func TestParseInvalid(t *testing.T) {
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 8 {
		t.Fatalf("found %d invalid examples, want at least 8", len(files))
	}
	for _, f := range files {
		t.Run(strings.TrimSuffix(filepath.Base(f), ".json"), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := orgtree.Parse(data); err == nil {
				t.Fatal("the hub accepts this example; it does not belong under invalid/")
			}
			if _, err := orgfile.Parse(data); !errors.Is(err, orgfile.ErrInvalid) {
				t.Fatalf("Parse = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestParseTooLarge(t *testing.T) {
	data := append(read(t, "generated-12.json"), bytes.Repeat([]byte(" "), orgfile.MaxFileSize)...)
	if _, err := orgfile.Parse(data); !errors.Is(err, orgfile.ErrInvalid) || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("Parse of %d bytes = %v, want the size limit", len(data), err)
	}
}

// FuzzParse checks Parse never panics, that what it accepts is sound, and
// that it accepts every file the hub accepts, with the same kiosks.
func FuzzParse(f *testing.F) {
	for _, pattern := range []string{"testdata/*.json", "testdata/invalid/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil || len(files) == 0 {
			f.Fatalf("no seeds match %s: %v", pattern, err)
		}
		for _, name := range files {
			data, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := orgfile.Parse(data)
		if err == nil {
			seen := map[string]bool{}
			for _, id := range got.Kiosks {
				if protocol.ValidID(id) != nil || seen[id] {
					t.Fatalf("accepted kiosk id %q (invalid or repeated)", id)
				}
				seen[id] = true
			}
		}
		tree, herr := orgtree.Parse(data)
		if herr != nil {
			return
		}
		if err != nil {
			t.Fatalf("the hub accepts %q but Parse refuses it: %v", data, err)
		}
		var want []string
		for _, k := range tree.Kiosks() {
			want = append(want, k.ID)
		}
		if !slices.Equal(got.Kiosks, want) {
			t.Fatalf("kiosks %v, the hub sees %v", got.Kiosks, want)
		}
	})
}

func read(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}
