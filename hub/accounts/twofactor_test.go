package accounts

import (
	"context"
	"encoding/base64"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/hub/totp"
)

// enrol switches two-step verification on for the account and returns its
// secret and recovery codes.
func (f fixture) enrol(t *testing.T, a Account) ([]byte, []string) {
	t.Helper()
	ctx := context.Background()
	e, err := f.svc.OfferTwoFactor(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.URI, "otpauth://totp/Shequ:"+a.Username+"?secret=") {
		t.Errorf("URI %q", e.URI)
	}
	secret, err := totp.ParseSecret(e.Grouped)
	if err != nil {
		t.Fatal(err)
	}
	codes, err := f.svc.EnableTwoFactor(ctx, a, totp.Code(secret, f.clock.Now()), "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if len(codes) != RecoveryCodes {
		t.Fatalf("%d recovery codes, want %d", len(codes), RecoveryCodes)
	}
	// The next login must not reuse the confirmation's step.
	f.clock.Add(totp.Period)
	return secret, codes
}

// pending logs in with the password and returns the pending-login token.
func (f fixture) pending(t *testing.T, username string) string {
	t.Helper()
	res, err := f.svc.BeginLogin(context.Background(), username, goodPassword, "10.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if res.Pending == "" || res.Session != "" {
		t.Fatalf("BeginLogin with two-step on = %+v, want a pending login and no session", res)
	}
	return res.Pending
}

