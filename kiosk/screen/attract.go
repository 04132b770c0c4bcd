package screen

import (
	"time"

	"github.com/shequ/shequ/protocol"
)

// Slot is one item of the attract loop as the UI plays it: the playlist
// item with what it needs resolved (the file's path, the notice).
type Slot struct {
	// Seq identifies this showing of the item: a new Seq every time an item
	// is chosen, so the same file played twice in a row is two slots. The
	// UI passes it back to VideoEnded and ItemFailed.
	Seq      uint64
	Playlist string // playlist id
	Index    int    // position of Item in the playlist
	Item     protocol.PlaylistItem
	Path     string          // absolute path of the file, for image and video items
	Notice   protocol.Notice // the notice of a notice item
	// Duration is how long an image or a notice is shown; 0 for a video,
	// which plays to its end (the UI calls VideoEnded).
	Duration time.Duration
}

// same reports whether s and o show the same thing.
func (s Slot) same(o Slot) bool {
	return s.Playlist == o.Playlist && s.Index == o.Index && s.Item == o.Item &&
		s.Path == o.Path && s.Notice.ID == o.Notice.ID && s.Notice.Title == o.Notice.Title && s.Notice.Body == o.Notice.Body
}

// attractState is the attract loop while Model.screen is Attract.
type attractState struct {
	cur, next Slot
	hasNext   bool      // false: the loop ends after cur (nothing else can play)
	curAt     time.Time // when cur started
	seq       uint64    // last Seq given out; survives the loop stopping
}

// OnPlay sets a function called, without the model's lock held and in
// order, with a play event whenever an attract item starts or a notice is
// shown on the home rotation. The kiosk sends them to the agent (proof of
// play; the agent also keeps the file on screen).
func (m *Model) OnPlay(fn func(protocol.PlayEvent)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onPlay = fn
}

// OnBroken sets the function told when a held media file cannot be played
// (the UI reported its item failed), so the agent can report it; it runs
// after the model's lock is released.
func (m *Model) OnBroken(fn func(protocol.MediaError)) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.onBroken = fn
}

// media returns the path of the held file sha256 of kind k.
func (m *Model) media(sha256 string, k protocol.MediaKind) (string, bool) {
	for _, f := range m.content.Media {
		if f.SHA256 == sha256 && f.Kind == k && f.Path != "" {
			return f.Path, true
		}
	}
	return "", false
}

// slotLocked resolves item i of p at now; ok is false when it cannot be
// played: its file is not held or failed before, its notice is gone.
func (m *Model) slotLocked(now time.Time, p protocol.Playlist, i int) (Slot, bool) {
	it := p.Items[i]
	s := Slot{Playlist: p.ID, Index: i, Item: it, Duration: time.Duration(it.DurationMS) * time.Millisecond}
	switch it.Kind {
	case protocol.ItemImage, protocol.ItemVideo:
		kind := protocol.MediaImage
		if it.Kind == protocol.ItemVideo {
			kind, s.Duration = protocol.MediaVideo, 0
		}
		path, ok := m.media(it.Media, kind)
		if !ok {
			return s, false
		}
		if _, bad := m.broken[path]; bad {
			return s, false
		}
		s.Path = path
		return s, true
	case protocol.ItemNotice:
		for _, n := range m.content.Notices {
			if n.ID == it.Notice && n.Active(now) {
				s.Notice = n
				return s, true
			}
		}
	}
	return s, false
}

// firstPlayableLocked returns the first playable item of p from index from
// on, wrapping around; every item is tried once.
func (m *Model) firstPlayableLocked(now time.Time, p protocol.Playlist, from int) (Slot, bool) {
	n := len(p.Items)
	for k := 0; k < n; k++ {
		if s, ok := m.slotLocked(now, p, (from+k)%n); ok {
			return s, true
		}
	}
	return Slot{}, false
}

// playlistLocked returns the playlist to play at now: the first active one
// (in the agent's precedence order) with a playable item.
func (m *Model) playlistLocked(now time.Time) (protocol.Playlist, bool) {
	for _, p := range m.content.Playlists {
		if !p.Active(now) || len(p.Items) == 0 {
			continue
		}
		if _, ok := m.firstPlayableLocked(now, p, 0); ok {
			return p, true
		}
	}
	return protocol.Playlist{}, false
}

// afterLocked chooses the item to play after s: the next playable item of
// the same playlist, or, when another playlist now takes precedence, the
// first playable item of that one.
func (m *Model) afterLocked(now time.Time, s Slot) (Slot, bool) {
	p, ok := m.playlistLocked(now)
	if !ok {
		return Slot{}, false
	}
	from := 0
	if p.ID == s.Playlist {
		from = s.Index + 1
	}
	return m.firstPlayableLocked(now, p, from)
}

// numberLocked gives s a new Seq.
func (m *Model) numberLocked(s Slot) Slot {
	m.att.seq++
	s.Seq = m.att.seq
	return s
}

