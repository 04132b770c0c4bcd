package accounts

import (
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/ratelimit"
)

// server mounts the handlers the way the hub will: /login, /logout, a page
// any session may read and change, and an admin-only page.
func (f fixture) server(t *testing.T) *httptest.Server {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/login", f.svc.LoginHandler())
	mux.Handle("/logout", f.svc.LogoutHandler())
	mux.Handle("/login/2fa", f.svc.SecondFactorHandler())
	mux.Handle("/enrol", f.svc.EnrolSession()(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := CurrentAccount(r.Context())
		if MustEnrol(r.Context()) {
			fmt.Fprintf(w, "%s must-enrol", a.Username)
			return
		}
		fmt.Fprint(w, a.Username)
	})))
	echo := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, ok := CurrentAccount(r.Context())
		if !ok {
			http.Error(w, "no account in context", http.StatusInternalServerError)
			return
		}
		fmt.Fprintf(w, "%s %s", a.Username, CSRF(r.Context()))
	})
	mux.Handle("/page", f.svc.RequireSession()(echo))
	mux.Handle("/admin", f.svc.RequireSession(RoleBureauAdmin, RoleDistrictAdmin)(echo))
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	return srv
}

var noRedirect = &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}

type reply struct {
	code     int
	location string
	body     string
	cookies  []*http.Cookie
}

func do(t *testing.T, req *http.Request) reply {
	t.Helper()
	resp, err := noRedirect.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return reply{resp.StatusCode, resp.Header.Get("Location"), string(b), resp.Cookies()}
}

func postForm(t *testing.T, u string, form url.Values, cookie string, header map[string]string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, u, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	for k, v := range header {
		req.Header.Set(k, v)
	}
	return do(t, req)
}

func get(t *testing.T, u, cookie string) reply {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	if cookie != "" {
		req.AddCookie(&http.Cookie{Name: CookieName, Value: cookie})
	}
	return do(t, req)
}

// login posts the form and returns the session cookie's value.
func login(t *testing.T, srv *httptest.Server, username string) string {
	t.Helper()
	r := postForm(t, srv.URL+"/login", url.Values{"username": {username}, "password": {goodPassword}}, "", nil)
	if r.code != http.StatusSeeOther || r.location != "/" || len(r.cookies) != 1 {
		t.Fatalf("login %s = %d to %q with %d cookies, want 303 to / with the session cookie", username, r.code, r.location, len(r.cookies))
	}
	c := r.cookies[0]
	if c.Name != CookieName || !c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Path != "/" || len(c.Value) != 43 {
		t.Errorf("session cookie = %+v, want %s Secure HttpOnly SameSite=Lax Path=/ with a 32-byte id", c, CookieName)
	}
	return c.Value
}

func TestLoginHandler(t *testing.T) {
	f := newFixture(t, nil)
	f.create(t, "admin", RoleBureauAdmin, "shanghai")
	srv := f.server(t)
	login(t, srv, "admin")
	for _, tc := range []struct {
		name     string
		body     string
		ctype    string
		origin   string
		code     int
		location string
	}{
		{"wrong password", "username=admin&password=wrong+password", "application/x-www-form-urlencoded", "", http.StatusSeeOther, "/login?failed=1"},
		{"unknown user", "username=nobody&password=" + url.QueryEscape(goodPassword), "application/x-www-form-urlencoded", "", http.StatusSeeOther, "/login?failed=1"},
		{"missing password", "username=admin", "application/x-www-form-urlencoded", "", http.StatusBadRequest, ""},
		{"JSON body", `{"username":"admin"}`, "application/json", "", http.StatusUnsupportedMediaType, ""},
		{"cross-site origin", "username=admin&password=" + url.QueryEscape(goodPassword), "application/x-www-form-urlencoded", "https://evil.example", http.StatusForbidden, ""},
		{"oversized form", "username=admin&password=" + strings.Repeat("x", MaxLoginForm), "application/x-www-form-urlencoded", "", http.StatusRequestEntityTooLarge, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(http.MethodPost, srv.URL+"/login", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", tc.ctype)
			if tc.origin != "" {
				req.Header.Set("Origin", tc.origin)
			}
			r := do(t, req)
			if r.code != tc.code || r.location != tc.location || len(r.cookies) != 0 {
				t.Errorf("got %d to %q with %d cookies, want %d to %q and no cookie", r.code, r.location, len(r.cookies), tc.code, tc.location)
			}
		})
	}
	if r := get(t, srv.URL+"/login", ""); r.code != http.StatusMethodNotAllowed {
		t.Errorf("GET /login = %d, want 405", r.code)
	}
}

