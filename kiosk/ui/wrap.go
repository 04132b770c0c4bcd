package ui

import (
	"strings"
	"unicode"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Line breaking for Chinese text. Fyne wraps only at spaces and, when a
// line has none (Chinese never does), cuts it wherever it is full, so a
// notice's "，" or "。" could begin a line. wrapText breaks lines the way
// Chinese is typeset (W3C "Requirements for Chinese Text Layout", 标点避头尾):
// between any two Han characters, never inside a Latin word or number,
// never with closing punctuation at the start of a line or opening
// punctuation at its end.

// noLineStart are characters a line must not begin with: closing and
// pausing punctuation, and the second half of the two-em dash and the
// ellipsis, so those are never split either.
const noLineStart = "，。、；：？！）》」』】〕〉〗〙〛”’…—～·％‰" + ",.;:?!)]}%'\""

// noLineEnd are characters a line must not end with: opening punctuation
// and currency signs.
const noLineEnd = "（《「『【〔〈〖〘〚“‘￥" + "([{$¥"

// inWord reports whether r belongs to a word that must not be split: Latin
// letters, digits and the like (Han characters are words of their own).
func inWord(r rune) bool {
	if unicode.Is(unicode.Han, r) {
		return false
	}
	return unicode.IsLetter(r) || unicode.IsDigit(r)
}

// canBreak reports whether a line may end after a and the next begin with b.
func canBreak(a, b rune) bool {
	switch {
	case unicode.IsSpace(b) || unicode.IsSpace(a):
		return true
	case strings.ContainsRune(noLineStart, b), strings.ContainsRune(noLineEnd, a):
		return false
	case inWord(a) && inWord(b):
		return false
	}
	return true
}

// breakLines splits s into lines no wider than width, measuring with
// width(r) per rune. Newlines in s end lines; spaces at a break are
// dropped. A line with no legal break that fits (a very long Latin word)
// is cut where it is full, and a rune wider than width gets a line of its
// own. A width of zero or less (not laid out yet) breaks only at newlines.
func breakLines(s string, width float32, runeWidth func(rune) float32) []string {
	if width <= 0 {
		return strings.Split(s, "\n")
	}
	var lines []string
	for _, para := range strings.Split(s, "\n") {
		r := []rune(para)
		if len(r) == 0 {
			lines = append(lines, "")
			continue
		}
		for start := 0; start < len(r); {
			end, w := start, float32(0)
			for end < len(r) && w+runeWidth(r[end]) <= width {
				w += runeWidth(r[end])
				end++
			}
			if end == len(r) {
				lines = append(lines, strings.TrimRightFunc(string(r[start:]), unicode.IsSpace))
				break
			}
			if end == start {
				end = start + 1 // wider than the line: a line of its own
			}
			if end == len(r) {
				lines = append(lines, string(r[start:]))
				break
			}
			brk := end
			for brk > start && !canBreak(r[brk-1], r[brk]) {
				brk--
			}
			if brk == start {
				brk = end // no legal break on this line: cut where it is full
			}
			lines = append(lines, strings.TrimRightFunc(string(r[start:brk]), unicode.IsSpace))
			start = brk
			for start < len(r) && r[start] == ' ' {
				start++
			}
		}
	}
	return lines
}

// wrapText is a paragraph of text broken into lines by breakLines for the
// width it is given. It shows its lines through a RichText with wrapping
// off, and breaks them again whenever its width changes.
type wrapText struct {
	widget.BaseWidget
	text  string
	seg   *widget.TextSegment
	rt    *widget.RichText
	width float32 // the width the lines were broken for
	// widest is the width of the text's widest rune, measured once.
	widest float32
}

// newWrapText is text in the theme size size, bold or not, drawn in the
// theme colour colour ("" for the foreground).
func newWrapText(s string, size fyne.ThemeSizeName, bold bool, colour fyne.ThemeColorName) *wrapText {
	seg := &widget.TextSegment{Text: s, Style: widget.RichTextStyle{
		ColorName: colour, SizeName: size, TextStyle: fyne.TextStyle{Bold: bold},
	}}
	w := &wrapText{text: s, seg: seg, rt: widget.NewRichText(seg)}
	w.ExtendBaseWidget(w)
	return w
}

// CreateRenderer shows the RichText.
func (w *wrapText) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(w.rt)
}

// MinSize is the height of the lines broken for the current width; its
// width is that of the widest rune, so the text never widens its container.
func (w *wrapText) MinSize() fyne.Size {
	w.ExtendBaseWidget(w)
	m := w.rt.MinSize()
	pad := w.Theme().Size(theme.SizeNameInnerPadding)
	if w.widest == 0 {
		w.widest = w.widestRune()
	}
	if widest := w.widest + 2*pad; m.Width > widest {
		m.Width = widest
	}
	return m
}

// Resize breaks the lines again when the width changes.
func (w *wrapText) Resize(size fyne.Size) {
	if size.Width != w.width {
		w.width = size.Width
		w.rewrap()
	}
	w.BaseWidget.Resize(size)
}

// Text is the text as given, without the line breaks.
func (w *wrapText) Text() string { return w.text }

// rewrap breaks the text for the current width.
func (w *wrapText) rewrap() {
	pad := w.Theme().Size(theme.SizeNameInnerPadding)
	measure := w.runeWidth()
	lines := breakLines(w.text, w.width-2*pad, measure)
	if joined := strings.Join(lines, "\n"); joined != w.seg.Text {
		w.seg.Text = joined
		w.rt.Refresh()
		w.Refresh()
	}
}

// runeWidth measures single runes in the text's size and style, caching
// each rune's width.
func (w *wrapText) runeWidth() func(rune) float32 {
	size := w.Theme().Size(w.seg.Style.SizeName)
	style := w.seg.Style.TextStyle
	cache := map[rune]float32{}
	return func(r rune) float32 {
		if v, ok := cache[r]; ok {
			return v
		}
		v := fyne.MeasureText(string(r), size, style).Width
		cache[r] = v
		return v
	}
}

// widestRune is the width of the widest rune of the text.
func (w *wrapText) widestRune() float32 {
	measure := w.runeWidth()
	var max float32
	for _, r := range w.text {
		if v := measure(r); v > max {
			max = v
		}
	}
	return max
}
