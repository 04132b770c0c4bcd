package media

import (
	"encoding/json"
	"os"
	"testing"
)

// FuzzDecodeState feeds arbitrary bytes to the decoder of stored download
// states: it refuses what does not hold a valid manifest and a bitmap of
// its chunks, never panics, and what it accepts survives a round trip.
func FuzzDecodeState(f *testing.F) {
	man, err := os.ReadFile("../../protocol/testdata/manifest.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(mustState(f, man, 1)) // 3 chunks: one byte, valid
	if _, _, err := decodeState(mustState(f, man, 1)); err != nil {
		f.Fatalf("seed refused: %v", err)
	}
	f.Add(mustState(f, man, 0))
	f.Add([]byte(`{"manifest":null,"bitmap":""}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, m, err := decodeState(b)
		if err != nil {
			return
		}
		if len(s.Bitmap)*8 < len(m.Chunks) {
			t.Fatalf("bitmap of %d bytes accepted for %d chunks", len(s.Bitmap), len(m.Chunks))
		}
		again, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, m2, err := decodeState(again); err != nil || m2.SHA256 != m.SHA256 {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func mustState(f *testing.F, manifest []byte, bitmap int) []byte {
	f.Helper()
	b, err := json.Marshal(state{Manifest: manifest, Bitmap: make([]byte, bitmap)})
	if err != nil {
		f.Fatal(err)
	}
	return b
}
