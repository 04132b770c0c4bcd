package enrol

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shequ/shequ/protocol"
)

func TestParseHardwareID(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string // "" means refused
	}{
		{"dmi uuid", "4C4C4544-0042-3510-8052-B4C04F4E3732\n", "4c4c4544-0042-3510-8052-b4c04f4e3732"},
		{"machine-id", "0123456789abcdef0123456789abcdef\n", "0123456789abcdef0123456789abcdef"},
		{"empty", "\n", ""},
		{"inner space", "abc def", ""},
		{"control byte", "abc\x00def", ""},
		{"non-ascii", "机器", ""},
		{"too long", strings.Repeat("a", protocol.MaxHardwareID+1), ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseHardwareID([]byte(tc.in))
			if got != tc.want || (err == nil) != (tc.want != "") {
				t.Fatalf("parseHardwareID(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestHardwareIDFallsBack(t *testing.T) {
	dir := t.TempDir()
	mid := filepath.Join(dir, "machine-id")
	if err := os.WriteFile(mid, []byte("0123456789abcdef0123456789abcdef\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	saved := hardwareIDFiles
	t.Cleanup(func() { hardwareIDFiles = saved })
	hardwareIDFiles = []string{filepath.Join(dir, "product_uuid"), mid}
	if id, err := HardwareID(); err != nil || id != "0123456789abcdef0123456789abcdef" {
		t.Fatalf("HardwareID = %q, %v", id, err)
	}
	hardwareIDFiles = []string{filepath.Join(dir, "none")}
	if _, err := HardwareID(); !errors.Is(err, ErrConfig) {
		t.Fatalf("HardwareID with no file = %v, want ErrConfig", err)
	}
}

// FuzzParseHardwareID: never panics; what it accepts is valid in an
// enrolment request.
func FuzzParseHardwareID(f *testing.F) {
	f.Add([]byte("4C4C4544-0042-3510-8052-B4C04F4E3732\n"))
	f.Add([]byte("0123456789abcdef0123456789abcdef\n"))
	f.Add([]byte(" \t\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		id, err := parseHardwareID(b)
		if err != nil {
			return
		}
		r := protocol.EnrolRequest{ClaimCode: "123456789012", PublicKey: "Z+/ayBGGGfjoMjrxBRDVWVecbxwKp0ex/q7WGJdxm3I=", HardwareID: id, SoftwareVersion: "dev"}
		if err := r.Validate(); err != nil {
			t.Fatalf("accepted hardware id %q is not valid in a request: %v", id, err)
		}
	})
}

// FuzzParsePin: never panics; what it accepts is 32 bytes.
func FuzzParsePin(f *testing.F) {
	f.Add(strings.Repeat("0a", 32))
	f.Add(strings.Repeat("0A:", 32))
	f.Add("")
	f.Fuzz(func(t *testing.T, s string) {
		if b, err := ParsePin(s); err == nil && len(b) != 32 {
			t.Fatalf("ParsePin(%q) = %d bytes", s, len(b))
		}
	})
}

// FuzzDecodeResponse feeds arbitrary answers to the response decoder: it
// never panics, accepts only valid responses with status 200, and refuses
// everything else with ErrRefused or ErrResponse.
func FuzzDecodeResponse(f *testing.F) {
	good, err := os.ReadFile("../../protocol/testdata/enrol_response.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(200, good)
	f.Add(403, []byte(`{"error":"claim code used"}`))
	f.Add(429, []byte("slow down"))
	f.Add(200, []byte(`{}`))
	f.Fuzz(func(t *testing.T, status int, body []byte) {
		r, err := decodeResponse(status, bytes.NewReader(body))
		switch {
		case err == nil:
			if status != 200 || r.Validate() != nil || r.MQTTUsername != r.Kiosk {
				t.Fatalf("accepted status %d, %+v", status, r)
			}
		case status == 200 && !errors.Is(err, ErrResponse):
			t.Fatalf("status 200 refused with %v, want ErrResponse", err)
		case status != 200 && !errors.Is(err, ErrRefused):
			t.Fatalf("status %d refused with %v, want ErrRefused", status, err)
		}
	})
}
