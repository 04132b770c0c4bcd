package screen

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

func sha(c byte) string { return strings.Repeat(string(c), 64) }

func video(c byte) protocol.PlaylistItem {
	return protocol.PlaylistItem{Kind: protocol.ItemVideo, Media: sha(c)}
}

func image(c byte, ms int64) protocol.PlaylistItem {
	return protocol.PlaylistItem{Kind: protocol.ItemImage, Media: sha(c), DurationMS: ms}
}

func noticeItem(id string, ms int64) protocol.PlaylistItem {
	return protocol.PlaylistItem{Kind: protocol.ItemNotice, Notice: id, DurationMS: ms}
}

func playlist(id string, items ...protocol.PlaylistItem) protocol.Playlist {
	return protocol.Playlist{
		ID: id, Name: "列表 " + id, Items: items, ValidFrom: t0.Add(-time.Hour),
		Targets: []protocol.Target{{Level: protocol.LevelCommunity, ID: "c1"}},
	}
}

// held returns the LocalMedia of the given items, as the agent lists them.
func held(items ...protocol.PlaylistItem) []protocol.LocalMedia {
	var out []protocol.LocalMedia
	for _, it := range items {
		k := protocol.MediaImage
		if it.Kind == protocol.ItemVideo {
			k = protocol.MediaVideo
		}
		out = append(out, protocol.LocalMedia{SHA256: it.Media, Kind: k, Path: "/media/" + it.Media[:1]})
	}
	return out
}

// recorder collects play events.
type recorder struct {
	mu     sync.Mutex
	events []protocol.PlayEvent
}

func (r *recorder) add(e protocol.PlayEvent) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *recorder) media() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, e := range r.events {
		if e.Media != "" {
			out = append(out, e.Media[:1])
		} else {
			out = append(out, e.Notice)
		}
	}
	return out
}

// attractModel returns a model holding c, with play events recorded, and
// the attract delay of 60 s.
func attractModel(t *testing.T, c protocol.LocalNotices) (*Model, *recorder) {
	t.Helper()
	m, err := New(Config{AttractAfter: time.Minute})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	r := &recorder{}
	m.OnPlay(r.add)
	m.Touch(t0)
	m.SetContent(c)
	return m, r
}

// label names what a slot shows, for comparisons: the media's first
// character or the notice id.
func label(s Slot) string {
	if s.Item.Kind == protocol.ItemNotice {
		return s.Notice.ID
	}
	return s.Path[len("/media/"):]
}

func TestAttractSequence(t *testing.T) {
	n := notice("n1", protocol.PriorityNormal, -time.Hour, 0)
	items := []protocol.PlaylistItem{image('a', 5000), video('b'), noticeItem("n1", 3000)}
	c := content(n)
	c.Playlists = []protocol.Playlist{playlist("p1", items...)}
	c.Media = held(items[0], items[1])
	m, rec := attractModel(t, c)

	m.Tick(t0.Add(59 * time.Second))
	if s := m.Screen(t0.Add(59 * time.Second)); s != Home {
		t.Fatalf("before AttractAfter: screen %v, want home", s)
	}
	now := t0.Add(60 * time.Second)
	m.Tick(now)
	v := m.View(now)
	if v.Screen != Attract || label(v.Current) != "a" || !v.HasNext || label(v.Next) != "b" {
		t.Fatalf("attract start: %v current %q next %q", v.Screen, label(v.Current), label(v.Next))
	}
	if v.Current.Duration != 5*time.Second || v.Next.Duration != 0 {
		t.Errorf("durations %v %v", v.Current.Duration, v.Next.Duration)
	}
	// The image holds for its duration, then the prepared video starts.
	m.Tick(now.Add(4 * time.Second))
	if got := m.View(now.Add(4 * time.Second)).Current.Seq; got != v.Current.Seq {
		t.Fatalf("image replaced before its time")
	}
	now = now.Add(5 * time.Second)
	m.Tick(now)
	v2 := m.View(now)
	if v2.Current.Seq != v.Next.Seq || label(v2.Current) != "b" || label(v2.Next) != "n1" {
		t.Fatalf("after image: current %q (seq %d, want %d) next %q", label(v2.Current), v2.Current.Seq, v.Next.Seq, label(v2.Next))
	}
	// A video waits for its end, however long.
	m.Tick(now.Add(time.Hour))
	if m.View(now).Current.Seq != v2.Current.Seq {
		t.Fatal("video replaced by the clock")
	}
	m.VideoEnded(v2.Current.Seq+100, now) // a stale slot: ignored
	m.VideoEnded(v2.Current.Seq, now)
	v3 := m.View(now)
	if label(v3.Current) != "n1" || v3.Current.Notice.Title != n.Title || label(v3.Next) != "a" {
		t.Fatalf("after video: current %q next %q", label(v3.Current), label(v3.Next))
	}
	// n1 first on the home rotation, then a, b and n1 in the loop.
	if got, want := rec.media(), []string{"n1", "a", "b", "n1"}; !slices.Equal(got, want) {
		t.Errorf("play events %q, want %q", got, want)
	}
	for _, e := range rec.events {
		if err := (protocol.PlayCount{Kind: e.Kind, Media: e.Media, Notice: e.Notice, Count: 1, Last: e.At}).Validate(); err != nil {
			t.Errorf("play event %+v invalid: %v", e, err)
		}
	}
}

