package store

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestAccountsStore(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 7, 1, 9, 0, 0, 0, time.UTC)
	a := AccountRecord{ID: "a1", Username: "admin", DisplayName: "管理员", Role: "bureau_admin", Node: "shanghai",
		Password: "$argon2id$x", CreatedAt: t0, UpdatedAt: t0}
	if err := s.CreateAccount(ctx, a, AuditRecord{At: t0, Actor: "system", Action: "account.create", Object: "account:a1", After: `{"id":"a1"}`}); err != nil {
		t.Fatal(err)
	}
	dup := a
	dup.ID = "a2"
	if err := s.CreateAccount(ctx, dup, AuditRecord{At: t0, Actor: "system", Action: "account.create", Object: "account:a2"}); !errors.Is(err, ErrUsernameTaken) {
		t.Errorf("duplicate username: %v, want ErrUsernameTaken", err)
	}
	got, err := s.AccountByUsername(ctx, "admin")
	if err != nil || got != a {
		t.Errorf("AccountByUsername = %+v, %v; want %+v", got, err, a)
	}
	if _, err := s.Account(ctx, "a2"); !errors.Is(err, ErrNotFound) {
		t.Errorf("Account(a2) after failed create: %v, want ErrNotFound (the failed create must leave nothing)", err)
	}

	sess := SessionRecord{IDHash: "h1", AccountID: "a1", CreatedAt: t0, LastSeen: t0}
	if err := s.CreateSession(ctx, sess, AuditRecord{At: t0, Actor: "account:a1", Action: "login.success", Object: "account:a1"}); err != nil {
		t.Fatal(err)
	}
	if err := s.TouchSession(ctx, "h1", t0.Add(time.Minute)); err != nil {
		t.Fatal(err)
	}
	if r, err := s.Session(ctx, "h1"); err != nil || !r.LastSeen.Equal(t0.Add(time.Minute)) {
		t.Errorf("Session after touch = %+v, %v", r, err)
	}

	for i, want := range []int{1, 2, 3} {
		n, err := s.AddLoginFailure(ctx, "a1", t0.Add(time.Duration(i)*time.Minute), t0)
		if err != nil || n != want {
			t.Errorf("AddLoginFailure #%d = %d, %v; want %d", i, n, err, want)
		}
	}
	if n, err := s.AddLoginFailure(ctx, "a1", t0.Add(20*time.Minute), t0.Add(5*time.Minute)); err != nil || n != 1 {
		t.Errorf("failures in a later window = %d, %v; want 1", n, err)
	}

	locked := a
	locked.LockedUntil, locked.UpdatedAt = t0.Add(time.Hour), t0.Add(time.Minute)
	if err := s.UpdateAccount(ctx, locked, AuditRecord{At: t0, Actor: "system", Action: "account.lock", Object: "account:a1"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Session(ctx, "h1"); !errors.Is(err, ErrNotFound) {
		t.Errorf("session after lock: %v, want ErrNotFound", err)
	}
	missing := a
	missing.ID = "nobody"
	if err := s.UpdateAccount(ctx, missing, AuditRecord{At: t0, Actor: "system", Action: "account.lock", Object: "account:nobody"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("update missing: %v, want ErrNotFound", err)
	}

	if err := s.CreateSession(ctx, SessionRecord{IDHash: "old", AccountID: "a1", CreatedAt: t0, LastSeen: t0}, AuditRecord{At: t0, Actor: "a", Action: "login.success", Object: "account:a1"}); err != nil {
		t.Fatal(err)
	}
	if n, err := s.DeleteSessionsBefore(ctx, t0.Add(time.Second), t0); err != nil || n != 1 {
		t.Errorf("DeleteSessionsBefore = %d, %v; want 1", n, err)
	}

	log, err := s.AuditLog(ctx, "account:a1", 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Action)
	}
	want := []string{"login.success", "account.lock", "login.success", "account.create"}
	if len(actions) != len(want) {
		t.Fatalf("audit actions = %v, want %v", actions, want)
	}
	for i := range want {
		if actions[i] != want[i] {
			t.Errorf("audit actions = %v, want %v", actions, want)
			break
		}
	}
	if log[len(log)-1].After != `{"id":"a1"}` || !log[len(log)-1].At.Equal(t0) {
		t.Errorf("create entry = %+v", log[len(log)-1])
	}
}