func TestEnrolTwoFactor(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	a := f.create(t, "wang", RoleOfficer, "wuliqiao")
	if _, err := f.svc.EnableTwoFactor(ctx, a, "123456", "ip"); !errors.Is(err, ErrTwoFactorOff) {
		t.Errorf("enable without an offer: %v, want ErrTwoFactorOff", err)
	}
	e1, err := f.svc.OfferTwoFactor(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := f.svc.OfferTwoFactor(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	if e1.Grouped == e2.Grouped {
		t.Fatal("two offers gave the same secret")
	}
	old, _ := totp.ParseSecret(e1.Grouped)
	secret, _ := totp.ParseSecret(e2.Grouped)
	now := f.clock.Now()
	for _, tt := range []struct{ name, code string }{
		{"code of the replaced offer", totp.Code(old, now)},
		{"code two steps old", totp.Code(secret, now.Add(-2*totp.Period))},
		{"not a code", "abcdef"},
	} {
		if tt.code == totp.Code(secret, now) {
			continue
		}
		if _, err := f.svc.EnableTwoFactor(ctx, a, tt.code, "ip"); !errors.Is(err, ErrBadCode) {
			t.Errorf("%s: %v, want ErrBadCode", tt.name, err)
		}
	}
	if st, err := f.svc.TwoFactor(ctx, a); err != nil || st.On {
		t.Fatalf("status after wrong codes = %+v, %v; want off", st, err)
	}
	codes, err := f.svc.EnableTwoFactor(ctx, a, totp.Code(secret, now), "ip")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if _, ok := normalRecovery(c); !ok || seen[c] {
			t.Errorf("recovery code %q malformed or repeated", c)
		}
		seen[c] = true
	}
	st, err := f.svc.TwoFactor(ctx, a)
	if err != nil || !st.On || st.RecoveryLeft != RecoveryCodes {
		t.Errorf("status = %+v, %v; want on with %d recovery codes", st, err, RecoveryCodes)
	}
	if _, err := f.svc.OfferTwoFactor(ctx, a); !errors.Is(err, ErrTwoFactorOn) {
		t.Errorf("offer while on: %v, want ErrTwoFactorOn", err)
	}
	if _, _, err := f.svc.Login(ctx, "wang", goodPassword, "ip"); !errors.Is(err, ErrSecondFactor) {
		t.Errorf("Login with two-step on: %v, want ErrSecondFactor", err)
	}

	// Neither the secret nor a recovery code is stored in the clear or
	// audited.
	rec, err := f.store.TOTP(ctx, a.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(rec.Secret), string(secret)) {
		t.Error("the secret is stored in the clear")
	}
	log, err := f.store.AuditLog(ctx, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	b32 := totp.EncodeSecret(secret)
	for _, e := range log {
		all := e.Before + e.After
		if strings.Contains(all, b32) || strings.Contains(all, base64.StdEncoding.EncodeToString(secret)) || strings.Contains(all, codes[0]) {
			t.Errorf("audit entry %s holds a secret: %s", e.Action, all)
		}
	}
}

func TestLoginWithTwoFactor(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	a := f.create(t, "wang", RoleOfficer, "wuliqiao")
	secret, recovery := f.enrol(t, a)

	sessions := func() int {
		t.Helper()
		n := 0
		log, err := f.store.AuditLog(ctx, object(a.ID), 1000)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range log {
			if e.Action == "login.success" {
				n++
			}
		}
		return n
	}

	t.Run("right code", func(t *testing.T) {
		p := f.pending(t, "wang")
		tok, got, err := f.svc.CompleteLogin(ctx, p, totp.Code(secret, f.clock.Now()), "10.0.0.1")
		if err != nil || got.ID != a.ID {
			t.Fatalf("CompleteLogin = %v, %v", got, err)
		}
		if who, err := f.svc.Authenticate(ctx, tok); err != nil || who.ID != a.ID {
			t.Errorf("Authenticate the new session = %v, %v", who, err)
		}
	})
	t.Run("replayed code", func(t *testing.T) {
		code := totp.Code(secret, f.clock.Now()) // used by "right code"
		before := sessions()
		_, _, err := f.svc.CompleteLogin(ctx, f.pending(t, "wang"), code, "10.0.0.1")
		if !errors.Is(err, ErrBadCode) {
			t.Fatalf("replayed code: %v, want ErrBadCode", err)
		}
		// The previous step's code is within the window but before the
		// step used: refused too.
		prev := totp.Code(secret, f.clock.Now().Add(-totp.Period))
		if _, _, err := f.svc.CompleteLogin(ctx, f.pending(t, "wang"), prev, "10.0.0.1"); !errors.Is(err, ErrBadCode) {
			t.Errorf("code of an earlier step: %v, want ErrBadCode", err)
		}
		if sessions() != before {
			t.Error("a replayed code started a session")
		}
		log, err := f.store.AuditLog(ctx, object(a.ID), 3)
		if err != nil || log[0].Action != "login.2fa.failure" || !strings.Contains(log[0].After, "replayed code") {
			t.Errorf("latest audit entry = %+v, %v; want login.2fa.failure for a replayed code", log, err)
		}
	})
	t.Run("next step's code", func(t *testing.T) {
		f.clock.Add(totp.Period)
		next := totp.Code(secret, f.clock.Now().Add(totp.Period))
		if _, _, err := f.svc.CompleteLogin(ctx, f.pending(t, "wang"), next, "10.0.0.1"); err != nil {
			t.Errorf("code of the next step (clock drift): %v", err)
		}
		f.clock.Add(2 * totp.Period)
	})
	t.Run("recovery code once", func(t *testing.T) {
		in := strings.ToLower(strings.ReplaceAll(recovery[3], "-", " "))
		if _, _, err := f.svc.CompleteLogin(ctx, f.pending(t, "wang"), in, "10.0.0.1"); err != nil {
			t.Fatalf("recovery code: %v", err)
		}
		if _, _, err := f.svc.CompleteLogin(ctx, f.pending(t, "wang"), recovery[3], "10.0.0.1"); !errors.Is(err, ErrBadCode) {
			t.Errorf("recovery code again: %v, want ErrBadCode", err)
		}
		if st, err := f.svc.TwoFactor(ctx, a); err != nil || st.RecoveryLeft != RecoveryCodes-1 {
			t.Errorf("status = %+v, %v; want %d recovery codes left", st, err, RecoveryCodes-1)
		}
		log, err := f.store.AuditLog(ctx, object(a.ID), 10)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range log {
			if e.Action == "login.success" {
				if !strings.Contains(e.After, `"second_factor":"recovery code"`) {
					t.Errorf("login audit %s, want second_factor recovery code", e.After)
				}
				break
			}
		}
	})
	t.Run("pending token refused", func(t *testing.T) {
		p := f.pending(t, "wang")
		payload, _, _ := strings.Cut(p, ".")
		other := f.create(t, "li.na", RoleOfficer, "wuliqiao")
		forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(other.ID + "|9999999999|x"))
		tests := []struct {
			name  string
			token string
			wait  time.Duration
		}{
			{"empty", "", 0},
			{"garbage", "not a token", 0},
			{"signature cut off", payload, 0},
			{"signature of another payload", forgedPayload + p[len(payload):], 0},
			{"huge", strings.Repeat("A", 10000), 0},
			{"expired", p, 5 * time.Minute},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				f.clock.Add(tt.wait)
				code := totp.Code(secret, f.clock.Now())
				if _, _, err := f.svc.CompleteLogin(ctx, tt.token, code, "10.0.0.1"); !errors.Is(err, ErrPendingLogin) {
					t.Errorf("CompleteLogin: %v, want ErrPendingLogin", err)
				}
			})
		}
		// A new password voids the logins waiting for a code.
		f.clock.Add(totp.Period)
		p = f.pending(t, "wang")
		if _, err := f.svc.SetPassword(ctx, "cli", a.ID, "another good password"); err != nil {
			t.Fatal(err)
		}
		if _, _, err := f.svc.CompleteLogin(ctx, p, totp.Code(secret, f.clock.Now()), "10.0.0.1"); !errors.Is(err, ErrPendingLogin) {
			t.Errorf("pending login after a password change: %v, want ErrPendingLogin", err)
		}
	})
}

