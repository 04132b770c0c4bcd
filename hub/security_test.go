package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/enrol"
	"github.com/shequ/shequ/protocol"
)

// devices lists the devices through the staff API.
func devices(t *testing.T, h *Hub) []enrol.Device {
	t.Helper()
	return getJSON[struct{ Devices []enrol.Device }](t, h, "/api/v1/devices").Devices
}

func TestEnrolment(t *testing.T) {
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	h, err := New(Config{DataDir: t.TempDir(), Org: demoTree(t), MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		Now: clock, EnrolPerMinute: 1000}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Close()

	// Feedback from an earlier device of k-sangcheng-01 sets the floor.
	first := newKiosk(t, h, "k-sangcheng-01")
	fb := protocol.Feedback{Ticket: "261126-K-SANGCHENG-01-0041", Kiosk: "k-sangcheng-01", Kind: protocol.KindHelp,
		Category: protocol.CatOther, SubmittedAt: time.Now().UTC()}
	first.publish(t, protocol.ChannelFeedback, encode(t, protocol.NewID(), protocol.TypeFeedback, fb))
	if a := first.ack(t); a.Status != protocol.AckStored {
		t.Fatalf("ack %+v", a)
	}

	t.Run("happy path replaces the old device", func(t *testing.T) {
		claim := createClaim(t, h, "sangcheng", "k-sangcheng-01", "")
		if len(claim.Code) != 14 || claim.Code[4] != '-' || !claim.ExpiresAt.After(now.Add(71*time.Hour)) {
			t.Fatalf("claim %+v", claim)
		}
		r := enrolWith(t, h, claim.Code)
		pub, kid, serial := h.keys.Current()
		wantGroups := []string{"shanghai", "huangpu", "wuliqiao", "sangcheng"}
		if r.Kiosk != "k-sangcheng-01" || r.MQTTUsername != r.Kiosk || fmt.Sprint(r.Groups) != fmt.Sprint(wantGroups) ||
			r.BrokerURL != h.BrokerURL() || !strings.HasPrefix(r.BrokerURL, "ssl://") ||
			r.HubKey != protocol.EncodeKey(pub) || r.HubKID != kid || r.KeySerial != serial ||
			r.CACert != string(h.CACertPEM()) || r.TicketFloor != 42 {
			t.Errorf("enrol response %+v", r)
		}
		var statuses []string
		for _, d := range devices(t, h) {
			statuses = append(statuses, d.Kiosk+"="+d.Status)
		}
		if fmt.Sprint(statuses) != "[k-sangcheng-01=replaced k-sangcheng-01=enrolled]" {
			t.Errorf("devices after replacement: %v", statuses)
		}
	})

	mustClaim := func(community, kiosk, ttl string) string { return createClaim(t, h, community, kiosk, ttl).Code }
	used := mustClaim("ruiyi", "", "")
	enrolWith(t, h, used)
	expired := mustClaim("sangcheng", "", "10m")
	full := mustClaim("ruiyi", "", "")
	big := append(enrolRequest(t, mustClaim("sangcheng", "", "")), bytes.Repeat([]byte(" "), protocol.MaxEnrolRequestSize)...)
	mu.Lock()
	now = now.Add(11 * time.Minute)
	mu.Unlock()

	tests := []struct {
		name    string
		body    []byte
		want    int
		wantMsg string
	}{
		{"code used twice", enrolRequest(t, used), http.StatusForbidden, "already used"},
		{"expired code", enrolRequest(t, expired), http.StatusForbidden, "expired"},
		{"unknown code", enrolRequest(t, "0000-0000-0000"), http.StatusForbidden, "not recognised"},
		{"no free slot", enrolRequest(t, full), http.StatusConflict, "every kiosk"},
		{"malformed JSON", []byte(`{"claim_code":`), http.StatusBadRequest, "malformed"},
		{"code with letters", bytes.Replace(enrolRequest(t, "1234-5678-9012"), []byte("123456789012"), []byte("12345678901a"), 1),
			http.StatusBadRequest, "digits"},
		{"unknown field", bytes.Replace(enrolRequest(t, used), []byte(`{`), []byte(`{"kiosk":"k-ruiyi-01",`), 1),
			http.StatusBadRequest, "unknown field"},
		{"oversized", big, http.StatusRequestEntityTooLarge, "larger than"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			before := devices(t, h)
			status, b, _ := enrolRaw(t, h, tc.body)
			if status != tc.want || !strings.Contains(string(b), tc.wantMsg) {
				t.Fatalf("enrol: %d %s, want %d ~%q", status, b, tc.want, tc.wantMsg)
			}
			if after := devices(t, h); len(after) != len(before) {
				t.Errorf("a refused enrolment changed the devices: %d → %d", len(before), len(after))
			}
		})
	}

	claimTests := []struct {
		name, body string
		want       int
	}{
		{"kiosk outside the community", `{"community":"sangcheng","kiosk":"k-ruiyi-01"}`, http.StatusBadRequest},
		{"not a community", `{"community":"huangpu"}`, http.StatusBadRequest},
		{"unknown community", `{"community":"nowhere"}`, http.StatusBadRequest},
		{"ttl too long", `{"community":"ruiyi","ttl":"9000h"}`, http.StatusBadRequest},
		{"ttl not a duration", `{"community":"ruiyi","ttl":"3 days"}`, http.StatusBadRequest},
		{"unknown field", `{"community":"ruiyi","count":5}`, http.StatusBadRequest},
	}
	for _, tc := range claimTests {
		t.Run("claim "+tc.name, func(t *testing.T) {
			if code, b := call(t, h, "POST", "/api/v1/claims", tc.body); code != tc.want {
				t.Fatalf("POST /api/v1/claims: %d %s, want %d", code, b, tc.want)
			}
		})
	}
}

