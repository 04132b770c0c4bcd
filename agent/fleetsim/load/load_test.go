package load_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/fleetsim/load"
	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/pki"
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
	const token = "s3cret-token"
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer "+token {
			w.WriteHeader(http.StatusUnauthorized)
			fmt.Fprint(w, `{"error":"admin token required"}`)
			return
		}
		switch r.URL.Path {
		case "/api/v1/kiosks":
			w.Write(bytes.Repeat([]byte(" "), load.MaxKiosksReply+1))
		case "/api/v1/notices":
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `{"error":"title is required"}`)
		case "/api/v1/claims":
			w.WriteHeader(http.StatusCreated)
			fmt.Fprint(w, `{"code":"1234-5678"}`)
		default:
			http.NotFound(w, r)
		}
	}))
	defer srv.Close()
	c, err := load.NewClient(load.ClientConfig{HubURL: srv.URL, Token: token})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	wrong, err := load.NewClient(load.ClientConfig{HubURL: srv.URL, Token: "not-it"})
	if err != nil {
		t.Fatal(err)
	}
	defer wrong.Close()
	ctx := context.Background()
	tests := []struct {
		name string
		call func() error
		want string
	}{
		{"reply too large", func() error { _, err := c.Kiosks(ctx); return err }, "larger than"},
		{"error status with message", func() error { _, err := c.CreateNotice(ctx, load.NoticeRequest{}); return err }, "title is required"},
		{"not found", func() error { _, err := c.Feedback(ctx, "k-1", 10); return err }, "404"},
		{"claim code too short", func() error { _, err := c.CreateClaim(ctx, "c-1", "k-1"); return err }, "12 digits"},
		{"wrong token", func() error { _, err := wrong.CreateClaim(ctx, "c-1", "k-1"); return err }, "401"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.call()
			if !errors.Is(err, load.ErrReply) || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want ErrReply about %q", err, tc.want)
			}
		})
	}
	pin := strings.Repeat("ab", 32)
	for _, bad := range []load.ClientConfig{
		{HubURL: "", Token: token},
		{HubURL: "127.0.0.1:8080", Token: token},
		{HubURL: "ftp://x", Token: token},
		{HubURL: "https://", Token: token, CAPin: pin},
		{HubURL: "https://127.0.0.1:8080", CAPin: pin},
		{HubURL: "https://127.0.0.1:8080", Token: "two words", CAPin: pin},
		{HubURL: "https://127.0.0.1:8080", Token: token},
		{HubURL: "https://127.0.0.1:8080", Token: token, CAPin: "abcd"},
		{HubURL: "http://127.0.0.1:8080", Token: token, CAPin: pin},
	} {
		if c, err := load.NewClient(bad); err == nil {
			c.Close()
			t.Errorf("NewClient(%+v) succeeded", bad)
		}
	}
}

// TestClientPinsCA checks the client's TLS: it talks to a server whose
// chain holds the pinned CA, and refuses one that does not, before any
// request (and so the admin token) is sent.
func TestClientPinsCA(t *testing.T) {
	var requests atomic.Int32
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		requests.Add(1)
		fmt.Fprint(w, `{"kiosks":[{"id":"k-0001","community":"c-1","in_org_tree":true}]}`)
	}))
	defer srv.Close()
	// httptest's certificate is its own CA.
	sum := sha256.Sum256(srv.Certificate().Raw)
	tests := []struct {
		name     string
		pin      string
		wantErr  string
		requests int32
	}{
		{"pinned CA", hex.EncodeToString(sum[:]), "", 1},
		{"pin in capitals with colons", strings.ToUpper(colons(sum[:])), "", 1},
		{"another CA", strings.Repeat("0f", 32), "does not contain the pinned CA", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			requests.Store(0)
			c, err := load.NewClient(load.ClientConfig{HubURL: srv.URL, Token: "tok", CAPin: tc.pin})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			ks, err := c.Kiosks(context.Background())
			if tc.wantErr == "" && (err != nil || len(ks) != 1 || ks[0].Community != "c-1") {
				t.Fatalf("Kiosks = %+v, %v", ks, err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("Kiosks = %v, want an error about %q", err, tc.wantErr)
			}
			if got := requests.Load(); got != tc.requests {
				t.Fatalf("server saw %d requests, want %d", got, tc.requests)
			}
		})
	}
}

