package console

import (
	"bytes"
	"context"
	"encoding/base64"
	"html"
	"image/png"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/totp"
)

var (
	qrImage     = regexp.MustCompile(`<img src="data:image/png;base64,([^"]+)"`)
	secretCode  = regexp.MustCompile(`<code class="secret" id="secret">([^<]+)</code>`)
	recoveryRow = regexp.MustCompile(`<li><code class="secret">([^<]+)</code></li>`)
)

// enrolForm enrols the client's account in two-step verification through
// /me/2fa and returns its secret and recovery codes.
func (c *client) enrolForm(t *testing.T) ([]byte, []string) {
	t.Helper()
	page := c.get("/me/2fa")
	if page.code != http.StatusOK || page.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("GET /me/2fa: %d, Cache-Control %q", page.code, page.header.Get("Cache-Control"))
	}
	m := qrImage.FindStringSubmatch(page.body)
	if m == nil {
		t.Fatalf("no inline QR code on /me/2fa:\n%s", page.body)
	}
	b, err := base64.StdEncoding.DecodeString(html.UnescapeString(m[1]))
	if err != nil {
		t.Fatal(err)
	}
	if img, err := png.Decode(bytes.NewReader(b)); err != nil || img.Bounds().Dx() < 200 {
		t.Fatalf("QR code PNG: %v", err)
	}
	s := secretCode.FindStringSubmatch(page.body)
	if s == nil {
		t.Fatal("no secret on /me/2fa")
	}
	secret, err := totp.ParseSecret(s[1])
	if err != nil {
		t.Fatalf("secret %q: %v", s[1], err)
	}
	if !regexp.MustCompile(`^([A-Z2-7]{4} ){7}[A-Z2-7]{4}$`).MatchString(s[1]) {
		t.Errorf("secret shown as %q, want 8 groups of 4", s[1])
	}
	csrf := html.UnescapeString(csrfInput.FindStringSubmatch(page.body)[1])

	// A wrong code: refused, and the same secret shown again.
	wrong := "000000"
	if totp.Code(secret, c.f.clock.Now()) == wrong {
		wrong = "000001"
	}
	res := c.postForm("/me/2fa", url.Values{"csrf": {csrf}, "code": {wrong}}, c.f.srv.URL)
	if res.code != http.StatusBadRequest || !strings.Contains(res.body, `id="form-error"`) {
		t.Fatalf("wrong code: %d", res.code)
	}
	if again := secretCode.FindStringSubmatch(res.body); again == nil || again[1] != s[1] {
		t.Errorf("after a wrong code the page shows another secret")
	}

	res = c.postForm("/me/2fa", url.Values{"csrf": {csrf}, "code": {totp.Code(secret, c.f.clock.Now())}}, c.f.srv.URL)
	if res.code != http.StatusOK || res.header.Get("Cache-Control") != "no-store" {
		t.Fatalf("confirm: %d %s", res.code, errorText(res.body))
	}
	var codes []string
	for _, m := range recoveryRow.FindAllStringSubmatch(res.body, -1) {
		codes = append(codes, m[1])
	}
	if len(codes) != accounts.RecoveryCodes {
		t.Fatalf("%d recovery codes shown, want %d", len(codes), accounts.RecoveryCodes)
	}
	c.f.clock.Add(totp.Period)
	return secret, codes
}

// hasSession reports whether the client's jar holds a session cookie.
func (c *client) hasSession() bool {
	u, err := url.Parse(c.f.srv.URL)
	if err != nil {
		c.f.t.Fatal(err)
	}
	for _, k := range c.http.Jar.Cookies(u) {
		if k.Name == accounts.CookieName {
			return true
		}
	}
	return false
}

// loginWithCode logs in with the password and then code, and returns the
// reply to the code.
func (f *fixture) loginWithCode(t *testing.T, c *client, username, code string) response {
	t.Helper()
	res := c.postForm("/login", url.Values{"username": {username}, "password": {password}}, f.srv.URL)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/login/2fa" {
		t.Fatalf("login %s: %d to %q, want 303 to /login/2fa", username, res.code, res.header.Get("Location"))
	}
	if c.hasSession() {
		t.Fatal("a session cookie before the code")
	}
	page := c.get("/login/2fa")
	if page.code != http.StatusOK || !strings.Contains(page.body, `action="/login/2fa"`) {
		t.Fatalf("GET /login/2fa: %d", page.code)
	}
	return c.postForm("/login/2fa", url.Values{"code": {code}}, f.srv.URL)
}

