package store

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAPITokenStore(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	totpAccount(t, s, t0)
	audit := func(action string) AuditRecord {
		return AuditRecord{At: t0, Actor: "account:a1", Action: action, Object: "account:a1", After: `{"token_id":"x"}`}
	}
	tok := func(id, hash string, created time.Time) APITokenRecord {
		return APITokenRecord{ID: id, AccountID: "a1", Name: "12345 对接脚本", Hash: hash, CreatedAt: created, ExpiresAt: created.Add(90 * 24 * time.Hour)}
	}

	if _, err := s.APITokenByHash(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("APITokenByHash before any token: %v, want ErrNotFound", err)
	}
	if err := s.CreateAPIToken(ctx, tok("t1", "h1", t0), audit("api_token.create")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIToken(ctx, tok("t2", "h2", t0.Add(time.Hour)), audit("api_token.create")); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateAPIToken(ctx, tok("t3", "h1", t0), audit("api_token.create")); err == nil {
		t.Error("a second token with the same hash was stored")
	}
	if err := s.CreateAPIToken(ctx, APITokenRecord{ID: "t4", AccountID: "nobody", Name: "n", Hash: "h4", CreatedAt: t0, ExpiresAt: t0},
		audit("api_token.create")); err == nil {
		t.Error("a token of an unknown account was stored")
	}
	log, err := s.AuditLog(ctx, "account:a1", 10)
	if err != nil {
		t.Fatal(err)
	}
	var creates int
	for _, e := range log {
		if e.Action == "api_token.create" {
			creates++
		}
	}
	if creates != 2 {
		t.Errorf("audit has %d api_token.create entries, want 2 (refused creations leave none)", creates)
	}

	r, err := s.APITokenByHash(ctx, "h1")
	if want := tok("t1", "h1", t0); err != nil || r != want {
		t.Fatalf("APITokenByHash = %+v, %v; want %+v", r, err, want)
	}
	if r, err := s.APIToken(ctx, "t2"); err != nil || r.Hash != "h2" {
		t.Errorf("APIToken(t2) = %+v, %v", r, err)
	}
	list, err := s.APITokens(ctx, "a1")
	if err != nil || len(list) != 2 || list[0].ID != "t2" || list[1].ID != "t1" {
		t.Errorf("APITokens = %+v, %v; want t2 then t1", list, err)
	}

	touches := []struct {
		name  string
		at    time.Time
		wrote bool
	}{
		{"first use", t0.Add(time.Minute), true},
		{"30 s later", t0.Add(90 * time.Second), false},
		{"a minute later", t0.Add(2 * time.Minute), true},
		{"59 s later", t0.Add(2*time.Minute + 59*time.Second), false},
	}
	for _, tt := range touches {
		wrote, err := s.TouchAPIToken(ctx, "t1", tt.at, time.Minute)
		if err != nil || wrote != tt.wrote {
			t.Errorf("%s: TouchAPIToken = %v, %v; want %v", tt.name, wrote, err, tt.wrote)
		}
	}
	if r, err := s.APIToken(ctx, "t1"); err != nil || !r.LastUsed.Equal(t0.Add(2*time.Minute)) {
		t.Errorf("last used = %v, %v; want %v", r.LastUsed, err, t0.Add(2*time.Minute))
	}

	revokes := []struct {
		name         string
		account, id  string
		wantNotFound bool
	}{
		{"another account's token", "a2", "t1", true},
		{"unknown token", "a1", "nope", true},
		{"own token", "a1", "t1", false},
		{"revoked already", "a1", "t1", true},
	}
	for _, tt := range revokes {
		err := s.RevokeAPIToken(ctx, tt.account, tt.id, t0.Add(time.Hour), audit("api_token.revoke"))
		if got := errors.Is(err, ErrNotFound); got != tt.wantNotFound || (err != nil && !got) {
			t.Errorf("%s: RevokeAPIToken = %v, want not found %v", tt.name, err, tt.wantNotFound)
		}
	}
	if r, err := s.APIToken(ctx, "t1"); err != nil || !r.RevokedAt.Equal(t0.Add(time.Hour)) {
		t.Errorf("revoked at = %v, %v", r.RevokedAt, err)
	}
	if r, err := s.APIToken(ctx, "t2"); err != nil || !r.RevokedAt.IsZero() {
		t.Errorf("t2 revoked too: %+v, %v", r, err)
	}
	log, err = s.AuditLog(ctx, "account:a1", 10)
	if err != nil || log[0].Action != "api_token.revoke" || log[1].Action != "api_token.create" {
		t.Errorf("audit log = %+v, %v; want one revoke on top (refused revokes leave none)", log, err)
	}
}

// TestAPITokenLookupIndexed: checking a token is one lookup in the hash
// column's index, not a scan of the table.
func TestAPITokenLookupIndexed(t *testing.T) {
	s, _ := openTemp(t)
	plan := strings.Split(queryPlan(t, s, `SELECT `+apiTokenCols+` FROM api_tokens WHERE hash = ?`, "h"), "; ")
	if len(plan) != 1 || !strings.Contains(plan[0], "USING INDEX") || !strings.Contains(plan[0], "hash=?") {
		t.Errorf("query plan %q, want one search using the hash index", plan)
	}
}

// TestAPITokenMigration: a database at schema 10 with accounts gets the
// api_tokens table from migration 11, and the accounts keep working.
func TestAPITokenMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	totpAccount(t, s, t0)
	// Back to schema 10: what migrations 11 and later add goes, their
	// records too.
	if _, err := s.db.ExecContext(ctx, `DROP TABLE api_tokens; DROP INDEX cases_closed_phone; DROP INDEX case_complainants_phone;
		DROP TABLE update_reports; DROP TABLE kiosk_updates; DROP TABLE rollouts; DROP TABLE releases;
		DROP TABLE IF EXISTS commands; DROP TABLE IF EXISTS kiosk_screenshots;
		DELETE FROM schema_migrations WHERE version >= 11`); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != 10 {
		t.Fatalf("schema version after going back = %d, %v; want 10", v, err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Error(err)
		}
	})
	if v, err := s.SchemaVersion(ctx); err != nil || v < 11 {
		t.Fatalf("schema version %d, %v; want at least 11", v, err)
	}
	if list, err := s.APITokens(ctx, "a1"); err != nil || len(list) != 0 {
		t.Errorf("tokens of an old account = %+v, %v; want none", list, err)
	}
	if _, err := s.Account(ctx, "a1"); err != nil {
		t.Errorf("account after migrating: %v", err)
	}
	r := APITokenRecord{ID: "t1", AccountID: "a1", Name: "n", Hash: "h1", CreatedAt: t0, ExpiresAt: t0.Add(time.Hour)}
	if err := s.CreateAPIToken(ctx, r, AuditRecord{At: t0, Actor: "account:a1", Action: "api_token.create", Object: "account:a1"}); err != nil {
		t.Fatalf("create after migrating: %v", err)
	}
	// Deleting the account deletes its tokens (ON DELETE CASCADE).
	if _, err := s.db.ExecContext(ctx, `DELETE FROM accounts WHERE id = 'a1'`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.APITokenByHash(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("token after deleting its account: %v, want ErrNotFound", err)
	}
}
