package console

import (
	"io/fs"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/protocol"
)

// TestMessageKeys: every key a template names, every menu entry and flash,
// and the label of every stored value exist in both languages.
func TestMessageKeys(t *testing.T) {
	files, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(files) == 0 {
		t.Fatalf("templates: %v %v", files, err)
	}
	check := func(t *testing.T, key string) {
		t.Helper()
		m, ok := messages[key]
		switch {
		case !ok:
			t.Errorf("message %q is missing", key)
		case m[0] == "" || m[1] == "":
			t.Errorf("message %q is empty in a language: %q", key, m)
		}
	}
	total := 0
	for _, name := range files {
		t.Run(name, func(t *testing.T) {
			src, err := fs.ReadFile(templateFS, name)
			if err != nil {
				t.Fatal(err)
			}
			keys := keysUsed(string(src))
			total += len(keys)
			for _, k := range keys {
				check(t, k)
			}
		})
	}
	if total < 100 {
		t.Errorf("the templates use %d keys; keysUsed finds too few", total)
	}
	t.Run("menus and flashes", func(t *testing.T) {
		for _, role := range accounts.Roles {
			for _, it := range navFor(role, "/") {
				check(t, it.Key)
			}
		}
		for _, k := range flashes {
			check(t, k)
		}
		for _, k := range []string{"checkin.visit", "checkin.patrol", "err.notfound", "err.forbidden", "err.invalid",
			"err.transition", "err.internal", "err.title", "checkin.bad", "inbox", "newcase", "notices", "media", "fleet", "tasks", "checkin"} {
			check(t, k)
		}
	})
	t.Run("labels", func(t *testing.T) {
		groups := map[string][]string{
			"state": strs(cases.States), "source": strs(cases.Sources), "rating": strs(cases.Ratings),
			"kind": strs(protocol.FeedbackKinds), "category": strs(protocol.FeedbackCategories),
			"role": append(strs(accounts.Roles), cases.RoleSystem, cases.RoleResident),
			"ncat": strs(protocol.NoticeCategories), "priority": strs(protocol.Priorities),
		}
		for _, tr := range cases.Table {
			groups["action"] = append(groups["action"], string(tr.Action))
		}
		groups["action"] = append(groups["action"], string(cases.ActionCreate), string(cases.ActionMergeIn), "work")
		for g, vs := range groups {
			for _, v := range vs {
				check(t, g+"."+v)
			}
		}
	})
}

func TestKeysUsed(t *testing.T) {
	tests := []struct {
		name, src string
		want      []string
	}{
		{"none", `<p>{{.X}}</p>`, nil},
		{"two", `{{t $.Lang "a.b"}} x {{t $.Lang "c"}}`, []string{"a.b", "c"}},
		{"unterminated", `{{t $.Lang "a`, nil},
		{"dynamic key", `{{t $.Lang .Key}}`, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := keysUsed(tt.src); strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Errorf("keysUsed = %q, want %q", got, tt.want)
			}
		})
	}
}

var htmlLang = regexp.MustCompile(`<html lang="([^"]+)">`)

func TestLanguageSwitch(t *testing.T) {
	f, _ := setupPermissions(t)
	c := f.login("huangpu")
	zh := c.get("/cases")
	if m := htmlLang.FindStringSubmatch(zh.body); m == nil || m[1] != "zh-CN" || !strings.Contains(zh.body, T(Zh, "inbox")) {
		t.Fatalf("the default page is not Chinese: %v", m)
	}
	res := c.get("/lang?to=en&back=/cases")
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/cases" {
		t.Fatalf("GET /lang: %d → %q", res.code, res.header.Get("Location"))
	}
	pages := []struct {
		user, path string
		labels     []string
	}{
		{"huangpu", "/cases", []string{"Case inbox", "Filter", "Ticket", "Received", "Facade damage", "12345 hotline"}},
		{"huangpu", "/cases/new", []string{"New case", "Description", "Building"}},
		{"huangpu", "/notices", []string{"Publish a notice", "Targets (pick one or more)"}},
		{"officer-a", "/m", []string{"My tasks", "Recent check-ins"}},
	}
	for _, p := range pages {
		t.Run(p.path, func(t *testing.T) {
			cl := c
			if p.user != "huangpu" {
				cl = f.login(p.user)
				if res := cl.get("/lang?to=en&back=/m"); res.code != http.StatusSeeOther {
					t.Fatalf("GET /lang: %d", res.code)
				}
			}
			res := cl.get(p.path)
			if res.code != http.StatusOK {
				t.Fatalf("GET: %d", res.code)
			}
			if m := htmlLang.FindStringSubmatch(res.body); m == nil || m[1] != "en" {
				t.Errorf("html lang %v, want en", m)
			}
			for _, l := range p.labels {
				if !strings.Contains(res.body, l) {
					t.Errorf("the page lacks %q", l)
				}
			}
			for _, zh := range []string{T(Zh, "inbox"), T(Zh, "filter"), T(Zh, "submit"), T(Zh, "tasks"), T(Zh, "logout")} {
				if strings.Contains(res.body, zh) {
					t.Errorf("the English page shows %q", zh)
				}
			}
		})
	}
	t.Run("back to Chinese", func(t *testing.T) {
		if res := c.get("/lang?to=zh&back=/cases"); res.code != http.StatusSeeOther {
			t.Fatalf("GET /lang: %d", res.code)
		}
		if res := c.get("/cases"); !strings.Contains(res.body, T(Zh, "inbox")) {
			t.Error("the page is not Chinese again")
		}
	})
	t.Run("error pages", func(t *testing.T) {
		cl := f.login("xuhui")
		cl.get("/lang?to=en&back=/")
		res := cl.get("/cases?state=nope")
		if msg := errorText(res.body); !strings.HasPrefix(msg, T(En, "err.invalid")) {
			t.Errorf("English error %q", msg)
		}
	})
}
