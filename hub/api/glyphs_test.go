package api

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/protocol"
	"github.com/shequ/shequ/protocol/glyphs"
)

// TestNoticeGlyphs checks that a notice the kiosk fonts cannot draw is
// refused with 400 naming the characters, and nothing is stored.
func TestNoticeGlyphs(t *testing.T) {
	tests := []struct {
		name, title, body string
		want              int
		errs              []string // substrings of the error
	}{
		{"gb2312 and punctuation", "关于违法搭建的通知", "请于11月30日前自行拆除，逾期依法处理。", http.StatusCreated, nil},
		{"extra name characters", "致王堃、李喆同志", "感谢参与。", http.StatusCreated, nil},
		{"rare name character in the title", "致张燚同志", "正文", http.StatusBadRequest,
			[]string{`title: the kiosk font cannot draw "燚"`}},
		{"emoji in the body", "标题", "欢迎参加😀😀", http.StatusBadRequest,
			[]string{`body: the kiosk font cannot draw "😀"`}},
		{"both fields, each character once", "燚䶮燚", "e\u0301 😀", http.StatusBadRequest,
			[]string{`title: the kiosk font cannot draw "燚", "䶮"`, `body: the kiosk font cannot draw U+0301, "😀"`}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			body := `{"title":` + quote(tc.title) + `,"body":` + quote(tc.body) +
				`,"category":"event","priority":"normal","targets":[{"level":"community","id":"sangcheng"}]}`
			code, b := f.do(t, "POST", "/api/v1/notices", body)
			if code != tc.want {
				t.Fatalf("create: %d %s, want %d", code, b, tc.want)
			}
			msg := decode[struct{ Error string }](t, b).Error
			for _, e := range tc.errs {
				if !strings.Contains(msg, e) {
					t.Errorf("error %q does not contain %q", msg, e)
				}
			}
			stored, err := f.store.Notices(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			if n := len(stored); tc.want == http.StatusCreated && n != 1 || tc.want != http.StatusCreated && n != 0 {
				t.Errorf("%d notices stored after a %d reply", n, code)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if tc.want != http.StatusCreated && len(f.changed) != 0 {
				t.Errorf("NoticeChanged called for a refused notice: %v", f.changed)
			}
		})
	}
}

// TestCreateNoticeGlyphError checks that CreateNotice's error carries the
// missing characters for the console: ErrBadRequest and a *glyphs.Error.
func TestCreateNoticeGlyphError(t *testing.T) {
	f := newFixture(t)
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Store: f.store, Tree: tree, AdminToken: testToken}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	_, err = a.CreateNotice(context.Background(), NoticeRequest{Title: "致张燚同志", Body: "正文", Category: "event",
		Priority: "normal", Targets: []protocol.Target{{Level: "community", ID: "sangcheng"}}})
	var ge *glyphs.Error
	if !errors.Is(err, ErrBadRequest) || !errors.As(err, &ge) {
		t.Fatalf("CreateNotice = %v, want ErrBadRequest and a *glyphs.Error", err)
	}
	if ge.Field != "title" || string(ge.Missing) != "燚" {
		t.Errorf("glyphs error %+v, want title missing 燚", ge)
	}
}

// quote is s as a JSON string.
func quote(s string) string {
	b, err := json.Marshal(s)
	if err != nil {
		panic(err)
	}
	return string(b)
}