// tickAttractLocked starts the attract loop on an idle home screen, ends it
// when something takes over, and moves past an image or notice whose time
// is up.
func (m *Model) tickAttractLocked(now time.Time) {
	if m.screen == Attract {
		if m.current(now) != Attract { // urgent takeover or setup
			m.stopAttractLocked()
			return
		}
		if m.att.cur.Duration > 0 && now.Sub(m.att.curAt) >= m.att.cur.Duration {
			m.advanceLocked(now)
		}
		return
	}
	if m.current(now) != Home || m.submitting || now.Sub(m.lastAction) < m.cfg.AttractAfter {
		return
	}
	p, ok := m.playlistLocked(now)
	if !ok {
		return // nothing playable: the kiosk stays on Home
	}
	first, _ := m.firstPlayableLocked(now, p, 0)
	m.goHomeLocked()
	m.lang = m.cfg.Lang
	m.screen = Attract
	m.startLocked(now, m.numberLocked(first))
}

// startLocked puts s on screen, chooses the next item and reports the play.
func (m *Model) startLocked(now time.Time, s Slot) {
	m.att.cur, m.att.curAt = s, now
	next, ok := m.afterLocked(now, s)
	m.att.next, m.att.hasNext = Slot{}, ok
	if ok {
		m.att.next = m.numberLocked(next)
	}
	ev := protocol.PlayEvent{Kind: s.Item.Kind, At: now.UTC()}
	if s.Item.Kind == protocol.ItemNotice {
		ev.Notice = s.Item.Notice
	} else {
		ev.Media = s.Item.Media
	}
	m.plays = append(m.plays, ev)
}

// advanceLocked ends the current item: the prepared next item takes its
// place at once, or, if that can no longer play, whatever plays after the
// current one; with nothing playable the kiosk returns to Home.
func (m *Model) advanceLocked(now time.Time) {
	if next := m.att.next; m.att.hasNext {
		s, ok := m.slotLocked(now, protocol.Playlist{ID: next.Playlist, Items: []protocol.PlaylistItem{next.Item}}, 0)
		if ok && s.Path == next.Path && s.Notice.ID == next.Notice.ID {
			m.startLocked(now, next)
			return
		}
	}
	s, ok := m.afterLocked(now, m.att.cur)
	if !ok {
		m.stopAttractLocked()
		return
	}
	m.startLocked(now, m.numberLocked(s))
}

// stopAttractLocked returns from the attract loop to Home.
func (m *Model) stopAttractLocked() {
	if m.screen == Attract {
		m.screen = Home
	}
	m.att = attractState{seq: m.att.seq}
}

// contentChangedLocked applies new content to the attract loop: the item
// on screen plays on, and the next item is chosen again, so a playlist
// switch takes effect at the next item boundary. Failures of files the
// agent no longer holds are forgotten.
func (m *Model) contentChangedLocked() {
	for path := range m.broken {
		held := false
		for _, f := range m.content.Media {
			held = held || f.Path == path
		}
		if !held {
			delete(m.broken, path)
		}
	}
	if m.screen == Attract {
		m.rechooseNextLocked(m.clock)
	}
}

// rechooseNextLocked chooses the next item again, keeping the prepared one
// (and its Seq) when the choice is the same.
func (m *Model) rechooseNextLocked(now time.Time) {
	s, ok := m.afterLocked(now, m.att.cur)
	switch {
	case !ok:
		// Nothing else can play: the loop ends after the current item.
		m.att.next, m.att.hasNext = Slot{}, false
	case m.att.hasNext && s.same(m.att.next):
	default:
		m.att.next, m.att.hasNext = m.numberLocked(s), true
	}
}

// VideoEnded tells the model the video of slot seq played to its end: the
// next item starts.
func (m *Model) VideoEnded(seq uint64, now time.Time) {
	m.update(func() {
		if m.screen == Attract && m.att.cur.Seq == seq {
			m.advanceLocked(now)
		}
	})
}

// ItemFailed tells the model the file of slot seq could not be played
// (missing, unreadable, not decodable). The model remembers it, never
// plays it again while the agent holds the same file, and moves on: past
// the current item at once, or to another next item.
func (m *Model) ItemFailed(seq uint64, reason string, now time.Time) {
	m.update(func() {
		if m.screen != Attract {
			return
		}
		var s Slot
		switch seq {
		case m.att.cur.Seq:
			s = m.att.cur
		case m.att.next.Seq:
			if !m.att.hasNext {
				return
			}
			s = m.att.next
		default:
			return
		}
		if s.Path != "" {
			if _, known := m.broken[s.Path]; !known && s.Item.Media != "" {
				m.brokenQ = append(m.brokenQ, protocol.MediaError{SHA256: s.Item.Media, Reason: reasonText(reason), At: now})
			}
			m.broken[s.Path] = reason
		}
		if seq == m.att.cur.Seq {
			m.advanceLocked(now)
			return
		}
		m.rechooseNextLocked(now)
	})
}

// Broken returns the files that failed to play, by path, with the reason.
func (m *Model) Broken() map[string]string {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make(map[string]string, len(m.broken))
	for k, v := range m.broken {
		out[k] = v
	}
	return out
}

// LeaveAttract is a touch on the attract loop: back to Home at once, and
// the idle clock starts again.
func (m *Model) LeaveAttract(now time.Time) {
	m.update(func() {
		m.lastAction = now
		m.stopAttractLocked()
	})
}

// reasonText makes a failure reason fit a report: never empty, at most
// protocol.MaxReason characters.
func reasonText(reason string) string {
	if reason == "" {
		reason = "unknown error"
	}
	if r := []rune(reason); len(r) > protocol.MaxReason {
		return string(r[:protocol.MaxReason])
	}
	return reason
}