func TestEnrolRateLimit(t *testing.T) {
	h := startHub(t, t.TempDir(), nil) // default: 10/min per IP, burst 5
	codes := 0
	for i := range 8 {
		status, b, hdr := enrolRaw(t, h, enrolRequest(t, "0000-0000-0000"))
		switch status {
		case http.StatusForbidden:
			codes++
		case http.StatusTooManyRequests:
			if i < 5 || hdr.Get("Retry-After") == "" {
				t.Fatalf("attempt %d: 429 (Retry-After %q) %s", i, hdr.Get("Retry-After"), b)
			}
		default:
			t.Fatalf("attempt %d: %d %s", i, status, b)
		}
	}
	if codes != 5 {
		t.Errorf("%d attempts reached the code check, want the burst of 5", codes)
	}
}

func TestStaffAPINeedsToken(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	if !strings.HasPrefix(h.HTTPURL(), "https://") {
		t.Fatalf("HTTPURL %s, want https", h.HTTPURL())
	}
	for _, ep := range []struct{ method, path string }{
		{"GET", "/api/v1/devices"}, {"GET", "/api/v1/claims"}, {"POST", "/api/v1/claims"},
		{"POST", "/api/v1/keys/rotate"}, {"POST", "/api/v1/devices/x/revoke"}, {"GET", "/api/v1/feedback"},
	} {
		t.Run(ep.method+" "+ep.path, func(t *testing.T) {
			req, err := http.NewRequest(ep.method, h.HTTPURL()+ep.path, strings.NewReader(`{"community":"ruiyi"}`))
			if err != nil {
				t.Fatal(err)
			}
			resp, err := h.HTTPClient().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("status %d, want 401", resp.StatusCode)
			}
		})
	}
	if code, _ := call(t, h, "GET", "/api/v1/claims", ""); code != http.StatusOK {
		t.Errorf("with the token: %d", code)
	}
	// Plain HTTP to the HTTPS port gets no API.
	resp, err := http.Get("http://" + strings.TrimPrefix(h.HTTPURL(), "https://") + "/api/v1/org")
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Error("plain HTTP served the API")
		}
	}
}

