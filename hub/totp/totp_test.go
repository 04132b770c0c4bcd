package totp

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// rfcSecret is the SHA1 seed of RFC 6238 Appendix B and RFC 4226 Appendix D.
var rfcSecret = []byte("12345678901234567890")

// TestRFC6238Vectors checks the SHA1 rows of RFC 6238 Appendix B (8 digits).
func TestRFC6238Vectors(t *testing.T) {
	tests := []struct {
		name string
		unix int64
		step int64
		want string
	}{
		{"1970-01-01 00:00:59", 59, 0x1, "94287082"},
		{"2005-03-18 01:58:29", 1111111109, 0x23523EC, "07081804"},
		{"2005-03-18 01:58:31", 1111111111, 0x23523ED, "14050471"},
		{"2009-02-13 23:31:30", 1234567890, 0x273EF07, "89005924"},
		{"2033-05-18 03:33:20", 2000000000, 0x3F940AA, "69279037"},
		{"2603-10-11 11:33:20", 20000000000, 0x27BC86AA, "65353130"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			at := time.Unix(tt.unix, 0)
			if s := Step(at); s != tt.step {
				t.Errorf("Step = %#x, want %#x", s, tt.step)
			}
			if got := HOTP(rfcSecret, uint64(Step(at)), 8); got != tt.want {
				t.Errorf("code = %s, want %s", got, tt.want)
			}
			if got, want := Code(rfcSecret, at), tt.want[2:]; got != want {
				t.Errorf("6-digit code = %s, want %s", got, want)
			}
		})
	}
}

// TestRFC4226Vectors checks the HOTP values of RFC 4226 Appendix D.
func TestRFC4226Vectors(t *testing.T) {
	want := []string{"755224", "287082", "359152", "969429", "338314", "254676", "287922", "162583", "399871", "520489"}
	for c, w := range want {
		if got := HOTP(rfcSecret, uint64(c), 6); got != w {
			t.Errorf("HOTP(counter %d) = %s, want %s", c, got, w)
		}
	}
}

func TestVerify(t *testing.T) {
	now := time.Unix(1111111111, 0) // step 0x23523ED
	cur := Step(now)
	code := func(d int64) string { return HOTP(rfcSecret, uint64(cur+d), Digits) }
	tests := []struct {
		name     string
		code     string
		last     int64
		wantStep int64
		wantOK   bool
	}{
		{"current step", code(0), 0, cur, true},
		{"previous step", code(-1), 0, cur - 1, true},
		{"next step", code(1), 0, cur + 1, true},
		{"two steps back", code(-2), 0, 0, false},
		{"two steps ahead", code(2), 0, 0, false},
		{"replayed in the same step", code(0), cur, 0, false},
		{"step before the last used", code(-1), cur, 0, false},
		{"next step after the current was used", code(1), cur, cur + 1, true},
		{"wrong code", "000000", 0, 0, code(0) == "000000"},
		{"empty", "", 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			step, ok := Verify(rfcSecret, tt.code, now, tt.last)
			if ok != tt.wantOK || (ok && step != tt.wantStep) {
				t.Errorf("Verify = %d, %v; want %d, %v", step, ok, tt.wantStep, tt.wantOK)
			}
		})
	}
}

func TestSecretRoundTrip(t *testing.T) {
	s, err := NewSecret()
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != SecretSize {
		t.Fatalf("secret of %d bytes", len(s))
	}
	g := GroupSecret(s)
	if len(g) != 32+7 || strings.Count(g, " ") != 7 {
		t.Errorf("grouped secret %q, want 8 groups of 4", g)
	}
	for _, in := range []string{EncodeSecret(s), g, strings.ToLower(g)} {
		back, err := ParseSecret(in)
		if err != nil || string(back) != string(s) {
			t.Errorf("ParseSecret(%q) = %x, %v; want %x", in, back, err, s)
		}
	}
}

func TestURI(t *testing.T) {
	u := URI("Shequ", "wang.wei", rfcSecret)
	if !strings.HasPrefix(u, "otpauth://totp/Shequ:wang.wei?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Shequ&") {
		t.Errorf("URI = %s", u)
	}
	p, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	q := p.Query()
	if q.Get("algorithm") != "SHA1" || q.Get("digits") != "6" || q.Get("period") != "30" {
		t.Errorf("URI parameters %v", q)
	}
}

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		secret  bool // ParseSecret, else ParseCode
		want    string
		wantErr error
	}{
		{"code", "123456", false, "123456", nil},
		{"code with spaces", " 123 456 ", false, "123456", nil},
		{"short code", "12345", false, "", ErrBadCode},
		{"long code", "1234567", false, "", ErrBadCode},
		{"letter in code", "12345a", false, "", ErrBadCode},
		{"full-width digits", "１２３４５６", false, "", ErrBadCode},
		{"huge code", strings.Repeat("1", MaxInput+1), false, "", ErrBadCode},
		{"rfc secret", "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ", true, string(rfcSecret), nil},
		{"grouped lower-case secret", "gezd gnbv gy3t qojq gezd gnbv gy3t qojq", true, string(rfcSecret), nil},
		{"padded hyphenated secret", "GEZDGNBV-GY3TQOJQ-GEZDGNBV-GY3TQOJQ====", true, string(rfcSecret), nil},
		{"not base32", "GEZDGNBVGY3TQOJ1GEZDGNBVGY3TQOJQ", true, "", ErrBadSecret},
		{"too short", "MZXW6", true, "", ErrBadSecret},
		{"too long", strings.Repeat("A", MaxInput+8), true, "", ErrBadSecret},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var (
				got string
				err error
			)
			if tt.secret {
				var b []byte
				b, err = ParseSecret(tt.in)
				got = string(b)
			} else {
				got, err = ParseCode(tt.in)
			}
			if !errors.Is(err, tt.wantErr) || got != tt.want {
				t.Errorf("= %q, %v; want %q, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// seeds adds the files of testdata/dir to the fuzz corpus.
func seeds(f *testing.F, dir string) {
	paths, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil || len(paths) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(string(b))
	}
}

func FuzzParseCode(f *testing.F) {
	seeds(f, "codes")
	f.Fuzz(func(t *testing.T, s string) {
		c, err := ParseCode(s)
		if err != nil {
			return
		}
		if len(c) != Digits || strings.Trim(c, "0123456789") != "" {
			t.Fatalf("ParseCode(%q) accepted %q", s, c)
		}
		if again, err := ParseCode(c); err != nil || again != c {
			t.Fatalf("ParseCode(%q) = %q, %v; not stable", c, again, err)
		}
	})
}

func FuzzParseSecret(f *testing.F) {
	seeds(f, "secrets")
	f.Fuzz(func(t *testing.T, s string) {
		b, err := ParseSecret(s)
		if err != nil {
			return
		}
		if len(b) < MinSecret || len(b) > MaxSecret {
			t.Fatalf("ParseSecret(%q) accepted %d bytes", s, len(b))
		}
		for _, enc := range []string{EncodeSecret(b), GroupSecret(b)} {
			if again, err := ParseSecret(enc); err != nil || string(again) != string(b) {
				t.Fatalf("ParseSecret(%q) = %x, %v; want %x", enc, again, err, b)
			}
		}
	})
}
