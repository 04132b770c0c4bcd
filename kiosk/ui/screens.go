package ui

import (
	"fmt"
	"strings"
	"time"
	"unicode/utf8"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	"fyne.io/fyne/v2/widget"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

// shanghai is the zone dates are shown in: the kiosks stand in Shanghai.
var shanghai = time.FixedZone("CST", 8*3600)

// ticketFullSize is the longest ticket drawn at sizeTicket.
const ticketFullSize = 16

// cardBodyRunes is how much of a notice's body the home card shows.
const cardBodyRunes = 120

// build returns the whole window content for a view.
func (u *UI) build(v screen.View) fyne.CanvasObject {
	switch v.Screen {
	case screen.Urgent:
		return u.urgent(v)
	case screen.NoticeDetail:
		return u.noticeDetail(v)
	case screen.Kind:
		return u.kind(v)
	case screen.Category:
		return u.category(v)
	case screen.Building, screen.Unit, screen.Room, screen.Phone:
		return u.keypad(v)
	case screen.Description:
		return u.description(v)
	case screen.Confirm:
		return u.confirm(v)
	case screen.Receipt:
		return u.receipt(v)
	case screen.Setup:
		return u.setup(v)
	case screen.Attract:
		return u.attract(v)
	case screen.Lookup:
		return u.lookup(v)
	case screen.CaseResult:
		return u.caseResult(v)
	case screen.Rated:
		return u.rated(v)
	case screen.Checkin:
		return u.checkinScreen(v)
	}
	return u.home(v)
}

// header is the blue top bar: station name and the language toggle.
func (u *UI) header(v screen.View) fyne.CanvasObject {
	name := v.Station.Name
	if name == "" {
		name = u.t(v, i18n.StationUnknown)
	}
	toggle := widget.NewButton(u.t(v, i18n.LangToggle), func() { u.model.ToggleLang(u.now()) })
	toggle.Importance = widget.MediumImportance
	return banner(colorPrimary, container.NewBorder(nil, nil, nil, minHeight(toggle, 96),
		container.NewVBox(layout.NewSpacer(), colored(name, colorWhite, 48, true, fyne.TextAlignLeading), layout.NewSpacer())))
}

func (u *UI) home(v screen.View) fyne.CanvasObject {
	top := []fyne.CanvasObject{u.header(v)}
	if v.Connecting {
		top = append(top, banner(colorWarning, colored(u.t(v, i18n.Connecting), colorForeground, 40, true, fyne.TextAlignCenter)))
	}
	cta := bigButton(u.t(v, i18n.GiveFeedback), u.t(v, i18n.GiveFeedback), u.t(v, i18n.GiveFeedbackHint),
		colorPrimary, colorWhite, func() { u.model.StartFeedback(u.now()) })

	progress := button(u.t(v, i18n.CheckProgress)+" · "+u.t(v, i18n.CheckProgressHint), widget.MediumImportance, buttonHeight,
		func() { u.model.StartLookup(u.now()) })
	staff := button(u.t(v, i18n.StaffCheckin), widget.LowImportance, 72, func() {
		u.model.StartCheckin(u.now())
		u.loadCheckin()
	})
	bottom := container.NewVBox(cta, progress, container.NewHBox(layout.NewSpacer(), staff))

	middle := container.NewBorder(nil, nil, u.stationQR(v), nil, u.stationInfo(v))
	center := container.NewVBox(minHeight(u.noticeCard(v), 560), gap(24), middle)
	// The centre scrolls rather than grows: long station details or
	// notice text must never push the call to action off the screen.
	return container.NewBorder(container.NewVBox(top...), pad(bottom), nil, nil, pad(container.NewVScroll(center)))
}

// noticeCard is the rotating notice; tapping it opens the full text.
func (u *UI) noticeCard(v screen.View) fyne.CanvasObject {
	if !v.HasNotice {
		msg := i18n.NoNotices
		if v.Connecting {
			msg = i18n.Connecting
		}
		return panel(colorCard, container.NewVBox(layout.NewSpacer(),
			colored(u.t(v, msg), colorMuted, 44, false, fyne.TextAlignCenter), layout.NewSpacer()))
	}
	n := v.Notice
	tag := u.t(v, i18n.NoticeCategoryKey(n.Category))
	if n.Priority != protocol.PriorityNormal {
		tag = u.t(v, i18n.PriorityKey(n.Priority)) + " · " + tag
	}
	tagColor := colorPrimary
	if n.Priority == protocol.PriorityImportant {
		tagColor = colorUrgent
	}
	count := colored(fmt.Sprintf("%d / %d", v.NoticeIndex+1, v.NoticeCount), colorMuted, 32, false, fyne.TextAlignTrailing)
	body := container.NewVBox(
		container.NewBorder(nil, nil, colored(tag, tagColor, 34, true, fyne.TextAlignLeading), count),
		text(n.Title, theme.SizeNameHeadingText, true),
		text(excerpt(n.Body, cardBodyRunes), theme.SizeNameText, false),
		layout.NewSpacer(),
		colored(u.t(v, i18n.NoticeTapHint)+" ›", colorPrimary, 34, false, fyne.TextAlignTrailing),
	)
	return newTapArea(n.Title, panel(colorCard, body), func() { u.model.OpenNotice(u.now()) })
}

func excerpt(s string, n int) string {
	s = strings.Join(strings.Fields(s), " ")
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	return string([]rune(s)[:n]) + "…"
}

// stationQR is the 城管码 with its caption; nothing until the agent holds a
// station (the code names its community).
func (u *UI) stationQR(v screen.View) fyne.CanvasObject {
	if v.Connecting || v.Station.Community == "" {
		return gap(0)
	}
	return u.qrBlock(v.StationQR, u.t(v, i18n.QRCaption), 360)
}

func (u *UI) qrBlock(contents, caption string, size float32) fyne.CanvasObject {
	img := canvas.NewImageFromImage(u.qr(contents))
	img.FillMode = canvas.ImageFillContain
	img.ScaleMode = canvas.ImageScalePixels
	img.SetMinSize(fyne.NewSize(size, size))
	return container.NewVBox(img, colored(caption, colorForeground, 34, false, fyne.TextAlignCenter))
}

// stationInfo lists hours, contact, duty officer and address.
func (u *UI) stationInfo(v screen.View) fyne.CanvasObject {
	box := container.NewVBox()
	for _, row := range []struct {
		key   i18n.Key
		value string
	}{
		{i18n.Hours, v.Station.Hours},
		{i18n.Contact, v.Station.Contact},
		{i18n.DutyOfficer, v.Station.DutyOfficer},
		{i18n.Address, v.Station.Address},
	} {
		if row.value == "" {
			continue
		}
		box.Add(colored(u.t(v, row.key), colorMuted, 30, false, fyne.TextAlignLeading))
		box.Add(text(row.value, theme.SizeNameSubHeadingText, true))
	}
	return container.NewPadded(box)
}

// urgent is the red takeover screen.
func (u *UI) urgent(v screen.View) fyne.CanvasObject {
	n := v.Notice
	white := func(s string, size fyne.ThemeSizeName, bold bool) *wrapText {
		return newWrapText(s, size, bold, theme.ColorNameForegroundOnError)
	}
	toggle := widget.NewButton(u.t(v, i18n.LangToggle), func() { u.model.ToggleLang(u.now()) })
	top := container.NewBorder(nil, nil, nil, minHeight(toggle, 96),
		colored(u.t(v, i18n.UrgentTitle), colorWhite, 72, true, fyne.TextAlignLeading))
	body := container.NewVBox(white(n.Title, theme.SizeNameHeadingText, true), gap(16), white(n.Body, theme.SizeNameSubHeadingText, false))
	cta := bigButton(u.t(v, i18n.GiveFeedback), u.t(v, i18n.GiveFeedback), u.t(v, i18n.GiveFeedbackHint),
		colorWhite, colorUrgent, func() { u.model.StartFeedback(u.now()) })
	content := container.NewBorder(pad(top), pad(cta), nil, nil, pad(container.NewVScroll(body)))
	return container.NewStack(canvas.NewRectangle(colorUrgent), content)
}

// noticeDetail shows one notice in full.
func (u *UI) noticeDetail(v screen.View) fyne.CanvasObject {
	n := v.Notice
	meta := u.t(v, i18n.NoticeCategoryKey(n.Category)) + " · " + n.ValidFrom.In(shanghai).Format("2006-01-02")
	body := container.NewVBox(
		colored(meta, colorMuted, 32, false, fyne.TextAlignLeading),
		text(n.Title, theme.SizeNameHeadingText, true),
		text(n.Body, theme.SizeNameSubHeadingText, false),
	)
	back := button(u.t(v, i18n.Back), widget.HighImportance, buttonHeight, func() { u.model.Back(u.now()) })
	return container.NewBorder(u.header(v), pad(back), nil, nil, pad(container.NewVScroll(body)))
}

// step frames one feedback step: header, question, content, navigation.
func (u *UI) step(v screen.View, title i18n.Key, content fyne.CanvasObject, nav ...fyne.CanvasObject) fyne.CanvasObject {
	top := container.NewVBox(u.header(v), pad(text(u.t(v, title), theme.SizeNameHeadingText, true)))
	return container.NewBorder(top, pad(container.NewGridWithColumns(len(nav), nav...)), nil, nil, pad(content))
}

func (u *UI) backButton(v screen.View) fyne.CanvasObject {
	return button(u.t(v, i18n.Back), widget.MediumImportance, buttonHeight, func() { u.model.Back(u.now()) })
}

func (u *UI) cancelButton(v screen.View) fyne.CanvasObject {
	return button(u.t(v, i18n.Cancel), widget.DangerImportance, buttonHeight, func() { u.model.Cancel(u.now()) })
}

func (u *UI) nextButton(v screen.View) fyne.CanvasObject {
	return button(u.t(v, i18n.Next), widget.HighImportance, buttonHeight, func() { u.model.Next(u.now()) })
}

func (u *UI) kind(v screen.View) fyne.CanvasObject {
	grid := container.NewGridWithColumns(2)
	for _, k := range protocol.FeedbackKinds {
		grid.Add(button(u.t(v, i18n.KindKey(k)), widget.HighImportance, 300, func() { u.model.ChooseKind(k, u.now()) }))
	}
	return u.step(v, i18n.StepKind, container.NewVBox(grid), u.backButton(v), u.cancelButton(v))
}

func (u *UI) category(v screen.View) fyne.CanvasObject {
	list := container.NewVBox()
	for _, c := range protocol.FeedbackCategories {
		imp := widget.MediumImportance
		if c == v.Form.Category {
			imp = widget.HighImportance
		}
		list.Add(button(u.t(v, i18n.CategoryKey(c)), imp, 136, func() { u.model.ChooseCategory(c, u.now()) }))
	}
	return u.step(v, i18n.StepCategory, container.NewVScroll(list), u.backButton(v), u.cancelButton(v))
}

var keypadTitles = map[screen.Screen]i18n.Key{
	screen.Building: i18n.StepBuilding,
	screen.Unit:     i18n.StepUnit,
	screen.Room:     i18n.StepRoom,
	screen.Phone:    i18n.StepPhone,
}

var keypadUnits = map[screen.Screen]i18n.Key{
	screen.Building: i18n.UnitBuilding,
	screen.Unit:     i18n.UnitUnit,
	screen.Room:     i18n.UnitRoom,
}

// keypad is a numeric entry step: building, unit, room or phone.
func (u *UI) keypad(v screen.View) fyne.CanvasObject {
	shown := v.Keypad
	if shown == "" {
		shown = "—"
	}
	display := container.NewHBox(layout.NewSpacer(), colored(shown, colorForeground, sizeTicket, true, fyne.TextAlignCenter))
	if unit, ok := keypadUnits[v.Screen]; ok {
		display.Add(container.NewVBox(layout.NewSpacer(), colored(u.t(v, unit), colorMuted, 44, false, fyne.TextAlignLeading), gap(12)))
	}
	display.Add(layout.NewSpacer())
	top := container.NewVBox(panel(colorCard, display))
	if v.Screen == screen.Phone {
		top.Add(text(u.t(v, i18n.PhoneHint), theme.SizeNameText, false))
	}
	if v.Err != "" {
		msg := newWrapText(u.t(v, v.Err), theme.SizeNameSubHeadingText, true, theme.ColorNameError)
		top.Add(msg)
	}
	skip := button(u.t(v, i18n.Skip), widget.MediumImportance, buttonHeight, func() { u.model.Skip(u.now()) })
	return u.step(v, keypadTitles[v.Screen], container.NewVBox(top, gap(16), u.keys(v)),
		u.backButton(v), u.cancelButton(v), skip, u.nextButton(v))
}

// keys is the numeric keypad: 1-9, then Clear, 0, Delete.
func (u *UI) keys(v screen.View) fyne.CanvasObject {
	keys := container.NewGridWithColumns(3)
	for _, d := range "123456789" {
		keys.Add(key(string(d), sizeKeyDigit, func() { u.model.Digit(d, u.now()) }))
	}
	keys.Add(key(u.t(v, i18n.Clear), sizeKeyWord, func() { u.model.Clear(u.now()) }))
	keys.Add(key("0", sizeKeyDigit, func() { u.model.Digit('0', u.now()) }))
	keys.Add(key(u.t(v, i18n.Delete), sizeKeyWord, func() { u.model.Delete(u.now()) }))
	return keys
}

func (u *UI) description(v screen.View) fyne.CanvasObject {
	selected := map[i18n.Key]bool{}
	for _, k := range v.Form.Phrases {
		selected[k] = true
	}
	list := container.NewVBox()
	for _, k := range v.Phrases {
		label, imp := u.t(v, k), widget.MediumImportance
		if selected[k] {
			label, imp = "√ "+label, widget.HighImportance
		}
		list.Add(button(label, imp, buttonHeight, func() { u.model.TogglePhrase(k, u.now()) }))
	}
	entry := widget.NewMultiLineEntry()
	entry.Wrapping = fyne.TextWrapWord
	entry.SetPlaceHolder(u.t(v, i18n.FreeTextHint))
	entry.SetText(v.Form.FreeText)
	entry.SetMinRowsVisible(2)
	entry.OnChanged = func(s string) { u.model.SetFreeText(s, u.now()) }
	list.Add(gap(8))
	list.Add(entry)
	return u.step(v, i18n.StepDescription, container.NewVScroll(list), u.backButton(v), u.cancelButton(v), u.nextButton(v))
}

// where formats a location for the summary.
func (u *UI) where(v screen.View) string {
	var parts []string
	for _, f := range []struct {
		value string
		unit  i18n.Key
	}{{v.Form.Where.Building, i18n.UnitBuilding}, {v.Form.Where.Unit, i18n.UnitUnit}, {v.Form.Where.Room, i18n.UnitRoom}} {
		if f.value == "" {
			continue
		}
		if v.Lang == i18n.En {
			parts = append(parts, u.t(v, f.unit)+" "+f.value)
		} else {
			parts = append(parts, f.value+u.t(v, f.unit))
		}
	}
	if v.Lang == i18n.En {
		return strings.Join(parts, ", ")
	}
	return strings.Join(parts, " ")
}

func (u *UI) confirm(v screen.View) fyne.CanvasObject {
	orNone := func(s string) string {
		if s == "" {
			return u.t(v, i18n.NotGiven)
		}
		return s
	}
	req := v.Form.Request()
	rows := container.NewVBox()
	for _, r := range []struct {
		key   i18n.Key
		value string
	}{
		{i18n.FieldKind, u.t(v, i18n.KindKey(v.Form.Kind))},
		{i18n.FieldCategory, u.t(v, i18n.CategoryKey(v.Form.Category))},
		{i18n.FieldWhere, orNone(u.where(v))},
		{i18n.FieldPhone, orNone(v.Form.Phone)},
		{i18n.FieldDescription, orNone(u.description0(v, req.Description))},
	} {
		rows.Add(colored(u.t(v, r.key), colorMuted, 30, false, fyne.TextAlignLeading))
		rows.Add(text(r.value, theme.SizeNameSubHeadingText, true))
	}
	content := container.NewVBox(panel(colorCard, rows))
	if v.Err != "" {
		msg := newWrapText(u.t(v, v.Err), theme.SizeNameSubHeadingText, true, theme.ColorNameError)
		content.Add(msg)
	}
	label := u.t(v, i18n.Submit)
	if v.Submitting {
		label = u.t(v, i18n.Submitting)
	}
	submit := widget.NewButton(label, u.submit)
	submit.Importance = widget.HighImportance
	if v.Submitting {
		submit.Disable()
	}
	content.Add(gap(16))
	content.Add(minHeight(submit, 180))
	return u.step(v, i18n.StepConfirm, container.NewVScroll(content), u.backButton(v), u.cancelButton(v))
}

// description0 shows the description in the display language: the selected
// phrases translated, then the free text (what is sent is always Chinese).
func (u *UI) description0(v screen.View, sent string) string {
	if v.Lang == i18n.Zh {
		return sent
	}
	var parts []string
	for _, k := range v.Form.Phrases {
		parts = append(parts, u.t(v, k))
	}
	if t := strings.TrimSpace(v.Form.FreeText); t != "" {
		parts = append(parts, t)
	}
	return strings.Join(parts, "; ")
}

func (u *UI) receipt(v screen.View) fyne.CanvasObject {
	// A ticket of a long kiosk code (up to 26 characters) is drawn smaller
	// so it never widens the window.
	size := float32(sizeTicket)
	if n := len(v.Receipt.Ticket); n > ticketFullSize {
		size = sizeTicket * ticketFullSize / float32(n)
	}
	ticket := colored(v.Receipt.Ticket, colorPrimary, size, true, fyne.TextAlignCenter)
	body := container.NewVBox(
		text(u.t(v, i18n.ReceiptThanks), theme.SizeNameSubHeadingText, false),
		gap(24),
		colored(u.t(v, i18n.ReceiptTicket), colorMuted, 40, false, fyne.TextAlignCenter),
		panel(colorCard, ticket),
	)
	if v.QueryCode != "" {
		body.Add(gap(16))
		body.Add(colored(u.t(v, i18n.ReceiptQueryCode)+" "+v.QueryCode, colorForeground, 56, true, fyne.TextAlignCenter))
		body.Add(text(u.t(v, i18n.ReceiptQueryHint), theme.SizeNameText, false))
	}
	body.Add(gap(24))
	body.Add(container.NewCenter(u.qrBlock(v.FollowQR, u.t(v, i18n.ReceiptQR), 380)))
	done := button(u.t(v, i18n.Done), widget.HighImportance, 160, func() { u.model.Back(u.now()) })
	return u.step(v, i18n.StepReceipt, body, done)
}