func TestRotateKey(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	oldPub, oldKID, _ := h.keys.Current()
	w := watchDesired(t, h, "k-ruiyi-01")
	w.next(t, "before rotation", func(protocol.DesiredState) bool { return true })

	code, b := call(t, h, "POST", "/api/v1/keys/rotate", "")
	if code != http.StatusOK {
		t.Fatalf("rotate: %d %s", code, b)
	}
	var res RotateResult
	if err := json.Unmarshal(b, &res); err != nil {
		t.Fatal(err)
	}
	newPub, newKID, serial := h.keys.Current()
	if res.KID != newKID || res.Serial != 2 || serial != 2 || newKID == oldKID {
		t.Fatalf("rotate result %+v, current %s/%d, old %s", res, newKID, serial, oldKID)
	}

	// A fresh subscriber gets the retained chain and the re-signed documents.
	c := paho.NewClient(hubClientOptions(t, h).SetClientID("watch-rotation"))
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	defer c.Disconnect(50)
	got := make(chan paho.Message, 8)
	if tok := c.SubscribeMultiple(map[string]byte{
		protocol.DownTopic("shanghai", protocol.ChannelKeys).String():      1,
		protocol.DownTopic("k-ruiyi-01", protocol.ChannelDesired).String(): 1,
	}, func(_ paho.Client, m paho.Message) { got <- m }); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	seen := map[string]bool{}
	for len(seen) < 2 {
		select {
		case m := <-got:
			env, err := protocol.DecodeEnvelope(m.Payload())
			if err != nil {
				t.Fatal(err)
			}
			if err := protocol.VerifyEnvelope(env, newPub); err != nil || env.KID != newKID {
				t.Errorf("%s after rotation: kid %s, %v", env.Type, env.KID, err)
			}
			if env.Type == protocol.TypeKeys {
				_, chain, err := protocol.DecodeKeys(m.Payload())
				if err != nil {
					t.Fatal(err)
				}
				k, s, err := chain.Advance(oldPub)
				if err != nil || !k.Equal(newPub) || s != 2 {
					t.Errorf("chain from the old key: serial %d, %v", s, err)
				}
			}
			seen[env.Type] = true
		case <-time.After(waitFor):
			t.Fatalf("after rotation got only %v", seen)
		}
	}
}

// TestNoPhoneInLogs ingests feedback with a phone number (valid, and one the
// hub rejects) and checks no log line contains it.
func TestNoPhoneInLogs(t *testing.T) {
	logs := new(logBuffer)
	h := startHubLog(t, t.TempDir(), nil, slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))
	k := newKiosk(t, h, "k-ruiyi-01")
	const phone = "13912345678"
	fb := protocol.Feedback{Ticket: "261126-K-RUIYI-01-0001", Kiosk: k.id, Kind: protocol.KindComplaint,
		Category: protocol.CatFacade, Phone: phone, Description: "请回电", SubmittedAt: time.Now().UTC()}
	k.publish(t, protocol.ChannelFeedback, encode(t, protocol.NewID(), protocol.TypeFeedback, fb))
	if a := k.ack(t); a.Status != protocol.AckStored {
		t.Fatalf("ack %+v", a)
	}
	bad := fb
	bad.Ticket, bad.Category = "261126-K-RUIYI-01-0002", "noise"
	k.publish(t, protocol.ChannelFeedback, encode(t, protocol.NewID(), protocol.TypeFeedback, bad))
	if a := k.ack(t); a.Status != protocol.AckRejected {
		t.Fatalf("ack %+v", a)
	}
	list := getJSON[feedbackList](t, h, "/api/v1/feedback")
	if len(list.Feedback) != 1 || list.Feedback[0].Phone != phone {
		t.Fatalf("stored feedback %+v", list.Feedback)
	}
	logs.waitLine(t, "feedback stored")
	logs.mu.Lock()
	defer logs.mu.Unlock()
	if strings.Contains(logs.b.String(), phone) {
		t.Errorf("a log line contains the resident's phone number:\n%s", logs.b.String())
	}
}

