package screen

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"sort"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/protocol"
)

// Screen identifies what the kiosk shows.
type Screen int

// Screens, in the order of the feedback flow after the first three.
const (
	Home Screen = iota
	NoticeDetail
	Urgent
	Kind
	Category
	Building
	Unit
	Room
	Phone
	Description
	Confirm
	Receipt
	// Setup replaces every other screen while the agent reports that the
	// device is not enrolled: a technician types the claim code.
	Setup
	// Attract plays the attract loop (a playlist) on a kiosk left idle on
	// its home screen; a touch anywhere returns to Home.
	Attract
	// Lookup is the keypad for a case's query code (查询进度).
	Lookup
	// CaseResult shows a case's state and answer, and the rating buttons
	// while it is rateable.
	CaseResult
	// Rated thanks the resident for a rating.
	Rated
	// Checkin shows the staff check-in QR code (工作人员签到).
	Checkin
)

var screenNames = [...]string{"home", "notice", "urgent", "kind", "category", "building", "unit", "room", "phone", "description", "confirm", "receipt", "setup", "attract",
	"lookup", "case", "rated", "checkin"}

func (s Screen) String() string {
	if int(s) < len(screenNames) {
		return screenNames[s]
	}
	return fmt.Sprintf("screen(%d)", int(s))
}

// Defaults of Config.
const (
	DefaultIdleTimeout    = 90 * time.Second
	DefaultRotateInterval = 12 * time.Second
	DefaultAttractAfter   = 60 * time.Second
	DefaultStationURL     = "https://cgm.shequ.example/s?c={community}&k={kiosk}"
	DefaultFollowURL      = "https://cgm.shequ.example/t/{ticket}"
)

// Keypad length limits, in digits.
const (
	MaxBuildingDigits = 4
	MaxUnitDigits     = 2
	MaxRoomDigits     = 5
	MaxPhoneDigits    = 20
)

// Config configures a Model. The zero value means the defaults.
type Config struct {
	Lang           i18n.Lang     // default language; "" means Chinese
	IdleTimeout    time.Duration // 0 means DefaultIdleTimeout
	RotateInterval time.Duration // 0 means DefaultRotateInterval
	// AttractAfter is how long the home screen stays idle before the
	// attract loop starts; 0 means DefaultAttractAfter.
	AttractAfter time.Duration
	// StationURL is the template of the 城管码 QR code; {community} and
	// {kiosk} are replaced by the station's community id and the kiosk id.
	StationURL string
	// FollowURL is the template of the receipt's follow-up QR code; {ticket}
	// is replaced by the ticket number.
	FollowURL string
}

// ErrConfig means a Config value is invalid.
var ErrConfig = errors.New("screen: invalid config")

func (c Config) withDefaults() (Config, error) {
	lang, err := i18n.ParseLang(string(c.Lang))
	if err != nil {
		return c, fmt.Errorf("%w: %v", ErrConfig, err)
	}
	c.Lang = lang
	if c.IdleTimeout == 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.RotateInterval == 0 {
		c.RotateInterval = DefaultRotateInterval
	}
	if c.AttractAfter == 0 {
		c.AttractAfter = DefaultAttractAfter
	}
	if c.IdleTimeout < 0 || c.RotateInterval < 0 || c.AttractAfter < 0 {
		return c, fmt.Errorf("%w: negative duration", ErrConfig)
	}
	if c.StationURL == "" {
		c.StationURL = DefaultStationURL
	}
	if c.FollowURL == "" {
		c.FollowURL = DefaultFollowURL
	}
	if !strings.Contains(c.FollowURL, "{ticket}") {
		return c, fmt.Errorf("%w: follow-up URL %q has no {ticket}", ErrConfig, c.FollowURL)
	}
	return c, nil
}

// Submitter sends a resident's feedback to the agent.
type Submitter interface {
	SubmitFeedback(ctx context.Context, req protocol.FeedbackRequest) (protocol.FeedbackReceipt, error)
}