func TestLoginHandlerRateLimited(t *testing.T) {
	f := newFixture(t, func(c *Config) { c.Limiter = ratelimit.New(1, 1, 1000, 1000, nil) })
	f.create(t, "admin", RoleBureauAdmin, "shanghai")
	srv := f.server(t)
	form := url.Values{"username": {"admin"}, "password": {"wrong password"}}
	if r := postForm(t, srv.URL+"/login", form, "", nil); r.code != http.StatusSeeOther {
		t.Fatalf("first attempt = %d", r.code)
	}
	if r := postForm(t, srv.URL+"/login", form, "", nil); r.code != http.StatusTooManyRequests {
		t.Errorf("second attempt = %d, want 429", r.code)
	}
}

func TestRequireSessionAndCSRF(t *testing.T) {
	f := newFixture(t, nil)
	f.create(t, "admin", RoleBureauAdmin, "shanghai")
	f.create(t, "officer", RoleOfficer, "wuliqiao")
	srv := f.server(t)
	admin := login(t, srv, "admin")
	officer := login(t, srv, "officer")
	csrf := f.svc.CSRFToken(admin)
	if csrf == f.svc.CSRFToken(officer) {
		t.Fatal("two sessions share a CSRF token")
	}
	if r := get(t, srv.URL+"/page", admin); r.code != http.StatusOK || r.body != "admin "+csrf {
		t.Fatalf("GET /page = %d %q, want 200 with the account and its CSRF token", r.code, r.body)
	}
	multipartBody := func(token string) (string, string) {
		var b strings.Builder
		mw := multipart.NewWriter(&b)
		if err := mw.WriteField(CSRFField, token); err != nil {
			t.Fatal(err)
		}
		if err := mw.Close(); err != nil {
			t.Fatal(err)
		}
		return b.String(), mw.FormDataContentType()
	}
	for _, tc := range []struct {
		name   string
		method string
		path   string
		cookie string
		header string // X-CSRF-Token
		field  string // csrf form field
		multi  bool
		code   int
	}{
		{"GET without a session redirects to login", http.MethodGet, "/page", "", "", "", false, http.StatusSeeOther},
		{"POST without a session", http.MethodPost, "/page", "", "", "", false, http.StatusUnauthorized},
		{"forged session cookie", http.MethodPost, "/page", "forged", csrf, "", false, http.StatusUnauthorized},
		{"POST without a CSRF token", http.MethodPost, "/page", admin, "", "", false, http.StatusForbidden},
		{"POST with a wrong CSRF header", http.MethodPost, "/page", admin, "wrong", "", false, http.StatusForbidden},
		{"POST with another session's token", http.MethodPost, "/page", admin, f.svc.CSRFToken(officer), "", false, http.StatusForbidden},
		{"POST with a wrong form field", http.MethodPost, "/page", admin, "", "wrong", false, http.StatusForbidden},
		{"DELETE without a token", http.MethodDelete, "/page", admin, "", "", false, http.StatusForbidden},
		{"POST with the CSRF header", http.MethodPost, "/page", admin, csrf, "", false, http.StatusOK},
		{"POST with the csrf form field", http.MethodPost, "/page", admin, "", csrf, false, http.StatusOK},
		{"multipart POST with the csrf field", http.MethodPost, "/page", admin, "", csrf, true, http.StatusOK},
		{"multipart POST with a wrong csrf field", http.MethodPost, "/page", admin, "", "wrong", true, http.StatusForbidden},
		{"officer on an admin page", http.MethodGet, "/admin", officer, "", "", false, http.StatusForbidden},
		{"admin on an admin page", http.MethodGet, "/admin", admin, "", "", false, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var body io.Reader
			ctype := ""
			switch {
			case tc.multi:
				b, ct := multipartBody(tc.field)
				body, ctype = strings.NewReader(b), ct
			case tc.field != "":
				body, ctype = strings.NewReader(url.Values{CSRFField: {tc.field}}.Encode()), "application/x-www-form-urlencoded"
			}
			req, err := http.NewRequest(tc.method, srv.URL+tc.path, body)
			if err != nil {
				t.Fatal(err)
			}
			if ctype != "" {
				req.Header.Set("Content-Type", ctype)
			}
			if tc.cookie != "" {
				req.AddCookie(&http.Cookie{Name: CookieName, Value: tc.cookie})
			}
			if tc.header != "" {
				req.Header.Set(CSRFHeader, tc.header)
			}
			if r := do(t, req); r.code != tc.code {
				t.Errorf("%s %s = %d %q, want %d", tc.method, tc.path, r.code, r.body, tc.code)
			}
		})
	}

	// Logout needs the CSRF token, ends the session and clears the cookie.
	if r := postForm(t, srv.URL+"/logout", nil, admin, nil); r.code != http.StatusForbidden {
		t.Errorf("logout without CSRF = %d, want 403", r.code)
	}
	r := postForm(t, srv.URL+"/logout", url.Values{CSRFField: {csrf}}, admin, nil)
	if r.code != http.StatusSeeOther || r.location != "/login" || len(r.cookies) != 1 || r.cookies[0].MaxAge >= 0 {
		t.Errorf("logout = %d to %q, cookies %+v; want 303 to /login clearing the cookie", r.code, r.location, r.cookies)
	}
	if r := get(t, srv.URL+"/page", admin); r.code != http.StatusSeeOther {
		t.Errorf("GET after logout = %d, want 303 to login", r.code)
	}
	if r := get(t, srv.URL+"/page", officer); r.code != http.StatusOK {
		t.Errorf("the other session after logout = %d, want 200", r.code)
	}
}

