package playlists

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/internal/audittest"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
)

const adminToken = "test-admin-token-0123456789"

// TestAudit: playlists created and withdrawn through the API are in the
// audit log with the admin token as actor and the playlist before and
// after; refused requests and a repeated withdrawal write nothing.
func TestAudit(t *testing.T) {
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	a, err := api.New(api.Config{Store: st, Tree: tree, AdminToken: adminToken}, log)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := New(Config{Store: st, Tree: tree, Audit: audittest.Func(t, st, tree)}, log)
	if err != nil {
		t.Fatal(err)
	}
	pl.Register(a)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	post := func(path, body, auth string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, b
	}
	entries := func() []store.AuditRecord {
		t.Helper()
		rs, err := st.AuditLog(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	code, b := post("/api/v1/notices", `{"title":"垃圾分类宣传","body":"请按时分类投放。","category":"publicity","priority":"normal",
		"targets":[{"level":"community","id":"sangcheng"}]}`, adminToken)
	if code != http.StatusCreated {
		t.Fatalf("notice: %d %s", code, b)
	}
	var n api.Notice
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	good := `{"name":"社区宣传","items":[{"kind":"notice","notice":"` + n.ID + `","duration_ms":10000}],
		"targets":[{"level":"community","id":"sangcheng"}]}`
	code, b = post("/api/v1/playlists", good, adminToken)
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	var p View
	if err := json.Unmarshal(b, &p); err != nil {
		t.Fatal(err)
	}
	if code, b := post("/api/v1/playlists/"+p.ID+"/withdraw", "", adminToken); code != http.StatusOK {
		t.Fatalf("withdraw: %d %s", code, b)
	}

	for _, tc := range []struct {
		name, path, body, auth string
		code                   int
	}{
		{"no token", "/api/v1/playlists", good, "", http.StatusUnauthorized},
		{"unknown notice", "/api/v1/playlists", strings.Replace(good, n.ID, "n-nowhere", 1), adminToken, http.StatusBadRequest},
		{"unknown target", "/api/v1/playlists", strings.Replace(good, `"sangcheng"`, `"nowhere"`, 1), adminToken, http.StatusBadRequest},
		{"withdraw without token", "/api/v1/playlists/" + p.ID + "/withdraw", "", "", http.StatusUnauthorized},
		{"withdraw unknown", "/api/v1/playlists/nope/withdraw", "", adminToken, http.StatusNotFound},
		{"withdrawn again", "/api/v1/playlists/" + p.ID + "/withdraw", "", adminToken, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, b := post(tc.path, tc.body, tc.auth); code != tc.code {
				t.Fatalf("POST %s: %d %s, want %d", tc.path, code, b, tc.code)
			}
			if e := entries(); len(e) != 2 {
				t.Errorf("%d audit entries, want 2", len(e))
			}
		})
	}

	e := entries() // newest first
	if len(e) != 2 {
		t.Fatalf("audit log %+v, want create and withdraw", e)
	}
	for i, w := range []struct{ action, before, after string }{
		{"playlist.withdraw", `"status":"active"`, `"status":"withdrawn"`},
		{"playlist.create", "", `"status":"active"`},
	} {
		if e[i].Action != w.action || e[i].Actor != api.AdminActor || e[i].Object != "playlist:"+p.ID {
			t.Errorf("entry %d = %s by %s on %s, want %s by %s on playlist:%s", i, e[i].Action, e[i].Actor, e[i].Object,
				w.action, api.AdminActor, p.ID)
		}
		if (w.before == "") != (e[i].Before == "") || !strings.Contains(e[i].Before, w.before) ||
			!strings.Contains(e[i].After, w.after) || !strings.Contains(e[i].After, "社区宣传") {
			t.Errorf("entry %d: before %s after %s", i, e[i].Before, e[i].After)
		}
		if strings.Contains(e[i].Before+e[i].After+e[i].Actor, adminToken) {
			t.Errorf("entry %d holds the admin token", i)
		}
	}
}
