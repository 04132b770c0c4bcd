package enrol_test

import (
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/enrol"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

const (
	kiosk = "k-sangcheng-01"
	code  = "123456789012"
)

var groups = []string{"shanghai", "huangpu", "wuliqiao", "sangcheng"}

func openStore(t *testing.T) *store.Store {
	t.Helper()
	st, err := store.Open(filepath.Join(t.TempDir(), "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	return st
}

type env struct {
	broker *hubtest.Broker
	hub    *hubtest.Hub
	srv    *hubtest.EnrolServer
}

func newEnv(t *testing.T) *env {
	t.Helper()
	b := hubtest.StartBroker(t)
	h := hubtest.NewHub(t, b)
	return &env{broker: b, hub: h, srv: h.StartEnrol(t, hubtest.Claim{Code: code, Kiosk: kiosk, Groups: groups, TicketFloor: 43})}
}

func (e *env) config() enrol.Config {
	return enrol.Config{HubURL: e.srv.URL, ClaimCode: "1234-5678-9012", CAPin: e.broker.CA.Pin, HardwareID: "test-hw-1", SoftwareVersion: "1.2.3"}
}

// notEnrolled checks that st holds no identity (the device key may exist).
func notEnrolled(t *testing.T, st *store.Store) {
	t.Helper()
	if _, ok, err := st.Identity(); err != nil || ok {
		t.Fatalf("identity stored after a failed enrolment: %v, %v", ok, err)
	}
}

func TestEnrolWithPin(t *testing.T) {
	e := newEnv(t)
	st := openStore(t)
	logs := hubtest.NewLogs(t)
	r, err := enrol.Enrol(context.Background(), st, e.config(), logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	id, ok, err := st.Identity()
	if err != nil || !ok {
		t.Fatalf("identity: %v, %v", ok, err)
	}
	if id.Kiosk != kiosk || id.MQTTPassword != r.MQTTPassword || id.CACert != string(e.broker.CA.PEM) || id.HubURL != e.srv.URL || len(id.Groups) != 4 {
		t.Fatalf("stored identity %v", id)
	}
	key, err := st.DeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	reqs := e.srv.Requests()
	if len(reqs) != 1 || reqs[0].PublicKey != protocol.EncodeKey(key.Public().(ed25519.PublicKey)) || reqs[0].HardwareID != "test-hw-1" || reqs[0].ClaimCode != code || reqs[0].SoftwareVersion != "1.2.3" {
		t.Fatalf("requests %+v", reqs)
	}
	rc, err := st.AddFeedback(kiosk, protocol.FeedbackRequest{Kind: protocol.KindHelp, Category: protocol.CatOther}, time.Now())
	if err != nil || !strings.HasSuffix(rc.Ticket, "-0043") {
		t.Fatalf("first ticket after enrolment %q, %v; want sequence 43 (the floor)", rc.Ticket, err)
	}
	for _, rec := range logs.All() {
		if strings.Contains(rec.String(), r.MQTTPassword) {
			t.Errorf("log line holds the MQTT password: %v", rec)
		}
	}
	if n := len(logs.Records(slog.LevelWarn, "")); n != 0 {
		t.Errorf("%d warnings with a pin: %v", n, logs.All())
	}
}

func TestEnrolTrustOnFirstUseWarns(t *testing.T) {
	e := newEnv(t)
	st := openStore(t)
	logs := hubtest.NewLogs(t)
	cfg := e.config()
	cfg.CAPin = ""
	if _, err := enrol.Enrol(context.Background(), st, cfg, logs.Logger()); err != nil {
		t.Fatal(err)
	}
	if len(logs.Records(slog.LevelWarn, "without a CA pin")) != 1 {
		t.Fatalf("no trust-on-first-use warning: %v", logs.All())
	}
	id, _, err := st.Identity()
	if err != nil || id.CACert != string(e.broker.CA.PEM) {
		t.Fatalf("pinned CA after TOFU: %v", err)
	}
}

func TestEnrolRetryReusesKey(t *testing.T) {
	e := newEnv(t)
	st := openStore(t)
	cfg := e.config()
	cfg.ClaimCode = "999999999999"
	if _, err := enrol.Enrol(context.Background(), st, cfg, slog.New(slog.DiscardHandler)); !errors.Is(err, enrol.ErrRefused) || !strings.Contains(err.Error(), "claim code unknown") {
		t.Fatalf("unknown code: %v, want ErrRefused with the hub's message", err)
	}
	notEnrolled(t, st)
	if _, err := enrol.Enrol(context.Background(), st, e.config(), slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	reqs := e.srv.Requests()
	if len(reqs) != 2 || reqs[0].PublicKey != reqs[1].PublicKey {
		t.Fatalf("retry sent another key: %+v", reqs)
	}
	// The code is single use.
	other := openStore(t)
	if _, err := enrol.Enrol(context.Background(), other, e.config(), slog.New(slog.DiscardHandler)); !errors.Is(err, enrol.ErrRefused) {
		t.Fatalf("code used twice: %v, want ErrRefused", err)
	}
	notEnrolled(t, other)
}

// TestEnrolUntrusted: a server the pin does not name never receives the
// claim code; a response whose CA did not sign the server (or is not the
// pinned one) is refused; nothing but the device key is stored.
func TestEnrolUntrusted(t *testing.T) {
	e := newEnv(t)
	other := hubtest.NewCA(t)
	good := e.hub.Enrolment(kiosk, groups...)
	respond := func(r protocol.EnrolResponse) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			if err := json.NewEncoder(w).Encode(r); err != nil {
				t.Error(err)
			}
		})
	}
	withCA := func(ca *hubtest.CA) protocol.EnrolResponse {
		r := good
		r.CACert = string(ca.PEM)
		return r
	}
	tests := []struct {
		name      string
		server    *hubtest.CA            // signs the server certificate
		response  protocol.EnrolResponse // what the server answers
		pin       string                 // "" for TOFU
		wantReach bool                   // whether the request may reach the server
	}{
		{"server from another CA than pinned", other, withCA(other), e.broker.CA.Pin, false},
		{"pinned server returns another CA", e.broker.CA, withCA(other), e.broker.CA.Pin, true},
		{"TOFU server returns a CA that did not sign it", other, withCA(e.broker.CA), "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var reached atomic.Bool
			h := respond(tc.response)
			srv := tc.server.StartTLS(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				reached.Store(true)
				h.ServeHTTP(w, r)
			}))
			st := openStore(t)
			cfg := e.config()
			cfg.HubURL, cfg.CAPin = srv.URL, tc.pin
			_, err := enrol.Enrol(context.Background(), st, cfg, slog.New(slog.DiscardHandler))
			if !errors.Is(err, enrol.ErrUntrusted) {
				t.Fatalf("Enrol = %v, want ErrUntrusted", err)
			}
			if reached.Load() && !tc.wantReach {
				t.Fatal("the claim code reached a server the pin does not name")
			}
			notEnrolled(t, st)
			if ok, err := st.HasDeviceKey(); err != nil || !ok {
				t.Fatalf("device key not kept: %v, %v", ok, err)
			}
		})
	}
}

