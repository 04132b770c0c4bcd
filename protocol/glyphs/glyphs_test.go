package glyphs

import (
	"bytes"
	"errors"
	"os"
	"slices"
	"testing"
	"unicode/utf8"
)

func TestMissing(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want []rune
	}{
		{"empty", "", nil},
		{"ascii", "Hello, World! 0123456789 ~`{}|\\", nil},
		{"ascii layout", "one\ttwo\r\nthree\n", nil},
		{"gb2312", "关于开展违法搭建专项整治行动的通知", nil},
		{"gb2312 rarer", "黉蘖鼗龠", nil},
		{"chinese punctuation", "，。、；：？！“”‘’（）《》【】…—·", nil},
		{"full-width forms", "ＡＢＣ１２３％＋", nil},
		{"ideographic space", "通知\u3000正文", nil},
		{"extra name characters", "堃喆玥𬭊", nil},
		{"rare name character", "张燚同志", []rune{'燚'}},
		{"extension a", "䶮", []rune{'䶮'}},
		{"extension b", "𠀾", []rune{0x2003E}},
		{"emoji", "已处理😀", []rune{'😀'}},
		{"emoji with variation selector", "❤️", []rune{0x2764, 0xFE0F}},
		{"emoji with skin tone", "👍🏽", []rune{0x1F44D, 0x1F3FD}},
		{"precomposed latin", "Café", nil},
		{"combining mark", "Cafe\u0301", []rune{0x0301}},
		{"combining mark on a han character", "通\u20dd知", []rune{0x20DD}},
		{"zero width space", "a\u200bb", []rune{0x200B}},
		{"vertical tab and form feed", "a\vb\fc", []rune{'\v', '\f'}},
		{"nul", "a\x00b", []rune{0}},
		{"each once in order of appearance", "😀燚😀燚䶮", []rune{'😀', '燚', '䶮'}},
		{"invalid utf-8", "a\xffb\xfe", []rune{utf8.RuneError}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := Missing(tt.in)
			if !slices.Equal(got, tt.want) {
				t.Errorf("Missing(%q) = %q, want %q", tt.in, got, tt.want)
			}
			err := Check("body", tt.in)
			if (err == nil) != (len(tt.want) == 0) {
				t.Errorf("Check(%q) = %v, want an error iff %q is missing", tt.in, err, tt.want)
			}
		})
	}
}

func TestDrawable(t *testing.T) {
	for _, r := range []rune{'a', ' ', '\n', '\t', '\r', '中', '，', '。', '、', '堃', '①', '℃', '￥'} {
		if !Drawable(r) {
			t.Errorf("Drawable(%q) = false", r)
		}
	}
	for _, r := range []rune{0, '\v', 0x7F, '燚', '😀', 0x0301, 0xFE0F, utf8.RuneError, -1, utf8.MaxRune + 1} {
		if Drawable(r) {
			t.Errorf("Drawable(%q) = true", r)
		}
	}
}

func TestChars(t *testing.T) {
	cs := Chars()
	if len(cs) < 7000 {
		t.Fatalf("%d characters, want the GB2312 set and more", len(cs))
	}
	if !slices.IsSorted(cs) || len(slices.Compact(slices.Clone(cs))) != len(cs) {
		t.Error("the list is not in code point order without duplicates (run packaging/fonts/subset.sh)")
	}
	for _, r := range cs {
		if !Drawable(r) {
			t.Fatalf("%q is listed but not drawable", r)
		}
	}
}

func TestError(t *testing.T) {
	tests := []struct {
		name string
		in   string
		want string
	}{
		{"characters", "燚😀", `title: the kiosk font cannot draw "燚", "😀"`},
		{"marks and controls by code point", "e\u0301\u200b\x00", `title: the kiosk font cannot draw U+0301, U+200B, U+0000`},
		{"invalid utf-8", "\xff", `title: the kiosk font cannot draw U+FFFD`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Check("title", tt.in)
			var ge *Error
			if !errors.As(err, &ge) {
				t.Fatalf("Check(%q) = %v, want an *Error", tt.in, err)
			}
			if err.Error() != tt.want {
				t.Errorf("Check(%q) = %q, want %q", tt.in, err.Error(), tt.want)
			}
		})
	}
}

func TestName(t *testing.T) {
	for r, want := range map[rune]string{'燚': "燚", '😀': "😀", 'a': "a", 0x0301: "U+0301", 0xFE0F: "U+FE0F",
		0x200B: "U+200B", '\v': "U+000B", 0x3000: "U+3000", 0x1F3FD: "🏽", 0x2003E: "𠀾"} {
		if got := Name(r); got != want {
			t.Errorf("Name(%U) = %q, want %q", r, got, want)
		}
	}
}

func FuzzMissing(f *testing.F) {
	data, err := os.ReadFile("testdata/seeds.txt")
	if err != nil {
		f.Fatal(err)
	}
	for line := range bytes.SplitSeq(data, []byte("\n")) {
		f.Add(string(line))
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := Missing(s)
		var in []rune
		for _, r := range s {
			in = append(in, r)
		}
		for i, r := range got {
			if !slices.Contains(in, r) {
				t.Errorf("Missing(%q) returned %U, not in the input", s, r)
			}
			if slices.Contains(got[:i], r) {
				t.Errorf("Missing(%q) returned %U twice", s, r)
			}
			if Drawable(r) {
				t.Errorf("Missing(%q) returned drawable %U", s, r)
			}
		}
		for _, r := range in {
			if !Drawable(r) && !slices.Contains(got, r) {
				t.Errorf("Missing(%q) left out %U", s, r)
			}
		}
		// First appearance order.
		var order []rune
		for _, r := range in {
			if slices.Contains(got, r) && !slices.Contains(order, r) {
				order = append(order, r)
			}
		}
		if !slices.Equal(order, got) {
			t.Errorf("Missing(%q) = %q, not in order of first appearance %q", s, got, order)
		}
		if err := Check("f", s); (err == nil) != (len(got) == 0) {
			t.Errorf("Check(%q) = %v with %d missing", s, err, len(got))
		}
	})
}
