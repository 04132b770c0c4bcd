package cli

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestVersion(t *testing.T) {
	tests := []struct {
		name    string
		version string
		args    []string
		want    string
		wantErr bool
	}{
		{"built with a version", "v1.4.0-3-gabcdef-dirty", []string{"version"}, "v1.4.0-3-gabcdef-dirty\n", false},
		{"development build", "", []string{"version"}, "dev\n", false},
		{"no arguments", "v1", []string{"version", "extra"}, "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := Run(context.Background(), tc.args, strings.NewReader(""), &out, slog.New(slog.DiscardHandler),
				Options{Version: tc.version})
			if (err != nil) != tc.wantErr {
				t.Fatalf("hub %s: %v", strings.Join(tc.args, " "), err)
			}
			if !tc.wantErr && out.String() != tc.want {
				t.Errorf("hub %s printed %q, want %q", strings.Join(tc.args, " "), out.String(), tc.want)
			}
		})
	}
}

// TestServeCallsServing: serve hands the started hub's liveness check to
// Options.Serving, and an error from it stops the hub.
func TestServeCallsServing(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	errStop := errors.New("systemd went away")
	var checked error
	calls := 0
	err := Run(ctx, []string{"serve", "-data", t.TempDir(), "-org", filepath.Join("..", "..", "packaging", "demo", "org.json"),
		"-http", "127.0.0.1:0", "-mqtt", "127.0.0.1:0"}, strings.NewReader(""), &bytes.Buffer{}, slog.New(slog.DiscardHandler),
		Options{Version: "v1", Serving: func(ctx context.Context, check func(context.Context) error) error {
			calls++
			checked = check(ctx)
			return errStop
		}})
	if !errors.Is(err, errStop) {
		t.Errorf("serve = %v, want Serving's error", err)
	}
	if calls != 1 || checked != nil {
		t.Errorf("Serving called %d times; the check it got said %v, want a started, healthy hub", calls, checked)
	}
}
