// Package glyphs is the set of characters a kiosk can draw: exactly those
// of the fonts embedded in the kiosk UI (kiosk/ui/fonts/NotoSansSC-*.otf,
// subsets of Noto Sans CJK SC). A character outside the set shows on every
// public kiosk as an empty box ("tofu"), so the hub refuses text that
// reaches a kiosk's screen (notice titles and bodies, answers to cases on a
// kiosk's case board) when it holds such a character, and the kiosk's tests
// check that every string of its own message table is in the set.
//
// The set is the list in chars.txt, embedded here: of ASCII, Latin-1,
// general and CJK punctuation, full-width forms, every character of
// GB2312, the extra characters of packaging/fonts/extra-chars.txt (rare
// name characters such as 堃 and 喆) and every non-ASCII character of the
// kiosk's sources, those that both fonts have a glyph for. chars.txt and
// the two font files are written together by packaging/fonts/subset.sh,
// which is the only way to change either: add characters to
// extra-chars.txt, run the script, and commit chars.txt with the fonts.
// kiosk/ui's tests check that every character of the list is in both
// fonts' character maps, and that every string of the kiosk's message
// table is in the list.
//
// Tab, line feed and carriage return are not drawn as glyphs (the kiosk
// lays them out) and count as drawable.
package glyphs

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"unicode"
)

// chars is the character list of the embedded fonts, in code point order,
// 64 characters a line; the line feeds are not part of it.
//
//go:embed chars.txt
var chars string

// set is the character list as a set, built on first use.
var set = sync.OnceValue(func() map[rune]struct{} {
	m := make(map[rune]struct{}, len(chars)/2)
	for _, r := range chars {
		if r != '\n' {
			m[r] = struct{}{}
		}
	}
	return m
})

// Chars returns every character of the set, in code point order (without
// the layout characters tab, line feed and carriage return).
func Chars() []rune {
	out := make([]rune, 0, len(set()))
	for _, r := range chars {
		if r != '\n' {
			out = append(out, r)
		}
	}
	return out
}

// Drawable reports whether the kiosk fonts can draw r (tab, line feed and
// carriage return count as drawable).
func Drawable(r rune) bool {
	switch r {
	case '\t', '\n', '\r':
		return true
	}
	_, ok := set()[r]
	return ok
}

// Missing returns the distinct characters of s the kiosk fonts cannot
// draw, in order of first appearance; nil if there are none. A byte of s
// that is not valid UTF-8 counts as U+FFFD, which is not drawable.
func Missing(s string) []rune {
	var out []rune
	for _, r := range s {
		if !Drawable(r) && !containsRune(out, r) {
			out = append(out, r)
		}
	}
	return out
}

func containsRune(rs []rune, r rune) bool {
	for _, x := range rs {
		if x == r {
			return true
		}
	}
	return false
}

// Name is how messages show r: the character itself, or U+XXXX for a
// character that cannot stand on its own or would not be seen (combining
// marks, control, format and space characters).
func Name(r rune) string {
	if unicode.IsGraphic(r) && !unicode.Is(unicode.M, r) && !unicode.IsSpace(r) && r != unicode.ReplacementChar {
		return string(r)
	}
	return fmt.Sprintf("U+%04X", r)
}

// Error is the error of Check: a field holds characters the kiosk fonts
// cannot draw.
type Error struct {
	Field   string // the field's name as the caller gave it, e.g. "title"
	Missing []rune // as Missing returns them
}

// Error reads like `title: the kiosk font cannot draw "䶮", "😀", U+0301`.
func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s: the kiosk font cannot draw ", e.Field)
	for i, r := range e.Missing {
		if i > 0 {
			b.WriteString(", ")
		}
		if n := Name(r); n == string(r) {
			b.WriteString(strconv.Quote(n))
		} else {
			b.WriteString(n)
		}
	}
	return b.String()
}

// Check returns an *Error naming the characters of s the kiosk fonts
// cannot draw, or nil if they can draw all of it.
func Check(field, s string) error {
	if m := Missing(s); len(m) > 0 {
		return &Error{Field: field, Missing: m}
	}
	return nil
}