func colons(b []byte) string {
	parts := make([]string, len(b))
	for i, x := range b {
		parts[i] = hex.EncodeToString([]byte{x})
	}
	return strings.Join(parts, ":")
}

// TestRun runs both scenarios with the real tool logic against a real hub
// (TLS, admin token, signed downlink, agents enrolled with claim codes) with
// a 12-kiosk org, taking the kiosks from the hub, from an org file and from a
// list, and the credentials from the flags or the hub's data directory.
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
	hubData := t.TempDir()
	h, err := hub.New(hub.Config{DataDir: hubData, Org: tree, MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		EnrolPerMinute: 10000}, slog.New(slog.DiscardHandler))
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
	// The files the tool reads are where the hub writes them.
	if load.AdminTokenFile != hub.AdminTokenFile || load.CAFile != path.Join(hub.TLSDir, pki.CAFile) {
		t.Fatalf("load reads %s and %s, the hub writes %s and %s/%s",
			load.AdminTokenFile, load.CAFile, hub.AdminTokenFile, hub.TLSDir, pki.CAFile)
	}
	if tok, pin, err := load.HubCredentials(hubData); err != nil || tok != h.AdminToken() || pin != h.CAPin() {
		t.Fatalf("HubCredentials = %q, %q, %v; want the hub's token and CA pin %s", tok, pin, err, h.CAPin())
	}
	base := load.Config{HubURL: h.HTTPURL(), Token: h.AdminToken(), CAPin: h.CAPin(), Timeout: time.Minute}
	// Ingest runs share the agents' databases, as the same kiosks would, so
	// the second run's agents are enrolled already.
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
		}, []string{"fleet: 8 agents started", "(8 enrolled now, 0 were enrolled already)", "hub: sees all 8 kiosks online",
			"fanout: 3 notices to 8 agents: p50 ", "(3 withdrawn again)"}, ""},
		{"ingest from the org file, rounded up", func(c load.Config) load.Config {
			c.Mode, c.OrgFile, c.Records, c.Concurrency, c.Root = load.ModeIngest, orgPath, 30, 4, devices
			return c
		}, []string{"fleet: 12 agents started", "(12 enrolled now, 0 were enrolled already)",
			"ingest: 36 records from 12 agents", "ingest: 36 stored once, 0 lost, 0 duplicates, 0 extra"}, ""},
		{"ingest from a list, agents enrolled already", func(c load.Config) load.Config {
			c.Mode, c.Kiosks, c.Records, c.Root = load.ModeIngest, []string{"k-0011", "k-0012"}, 5, devices
			return c
		}, []string{"fleet: 2 agents started", "(0 enrolled now, 2 were enrolled already)", "ingest: 6 stored once, 0 lost"}, ""},
		// New devices in the slots of kiosks that sent records today: the
		// hub's ticket floor at enrolment keeps their tickets new.
		{"ingest from new devices, credentials from the hub's data directory", func(c load.Config) load.Config {
			c.Token, c.CAPin, c.HubData = "", "", hubData
			c.Mode, c.Kiosks, c.Records, c.EnrolConcurrency = load.ModeIngest, []string{"k-0011", "k-0012"}, 4, 1
			return c
		}, []string{"(2 enrolled now, 0 were enrolled already)", "ingest: 4 stored once, 0 lost, 0 duplicates, 0 extra"}, ""},
		{"wrong admin token", func(c load.Config) load.Config {
			c.Mode, c.Token = load.ModeFanout, "not-the-token"
			return c
		}, nil, "401"},
		{"another hub's CA pin", func(c load.Config) load.Config {
			c.Mode, c.CAPin = load.ModeFanout, strings.Repeat("0f", 32)
			return c
		}, nil, "does not contain the pinned CA"},
		{"no credentials", func(c load.Config) load.Config {
			c.Mode, c.Token = load.ModeFanout, ""
			return c
		}, nil, "admin token is required"},
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
