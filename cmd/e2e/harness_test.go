package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/protocol"
)

// demoOrg is the sample org tree the demo runs with; the tests use it too so
// the demo's configuration is exercised.
var demoOrg = filepath.Join(repoRoot(), "packaging", "demo", "org.json")

// demoKiosk is a kiosk of the demo org tree; demoKiosk2 stands in another community.
const (
	demoKiosk = "k-sangcheng-01"
)

func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}

// testLogger logs through t.Logf so output shows only for failing tests.
func testLogger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// waitFor polls cond until it returns true or the deadline passes. It waits
// for a condition; it never assumes that a fixed delay is enough.
func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, error)) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for {
		ok, err := cond()
		if ok {
			return
		}
		lastErr = err
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s (last error: %v)", timeout, what, lastErr)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// freeAddr returns a loopback address with a port that was free a moment ago.
func freeAddr(t testing.TB) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find free port: %v", err)
	}
	addr := l.Addr().String()
	if err := l.Close(); err != nil {
		t.Fatalf("close probe listener: %v", err)
	}
	return addr
}

// brokers are where hub and agents meet: the hub's embedded mochi broker, or
// Debian's mosquitto configured from the files the hub generates.
var brokers = []string{"mochi", "mosquitto"}

// env is a hub on its data directory, with its broker, that a test can stop
// and start again on the same directory and ports.
type env struct {
	t   *testing.T
	cfg hub.Config
	hub *hub.Hub // nil while stopped
}

// newEnv prepares and starts a hub on broker ("mochi" or "mosquitto").
func newEnv(t *testing.T, broker string, beforeAck func(string)) *env {
	t.Helper()
	e := &env{t: t, cfg: hub.Config{
		DataDir:        t.TempDir(),
		OrgFile:        demoOrg,
		MQTTListen:     freeAddr(t), // fixed, so a restarted hub's broker comes back on the same port
		HTTPListen:     "127.0.0.1:0",
		EnrolPerMinute: 10000,
		BeforeAck:      beforeAck,
	}}
	if broker == "mosquitto" {
		e.cfg.BrokerURL, e.cfg.BrokerReload = startMosquitto(t, e.cfg)
	}
	e.start()
	t.Cleanup(e.stop)
	return e
}

// start starts the hub; an embedded broker comes with it.
func (e *env) start() {
	e.t.Helper()
	h, err := hub.New(e.cfg, testLogger(e.t).With("proc", "hub"))
	if err != nil {
		e.t.Fatalf("hub.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		e.t.Fatalf("hub.Start: %v", err)
	}
	e.hub = h
}

// stop stops the hub (and an embedded broker); calling it twice is harmless.
func (e *env) stop() {
	if e.hub == nil {
		return
	}
	if err := e.hub.Close(); err != nil {
		e.t.Errorf("hub.Close: %v", err)
	}
	e.hub = nil
}

// api returns a client of the running hub's staff API.
func (e *env) api() api {
	e.t.Helper()
	if e.hub == nil {
		e.t.Fatal("hub is not running")
	}
	return api{t: e.t, base: e.hub.HTTPURL(), client: e.hub.HTTPClient(), token: e.hub.AdminToken()}
}

// claim creates a claim code for kiosk's slot, as staff do for a technician.
func (e *env) claim(kiosk string) string {
	e.t.Helper()
	a := e.api()
	k, ok := a.kiosk(kiosk)
	if !ok {
		e.t.Fatalf("kiosk %s is not in the hub's org tree", kiosk)
	}
	var out struct {
		Code string `json:"code"`
	}
	a.do(http.MethodPost, "/api/v1/claims", map[string]string{"community": k.Community, "kiosk": kiosk}, &out)
	if out.Code == "" {
		e.t.Fatalf("claim for %s returned no code", kiosk)
	}
	return out.Code
}

// enrol enrols a fresh device (its data in dataDir) into kiosk's slot with a
// claim code, over HTTPS with the hub CA pinned, as `agent enrol` does, and
// returns what the hub answered (the tests use the device's credentials to
// play a misbehaving device).
func (e *env) enrol(kiosk, dataDir string) protocol.EnrolResponse {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	resp, err := agent.Enrol(ctx, agent.EnrolConfig{
		DataDir: dataDir, HubURL: e.hub.HTTPURL(), ClaimCode: e.claim(kiosk),
		CAPin: e.hub.CAPin(), SoftwareVersion: "e2e",
	}, testLogger(e.t).With("proc", "enrol"))
	if err != nil {
		e.t.Fatalf("enrol %s: %v", kiosk, err)
	}
	if resp.Kiosk != kiosk {
		e.t.Fatalf("enrolled into slot %s, want %s", resp.Kiosk, kiosk)
	}
	return resp
}

// startAgent starts an in-process agent on an enrolled dataDir.
func (e *env) startAgent(dataDir, socket string) *agent.Agent {
	t := e.t
	t.Helper()
	a, err := agent.New(agent.Config{
		DataDir:           dataDir,
		Socket:            socket,
		HubURL:            e.hub.HTTPURL(),
		CAPin:             e.hub.CAPin(),
		HeartbeatInterval: 500 * time.Millisecond,
		ReconnectMin:      50 * time.Millisecond,
		ReconnectMax:      500 * time.Millisecond,
		ResendAfter:       2 * time.Second,
		SoftwareVersion:   "e2e",
		MediaStagger:      -1, // fetch media at once
		MinFreeDisk:       -1, // test machines' disks may be fuller than a kiosk's
	}, testLogger(t).With("proc", "agent"))
	if err != nil {
		t.Fatalf("agent.New: %v", err)
	}
	if err := a.Start(context.Background()); err != nil {
		t.Fatalf("agent.Start: %v", err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("agent.Close: %v", err)
		}
	})
	return a
}

