package store

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"
)

// totpAccount creates account a1 with a session, for the TOTP tests.
func totpAccount(t *testing.T, s *SQLite, t0 time.Time) {
	t.Helper()
	ctx := context.Background()
	a := AccountRecord{ID: "a1", Username: "wang", Role: "officer", Node: "wuliqiao", Password: "$argon2id$x", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateAccount(ctx, a, AuditRecord{At: t0, Actor: "cli", Action: "account.create", Object: "account:a1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateSession(ctx, SessionRecord{IDHash: "h1", AccountID: "a1", CreatedAt: t0, LastSeen: t0},
		AuditRecord{At: t0, Actor: "account:a1", Action: "login.success", Object: "account:a1"}); err != nil {
		t.Fatal(err)
	}
}

func TestTOTPStore(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	totpAccount(t, s, t0)
	audit := func(action string) AuditRecord {
		return AuditRecord{At: t0, Actor: "account:a1", Action: action, Object: "account:a1"}
	}

	if _, err := s.TOTP(ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("TOTP before any offer: %v, want ErrNotFound", err)
	}
	if err := s.EnableTOTP(ctx, "a1", t0, 5, nil, audit("totp.enable")); !errors.Is(err, ErrNotFound) {
		t.Errorf("EnableTOTP without an offer: %v, want ErrNotFound", err)
	}
	for _, secret := range []string{"first", "second"} {
		if err := s.OfferTOTP(ctx, TOTPRecord{AccountID: "a1", Secret: []byte(secret), CreatedAt: t0}); err != nil {
			t.Fatalf("offer %s: %v", secret, err)
		}
	}
	r, err := s.TOTP(ctx, "a1")
	if err != nil || string(r.Secret) != "second" || r.Enabled() {
		t.Fatalf("TOTP after two offers = %+v, %v; want the second, not enabled", r, err)
	}
	if err := s.UseTOTPStep(ctx, "a1", 10); !errors.Is(err, ErrTOTPStep) {
		t.Errorf("UseTOTPStep while only offered: %v, want ErrTOTPStep", err)
	}
	if err := s.EnableTOTP(ctx, "a1", t0.Add(time.Minute), 100, []string{"h1", "h2"}, audit("totp.enable")); err != nil {
		t.Fatal(err)
	}
	if r, err := s.TOTP(ctx, "a1"); err != nil || !r.Enabled() || r.LastStep != 100 || !r.EnabledAt.Equal(t0.Add(time.Minute)) {
		t.Errorf("TOTP after enabling = %+v, %v", r, err)
	}
	if err := s.OfferTOTP(ctx, TOTPRecord{AccountID: "a1", Secret: []byte("third"), CreatedAt: t0}); !errors.Is(err, ErrTOTPStep) {
		t.Errorf("offer while enabled: %v, want ErrTOTPStep", err)
	}
	if r, err := s.TOTP(ctx, "a1"); err != nil || string(r.Secret) != "second" {
		t.Errorf("the refused offer changed the secret: %+v, %v", r, err)
	}

	steps := []struct {
		name    string
		step    int64
		wantErr error
	}{
		{"same step as the confirmation", 100, ErrTOTPStep},
		{"earlier step", 99, ErrTOTPStep},
		{"next step", 101, nil},
		{"next step again", 101, ErrTOTPStep},
		{"a later step", 103, nil},
	}
	for _, tt := range steps {
		if err := s.UseTOTPStep(ctx, "a1", tt.step); !errors.Is(err, tt.wantErr) {
			t.Errorf("%s: UseTOTPStep(%d) = %v, want %v", tt.name, tt.step, err, tt.wantErr)
		}
	}

	if n, err := s.RecoveryCodesLeft(ctx, "a1"); err != nil || n != 2 {
		t.Errorf("RecoveryCodesLeft = %d, %v; want 2", n, err)
	}
	if err := s.UseRecoveryCode(ctx, "a1", "h1", t0); err != nil {
		t.Fatal(err)
	}
	if err := s.UseRecoveryCode(ctx, "a1", "h1", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("recovery code used twice: %v, want ErrNotFound", err)
	}
	if err := s.UseRecoveryCode(ctx, "a1", "nope", t0); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown recovery code: %v, want ErrNotFound", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "a1"); err != nil || n != 1 {
		t.Errorf("RecoveryCodesLeft after one use = %d, %v; want 1", n, err)
	}

	if err := s.DeleteTOTP(ctx, "a1", true, audit("account.reset_2fa")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.TOTP(ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("TOTP after delete: %v, want ErrNotFound", err)
	}
	if n, err := s.RecoveryCodesLeft(ctx, "a1"); err != nil || n != 0 {
		t.Errorf("RecoveryCodesLeft after delete = %d, %v; want 0", n, err)
	}
	if _, err := s.Session(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("session after delete with endSessions: %v, want ErrNotFound", err)
	}
	log, err := s.AuditLog(ctx, "account:a1", 10)
	if err != nil || len(log) < 2 || log[0].Action != "account.reset_2fa" || log[1].Action != "totp.enable" {
		t.Errorf("audit log = %+v, %v; want reset_2fa then totp.enable on top", log, err)
	}
}

// TestTOTPMigration: a database at schema 9 with accounts gets the TOTP
// tables from migration 10, and the accounts keep working.
func TestTOTPMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "hub.db")
	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t0 := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	totpAccount(t, s, t0)
	// Back to schema 9: what migrations 10 and later add goes, their
	// records too.
	if _, err := s.db.ExecContext(ctx, `DROP TABLE api_tokens; DROP TABLE totp_recovery; DROP TABLE totp;
		DROP INDEX cases_closed_phone; DROP INDEX case_complainants_phone;
		DROP TABLE update_reports; DROP TABLE kiosk_updates; DROP TABLE rollouts; DROP TABLE releases;
		DROP TABLE IF EXISTS commands; DROP TABLE IF EXISTS kiosk_screenshots;
		DELETE FROM schema_migrations WHERE version >= 10`); err != nil {
		t.Fatal(err)
	}
	if v, err := s.SchemaVersion(ctx); err != nil || v != 9 {
		t.Fatalf("schema version after going back = %d, %v; want 9", v, err)
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
	if v, err := s.SchemaVersion(ctx); err != nil || v < 10 {
		t.Fatalf("schema version %d, %v; want at least 10", v, err)
	}
	if _, err := s.TOTP(ctx, "a1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("TOTP of an old account: %v, want ErrNotFound (not enrolled)", err)
	}
	if err := s.OfferTOTP(ctx, TOTPRecord{AccountID: "a1", Secret: []byte("s"), CreatedAt: t0}); err != nil {
		t.Errorf("offer after migrating: %v", err)
	}
	// Deleting the account deletes its TOTP rows (ON DELETE CASCADE).
	if _, err := s.db.ExecContext(ctx, `DELETE FROM accounts WHERE id = 'a1'`); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := s.db.QueryRowContext(ctx, `SELECT COUNT(*) FROM totp`).Scan(&n); err != nil || n != 0 {
		t.Errorf("totp rows after deleting the account = %d, %v; want 0", n, err)
	}
}