func TestAttractNotStarted(t *testing.T) {
	later := t0.Add(2 * time.Minute)
	vid := video('v')
	tests := []struct {
		name   string
		change func(c *protocol.LocalNotices)
		status *protocol.AgentStatus
	}{
		{"nothing held", func(c *protocol.LocalNotices) { c.Media = nil }, nil},
		{"playlist not yet valid", func(c *protocol.LocalNotices) { c.Playlists[0].ValidFrom = t0.Add(time.Hour) }, nil},
		{"playlist ended", func(c *protocol.LocalNotices) { c.Playlists[0].ValidUntil = t0 }, nil},
		{"notice item without its notice", func(c *protocol.LocalNotices) {
			c.Playlists[0].Items = []protocol.PlaylistItem{noticeItem("gone", 2000)}
		}, nil},
		{"urgent notice", func(c *protocol.LocalNotices) {
			c.Notices = append(c.Notices, notice("u", protocol.PriorityUrgent, -time.Hour, 0))
		}, nil},
		{"setup", func(*protocol.LocalNotices) {}, &protocol.AgentStatus{Enrolled: false}},
		{"kind mismatch", func(c *protocol.LocalNotices) { c.Media[0].Kind = protocol.MediaImage }, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := content()
			c.Playlists = []protocol.Playlist{playlist("p", vid)}
			c.Media = held(vid)
			tt.change(&c)
			m, rec := attractModel(t, c)
			if tt.status != nil {
				m.SetStatus(*tt.status)
			}
			m.Tick(later)
			if s := m.Screen(later); s == Attract {
				t.Fatalf("attract started")
			}
			if v := m.View(later); v.HasNext || v.Current.Seq != 0 {
				t.Errorf("view has attract items off Attract: %+v", v.Current)
			}
			if got := rec.media(); slices.ContainsFunc(got, func(s string) bool { return s == "v" }) {
				t.Errorf("play events %q", got)
			}
		})
	}
}

func TestAttractTouchReturnsHome(t *testing.T) {
	vid := video('v')
	c := content()
	c.Playlists = []protocol.Playlist{playlist("p", vid)}
	c.Media = held(vid)
	m, _ := attractModel(t, c)
	now := t0.Add(time.Minute)
	m.Tick(now)
	if m.Screen(now) != Attract {
		t.Fatal("attract did not start")
	}
	m.LeaveAttract(now.Add(time.Second))
	if s := m.Screen(now.Add(time.Second)); s != Home {
		t.Fatalf("after touch: %v", s)
	}
	// The idle clock restarted with the touch.
	m.Tick(now.Add(50 * time.Second))
	if s := m.Screen(now.Add(50 * time.Second)); s != Home {
		t.Fatalf("attract again too early: %v", s)
	}
	m.Tick(now.Add(61 * time.Second))
	if s := m.Screen(now.Add(61 * time.Second)); s != Attract {
		t.Fatalf("attract did not start again: %v", s)
	}
	// Feedback from the attract loop is impossible: a touch goes home first.
	m.StartFeedback(now.Add(62 * time.Second))
	if s := m.Screen(now.Add(62 * time.Second)); s != Attract {
		t.Fatalf("StartFeedback on attract: %v", s)
	}
}