// Form is the feedback being filled in.
type Form struct {
	Kind     protocol.FeedbackKind
	Category protocol.FeedbackCategory
	Where    protocol.Where
	Phone    string
	Phrases  []i18n.Key // selected preset phrases, in the order offered
	FreeText string
}

// Request builds the request to submit. Preset phrases are always written in
// Chinese, whatever the display language, because the staff read Chinese.
func (f Form) Request() protocol.FeedbackRequest {
	parts := make([]string, 0, len(f.Phrases)+1)
	for _, k := range f.Phrases {
		parts = append(parts, i18n.T(i18n.Zh, k))
	}
	if t := strings.TrimSpace(f.FreeText); t != "" {
		parts = append(parts, t)
	}
	return protocol.FeedbackRequest{
		Kind:        f.Kind,
		Category:    f.Category,
		Where:       f.Where,
		Phone:       f.Phone,
		Description: truncate(strings.Join(parts, "；"), protocol.MaxDescription),
	}
}

func truncate(s string, max int) string {
	if utf8.RuneCountInString(s) <= max {
		return s
	}
	r := []rune(s)
	return string(r[:max])
}

// View is a snapshot of everything the UI needs to draw the current screen.
type View struct {
	Screen     Screen
	Lang       i18n.Lang
	Connecting bool // no content from the agent yet
	Station    protocol.Station
	StationQR  string // contents of the 城管码 QR code

	// Notice is the rotating notice (Home), the one opened (NoticeDetail)
	// or the urgent one (Urgent); HasNotice is false when there is none.
	Notice      protocol.Notice
	HasNotice   bool
	NoticeIndex int // position of Notice among the visible notices
	NoticeCount int

	Form      Form
	Keypad    string     // digits entered on a keypad screen
	KeypadMax int        // digit limit of the keypad screen
	Phrases   []i18n.Key // phrases offered on Description

	Err i18n.Key // message to show, "" for none
	// ErrDetail is the technical detail of Err, for the log; on Setup it is
	// the agent's reason, shown to the technician.
	ErrDetail  string
	Submitting bool // a submission or an enrolment is in flight

	// ClaimCode is, on Setup, the typed digits grouped 4-4-4 with
	// ClaimPlaceholder for the digits still to type (see FormatClaimCode).
	ClaimCode string
	// CanEnrol is true on Setup when a whole claim code is typed and no
	// enrolment is in flight.
	CanEnrol bool

	Receipt  protocol.FeedbackReceipt
	FollowQR string // contents of the receipt QR code
	// QueryCode is, on Receipt, the digits a resident types under 查询进度
	// to find the case again (protocol.QueryCode); "" if the ticket has none.
	QueryCode string

	// Case is the case looked up (CaseResult, Rated). CaseStale is true
	// when the agent is not connected to the hub, so the board may be old.
	// Rating is, on Rated, the rating just given.
	Case      protocol.LocalCase
	CaseStale bool
	Rating    protocol.Rating

	// Checkin is, on Checkin, the code to show (CheckinURL as a QR code);
	// HasCheckin is false until the agent has given one.
	Checkin    protocol.CheckinCode
	HasCheckin bool

	// Current is, on Attract, the item on screen; Next is the item that
	// follows it, chosen ahead so the UI can prepare it (start decoding a
	// video) before Current ends. HasNext is false when nothing else can
	// play: after Current the kiosk returns to Home.
	Current Slot
	Next    Slot
	HasNext bool
}

// Model is the kiosk's screen state. Create it with New.
type Model struct {
	cfg Config

	mu          sync.Mutex
	content     protocol.LocalNotices
	hasContent  bool
	lang        i18n.Lang
	screen      Screen
	lastAction  time.Time
	rotID       string    // id of the rotating notice on Home
	rotAt       time.Time // when it was shown
	detailID    string
	form        Form
	keypad      string
	err         i18n.Key
	errDetail   string
	submitting  bool
	generation  int // bumped whenever the form is wiped
	receipt     protocol.FeedbackReceipt
	status      protocol.AgentStatus
	hasStatus   bool // status has been set at least once
	fingerprint string
	onChange    func()

	att    attractState
	clock  time.Time         // the latest time given to Tick
	broken map[string]string // media file path → why it failed to play
	onPlay func(protocol.PlayEvent)
	// onBroken hears of held files the kiosk cannot play (brokenQ queues
	// them under the lock, like plays).
	onBroken func(protocol.MediaError)
	brokenQ  []protocol.MediaError
	plays    []protocol.PlayEvent // to report once the lock is released

	cs caseState
}