func TestWrongCodesLock(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	a := f.create(t, "wang", RoleOfficer, "wuliqiao")
	secret, _ := f.enrol(t, a)
	p := f.pending(t, "wang")
	wrong := "000000"
	if totp.Code(secret, f.clock.Now()) == wrong {
		wrong = "000001"
	}
	// One wrong password and four wrong codes make five failures.
	if _, err := f.svc.BeginLogin(ctx, "wang", "wrong password!", "10.0.0.1"); !errors.Is(err, ErrBadCredentials) {
		t.Fatal(err)
	}
	for i := range 4 {
		_, _, err := f.svc.CompleteLogin(ctx, p, wrong, "10.0.0.1")
		if !errors.Is(err, ErrBadCode) {
			t.Fatalf("wrong code #%d: %v, want ErrBadCode", i+1, err)
		}
	}
	r, err := f.store.Account(ctx, a.ID)
	if err != nil || !r.LockedUntil.Equal(f.clock.Now().Add(15*time.Minute)) {
		t.Fatalf("account after 5 failures = %+v, %v; want locked for 15 minutes", r, err)
	}
	if _, _, err := f.svc.CompleteLogin(ctx, p, totp.Code(secret, f.clock.Now()), "10.0.0.1"); !errors.Is(err, ErrLocked) {
		t.Errorf("right code while locked: %v, want ErrLocked", err)
	}
	log, err := f.store.AuditLog(ctx, object(a.ID), 100)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, e := range log {
		if e.Action == "login.2fa.failure" {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d login.2fa.failure entries, want 5 (4 wrong codes, 1 while locked)", n)
	}
	f.clock.Add(15 * time.Minute)
	p = f.pending(t, "wang")
	if _, _, err := f.svc.CompleteLogin(ctx, p, totp.Code(secret, f.clock.Now()), "10.0.0.1"); err != nil {
		t.Errorf("right code after the lock: %v", err)
	}
}

func TestDisableAndResetTwoFactor(t *testing.T) {
	f, accts := manageFixture(t)
	ctx := context.Background()
	officer := accts["officer"]
	secret, _ := f.enrol(t, officer)

	if err := f.svc.DisableTwoFactor(ctx, officer, "", "wrong password!", "ip"); !errors.Is(err, ErrBadCredentials) {
		t.Errorf("disable with a wrong password: %v, want ErrBadCredentials", err)
	}
	if err := f.svc.DisableTwoFactor(ctx, officer, "", "", "ip"); !errors.Is(err, ErrBadCode) {
		t.Errorf("disable with nothing: %v, want ErrBadCode", err)
	}
	if err := f.svc.DisableTwoFactor(ctx, officer, totp.Code(secret, f.clock.Now()), "", "ip"); err != nil {
		t.Fatalf("disable with a code: %v", err)
	}
	if st, err := f.svc.TwoFactor(ctx, officer); err != nil || st.On {
		t.Errorf("status after disabling = %+v, %v", st, err)
	}
	if err := f.svc.DisableTwoFactor(ctx, officer, "", goodPassword, "ip"); !errors.Is(err, ErrTwoFactorOff) {
		t.Errorf("disable while off: %v, want ErrTwoFactorOff", err)
	}
	f.enrol(t, officer)
	if err := f.svc.DisableTwoFactor(ctx, officer, "", goodPassword, "ip"); err != nil {
		t.Errorf("disable with the password: %v", err)
	}

	f.enrol(t, officer)
	tests := []struct {
		name    string
		actor   string
		wantErr error
	}{
		{"officer resets itself", "officer", ErrForbidden},
		{"squad leader manages no accounts", "squad", store.ErrNotFound},
		{"other district's admin", "xuhui", store.ErrNotFound},
		{"technician", "tech", store.ErrNotFound},
		{"district admin of the officer", "huangpu", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.ResetTwoFactorAs(ctx, accts[tt.actor], officer.ID)
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("ResetTwoFactorAs = %v, want %v", err, tt.wantErr)
			}
			st, err := f.svc.TwoFactor(ctx, officer)
			if err != nil || st.On != (tt.wantErr != nil) {
				t.Errorf("status = %+v, %v", st, err)
			}
		})
	}
	changes, err := f.svc.History(ctx, officer.ID, 1)
	if err != nil || len(changes) != 1 {
		t.Fatal(changes, err)
	}
	c := changes[0]
	if c.Action != "account.reset_2fa" || c.Actor != object(accts["huangpu"].ID) || len(c.Fields) != 1 ||
		c.Fields[0] != (FieldChange{Field: "two_factor", Before: "on", After: "off"}) {
		t.Errorf("reset audited as %+v", c)
	}
	// After the reset the password alone logs in again.
	if _, _, err := f.svc.Login(ctx, "officer", goodPassword, "ip"); err != nil {
		t.Errorf("login after the reset: %v", err)
	}
}

