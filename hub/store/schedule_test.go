package store

import (
	"testing"
	"time"
)

func TestScheduleStatus(t *testing.T) {
	now := time.Date(2026, 11, 26, 12, 0, 0, 0, time.UTC)
	var zero time.Time
	for _, tc := range []struct {
		name                   string
		from, until, withdrawn time.Time
		want                   string
	}{
		{"active, no end", now.Add(-time.Hour), zero, zero, StatusActive},
		{"active until later", now.Add(-time.Hour), now.Add(time.Hour), zero, StatusActive},
		{"scheduled", now.Add(time.Hour), zero, zero, StatusScheduled},
		{"expired at its end", now.Add(-2 * time.Hour), now, zero, StatusExpired},
		{"withdrawn beats the rest", now.Add(time.Hour), now.Add(2 * time.Hour), now, StatusWithdrawn},
	} {
		if got := ScheduleStatus(tc.from, tc.until, tc.withdrawn, now); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