func TestAttractSkipsBroken(t *testing.T) {
	a, b, cc := video('a'), video('b'), image('c', 2000)
	c := content()
	c.Playlists = []protocol.Playlist{playlist("p", a, b, cc)}
	c.Media = held(a, b, cc)
	m, rec := attractModel(t, c)
	var reported []protocol.MediaError
	m.OnBroken(func(e protocol.MediaError) { reported = append(reported, e) })
	now := t0.Add(time.Minute)
	m.Tick(now)
	v := m.View(now)
	if label(v.Current) != "a" || label(v.Next) != "b" {
		t.Fatalf("start: %q %q", label(v.Current), label(v.Next))
	}
	// The next video fails while being prepared: another next is chosen.
	m.ItemFailed(v.Next.Seq, "decode: invalid data", now)
	v = m.View(now)
	if label(v.Current) != "a" || label(v.Next) != "c" {
		t.Fatalf("after next failed: %q %q", label(v.Current), label(v.Next))
	}
	// The current one fails: the next starts at once.
	m.ItemFailed(v.Current.Seq, "no such file", now)
	v = m.View(now)
	if v.Screen != Attract || label(v.Current) != "c" || label(v.Next) != "c" {
		t.Fatalf("after current failed: %v %q %q", v.Screen, label(v.Current), label(v.Next))
	}
	if v.Next.Seq == v.Current.Seq {
		t.Error("the same item twice in a row must be two slots")
	}
	if got := m.Broken(); len(got) != 2 || got["/media/a"] != "no such file" {
		t.Errorf("broken %v", got)
	}
	// The last playable item fails: home, never a blank screen; and the
	// loop does not start again with nothing playable.
	m.ItemFailed(v.Current.Seq, "bad image", now)
	if s := m.Screen(now); s != Home {
		t.Fatalf("nothing playable: %v", s)
	}
	m.Tick(now.Add(5 * time.Minute))
	if s := m.Screen(now.Add(5 * time.Minute)); s != Home {
		t.Fatalf("attract restarted with only broken files: %v", s)
	}
	if got, want := rec.media(), []string{"a", "c"}; !slices.Equal(got, want) {
		t.Errorf("plays %q, want %q", got, want)
	}
	// Each broken file is reported once, for the agent to tell the hub.
	var shas []string
	for _, e := range reported {
		shas = append(shas, e.SHA256)
		if e.Reason == "" || e.At.IsZero() {
			t.Errorf("report %+v lacks a reason or a time", e)
		}
	}
	if want := []string{sha('b'), sha('a'), sha('c')}; !slices.Equal(shas, want) {
		t.Errorf("reported %v, want %v", shas, want)
	}
	// The agent fetched the files again (new paths): they play again.
	c.Media = []protocol.LocalMedia{{SHA256: sha('a'), Kind: protocol.MediaVideo, Path: "/media/a2"}}
	m.SetContent(c)
	m.Tick(now.Add(6 * time.Minute))
	if v := m.View(now.Add(6 * time.Minute)); v.Screen != Attract || v.Current.Path != "/media/a2" {
		t.Fatalf("refetched file not played: %v %q", v.Screen, v.Current.Path)
	}
}

func TestAttractUrgentTakesOver(t *testing.T) {
	vid := video('v')
	c := content()
	c.Playlists = []protocol.Playlist{playlist("p", vid)}
	c.Media = held(vid)
	m, _ := attractModel(t, c)
	now := t0.Add(time.Minute)
	m.Tick(now)
	c.Notices = []protocol.Notice{notice("u", protocol.PriorityUrgent, -time.Hour, 0)}
	m.SetContent(c)
	if s := m.Screen(now); s != Urgent {
		t.Fatalf("urgent during attract: %v", s)
	}
	m.Tick(now.Add(time.Second))
	c.Notices = nil
	m.SetContent(c)
	if s := m.Screen(now.Add(time.Second)); s != Home {
		t.Fatalf("after urgent withdrawn: %v, want home (the loop ended)", s)
	}
}

