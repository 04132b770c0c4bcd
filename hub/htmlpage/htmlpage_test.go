package htmlpage

import (
	"crypto/tls"
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestMessages(t *testing.T) {
	m := Labels.With(Messages{"app": {"社区", "Community"}, "kind.help": {"帮忙", "Help"}})
	tests := []struct {
		name, got, want string
	}{
		{"zh", m.T(Zh, "app"), "社区"},
		{"en", m.T(En, "app"), "Community"},
		{"unknown key", m.T(Zh, "nope"), "nope"},
		{"label", m.Label(Zh, "category", "facade"), "破坏房屋外貌"},
		{"label en", m.Label(En, "rating", "not_satisfied"), "Not satisfied"},
		{"label unknown value", m.Label(Zh, "category", "spaceship"), "spaceship"},
		{"label empty", m.Label(Zh, "category", ""), ""},
		{"With overrides", m.T(Zh, "kind.help"), "帮忙"},
		{"With leaves the base alone", Labels.T(Zh, "kind.help"), "求助"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.got != tt.want {
				t.Errorf("got %q, want %q", tt.got, tt.want)
			}
		})
	}
	for k, v := range Labels {
		if v[0] == "" || v[1] == "" {
			t.Errorf("label %s lacks a language: %q", k, v)
		}
	}
}

func TestLangCookie(t *testing.T) {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if got := CookieLang(r); got != Zh {
		t.Errorf("no cookie: %q, want zh", got)
	}
	c := LangCookieOf(r, En)
	if c.Secure || !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Name != LangCookie {
		t.Errorf("cookie over plain HTTP %+v", c)
	}
	r.AddCookie(c)
	if got := CookieLang(r); got != En {
		t.Errorf("cookie en: %q", got)
	}
	r.TLS = &tls.ConnectionState{}
	if !LangCookieOf(r, Zh).Secure {
		t.Error("cookie over TLS is not Secure")
	}
	bad := httptest.NewRequest(http.MethodGet, "/", nil)
	bad.AddCookie(&http.Cookie{Name: LangCookie, Value: "<script>"})
	if got := CookieLang(bad); got != Zh {
		t.Errorf("bad cookie: %q, want zh", got)
	}
}

func TestSecure(t *testing.T) {
	h := Secure("default-src 'self'", "no-referrer")(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.WriteHeader(http.StatusTeapot)
	}))
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	for k, want := range map[string]string{"Content-Security-Policy": "default-src 'self'", "X-Content-Type-Options": "nosniff",
		"X-Frame-Options": "DENY", "Referrer-Policy": "no-referrer"} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	if rec.Code != http.StatusTeapot {
		t.Errorf("status %d: the handler did not run", rec.Code)
	}
}
