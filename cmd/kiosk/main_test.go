package main

import (
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/i18n"
)

func TestParse(t *testing.T) {
	tests := []struct {
		name    string
		size    string
		lang    string
		idle    time.Duration
		attract time.Duration
		wantErr bool
	}{
		{"defaults", "1080x1920", "zh", 90 * time.Second, time.Minute, false},
		{"english small", "540x960", "en", time.Minute, 5 * time.Second, false},
		{"bad size", "1080", "zh", time.Minute, time.Minute, true},
		{"negative size", "-1x5", "zh", time.Minute, time.Minute, true},
		{"bad lang", "1080x1920", "fr", time.Minute, time.Minute, true},
		{"zero idle", "1080x1920", "zh", 0, time.Minute, true},
		{"zero attract", "1080x1920", "zh", time.Minute, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg, err := parse("s.sock", true, tt.size, tt.lang, tt.idle, tt.attract, "", "")
			if (err != nil) != tt.wantErr {
				t.Fatalf("parse error = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && (cfg.size.Width <= 0 || cfg.screen.IdleTimeout != tt.idle || cfg.screen.AttractAfter != tt.attract || cfg.screen.Lang != i18n.Lang(tt.lang)) {
				t.Errorf("config %+v", cfg)
			}
		})
	}
}

func TestFFprobeBeside(t *testing.T) {
	for _, tt := range []struct{ ffmpeg, want string }{
		{"ffmpeg", "ffprobe"},
		{"/usr/bin/ffmpeg", "/usr/bin/ffprobe"},
		{"/opt/ffmpeg-6/bin/ffmpeg", "/opt/ffmpeg-6/bin/ffprobe"},
	} {
		if got := ffprobeBeside(tt.ffmpeg); got != tt.want {
			t.Errorf("ffprobeBeside(%q) = %q, want %q", tt.ffmpeg, got, tt.want)
		}
	}
}