// TestAttractPlaylistSwitchNoGap switches playlists while items play and
// checks every view on the way: never an attract screen without an item,
// the current item is never cut, and the new playlist starts at the next
// boundary.
func TestAttractPlaylistSwitchNoGap(t *testing.T) {
	a, b := image('a', 4000), video('b')
	x, y := video('x'), image('y', 2000)
	c := content()
	c.Playlists = []protocol.Playlist{playlist("p1", a, b)}
	c.Media = held(a, b, x, y)
	m, rec := attractModel(t, c)

	var views []View
	check := func(now time.Time) View {
		v := m.View(now)
		views = append(views, v)
		if v.Screen == Attract && (v.Current.Seq == 0 || (v.Current.Path == "" && v.Current.Notice.ID == "")) {
			t.Fatalf("empty attract screen at %v: %+v", now.Sub(t0), v)
		}
		return v
	}
	now := t0.Add(time.Minute)
	m.Tick(now)
	v := check(now)
	cur := v.Current.Seq

	// A higher-precedence playlist arrives while "a" shows: "a" stays,
	// the next item is now the new playlist's first.
	c.Playlists = []protocol.Playlist{playlist("p2", x, y), playlist("p1", a, b)}
	m.SetContent(c)
	v = check(now)
	if v.Current.Seq != cur || label(v.Next) != "x" || v.Next.Playlist != "p2" {
		t.Fatalf("after switch: current %q (seq %d→%d) next %q/%s", label(v.Current), cur, v.Current.Seq, label(v.Next), v.Next.Playlist)
	}
	prepared := v.Next.Seq
	// The same content again keeps the prepared next (its Seq).
	m.SetContent(c)
	if v = check(now); v.Next.Seq != prepared {
		t.Fatalf("identical content re-chose next: %d → %d", prepared, v.Next.Seq)
	}
	for s := 1; s <= 4; s++ {
		m.Tick(now.Add(time.Duration(s) * time.Second))
		check(now.Add(time.Duration(s) * time.Second))
	}
	now = now.Add(4 * time.Second)
	v = check(now)
	if v.Current.Seq != prepared || label(v.Current) != "x" || label(v.Next) != "y" {
		t.Fatalf("at the boundary: %q seq %d (want %d) next %q", label(v.Current), v.Current.Seq, prepared, label(v.Next))
	}
	// Withdraw everything while x plays: x plays on, then home.
	c.Playlists = nil
	m.SetContent(c)
	if v = check(now); v.Screen != Attract || v.HasNext {
		t.Fatalf("after withdrawal: %v hasNext %v", v.Screen, v.HasNext)
	}
	m.VideoEnded(v.Current.Seq, now.Add(time.Second))
	if v = check(now.Add(time.Second)); v.Screen != Home {
		t.Fatalf("after the last item: %v", v.Screen)
	}
	if got, want := rec.media(), []string{"a", "x"}; !slices.Equal(got, want) {
		t.Errorf("plays %q, want %q", got, want)
	}
	if len(views) < 8 {
		t.Errorf("only %d views checked", len(views))
	}
}

func TestHomeRotationReportsPlays(t *testing.T) {
	m, err := New(Config{RotateInterval: 10 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	rec := &recorder{}
	m.OnPlay(rec.add)
	m.SetContent(content(notice("n1", protocol.PriorityNormal, -2*time.Hour, 0), notice("n2", protocol.PriorityNormal, -time.Hour, 0)))
	m.Touch(t0)
	for s := 0; s <= 25; s++ {
		m.Tick(t0.Add(time.Duration(s) * time.Second))
	}
	if got, want := rec.media(), []string{"n2", "n1", "n2"}; !slices.Equal(got, want) {
		t.Errorf("plays %q, want %q", got, want)
	}
	for i, e := range rec.events {
		if want := t0.Add(time.Duration(10*i) * time.Second); !e.At.Equal(want) || e.Kind != protocol.ItemNotice {
			t.Errorf("event %d: %+v, want at %v", i, e, want)
		}
	}
}

func TestAttractConfig(t *testing.T) {
	for _, tt := range []struct {
		d    time.Duration
		want time.Duration
		err  bool
	}{{0, DefaultAttractAfter, false}, {5 * time.Second, 5 * time.Second, false}, {-1, 0, true}} {
		t.Run(fmt.Sprint(tt.d), func(t *testing.T) {
			m, err := New(Config{AttractAfter: tt.d})
			if (err != nil) != tt.err {
				t.Fatalf("err %v", err)
			}
			if err == nil && m.Config().AttractAfter != tt.want {
				t.Errorf("AttractAfter %v", m.Config().AttractAfter)
			}
		})
	}
}

// TestAttractIdleClockStartsAtFirstTick: a kiosk just started (no touch
// yet) waits AttractAfter from its first tick, not from the zero time.
func TestAttractIdleClockStartsAtFirstTick(t *testing.T) {
	vid := video('v')
	c := content()
	c.Playlists = []protocol.Playlist{playlist("p", vid)}
	c.Media = held(vid)
	m, err := New(Config{AttractAfter: time.Minute})
	if err != nil {
		t.Fatal(err)
	}
	m.SetContent(c)
	for _, tc := range []struct {
		at   time.Duration
		want Screen
	}{{0, Home}, {59 * time.Second, Home}, {60 * time.Second, Attract}} {
		m.Tick(t0.Add(tc.at))
		if got := m.Screen(t0.Add(tc.at)); got != tc.want {
			t.Fatalf("at %v: %v, want %v", tc.at, got, tc.want)
		}
	}
}