// brokerEnv is one broker (embedded or mosquitto) with a hub on it.
type brokerEnv struct {
	h *Hub
	// mochi disconnects a 3.1.1 client whose QoS 1 publish the ACL denies;
	// mosquitto 2.0 acknowledges it and drops the message.
	disconnectsDeniedPublish bool
	// mosquitto (use_username_as_clientid) replaces a client id by the
	// username; mochi refuses a client id that differs from it.
	renamesClientID bool
}

// dialDevice connects with a device's credentials, polling until the
// broker accepts (mosquitto reloads its files asynchronously).
func dialDevice(t *testing.T, e brokerEnv, cred protocol.EnrolResponse, msgs chan paho.Message, lost chan error) paho.Client {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	for {
		c, err := tryDial(t, e, cred, cred.MQTTUsername, msgs, lost)
		if err == nil {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("device %s cannot connect: %v", cred.MQTTUsername, err)
		}
		time.Sleep(20 * time.Millisecond) // retry interval while the broker reloads, not a wait for an event
	}
}

func tryDial(t *testing.T, e brokerEnv, cred protocol.EnrolResponse, clientID string, msgs chan paho.Message, lost chan error) (paho.Client, error) {
	t.Helper()
	o := deviceOptions(t, cred, e.h.BrokerURL()).SetClientID(clientID).SetConnectTimeout(3 * time.Second)
	if msgs != nil {
		o.SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { msgs <- m })
	}
	if lost != nil {
		o.SetConnectionLostHandler(func(_ paho.Client, err error) { lost <- err })
	}
	c := paho.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return nil, errors.New("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.Disconnect(20) })
	return c, nil
}

func waitLost(t *testing.T, lost chan error, what string) {
	t.Helper()
	select {
	case <-lost:
	case <-time.After(waitFor):
		t.Fatalf("%s: the connection was not closed", what)
	}
}

func expectMsg(t *testing.T, msgs chan paho.Message, topic string) paho.Message {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case m := <-msgs:
			if m.Topic() == topic {
				return m
			}
		case <-deadline:
			t.Fatalf("no message on %s", topic)
			return nil
		}
	}
}

