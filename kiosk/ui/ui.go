// Package ui draws the kiosk's screens with Fyne from a screen.Model: the
// home screen with rotating notices and the 城管码, the urgent takeover, a
// notice's full text, the feedback steps with big buttons and a numeric
// keypad, the case lookup and rating screens, the staff check-in QR code,
// the setup screen where a technician enrols the device, and the attract
// loop (images, notice cards and videos decoded by kiosk/video). It
// holds no state of its own beyond widgets and the attract loop's prepared
// media: every tap calls the model, and every change of the model redraws
// the window.
//
// The package does not import fyne.io/fyne/v2/app, so it builds and is tested
// without cgo using Fyne's test driver; cmd/kiosk creates the real app.
package ui

import (
	"context"
	"errors"
	"image"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"fyne.io/fyne/v2"
	"github.com/skip2/go-qrcode"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/kiosk/video"
	"github.com/shequ/shequ/protocol"
)

// Timeouts of the work done through the agent.
const (
	// SubmitTimeout bounds one feedback submission.
	SubmitTimeout = 15 * time.Second
	// EnrolTimeout bounds one enrolment: the agent waits on the hub.
	EnrolTimeout = 60 * time.Second
)

// Options configures a UI. The zero value means the defaults.
type Options struct {
	// Log receives errors; nil discards them.
	Log *slog.Logger
	// Now returns the current time; nil means time.Now. Tests fix it.
	Now func() time.Time
	// Async runs background work (a submission); nil means a new
	// goroutine. Tests run it inline.
	Async func(func())
	// Enroller enrols the device from the Setup screen; nil means the
	// Submitter given to New when it is also a screen.Enroller (as
	// agentclient.Client is).
	Enroller screen.Enroller
	// Video configures the attract loop's video players.
	Video video.Config
	// Cases looks cases up and rates them; nil means the Submitter given
	// to New when it is also a screen.CaseClient (as agentclient.Client is).
	Cases screen.CaseClient
	// Checkin fetches staff check-in codes; nil means the Submitter when
	// it is also a screen.CheckinClient.
	Checkin screen.CheckinClient
}

// ErrNoEnroller means the UI was given no way to enrol the device.
var ErrNoEnroller = errors.New("ui: no enroller configured")

// noEnroller fails every enrolment with ErrNoEnroller.
type noEnroller struct{}

func (noEnroller) Enrol(context.Context, string) (protocol.AgentStatus, error) {
	return protocol.AgentStatus{}, ErrNoEnroller
}

// ErrNoCases means the UI was given no way to look cases up or to make
// check-in codes.
var ErrNoCases = errors.New("ui: no case client configured")

// noCases fails every case call with ErrNoCases.
type noCases struct{}

func (noCases) Case(context.Context, string) (protocol.LocalCase, error) {
	return protocol.LocalCase{}, ErrNoCases
}

func (noCases) RateCase(context.Context, string, protocol.Rating) (protocol.RatingReceipt, error) {
	return protocol.RatingReceipt{}, ErrNoCases
}

func (noCases) CheckinCode(context.Context) (protocol.CheckinCode, error) {
	return protocol.CheckinCode{}, ErrNoCases
}

// UI renders a screen.Model into a Fyne window.
type UI struct {
	win     fyne.Window
	model   *screen.Model
	sub     screen.Submitter
	enr     screen.Enroller
	cases   screen.CaseClient
	checkin screen.CheckinClient
	log     *slog.Logger
	now     func() time.Time
	async   func(func())
	video   video.Config
	media   attractMedia

	pending atomic.Bool // a redraw is scheduled

	qrMu    sync.Mutex
	qrCache map[string]image.Image
}

