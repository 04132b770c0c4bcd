package open311

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/shequ/shequ/hub/store"
)

// seeds adds every file of testdata/dir to the fuzz corpus.
func seeds(f *testing.F, dir string) {
	f.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", dir, "*"))
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata/%s: %v", dir, err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
}

func FuzzDecodePostForm(f *testing.F) {
	seeds(f, "forms")
	f.Fuzz(func(t *testing.T, body []byte) {
		p, err := decodePostForm(body)
		if err != nil {
			if !errors.Is(err, errBadInput) {
				t.Fatalf("error %v does not wrap errBadInput", err)
			}
			return
		}
		for name, v := range map[string]string{"api_key": p.APIKey, "service_code": p.ServiceCode, "address_id": p.AddressID,
			"phone": p.Phone, "description": p.Description} {
			if !utf8.ValidString(v) {
				t.Fatalf("%s is not UTF-8", name)
			}
		}
		if strings.ContainsRune(p.Phone, 0) || strings.ContainsRune(p.Description, 0) {
			t.Fatal("NUL accepted")
		}
		for code := range p.Attributes {
			if _, ok := attributeCode("attribute[" + code + "]"); !ok {
				t.Fatalf("bad attribute code %q accepted", code)
			}
		}
	})
}

func FuzzDecodeQuery(f *testing.F) {
	seeds(f, "queries")
	names := []string{"api_key", "jurisdiction_id", "service_request_id", "service_code", "start_date", "end_date", "status"}
	s := &Server{cfg: Config{Now: func() time.Time { return monday }}}
	f.Fuzz(func(t *testing.T, raw []byte) {
		q, err := decodeQuery(string(raw), names...)
		if err != nil {
			return
		}
		for _, n := range []string{"service_request_id", "service_code", "status"} {
			items, err := splitList(n, q[n])
			if err != nil {
				continue
			}
			if len(items) > maxListItems {
				t.Fatalf("%s: %d items", n, len(items))
			}
		}
		from, to, aerr := s.dateRange(q)
		if aerr == nil && (to.Before(from) || to.Sub(from) > MaxRange) {
			t.Fatalf("range %v–%v accepted", from, to)
		}
	})
}

func FuzzDecodeKeyRequest(f *testing.F) {
	seeds(f, "keyrequests")
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeKeyRequest(data)
		if err != nil {
			if !errors.Is(err, ErrInvalidKeyRequest) {
				t.Fatalf("error %v does not wrap ErrInvalidKeyRequest", err)
			}
			return
		}
		if len(data) > MaxKeyRequest || !utf8.ValidString(req.Name) {
			t.Fatalf("accepted %d bytes with name %q", len(data), req.Name)
		}
	})
}

// TestPublicStep checks the public wording of timeline steps: no staff
// notes except the answer, the rating in either note form.
func TestPublicStep(t *testing.T) {
	tests := []struct {
		name string
		ev   store.CaseEvent
		want string
	}{
		{"dispatch hides the note", store.CaseEvent{Action: "dispatch", Note: "承办人 officer-zhou；请尽快"}, "已派单至执法队员"},
		{"return hides the reason", store.CaseEvent{Action: "return", Note: "不归我管"}, "已退单，待重新派单"},
		{"answer shows the answer", store.CaseEvent{Action: "answer", Note: "已拆除"}, "已答复：已拆除"},
		{"rating in Chinese", store.CaseEvent{Action: "rate", Note: "评价：基本满意；还行"}, "已评价：基本满意"},
		{"rating by key", store.CaseEvent{Action: "rate", Note: "评价 not_satisfied"}, "已评价：不满意"},
		{"close from received", store.CaseEvent{Action: "close", From: "received", Note: "重复"}, "不予受理，已办结"},
		{"close", store.CaseEvent{Action: "close", From: "rated"}, "已办结"},
		{"unknown action", store.CaseEvent{Action: "future"}, "办理进展更新"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := publicStep(tt.ev); got != tt.want {
				t.Errorf("publicStep = %q, want %q", got, tt.want)
			}
		})
	}
}
