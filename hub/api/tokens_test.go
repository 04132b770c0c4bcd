package api

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
)

// syncBuffer is a log destination safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// tokenFixture is the API with personal tokens checked by a real
// hub/accounts service on the same SQLite file, as hub/hub.go wires it.
type tokenFixture struct {
	srv  *httptest.Server
	acc  *accounts.Service
	boss accounts.Account
	logs *syncBuffer
	mu   sync.Mutex
	now  time.Time
}

func (f *tokenFixture) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *tokenFixture) add(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

func newTokenFixture(t *testing.T) *tokenFixture {
	t.Helper()
	ctx := context.Background()
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	f := &tokenFixture{logs: &syncBuffer{}, now: time.Date(2026, 7, 10, 4, 0, 0, 0, time.UTC)}
	log := slog.New(slog.NewTextHandler(f.logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	f.acc, err = accounts.New(accounts.Config{Store: st, Tree: tree, Secret: []byte(strings.Repeat("s", 32)),
		Params: accounts.Params{Memory: 64, Time: 1, Threads: 1}, Now: f.Now, Log: log})
	if err != nil {
		t.Fatal(err)
	}
	a, err := New(Config{Store: st, Tree: tree, AdminToken: testToken, Tokens: f.acc.APITokenChecker(ErrTokenRefused), Now: f.Now}, log)
	if err != nil {
		t.Fatal(err)
	}
	f.acc.RegisterAdmin(a)
	f.srv = httptest.NewServer(a)
	t.Cleanup(f.srv.Close)
	f.boss, err = f.acc.CreateAccount(ctx, "cli", accounts.NewAccount{Username: "boss", Role: accounts.RoleBureauAdmin,
		Node: "shanghai", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (f *tokenFixture) get(t *testing.T, path, auth string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, f.srv.URL+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := f.srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(b)
}

// TestPersonalTokens: a bureau admin's personal token works on the API
// beside the admin token; a bad, expired or revoked one is refused with
// the same 401 as a wrong admin token.
func TestPersonalTokens(t *testing.T) {
	f := newTokenFixture(t)
	ctx := context.Background()
	tok, at, err := f.acc.CreateAPIToken(ctx, f.boss, "12345 对接脚本", 30)
	if err != nil {
		t.Fatal(err)
	}
	revoked, rt, err := f.acc.CreateAPIToken(ctx, f.boss, "old", 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.acc.RevokeAPIToken(ctx, f.boss, rt.ID); err != nil {
		t.Fatal(err)
	}
	_, wrongAdmin := f.get(t, "/api/v1/notices", "Bearer wrong-admin-token-0123")
	if !strings.Contains(wrongAdmin, `"error"`) {
		t.Fatalf("a wrong admin token's reply %q is not a JSON error", wrongAdmin)
	}

	tests := []struct {
		name, auth string
		want       int
	}{
		{"personal token", "Bearer " + tok, http.StatusOK},
		{"admin token", "Bearer " + testToken, http.StatusOK},
		{"revoked token", "Bearer " + revoked, http.StatusUnauthorized},
		{"unknown token", "Bearer shq_" + strings.Repeat("x", 43), http.StatusUnauthorized},
		{"token cut short", "Bearer " + tok[:30], http.StatusUnauthorized},
		{"token without prefix", "Bearer " + tok[4:], http.StatusUnauthorized},
		{"token without Bearer", tok, http.StatusUnauthorized},
		{"very long token", "Bearer shq_" + strings.Repeat("x", 4000), http.StatusUnauthorized},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, body := f.get(t, "/api/v1/notices", tc.auth)
			if code != tc.want {
				t.Fatalf("status %d %s, want %d", code, body, tc.want)
			}
			if code == http.StatusUnauthorized && body != wrongAdmin {
				t.Errorf("401 body %q, want the admin token's %q", body, wrongAdmin)
			}
			if code == http.StatusOK && !strings.Contains(body, `"notices"`) {
				t.Errorf("body %q", body)
			}
		})
	}
	// Other staff endpoints take it too (here hub/accounts' own).
	if code, body := f.get(t, "/api/v1/accounts", "Bearer "+tok); code != http.StatusOK || !strings.Contains(body, `"boss"`) {
		t.Errorf("GET /api/v1/accounts with the personal token: %d %s", code, body)
	}

	logs := f.logs.String()
	if !strings.Contains(logs, "API request with a personal token") || !strings.Contains(logs, "method=GET path=/api/v1/notices actor=account:"+f.boss.ID) {
		t.Errorf("no log line naming the actor in:\n%s", logs)
	}
	for _, secret := range []string{tok, tok[4:], revoked[4:]} {
		if strings.Contains(logs, secret) {
			t.Errorf("the logs hold a token:\n%s", logs)
		}
	}
	if strings.Count(logs, "actor=") != 2 {
		t.Errorf("want one actor line per personal-token request (2), logs:\n%s", logs)
	}

	f.add(30 * 24 * time.Hour)
	if code, body := f.get(t, "/api/v1/notices", "Bearer "+tok); code != http.StatusUnauthorized || body != wrongAdmin {
		t.Errorf("expired token (%s): %d %s, want 401 %s", at.ExpiresAt, code, body, wrongAdmin)
	}
	if code, _ := f.get(t, "/api/v1/notices", "Bearer "+testToken); code != http.StatusOK {
		t.Errorf("admin token after the personal one expired: %d", code)
	}
}

// TestPersonalTokenRoleChange: demoting or locking the account stops its
// token on the next request.
func TestPersonalTokenRoleChange(t *testing.T) {
	ctx := context.Background()
	tests := []struct {
		name   string
		change func(f *tokenFixture) error
	}{
		{"role changed", func(f *tokenFixture) error {
			_, err := f.acc.SetRole(ctx, "cli", f.boss.ID, accounts.RoleDistrictAdmin, "huangpu")
			return err
		}},
		{"locked", func(f *tokenFixture) error {
			_, err := f.acc.Lock(ctx, "cli", f.boss.ID, f.Now().Add(time.Hour))
			return err
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newTokenFixture(t)
			tok, _, err := f.acc.CreateAPIToken(ctx, f.boss, "script", 90)
			if err != nil {
				t.Fatal(err)
			}
			if code, body := f.get(t, "/api/v1/kiosks", "Bearer "+tok); code != http.StatusOK {
				t.Fatalf("before: %d %s", code, body)
			}
			if err := tc.change(f); err != nil {
				t.Fatal(err)
			}
			if code, body := f.get(t, "/api/v1/kiosks", "Bearer "+tok); code != http.StatusUnauthorized {
				t.Errorf("after: %d %s, want 401", code, body)
			}
		})
	}
}

// TestTokensNotSet: without Config.Tokens only the admin token works, as
// before personal tokens.
func TestTokensNotSet(t *testing.T) {
	f := newTokenFixture(t)
	tok, _, err := f.acc.CreateAPIToken(context.Background(), f.boss, "script", 90)
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "other.db"))
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
	a, err := New(Config{Store: st, Tree: tree, AdminToken: testToken}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	for _, tc := range []struct {
		name, token string
		want        int
	}{{"personal", tok, http.StatusUnauthorized}, {"admin", testToken, http.StatusOK}} {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/notices", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tc.token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s token: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
}

// TestTokenCheckFails: when the accounts database cannot be read, a
// personal token gets 503 and an error in the log, not a 401 that would
// tell a script its token is bad; the admin token still works.
func TestTokenCheckFails(t *testing.T) {
	ctx := context.Background()
	f := newTokenFixture(t)
	accStore, err := store.Open(ctx, filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	acc, err := accounts.New(accounts.Config{Store: accStore, Tree: tree, Secret: []byte(strings.Repeat("s", 32)),
		Params: accounts.Params{Memory: 64, Time: 1, Threads: 1}, Now: f.Now})
	if err != nil {
		t.Fatal(err)
	}
	boss, err := acc.CreateAccount(ctx, "cli", accounts.NewAccount{Username: "boss", Role: accounts.RoleBureauAdmin,
		Node: "shanghai", Password: "correct horse battery"})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, err := acc.CreateAPIToken(ctx, boss, "script", 90)
	if err != nil {
		t.Fatal(err)
	}
	apiStore, err := store.Open(ctx, filepath.Join(t.TempDir(), "api.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := apiStore.Close(); err != nil {
			t.Error(err)
		}
	})
	logs := &syncBuffer{}
	a, err := New(Config{Store: apiStore, Tree: tree, AdminToken: testToken, Tokens: acc.APITokenChecker(ErrTokenRefused)},
		slog.New(slog.NewTextHandler(logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	status := func(token string) int {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/api/v1/notices", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := status(tok); got != http.StatusOK {
		t.Fatalf("the token before the failure: %d", got)
	}
	if got := status(accounts.APITokenPrefix + strings.Repeat("A", 43)); got != http.StatusUnauthorized {
		t.Fatalf("an unknown token: %d, want 401", got)
	}
	if err := accStore.Close(); err != nil {
		t.Fatal(err)
	}
	if got := status(tok); got != http.StatusServiceUnavailable {
		t.Errorf("the token with its database closed: %d, want 503", got)
	}
	if !strings.Contains(logs.String(), "API authentication") {
		t.Errorf("the failure is not logged:\n%s", logs.String())
	}
	if got := status(testToken); got != http.StatusOK {
		t.Errorf("the admin token meanwhile: %d, want 200", got)
	}
}

// TestAPIActorAudited: an account created through the API is audited as
// made by whoever authenticated the request: the personal token's account,
// or the admin token.
func TestAPIActorAudited(t *testing.T) {
	ctx := context.Background()
	f := newTokenFixture(t)
	tok, _, err := f.acc.CreateAPIToken(ctx, f.boss, "onboarding", 90)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ username, token, actor string }{
		{"officer-by-token", tok, "account:" + f.boss.ID},
		{"officer-by-admin", testToken, AdminActor},
	} {
		body := `{"username":"` + tc.username + `","display_name":"队员","role":"officer","node":"wuliqiao","password":"correct horse battery"}`
		req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/api/v1/accounts", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer "+tc.token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var a accounts.Account
		err = json.NewDecoder(resp.Body).Decode(&a)
		resp.Body.Close()
		if resp.StatusCode != http.StatusCreated || err != nil {
			t.Fatalf("POST /api/v1/accounts %s: %d %v", tc.username, resp.StatusCode, err)
		}
		h, err := f.acc.History(ctx, a.ID, 5)
		if err != nil {
			t.Fatal(err)
		}
		if len(h) == 0 || h[len(h)-1].Action != "account.create" || h[len(h)-1].Actor != tc.actor {
			t.Errorf("%s: history %+v, want account.create by %s", tc.username, h, tc.actor)
		}
	}
}
