package resident

import (
	"bytes"
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/htmlpage"
	"github.com/shequ/shequ/hub/ratelimit"
	"github.com/shequ/shequ/protocol"
)

func TestNewChecksConfig(t *testing.T) {
	f := newFixture(t, nil)
	good := Config{Cases: f.cases, Store: f.st, Tree: f.tree, Secret: testSecret, Photo: normalizePhoto}
	if _, err := New(good); err != nil {
		t.Fatalf("New(good): %v", err)
	}
	for name, change := range map[string]func(*Config){
		"no cases":     func(c *Config) { c.Cases = nil },
		"no store":     func(c *Config) { c.Store = nil },
		"no tree":      func(c *Config) { c.Tree = nil },
		"no photo":     func(c *Config) { c.Photo = nil },
		"short secret": func(c *Config) { c.Secret = testSecret[:MinSecret-1] },
	} {
		t.Run(name, func(t *testing.T) {
			c := good
			change(&c)
			if _, err := New(c); err == nil {
				t.Fatal("New accepted a bad config")
			}
		})
	}
}

func TestFormPage(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name, query string
		code        int
		want        []string
		notWant     []string
		kiosk       string
	}{
		{"community and kiosk", "c=sangcheng&k=k-sangcheng-01", 200, []string{"桑城居委 · 桑城居委一楼大厅", "我要反映", `accept="image/*"`}, nil, "k-sangcheng-01"},
		{"community only", "c=sangcheng", 200, []string{"桑城居委"}, []string{"一楼大厅"}, ""},
		{"kiosk of another community dropped", "c=sangcheng&k=k-ruiyi-01", 200, []string{"桑城居委"}, []string{"瑞一小区活动中心"}, ""},
		{"unknown kiosk dropped", "c=ruiyi&k=nope", 200, []string{"瑞一居委"}, nil, ""},
		{"unknown community", "c=nowhere&k=k-sangcheng-01", 404, []string{"找不到这个社区"}, nil, ""},
		{"a street is not a community", "c=wuliqiao", 404, []string{"找不到这个社区"}, nil, ""},
		{"no community", "", 404, []string{"找不到这个社区"}, nil, ""},
		{"English", "c=sangcheng&lang=en", 200, []string{"Report a problem", "中文"}, []string{"我要反映"}, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := f.get("/s?" + tc.query)
			if r.Code != tc.code {
				t.Fatalf("status %d, want %d\n%s", r.Code, tc.code, r.Body)
			}
			for _, w := range tc.want {
				if !strings.Contains(r.Body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(r.Body, w) {
					t.Errorf("page has %q", w)
				}
			}
			if csp := r.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'self'") || !strings.Contains(csp, "script-src 'none'") {
				t.Errorf("CSP %q", csp)
			}
			if strings.Contains(r.Body, "<script") || strings.Contains(r.Body, "style=") {
				t.Error("page has a script or an inline style")
			}
			if tc.code == 200 {
				if h := hidden(r.Body); h[fKiosk] != tc.kiosk {
					t.Errorf("form kiosk %q, want %q", h[fKiosk], tc.kiosk)
				}
			}
		})
	}
	t.Run("language cookie", func(t *testing.T) {
		req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/s?c=sangcheng", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.AddCookie(&http.Cookie{Name: htmlpage.LangCookie, Value: "en"})
		if r := f.do(req); !strings.Contains(r.Body, "Report a problem") {
			t.Errorf("the cookie did not switch to English")
		}
		r := f.get("/s?c=sangcheng&lang=en")
		if !strings.Contains(r.Header.Get("Set-Cookie"), htmlpage.LangCookie+"=en") {
			t.Errorf("?lang=en set no cookie: %q", r.Header.Get("Set-Cookie"))
		}
	})
	t.Run("static", func(t *testing.T) {
		for _, p := range []string{"/s/static/pico.min.css", "/s/static/resident.css"} {
			if r := f.get(p); r.Code != 200 || !strings.HasPrefix(r.Header.Get("Content-Type"), "text/css") {
				t.Errorf("GET %s: %d %s", p, r.Code, r.Header.Get("Content-Type"))
			}
		}
	})
}

// filed submits a valid report for community and kiosk 5 s after getting
// the form and returns the redirect's location.
func (f *fixture) filed(query string, change func(map[string]string), files ...file) string {
	f.t.Helper()
	v := valid(f.form(query))
	if change != nil {
		change(v)
	}
	f.clock.Add(5 * time.Second)
	r := f.submit(v, files...)
	if r.Code != http.StatusSeeOther {
		f.t.Fatalf("submit: %d, want 303\n%s", r.Code, r.Body)
	}
	return r.Header.Get("Location")
}