// New returns a model on the home screen, in the connecting state until
// SetContent is called.
func New(cfg Config) (*Model, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	return &Model{cfg: cfg, lang: cfg.Lang, broken: map[string]string{}}, nil
}

// Config returns the model's configuration with defaults filled in.
func (m *Model) Config() Config { return m.cfg }

// OnChange sets a function called, without the model's lock held, after any
// change that should be redrawn. Typing free text does not call it: the entry
// that is being typed into already shows the text.
func (m *Model) OnChange(fn func()) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onChange = fn
}

// update runs fn under the lock and then calls the change hook.
func (m *Model) update(fn func()) {
	m.mu.Lock()
	fn()
	m.unlockAndNotify()
}

// unlockAndNotify releases m.mu, then reports queued play events and tells
// the change hook.
func (m *Model) unlockAndNotify() {
	hook := m.onChange
	m.unlockAndReport()
	if hook != nil {
		hook()
	}
}

// unlockAndReport releases m.mu, then hands the queued play events to the
// play hook, in order.
func (m *Model) unlockAndReport() {
	plays, hook := m.plays, m.onPlay
	broken, brokenHook := m.brokenQ, m.onBroken
	m.plays, m.brokenQ = nil, nil
	m.mu.Unlock()
	if hook != nil {
		for _, p := range plays {
			hook(p)
		}
	}
	if brokenHook != nil {
		for _, b := range broken {
			brokenHook(b)
		}
	}
}

// beginCall starts a call to the agent that runs without the lock (a
// submission or an enrolment). Called with m.mu held, it returns with it
// released and the change hook told. An invalid input is shown as errKey
// and returned; otherwise the model is marked submitting and the form's
// generation returned, to tell on return whether the form was wiped
// meanwhile.
func (m *Model) beginCall(now time.Time, op string, invalid error, errKey i18n.Key) (gen int, err error) {
	m.lastAction = now
	if invalid != nil {
		m.err, m.errDetail = errKey, invalid.Error()
		m.unlockAndNotify()
		return 0, fmt.Errorf("screen: %s: %w", op, invalid)
	}
	m.submitting = true
	m.err, m.errDetail = "", ""
	gen = m.generation
	m.unlockAndNotify()
	return gen, nil
}

// SetContent replaces the station and notices with what the agent holds.
func (m *Model) SetContent(c protocol.LocalNotices) {
	c.Notices = append([]protocol.Notice(nil), c.Notices...)
	c.Playlists = append([]protocol.Playlist(nil), c.Playlists...)
	c.Media = append([]protocol.LocalMedia(nil), c.Media...)
	m.update(func() {
		m.content = c
		m.hasContent = true
		m.contentChangedLocked()
	})
}

// priorityRank orders priorities, most important first.
func priorityRank(p protocol.Priority) int {
	switch p {
	case protocol.PriorityUrgent:
		return 0
	case protocol.PriorityImportant:
		return 1
	}
	return 2
}

// visible returns the active notices in display order: by priority, then
// newest first, then by id.
func (m *Model) visible(now time.Time) []protocol.Notice {
	var out []protocol.Notice
	for _, n := range m.content.Notices {
		if n.Active(now) {
			out = append(out, n)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i], out[j]
		if ra, rb := priorityRank(a.Priority), priorityRank(b.Priority); ra != rb {
			return ra < rb
		}
		if !a.ValidFrom.Equal(b.ValidFrom) {
			return a.ValidFrom.After(b.ValidFrom)
		}
		return a.ID < b.ID
	})
	return out
}

// VisibleNotices returns the notices active at now, urgent ones included, in
// display order: urgent, important, normal, each newest first.
func (m *Model) VisibleNotices(now time.Time) []protocol.Notice {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.visible(now)
}

