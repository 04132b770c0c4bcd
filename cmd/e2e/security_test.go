package e2e

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/protocol"
)

// dial connects a raw MQTT client with a real device's credentials: a
// stolen or tampered kiosk whose owner runs their own code with them.
func dial(t *testing.T, e *env, creds protocol.EnrolResponse) (paho.Client, error) {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM([]byte(creds.CACert)) {
		t.Fatal("enrolment returned no usable CA certificate")
	}
	opts := paho.NewClientOptions().AddBroker(e.hub.BrokerURL()).
		SetClientID(creds.MQTTUsername).SetUsername(creds.MQTTUsername).SetPassword(creds.MQTTPassword).
		SetTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}).
		SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := paho.NewClient(opts)
	tok := c.Connect()
	if !tok.WaitTimeout(10 * time.Second) {
		return nil, errors.New("connect timed out")
	}
	if err := tok.Error(); err != nil {
		return nil, err
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c, nil
}

// device is dial for credentials that must work.
func device(t *testing.T, e *env, creds protocol.EnrolResponse) paho.Client {
	t.Helper()
	c, err := dial(t, e, creds)
	if err != nil {
		t.Fatalf("device %s could not connect: %v", creds.Kiosk, err)
	}
	return c
}

// TestRogueDeviceCannotReachAnotherKiosk: an enrolled device, run by an
// attacker with its real credentials, forges a notice signed with its own
// key and publishes it to another kiosk's desired-state topic, forges
// feedback as that kiosk, and subscribes to its downlink. On both brokers
// the victim kiosk never shows the forged notice, keeps working, and the hub
// holds no record in the victim's name.
func TestRogueDeviceCannotReachAnotherKiosk(t *testing.T) {
	for _, b := range brokers {
		t.Run(b, func(t *testing.T) {
			e := newEnv(t, b, nil)
			victimDir, socket := t.TempDir(), filepath.Join(t.TempDir(), "agent.sock")
			e.enrol(demoKiosk, victimDir)
			victim := e.startAgent(victimDir, socket)
			view := startKioskView(t, socket)
			real := e.api().createNotice("真实通知：社区开放日", protocol.PriorityNormal, kioskTarget(demoKiosk))
			view.waitShows(t, real.Title, true)

			rogue := device(t, e, e.enrol("k-sangcheng-02", t.TempDir()))
			_, forgedKey, err := ed25519.GenerateKey(rand.Reader)
			if err != nil {
				t.Fatal(err)
			}
			ln, err := victim.Notices()
			if err != nil {
				t.Fatal(err)
			}
			forged := protocol.DesiredState{Kiosk: demoKiosk, Version: ln.Version + 1000, Station: ln.Station,
				Notices: []protocol.Notice{{ID: "forged-1", Title: "伪造通知：请扫码缴纳罚款", Category: protocol.NoticeEnforcement,
					Priority: protocol.PriorityUrgent, ValidFrom: time.Now().Add(-time.Hour), Targets: []protocol.Target{kioskTarget(demoKiosk)}}}}
			payload, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeDesired, time.Now(), forged, forgedKey)
			if err != nil {
				t.Fatal(err)
			}
			var msgs []string
			sub := rogue.Subscribe(protocol.DownFilter(demoKiosk), 1, func(_ paho.Client, m paho.Message) { msgs = append(msgs, m.Topic()) })
			sub.WaitTimeout(5 * time.Second)
			pub := rogue.Publish(protocol.DownTopic(demoKiosk, protocol.ChannelDesired).String(), 1, true, payload)
			pub.WaitTimeout(5 * time.Second)
			fb := protocol.Feedback{Ticket: "261126-FORGED-0001", Kiosk: demoKiosk, Kind: protocol.KindComplaint,
				Category: protocol.CatOther, Description: "冒名投诉", SubmittedAt: time.Now()}
			forgedFB, err := protocol.Encode(protocol.TypeFeedback, time.Now(), fb)
			if err != nil {
				t.Fatal(err)
			}
			rogue.Publish(protocol.UpTopic(demoKiosk, protocol.ChannelFeedback).String(), 1, false, forgedFB).WaitTimeout(5 * time.Second)

			// The victim keeps working: a new notice from the hub still arrives,
			// and reaches the screen after anything the rogue sent.
			next := e.api().createNotice("真实通知：违法搭建专项整治", protocol.PriorityNormal, kioskTarget(demoKiosk))
			view.waitShows(t, next.Title, true)
			for _, title := range view.titles() {
				if strings.Contains(title, "伪造") {
					t.Fatalf("the kiosk shows the forged notice %q", title)
				}
			}
			if _, ok := view.model.Urgent(time.Now()); ok {
				t.Fatal("the forged urgent notice took over the screen")
			}
			if slices.ContainsFunc(e.api().feedback(), func(r feedbackRow) bool { return r.Ticket == fb.Ticket }) {
				t.Fatal("the hub stored feedback forged in another kiosk's name")
			}
			if len(msgs) != 0 {
				t.Fatalf("the rogue device received the victim's downlink: %v", msgs)
			}
		})
	}
}

