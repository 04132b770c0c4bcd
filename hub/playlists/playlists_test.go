package playlists

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDecodeRequest(t *testing.T) {
	good, err := os.ReadFile(filepath.Join("testdata", "playlist.json"))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		body string
		ok   bool
	}{
		{"testdata", string(good), true},
		{"unknown field", `{"name":"x","colour":"red"}`, false},
		{"trailing", `{"name":"x"} {}`, false},
		{"not an object", `[]`, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := DecodeRequest([]byte(tc.body))
			if (err == nil) != tc.ok {
				t.Fatalf("DecodeRequest: %v, want ok=%v", err, tc.ok)
			}
			if tc.ok && (req.Name != "社区宣传" || len(req.Items) != 3 || req.Items[2].Notice != "n-1") {
				t.Errorf("decoded %+v", req)
			}
		})
	}
}

func FuzzDecodeRequest(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "playlist.json"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"items":[{"kind":"notice"}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeRequest(data)
		if err != nil {
			return
		}
		if len(data) > MaxRequestSize || len(req.Items) > 100 {
			t.Fatalf("accepted %d bytes with %d items", len(data), len(req.Items))
		}
	})
}