// brokerAttacks runs the access-control attacks against a broker with a hub.
func brokerAttacks(t *testing.T, e brokerEnv) {
	h := e.h
	credA := enrolDevice(t, h, "k-sangcheng-01")
	credB := enrolDevice(t, h, "k-sangcheng-02")
	credR := enrolDevice(t, h, "k-ruiyi-01")

	msgsB, lostB := make(chan paho.Message, 64), make(chan error, 1)
	b := dialDevice(t, e, credB, msgsB, lostB)
	if tok := b.Subscribe(protocol.DownFilter("k-sangcheng-02"), 1, nil); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	expectMsg(t, msgsB, protocol.DownTopic("k-sangcheng-02", protocol.ChannelDesired).String())

	wrong := credA
	wrong.MQTTPassword = credB.MQTTPassword
	wrongB := credB
	wrongB.MQTTPassword = credA.MQTTPassword
	anon := credA
	anon.MQTTUsername, anon.MQTTPassword = "", ""
	refused := []struct {
		name     string
		cred     protocol.EnrolResponse
		clientID string
	}{
		{"anonymous", anon, "k-sangcheng-01"},
		{"A's username with B's password", wrong, "k-sangcheng-01"},
		{"B's username with A's password", wrongB, "k-sangcheng-02"},
	}
	for _, tc := range refused {
		t.Run("refused "+tc.name, func(t *testing.T) {
			if _, err := tryDial(t, e, tc.cred, tc.clientID, nil, nil); err == nil {
				t.Fatal("connected")
			}
		})
	}

	t.Run("A connects with B's client id", func(t *testing.T) {
		c, err := tryDial(t, e, credA, "k-sangcheng-02", nil, nil)
		if err == nil {
			if !e.renamesClientID {
				t.Fatal("connected with another device's client id")
			}
			c.Disconnect(20) // connected as itself, k-sangcheng-01
		}
	})

	t.Run("A subscribes to B's downlink", func(t *testing.T) {
		msgsA := make(chan paho.Message, 16)
		a := dialDevice(t, e, credA, msgsA, nil)
		tok := a.SubscribeMultiple(map[string]byte{protocol.DownFilter("k-sangcheng-02"): 1, "shequ/v3/down/#": 1}, nil)
		if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		// mochi refuses in the SUBACK; mosquitto 2.0 grants it and then
		// delivers nothing the ACL denies. Either way nothing arrives.
		// B's feedback makes the hub publish an ack on B's downlink.
		fb := protocol.Feedback{Ticket: "261126-K-SANGCHENG-02-0001", Kiosk: "k-sangcheng-02", Kind: protocol.KindHelp,
			Category: protocol.CatOther, SubmittedAt: time.Now().UTC()}
		top := protocol.UpTopic("k-sangcheng-02", protocol.ChannelFeedback)
		if tok := b.Publish(top.String(), 1, false, encode(t, protocol.NewID(), protocol.TypeFeedback, fb)); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		expectMsg(t, msgsB, protocol.DownTopic("k-sangcheng-02", protocol.ChannelAck).String())
		// A may get what it is allowed (its groups' retained keys), never B's.
		for len(msgsA) > 0 {
			if m := <-msgsA; strings.Contains(m.Topic(), "/k-sangcheng-02/") {
				t.Fatalf("A received %s", m.Topic())
			}
		}
		a.Disconnect(20)
	})

	t.Run("A publishes to B's uplink", func(t *testing.T) {
		lostA := make(chan error, 1)
		a := dialDevice(t, e, credA, nil, lostA)
		forged := encode(t, protocol.NewID(), protocol.TypeHeartbeat, protocol.Heartbeat{Kiosk: "k-sangcheng-02", Epoch: 99,
			SoftwareVersion: "forged"})
		a.Publish(protocol.UpTopic("k-sangcheng-02", protocol.ChannelHeartbeat).String(), 1, false, forged)
		if e.disconnectsDeniedPublish {
			waitLost(t, lostA, "A after publishing to B's topic")
		}
		// B is unaffected: it still publishes and receives.
		hb := encode(t, protocol.NewID(), protocol.TypeHeartbeat, protocol.Heartbeat{Kiosk: "k-sangcheng-02", Epoch: 5,
			SoftwareVersion: "genuine"})
		if tok := b.Publish(protocol.UpTopic("k-sangcheng-02", protocol.ChannelHeartbeat).String(), 1, false, hb); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		got := waitKiosk(t, h, "k-sangcheng-02", "reporting B's heartbeat", func(k api.Kiosk) bool { return k.SoftwareVersion == "genuine" })
		if got.Epoch != 5 {
			t.Errorf("B's status %+v", got)
		}
	})

	t.Run("revoked device is disconnected and refused", func(t *testing.T) {
		lostR := make(chan error, 1)
		dialDevice(t, e, credR, nil, lostR)
		var id string
		for _, d := range devices(t, h) {
			if d.Kiosk == "k-ruiyi-01" && d.Status == "enrolled" {
				id = d.ID
			}
		}
		if code, b := call(t, h, "POST", "/api/v1/devices/"+id+"/revoke", ""); code != http.StatusOK {
			t.Fatalf("revoke: %d %s", code, b)
		}
		waitLost(t, lostR, "revoked device")
		if _, err := tryDial(t, e, credR, credR.MQTTUsername, nil, nil); err == nil {
			t.Fatal("revoked device reconnected")
		}
	})

	t.Run("replaced device is disconnected and refused", func(t *testing.T) {
		lostA := make(chan error, 1)
		dialDevice(t, e, credA, nil, lostA)
		credA2 := enrolDevice(t, h, "k-sangcheng-01")
		waitLost(t, lostA, "replaced device")
		if _, err := tryDial(t, e, credA, credA.MQTTUsername, nil, nil); err == nil {
			t.Fatal("replaced device reconnected")
		}
		lostA2 := make(chan error, 1)
		a2 := dialDevice(t, e, credA2, nil, lostA2)

		// Revoking the replaced device again changes nothing, and must not
		// cut off the device that fills the slot now.
		var old string
		for _, d := range devices(t, h) {
			if d.Kiosk == "k-sangcheng-01" && d.Status == "replaced" {
				old = d.ID
			}
		}
		if code, b := call(t, h, "POST", "/api/v1/devices/"+old+"/revoke", ""); code != http.StatusOK {
			t.Fatalf("revoke replaced device: %d %s", code, b)
		}
		hb := encode(t, protocol.NewID(), protocol.TypeHeartbeat, protocol.Heartbeat{Kiosk: "k-sangcheng-01", Epoch: 77,
			SoftwareVersion: "replacement"})
		if tok := a2.Publish(protocol.UpTopic("k-sangcheng-01", protocol.ChannelHeartbeat).String(), 1, false, hb); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatalf("replacement publish after the old device's revocation: %v", tok.Error())
		}
		waitKiosk(t, h, "k-sangcheng-01", "reporting the replacement's heartbeat", func(k api.Kiosk) bool { return k.SoftwareVersion == "replacement" })
		select {
		case err := <-lostA2:
			t.Fatalf("revoking the replaced device disconnected its replacement: %v", err)
		default:
		}
	})

	t.Run("B was never disturbed", func(t *testing.T) {
		select {
		case err := <-lostB:
			t.Fatalf("B lost its connection: %v", err)
		default:
		}
	})
}