func TestTwoFactorFlow(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	c := f.login("officer-a")
	if page := c.get("/me/password"); !strings.Contains(page.body, `href="/me/2fa"`) {
		t.Error("/me/password has no link to /me/2fa")
	}
	secret, recovery := c.enrolForm(t)
	page := c.get("/me/2fa")
	if !strings.Contains(page.body, `id="disable2fa"`) || qrImage.MatchString(page.body) || secretCode.MatchString(page.body) ||
		strings.Contains(page.body, totp.EncodeSecret(secret)[:8]) {
		t.Error("after enrolment /me/2fa shows the secret again or no way to switch it off")
	}
	if res := c.submit("/logout", nil); res.code != http.StatusSeeOther {
		t.Fatalf("logout: %d", res.code)
	}

	b := f.newClient("officer-a again")
	if res := b.get("/login/2fa"); res.code != http.StatusSeeOther || res.header.Get("Location") != "/login" {
		t.Errorf("GET /login/2fa without a pending login: %d to %q", res.code, res.header.Get("Location"))
	}
	wrong := "000000"
	if totp.Code(secret, f.clock.Now()) == wrong {
		wrong = "000001"
	}
	res := f.loginWithCode(t, b, "officer-a", wrong)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/login/2fa?failed=1" || b.hasSession() {
		t.Fatalf("wrong code: %d to %q, session %v", res.code, res.header.Get("Location"), b.hasSession())
	}
	if res := b.get("/m"); res.code != http.StatusSeeOther || res.header.Get("Location") != "/login" {
		t.Errorf("GET /m after a wrong code: %d to %q, want a redirect to /login", res.code, res.header.Get("Location"))
	}
	code := totp.Code(secret, f.clock.Now())
	res = b.postForm("/login/2fa", url.Values{"code": {code}}, f.srv.URL)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/" || !b.hasSession() {
		t.Fatalf("right code: %d to %q", res.code, res.header.Get("Location"))
	}
	if res := b.get("/m"); res.code != http.StatusOK {
		t.Errorf("GET /m after the code: %d", res.code)
	}

	// The same code in another browser: replayed, refused.
	r := f.newClient("replay")
	if res := f.loginWithCode(t, r, "officer-a", code); res.header.Get("Location") != "/login/2fa?failed=1" || r.hasSession() {
		t.Errorf("replayed code: %d to %q", res.code, res.header.Get("Location"))
	}
	// A recovery code works once.
	rc := f.newClient("recovery")
	if res := f.loginWithCode(t, rc, "officer-a", recovery[0]); res.header.Get("Location") != "/" || !rc.hasSession() {
		t.Errorf("recovery code: %d to %q", res.code, res.header.Get("Location"))
	}
	rc2 := f.newClient("recovery again")
	if res := f.loginWithCode(t, rc2, "officer-a", recovery[0]); res.header.Get("Location") != "/login/2fa?failed=1" || rc2.hasSession() {
		t.Errorf("recovery code again: %d to %q", res.code, res.header.Get("Location"))
	}
	// Waiting more than five minutes voids the pending login.
	late := f.newClient("late")
	res = late.postForm("/login", url.Values{"username": {"officer-a"}, "password": {password}}, f.srv.URL)
	if res.header.Get("Location") != "/login/2fa" {
		t.Fatalf("login: %q", res.header.Get("Location"))
	}
	f.clock.Add(6 * time.Minute)
	res = late.postForm("/login/2fa", url.Values{"code": {totp.Code(secret, f.clock.Now())}}, f.srv.URL)
	if res.header.Get("Location") != "/login?expired=1" || late.hasSession() {
		t.Errorf("code after 6 minutes: %d to %q", res.code, res.header.Get("Location"))
	}
	if page := late.get("/login?expired=1"); !strings.Contains(page.body, `id="login-expired"`) {
		t.Error("the login page does not say the login timed out")
	}

	// Switched off with the password, the password alone logs in again.
	f.clock.Add(totp.Period)
	res = b.submit("/me/2fa/disable", url.Values{"password": {"wrong password!"}})
	if res.code != http.StatusBadRequest {
		t.Errorf("disable with a wrong password: %d", res.code)
	}
	res = b.submit("/me/2fa/disable", url.Values{"password": {password}})
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/me/2fa?done=tf.disabled" {
		t.Fatalf("disable: %d to %q %s", res.code, res.header.Get("Location"), errorText(res.body))
	}
	f.login("officer-a")
}