func TestSubmitCreatesCase(t *testing.T) {
	f := newFixture(t, nil)
	loc := f.filed("c=sangcheng&k=k-sangcheng-01", func(v map[string]string) { v[fPhone] = "021-6438 1234" })
	cs := f.communityCases("sangcheng")
	if len(cs) != 1 {
		t.Fatalf("%d cases, want 1", len(cs))
	}
	c := cs[0]
	want := cases.Case{Source: "qrcode", Kiosk: "k-sangcheng-01", Community: "sangcheng", Street: "wuliqiao", District: "huangpu",
		Kind: "complaint", Category: "illegal_construction", Building: "12号", Unit: "3", Room: "501",
		Description: "楼顶在搭建彩钢板房", Phone: "02164381234", State: "received"}
	got := cases.Case{Source: c.Source, Kiosk: c.Kiosk, Community: c.Community, Street: c.Street, District: c.District,
		Kind: c.Kind, Category: c.Category, Building: c.Building, Unit: c.Unit, Room: c.Room,
		Description: c.Description, Phone: c.Phone, State: c.State}
	if got != want {
		t.Errorf("case\n got %+v\nwant %+v", got, want)
	}
	if !strings.Contains(c.Ticket, "-QR-") {
		t.Errorf("ticket %q is not a QR ticket", c.Ticket)
	}
	wantLoc := "/t/" + c.Ticket + "?" + url.Values{"key": {f.pages.followKey(c.Ticket)}, "new": {"1"}}.Encode()
	if loc != wantLoc {
		t.Errorf("redirect to %q, want %q", loc, wantLoc)
	}
	r := f.get(loc)
	for _, w := range []string{"已受理", c.Ticket, "请收藏本页或截图保存", "已受理，正在安排处置人员"} {
		if !strings.Contains(r.Body, w) {
			t.Errorf("ticket page lacks %q", w)
		}
	}
}

func TestValidation(t *testing.T) {
	f := newFixture(t, nil)
	big := strings.Repeat("很", protocol.MaxDescription+1)
	tests := []struct {
		name   string
		change func(map[string]string)
		files  []file
		want   string
	}{
		{"no kind", func(v map[string]string) { delete(v, fKind) }, nil, "请选择反映类型"},
		{"unknown kind", func(v map[string]string) { v[fKind] = "praise" }, nil, "请选择反映类型"},
		{"no category", func(v map[string]string) { v[fCategory] = "" }, nil, "请选择问题类别"},
		{"unknown category", func(v map[string]string) { v[fCategory] = "noise" }, nil, "请选择问题类别"},
		{"building too long", func(v map[string]string) { v[fBuilding] = strings.Repeat("楼", 17) }, nil, "每项最多 16 个字"},
		{"unit too long", func(v map[string]string) { v[fUnit] = strings.Repeat("1", 17) }, nil, "每项最多 16 个字"},
		{"room too long", func(v map[string]string) { v[fRoom] = strings.Repeat("1", 17) }, nil, "每项最多 16 个字"},
		{"no description", func(v map[string]string) { v[fDescription] = " \r\n " }, nil, "请填写具体情况"},
		{"description too long", func(v map[string]string) { v[fDescription] = big }, nil, "具体情况最多 1000 字，您写了 1001 字"},
		{"phone too short", func(v map[string]string) { v[fPhone] = "1380013800" }, nil, "电话号码格式不对"},
		{"phone with letters", func(v map[string]string) { v[fPhone] = "1380013800a" }, nil, "电话号码格式不对"},
		{"phone not mobile", func(v map[string]string) { v[fPhone] = "12800138000" }, nil, "电话号码格式不对"},
		{"too many photos", nil, []file{{"a.jpg", testJPEG(t, 8, 8, false)}, {"b.jpg", testJPEG(t, 8, 8, false)},
			{"c.jpg", testJPEG(t, 8, 8, false)}, {"d.jpg", testJPEG(t, 8, 8, false)}}, "最多只能上传 3 张照片"},
		{"photo not an image", nil, []file{{"notes.txt", []byte("just some text, not a picture")}}, "“notes.txt”不是可识别的图片"},
		{"photo corrupt", nil, []file{{"broken.jpg", testJPEG(t, 64, 64, false)[:200]}}, "“broken.jpg”不是可识别的图片"},
		{"photo too large", nil, []file{{"huge.jpg", bytes.Repeat([]byte{0xFF}, MaxPhotoBytes+1)}}, "照片“huge.jpg”太大"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := valid(f.form("c=sangcheng"))
			v[fDescription] = "门口堆放杂物 <b>"
			if tc.change != nil {
				tc.change(v)
			}
			f.clock.Add(5 * time.Second)
			r := f.submit(v, tc.files...)
			if r.Code != http.StatusBadRequest {
				t.Fatalf("status %d, want 400\n%s", r.Code, r.Body)
			}
			if !strings.Contains(r.Body, tc.want) {
				t.Errorf("page lacks %q\n%s", tc.want, r.Body)
			}
			// The values come back in the form.
			if d := v[fDescription]; len(d) < 3000 && !strings.Contains(r.Body, strings.ReplaceAll(d, "<b>", "&lt;b&gt;")) && strings.TrimSpace(d) != "" {
				t.Errorf("the description was not kept")
			}
			if !strings.Contains(r.Body, `value="`+v[fPhone]+`"`) {
				t.Errorf("the phone %q was not kept", v[fPhone])
			}
			h := hidden(r.Body)
			if h[fToken] != v[fToken] {
				t.Errorf("token changed from %q to %q", v[fToken], h[fToken])
			}
			if len(tc.files) > 0 && !strings.Contains(r.Body, "照片需要重新选择") {
				t.Errorf("no note to choose the photos again")
			}
			if n := len(f.communityCases("sangcheng")); n != 0 {
				t.Errorf("%d cases created", n)
			}
		})
	}
}

