package ui

import (
	"context"
	"fmt"
	"image"
	_ "image/jpeg" // attract images: JPEG
	_ "image/png"  // attract images: PNG
	"os"
	"sync"
	"sync/atomic"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/container"
	"fyne.io/fyne/v2/layout"
	"fyne.io/fyne/v2/theme"
	_ "golang.org/x/image/webp" // attract images: WebP

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/kiosk/video"
	"github.com/shequ/shequ/protocol"
)

// colorAttract is the background behind images and videos.
var colorAttract = colorForeground

// prepared is an attract slot's media being made ready or shown: a decoded
// image or an open video player, and the canvas image that draws it.
type prepared struct {
	slot screen.Slot
	view *canvas.Image // created at once, filled when ready
	// maxW and maxH bound the decoded frames: the window's size in
	// pixels (no point decoding more than can be shown).
	maxW, maxH int

	mu     sync.Mutex
	player *video.Player
	closed bool
	opened chan struct{} // closed when preparation finished (well or not)

	playOnce sync.Once
	pending  atomic.Bool // a frame is waiting for the Fyne goroutine
	shown    *image.RGBA // frame on screen; only touched on the Fyne goroutine
}

// attractMedia is the set of prepared slots: at most the current and the
// next item of the attract loop.
type attractMedia struct {
	mu     sync.Mutex
	slots  map[uint64]*prepared
	closed bool           // UI.Close was called: nothing more is prepared or reported
	wg     sync.WaitGroup // preparations and watchers, waited for by Close
}

// Close stops every video player of the attract loop and waits for the
// work it started; after it, the attract loop reports nothing more to the
// model.
func (u *UI) Close() {
	u.media.mu.Lock()
	slots := u.media.slots
	u.media.slots = map[uint64]*prepared{}
	u.media.closed = true
	u.media.mu.Unlock()
	for _, p := range slots {
		u.closeSlot(p)
	}
	u.media.wg.Wait()
}

// goMedia runs fn as attract work Close waits for; false if closed.
func (u *UI) goMedia(run func(func()), fn func()) bool {
	u.media.mu.Lock()
	if u.media.closed {
		u.media.mu.Unlock()
		return false
	}
	u.media.wg.Add(1)
	u.media.mu.Unlock()
	run(func() {
		defer u.media.wg.Done()
		fn()
	})
	return true
}

// report tells the model about slot p unless p or the UI was closed
// meanwhile (the end of a player we stopped is no news).
func (u *UI) report(p *prepared, fn func()) {
	p.mu.Lock()
	closed := p.closed
	p.mu.Unlock()
	u.media.mu.Lock()
	closed = closed || u.media.closed
	u.media.mu.Unlock()
	if !closed {
		fn()
	}
}

// syncSlots makes the prepared set match the view: a new entry for the
// current and next slots (their media prepared by startSlots), the others
// to close. It runs on the Fyne goroutine and calls nothing that redraws.
func (u *UI) syncSlots(v screen.View) (fresh, stale []*prepared) {
	keep := map[uint64]screen.Slot{}
	if v.Screen == screen.Attract {
		slots := []screen.Slot{v.Current}
		if v.HasNext {
			slots = append(slots, v.Next)
		}
		for _, s := range slots {
			if s.Seq != 0 && s.Item.Kind != protocol.ItemNotice {
				keep[s.Seq] = s
			}
		}
	}
	u.media.mu.Lock()
	defer u.media.mu.Unlock()
	if u.media.slots == nil {
		u.media.slots = map[uint64]*prepared{}
	}
	for seq, p := range u.media.slots {
		if _, ok := keep[seq]; !ok {
			stale = append(stale, p)
			delete(u.media.slots, seq)
		}
	}
	for seq, s := range keep {
		if _, ok := u.media.slots[seq]; ok {
			continue
		}
		view := canvas.NewImageFromImage(nil)
		view.FillMode = canvas.ImageFillContain
		if s.Item.Kind == protocol.ItemVideo {
			// Scaled by GL when drawn: Fyne's default (smooth) scales every
			// frame on the CPU first, which costs a whole core at 720p.
			view.ScaleMode = canvas.ImageScaleFastest
		}
		p := &prepared{slot: s, view: view, opened: make(chan struct{})}
		if c := u.win.Canvas(); c != nil {
			size, scale := c.Size(), c.Scale()
			p.maxW, p.maxH = int(size.Width*scale), int(size.Height*scale)
		}
		u.media.slots[seq] = p
		fresh = append(fresh, p)
	}
	return fresh, stale
}

// slot returns the prepared entry of seq, nil if none.
func (u *UI) slot(seq uint64) *prepared {
	u.media.mu.Lock()
	defer u.media.mu.Unlock()
	return u.media.slots[seq]
}

// startSlots closes stale entries, prepares fresh ones in the background
// and starts the current video once it is ready.
func (u *UI) startSlots(v screen.View, fresh, stale []*prepared) {
	for _, p := range stale {
		u.async(func() { u.closeSlot(p) })
	}
	for _, p := range fresh {
		if !u.goMedia(u.async, func() { u.prepare(p) }) {
			close(p.opened)
		}
	}
	if v.Screen != screen.Attract || v.Current.Item.Kind != protocol.ItemVideo {
		return
	}
	if p := u.slot(v.Current.Seq); p != nil {
		go u.play(p)
	}
}