func TestRequire2FA(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Require2FA = []Role{RoleBureauAdmin, RoleDistrictAdmin} })
	admin := f.create(t, "admin", RoleDistrictAdmin, "huangpu")
	f.create(t, "wang", RoleOfficer, "wuliqiao")
	srv := f.server(t)

	r := postForm(t, srv.URL+"/login", url.Values{"username": {"admin"}, "password": {goodPassword}}, "", nil)
	if r.code != http.StatusSeeOther || r.location != "/me/2fa" || len(r.cookies) != 1 {
		t.Fatalf("login of an unenrolled admin = %d to %q, want 303 to /me/2fa with a session", r.code, r.location)
	}
	sess := r.cookies[0].Value
	if r := get(t, srv.URL+"/admin", sess); r.code != http.StatusSeeOther || r.location != "/me/2fa" {
		t.Errorf("GET /admin before enrolling = %d to %q, want 303 to /me/2fa", r.code, r.location)
	}
	csrf := f.svc.CSRFToken(sess)
	if r := postForm(t, srv.URL+"/page", url.Values{"csrf": {csrf}}, sess, nil); r.code != http.StatusForbidden {
		t.Errorf("POST /page before enrolling = %d, want 403", r.code)
	}
	if r := get(t, srv.URL+"/enrol", sess); r.code != http.StatusOK || r.body != "admin must-enrol" {
		t.Errorf("GET /enrol = %d %q, want 200 admin must-enrol", r.code, r.body)
	}
	// Not required of officers.
	if sess := login(t, srv, "wang"); get(t, srv.URL+"/page", sess).code != http.StatusOK {
		t.Error("an officer was held back")
	}

	f.enrol(t, admin)
	if r := get(t, srv.URL+"/admin", sess); r.code != http.StatusOK {
		t.Errorf("GET /admin after enrolling = %d, want 200", r.code)
	}
	if r := get(t, srv.URL+"/enrol", sess); r.body != "admin" {
		t.Errorf("GET /enrol after enrolling = %q, want admin", r.body)
	}
	if _, err := New(Config{Store: f.store, Tree: f.tree, Secret: []byte(strings.Repeat("s", 32)), Require2FA: []Role{"boss"}}); !errors.Is(err, ErrInvalid) {
		t.Errorf("Require2FA with an unknown role: %v, want ErrInvalid", err)
	}
}