func (m *Model) urgent(now time.Time) (protocol.Notice, bool) {
	for _, n := range m.visible(now) {
		if n.Priority == protocol.PriorityUrgent {
			return n, true
		}
	}
	return protocol.Notice{}, false
}

// Urgent returns the urgent notice active at now (the newest if several).
func (m *Model) Urgent(now time.Time) (protocol.Notice, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.urgent(now)
}

// current returns the screen shown at now, applying the setup screen, the
// urgent takeover and leaving a notice detail whose notice is gone.
func (m *Model) current(now time.Time) Screen {
	if m.setupLocked() {
		return Setup
	}
	switch m.screen {
	case Home:
		if _, ok := m.urgent(now); ok {
			return Urgent
		}
	case NoticeDetail:
		if _, ok := m.find(now, m.detailID); !ok {
			if _, ok := m.urgent(now); ok {
				return Urgent
			}
			return Home
		}
	case Attract:
		if _, ok := m.urgent(now); ok {
			return Urgent
		}
	}
	return m.screen
}

func (m *Model) find(now time.Time, id string) (protocol.Notice, bool) {
	for _, n := range m.visible(now) {
		if n.ID == id {
			return n, true
		}
	}
	return protocol.Notice{}, false
}

// rotating returns the home screen's current notice and its position.
func (m *Model) rotating(now time.Time) (protocol.Notice, int, int, bool) {
	vis := m.visible(now)
	if len(vis) == 0 {
		return protocol.Notice{}, 0, 0, false
	}
	for i, n := range vis {
		if n.ID == m.rotID {
			return n, i, len(vis), true
		}
	}
	return vis[0], 0, len(vis), true
}

// Screen returns the screen shown at now.
func (m *Model) Screen(now time.Time) Screen {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current(now)
}

// Capturable reports whether the screen shown at now holds nothing of a
// resident's, so that a technician's remote screenshot may be taken: the
// home screen, a notice, the urgent takeover and the attract loop. Every
// other screen (the feedback steps, the receipt, the case lookup, a case's
// answer and its rating, the staff check-in code, setup) is someone at
// the kiosk doing something of their own, and is never captured.
func (m *Model) Capturable(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	switch m.current(now) {
	case Home, NoticeDetail, Urgent, Attract:
		return !m.submitting
	}
	return false
}

// View returns a snapshot of the screen at now.
func (m *Model) View(now time.Time) View {
	m.mu.Lock()
	defer m.mu.Unlock()
	v := View{
		Screen:     m.current(now),
		Lang:       m.lang,
		Connecting: !m.hasContent,
		Station:    m.content.Station,
		StationQR:  m.stationURL(),
		Form:       m.form,
		Keypad:     m.keypad,
		Err:        m.err,
		ErrDetail:  m.errDetail,
		Submitting: m.submitting,
		Receipt:    m.receipt,
	}
	v.Form.Phrases = append([]i18n.Key(nil), m.form.Phrases...)
	switch v.Screen {
	case Home:
		v.Notice, v.NoticeIndex, v.NoticeCount, v.HasNotice = m.rotating(now)
	case Urgent:
		v.Notice, v.HasNotice = m.urgent(now)
	case NoticeDetail:
		v.Notice, v.HasNotice = m.find(now, m.detailID)
	case Building, Unit, Room, Phone:
		v.KeypadMax = keypadMax(v.Screen)
	case Description:
		v.Phrases = i18n.Phrases(m.form.Category)
	case Receipt:
		v.FollowQR = strings.ReplaceAll(m.cfg.FollowURL, "{ticket}", url.PathEscape(m.receipt.Ticket))
	case Setup:
		v.KeypadMax = protocol.ClaimCodeDigits
		v.ClaimCode = FormatClaimCode(m.keypad)
		v.CanEnrol = len(m.keypad) == protocol.ClaimCodeDigits && !m.submitting
	case Attract:
		v.Current, v.Next, v.HasNext = m.att.cur, m.att.next, m.att.hasNext
	case Lookup:
		v.KeypadMax = protocol.MaxQueryCode
	case CaseResult, Rated, Checkin:
		m.caseViewLocked(&v)
	}
	if v.Screen == Receipt {
		v.QueryCode, _ = protocol.QueryCode(m.receipt.Ticket)
	}
	return v
}

