package accounts

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/store"
)

func TestCreateAPIToken(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	boss := f.create(t, "boss", RoleBureauAdmin, "shanghai")
	district := f.create(t, "district", RoleDistrictAdmin, "huangpu")

	tests := []struct {
		name    string
		actor   Account
		tokName string
		days    int
		wantErr error
		want    time.Duration // lifetime when made
	}{
		{"default lifetime", boss, "12345 对接脚本", 0, nil, 90 * 24 * time.Hour},
		{"30 days", boss, "monthly", 30, nil, 30 * 24 * time.Hour},
		{"365 days", boss, "  yearly  ", 365, nil, 365 * 24 * time.Hour},
		{"other lifetime", boss, "n", 7, ErrInvalid, 0},
		{"negative lifetime", boss, "n", -30, ErrInvalid, 0},
		{"no name", boss, "   ", 30, ErrInvalid, 0},
		{"long name", boss, strings.Repeat("名", MaxAPITokenName+1), 30, ErrInvalid, 0},
		{"control character", boss, "a\x07b", 30, ErrInvalid, 0},
		{"district admin", district, "n", 30, ErrForbidden, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok, at, err := f.svc.CreateAPIToken(ctx, tt.actor, tt.tokName, tt.days)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("CreateAPIToken = %v, want %v", err, tt.wantErr)
			}
			if err != nil {
				return
			}
			if !strings.HasPrefix(tok, "shq_") || len(tok) != 47 || !wellFormed(tok) {
				t.Errorf("token %q: want shq_ and 43 base64url characters", tok)
			}
			if at.Name != strings.TrimSpace(tt.tokName) || at.ExpiresAt.Sub(at.CreatedAt) != tt.want || !at.CreatedAt.Equal(f.clock.Now()) {
				t.Errorf("token = %+v", at)
			}
			r, err := f.store.APIToken(ctx, at.ID)
			if err != nil || r.Hash != hashToken(tok) || strings.Contains(r.Hash, tok[4:]) {
				t.Errorf("stored %+v, %v; want only the SHA-256", r, err)
			}
		})
	}
	list, err := f.svc.APITokens(ctx, boss)
	if err != nil || len(list) != 3 {
		t.Errorf("APITokens = %+v, %v; want the 3 made", list, err)
	}
	if list, err := f.svc.APITokens(ctx, district); err != nil || len(list) != 0 {
		t.Errorf("district admin's tokens = %+v, %v", list, err)
	}
}

func TestAuthenticateAPIToken(t *testing.T) {
	ctx := context.Background()
	type setup struct {
		f     fixture
		boss  Account
		token string
		id    string
	}
	tests := []struct {
		name string
		// change does something after the token was made and returns the
		// token to present.
		change func(t *testing.T, s setup) string
		ok     bool
	}{
		{"fresh", func(_ *testing.T, s setup) string { return s.token }, true},
		{"a day before expiry", func(_ *testing.T, s setup) string {
			s.f.clock.Add(29 * 24 * time.Hour)
			return s.token
		}, true},
		{"expired", func(_ *testing.T, s setup) string {
			s.f.clock.Add(30 * 24 * time.Hour)
			return s.token
		}, false},
		{"revoked", func(t *testing.T, s setup) string {
			if _, err := s.f.svc.RevokeAPIToken(ctx, s.boss, s.id); err != nil {
				t.Fatal(err)
			}
			return s.token
		}, false},
		{"account locked", func(t *testing.T, s setup) string {
			if _, err := s.f.svc.Lock(ctx, "cli", s.boss.ID, s.f.clock.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			return s.token
		}, false},
		{"lock run out", func(t *testing.T, s setup) string {
			if _, err := s.f.svc.Lock(ctx, "cli", s.boss.ID, s.f.clock.Now().Add(time.Hour)); err != nil {
				t.Fatal(err)
			}
			s.f.clock.Add(time.Hour)
			return s.token
		}, true},
		{"role changed", func(t *testing.T, s setup) string {
			if _, err := s.f.svc.SetRole(ctx, "cli", s.boss.ID, RoleDistrictAdmin, "huangpu"); err != nil {
				t.Fatal(err)
			}
			return s.token
		}, false},
		{"unknown", func(_ *testing.T, s setup) string {
			return APITokenPrefix + strings.Repeat("A", 43)
		}, false},
		{"wrong prefix", func(_ *testing.T, s setup) string { return "ghp_" + s.token[4:] }, false},
		{"no prefix", func(_ *testing.T, s setup) string { return s.token[4:] }, false},
		{"one character short", func(_ *testing.T, s setup) string { return s.token[:46] }, false},
		{"one character more", func(_ *testing.T, s setup) string { return s.token + "A" }, false},
		{"not base64url", func(_ *testing.T, s setup) string { return s.token[:46] + "+" }, false},
		{"empty", func(_ *testing.T, s setup) string { return "" }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newFixture(t, nil)
			boss := f.create(t, "boss", RoleBureauAdmin, "shanghai")
			tok, at, err := f.svc.CreateAPIToken(ctx, boss, "script", 30)
			if err != nil {
				t.Fatal(err)
			}
			present := tt.change(t, setup{f, boss, tok, at.ID})
			a, got, err := f.svc.AuthenticateAPIToken(ctx, present)
			if !tt.ok {
				if !errors.Is(err, ErrNoAPIToken) {
					t.Errorf("AuthenticateAPIToken = %+v, %v; want ErrNoAPIToken", a, err)
				}
				return
			}
			if err != nil || a.ID != boss.ID || got.ID != at.ID {
				t.Errorf("AuthenticateAPIToken = %+v, %+v, %v; want the boss and the token", a, got, err)
			}
		})
	}
}

