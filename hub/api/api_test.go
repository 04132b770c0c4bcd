package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/internal/audittest"
	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

const testToken = "test-admin-token-0123456789"

type fixture struct {
	srv     *httptest.Server
	store   *store.SQLite
	now     time.Time
	mu      sync.Mutex
	changed []string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	f := &fixture{store: st, now: time.Date(2026, 7, 10, 4, 0, 0, 0, time.UTC)}
	a, err := New(Config{
		Store: st, Tree: tree, AdminToken: testToken,
		NoticeChanged: func(_ context.Context, n protocol.Notice) {
			f.mu.Lock()
			defer f.mu.Unlock()
			f.changed = append(f.changed, n.ID)
		},
		Audit: audittest.Func(t, st, tree),
		Now:   func() time.Time { return f.now },
	}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(a)
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fixture) do(t *testing.T, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+testToken)
	resp, err := f.srv.Client().Do(req)
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

func decode[T any](t *testing.T, b []byte) T {
	t.Helper()
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("decode %s: %v", b, err)
	}
	return v
}

func readFile(t *testing.T, name string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestNoticeLifecycle(t *testing.T) {
	f := newFixture(t)
	code, b := f.do(t, "POST", "/api/v1/notices", readFile(t, "notice-law-case.json"))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	created := decode[Notice](t, b)
	if created.ID == "" || created.Status != StatusActive || !created.ValidFrom.Equal(f.now) || !created.CreatedAt.Equal(f.now) {
		t.Errorf("created = %+v", created)
	}
	code, b = f.do(t, "POST", "/api/v1/notices", readFile(t, "notice-event.json"))
	if code != http.StatusCreated {
		t.Fatalf("create event: %d %s", code, b)
	}
	event := decode[Notice](t, b)

	code, b = f.do(t, "GET", "/api/v1/notices/"+created.ID, "")
	if code != http.StatusOK || decode[Notice](t, b).Title != created.Title {
		t.Errorf("get: %d %s", code, b)
	}
	for range 2 { // idempotent
		code, b = f.do(t, "POST", "/api/v1/notices/"+created.ID+"/withdraw", "")
		if w := decode[Notice](t, b); code != http.StatusOK || w.Status != StatusWithdrawn || !w.WithdrawnAt.Equal(f.now) {
			t.Errorf("withdraw: %d %s", code, b)
		}
	}
	f.now = time.Date(2027, 7, 20, 0, 0, 0, 0, time.UTC) // after the event ended
	tests := []struct {
		name  string
		query string
		want  map[string]string
	}{
		{"default hides withdrawn and expired", "", map[string]string{}},
		{"all", "?all=1", map[string]string{created.ID: StatusWithdrawn, event.ID: StatusExpired}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, b := f.do(t, "GET", "/api/v1/notices"+tc.query, "")
			if code != http.StatusOK {
				t.Fatalf("%d %s", code, b)
			}
			got := map[string]string{}
			for _, n := range decode[struct{ Notices []Notice }](t, b).Notices {
				got[n.ID] = n.Status
			}
			if len(got) != len(tc.want) {
				t.Errorf("got %v, want %v", got, tc.want)
			}
			for id, st := range tc.want {
				if got[id] != st {
					t.Errorf("notice %s: status %q, want %q", id, got[id], st)
				}
			}
		})
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if want := []string{created.ID, event.ID, created.ID, created.ID}; strings.Join(f.changed, ",") != strings.Join(want, ",") {
		t.Errorf("NoticeChanged calls = %v, want %v", f.changed, want)
	}
}

func TestErrors(t *testing.T) {
	f := newFixture(t)
	valid := `{"title":"标题","body":"正文","category":"event","priority":"normal","targets":[{"level":"community","id":"sangcheng"}]}`
	tests := []struct {
		name, method, path, body string
		code                     int
		msg                      string
	}{
		{"malformed", "POST", "/api/v1/notices", `{"title":`, 400, "notice request"},
		{"unknown field", "POST", "/api/v1/notices", strings.Replace(valid, `"body"`, `"colour":"red","body"`, 1), 400, "unknown field"},
		{"trailing data", "POST", "/api/v1/notices", valid + `{}`, 400, "trailing"},
		{"no title", "POST", "/api/v1/notices", strings.Replace(valid, `"标题"`, `""`, 1), 400, "title is required"},
		{"bad category", "POST", "/api/v1/notices", strings.Replace(valid, `"event"`, `"party"`, 1), 400, "category"},
		{"unknown target", "POST", "/api/v1/notices", strings.Replace(valid, "sangcheng", "nowhere", 1), 400, "unknown node"},
		{"wrong target level", "POST", "/api/v1/notices", strings.Replace(valid, `"community"`, `"district"`, 1), 400, "wrong level"},
		{"until before from", "POST", "/api/v1/notices", strings.Replace(valid, `"targets"`,
			`"valid_from":"2026-08-01T00:00:00Z","valid_until":"2026-07-01T00:00:00Z","targets"`, 1), 400, "not after"},
		{"body too large", "POST", "/api/v1/notices", `{"title":"` + strings.Repeat("x", MaxBodySize) + `"}`, 413, "larger than"},
		{"unknown notice", "GET", "/api/v1/notices/nope", "", 404, "no notice"},
		{"withdraw unknown", "POST", "/api/v1/notices/nope/withdraw", "", 404, "no notice"},
		{"unknown path", "GET", "/api/v1/nothing", "", 404, "Not Found"},
		{"wrong method", "DELETE", "/api/v1/notices", "", 405, "Method Not Allowed"},
		{"bad limit", "GET", "/api/v1/feedback?limit=0", "", 400, "limit"},
		{"bad kiosk", "GET", "/api/v1/feedback?kiosk=K!", "", 400, "kiosk"},
		{"bad all", "GET", "/api/v1/notices?all=yes", "", 400, "all"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, b := f.do(t, tc.method, tc.path, tc.body)
			if code != tc.code {
				t.Errorf("status %d, want %d (%s)", code, tc.code, b)
			}
			if e := decode[jsonhttp.ErrorBody](t, b); !strings.Contains(e.Error, tc.msg) {
				t.Errorf("error %q, want it to mention %q", e.Error, tc.msg)
			}
		})
	}
	code, b := f.do(t, "GET", "/api/v1/notices?all=1", "")
	if code != 200 || len(decode[struct{ Notices []Notice }](t, b).Notices) != 0 {
		t.Errorf("rejected requests stored notices: %s", b)
	}
}