func TestNormalizePhone(t *testing.T) {
	tests := []struct {
		in, want string
		ok       bool
	}{
		{"", "", true},
		{"  ", "", true},
		{"13800138000", "13800138000", true},
		{"138 0013 8000", "13800138000", true},
		{"138-0013-8000", "13800138000", true},
		{"+86 138 0013 8000", "13800138000", true},
		{"8613800138000", "13800138000", true},
		{"19912345678", "19912345678", true},
		{"021-64381234", "02164381234", true},
		{"(021) 6438 1234", "02164381234", true},
		{"010-6512345", "0106512345", true},
		{"0571-87654321", "057187654321", true},
		{"64381234", "64381234", true},
		{"6438123", "6438123", true},
		{"12800138000", "", false},
		{"1380013800", "", false},
		{"138001380001", "", false},
		{"+1 415 555 0100", "", false},
		{"021-1234567", "", false},
		{"00-64381234", "", false},
		{"110", "", false},
		{"12345678", "", false},
		{"138OO138000", "", false},
		{"１３８００１３８０００", "", false},
		{"13800138000+", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.in, func(t *testing.T) {
			got, ok := normalizePhone(tc.in)
			if got != tc.want || ok != tc.ok {
				t.Errorf("normalizePhone(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
			}
			if ok && protocol.ValidPhone(got) != nil {
				t.Errorf("%q is not a valid protocol phone: %v", got, protocol.ValidPhone(got))
			}
		})
	}
}

func TestTampering(t *testing.T) {
	f := newFixture(t, nil)
	tests := []struct {
		name   string
		change func(map[string]string)
	}{
		{"signature", func(v map[string]string) { v[fSig] = "A" + v[fSig][1:] }},
		{"no signature", func(v map[string]string) { delete(v, fSig) }},
		{"community", func(v map[string]string) { v[fCommunity] = "ruiyi" }},
		{"kiosk", func(v map[string]string) { v[fKiosk] = "k-sangcheng-02" }},
		{"kiosk dropped", func(v map[string]string) { v[fKiosk] = "" }},
		{"token", func(v map[string]string) { v[fToken] = strings.Repeat("0", 32) }},
		{"token not hex", func(v map[string]string) { v[fToken] = strings.Repeat("z", 32) }},
		{"issue time", func(v map[string]string) { v[fIssued] = "1" }},
		{"issue time padded", func(v map[string]string) { v[fIssued] = "0" + v[fIssued] }},
		{"issue time not a number", func(v map[string]string) { v[fIssued] = "yesterday" }},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			v := valid(f.form("c=sangcheng&k=k-sangcheng-01"))
			tc.change(v)
			f.clock.Add(5 * time.Second)
			r := f.submit(v)
			if r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "表单无效或已被修改") {
				t.Errorf("status %d, want 400 with 表单无效\n%s", r.Code, r.Body)
			}
		})
	}
	if n := len(f.communityCases("sangcheng")) + len(f.communityCases("ruiyi")); n != 0 {
		t.Errorf("%d cases created", n)
	}
	t.Run("other secret", func(t *testing.T) {
		other, err := New(Config{Cases: f.cases, Store: f.st, Tree: f.tree, Secret: bytes.Repeat([]byte("x"), 32), Photo: normalizePhoto})
		if err != nil {
			t.Fatal(err)
		}
		tok := other.newToken("sangcheng", "", f.clock.Now())
		if _, ok := f.pages.tokenOf(map[string]string{fCommunity: tok.Community, fKiosk: tok.Kiosk, fToken: tok.ID,
			fIssued: "1", fSig: tok.Sig}); ok {
			t.Error("a token of another secret was accepted")
		}
	})
	t.Run("not multipart", func(t *testing.T) {
		r := f.postForm("/s", map[string]string{"c": "sangcheng"})
		if r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "无法识别") {
			t.Errorf("status %d\n%s", r.Code, r.Body)
		}
	})
}

