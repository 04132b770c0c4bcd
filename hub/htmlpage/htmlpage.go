// Package htmlpage holds what the hub's HTML pages share: the two
// languages and the cookie that remembers the choice, bilingual message
// tables (Simplified Chinese first, English second) with the labels of
// stored values every page shows, and the security headers every reply
// carries. The staff console (hub/console) and the residents' pages
// (hub/resident) build on it.
package htmlpage

import (
	"maps"
	"net/http"
)

// Lang is a page language.
type Lang string

// Languages: Simplified Chinese first (the default), English second.
const (
	Zh Lang = "zh"
	En Lang = "en"
)

// LangCookie remembers the language a user picked, on every page.
const LangCookie = "shequ_lang"

// LangCookieOf sets the language cookie to lang (a year, HttpOnly,
// SameSite=Lax; Secure when the request came over TLS).
func LangCookieOf(r *http.Request, lang Lang) *http.Cookie {
	return &http.Cookie{Name: LangCookie, Value: string(lang), Path: "/", MaxAge: 365 * 24 * 3600,
		Secure: r.TLS != nil, HttpOnly: true, SameSite: http.SameSiteLaxMode}
}

// CookieLang returns the language of the request's cookie, else Chinese.
func CookieLang(r *http.Request) Lang {
	if c, err := r.Cookie(LangCookie); err == nil && c.Value == string(En) {
		return En
	}
	return Zh
}

// Messages is a message table: key → {Chinese, English}. Keys with a dot
// are labels of stored values ("state.received").
type Messages map[string][2]string

// T returns the message of key in lang; an unknown key is returned as is
// (each page package tests that every key it uses exists).
func (m Messages) T(lang Lang, key string) string {
	v, ok := m[key]
	if !ok {
		return key
	}
	if lang == En {
		return v[1]
	}
	return v[0]
}

// Label returns the label of a stored value ("category", "facade"), or
// the value itself when the table has none; "" for an empty value.
func (m Messages) Label(lang Lang, group, value string) string {
	if value == "" {
		return ""
	}
	key := group + "." + value
	if _, ok := m[key]; !ok {
		return value
	}
	return m.T(lang, key)
}

// With returns a new table of m's messages and those of more (which win).
func (m Messages) With(more Messages) Messages {
	out := maps.Clone(m)
	maps.Copy(out, more)
	return out
}

// Labels are the labels of the values every page shows the same way:
// feedback kinds, categories and ratings.
var Labels = Messages{
	"kind.complaint":    {"投诉", "Complaint"},
	"kind.consultation": {"咨询", "Question"},
	"kind.help":         {"求助", "Help request"},
	"kind.suggestion":   {"建议", "Suggestion"},

	"category.illegal_construction": {"违法搭建", "Illegal construction"},
	"category.load_bearing":         {"破坏房屋承重结构", "Load-bearing damage"},
	"category.change_of_use":        {"擅自改变物业使用性质", "Change of use"},
	"category.facade":               {"破坏房屋外貌", "Facade damage"},
	"category.illegal_renting":      {"房屋违规租赁", "Illegal renting"},
	"category.green_space":          {"占绿毁绿", "Green space"},
	"category.property_duty":        {"物业未履职尽责", "Property management duty"},
	"category.other":                {"其他", "Other"},

	"rating.satisfied":           {"满意", "Satisfied"},
	"rating.basically_satisfied": {"基本满意", "Basically satisfied"},
	"rating.not_satisfied":       {"不满意", "Not satisfied"},
}

// Secure returns middleware that sets the headers every page reply
// carries: the Content-Security-Policy csp, no framing, no MIME sniffing,
// and the Referrer-Policy referrer.
func Secure(csp, referrer string) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			h := w.Header()
			h.Set("Content-Security-Policy", csp)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", referrer)
			next.ServeHTTP(w, r)
		})
	}
}
