package console

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestNoticeComposerMistakes: each mistake a person can make on the
// composer comes back on the composer with a message in Chinese and what
// was typed, and publishes nothing.
func TestNoticeComposerMistakes(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	admin := f.login("huangpu")
	good := url.Values{"title": {"开放日通知"}, "body": {"欢迎参加城管开放日"}, "category": {"event"},
		"priority": {"normal"}, "from": {"2026-11-03T09:00"}, "until": {"2026-11-10T18:00"}, "target": {"sangcheng"}}
	tests := []struct {
		name   string
		change func(url.Values)
		want   string
	}{
		{"no title", func(v url.Values) { v.Set("title", "  ") }, "请填写标题。"},
		{"no target", func(v url.Values) { v.Del("target") }, "请至少选择一个发布范围。"},
		{"end before start", func(v url.Values) { v.Set("until", "2026-11-02T09:00") }, "结束时间须晚于开始时间"},
		{"end in the past without a start", func(v url.Values) { v.Del("from"); v.Set("until", "2000-01-01T00:00") }, "结束时间须晚于开始时间"},
		{"garbled time", func(v url.Values) { v.Set("from", "tomorrow") }, "时间格式不对"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			form := cloneValues(good)
			tc.change(form)
			res := admin.submit("/notices", form)
			body := html.UnescapeString(res.body)
			if res.code != http.StatusBadRequest || !strings.Contains(body, `id="form-error">`+tc.want) {
				t.Fatalf("POST /notices: %d, want 400 with %q; error %q", res.code, tc.want, errorText(res.body))
			}
			if !strings.Contains(body, ">欢迎参加城管开放日</textarea>") {
				t.Errorf("the body typed is not kept")
			}
			if ns, err := f.st.Notices(context.Background()); err != nil || len(ns) != 0 {
				t.Fatalf("%d notices stored after a mistake (%v)", len(ns), err)
			}
		})
	}
	if res := admin.submit("/notices", good); res.code != http.StatusSeeOther {
		t.Fatalf("the good notice: %d %s", res.code, errorText(res.body))
	}
}

// TestNewCaseMistakes: a new case without a description or with a phone
// that is not digits comes back with the form as typed and the same token,
// and fixing it files exactly one case.
func TestNewCaseMistakes(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	leader := f.login("squad")
	page := leader.get("/cases/new")
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page.body)
	if page.code != http.StatusOK || token == nil {
		t.Fatalf("new case page %d without a token", page.code)
	}
	form := url.Values{"token": {token[1]}, "source": {"hotline"}, "community": {"sangcheng"}, "kind": {"complaint"},
		"category": {"illegal_renting"}, "building": {"12号"}, "unit": {"3"}, "room": {"501"},
		"description": {"群租，每晚很吵"}, "phone": {"138-0013-8000"}}
	res := leader.submit("/cases", form)
	body := html.UnescapeString(res.body)
	if res.code != http.StatusBadRequest || !strings.Contains(body, `id="form-error">电话号码格式不对`) {
		t.Fatalf("bad phone: %d, want 400 电话号码格式不对; %s", res.code, errorText(res.body))
	}
	for _, want := range []string{`name="token" value="` + token[1] + `"`, `<option value="hotline" selected>`,
		`<option value="sangcheng" selected>`, `<option value="illegal_renting" selected>`, `name="building" value="12号"`,
		">群租，每晚很吵</textarea>", `name="phone" value="138-0013-8000"`} {
		if !strings.Contains(body, want) {
			t.Errorf("the form that came back lacks %q", want)
		}
	}
	form.Set("phone", "13800138000")
	form.Set("description", " ")
	res = leader.submit("/cases", form)
	if res.code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(res.body), `id="form-error">请填写问题描述。`) {
		t.Fatalf("no description: %d, want 400 请填写问题描述; %s", res.code, errorText(res.body))
	}
	if ids, err := leader.inboxAll(""); err != nil || len(ids) != 0 {
		t.Fatalf("cases after mistakes: %v (%v)", ids, err)
	}
	form.Set("description", "群租，每晚很吵")
	for range 2 { // fixed, and sent twice
		if res := leader.submit("/cases", form); res.code != http.StatusSeeOther {
			t.Fatalf("fixed form: %d %s", res.code, errorText(res.body))
		}
	}
	if ids, err := leader.inboxAll(""); err != nil || len(ids) != 1 {
		t.Fatalf("cases after the fixed form twice: %v (%v), want one", ids, err)
	}
}

// TestNewCaseSameFormOtherSource: the new-case form sent again with another
// source picked (back, change, send) still files one case.
func TestNewCaseSameFormOtherSource(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	leader := f.login("squad")
	page := leader.get("/cases/new")
	token := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page.body)
	if page.code != http.StatusOK || token == nil {
		t.Fatalf("new case page %d without a token", page.code)
	}
	form := url.Values{"token": {token[1]}, "source": {"hotline"}, "community": {"sangcheng"}, "kind": {"complaint"},
		"category": {"facade"}, "description": {"外墙广告牌松动"}}
	var locs []string
	for _, src := range []string{"hotline", "patrol", "partner"} {
		form.Set("source", src)
		res := leader.submit("/cases", form)
		if res.code != http.StatusSeeOther {
			t.Fatalf("source %s: %d %s", src, res.code, errorText(res.body))
		}
		locs = append(locs, res.header.Get("Location"))
	}
	if locs[0] != locs[1] || locs[1] != locs[2] {
		t.Errorf("the same form led to %v, want one case", locs)
	}
	if ids, err := leader.inboxAll(""); err != nil || len(ids) != 1 {
		t.Fatalf("cases: %v (%v), want one", ids, err)
	}
	// Another form of the same person is another case.
	page = leader.get("/cases/new")
	token2 := regexp.MustCompile(`name="token" value="([^"]+)"`).FindStringSubmatch(page.body)
	form.Set("token", token2[1])
	if res := leader.submit("/cases", form); res.code != http.StatusSeeOther || res.header.Get("Location") == locs[0] {
		t.Fatalf("a second form: %d %q", res.code, res.header.Get("Location"))
	}
}
