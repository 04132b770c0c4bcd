package link

import (
	"strings"
	"testing"
	"time"
)

func TestCheck(t *testing.T) {
	var defaults Config
	defaults.setDefaults()
	if got, want := defaults.stallAfter(), 2*time.Minute+33*time.Second+time.Minute; got != want {
		t.Errorf("stallAfter with the defaults = %v, want %v", got, want)
	}
	tests := []struct {
		name    string
		idle    time.Duration // since the goroutine last came round
		wantErr bool
	}{
		{"just turned", 0, false},
		{"waiting to reconnect", defaults.ReconnectMax + defaults.ConnectTimeout, false},
		{"stuck", defaults.stallAfter() + time.Second, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			l := &Link{cfg: defaults, born: time.Now().Add(-tc.idle)} // turn 0: at born
			err := l.Check()
			if (err != nil) != tc.wantErr {
				t.Fatalf("Check after %v idle = %v", tc.idle, err)
			}
			if err != nil && !strings.Contains(err.Error(), "no progress") {
				t.Errorf("Check = %v, want it to say no progress", err)
			}
		})
	}
}