func TestAntiSpam(t *testing.T) {
	f := newFixture(t, nil)
	t.Run("too fast, then in time", func(t *testing.T) {
		v := valid(f.form("c=sangcheng"))
		f.clock.Add(MinFillTime - time.Second)
		r := f.submit(v)
		if r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "提交太快了") {
			t.Fatalf("status %d, want 400 提交太快了\n%s", r.Code, r.Body)
		}
		if n := len(f.communityCases("sangcheng")); n != 0 {
			t.Fatalf("%d cases after a too fast submission", n)
		}
		f.clock.Add(2 * time.Second)
		if r := f.submit(valid(hidden(r.Body))); r.Code != http.StatusSeeOther {
			t.Fatalf("the same form later: %d, want 303\n%s", r.Code, r.Body)
		}
	})
	t.Run("too old, renewed", func(t *testing.T) {
		v := valid(f.form("c=ruiyi&k=k-ruiyi-01"))
		v[fDescription] = "绿地被占用"
		f.clock.Add(MaxFormAge + time.Minute)
		r := f.submit(v)
		if r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "表单已超过 24 小时") || !strings.Contains(r.Body, "绿地被占用") {
			t.Fatalf("status %d, want 400 表单已超过 24 小时 with the values kept\n%s", r.Code, r.Body)
		}
		h := hidden(r.Body)
		if h[fToken] == v[fToken] || h[fKiosk] != "k-ruiyi-01" {
			t.Fatalf("renewed form: token %q (was %q), kiosk %q", h[fToken], v[fToken], h[fKiosk])
		}
		f.clock.Add(MinFillTime)
		v2 := valid(h)
		if r := f.submit(v2); r.Code != http.StatusSeeOther {
			t.Fatalf("the renewed form: %d, want 303\n%s", r.Code, r.Body)
		}
		if n := len(f.communityCases("ruiyi")); n != 1 {
			t.Fatalf("%d cases, want 1", n)
		}
	})
	t.Run("honeypot", func(t *testing.T) {
		v := valid(f.form("c=sangcheng"))
		v[fHoneypot] = "http://spam.example"
		f.clock.Add(10 * time.Second)
		before := len(f.communityCases("sangcheng"))
		r := f.submit(v)
		if r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "请勿填写") {
			t.Fatalf("status %d, want 400\n%s", r.Code, r.Body)
		}
		if n := len(f.communityCases("sangcheng")); n != before {
			t.Fatalf("a case was created despite the honeypot")
		}
	})
	t.Run("honeypot hidden by a class", func(t *testing.T) {
		r := f.get("/s?c=sangcheng")
		if !strings.Contains(r.Body, `<div class="hp" aria-hidden="true">`) {
			t.Fatalf("no honeypot in a hidden block")
		}
		css := f.get("/s/static/resident.css")
		if !strings.Contains(css.Body, ".hp {") {
			t.Fatal("resident.css does not hide .hp")
		}
	})
}

