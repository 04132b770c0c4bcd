package cli

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub"
)

func TestPhoneRetentionFlag(t *testing.T) {
	tests := []struct {
		name    string
		days    int
		want    time.Duration
		wantErr bool
	}{
		{"default", int(hub.DefaultPhoneRetention / day), 180 * 24 * time.Hour, false},
		{"one day", 1, 24 * time.Hour, false},
		{"forever", 0, -1, false},
		{"hundred years", maxRetentionDays, maxRetentionDays * 24 * time.Hour, false},
		{"negative", -1, 0, true},
		{"too long", maxRetentionDays + 1, 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := phoneRetention(tt.days)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("phoneRetention(%d) = %v, %v; want %v, error %v", tt.days, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestServeRejectsBadRetention: serve refuses a negative retention before
// starting anything.
func TestServeRejectsBadRetention(t *testing.T) {
	var out bytes.Buffer
	err := Run(context.Background(), []string{"serve", "-data", t.TempDir(), "-org", "org.json", "-phone-retention-days", "-5"},
		strings.NewReader(""), &out, slog.New(slog.DiscardHandler), Options{})
	if err == nil || !strings.Contains(err.Error(), "-phone-retention-days") {
		t.Errorf("serve with -phone-retention-days -5: %v, want an error naming the flag", err)
	}
}
