package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"
)

// Minimum heights of touch targets, in pixels at scale 1.
const (
	buttonHeight = 128
	keyHeight    = 150
	ctaHeight    = 260
)

// tapArea makes any content tappable.
type tapArea struct {
	widget.BaseWidget
	content fyne.CanvasObject
	onTap   func()
	label   string // for tests and accessibility
}

func newTapArea(label string, content fyne.CanvasObject, onTap func()) *tapArea {
	t := &tapArea{content: content, onTap: onTap, label: label}
	t.ExtendBaseWidget(t)
	return t
}

func (t *tapArea) CreateRenderer() fyne.WidgetRenderer {
	return widget.NewSimpleRenderer(t.content)
}

// Tapped implements fyne.Tappable.
func (t *tapArea) Tapped(*fyne.PointEvent) {
	if t.onTap != nil {
		t.onTap()
	}
}

// minHeight wraps obj so it is at least h tall.
func minHeight(obj fyne.CanvasObject, h float32) fyne.CanvasObject {
	r := canvas.NewRectangle(color.Transparent)
	r.SetMinSize(fyne.NewSize(0, h))
	return container.NewStack(r, obj)
}

// button is a big button of at least h pixels height.
func button(label string, imp widget.Importance, h float32, onTap func()) fyne.CanvasObject {
	b := widget.NewButton(label, onTap)
	b.Importance = imp
	return minHeight(b, h)
}

// key is a numeric keypad key: a large bold label on a rounded button
// colour, so elderly residents can read the digits from arm's length.
func key(label string, size float32, onTap func()) fyne.CanvasObject {
	r := canvas.NewRectangle(colorButton)
	r.CornerRadius = 12
	r.SetMinSize(fyne.NewSize(0, keyHeight))
	return newTapArea(label, container.NewStack(r, container.NewCenter(colored(label, colorForeground, size, true, fyne.TextAlignCenter))), onTap)
}

// text is a paragraph wrapped the way Chinese is typeset (see wrapText).
func text(s string, size fyne.ThemeSizeName, bold bool) *wrapText {
	return newWrapText(s, size, bold, "")
}

// colored is a line of text in a given colour and size.
func colored(s string, c color.Color, size float32, bold bool, align fyne.TextAlign) *canvas.Text {
	t := canvas.NewText(s, c)
	t.TextSize = size
	t.TextStyle.Bold = bold
	t.Alignment = align
	return t
}

// panel puts content on a coloured, rounded background with padding.
func panel(bg color.Color, content fyne.CanvasObject) fyne.CanvasObject {
	r := canvas.NewRectangle(bg)
	r.CornerRadius = 16
	return container.NewStack(r, container.NewPadded(container.NewPadded(content)))
}

// banner is a full-width coloured bar with content.
func banner(bg color.Color, content fyne.CanvasObject) fyne.CanvasObject {
	return container.NewStack(canvas.NewRectangle(bg), container.NewPadded(container.NewPadded(content)))
}

// bigButton is a large coloured call-to-action with a title and a hint.
func bigButton(label, title, hint string, bg, fg color.Color, onTap func()) fyne.CanvasObject {
	r := canvas.NewRectangle(bg)
	r.CornerRadius = 24
	r.SetMinSize(fyne.NewSize(0, ctaHeight))
	body := container.NewVBox(
		layout.NewSpacer(),
		colored(title, fg, sizeCTA, true, fyne.TextAlignCenter),
		colored(hint, fg, sizeCTAHint, false, fyne.TextAlignCenter),
		layout.NewSpacer(),
	)
	return newTapArea(label, container.NewStack(r, body), onTap)
}

// gap is vertical empty space.
func gap(h float32) fyne.CanvasObject {
	r := canvas.NewRectangle(color.Transparent)
	r.SetMinSize(fyne.NewSize(0, h))
	return r
}

// pad is theme padding around obj.
func pad(obj fyne.CanvasObject) fyne.CanvasObject {
	return container.New(layout.NewCustomPaddedLayout(theme.Padding()*3, theme.Padding()*3, theme.Padding()*4, theme.Padding()*4), obj)
}
