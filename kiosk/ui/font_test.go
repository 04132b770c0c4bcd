package ui

import (
	"os"
	"strings"
	"testing"

	"github.com/shequ/shequ/kiosk/i18n"
)

// TestFontCoversMessages checks that every character of the message table is
// in the embedded fonts' character list (fonts/chars.txt, written by
// packaging/fonts/subset.sh together with the fonts).
func TestFontCoversMessages(t *testing.T) {
	data, err := os.ReadFile("fonts/chars.txt")
	if err != nil {
		t.Fatal(err)
	}
	have := map[rune]bool{}
	for _, r := range string(data) {
		have[r] = true
	}
	for _, k := range i18n.Keys() {
		txt, _ := i18n.Lookup(k)
		for _, r := range txt.Zh + txt.En + "√—…·" {
			if r > 0x7F && !have[r] && !strings.ContainsRune(" \n", r) {
				t.Errorf("%q of message %q is not in the embedded font; run packaging/fonts/subset.sh", r, k)
			}
		}
	}
	if len(fontRegular) < 1<<20 || len(fontBold) < 1<<20 {
		t.Errorf("embedded fonts look truncated: %d and %d bytes", len(fontRegular), len(fontBold))
	}
}
