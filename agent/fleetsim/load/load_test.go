package load_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/fleetsim/load"
	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/orgtree"
)

func TestParseKioskList(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string
		wantErr string
	}{
		{"one", "k-0001", []string{"k-0001"}, ""},
		{"list with spaces", "k-1, k-3 ,k-2", []string{"k-1", "k-3", "k-2"}, ""},
		{"range", "k-0008..k-0011", []string{"k-0008", "k-0009", "k-0010", "k-0011"}, ""},
		{"range and ids", "a,k-01..k-02,b", []string{"a", "k-01", "k-02", "b"}, ""},
		{"range of one", "k-5..k-5", []string{"k-5"}, ""},
		{"empty", " , ", nil, "empty"},
		{"invalid id", "K-1", nil, "character"},
		{"twice", "k-1,k-1", nil, "twice"},
		{"overlapping ranges", "k-1..k-3,k-3..k-4", nil, "twice"},
		{"descending", "k-0010..k-0001", nil, "ascending"},
		{"different widths", "k-1..k-0010", nil, "digit count"},
		{"different prefixes", "a-1..b-9", nil, "same prefix"},
		{"no number", "a..b", nil, "PREFIX0001"},
		{"too many", "k-0000001..k-9999999", nil, "more than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			got, err := load.ParseKioskList(tc.in)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("ParseKioskList(%q) = %v, %v; want error about %q", tc.in, got, err, tc.wantErr)
				}
				return
			}
			if err != nil || !slices.Equal(got, tc.want) {
				t.Fatalf("ParseKioskList(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
			}
		})
	}
}

func TestPercentile(t *testing.T) {
	ms := func(v ...int) []time.Duration {
		var d []time.Duration
		for _, x := range v {
			d = append(d, time.Duration(x)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		name string
		d    []time.Duration
		p    float64
		want time.Duration
	}{
		{"none", nil, 50, 0},
		{"one", ms(7), 95, 7 * time.Millisecond},
		{"median of five unsorted", ms(5, 1, 4, 2, 3), 50, 3 * time.Millisecond},
		{"p95 of twenty is the 19th", ms(20, 19, 18, 17, 16, 15, 14, 13, 12, 11, 10, 9, 8, 7, 6, 5, 4, 3, 2, 1), 95, 19 * time.Millisecond},
		{"max", ms(3, 9, 1), 100, 9 * time.Millisecond},
		{"p0 is the min", ms(3, 9, 1), 0, time.Millisecond},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := load.Percentile(tc.d, tc.p); got != tc.want {
				t.Fatalf("Percentile = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestClientErrors(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/api/v1/kiosks":
			w.Write(bytes.Repeat([]byte(" "), load.MaxKiosksReply+1))
		case "/api/v1/notices":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"title is required"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := load.NewClient(srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"reply too large", func() error { _, err := c.Kiosks(ctx); return err }, "larger than"},
		{"error status with message", func() error { _, err := c.CreateNotice(ctx, load.NoticeRequest{}); return err }, "title is required"},
		{"not found", func() error { _, err := c.Feedback(ctx, "k-1", 10); return err }, "404"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, load.ErrReply) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrReply about %q", err, tc.want)
			}
		})
	}
	for _, bad := range []string{"", "127.0.0.1:8080", "ftp://x", "http://"} {
		if _, err := load.NewClient(bad); err == nil {
			t.Errorf("NewClient(%q) succeeded", bad)
		}
	}
}

// TestRun runs both scenarios with the real tool logic against a real hub
// with a 12-kiosk org, taking the kiosks from the hub, from an org file and
// from a list.
func TestRun(t *testing.T) {
	org, err := orgfile.Generate(12)
	if err != nil {
		t.Fatal(err)
	}
	orgPath := filepath.Join(t.TempDir(), "org.json")
	if err := os.WriteFile(orgPath, org, 0o600); err != nil {
		t.Fatal(err)
	}
	tree, err := orgtree.Parse(org)
	if err != nil {
		t.Fatal(err)
	}
	h, err := hub.New(hub.Config{DataDir: t.TempDir(), Org: tree, MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0"},
		slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	base := load.Config{HubURL: h.HTTPURL(), BrokerURL: h.BrokerURL(), Timeout: time.Minute}
	// Ingest runs share the agents' databases, as the same kiosks would: a
	// kiosk with a new database would repeat today's tickets, which the hub
	// rejects.
	devices := t.TempDir()
	tests := []struct {
		name    string
		cfg     func(load.Config) load.Config
		want    []string
		wantErr string
	}{
		{"fanout to kiosks the hub lists", func(c load.Config) load.Config {
			c.Mode, c.N, c.Notices = load.ModeFanout, 8, 3
			return c
		}, []string{"fleet: 8 agents started", "hub: sees all 8 kiosks online", "fanout: 3 notices to 8 agents: p50 ", "(3 withdrawn again)"}, ""},
		{"ingest from the org file, rounded up", func(c load.Config) load.Config {
			c.Mode, c.OrgFile, c.Records, c.Concurrency, c.Root = load.ModeIngest, orgPath, 30, 4, devices
			return c
		}, []string{"fleet: 12 agents started", "ingest: 36 records from 12 agents", "ingest: 36 stored once, 0 lost, 0 duplicates, 0 extra"}, ""},
		{"ingest from a list", func(c load.Config) load.Config {
			c.Mode, c.Kiosks, c.Records, c.Root = load.ModeIngest, []string{"k-0011", "k-0012"}, 5, devices
			return c
		}, []string{"fleet: 2 agents started", "ingest: 6 stored once, 0 lost"}, ""},
		{"unknown mode", func(c load.Config) load.Config { c.Mode = "soak"; return c }, nil, "mode"},
		{"more kiosks than known", func(c load.Config) load.Config {
			c.Mode, c.N = load.ModeFanout, 13
			return c
		}, nil, "only 12 kiosks"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out bytes.Buffer
			err := load.Run(ctx, tc.cfg(base), slog.New(slog.DiscardHandler), &out)
			t.Logf("output:\n%s", out.String())
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("Run = %v, want an error about %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for _, w := range tc.want {
				if !strings.Contains(out.String(), w) {
					t.Errorf("output lacks %q", w)
				}
			}
		})
	}
}
