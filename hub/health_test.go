package hub

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/api"
)

// healthz fetches GET /healthz without a token.
func healthz(t *testing.T, h *Hub) (int, api.Health) {
	t.Helper()
	resp, err := h.HTTPClient().Get(h.HTTPURL() + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var out api.Health
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatalf("GET /healthz: %d %s: %v", resp.StatusCode, b, err)
	}
	return resp.StatusCode, out
}

// TestHealth breaks one thing at a time and checks that /healthz names it
// with 503, and that Check (the watchdog's) fails only for what a restart
// can cure.
func TestHealth(t *testing.T) {
	const version = "v9.9.9-test"
	closeBroker := func(t *testing.T, h *Hub) {
		if err := h.broker.Close(); err != nil {
			t.Fatal(err)
		}
		h.broker = nil // closed once only
		deadline := time.Now().Add(waitFor)
		for {
			if _, err := h.checkBroker(h.fleet); err != nil {
				return
			}
			if time.Now().After(deadline) {
				t.Fatal("the hub did not notice that the broker is gone")
			}
			// Wait for the client's connection-lost handler.
			<-time.After(10 * time.Millisecond)
		}
	}
	tests := []struct {
		name      string
		cfg       func(*Config)
		breakIt   func(*testing.T, *Hub)
		failing   string // the failing check; "" for none
		reason    string // in its reason
		checkFail bool   // Check fails too
	}{
		{"healthy", nil, nil, "", "", false},
		{"database closed", nil, func(t *testing.T, h *Hub) {
			if err := h.store.Close(); err != nil {
				t.Fatal(err)
			}
		}, CheckDatabase, "closed", true},
		{"disk floor above the free space", func(c *Config) { c.MinFreeDisk = 1 << 60 }, nil,
			CheckDisk, "below the floor", false},
		{"loop stuck", nil, func(t *testing.T, h *Hub) { h.loopTurn.Store(-int64(time.Hour)) },
			CheckLoop, "no progress", true},
		{"broker gone, within the grace", nil, closeBroker, CheckBroker, "not connected", false},
		{"broker gone for longer than the grace", func(c *Config) { c.BrokerGrace = time.Nanosecond }, closeBroker,
			CheckBroker, "not connected", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := Config{DataDir: t.TempDir(), Org: demoTree(t), MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0", Version: version}
			if tc.cfg != nil {
				tc.cfg(&cfg)
			}
			h, err := New(cfg, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			ctx, cancel := context.WithTimeout(context.Background(), waitFor)
			defer cancel()
			if err := h.Start(ctx); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := h.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if tc.breakIt != nil {
				tc.breakIt(t, h)
			}

			code, got := healthz(t, h)
			wantCode, wantStatus := http.StatusOK, api.HealthOK
			if tc.failing != "" {
				wantCode, wantStatus = http.StatusServiceUnavailable, api.HealthFailing
			}
			if code != wantCode || got.Status != wantStatus || got.Version != version {
				t.Errorf("GET /healthz = %d %+v, want %d %q version %q", code, got, wantCode, wantStatus, version)
			}
			for _, name := range []string{CheckDatabase, CheckBroker, CheckDisk, CheckLoop} {
				v, ok := got.Checks[name]
				switch {
				case !ok:
					t.Errorf("check %s missing: %+v", name, got.Checks)
				case name == tc.failing && !strings.Contains(v, tc.reason):
					t.Errorf("check %s = %q, want its reason (%q)", name, v, tc.reason)
				case name != tc.failing && v != api.HealthOK:
					t.Errorf("check %s = %q, want ok", name, v)
				}
			}

			err = h.Check(ctx)
			switch {
			case tc.checkFail && (err == nil || !strings.Contains(err.Error(), tc.failing+": ")):
				t.Errorf("Check = %v, want a failure of %s", err, tc.failing)
			case !tc.checkFail && err != nil:
				t.Errorf("Check = %v, want nil", err)
			}
		})
	}
}

// TestHealthNotRunning: before Start and after Close the hub is unhealthy.
func TestHealthNotRunning(t *testing.T) {
	h, err := New(Config{DataDir: t.TempDir(), Org: demoTree(t)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Check(context.Background()); err == nil {
		t.Error("Check of a hub that never started passed")
	}
	if got := h.Health(context.Background()); got.Status != api.HealthFailing || got.Version != "dev" {
		t.Errorf("Health of a hub that never started = %+v", got)
	}
	h = startHub(t, t.TempDir(), nil)
	if err := h.Check(context.Background()); err != nil {
		t.Fatalf("Check of a started hub: %v", err)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	if err := h.Check(context.Background()); err == nil {
		t.Error("Check of a closed hub passed")
	}
}