func (m *Model) stationURL() string {
	return strings.NewReplacer(
		"{community}", url.QueryEscape(m.content.Station.Community),
		"{kiosk}", url.QueryEscape(m.content.Kiosk),
	).Replace(m.cfg.StationURL)
}

// StationURL returns the contents of the 城管码 QR code.
func (m *Model) StationURL() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.stationURL()
}

func keypadMax(s Screen) int {
	switch s {
	case Building:
		return MaxBuildingDigits
	case Unit:
		return MaxUnitDigits
	case Room:
		return MaxRoomDigits
	case Phone:
		return MaxPhoneDigits
	case Setup:
		return protocol.ClaimCodeDigits
	case Lookup:
		return protocol.MaxQueryCode
	}
	return 0
}

// fingerprintLocked summarises what time alone can change on screen.
func (m *Model) fingerprintLocked(now time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%d|%s|%d|%d|", m.current(now), m.rotID, m.att.cur.Seq, m.att.next.Seq)
	for _, n := range m.visible(now) {
		b.WriteString(n.ID)
		b.WriteByte(',')
	}
	return b.String()
}

// Tick advances time: the idle timeout, the rotation of notices and notices
// starting or ending. It reports whether the screen changed (the change hook
// has then been called too).
func (m *Model) Tick(now time.Time) bool {
	m.mu.Lock()
	m.clock = now
	if m.lastAction.IsZero() { // the first tick: the idle clock starts now
		m.lastAction = now
	}
	idle := !m.submitting && now.Sub(m.lastAction) >= m.cfg.IdleTimeout
	// m.keypad and m.err are only ever set on Home while Setup covers it:
	// a half-typed claim code and its message are wiped too.
	if idle && ((m.screen != Home && m.screen != Attract) || m.lang != m.cfg.Lang || m.keypad != "" || m.err != "") {
		m.goHomeLocked()
		m.lang = m.cfg.Lang
	}
	m.tickAttractLocked(now)
	if m.screen == Checkin && now.Sub(m.cs.checkinOpened) >= CheckinTimeout {
		m.goHomeLocked()
	}
	if m.current(now) == Home {
		n, i, count, ok := m.rotating(now)
		switch {
		case !ok:
			m.rotID = ""
		case n.ID != m.rotID:
			m.showNoticeLocked(n.ID, now)
		case now.Sub(m.rotAt) >= m.cfg.RotateInterval:
			vis := m.visible(now)
			m.showNoticeLocked(vis[(i+1)%count].ID, now)
		}
	}
	fp := m.fingerprintLocked(now)
	changed := fp != m.fingerprint
	m.fingerprint = fp
	hook := m.onChange
	m.unlockAndReport()
	if changed && hook != nil {
		hook()
	}
	return changed
}

// showNoticeLocked puts notice id on the home rotation and reports it shown.
func (m *Model) showNoticeLocked(id string, now time.Time) {
	m.rotID, m.rotAt = id, now
	m.plays = append(m.plays, protocol.PlayEvent{Kind: protocol.ItemNotice, Notice: id, At: now.UTC()})
}

// goHomeLocked returns to home and wipes the form and the receipt.
func (m *Model) goHomeLocked() {
	m.screen = Home
	m.form = Form{}
	m.keypad = ""
	m.err, m.errDetail = "", ""
	m.receipt = protocol.FeedbackReceipt{}
	m.detailID = ""
	m.cs = caseState{}
	m.generation++
	m.att = attractState{seq: m.att.seq}
}

// act runs an action at now: it counts as activity and clears the message.
func (m *Model) act(now time.Time, fn func()) {
	m.update(func() {
		m.lastAction = now
		if m.submitting {
			return
		}
		m.err, m.errDetail = "", ""
		fn()
	})
}

// Touch records activity without changing anything (e.g. typing).
func (m *Model) Touch(now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastAction = now
}