func TestBrokerAttacksEmbedded(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	if !strings.HasPrefix(h.BrokerURL(), "ssl://") {
		t.Fatalf("BrokerURL %s, want ssl://", h.BrokerURL())
	}
	brokerAttacks(t, brokerEnv{h: h, disconnectsDeniedPublish: true})
}

// freePort returns a loopback address with a port free at the time of the call.
func freePort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	if err := ln.Close(); err != nil {
		t.Fatal(err)
	}
	return addr
}

// startMosquitto prepares the hub's files, starts mosquitto 2.0 on a free
// loopback port with the generated configuration, and a hub on it.
func startMosquitto(t *testing.T) *Hub {
	t.Helper()
	dir := t.TempDir()
	cfg := Config{DataDir: dir, Org: demoTree(t), MQTTListen: freePort(t), HTTPListen: "127.0.0.1:0"}
	conf, err := PrepareExternalBroker(cfg)
	if err != nil {
		t.Fatal(err)
	}
	confPath := filepath.Join(dir, "mosquitto.conf")
	if os.Geteuid() == 0 {
		// As root mosquitto would switch to the mosquitto user, which may
		// not read the test's private temporary directory.
		conf += "user root\n"
	}
	if err := os.WriteFile(confPath, []byte(conf+"log_dest stderr\nlog_type error\nlog_type warning\nlog_type notice\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command("/usr/sbin/mosquitto", "-c", confPath)
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mosquitto: %v", err)
	}
	done := make(chan struct{})
	var waitErr error
	go func() { waitErr = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
				t.Error(err)
			}
			<-done
		}
		if t.Failed() {
			t.Logf("mosquitto output:\n%s", out.String())
		}
	})
	deadline := time.Now().Add(waitFor)
	for {
		c, err := net.Dial("tcp", cfg.MQTTListen)
		if err == nil {
			c.Close()
			break
		}
		select {
		case <-done:
			t.Fatalf("mosquitto exited: %v\n%s", waitErr, out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("mosquitto not listening: %v\n%s", err, out.String())
		}
		time.Sleep(10 * time.Millisecond) // poll interval
	}
	cfg.BrokerURL = ExternalBrokerURL(cfg)
	cfg.BrokerReload = func() error { return cmd.Process.Signal(syscall.SIGHUP) }
	h, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatalf("hub on mosquitto: %v\n%s", err, out.String())
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Error(err)
		}
	})
	return h
}

func TestBrokerAttacksMosquitto(t *testing.T) {
	h := startMosquitto(t)
	if !strings.HasPrefix(h.BrokerURL(), "ssl://") {
		t.Fatalf("BrokerURL %s", h.BrokerURL())
	}
	brokerAttacks(t, brokerEnv{h: h, renamesClientID: true})
}
