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
	"github.com/shequ/shequ/protocol"
)

// errorText is a model message in red, or nothing.
func (u *UI) errorText(v screen.View) fyne.CanvasObject {
	if v.Err == "" {
		return gap(0)
	}
	msg := newWrapText(u.t(v, v.Err), theme.SizeNameSubHeadingText, true, theme.ColorNameError)
	return msg
}

// lookup is the query-code keypad.
func (u *UI) lookup(v screen.View) fyne.CanvasObject {
	shown := v.Keypad
	if shown == "" {
		shown = "—"
	}
	display := panel(colorCard, colored(shown, colorForeground, sizeTicket*0.8, true, fyne.TextAlignCenter))
	top := container.NewVBox(display, text(u.t(v, i18n.LookupHint), theme.SizeNameText, false), u.errorText(v))
	label := u.t(v, i18n.LookupButton)
	if v.Submitting {
		label = u.t(v, i18n.LookingUp)
	}
	find := widget.NewButton(label, u.lookUp)
	find.Importance = widget.HighImportance
	if v.Submitting {
		find.Disable()
	}
	return u.step(v, i18n.StepLookup, container.NewVBox(top, gap(16), u.keys(v)),
		u.backButton(v), minHeight(find, buttonHeight))
}

// caseResult shows a case's state and answer, and the rating buttons while
// it is rateable.
func (u *UI) caseResult(v screen.View) fyne.CanvasObject {
	c := v.Case
	stateColor := colorPrimary
	if c.State == protocol.CaseAnswered || c.State == protocol.CaseRated || c.State == protocol.CaseClosed {
		stateColor = colorSuccess
	}
	head := container.NewVBox(
		colored(c.Ticket+" · "+u.t(v, i18n.CategoryKey(c.Category)), colorMuted, 30, false, fyne.TextAlignLeading),
		colored(u.t(v, i18n.CaseState), colorMuted, 30, false, fyne.TextAlignLeading),
		colored(u.t(v, i18n.CaseStateKey(c.State)), stateColor, 72, true, fyne.TextAlignLeading),
	)
	body := container.NewVBox(panel(colorCard, head))
	if v.CaseStale {
		body.Add(banner(colorWarning, colored(u.t(v, i18n.CaseStale), colorForeground, 30, true, fyne.TextAlignCenter)))
	}
	answer := container.NewVBox(colored(u.t(v, i18n.CaseAnswer), colorMuted, 30, false, fyne.TextAlignLeading))
	if c.Answer == "" {
		answer.Add(text(u.t(v, i18n.CaseNoAnswer), theme.SizeNameSubHeadingText, false))
	} else {
		answer.Add(text(c.Answer, theme.SizeNameHeadingText, false))
		if !c.AnsweredAt.IsZero() {
			answer.Add(colored(u.t(v, i18n.CaseAnsweredAt)+" "+c.AnsweredAt.In(shanghai).Format("2006-01-02 15:04"),
				colorMuted, 30, false, fyne.TextAlignLeading))
		}
	}
	body.Add(panel(colorCard, answer))
	if c.Rating != "" {
		body.Add(colored(u.t(v, i18n.CaseYourRating)+"："+u.t(v, i18n.RatingKey(c.Rating)), colorForeground, 44, true, fyne.TextAlignCenter))
	}
	if c.Rateable {
		body.Add(text(u.t(v, i18n.CaseRatePrompt), theme.SizeNameHeadingText, true))
		row := container.NewGridWithColumns(len(protocol.Ratings))
		for _, r := range protocol.Ratings {
			row.Add(u.ratingTile(v, r))
		}
		body.Add(row)
	}
	body.Add(u.errorText(v))
	return u.step(v, i18n.CaseTitle, container.NewVScroll(body), u.backButton(v))
}

// ratingColors are the rating tiles' backgrounds: green for satisfied,
// blue for basically satisfied, red for not satisfied (which reopens the
// case), so the three read apart at a glance.
var ratingColors = map[protocol.Rating]color.Color{
	protocol.RatingSatisfied:          colorSuccess,
	protocol.RatingBasicallySatisfied: colorPrimary,
	protocol.RatingNotSatisfied:       colorUrgent,
}

// ratingTile is one rating choice: a tall coloured tile with the rating in
// large white type (elderly residents read it from arm's length). While a
// rating is being sent the tiles are grey and do nothing.
func (u *UI) ratingTile(v screen.View, r protocol.Rating) fyne.CanvasObject {
	label := u.t(v, i18n.RatingKey(r))
	bg, onTap := ratingColors[r], func() { u.rate(r) }
	if v.Submitting {
		bg, onTap = colorButton, nil
	}
	rect := canvas.NewRectangle(bg)
	rect.CornerRadius = 16
	rect.SetMinSize(fyne.NewSize(0, 200))
	size := float32(64)
	if v.Lang == i18n.En {
		size = 30 // "Basically satisfied" must fit a third of the width
	}
	t := colored(label, colorWhite, size, true, fyne.TextAlignCenter)
	return newTapArea(label, container.NewStack(rect, container.NewCenter(t)), onTap)
}

// rated thanks the resident for a rating.
func (u *UI) rated(v screen.View) fyne.CanvasObject {
	body := container.NewVBox(
		gap(48),
		colored(u.t(v, i18n.RateThanks), colorPrimary, 72, true, fyne.TextAlignCenter),
		gap(24),
		colored(u.t(v, i18n.CaseYourRating)+"："+u.t(v, i18n.RatingKey(v.Rating)), colorForeground, 48, true, fyne.TextAlignCenter),
		gap(24),
		text(u.t(v, i18n.RateThanksHint), theme.SizeNameSubHeadingText, false),
	)
	done := button(u.t(v, i18n.Done), widget.HighImportance, 160, func() { u.model.Back(u.now()) })
	return u.step(v, i18n.CaseTitle, body, done)
}

// checkinScreen shows the staff check-in QR code.
func (u *UI) checkinScreen(v screen.View) fyne.CanvasObject {
	body := container.NewVBox(text(u.t(v, i18n.CheckinHint), theme.SizeNameSubHeadingText, false), gap(24))
	if v.HasCheckin {
		body.Add(container.NewCenter(u.qrBlock(v.Checkin.URL,
			u.t(v, i18n.CheckinExpires)+" "+v.Checkin.Expires.In(shanghai).Format("15:04:05"), 640)))
	} else {
		body.Add(colored(u.t(v, i18n.CheckinLoading), colorMuted, 44, false, fyne.TextAlignCenter))
	}
	body.Add(u.errorText(v))
	return u.step(v, i18n.CheckinTitle, body, u.backButton(v))
}
