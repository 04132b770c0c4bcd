package link

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	lo, hi := 500*time.Millisecond, 60*time.Second
	tests := []struct {
		name     string
		attempt  int
		min, max time.Duration
	}{
		{"first is the minimum", 0, lo, lo},
		{"second up to double", 1, lo, 2 * lo},
		{"sixth up to 32x", 5, lo, 32 * lo},
		{"capped at max", 20, lo, hi},
		{"no overflow", 200, lo, hi},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var top time.Duration
			for range 2000 {
				d := backoff(tc.attempt, lo, hi)
				if d < tc.min || d > tc.max {
					t.Fatalf("backoff(%d) = %v, want in [%v, %v]", tc.attempt, d, tc.min, tc.max)
				}
				top = max(top, d)
			}
			if tc.max > tc.min && top < tc.min+(tc.max-tc.min)/2 {
				t.Errorf("backoff(%d) never above %v: no jitter over the range", tc.attempt, top)
			}
		})
	}
}