// SetLang switches the display language.
func (m *Model) SetLang(l i18n.Lang, now time.Time) {
	m.update(func() {
		m.lastAction = now
		m.lang = l
	})
}

// ToggleLang switches between Chinese and English.
func (m *Model) ToggleLang(now time.Time) {
	m.update(func() {
		m.lastAction = now
		m.lang = m.lang.Other()
	})
}

// Lang returns the display language.
func (m *Model) Lang() i18n.Lang {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.lang
}

// OpenNotice shows the home screen's current notice in full (or the urgent
// one when it has taken over).
func (m *Model) OpenNotice(now time.Time) {
	m.act(now, func() {
		var n protocol.Notice
		var ok bool
		switch m.current(now) {
		case Home:
			n, _, _, ok = m.rotating(now)
		case Urgent:
			n, ok = m.urgent(now)
		}
		if ok {
			m.detailID = n.ID
			m.screen = NoticeDetail
		}
	})
}

// NextNotice and PrevNotice step the home screen's rotation by hand.
func (m *Model) NextNotice(now time.Time) { m.stepNotice(now, 1) }

// PrevNotice steps the rotation back; see NextNotice.
func (m *Model) PrevNotice(now time.Time) { m.stepNotice(now, -1) }

func (m *Model) stepNotice(now time.Time, d int) {
	m.act(now, func() {
		if m.current(now) != Home {
			return
		}
		_, i, count, ok := m.rotating(now)
		if !ok {
			return
		}
		vis := m.visible(now)
		m.showNoticeLocked(vis[(i+d+count)%count].ID, now)
	})
}

// StartFeedback begins the feedback flow with an empty form.
func (m *Model) StartFeedback(now time.Time) {
	m.act(now, func() {
		switch m.current(now) {
		case Home, Urgent, NoticeDetail:
			m.goHomeLocked()
			m.screen = Kind
		}
	})
}

// ChooseKind picks the feedback kind and moves to the category.
func (m *Model) ChooseKind(k protocol.FeedbackKind, now time.Time) {
	m.act(now, func() {
		if m.screen != Kind || !valid(k, protocol.FeedbackKinds) {
			return
		}
		m.form.Kind = k
		m.screen = Category
	})
}

// ChooseCategory picks the category and moves to the building keypad.
func (m *Model) ChooseCategory(c protocol.FeedbackCategory, now time.Time) {
	m.act(now, func() {
		if m.screen != Category || !valid(c, protocol.FeedbackCategories) {
			return
		}
		if m.form.Category != c {
			m.form.Phrases = nil
		}
		m.form.Category = c
		m.enter(Building)
	})
}

func valid[T comparable](v T, all []T) bool {
	for _, a := range all {
		if a == v {
			return true
		}
	}
	return false
}

// field returns the form field a keypad screen edits.
func (m *Model) field(s Screen) *string {
	switch s {
	case Building:
		return &m.form.Where.Building
	case Unit:
		return &m.form.Where.Unit
	case Room:
		return &m.form.Where.Room
	case Phone:
		return &m.form.Phone
	}
	return nil
}

// enter moves to screen s, loading the keypad with the field's value.
func (m *Model) enter(s Screen) {
	m.screen = s
	m.keypad = ""
	if f := m.field(s); f != nil {
		m.keypad = *f
	}
}

// Digit types one digit on a keypad screen; digits beyond the screen's limit
// are ignored.
func (m *Model) Digit(d rune, now time.Time) {
	m.act(now, func() {
		max := keypadMax(m.current(now))
		if max == 0 || d < '0' || d > '9' || len(m.keypad) >= max {
			return
		}
		m.keypad += string(d)
	})
}

// Delete removes the last digit on a keypad screen.
func (m *Model) Delete(now time.Time) {
	m.act(now, func() {
		if n := len(m.keypad); n > 0 {
			m.keypad = m.keypad[:n-1]
		}
	})
}

// Clear empties the keypad.
func (m *Model) Clear(now time.Time) {
	m.act(now, func() { m.keypad = "" })
}