// TestReplaceAndRevokeKiosk: a kiosk is replaced by a new device in the same
// slot (its history stays, its tickets never repeat), and a revoked device
// is cut off at once and refused afterwards while the replacement works.
func TestReplaceAndRevokeKiosk(t *testing.T) {
	for _, b := range brokers {
		t.Run(b, func(t *testing.T) { replaceAndRevoke(t, b) })
	}
}

func replaceAndRevoke(t *testing.T, broker string) {
	e := newEnv(t, broker, nil)
	oldDir, oldSock := t.TempDir(), filepath.Join(t.TempDir(), "old.sock")
	oldCreds := e.enrol(demoKiosk, oldDir)
	old := e.startAgent(oldDir, oldSock)
	oldReceipt, err := agentclient.New(oldSock).SubmitFeedback(context.Background(), sampleFeedback("101"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the old device's record to reach the hub", func() (bool, error) {
		return old.Status().OutboxDepth == 0 && old.Status().Connected, nil
	})

	// The replacement enrols into the same slot; the old device is replaced.
	newDir, newSock := t.TempDir(), filepath.Join(t.TempDir(), "new.sock")
	newCreds := e.enrol(demoKiosk, newDir)
	waitFor(t, 15*time.Second, "the replaced device to be disconnected", func() (bool, error) {
		return !old.Status().Connected, nil
	})
	replacement := e.startAgent(newDir, newSock)
	view := startKioskView(t, newSock)
	n := e.api().createNotice("新设备也收到通知", protocol.PriorityNormal, kioskTarget(demoKiosk))
	view.waitShows(t, n.Title, true)
	newReceipt, err := agentclient.New(newSock).SubmitFeedback(context.Background(), sampleFeedback("202"))
	if err != nil {
		t.Fatal(err)
	}
	if newReceipt.Ticket == oldReceipt.Ticket {
		t.Fatalf("the replacement reissued ticket %s", newReceipt.Ticket)
	}
	waitFor(t, 15*time.Second, "the replacement's record to reach the hub", func() (bool, error) {
		return replacement.Status().OutboxDepth == 0, nil
	})
	assertFeedbackOnce(t, e.api().feedback(), map[string]protocol.FeedbackReceipt{
		oldReceipt.ID: oldReceipt, newReceipt.ID: newReceipt, // the slot's history is kept
	})

	// The old device keeps trying and stays refused; what it files now stays
	// in its own outbox, never in the kiosk's name at the hub.
	late, err := agentclient.New(oldSock).SubmitFeedback(context.Background(), sampleFeedback("303"))
	if err != nil {
		t.Fatal(err)
	}

	// Revoke the replacement too: cut off at once.
	var devices struct {
		Devices []struct{ ID, Kiosk, Status string } `json:"devices"`
	}
	e.api().do(http.MethodGet, "/api/v1/devices", nil, &devices)
	i := slices.IndexFunc(devices.Devices, func(d struct{ ID, Kiosk, Status string }) bool {
		return d.Kiosk == demoKiosk && d.Status == "enrolled"
	})
	if i < 0 {
		t.Fatalf("no enrolled device for %s in %+v", demoKiosk, devices.Devices)
	}
	e.api().do(http.MethodPost, "/api/v1/devices/"+devices.Devices[i].ID+"/revoke", nil, nil)
	waitFor(t, 15*time.Second, "the revoked device to be disconnected", func() (bool, error) {
		return !replacement.Status().Connected, nil
	})
	e.api().createNotice("吊销后的通知", protocol.PriorityNormal, kioskTarget(demoKiosk))
	// Both devices' credentials are refused from now on, whoever holds them.
	for name, creds := range map[string]protocol.EnrolResponse{"replaced": oldCreds, "revoked": newCreds} {
		if _, err := dial(t, e, creds); err == nil {
			t.Fatalf("the %s device's credentials still connect", name)
		}
	}
	if old.Status().Connected || replacement.Status().Connected {
		t.Fatal("a revoked or replaced device is connected")
	}
	if slices.ContainsFunc(e.api().feedback(), func(r feedbackRow) bool { return r.ID == late.ID }) {
		t.Fatal("the replaced device's record reached the hub")
	}
	if old.Status().OutboxDepth != 1 {
		t.Errorf("the replaced device's outbox holds %d records, want its 1 unsent record kept", old.Status().OutboxDepth)
	}
	if slices.Contains(view.titles(), "吊销后的通知") {
		t.Fatal("a revoked device received content")
	}
}

