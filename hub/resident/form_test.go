package resident

import (
	"bytes"
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/protocol"
)

// part is one multipart part with boundary "B".
func part(name, value, filename string) string {
	cd := `form-data; name="` + name + `"`
	if filename != "" {
		cd += `; filename="` + filename + `"`
	}
	return "--B\r\nContent-Disposition: " + cd + "\r\n\r\n" + value + "\r\n"
}

const end = "--B--\r\n"

// repeatReader yields n bytes of b.
type repeatReader struct {
	b byte
	n int64
}

func (r *repeatReader) Read(p []byte) (int, error) {
	if r.n <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > r.n {
		p = p[:r.n]
	}
	for i := range p {
		p[i] = r.b
	}
	r.n -= int64(len(p))
	return len(p), nil
}

// photoPart is a reader of a photo part with n bytes of data.
func photoPart(name string, n int64) io.Reader {
	return io.MultiReader(strings.NewReader("--B\r\nContent-Disposition: form-data; name=\"photo\"; filename=\""+name+"\"\r\n\r\n"),
		&repeatReader{'x', n}, strings.NewReader("\r\n"))
}

func TestDecodeForm(t *testing.T) {
	tests := []struct {
		name    string
		body    func() io.Reader
		err     error
		values  map[string]string
		photos  []string // names; "!" suffix: too large
		tooMany bool
	}{
		{"fields", func() io.Reader {
			return strings.NewReader(part("c", "sangcheng", "") + part("description", "楼道\r\n堆物", "") + part("ignored", "x", "") + end)
		}, nil, map[string]string{"c": "sangcheng", "description": "楼道\r\n堆物"}, nil, false},
		{"empty file inputs skipped", func() io.Reader {
			return strings.NewReader(part("photo", "", "") + part("photo", "JPEG", `C:\Users\me\IMG 1.jpg`) + end)
		}, nil, map[string]string{}, []string{"IMG 1.jpg"}, false},
		{"four photos", func() io.Reader {
			return strings.NewReader(part("photo", "1", "a") + part("photo", "2", "b") + part("photo", "3", "c") + part("photo", "4", "d") + part("kind", "help", "") + end)
		}, nil, map[string]string{"kind": "help"}, []string{"a", "b", "c"}, true},
		{"photo too large", func() io.Reader {
			return io.MultiReader(photoPart("big.jpg", MaxPhotoBytes+1), strings.NewReader(part("kind", "help", "")+end))
		}, nil, map[string]string{"kind": "help"}, []string{"big.jpg!"}, false},
		{"photo at the limit", func() io.Reader {
			return io.MultiReader(photoPart("ok.jpg", MaxPhotoBytes), strings.NewReader(end))
		}, nil, map[string]string{}, []string{"ok.jpg"}, false},
		{"body too large", func() io.Reader {
			return io.MultiReader(photoPart("a", MaxPhotoBytes), photoPart("b", MaxPhotoBytes), photoPart("c", MaxPhotoBytes),
				photoPart("d", 1<<20), strings.NewReader(end))
		}, errTooLarge, nil, nil, false},
		{"repeated field", func() io.Reader {
			return strings.NewReader(part("kind", "help", "") + part("kind", "complaint", "") + end)
		},
			errBadForm, nil, nil, false},
		{"field too long", func() io.Reader {
			return strings.NewReader(part("description", strings.Repeat("x", maxField+1), "") + end)
		},
			errBadForm, nil, nil, false},
		{"field not UTF-8", func() io.Reader { return strings.NewReader(part("description", "\xff\xfe", "") + end) },
			errBadForm, nil, nil, false},
		{"too many parts", func() io.Reader { return strings.NewReader(strings.Repeat(part("x", "1", ""), maxParts+1) + end) },
			errBadForm, nil, nil, false},
		{"truncated", func() io.Reader { return strings.NewReader(part("c", "sangcheng", "")[:20]) }, errBadForm, nil, nil, false},
		{"no parts", func() io.Reader { return strings.NewReader("c=sangcheng&k=x") }, nil, map[string]string{}, nil, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s, err := decodeForm(tc.body(), "B")
			if tc.err != nil {
				if !errors.Is(err, tc.err) {
					t.Fatalf("error %v, want %v", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(s.Values) != len(tc.values) {
				t.Errorf("values %q, want %q", s.Values, tc.values)
			}
			for k, v := range tc.values {
				if s.Values[k] != v {
					t.Errorf("%s = %q, want %q", k, s.Values[k], v)
				}
			}
			var names []string
			for _, p := range s.Photos {
				n := p.Name
				if p.TooLarge {
					n += "!"
					if p.Data != nil {
						t.Errorf("a too large photo kept its data")
					}
				}
				names = append(names, n)
			}
			if strings.Join(names, ",") != strings.Join(tc.photos, ",") || s.TooManyPhotos != tc.tooMany {
				t.Errorf("photos %q (too many %v), want %q (%v)", names, s.TooManyPhotos, tc.photos, tc.tooMany)
			}
		})
	}
}

func TestShortName(t *testing.T) {
	for in, want := range map[string]string{
		"IMG_1.jpg":             "IMG_1.jpg",
		"../../etc/passwd":      "passwd",
		`C:\photos\a.png`:       "a.png",
		"":                      "",
		"/":                     "",
		"bad\xffname.jpg":       "badname.jpg",
		strings.Repeat("照", 50): strings.Repeat("照", maxFileName-1) + "…",
	} {
		if got := shortName(in); got != want {
			t.Errorf("shortName(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzDecodeForm feeds the decoder arbitrary bodies (seeded from
// testdata/*.form, boundary "B"): it must not panic, and what it returns
// must keep its limits.
func FuzzDecodeForm(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "*.form"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		if len(body) > 1<<20 {
			return
		}
		s, err := decodeForm(bytes.NewReader(body), "B")
		if err != nil {
			if !errors.Is(err, errBadForm) && !errors.Is(err, errTooLarge) {
				t.Fatalf("error %v is neither errBadForm nor errTooLarge", err)
			}
			return
		}
		if len(s.Photos) > MaxPhotos {
			t.Fatalf("%d photos", len(s.Photos))
		}
		for _, p := range s.Photos {
			if len(p.Data) == 0 && !p.TooLarge || len(p.Data) > MaxPhotoBytes || utf8.RuneCountInString(p.Name) > maxFileName {
				t.Fatalf("photo %q with %d bytes", p.Name, len(p.Data))
			}
		}
		for k, v := range s.Values {
			if !contains(textFields, k) || len(v) > maxField || !utf8.ValidString(v) {
				t.Fatalf("field %q with %d bytes", k, len(v))
			}
		}
		// Whatever decodes can be validated without panicking.
		validate(s.Values, Zh)
	})
}

// TestMessages checks that every message key the templates and the code
// use exists in both languages, and that every state, kind, category and
// rating has its words.
func TestMessages(t *testing.T) {
	for k, m := range messages {
		if m[0] == "" || m[1] == "" {
			t.Errorf("message %q lacks a language", k)
		}
	}
	var used []string
	tmplKey := regexp.MustCompile(`t \$\.Lang "([^"]+)"|tf \$\.Lang "([^"]+)"`)
	err := fs.WalkDir(templateFS, "templates", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := templateFS.ReadFile(p)
		for _, m := range tmplKey.FindAllStringSubmatch(string(b), -1) {
			used = append(used, m[1]+m[2])
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	goKey := regexp.MustCompile(`"((?:err|form|invalid|ticket|plain|event)\.[a-z_.]+)"`)
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range sources {
		if strings.HasSuffix(p, "_test.go") || p == "messages.go" {
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range goKey.FindAllStringSubmatch(string(b), -1) {
			used = append(used, m[1])
		}
	}
	if len(used) < 40 {
		t.Fatalf("found only %d keys in use: the scan is broken", len(used))
	}
	for _, s := range cases.States {
		used = append(used, "plain."+string(s))
	}
	for _, k := range protocol.FeedbackKinds {
		used = append(used, "kind."+string(k))
	}
	for _, c := range protocol.FeedbackCategories {
		used = append(used, "category."+string(c))
	}
	for _, r := range cases.Ratings {
		used = append(used, "rating."+string(r))
	}
	for _, a := range publicSteps {
		used = append(used, a)
	}
	for _, k := range used {
		if _, ok := messages[k]; !ok {
			t.Errorf("message %q is used but not in the table", k)
		}
	}
}