func TestAPITokenLastUsed(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	boss := f.create(t, "boss", RoleBureauAdmin, "shanghai")
	tok, at, err := f.svc.CreateAPIToken(ctx, boss, "script", 30)
	if err != nil {
		t.Fatal(err)
	}
	t0 := f.clock.Now()
	steps := []struct {
		advance  time.Duration
		wantUsed time.Time
	}{
		{0, t0},
		{30 * time.Second, t0},
		{30 * time.Second, t0.Add(time.Minute)},
		{59 * time.Second, t0.Add(time.Minute)},
		{time.Hour, t0.Add(time.Minute + 59*time.Second + time.Hour)},
	}
	for i, st := range steps {
		f.clock.Add(st.advance)
		if _, _, err := f.svc.AuthenticateAPIToken(ctx, tok); err != nil {
			t.Fatal(err)
		}
		r, err := f.store.APIToken(ctx, at.ID)
		if err != nil || !r.LastUsed.Equal(st.wantUsed) {
			t.Errorf("step %d: last used %v, %v; want %v", i, r.LastUsed, err, st.wantUsed)
		}
	}
}

func TestRevokeAPIToken(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	boss := f.create(t, "boss", RoleBureauAdmin, "shanghai")
	other := f.create(t, "other", RoleBureauAdmin, "shanghai")
	_, at, err := f.svc.CreateAPIToken(ctx, boss, "script", 30)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RevokeAPIToken(ctx, other, at.ID); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("another admin revoking the token: %v, want ErrNotFound", err)
	}
	if _, err := f.svc.RevokeAPIToken(ctx, boss, "nope"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("revoking an unknown token: %v, want ErrNotFound", err)
	}
	f.clock.Add(time.Hour)
	got, err := f.svc.RevokeAPIToken(ctx, boss, at.ID)
	if err != nil || !got.Revoked() || !got.RevokedAt.Equal(f.clock.Now()) {
		t.Fatalf("RevokeAPIToken = %+v, %v", got, err)
	}
	f.clock.Add(time.Hour)
	again, err := f.svc.RevokeAPIToken(ctx, boss, at.ID)
	if err != nil || !again.RevokedAt.Equal(got.RevokedAt) {
		t.Errorf("revoking again = %+v, %v; want no change", again, err)
	}
	log, err := f.store.AuditLog(ctx, "account:"+boss.ID, 10)
	if err != nil {
		t.Fatal(err)
	}
	var revokes int
	for _, e := range log {
		if e.Action == "api_token.revoke" {
			revokes++
		}
	}
	if revokes != 1 {
		t.Errorf("%d api_token.revoke entries, want 1 (refused and repeated revokes leave none)", revokes)
	}
}

// TestAPITokenAudit: making and revoking a token are audited with who,
// which token and before/after, and no entry holds the token or its hash.
func TestAPITokenAudit(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	boss := f.create(t, "boss", RoleBureauAdmin, "shanghai")
	tok, at, err := f.svc.CreateAPIToken(ctx, boss, "12345 对接脚本", 90)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.RevokeAPIToken(ctx, boss, at.ID); err != nil {
		t.Fatal(err)
	}
	tok2, _, err := f.svc.CreateAPIToken(ctx, boss, "bootstrap", 30)
	if err != nil {
		t.Fatal(err)
	}
	log, err := f.store.AuditLog(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	byAction := map[string][]store.AuditRecord{}
	for _, e := range log {
		byAction[e.Action] = append(byAction[e.Action], e)
		for _, secret := range []string{tok, tok[4:], hashToken(tok), tok2, tok2[4:], hashToken(tok2)} {
			if strings.Contains(e.Before+e.After+e.Object+e.Actor, secret) {
				t.Errorf("audit entry %s holds a token or its hash: %+v", e.Action, e)
			}
		}
	}
	creates, revokes := byAction["api_token.create"], byAction["api_token.revoke"]
	if len(creates) != 2 || len(revokes) != 1 {
		t.Fatalf("audit has %d creates and %d revokes, want 2 and 1", len(creates), len(revokes))
	}
	c := creates[1] // the older one: newest first
	want := `{"token_id":"` + at.ID + `","token_name":"12345 对接脚本","expires_at":"` + at.ExpiresAt.Format(time.RFC3339) + `"}`
	if c.Actor != "account:"+boss.ID || c.Object != "account:"+boss.ID || c.Before != "" || c.After != want {
		t.Errorf("create entry = %+v, want after %s", c, want)
	}
	if creates[0].Actor != "account:"+boss.ID {
		t.Errorf("second create entry's actor = %q, want the owner", creates[0].Actor)
	}
	r := revokes[0]
	if r.Actor != "account:"+boss.ID || r.Before != want || !strings.Contains(r.After, `"revoked_at":"`) ||
		!strings.Contains(r.After, `"token_name":"12345 对接脚本"`) {
		t.Errorf("revoke entry = %+v", r)
	}
	// The account page's history shows the change by field.
	hist, err := f.svc.History(ctx, boss.ID, 10)
	if err != nil || len(hist) == 0 || hist[1].Action != "api_token.revoke" {
		t.Fatalf("history = %+v, %v", hist, err)
	}
	if fs := hist[1].Fields; len(fs) != 1 || fs[0].Field != "revoked_at" || fs[0].Before != "" {
		t.Errorf("revoke's fields = %+v, want revoked_at only", fs)
	}
}