// New returns a UI drawing m into win, submitting feedback through sub and
// enrolling through opts.Enroller. It draws the current screen at once and
// redraws on every change of m. Call it on the Fyne goroutine.
func New(win fyne.Window, m *screen.Model, sub screen.Submitter, opts Options) *UI {
	u := &UI{
		win: win, model: m, sub: sub, enr: opts.Enroller, cases: opts.Cases, checkin: opts.Checkin,
		log: opts.Log, now: opts.Now, async: opts.Async, video: opts.Video,
		qrCache: map[string]image.Image{},
	}
	if u.enr == nil {
		if e, ok := sub.(screen.Enroller); ok {
			u.enr = e
		} else {
			u.enr = noEnroller{}
		}
	}
	if u.cases == nil {
		if c, ok := sub.(screen.CaseClient); ok {
			u.cases = c
		} else {
			u.cases = noCases{}
		}
	}
	if u.checkin == nil {
		if c, ok := sub.(screen.CheckinClient); ok {
			u.checkin = c
		} else {
			u.checkin = noCases{}
		}
	}
	if u.log == nil {
		u.log = slog.New(slog.DiscardHandler)
	}
	if u.video.Log == nil {
		u.video.Log = u.log
	}
	if u.now == nil {
		u.now = time.Now
	}
	if u.async == nil {
		u.async = func(f func()) { go f() }
	}
	m.OnChange(u.Refresh)
	u.Render()
	return u
}

// Refresh schedules a redraw on the Fyne goroutine. It is safe to call from
// any goroutine; redraws requested while one is pending are merged.
func (u *UI) Refresh() {
	if u.pending.Swap(true) {
		return
	}
	fyne.Do(func() {
		u.pending.Store(false)
		u.Render()
	})
}

// Render draws the current screen now. Call it on the Fyne goroutine.
func (u *UI) Render() {
	v := u.model.View(u.now())
	fresh, stale := u.syncSlots(v)
	u.win.SetContent(u.build(v))
	// Preparing media may report a failure, which redraws: only after
	// this view is on screen, so a newer one is never overwritten.
	u.startSlots(v, fresh, stale)
}

// Tick advances the model's clock; the model asks for a redraw if the
// screen changed. Safe from any goroutine.
func (u *UI) Tick() {
	now := u.now()
	u.model.Tick(now)
	if u.model.CheckinDue(now) {
		u.loadCheckin()
	}
}

// CasesChanged fetches the case on screen again, if any: the agent holds
// a new case board. Safe from any goroutine.
func (u *UI) CasesChanged() {
	u.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), SubmitTimeout)
		defer cancel()
		if err := u.model.RefreshCase(ctx, u.cases); err != nil {
			u.log.Warn("refresh case", "err", err)
		}
	})
}

// lookUp looks the typed query code up in the background.
func (u *UI) lookUp() {
	u.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), SubmitTimeout)
		defer cancel()
		if err := u.model.LookUp(ctx, u.cases, u.now()); err != nil {
			u.log.Info("case lookup", "err", err)
		}
	})
}

// rate sends a rating in the background.
func (u *UI) rate(r protocol.Rating) {
	u.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), SubmitTimeout)
		defer cancel()
		if err := u.model.Rate(ctx, u.cases, r, u.now()); err != nil {
			u.log.Warn("rate case", "err", err)
		}
	})
}

// loadCheckin fetches a check-in code in the background.
func (u *UI) loadCheckin() {
	u.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), SubmitTimeout)
		defer cancel()
		if err := u.model.LoadCheckin(ctx, u.checkin, u.now()); err != nil {
			u.log.Error("check-in code", "err", err)
		}
	})
}

func (u *UI) t(v screen.View, k i18n.Key) string { return i18n.T(v.Lang, k) }

// submit sends the form in the background; the model redraws when done.
func (u *UI) submit() {
	u.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), SubmitTimeout)
		defer cancel()
		if err := u.model.Submit(ctx, u.sub, u.now()); err != nil {
			u.log.Error("submit feedback", "err", err)
		}
	})
}

// enrol sends the claim code in the background; the model redraws when done.
func (u *UI) enrol() {
	u.async(func() {
		ctx, cancel := context.WithTimeout(context.Background(), EnrolTimeout)
		defer cancel()
		if err := u.model.Enrol(ctx, u.enr, u.now()); err != nil {
			u.log.Error("enrol", "err", err)
		}
	})
}

// qr returns the QR code image of text, cached.
func (u *UI) qr(text string) image.Image {
	u.qrMu.Lock()
	defer u.qrMu.Unlock()
	if img, ok := u.qrCache[text]; ok {
		return img
	}
	q, err := qrcode.New(text, qrcode.Medium)
	if err != nil {
		u.log.Error("make QR code", "text", text, "err", err)
		return image.NewGray(image.Rect(0, 0, 1, 1))
	}
	img := q.Image(512)
	if len(u.qrCache) > 16 {
		clear(u.qrCache)
	}
	u.qrCache[text] = img
	return img
}