// next is the screen after s in the flow.
func next(s Screen) Screen {
	switch s {
	case Building:
		return Unit
	case Unit:
		return Room
	case Room:
		return Phone
	case Phone:
		return Description
	case Description:
		return Confirm
	}
	return s
}

// Next accepts the keypad entry or the description and moves on. An invalid
// phone number keeps the resident on the phone screen with a message.
func (m *Model) Next(now time.Time) {
	m.act(now, func() {
		switch m.screen {
		case Building, Unit, Room, Phone:
			if m.screen == Phone {
				if err := protocol.ValidPhone(m.keypad); err != nil {
					m.err, m.errDetail = i18n.ErrPhone, err.Error()
					return
				}
			}
			*m.field(m.screen) = m.keypad
			m.enter(next(m.screen))
		case Description:
			m.enter(Confirm)
		}
	})
}

// Skip leaves the current optional field empty and moves on.
func (m *Model) Skip(now time.Time) {
	m.act(now, func() {
		switch m.screen {
		case Building, Unit, Room, Phone:
			*m.field(m.screen) = ""
			m.enter(next(m.screen))
		case Description:
			m.form.Phrases, m.form.FreeText = nil, ""
			m.enter(Confirm)
		}
	})
}

// TogglePhrase selects or deselects a preset phrase on the description screen.
func (m *Model) TogglePhrase(k i18n.Key, now time.Time) {
	m.act(now, func() {
		if m.screen != Description {
			return
		}
		offered := i18n.Phrases(m.form.Category)
		selected := map[i18n.Key]bool{}
		for _, p := range m.form.Phrases {
			selected[p] = true
		}
		if !valid(k, offered) {
			return
		}
		selected[k] = !selected[k]
		m.form.Phrases = nil
		for _, p := range offered {
			if selected[p] {
				m.form.Phrases = append(m.form.Phrases, p)
			}
		}
	})
}

// SetFreeText sets the optional free text of the description, cut to the
// protocol's limit. It does not call the change hook.
func (m *Model) SetFreeText(s string, now time.Time) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.lastAction = now
	if m.screen == Description && !m.submitting {
		m.form.FreeText = truncate(s, protocol.MaxDescription)
	}
}

// Back goes one step back; from the receipt or a notice it goes home.
func (m *Model) Back(now time.Time) {
	m.act(now, func() {
		switch m.screen {
		case NoticeDetail, Receipt, Lookup, Rated, Checkin:
			m.goHomeLocked()
		case CaseResult:
			m.cs = caseState{}
			m.enter(Lookup)
		case Kind:
			m.goHomeLocked()
		case Category:
			m.screen = Kind
		case Building:
			m.screen = Category
		case Unit:
			m.enter(Building)
		case Room:
			m.enter(Unit)
		case Phone:
			m.enter(Room)
		case Description:
			m.enter(Phone)
		case Confirm:
			m.enter(Description)
		}
	})
}

// Cancel abandons the flow: home, with the form wiped.
func (m *Model) Cancel(now time.Time) {
	m.act(now, func() { m.goHomeLocked() })
}

// Submit sends the form from the confirm screen. On success the receipt is
// shown; on failure the resident stays on Confirm with a message and may
// try again. The model's lock is not held while sub runs. A second Submit
// while one is in flight does nothing.
func (m *Model) Submit(ctx context.Context, sub Submitter, now time.Time) error {
	m.mu.Lock()
	if m.screen != Confirm || m.submitting {
		m.mu.Unlock()
		return nil
	}
	req := m.form.Request()
	gen, err := m.beginCall(now, "submit", req.Validate(), i18n.ErrInvalidForm)
	if err != nil {
		return err
	}

	rec, err := sub.SubmitFeedback(ctx, req)

	var result error
	m.update(func() {
		m.submitting = false
		if gen != m.generation {
			return // the form was wiped meanwhile
		}
		if err != nil {
			m.err, m.errDetail = i18n.ErrSubmit, err.Error()
			result = fmt.Errorf("screen: submit feedback: %w", err)
			return
		}
		m.receipt = rec
		m.form = Form{}
		m.keypad = ""
		m.screen = Receipt
	})
	return result
}
