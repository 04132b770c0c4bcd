package console

import (
	"context"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/protocol"
)

// TestNoticeComposerGlyphs: a notice with characters the kiosk fonts cannot
// draw is refused on the composer with the characters named in Chinese,
// everything typed is filled in again, and nothing is published; the same
// notice rephrased is published.
func TestNoticeComposerGlyphs(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	admin := f.login("huangpu")
	form := url.Values{"title": {"致张燚同志的感谢信"}, "body": {"欢迎参加开放日😀\n地点：桑城居委"}, "category": {"event"},
		"priority": {"important"}, "from": {"2026-11-03T09:00"}, "until": {"2026-11-10T18:00"},
		"target": {"sangcheng", "ruiyi"}}
	res := admin.submit("/notices", form)
	if res.code != http.StatusBadRequest {
		t.Fatalf("POST /notices: %d %q %s, want 400", res.code, res.header.Get("Location"), errorText(res.body))
	}
	body := html.UnescapeString(res.body)
	for _, want := range []string{
		`id="form-error">以下字符在自助终端上无法显示：燚 😀。`,
		`name="title" value="致张燚同志的感谢信"`,
		">欢迎参加开放日😀\n地点：桑城居委</textarea>",
		`<option value="event" selected>`,
		`<option value="important" selected>`,
		`name="from" value="2026-11-03T09:00"`,
		`name="until" value="2026-11-10T18:00"`,
		`value="sangcheng" checked>`,
		`value="ruiyi" checked>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the refused composer lacks %q", want)
		}
	}
	for _, unwanted := range []string{`value="wuliqiao" checked`, `<option value="publicity" selected>`} {
		if strings.Contains(body, unwanted) {
			t.Errorf("the refused composer has %q, which was not picked", unwanted)
		}
	}
	if ns, err := f.st.Notices(context.Background()); err != nil || len(ns) != 0 {
		t.Fatalf("%d notices stored after a refusal (%v)", len(ns), err)
	}

	form.Set("title", "致王堃同志的感谢信") // 堃 is one of the extra characters of the fonts
	form.Set("body", "欢迎参加开放日！\n地点：桑城居委")
	res = admin.submit("/notices", form)
	if res.code != http.StatusSeeOther || !strings.HasPrefix(res.header.Get("Location"), "/notices/") {
		t.Fatalf("POST /notices rephrased: %d %q %s", res.code, res.header.Get("Location"), errorText(res.body))
	}
	ns, err := f.st.Notices(context.Background())
	if err != nil || len(ns) != 1 || ns[0].Title != "致王堃同志的感谢信" {
		t.Fatalf("stored notices %+v (%v), want the rephrased one", ns, err)
	}
}

// TestNoticeComposerGlyphsEnglish: the refusal in the console's second
// language names the characters by code point where they cannot stand
// alone.
func TestNoticeComposerGlyphsEnglish(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	admin := f.login("huangpu")
	if res := admin.get("/lang?to=en&back=/notices"); res.code != http.StatusSeeOther {
		t.Fatalf("GET /lang: %d", res.code)
	}
	res := admin.submit("/notices", url.Values{"title": {"Cafe\u0301 燚"}, "category": {"event"}, "priority": {"normal"},
		"target": {"sangcheng"}})
	want := "The kiosks cannot display these characters: U+0301 燚. Please rephrase"
	if res.code != http.StatusBadRequest || !strings.Contains(html.UnescapeString(res.body), want) {
		t.Errorf("POST /notices: %d, want 400 with %q; %s", res.code, want, errorText(res.body))
	}
}

var answerBox = regexp.MustCompile(`(?s)<textarea name="note"[^>]*>([^<]*)</textarea>`)

// TestAnswerGlyphs: an answer that a kiosk's case board would show is
// refused when the kiosk fonts cannot draw it, on the desk page and on the
// phone, with the text kept; answers shown only on phones are not.
func TestAnswerGlyphs(t *testing.T) {
	ctx := context.Background()
	where := protocol.Where{Building: "3号"}
	tests := []struct {
		name   string
		source cases.Source
		kiosk  string
		merge  bool // a kiosk case of the same building is merged into it first
		user   string
		phone  bool // answered on the officer's phone page
		answer string
		want   int
	}{
		{"kiosk case", cases.SourceKiosk, "k-sangcheng-01", false, "squad", false, "已责令恢复原状😀", http.StatusBadRequest},
		{"kiosk case on the phone", cases.SourceKiosk, "k-sangcheng-01", false, "officer-a", true, "张燚同志：已处理", http.StatusBadRequest},
		{"kiosk case, drawable answer", cases.SourceKiosk, "k-sangcheng-01", false, "squad", false, "王堃同志：已责令恢复原状。", http.StatusSeeOther},
		{"城管码 case from a poster", cases.SourceQRCode, "", false, "squad", false, "已责令恢复原状😀", http.StatusSeeOther},
		{"城管码 case scanned at a kiosk", cases.SourceQRCode, "k-sangcheng-02", false, "squad", false, "已处理😀", http.StatusBadRequest},
		{"hotline case", cases.SourceHotline, "", false, "officer-a", true, "已处理😀", http.StatusSeeOther},
		{"hotline case with a kiosk case merged in", cases.SourceHotline, "", true, "squad", false, "已处理😀", http.StatusBadRequest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t, false)
			f.standardAccounts()
			squad := f.principal("squad")
			c := f.newCase("squad", cases.NewCase{Source: tc.source, Kiosk: tc.kiosk, Community: "sangcheng", Where: where})
			if tc.merge {
				k := f.newCase("squad", cases.NewCase{Source: cases.SourceKiosk, Kiosk: "k-sangcheng-01", Where: where})
				if _, err := f.cases.Merge(ctx, c.ID, []string{k.ID}, squad, ""); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := f.cases.Dispatch(ctx, c.ID, squad, f.accounts["officer-a"].ID, ""); err != nil {
				t.Fatal(err)
			}
			if _, err := f.cases.Apply(ctx, c.ID, cases.ActionAccept, f.principal("officer-a"), ""); err != nil {
				t.Fatal(err)
			}
			form := url.Values{"action": {"answer"}, "note": {tc.answer}}
			if tc.phone {
				form.Set("back", "/m/cases/"+c.ID)
			}
			res := f.login(tc.user).submit("/cases/"+c.ID+"/action", form)
			if res.code != tc.want {
				t.Fatalf("answer: %d %q, want %d; %s", res.code, res.header.Get("Location"), tc.want, errorText(res.body))
			}
			state := f.caseNow(c.ID).State
			if tc.want == http.StatusSeeOther {
				if state != string(cases.StateAnswered) {
					t.Errorf("state %s after an accepted answer", state)
				}
				return
			}
			if state != string(cases.StateInProgress) {
				t.Errorf("state %s after a refused answer, want in_progress", state)
			}
			body := html.UnescapeString(res.body)
			if !strings.Contains(body, `id="form-error">以下字符在自助终端上无法显示：`) {
				t.Errorf("the refused answer form shows no error: %s", errorText(res.body))
			}
			kept := false
			for _, m := range answerBox.FindAllStringSubmatch(body, -1) {
				kept = kept || m[1] == tc.answer
			}
			if !kept {
				t.Errorf("the answer %q is not filled in again", tc.answer)
			}
			phonePage := strings.Contains(body, `name="back" value="/m/cases/`+c.ID+`"`)
			if phonePage != tc.phone {
				t.Errorf("refusal shown on the phone page: %v, want %v", phonePage, tc.phone)
			}
		})
	}
}