func FuzzParseLoginForm(f *testing.F) {
	seeds, err := filepath.Glob(filepath.Join("testdata", "login-forms", "*"))
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds in testdata/login-forms: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		form, err := ParseLoginForm(body)
		if err != nil {
			return
		}
		if form.Username == "" || len(form.Username) > 64 || form.Password == "" || len(form.Password) > MaxPasswordLength {
			t.Fatalf("accepted out-of-bounds form %+v", form)
		}
		enc := url.Values{"username": {form.Username}, "password": {form.Password}}.Encode()
		if len(enc) > MaxLoginForm {
			return // escaping can grow a form past the limit
		}
		again, err := ParseLoginForm([]byte(enc))
		if err != nil || again != form {
			t.Fatalf("re-encoded form %+v parsed as %+v, %v", form, again, err)
		}
	})
}

func TestParseLoginForm(t *testing.T) {
	for _, tc := range []struct {
		name, body string
		ok         bool
	}{
		{"plain", "username=admin&password=x", true},
		{"extra fields ignored", "username=admin&password=x&csrf=y", true},
		{"repeated username", "username=a&username=b&password=x", false},
		{"empty username", "username=&password=x", false},
		{"bad escape", "username=admin&password=%zz", false},
		{"invalid UTF-8", "username=%ff&password=x", false},
		{"long username", "username=" + strings.Repeat("a", 65) + "&password=x", false},
		{"too large", "username=a&password=" + strings.Repeat("x", MaxLoginForm), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ParseLoginForm([]byte(tc.body)); (err == nil) != tc.ok {
				t.Errorf("ParseLoginForm(%.40q) = %v, want ok=%v", tc.body, err, tc.ok)
			}
		})
	}
}