func TestFeedbackAndKiosks(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	for i, k := range []string{"k-sangcheng-01", "k-ruiyi-01", "k-sangcheng-01"} {
		fb := protocol.Feedback{Ticket: "T-000" + string(rune('1'+i)), Kiosk: k, Kind: protocol.KindHelp,
			Category: protocol.CatOther, Where: protocol.Where{Building: "3号"}, SubmittedAt: f.now}
		if _, err := f.store.InsertFeedback(ctx, protocol.NewID(), fb, f.now.Add(time.Duration(i)*time.Minute)); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		name, query string
		want        []string
	}{
		{"all newest first", "", []string{"T-0003", "T-0002", "T-0001"}},
		{"one kiosk", "?kiosk=k-sangcheng-01", []string{"T-0003", "T-0001"}},
		{"limit", "?limit=1", []string{"T-0003"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, b := f.do(t, "GET", "/api/v1/feedback"+tc.query, "")
			if code != 200 {
				t.Fatalf("%d %s", code, b)
			}
			var got []string
			for _, fb := range decode[struct{ Feedback []Feedback }](t, b).Feedback {
				got = append(got, fb.Ticket)
			}
			if strings.Join(got, ",") != strings.Join(tc.want, ",") {
				t.Errorf("tickets %v, want %v", got, tc.want)
			}
			if !bytes.Contains(b, []byte(`"where":{"building":"3号"}`)) || !bytes.Contains(b, []byte(`"received_at"`)) {
				t.Errorf("reply lacks where/received_at: %s", b)
			}
		})
	}

	if _, err := f.store.ApplyPresence(ctx, protocol.Presence{Kiosk: "k-sangcheng-01", State: protocol.Online, Epoch: 3}, f.now.Add(-time.Minute)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ApplyPresence(ctx, protocol.Presence{Kiosk: "k-ruiyi-01", State: protocol.Online, Epoch: 3}, f.now.Add(-time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.store.ApplyPresence(ctx, protocol.Presence{Kiosk: "k-stray", State: protocol.Online, Epoch: 1}, f.now); err != nil {
		t.Fatal(err)
	}
	code, b := f.do(t, "GET", "/api/v1/kiosks", "")
	if code != 200 {
		t.Fatalf("%d %s", code, b)
	}
	got := map[string]Kiosk{}
	for _, k := range decode[struct{ Kiosks []Kiosk }](t, b).Kiosks {
		got[k.ID] = k
	}
	want := map[string]struct {
		online, inTree bool
		community      string
	}{
		"k-sangcheng-01": {true, true, "sangcheng"},
		"k-sangcheng-02": {false, true, "sangcheng"},
		"k-ruiyi-01":     {false, true, "ruiyi"}, // online, but silent for longer than OfflineAfter
		"k-stray":        {true, false, ""},
	}
	if len(got) != len(want) {
		t.Errorf("kiosks %s", b)
	}
	for id, w := range want {
		k := got[id]
		if k.Online != w.online || k.InOrgTree != w.inTree || k.Community != w.community {
			t.Errorf("kiosk %s = %+v, want %+v", id, k, w)
		}
	}

	code, b = f.do(t, "GET", "/api/v1/org", "")
	if tree, err := orgtree.Parse(b); code != 200 || err != nil || len(tree.Kiosks()) != 3 {
		t.Errorf("org: %d %v %s", code, err, b)
	}
	if code, b = f.do(t, "GET", "/healthz", ""); code != 200 || decode[Health](t, b).Status != HealthOK {
		t.Errorf("healthz: %d %q", code, b)
	}
}

// TestHealthz: GET /healthz is Config.Health's report, 503 when it is
// failing, and open without a token.
func TestHealthz(t *testing.T) {
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		health   func(context.Context) Health
		wantCode int
		wantBody string
	}{
		{"no checks", nil, http.StatusOK, `{"status":"ok"}`},
		{"all pass", func(context.Context) Health {
			return Health{Status: HealthOK, Checks: map[string]string{"database": "ok", "loop": "ok"}, Version: "v1.2.3"}
		}, http.StatusOK, `{"status":"ok","checks":{"database":"ok","loop":"ok"},"version":"v1.2.3"}`},
		{"one fails", func(context.Context) Health {
			return Health{Status: HealthFailing, Checks: map[string]string{"database": "sql: database is closed", "loop": "ok"}, Version: "dev"}
		}, http.StatusServiceUnavailable, `{"status":"failing","checks":{"database":"sql: database is closed","loop":"ok"},"version":"dev"}`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			a, err := New(Config{Store: &store.SQLite{}, Tree: tree, AdminToken: testToken, Health: tc.health},
				slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			srv := httptest.NewServer(a)
			defer srv.Close()
			resp, err := srv.Client().Get(srv.URL + "/healthz")
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, err := io.ReadAll(resp.Body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.wantCode || strings.TrimSpace(string(b)) != tc.wantBody {
				t.Errorf("GET /healthz = %d %s, want %d %s", resp.StatusCode, b, tc.wantCode, tc.wantBody)
			}
			if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
				t.Errorf("Content-Type %q", ct)
			}
		})
	}
}

func FuzzDecodeNoticeRequest(f *testing.F) {
	for _, name := range []string{"notice-law-case.json", "notice-event.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`null`))
	f.Add([]byte(`{"targets":[{"level":"kiosk","id":"k"}],"valid_from":"2026-01-01T00:00:00Z"}`))
	now := time.Date(2026, 7, 1, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte) {
		req, err := DecodeNoticeRequest(data)
		if err != nil {
			return
		}
		n := req.Notice(protocol.NewID(), now)
		if n.ValidFrom.IsZero() {
			t.Fatal("valid_from left zero")
		}
		if n.Validate() != nil {
			return
		}
		b, err := json.Marshal(req)
		if err != nil {
			t.Fatalf("re-encode: %v", err)
		}
		again, err := DecodeNoticeRequest(b)
		if err != nil {
			t.Fatalf("decode re-encoded %s: %v", b, err)
		}
		if err := again.Notice(n.ID, now).Validate(); err != nil {
			t.Fatalf("re-decoded notice invalid: %v", err)
		}
	})
}

func TestAdminToken(t *testing.T) {
	f := newFixture(t)
	tests := []struct {
		name, method, path, auth string
		want                     int
	}{
		{"no token", "GET", "/api/v1/feedback", "", http.StatusUnauthorized},
		{"wrong token", "GET", "/api/v1/kiosks", "Bearer nope", http.StatusUnauthorized},
		{"token without Bearer", "GET", "/api/v1/kiosks", testToken, http.StatusUnauthorized},
		{"basic auth", "GET", "/api/v1/kiosks", "Basic " + testToken, http.StatusUnauthorized},
		{"write without token", "POST", "/api/v1/notices", "", http.StatusUnauthorized},
		{"unknown path without token", "GET", "/api/v1/secret", "", http.StatusUnauthorized},
		{"healthz is open", "GET", "/healthz", "", http.StatusOK},
		{"right token", "GET", "/api/v1/kiosks", "Bearer " + testToken, http.StatusOK},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, f.srv.URL+tc.path, strings.NewReader("{}"))
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.want {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
}