// prepare decodes the slot's image or opens its video (ffmpeg decodes the
// first frame). A failure is reported to the model, which skips the item.
func (u *UI) prepare(p *prepared) {
	defer close(p.opened)
	seq, path := p.slot.Seq, p.slot.Path
	switch p.slot.Item.Kind {
	case protocol.ItemImage:
		img, err := decodeImage(path)
		if err != nil {
			u.log.Warn("attract image failed", "path", path, "err", err)
			u.report(p, func() { u.model.ItemFailed(seq, err.Error(), u.now()) })
			return
		}
		fyne.Do(func() {
			p.view.Image = img
			p.view.Refresh()
		})
	case protocol.ItemVideo:
		cfg := u.video
		if p.maxW > 0 && p.maxH > 0 {
			cfg.MaxWidth = min(orDefault(cfg.MaxWidth, video.DefaultMaxWidth), p.maxW)
			cfg.MaxHeight = min(orDefault(cfg.MaxHeight, video.DefaultMaxHeight), p.maxH)
		}
		pl, err := video.Open(context.Background(), path, cfg)
		if err != nil {
			u.log.Warn("attract video failed", "path", path, "err", err)
			u.report(p, func() { u.model.ItemFailed(seq, err.Error(), u.now()) })
			return
		}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			u.closePlayer(pl)
			return
		}
		p.player = pl
		p.mu.Unlock()
		if !u.goMedia(goroutine, func() { u.watch(p, pl) }) {
			u.closePlayer(pl)
		}
	}
}

// watch reports the end of a video to the model: played to its end, or
// failed (also while only prepared). A player closed because its slot is
// gone reports an end the model ignores (the slot is no longer current).
func (u *UI) watch(p *prepared, pl *video.Player) {
	<-pl.Done()
	u.report(p, func() {
		if err := pl.Err(); err != nil {
			u.model.ItemFailed(p.slot.Seq, err.Error(), u.now())
			return
		}
		u.model.VideoEnded(p.slot.Seq, u.now())
	})
}

// orDefault returns v, or def when v is not positive.
func orDefault(v, def int) int {
	if v <= 0 {
		return def
	}
	return v
}

// goroutine runs fn on a new goroutine.
func goroutine(fn func()) { go fn() }

// play starts showing the video's frames once it is prepared.
func (u *UI) play(p *prepared) {
	<-p.opened
	p.mu.Lock()
	pl := p.player
	p.mu.Unlock()
	if pl == nil {
		return
	}
	p.playOnce.Do(func() {
		pl.Play(func(f *image.RGBA) {
			if p.pending.Swap(true) { // the UI is behind: drop this frame
				pl.Release(f)
				return
			}
			fyne.Do(func() {
				p.pending.Store(false)
				old := p.shown
				p.shown = f
				p.view.Image = f
				p.view.Refresh()
				pl.Release(old)
			})
		})
	})
}

// closeSlot stops the slot's player, now or as soon as it is open.
func (u *UI) closeSlot(p *prepared) {
	p.mu.Lock()
	p.closed = true
	pl := p.player
	p.mu.Unlock()
	if pl != nil {
		u.closePlayer(pl)
	}
}

func (u *UI) closePlayer(pl *video.Player) {
	if err := pl.Close(); err != nil {
		u.log.Error("close video player", "err", err)
	}
}

// decodeImage reads a PNG, JPEG or WebP file.
func decodeImage(path string) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open image: %w", err)
	}
	defer f.Close()
	img, _, err := image.Decode(f)
	if err != nil {
		return nil, fmt.Errorf("decode image %s: %w", path, err)
	}
	return img, nil
}

// attract draws the attract loop's current item full screen with a hint at
// the bottom; a touch anywhere returns to the home screen.
func (u *UI) attract(v screen.View) fyne.CanvasObject {
	s := v.Current
	var body fyne.CanvasObject
	bg := colorAttract
	switch s.Item.Kind {
	case protocol.ItemNotice:
		bg = colorPrimary
		// A long notice scrolls inside its card rather than pushing the
		// hint bar off the fixed-size window.
		body = container.NewVScroll(u.attractCard(v, s.Notice))
	default:
		if p := u.slot(s.Seq); p != nil {
			body = p.view
		} else {
			body = gap(0)
		}
	}
	hint := banner(colorPrimary, colored(u.t(v, i18n.AttractHint), colorWhite, 44, true, fyne.TextAlignCenter))
	content := container.NewBorder(nil, minHeight(hint, 140), nil, nil, body)
	return newTapArea(u.t(v, i18n.AttractHint), container.NewStack(canvas.NewRectangle(bg), content),
		func() { u.model.LeaveAttract(u.now()) })
}

// attractCard is a notice drawn big for the attract loop.
func (u *UI) attractCard(v screen.View, n protocol.Notice) fyne.CanvasObject {
	tag := u.t(v, i18n.NoticeCategoryKey(n.Category))
	if n.Priority != protocol.PriorityNormal {
		tag = u.t(v, i18n.PriorityKey(n.Priority)) + " · " + tag
	}
	rich := func(s string, size fyne.ThemeSizeName, bold bool) *wrapText {
		return newWrapText(s, size, bold, theme.ColorNameForegroundOnPrimary)
	}
	station := v.Station.Name
	if station == "" {
		station = u.t(v, i18n.StationUnknown)
	}
	body := container.NewVBox(
		colored(station, colorWhite, 40, false, fyne.TextAlignLeading),
		layout.NewSpacer(),
		colored(tag, colorWarning, 48, true, fyne.TextAlignLeading),
		gap(16),
		rich(n.Title, theme.SizeNameHeadingText, true),
		gap(24),
		rich(n.Body, theme.SizeNameSubHeadingText, false),
		layout.NewSpacer(),
	)
	return pad(pad(body))
}