// startMosquitto runs Debian's mosquitto on cfg.MQTTListen with the
// configuration, password and ACL files the hub generates, for the test's
// lifetime, and returns the URL the hub connects to and the reload hook that
// makes mosquitto reread the files after an enrolment or revocation. A
// missing mosquitto fails the test: the test command installs it.
func startMosquitto(t *testing.T, cfg hub.Config) (string, func() error) {
	t.Helper()
	bin := os.Getenv("SHEQU_MOSQUITTO")
	if bin == "" {
		var err error
		if bin, err = exec.LookPath("mosquitto"); err != nil {
			bin = "/usr/sbin/mosquitto"
		}
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("mosquitto not found (%v): run packaging/dev/deps.sh or set SHEQU_MOSQUITTO", err)
	}
	conf, err := hub.PrepareExternalBroker(cfg)
	if err != nil {
		t.Fatalf("prepare mosquitto files: %v", err)
	}
	if os.Geteuid() == 0 {
		// As root mosquitto would switch to the mosquitto user, which cannot
		// read the test's private temporary directory.
		conf += "user root\n"
	}
	confPath := filepath.Join(t.TempDir(), "mosquitto.conf")
	if err := os.WriteFile(confPath, []byte(conf+"log_dest stderr\n"), 0o600); err != nil {
		t.Fatalf("write mosquitto config: %v", err)
	}
	cmd := exec.Command(bin, "-c", confPath)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill mosquitto: %v", err)
		}
		if err := cmd.Wait(); err != nil && t.Failed() {
			t.Logf("mosquitto exited: %v; output:\n%s", err, out.String())
		}
	})
	waitFor(t, 10*time.Second, "mosquitto to listen on "+cfg.MQTTListen, func() (bool, error) {
		c, err := net.DialTimeout("tcp", cfg.MQTTListen, time.Second)
		if err != nil {
			return false, err
		}
		return true, c.Close()
	})
	return hub.ExternalBrokerURL(cfg), func() error { return cmd.Process.Signal(syscall.SIGHUP) }
}

// api is a small client of the hub's HTTP API.
type api struct {
	t      testing.TB
	base   string
	client *http.Client // trusts the hub CA
	token  string       // staff API bearer token
}

func (a api) do(method, path string, in, out any) int {
	a.t.Helper()
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			a.t.Fatalf("encode %s %s: %v", method, path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, a.base+path, body)
	if err != nil {
		a.t.Fatalf("request %s %s: %v", method, path, err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+a.token)
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		a.t.Fatalf("read %s %s: %v", method, path, err)
	}
	if resp.StatusCode >= 300 {
		a.t.Fatalf("%s %s: %s: %s", method, path, resp.Status, data)
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			a.t.Fatalf("decode %s %s: %v: %s", method, path, err, data)
		}
	}
	return resp.StatusCode
}

// hubNotice is the part of the hub's notice representation the tests read.
type hubNotice struct {
	protocol.Notice
	Status string `json:"status"`
}

func (a api) createNotice(title string, priority protocol.Priority, targets ...protocol.Target) hubNotice {
	a.t.Helper()
	var n hubNotice
	a.do(http.MethodPost, "/api/v1/notices", map[string]any{
		"title":    title,
		"body":     "正文：" + title,
		"category": protocol.NoticeEnforcement,
		"priority": priority,
		"targets":  targets,
	}, &n)
	if n.ID == "" {
		a.t.Fatalf("created notice %q has no id", title)
	}
	return n
}

func (a api) withdraw(id string) {
	a.t.Helper()
	a.do(http.MethodPost, "/api/v1/notices/"+id+"/withdraw", nil, nil)
}

// feedbackRow is the part of the hub's feedback listing the tests read.
type feedbackRow struct {
	ID     string `json:"id"`
	Ticket string `json:"ticket"`
	Kiosk  string `json:"kiosk"`
	Kind   string `json:"kind"`
}

func (a api) feedback() []feedbackRow {
	a.t.Helper()
	var out struct {
		Feedback []feedbackRow `json:"feedback"`
	}
	a.do(http.MethodGet, "/api/v1/feedback?limit=1000", nil, &out)
	return out.Feedback
}

// kioskRow is the part of the hub's kiosk listing the tests read.
type kioskRow struct {
	ID             string `json:"id"`
	Community      string `json:"community"`
	Online         bool   `json:"online"`
	OutboxDepth    int    `json:"outbox_depth"`
	ContentVersion int64  `json:"content_version"`
	DesiredVersion int64  `json:"desired_version"`
}

func (a api) kiosk(id string) (kioskRow, bool) {
	a.t.Helper()
	var out struct {
		Kiosks []kioskRow `json:"kiosks"`
	}
	a.do(http.MethodGet, "/api/v1/kiosks", nil, &out)
	for _, k := range out.Kiosks {
		if k.ID == id {
			return k, true
		}
	}
	return kioskRow{}, false
}

func kioskTarget(kiosk string) protocol.Target {
	return protocol.Target{Level: protocol.LevelKiosk, ID: kiosk}
}

// sampleFeedback is a complaint as a resident would file it on the kiosk.
func sampleFeedback(room string) protocol.FeedbackRequest {
	return protocol.FeedbackRequest{
		Kind:        protocol.KindComplaint,
		Category:    protocol.CatIllegalConstruction,
		Where:       protocol.Where{Building: "12", Unit: "3", Room: room},
		Description: "楼顶违法搭建",
		Phone:       "13800138000",
	}
}
