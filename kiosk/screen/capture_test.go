package screen

import (
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// TestCapturable: a remote screenshot is allowed only on screens that show
// nothing of a resident's.
func TestCapturable(t *testing.T) {
	n := notice("n1", protocol.PriorityNormal, -time.Hour, 0)
	cases := []struct {
		name string
		to   func(m *Model, now time.Time)
		want bool
	}{
		{"home", func(*Model, time.Time) {}, true},
		{"notice detail", func(m *Model, now time.Time) { m.OpenNotice(now) }, true},
		{"feedback kind", func(m *Model, now time.Time) { m.StartFeedback(now) }, false},
		{"feedback category", func(m *Model, now time.Time) {
			m.StartFeedback(now)
			m.ChooseKind(protocol.KindComplaint, now)
		}, false},
		{"building keypad with digits", func(m *Model, now time.Time) {
			m.StartFeedback(now)
			m.ChooseKind(protocol.KindComplaint, now)
			m.ChooseCategory(protocol.CatFacade, now)
			m.Digit('7', now)
		}, false},
		{"case lookup", func(m *Model, now time.Time) { m.StartLookup(now) }, false},
		{"staff check-in", func(m *Model, now time.Time) { m.StartCheckin(now) }, false},
		{"back home after cancelling", func(m *Model, now time.Time) {
			m.StartFeedback(now)
			m.Cancel(now)
		}, true},
		{"home again after the idle timeout", func(m *Model, now time.Time) {
			m.StartFeedback(now)
			m.Tick(now.Add(DefaultIdleTimeout + time.Second))
		}, true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			m := newModel(t, Config{}, n)
			c.to(m, t0)
			now := t0
			if c.name == "home again after the idle timeout" {
				now = t0.Add(DefaultIdleTimeout + time.Second)
			}
			if got := m.Capturable(now); got != c.want {
				t.Fatalf("Capturable on %s = %v, want %v", m.Screen(now), got, c.want)
			}
		})
	}

	urgent := notice("u1", protocol.PriorityUrgent, -time.Hour, 0)
	m := newModel(t, Config{}, urgent)
	if m.Screen(t0) != Urgent || !m.Capturable(t0) {
		t.Errorf("urgent takeover: screen %s, capturable %v", m.Screen(t0), m.Capturable(t0))
	}
}