func TestRateLimit(t *testing.T) {
	f := newFixture(t, nil)
	// The fixture's clock drives the limiters.
	f.pages.cfg.Limiter = ratelimit.New(DefaultPerMinute, DefaultBurst, DefaultGlobalPerMinute, DefaultGlobalBurst, f.clock.Now)
	f.pages.cfg.Attempts = ratelimit.New(DefaultAttemptsPerMinute, DefaultAttemptBurst,
		DefaultGlobalAttemptsPerMinute, DefaultGlobalAttemptBurst, f.clock.Now)
	submit := f.submit
	// A resident correcting mistakes is not turned away: more tries than
	// the submission burst all come back as the form to correct.
	bad := valid(f.form("c=sangcheng"))
	f.clock.Add(5 * time.Second)
	bad[fPhone] = "bad"
	for i := range DefaultBurst + 2 {
		if r := submit(bad); r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "楼顶在搭建彩钢板房") {
			t.Fatalf("mistake %d: %d, want 400 with the text kept\n%s", i, r.Code, r.Body)
		}
	}
	// Right forms count: a burst of them is filed, the next is shown back
	// with what was typed and nothing is stored.
	forms := make([]map[string]string, DefaultBurst+1)
	for i := range forms {
		forms[i] = valid(f.form("c=sangcheng"))
	}
	f.clock.Add(time.Minute) // the submission bucket is full again, the forms old enough
	for i := range DefaultBurst {
		if r := submit(forms[i]); r.Code != http.StatusSeeOther {
			t.Fatalf("submission %d: %d, want 303\n%s", i, r.Code, r.Body)
		}
	}
	over := forms[DefaultBurst]
	over[fDescription] = "第四份：垃圾箱满溢"
	r := submit(over)
	if r.Code != http.StatusTooManyRequests || !strings.Contains(r.Body, "提交太频繁了") ||
		!strings.Contains(r.Body, "第四份：垃圾箱满溢") || r.Header.Get("Retry-After") == "" {
		t.Fatalf("submission over the limit: %d (Retry-After %q), want 429 提交太频繁了 with the text kept\n%s",
			r.Code, r.Header.Get("Retry-After"), r.Body)
	}
	if n := len(f.communityCases("sangcheng")); n != DefaultBurst {
		t.Fatalf("%d cases stored, want %d", n, DefaultBurst)
	}
	if r := f.postForm("/t/261102-QR-0000000000/rate", map[string]string{"rating": "satisfied"}); r.Code == http.StatusTooManyRequests {
		t.Fatalf("a rating of an unknown ticket is a mistake, not a submission: %d", r.Code)
	}
	f.clock.Add(time.Minute / DefaultPerMinute)
	if r := submit(over); r.Code != http.StatusSeeOther {
		t.Fatalf("after waiting: %d, want 303\n%s", r.Code, r.Body)
	}
	// Attempts of any kind are bounded too: the clock stands still, so a
	// burst's worth of them empties the bucket whatever it held.
	var r2 reply
	for i := range DefaultAttemptBurst + 1 {
		r2 = f.submit(bad)
		if i == 0 && r2.Code != http.StatusBadRequest {
			t.Fatalf("first attempt: %d, want 400", r2.Code)
		}
	}
	if r2.Code != http.StatusTooManyRequests || !strings.Contains(r2.Body, "提交太频繁了") || r2.Header.Get("Retry-After") == "" {
		t.Fatalf("attempt over the limit: %d (Retry-After %q), want 429\n%s", r2.Code, r2.Header.Get("Retry-After"), r2.Body)
	}
	if r := f.postForm("/t/261102-QR-0000000000/rate", map[string]string{"rating": "satisfied"}); r.Code != http.StatusTooManyRequests {
		t.Fatalf("rating over the attempt limit: %d, want 429", r.Code)
	}
}