func TestTwoFactorCSRF(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	officer := f.login("officer-a")
	officer.enrolForm(t)
	admin := f.login("huangpu")
	other := f.login("squad").csrf()
	id := f.accounts["officer-a"].ID
	tests := []struct {
		name string
		c    *client
		path string
		form url.Values
	}{
		{"enrol", admin, "/me/2fa", url.Values{"code": {"123456"}}},
		{"switch off", officer, "/me/2fa/disable", url.Values{"password": {password}}},
		{"admin reset", admin, "/accounts/" + id + "/2fa/reset", url.Values{}},
	}
	for _, tt := range tests {
		for _, token := range []string{"", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", other} {
			form := cloneValues(tt.form)
			if token != "" {
				form.Set("csrf", token)
			}
			if res := tt.c.postForm(tt.path, form, f.srv.URL); res.code != http.StatusForbidden {
				t.Errorf("%s with csrf %q: %d, want 403", tt.name, token, res.code)
			}
		}
	}
	if st, err := f.acc.TwoFactor(ctx, f.accounts["officer-a"]); err != nil || !st.On {
		t.Errorf("officer's two-step after refused forms = %+v, %v; want on", st, err)
	}
	if st, err := f.acc.TwoFactor(ctx, f.accounts["huangpu"]); err != nil || st.On {
		t.Errorf("admin's two-step after a refused enrolment = %+v, %v; want off", st, err)
	}
}

func TestTwoFactorReset(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	officer := f.login("officer-a")
	officer.enrolForm(t)
	id := f.accounts["officer-a"].ID
	path := "/accounts/" + id + "/2fa/reset"

	tests := []struct {
		name string
		who  string
		want int
	}{
		{"another district's admin", "xuhui", http.StatusNotFound},
		{"squad leader", "squad", http.StatusForbidden},
		{"the officer itself", "officer-a", http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := officer
			if tt.who != "officer-a" {
				c = f.login(tt.who)
			}
			if res := c.submit(path, nil); res.code != tt.want {
				t.Errorf("POST reset: %d, want %d", res.code, tt.want)
			}
			if st, err := f.acc.TwoFactor(ctx, f.accounts["officer-a"]); err != nil || !st.On {
				t.Errorf("two-step = %+v, %v; want still on", st, err)
			}
		})
	}
	xuhui := f.login("xuhui")
	if res := xuhui.get("/accounts/" + id); res.code != http.StatusNotFound {
		t.Errorf("another district's admin sees the account page: %d", res.code)
	}

	admin := f.login("huangpu")
	page := admin.get("/accounts/" + id)
	if !strings.Contains(page.body, `action="/accounts/`+id+`/2fa/reset"`) {
		t.Fatal("the account page has no reset form for an account with two-step on")
	}
	res := admin.submit(path, nil)
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/accounts/"+id+"?done=acct.2fa_reset" {
		t.Fatalf("reset: %d to %q %s", res.code, res.header.Get("Location"), errorText(res.body))
	}
	if st, err := f.acc.TwoFactor(ctx, f.accounts["officer-a"]); err != nil || st.On {
		t.Errorf("two-step after the reset = %+v, %v; want off", st, err)
	}
	if res := officer.get("/m"); res.code != http.StatusSeeOther {
		t.Errorf("the officer's session survived the reset: GET /m %d", res.code)
	}
	page = admin.get("/accounts/" + id + "?done=acct.2fa_reset")
	if !strings.Contains(page.body, T(Zh, "aact.account.reset_2fa")) || !strings.Contains(page.body, T(Zh, "tfv.off")) {
		t.Error("the audit trail does not show the reset with before and after")
	}
	f.login("officer-a") // the password alone logs in again
}

// TestTwoFactorMessages: the messages the two-step code picks at run time
// exist in both languages.
func TestTwoFactorMessages(t *testing.T) {
	keys := []string{"tf.err.code", "tf.err.state", "tf.err.disable", "tf.disabled", "acct.2fa_reset", "login.expired",
		"tfv.on", "tfv.off", "tfv.totp", "tfv.recovery code", "field.two_factor", "field.second_factor"}
	for _, a := range []string{"totp.enable", "totp.disable", "totp.disable_failure", "account.reset_2fa", "login.2fa.challenge", "login.2fa.failure"} {
		keys = append(keys, "aact."+a)
	}
	for _, r := range []string{"wrong code", "replayed code", "wrong recovery code", "malformed code", "no code or password"} {
		keys = append(keys, "areason."+r)
	}
	for _, k := range keys {
		if m, ok := messages[k]; !ok || m[0] == "" || m[1] == "" {
			t.Errorf("message %q missing or empty: %q", k, m)
		}
	}
}