// TestHostileInputKeepsHubRunning: a device sends oversized and malformed
// payloads on each of its uplink topics, and anyone sends them to the open
// enrolment endpoint; the hub answers with errors, keeps running, loses
// nothing it stored, and still takes the next good record.
func TestHostileInputKeepsHubRunning(t *testing.T) {
	e := newEnv(t, "mochi", nil)
	agentDir, socket := t.TempDir(), filepath.Join(t.TempDir(), "agent.sock")
	e.enrol(demoKiosk, agentDir)
	ag := e.startAgent(agentDir, socket)
	client := agentclient.New(socket)
	first, err := client.SubmitFeedback(context.Background(), sampleFeedback("101"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the first record to be stored", func() (bool, error) {
		return ag.Status().OutboxDepth == 0 && ag.Status().Connected, nil
	})

	hostile := device(t, e, e.enrol("k-sangcheng-02", t.TempDir()))
	huge := []byte(`{"v":2,"id":"` + strings.Repeat("9", 2<<20) + `"}`)
	// Malformed first, oversized last: a broker may drop the connection of
	// a client that sends a packet over its limit.
	for _, payload := range [][]byte{[]byte("{"), []byte(`{"v":2}`), {0xff, 0xfe, 0x00}, []byte(`null`), huge} {
		for _, ch := range []string{protocol.ChannelFeedback, protocol.ChannelPresence, protocol.ChannelHeartbeat} {
			tok := hostile.Publish(protocol.UpTopic("k-sangcheng-02", ch).String(), 1, false, payload)
			if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Logf("hostile publish of %d bytes on %s: %v", len(payload), ch, tok.Error())
			}
		}
	}
	for name, body := range map[string]string{
		"oversized": `{"claim_code":"` + strings.Repeat("1", 1<<20) + `"}`,
		"malformed": `{"claim_code":`,
		"bad code":  `{"claim_code":"12","public_key":"x","hardware_id":"h","software_version":"1"}`,
	} {
		resp, err := e.hub.HTTPClient().Post(e.hub.HTTPURL()+protocol.HubPathEnrol, "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatalf("enrol %s: %v", name, err)
		}
		resp.Body.Close()
		if resp.StatusCode < 400 || resp.StatusCode >= 500 {
			t.Errorf("enrol with a %s request: %s, want a 4xx error", name, resp.Status)
		}
	}

	second, err := client.SubmitFeedback(context.Background(), sampleFeedback("202"))
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, 15*time.Second, "the next good record to be stored", func() (bool, error) {
		return ag.Status().OutboxDepth == 0, nil
	})
	assertFeedbackOnce(t, e.api().feedback(), map[string]protocol.FeedbackReceipt{first.ID: first, second.ID: second})
}