func TestSameFormTwice(t *testing.T) {
	f := newFixture(t, nil)
	photo := file{"p.jpg", testJPEG(t, 32, 24, false)}
	t.Run("sequential", func(t *testing.T) {
		v := valid(f.form("c=sangcheng&k=k-sangcheng-01"))
		f.clock.Add(5 * time.Second)
		first := f.submit(v, photo)
		f.clock.Add(time.Minute)
		second := f.submit(v, photo)
		if first.Code != http.StatusSeeOther || second.Code != http.StatusSeeOther {
			t.Fatalf("statuses %d, %d; want 303 twice", first.Code, second.Code)
		}
		if a, b := first.Header.Get("Location"), second.Header.Get("Location"); a != b {
			t.Errorf("locations differ: %q, %q", a, b)
		}
		cs := f.communityCases("sangcheng")
		if len(cs) != 1 {
			t.Fatalf("%d cases, want 1", len(cs))
		}
		checkReportPhotos(t, f, cs[0].ID, 1)
	})
	t.Run("concurrent", func(t *testing.T) {
		v := valid(f.form("c=ruiyi"))
		f.clock.Add(5 * time.Second)
		const n = 6
		locs := make([]string, n)
		codes := make([]int, n)
		var wg sync.WaitGroup
		for i := range n {
			body, ct := multipartBody(t, v, []file{photo})
			req, err := http.NewRequest(http.MethodPost, f.srv.URL+"/s", body)
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", ct)
			wg.Go(func() {
				resp, err := f.client.Do(req)
				if err != nil {
					t.Error(err)
					return
				}
				resp.Body.Close()
				codes[i], locs[i] = resp.StatusCode, resp.Header.Get("Location")
			})
		}
		wg.Wait()
		for i := range n {
			if codes[i] != http.StatusSeeOther || locs[i] != locs[0] {
				t.Errorf("submission %d: %d %q; want 303 %q", i, codes[i], locs[i], locs[0])
			}
		}
		cs := f.communityCases("ruiyi")
		if len(cs) != 1 {
			t.Fatalf("%d cases, want 1", len(cs))
		}
		checkReportPhotos(t, f, cs[0].ID, 1)
	})
	t.Run("photos of a retry stored once", func(t *testing.T) {
		// A first submission created the case but stopped before its
		// photos were stored: the retry stores them.
		v := valid(f.form("c=sangcheng&k=k-sangcheng-02"))
		tok, ok := f.pages.tokenOf(v)
		if !ok {
			t.Fatal("the form's token does not verify")
		}
		rep, errs := validate(v, Zh)
		if len(errs) > 0 {
			t.Fatal(errs)
		}
		c, err := f.pages.file(context.Background(), tok, "k-sangcheng-02", rep, nil)
		if err != nil {
			t.Fatal(err)
		}
		f.clock.Add(5 * time.Second)
		for range 2 {
			if r := f.submit(v, photo); r.Code != http.StatusSeeOther || !strings.Contains(r.Header.Get("Location"), c.Ticket) {
				t.Fatalf("retry: %d %q, want 303 to %s", r.Code, r.Header.Get("Location"), c.Ticket)
			}
		}
		checkReportPhotos(t, f, c.ID, 1)
	})
}

// checkReportPhotos checks that a case has one work record by the
// resident with n photos.
func checkReportPhotos(t *testing.T, f *fixture, caseID string, n int) {
	t.Helper()
	ws, err := f.cases.Work(context.Background(), caseID, cases.System)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || ws[0].Actor != cases.RoleResident || len(ws[0].Photos) != n {
		t.Fatalf("work records %+v; want one by the resident with %d photos", ws, n)
	}
}

func TestPhotoMetadataStripped(t *testing.T) {
	f := newFixture(t, nil)
	in := testJPEG(t, 2400, 1200, true)
	if !bytes.Contains(in, []byte(secretDescription)) || !bytes.Contains(in, []byte("Exif\x00\x00")) {
		t.Fatal("the test photo has no EXIF")
	}
	f.filed("c=sangcheng", nil, file{"IMG_0001.JPG", in}, file{"second.jpg", testJPEG(t, 40, 30, true)})
	cs := f.communityCases("sangcheng")
	if len(cs) != 1 {
		t.Fatalf("%d cases, want 1", len(cs))
	}
	ws, err := f.cases.Work(context.Background(), cs[0].ID, cases.System)
	if err != nil {
		t.Fatal(err)
	}
	if len(ws) != 1 || len(ws[0].Photos) != 2 {
		t.Fatalf("work records %+v, want one with 2 photos", ws)
	}
	for _, ref := range ws[0].Photos {
		p, err := f.cases.Photo(context.Background(), cs[0].ID, ref.SHA256, cases.System)
		if err != nil {
			t.Fatal(err)
		}
		for _, bad := range [][]byte{[]byte("Exif\x00\x00"), []byte(secretDescription), {0xFF, 0xE1}} {
			if bytes.Contains(p.JPEG, bad) {
				t.Errorf("stored photo %s contains %q", ref.SHA256, bad)
			}
		}
		if p.Width > 1600 || p.Height > 1600 {
			t.Errorf("stored photo is %dx%d, want resized to at most 1600", p.Width, p.Height)
		}
	}
}

