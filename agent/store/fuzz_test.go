package store

import (
	"encoding/json"
	"os"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// FuzzDecodeStored feeds arbitrary bytes to the decoders of stored values:
// they must return an error, never panic, and whatever they accept must
// survive a round trip (when re-encoding does not make it longer, since
// encoding/json escapes <, > and & into six bytes each).
func FuzzDecodeStored(f *testing.F) {
	data, err := os.ReadFile("../../protocol/testdata/desired.json")
	if err != nil {
		f.Fatal(err)
	}
	var env struct{ Body json.RawMessage }
	if err := json.Unmarshal(data, &env); err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(env.Body))
	f.Add([]byte(`{"id":"019ac0d0-5e6f-7a80-b91c-2d3e4f506172","reason":"kiosk not enrolled","at":"2026-11-26T09:30:00Z","data":"e30="}`))
	f.Add([]byte(`{"kiosk":"k1","version":-1}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, b []byte) {
		if d, err := decodeDesired(b); err == nil {
			again, err := json.Marshal(d)
			if err != nil {
				t.Fatal(err)
			}
			if d2, err := decodeDesired(again); len(again) <= len(b) && (err != nil || d2.Version != d.Version) {
				t.Fatalf("desired round trip: %v", err)
			}
		}
		if r, err := decodeDeadRecord(b); err == nil {
			again, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if r2, err := decodeDeadRecord(again); len(again) <= len(b) && (err != nil || r2.ID != r.ID) {
				t.Fatalf("dead record round trip: %v", err)
			}
		}
	})
}

// FuzzDecodeIdentity: the stored identity decoder refuses what it cannot
// validate and never panics.
func FuzzDecodeIdentity(f *testing.F) {
	data, err := os.ReadFile("../../protocol/testdata/enrol_response.json")
	if err != nil {
		f.Fatal(err)
	}
	r, err := protocol.DecodeEnrolResponse(data)
	if err != nil {
		f.Fatal(err)
	}
	seed, err := json.Marshal(IdentityFrom(r, "https://hub.example:8443", time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"kiosk":"k1"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := decodeIdentity(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(id)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := decodeIdentity(again); err != nil && len(again) <= len(b) {
			t.Fatalf("identity round trip: %v", err)
		}
	})
}

// FuzzDecodePlayCount: the stored play count decoder refuses what it
// cannot validate, never panics, and what it accepts survives a round trip.
func FuzzDecodePlayCount(f *testing.F) {
	data, err := os.ReadFile("../../protocol/testdata/plays.json")
	if err != nil {
		f.Fatal(err)
	}
	_, ps, err := protocol.DecodePlays(data)
	if err != nil {
		f.Fatal(err)
	}
	for _, it := range ps.Items {
		seed, err := json.Marshal(it)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(seed)
	}
	f.Add([]byte(`{"kind":"notice","notice":"n1","count":0,"last":"2026-11-26T09:00:00Z"}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodePlayCount(b)
		if err != nil {
			return
		}
		again, err := json.Marshal(c)
		if err != nil {
			t.Fatal(err)
		}
		if c2, err := decodePlayCount(again); len(again) <= len(b) && (err != nil || c2.Count != c.Count) {
			t.Fatalf("play count round trip: %v", err)
		}
	})
}
