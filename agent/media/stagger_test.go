package media

import (
	"fmt"
	"testing"
	"time"
)

// TestStagger: start delays fall within Config.Stagger, differ between
// kiosks for one file (so a fleet does not ask at once), and are zero when
// the stagger is off.
func TestStagger(t *testing.T) {
	const sha = "495fa2bf1c3ec836ee16b924d0f0d1958c535fcd4055312488c768204a7288ba"
	tests := []struct {
		name    string
		stagger time.Duration
		max     time.Duration // delays are below this
		spread  bool          // 100 kiosks get at least 50 different delays
	}{
		{"default", 0, 60 * time.Second, true},
		{"ten minutes", 10 * time.Minute, 10 * time.Minute, true},
		{"off", -1, 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			seen := map[time.Duration]bool{}
			for i := range 100 {
				cfg := Config{Kiosk: fmt.Sprintf("k-%03d", i), Stagger: tc.stagger}
				cfg.setDefaults()
				c := &Cache{cfg: cfg}
				d := c.stagger(sha)
				if d < 0 || d >= tc.max {
					t.Fatalf("kiosk %s: delay %v out of [0, %v)", cfg.Kiosk, d, tc.max)
				}
				if d != c.stagger(sha) {
					t.Fatal("delay is not stable")
				}
				seen[d] = true
			}
			if tc.spread != (len(seen) >= 50) {
				t.Errorf("%d different delays among 100 kiosks", len(seen))
			}
		})
	}
}
