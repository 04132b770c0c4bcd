package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
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

// broker is where hub and agents meet: the hub's embedded mochi broker, or an
// external mosquitto.
type broker struct {
	name string
	// start returns the external broker URL, or "" for the hub's embedded one.
	start func(t testing.TB) string
}

var brokers = []broker{
	{name: "mochi", start: func(testing.TB) string { return "" }},
	{name: "mosquitto", start: startMosquitto},
}

// startMosquitto runs Debian's mosquitto on a free loopback port for the
// test's lifetime and returns its URL. A missing mosquitto fails the test:
// the test command installs it.
func startMosquitto(t testing.TB) string {
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
	addr := freeAddr(t)
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatalf("split %q: %v", addr, err)
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "mosquitto.conf")
	cfg := fmt.Sprintf("listener %s 127.0.0.1\nallow_anonymous true\npersistence false\nmax_inflight_messages 0\nmax_queued_messages 10000\n", port)
	if err := os.WriteFile(conf, []byte(cfg), 0o600); err != nil {
		t.Fatalf("write mosquitto config: %v", err)
	}
	cmd := exec.Command(bin, "-c", conf)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	t.Cleanup(func() {
		if err := cmd.Process.Kill(); err != nil {
			t.Logf("kill mosquitto: %v", err)
		}
		if err := cmd.Wait(); err != nil {
			t.Logf("mosquitto exited: %v; output:\n%s", err, out.String())
		}
	})
	waitFor(t, 10*time.Second, "mosquitto to listen on "+addr, func() (bool, error) {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err != nil {
			return false, err
		}
		return true, c.Close()
	})
	return "tcp://" + addr
}

// testHub is a hub running in this test process.
type testHub struct {
	*hub.Hub
	cfg hub.Config
}

// startHub starts a hub on dataDir. With brokerURL empty it runs its embedded
// broker on mqttAddr (a free port when empty).
func startHub(t testing.TB, dataDir, brokerURL, mqttAddr string, beforeAck func(string)) *testHub {
	t.Helper()
	if brokerURL == "" && mqttAddr == "" {
		mqttAddr = "127.0.0.1:0"
	}
	cfg := hub.Config{
		DataDir:    dataDir,
		OrgFile:    demoOrg,
		MQTTListen: mqttAddr,
		BrokerURL:  brokerURL,
		HTTPListen: "127.0.0.1:0",
		BeforeAck:  beforeAck,
	}
	h, err := hub.New(cfg, testLogger(t).With("proc", "hub"))
	if err != nil {
		t.Fatalf("hub.New: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatalf("hub.Start: %v", err)
	}
	th := &testHub{Hub: h, cfg: cfg}
	t.Cleanup(func() { th.stop(t) })
	return th
}

// stop closes the hub; calling it twice is harmless.
func (h *testHub) stop(t testing.TB) {
	if h.Hub == nil {
		return
	}
	if err := h.Close(); err != nil {
		t.Errorf("hub.Close: %v", err)
	}
	h.Hub = nil
}

// startAgent starts an in-process agent for kiosk on brokerURL.
func startAgent(t testing.TB, kiosk, dataDir, brokerURL, socket string) *agent.Agent {
	t.Helper()
	a, err := agent.New(agent.Config{
		KioskID:           kiosk,
		DataDir:           dataDir,
		BrokerURL:         brokerURL,
		Socket:            socket,
		HeartbeatInterval: 500 * time.Millisecond,
		ReconnectMin:      50 * time.Millisecond,
		ReconnectMax:      500 * time.Millisecond,
		ResendAfter:       2 * time.Second,
		SoftwareVersion:   "e2e",
	}, testLogger(t).With("proc", "agent", "kiosk", kiosk))
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

// api is a small client of the hub's HTTP API.
type api struct {
	t    testing.TB
	base string
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
	resp, err := http.DefaultClient.Do(req)
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
