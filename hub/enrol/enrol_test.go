package enrol

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

func TestCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c, err := NewCode()
		if err != nil {
			t.Fatal(err)
		}
		if err := protocol.ValidClaimCode(c); err != nil {
			t.Fatalf("NewCode() = %q: %v", c, err)
		}
		if seen[c] {
			t.Fatalf("repeated code %s", c)
		}
		seen[c] = true
		if f := FormatCode(c); protocol.NormalizeClaimCode(f) != c || len(f) != 14 {
			t.Fatalf("FormatCode(%s) = %s", c, f)
		}
	}
	a, b := HashCode([]byte("secret-1"), "123456789012"), HashCode([]byte("secret-2"), "123456789012")
	if a == b || len(a) != 64 || strings.Contains(a, "123456789012") {
		t.Errorf("HashCode: %s %s", a, b)
	}
}

func TestDecodeClaimRequest(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		wantTTL time.Duration
		wantErr string
	}{
		{"community only", `{"community":"sangcheng"}`, DefaultTTL, ""},
		{"with kiosk and ttl", `{"community":"sangcheng","kiosk":"k-sangcheng-01","ttl":"2h"}`, 2 * time.Hour, ""},
		{"empty", ``, 0, "claim request"},
		{"no community", `{}`, 0, "community"},
		{"bad community id", `{"community":"桑城"}`, 0, "community"},
		{"bad kiosk id", `{"community":"sangcheng","kiosk":"K/1"}`, 0, "kiosk"},
		{"ttl too short", `{"community":"sangcheng","ttl":"1m"}`, 0, "ttl must be"},
		{"ttl too long", `{"community":"sangcheng","ttl":"1000h"}`, 0, "ttl must be"},
		{"ttl garbage", `{"community":"sangcheng","ttl":"soon"}`, 0, "ttl"},
		{"unknown field", `{"community":"sangcheng","code":"1"}`, 0, "unknown field"},
		{"trailing data", `{"community":"sangcheng"}{}`, 0, "trailing"},
		{"too large", `{"community":"sangcheng"}` + strings.Repeat(" ", MaxClaimRequestSize), 0, "limit"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, ttl, err := DecodeClaimRequest([]byte(tc.in))
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
				return
			}
			if err != nil || ttl != tc.wantTTL {
				t.Fatalf("ttl %v, err %v; want %v", ttl, err, tc.wantTTL)
			}
		})
	}
}

func FuzzDecodeClaimRequest(f *testing.F) {
	files, err := filepath.Glob(filepath.Join("testdata", "*.json"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		r, ttl, err := DecodeClaimRequest(data)
		if err != nil {
			return
		}
		if protocol.ValidID(r.Community) != nil || (r.Kiosk != "" && protocol.ValidID(r.Kiosk) != nil) || ttl < MinTTL || ttl > MaxTTL {
			t.Fatalf("accepted %q as %+v ttl %v", data, r, ttl)
		}
	})
}
