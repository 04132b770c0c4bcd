package ui

import (
	"image/color"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/kiosk/screen"
)

// setup is the screen a technician sees while the device is not enrolled:
// the claim code grouped 4-4-4, the keypad and the Enrol button. There is
// no feedback button: the device cannot store feedback before enrolment.
func (u *UI) setup(v screen.View) fyne.CanvasObject {
	top := container.NewVBox(u.header(v), pad(container.NewVBox(
		text(u.t(v, i18n.SetupTitle), theme.SizeNameHeadingText, true),
		text(u.t(v, i18n.SetupHint), theme.SizeNameSubHeadingText, false),
	)))
	content := container.NewVBox(panel(colorCard, claimCells(v.ClaimCode)))
	if v.Err != "" {
		msg := newWrapText(u.t(v, v.Err), theme.SizeNameSubHeadingText, true, theme.ColorNameError)
		content.Add(msg)
		if v.ErrDetail != "" {
			// The agent's own reason, for the technician.
			content.Add(text(excerpt(v.ErrDetail, maxReasonRunes), theme.SizeNameText, false))
		}
	}
	content.Add(gap(16))
	content.Add(u.keys(v))

	label := u.t(v, i18n.Enrol)
	if v.Submitting {
		label = u.t(v, i18n.Enrolling)
	}
	enrol := widget.NewButton(label, u.enrol)
	enrol.Importance = widget.HighImportance
	if !v.CanEnrol {
		enrol.Disable()
	}
	// The centre scrolls rather than grows, so a long reason never pushes
	// the Enrol button off the screen.
	return container.NewBorder(top, pad(minHeight(enrol, 160)), nil, nil, pad(container.NewVScroll(content)))
}

// maxReasonRunes is how much of the agent's reason the setup screen shows.
const maxReasonRunes = 300

// Claim-code cells, in pixels at scale 1: twelve fit a 1080 px screen.
const (
	claimCellWidth  = 64
	claimCellHeight = 96
	claimGroupGap   = 24
)

// claimCells draws a claim code formatted by screen.FormatClaimCode as one
// cell per digit, empty cells for the digits still to type, and a gap
// where the format has a space, so the technician sees the 4-4-4 groups and
// how many digits are left.
func claimCells(formatted string) fyne.CanvasObject {
	row := container.NewHBox()
	for _, r := range formatted {
		if r == ' ' {
			spacer := canvas.NewRectangle(color.Transparent)
			spacer.SetMinSize(fyne.NewSize(claimGroupGap, 0))
			row.Add(spacer)
			continue
		}
		box := canvas.NewRectangle(colorWhite)
		box.CornerRadius = 8
		box.StrokeColor = colorMuted
		box.StrokeWidth = 2
		box.SetMinSize(fyne.NewSize(claimCellWidth, claimCellHeight))
		digit := ""
		if string(r) != screen.ClaimPlaceholder {
			digit = string(r)
		}
		row.Add(container.NewStack(box, container.NewCenter(colored(digit, colorForeground, sizeClaimDigit, true, fyne.TextAlignCenter))))
	}
	return container.NewCenter(row)
}