func TestEnrolBadResponse(t *testing.T) {
	e := newEnv(t)
	good := e.hub.Enrolment(kiosk, groups...)
	goodJSON, err := json.Marshal(good)
	if err != nil {
		t.Fatal(err)
	}
	otherUser := good
	otherUser.MQTTUsername = "k-other"
	otherUserJSON, err := json.Marshal(otherUser)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		body string
		want error
	}{
		{"garbage", `<html>hello</html>`, enrol.ErrResponse},
		{"empty", ``, enrol.ErrResponse},
		{"oversized", `{"kiosk":"` + strings.Repeat("a", protocol.MaxEnrolResponseSize) + `"}`, enrol.ErrResponse},
		{"unknown field", strings.Replace(string(goodJSON), `{`, `{"admin":true,`, 1), enrol.ErrResponse},
		{"trailing data", string(goodJSON) + `{}`, enrol.ErrResponse},
		{"missing password", strings.Replace(string(goodJSON), good.MQTTPassword, "", 1), enrol.ErrResponse},
		{"username is not the kiosk", string(otherUserJSON), enrol.ErrResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := e.broker.CA.StartTLS(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if _, err := w.Write([]byte(tc.body)); err != nil {
					t.Error(err)
				}
			}))
			st := openStore(t)
			cfg := e.config()
			cfg.HubURL = srv.URL
			if _, err := enrol.Enrol(context.Background(), st, cfg, slog.New(slog.DiscardHandler)); !errors.Is(err, tc.want) {
				t.Fatalf("Enrol = %v, want %v", err, tc.want)
			}
			notEnrolled(t, st)
		})
	}
}

func TestEnrolConfigRefused(t *testing.T) {
	tests := []struct {
		name string
		cfg  enrol.Config
	}{
		{"no hub", enrol.Config{ClaimCode: code, HardwareID: "x"}},
		{"ftp hub", enrol.Config{HubURL: "ftp://hub", ClaimCode: code, HardwareID: "x"}},
		{"short code", enrol.Config{HubURL: "https://hub", ClaimCode: "1234", HardwareID: "x"}},
		{"letters in code", enrol.Config{HubURL: "https://hub", ClaimCode: "1234-5678-901a", HardwareID: "x"}},
		{"bad pin", enrol.Config{HubURL: "https://hub", ClaimCode: code, CAPin: "abcd", HardwareID: "x"}},
		{"pin over http", enrol.Config{HubURL: "http://hub", ClaimCode: code, CAPin: strings.Repeat("ab", 32), HardwareID: "x"}},
		{"hardware id with spaces", enrol.Config{HubURL: "https://hub", ClaimCode: code, HardwareID: "a b"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := openStore(t)
			if _, err := enrol.Enrol(context.Background(), st, tc.cfg, slog.New(slog.DiscardHandler)); !errors.Is(err, enrol.ErrConfig) {
				t.Fatalf("Enrol = %v, want ErrConfig", err)
			}
			if ok, err := st.HasDeviceKey(); err != nil || ok {
				t.Fatalf("device key made for a refused configuration: %v, %v", ok, err)
			}
		})
	}
}

func TestParsePin(t *testing.T) {
	hexPin := strings.Repeat("0a", 32)
	tests := []struct {
		name string
		in   string
		ok   bool
	}{
		{"lower hex", hexPin, true},
		{"upper hex", strings.ToUpper(hexPin), true},
		{"colons", strings.TrimSuffix(strings.Repeat("0A:", 32), ":"), true},
		{"short", hexPin[:62], false},
		{"long", hexPin + "00", false},
		{"not hex", strings.Repeat("zz", 32), false},
		{"empty", "", false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := enrol.ParsePin(tc.in); (err == nil) != tc.ok {
				t.Fatalf("ParsePin(%q) = %v", tc.in, err)
			}
		})
	}
}