func TestSecondFactorHandler(t *testing.T) {
	f := newFixture(t, nil)
	a := f.create(t, "wang", RoleOfficer, "wuliqiao")
	secret, _ := f.enrol(t, a)
	srv := f.server(t)
	post := func(path string, form url.Values, pending string, header map[string]string) reply {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(form.Encode()))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if pending != "" {
			req.AddCookie(&http.Cookie{Name: PendingCookieName, Value: pending})
		}
		for k, v := range header {
			req.Header.Set(k, v)
		}
		return do(t, req)
	}

	r := post("/login", url.Values{"username": {"wang"}, "password": {goodPassword}}, "", nil)
	if r.code != http.StatusSeeOther || r.location != "/login/2fa" || len(r.cookies) != 1 {
		t.Fatalf("login = %d to %q with %v, want 303 to /login/2fa with the pending cookie", r.code, r.location, r.cookies)
	}
	pc := r.cookies[0]
	if pc.Name != PendingCookieName || !pc.Secure || !pc.HttpOnly || pc.SameSite != http.SameSiteStrictMode || pc.Path != "/login" || pc.MaxAge != 300 {
		t.Errorf("pending cookie = %+v", pc)
	}
	code := totp.Code(secret, f.clock.Now())
	tests := []struct {
		name     string
		form     url.Values
		pending  string
		header   map[string]string
		code     int
		location string
		session  bool
	}{
		{"no pending cookie", url.Values{"code": {code}}, "", nil, http.StatusSeeOther, "/login?expired=1", false},
		{"forged pending cookie", url.Values{"code": {code}}, "eA.eA", nil, http.StatusSeeOther, "/login?expired=1", false},
		{"cross-site", url.Values{"code": {code}}, pc.Value, map[string]string{"Origin": "https://evil.example"}, http.StatusForbidden, "", false},
		{"no code", url.Values{}, pc.Value, nil, http.StatusBadRequest, "", false},
		{"wrong code", url.Values{"code": {"abcdef"}}, pc.Value, nil, http.StatusSeeOther, "/login/2fa?failed=1", false},
		{"right code", url.Values{"code": {code}}, pc.Value, nil, http.StatusSeeOther, "/", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := post("/login/2fa", tt.form, tt.pending, tt.header)
			if r.code != tt.code || r.location != tt.location {
				t.Fatalf("= %d to %q, want %d to %q (%s)", r.code, r.location, tt.code, tt.location, r.body)
			}
			var sess string
			for _, c := range r.cookies {
				if c.Name == CookieName && c.MaxAge > 0 {
					sess = c.Value
				}
			}
			if (sess != "") != tt.session {
				t.Fatalf("session cookie %q, want one: %v", sess, tt.session)
			}
			if tt.session {
				if g := get(t, srv.URL+"/page", sess); g.code != http.StatusOK {
					t.Errorf("GET /page with the new session = %d", g.code)
				}
			}
		})
	}
}
