package media

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/internal/audittest"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
)

const adminToken = "test-admin-token-0123456789"

// TestUploadAudit: an upload through the API is in the audit log with the
// admin token as actor and the file's name, kind, hash and size; refused
// uploads write nothing.
func TestUploadAudit(t *testing.T) {
	dir := t.TempDir()
	st := openStore(t, dir)
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	lib, err := New(Config{Dir: filepath.Join(dir, "media"), Store: st, MaxUpload: 1 << 20, Audit: audittest.Func(t, st, tree)}, log)
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Config{Store: st, Tree: tree, AdminToken: adminToken}, log)
	if err != nil {
		t.Fatal(err)
	}
	lib.Register(a)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	png, err := os.ReadFile(genPNG(t))
	if err != nil {
		t.Fatal(err)
	}
	post := func(body []byte, auth string) int {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+"/api/v1/media", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Filename", "宣传图.png")
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	entries := func() []store.AuditRecord {
		t.Helper()
		rs, err := st.AuditLog(context.Background(), "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}

	for _, tc := range []struct {
		name string
		body []byte
		auth string
		code int
	}{
		{"no token", png, "", http.StatusUnauthorized},
		{"wrong token", png, "wrong-token-0123456789", http.StatusUnauthorized},
		{"not media", []byte("this is a text file pretending to be an image\n"), adminToken, http.StatusUnsupportedMediaType},
		{"too large", bytes.Repeat([]byte{0}, 1<<20+1), adminToken, http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code := post(tc.body, tc.auth); code != tc.code {
				t.Fatalf("POST /api/v1/media: %d, want %d", code, tc.code)
			}
			if e := entries(); len(e) != 0 {
				t.Errorf("refused upload audited: %+v", e)
			}
		})
	}

	if code := post(png, adminToken); code != http.StatusAccepted {
		t.Fatalf("upload: %d", code)
	}
	ms, err := st.MediaList(context.Background())
	if err != nil || len(ms) != 1 {
		t.Fatalf("media %+v, %v", ms, err)
	}
	m := ms[0]
	e := entries()
	if len(e) != 1 || e[0].Action != "media.upload" || e[0].Actor != api.AdminActor || e[0].Object != "media:"+m.ID || e[0].Before != "" {
		t.Fatalf("audit log %+v, want media.upload of media:%s by %s", e, m.ID, api.AdminActor)
	}
	var got UploadAudit
	if err := json.Unmarshal([]byte(e[0].After), &got); err != nil {
		t.Fatal(err)
	}
	if want := (UploadAudit{Filename: "宣传图.png", Kind: m.Kind, Format: m.Format, SHA256: m.OrigSHA256, Size: int64(len(png))}); got != want {
		t.Errorf("after %+v, want %+v", got, want)
	}
	if strings.Contains(e[0].After+e[0].Actor, adminToken) {
		t.Error("the audit entry holds the admin token")
	}
}
