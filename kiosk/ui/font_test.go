package ui

import (
	"testing"

	"golang.org/x/image/font/sfnt"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/protocol/glyphs"
)

// TestFontCoversMessages checks that every character of the message table
// is in the embedded fonts' character list (protocol/glyphs, written by
// packaging/fonts/subset.sh together with the fonts).
func TestFontCoversMessages(t *testing.T) {
	for _, k := range i18n.Keys() {
		txt, _ := i18n.Lookup(k)
		if m := glyphs.Missing(txt.Zh + txt.En + "√—…·"); len(m) > 0 {
			t.Errorf("%q of message %q is not in the embedded font; add it to packaging/fonts/extra-chars.txt and run packaging/fonts/subset.sh", m, k)
		}
	}
	if len(fontRegular) < 1<<20 || len(fontBold) < 1<<20 {
		t.Errorf("embedded fonts look truncated: %d and %d bytes", len(fontRegular), len(fontBold))
	}
}

// TestFontsHaveEveryListedChar checks that the character list the hub
// checks text against (protocol/glyphs) and the embedded fonts are in
// step: every listed character has a glyph in both fonts' character maps.
func TestFontsHaveEveryListedChar(t *testing.T) {
	chars := glyphs.Chars()
	for _, font := range []struct {
		name string
		data []byte
	}{{"NotoSansSC-Regular.otf", fontRegular}, {"NotoSansSC-Bold.otf", fontBold}} {
		f, err := sfnt.Parse(font.data)
		if err != nil {
			t.Fatalf("%s: %v", font.name, err)
		}
		var buf sfnt.Buffer
		missing := 0
		for _, r := range chars {
			g, err := f.GlyphIndex(&buf, r)
			if err != nil {
				t.Fatalf("%s: glyph of %U: %v", font.name, r, err)
			}
			if g == 0 {
				if missing++; missing <= 20 {
					t.Errorf("%s has no glyph for %U %q of protocol/glyphs/chars.txt; run packaging/fonts/subset.sh", font.name, r, r)
				}
			}
		}
		if missing > 20 {
			t.Errorf("%s: %d listed characters without a glyph in all", font.name, missing)
		}
	}
	// The check can fail: a character outside the list has no glyph.
	f, err := sfnt.Parse(fontRegular)
	if err != nil {
		t.Fatal(err)
	}
	// U+71DA, a rare name character, written as an escape: subset.sh
	// adds every character written in the kiosk's sources to the fonts.
	if g, err := f.GlyphIndex(&sfnt.Buffer{}, '\u71da'); err != nil || g != 0 {
		t.Errorf("NotoSansSC-Regular.otf has glyph %d (%v) for U+71DA, which is not in the list", g, err)
	}
}
