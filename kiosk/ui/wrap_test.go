package ui

import (
	"reflect"
	"strings"
	"testing"
	"unicode"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/test"
)

// unitWidth measures every rune as 1, a Han character or full-width
// punctuation as 2, like a monospaced CJK font.
func unitWidth(r rune) float32 {
	if unicode.Is(unicode.Han, r) || strings.ContainsRune("，。、；：？！（）《》「」“”…—", r) {
		return 2
	}
	return 1
}

func TestBreakLines(t *testing.T) {
	tests := []struct {
		name  string
		in    string
		width float32
		want  []string
	}{
		{"fits", "经现场核查", 10, []string{"经现场核查"}},
		{"between Han characters", "经现场核查属实", 10, []string{"经现场核查", "属实"}},
		// Fyne cut after 搭建 and began the next line with "，".
		{"no comma at line start", "违法搭建，已责令", 8, []string{"违法搭", "建，已责", "令"}},
		{"no full stop at line start", "拆除。逾期", 4, []string{"拆", "除。", "逾期"}},
		{"no opening bracket at line end", "请见《通知》", 6, []string{"请见", "《通", "知》"}},
		{"no split ellipsis", "等等……", 6, []string{"等", "等……"}},
		{"number kept whole", "于3月10日前", 6, []string{"于3月", "10日前"}},
		{"English at spaces", "Please tell us", 8, []string{"Please", "tell us"}},
		{"word longer than a line is cut", "abcdefghij", 4, []string{"abcd", "efgh", "ij"}},
		{"newline kept", "第一行\n第二行", 20, []string{"第一行", "第二行"}},
		{"empty paragraph kept", "甲\n\n乙", 20, []string{"甲", "", "乙"}},
		{"rune wider than the line", "经现", 1, []string{"经", "现"}},
		{"not laid out yet", "经现场核查\n属实", 0, []string{"经现场核查", "属实"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := breakLines(tc.in, tc.width, unitWidth); !reflect.DeepEqual(got, tc.want) {
				t.Errorf("breakLines(%q, %v) = %q, want %q", tc.in, tc.width, got, tc.want)
			}
		})
	}
}

// FuzzBreakLines checks breakLines on any text: nothing but spaces at
// breaks is lost, every line fits unless it is one rune, and a line starts
// with closing punctuation only when the line before could not give it a
// character (it was one rune long).
func FuzzBreakLines(f *testing.F) {
	for _, s := range []string{"经现场核查，楼顶彩钢板房系违法搭建，已责令当事人于3月10日前自行拆除。", "Please tell us what happened.", "《通知》……——", "a\nb"} {
		f.Add(s, uint8(8))
	}
	f.Fuzz(func(t *testing.T, s string, w uint8) {
		if !utf8.ValidString(s) || len(s) > 2000 {
			return
		}
		width := float32(w%40 + 1)
		lines := breakLines(s, width, unitWidth)
		strip := func(x string) string {
			return strings.Map(func(r rune) rune {
				if unicode.IsSpace(r) {
					return -1
				}
				return r
			}, x)
		}
		if got, want := strip(strings.Join(lines, "")), strip(s); got != want {
			t.Fatalf("lines %q lost text of %q", lines, s)
		}
		for i, l := range lines {
			var sum float32
			for _, r := range l {
				sum += unitWidth(r)
			}
			if sum > width && utf8.RuneCountInString(l) > 1 {
				t.Fatalf("line %d %q is %v wide, more than %v", i, l, sum, width)
			}
		}
	})
}

// TestWrapTextBreaksForItsWidth lays out a wrapText at two widths: its
// lines follow the width, none starts with "，", and its minimum height
// grows with the number of lines.
func TestWrapTextBreaksForItsWidth(t *testing.T) {
	test.NewTempApp(t).Settings().SetTheme(Theme{})
	w := newWrapText("经现场核查，楼顶彩钢板房系违法搭建，已责令当事人于3月10日前自行拆除，逾期将依法强制拆除。", "text", false, "")
	w.Resize(fyne.NewSize(3000, 100))
	one := w.seg.Text
	if strings.Contains(one, "\n") {
		t.Fatalf("at 3000 wide the text broke: %q", one)
	}
	h1 := w.MinSize().Height
	w.Resize(fyne.NewSize(200, 100))
	lines := strings.Split(w.seg.Text, "\n")
	if len(lines) < 3 {
		t.Fatalf("at 200 wide only %d lines: %q", len(lines), lines)
	}
	for _, l := range lines {
		if strings.HasPrefix(l, "，") || strings.HasPrefix(l, "。") {
			t.Errorf("line starts with punctuation: %q", l)
		}
	}
	if h := w.MinSize().Height; h <= h1 {
		t.Errorf("min height %v at 200 wide, not more than %v on one line", h, h1)
	}
	if w.Text() != "经现场核查，楼顶彩钢板房系违法搭建，已责令当事人于3月10日前自行拆除，逾期将依法强制拆除。" {
		t.Errorf("Text() = %q", w.Text())
	}
}