func TestTicketPagePublic(t *testing.T) {
	f := newFixture(t, nil)
	loc := f.filed("c=sangcheng&k=k-sangcheng-01", func(v map[string]string) {
		v[fDescription] = "邻居张三在阳台违建"
		v[fPhone] = "13912345678"
	})
	c := f.communityCases("sangcheng")[0]
	u, err := url.Parse(loc)
	if err != nil {
		t.Fatal(err)
	}
	for name, path := range map[string]string{
		"without key": "/t/" + c.Ticket,
		"with key":    u.RequestURI(),
		"wrong key":   "/t/" + c.Ticket + "?key=" + strings.Repeat("A", 22),
	} {
		t.Run(name, func(t *testing.T) {
			r := f.get(path)
			if r.Code != 200 {
				t.Fatalf("status %d\n%s", r.Code, r.Body)
			}
			for _, secret := range []string{"张三", "13912345678", "5678", "违建", "12号", "501"} {
				if strings.Contains(r.Body, secret) {
					t.Errorf("the public page shows %q", secret)
				}
			}
			for _, w := range []string{c.Ticket, "桑城居委", "违法搭建", "受理"} {
				if !strings.Contains(r.Body, w) {
					t.Errorf("page lacks %q", w)
				}
			}
			if strings.Contains(r.Body, `id="due"`) {
				t.Error("a case not yet dispatched shows a deadline")
			}
			if r.Header.Get("Referrer-Policy") != "no-referrer" {
				t.Errorf("Referrer-Policy %q", r.Header.Get("Referrer-Policy"))
			}
		})
	}
	// Staff steps show without names or notes.
	if _, err := f.cases.Dispatch(context.Background(), c.ID, leader, officer.id, "请王队长处理"); err != nil {
		t.Fatal(err)
	}
	r := f.get("/t/" + c.Ticket)
	now, err := f.cases.Case(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	due := fmtTime(now.DueAt)
	for _, w := range []string{"派单", "已派单，执法队员即将处置", `id="due">` + due + " 前答复"} {
		if !strings.Contains(r.Body, w) {
			t.Errorf("page lacks %q", w)
		}
	}
	for _, secret := range []string{officer.id, leader.id, "王队长"} {
		if strings.Contains(r.Body, secret) {
			t.Errorf("the public page shows %q", secret)
		}
	}
	for name, path := range map[string]string{
		"unknown ticket":   "/t/261102-QR-ZZZZZZZZZZ",
		"malformed ticket": "/t/abc%20def",
		"lower case":       "/t/" + strings.ToLower(c.Ticket),
	} {
		t.Run(name, func(t *testing.T) {
			if r := f.get(path); r.Code != 404 || !strings.Contains(r.Body, "找不到这个工单号") {
				t.Errorf("status %d\n%s", r.Code, r.Body)
			}
		})
	}
}

func TestRating(t *testing.T) {
	f := newFixture(t, nil)
	loc := f.filed("c=sangcheng", nil)
	c := f.communityCases("sangcheng")[0]
	key := f.pages.followKey(c.Ticket)
	rate := func(key, rating string) reply {
		return f.postForm("/t/"+c.Ticket+"/rate", map[string]string{"key": key, "rating": rating})
	}
	if r := f.get(loc); strings.Contains(r.Body, `id="rate"`) {
		t.Fatal("a received case shows the rating form")
	}
	if r := rate(key, "satisfied"); r.Code != http.StatusConflict || !strings.Contains(r.Body, "不能评价") {
		t.Fatalf("rating a received case: %d, want 409\n%s", r.Code, r.Body)
	}
	f.answer(c.ID, "违建已于今日拆除。")
	if r := f.get("/t/" + c.Ticket); strings.Contains(r.Body, `id="rate"`) || !strings.Contains(r.Body, "违建已于今日拆除") ||
		!strings.Contains(r.Body, "评价需使用提交反映后获得的链接") {
		t.Fatalf("without the key: the form shows, or the answer or the note is missing\n%s", r.Body)
	}
	if r := f.get(loc); !strings.Contains(r.Body, `id="rate"`) || !strings.Contains(r.Body, "已答复，请您评价") {
		t.Fatalf("with the key: no rating form\n%s", r.Body)
	}
	for name, k := range map[string]string{"no key": "", "wrong key": strings.Repeat("A", 22), "key of another ticket": f.pages.followKey("261102-QR-0000000000")} {
		t.Run(name, func(t *testing.T) {
			if r := rate(k, "satisfied"); r.Code != http.StatusForbidden || !strings.Contains(r.Body, "评价链接无效") {
				t.Errorf("status %d, want 403\n%s", r.Code, r.Body)
			}
		})
	}
	if r := rate(key, "great"); r.Code != http.StatusBadRequest || !strings.Contains(r.Body, "请选择一项评价") {
		t.Fatalf("unknown rating: %d, want 400\n%s", r.Code, r.Body)
	}
	r := rate(key, "basically_satisfied")
	if r.Code != http.StatusSeeOther {
		t.Fatalf("rating: %d, want 303\n%s", r.Code, r.Body)
	}
	page := f.get(r.Header.Get("Location"))
	for _, w := range []string{"感谢您的评价", "基本满意", "已评价"} {
		if !strings.Contains(page.Body, w) {
			t.Errorf("page after rating lacks %q", w)
		}
	}
	if strings.Contains(page.Body, `id="rate"`) {
		t.Error("the rating form shows after rating")
	}
	if r := rate(key, "not_satisfied"); r.Code != http.StatusConflict {
		t.Fatalf("second rating: %d, want 409\n%s", r.Code, r.Body)
	}
	got, err := f.cases.Case(context.Background(), c.ID)
	if err != nil {
		t.Fatal(err)
	}
	if got.State != string(cases.StateRated) || got.Rating != string(cases.BasicallySatisfied) {
		t.Errorf("case %s rated %s, want rated basically_satisfied", got.State, got.Rating)
	}
	t.Run("not satisfied reopens", func(t *testing.T) {
		f.filed("c=ruiyi", nil)
		c := f.communityCases("ruiyi")[0]
		f.answer(c.ID, "已联系物业。")
		key := f.pages.followKey(c.Ticket)
		r := f.postForm("/t/"+c.Ticket+"/rate", map[string]string{"key": key, "rating": "not_satisfied"})
		if r.Code != http.StatusSeeOther {
			t.Fatalf("rating: %d\n%s", r.Code, r.Body)
		}
		page := f.get(r.Header.Get("Location"))
		for _, w := range []string{"不满意", "工单已重新处置", "正在处置", "重新处置"} {
			if !strings.Contains(page.Body, w) {
				t.Errorf("page lacks %q", w)
			}
		}
	})
}

func TestKioskTicket(t *testing.T) {
	f := newFixture(t, nil)
	ctx := context.Background()
	fb := protocol.Feedback{Ticket: "261102-K01-0007", Kiosk: "k-sangcheng-01", Kind: protocol.KindComplaint,
		Category: protocol.CatGreenSpace, Description: "草坪被占", Phone: "13700001111"}
	c, _, err := f.cases.FromFeedback(ctx, "fb-1", fb, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.answer(c.ID, "已恢复绿地。")
	key := f.pages.followKey(c.Ticket)
	r := f.get("/t/" + c.Ticket + "?key=" + key)
	if r.Code != 200 || !strings.Contains(r.Body, "请在终端上查询和评价") || strings.Contains(r.Body, `id="rate"`) ||
		strings.Contains(r.Body, "草坪被占") || strings.Contains(r.Body, "1111") {
		t.Fatalf("kiosk ticket page: %d\n%s", r.Code, r.Body)
	}
	if r := f.postForm("/t/"+c.Ticket+"/rate", map[string]string{"key": key, "rating": "satisfied"}); r.Code != http.StatusForbidden {
		t.Fatalf("rating a kiosk ticket here: %d, want 403", r.Code)
	}
}

func TestMergedTicket(t *testing.T) {
	f := newFixture(t, nil)
	f.filed("c=sangcheng", nil)
	f.filed("c=sangcheng", nil)
	cs := f.communityCases("sangcheng")
	if len(cs) != 2 {
		t.Fatalf("%d cases, want 2", len(cs))
	}
	target, merged := cs[0], cs[1]
	if _, err := f.cases.Merge(context.Background(), target.ID, []string{merged.ID}, leader, "同一违建"); err != nil {
		t.Fatal(err)
	}
	f.answer(target.ID, "已拆除。")
	key := f.pages.followKey(merged.Ticket)
	r := f.get("/t/" + merged.Ticket + "?key=" + key)
	if r.Code != 200 || !strings.Contains(r.Body, "合并办理") || !strings.Contains(r.Body, `href="/t/`+target.Ticket+`"`) ||
		strings.Contains(r.Body, `id="rate"`) || strings.Contains(r.Body, "同一违建") {
		t.Fatalf("merged ticket page: %d\n%s", r.Code, r.Body)
	}
	if r := f.postForm("/t/"+merged.Ticket+"/rate", map[string]string{"key": key, "rating": "satisfied"}); r.Code != http.StatusConflict {
		t.Fatalf("rating a merged case: %d, want 409", r.Code)
	}
}

func TestTicketPageEnglish(t *testing.T) {
	f := newFixture(t, nil)
	loc := f.filed("c=sangcheng", nil)
	r := f.get(loc + "&lang=en")
	for _, w := range []string{"Received", "Ticket", "Illegal construction", "中文"} {
		if !strings.Contains(r.Body, w) {
			t.Errorf("English page lacks %q", w)
		}
	}
	if strings.Contains(r.Body, "已受理") {
		t.Error("English page has Chinese state words")
	}
}
