package broker

import (
	"crypto/tls"
	"errors"
	"log/slog"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/hub/access"
	"github.com/shequ/shequ/hub/pki"
)

const waitFor = 5 * time.Second

type fixture struct {
	b     *Broker
	table *access.Table
	tls   *tls.Config
}

func account(t *testing.T, user, pw string, groups ...string) access.Account {
	t.Helper()
	m, err := access.HashMosquitto(pw)
	if err != nil {
		t.Fatal(err)
	}
	return access.Account{Username: user, Groups: groups, SHA256: access.HashSHA256(pw), Mosquitto: m}
}

func start(t *testing.T) *fixture {
	t.Helper()
	p, err := pki.Ensure(t.TempDir(), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	table := access.NewTable()
	table.Set([]access.Account{
		account(t, access.HubUser, "hub-pw"),
		account(t, "k-a", "pw-a", "city"),
		account(t, "k-b", "pw-b", "city"),
	})
	b, err := Start(Config{Listen: "127.0.0.1:0", TLS: p.ServerTLS(), Access: table}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	return &fixture{b: b, table: table, tls: p.ClientTLS()}
}

type conn struct {
	c    paho.Client
	lost chan error
	msgs chan paho.Message
}

func (f *fixture) dial(t *testing.T, clientID, user, pw string) (*conn, error) {
	t.Helper()
	c := &conn{lost: make(chan error, 1), msgs: make(chan paho.Message, 16)}
	opts := paho.NewClientOptions().AddBroker(f.b.URL()).SetClientID(clientID).SetAutoReconnect(false).
		SetTLSConfig(f.tls).SetConnectTimeout(waitFor).
		SetConnectionLostHandler(func(_ paho.Client, err error) { c.lost <- err }).
		SetDefaultPublishHandler(func(_ paho.Client, m paho.Message) { c.msgs <- m })
	if user != "" {
		opts.SetUsername(user).SetPassword(pw)
	}
	c.c = paho.NewClient(opts)
	tok := c.c.Connect()
	if !tok.WaitTimeout(waitFor) {
		return nil, errors.New("connect timed out")
	}
	if tok.Error() != nil {
		return nil, tok.Error()
	}
	t.Cleanup(func() { c.c.Disconnect(50) })
	return c, nil
}

func (f *fixture) mustDial(t *testing.T, user, pw string) *conn {
	t.Helper()
	c, err := f.dial(t, user, user, pw)
	if err != nil {
		t.Fatalf("connect %s: %v", user, err)
	}
	return c
}

func (c *conn) subscribe(t *testing.T, filter string) byte {
	t.Helper()
	tok := c.c.Subscribe(filter, 1, nil)
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe %s: %v", filter, tok.Error())
	}
	return tok.(*paho.SubscribeToken).Result()[filter]
}

func (c *conn) publish(t *testing.T, topic, payload string) error {
	t.Helper()
	tok := c.c.Publish(topic, 1, false, payload)
	if !tok.WaitTimeout(waitFor) {
		return errors.New("publish timed out")
	}
	return tok.Error()
}

func (c *conn) expect(t *testing.T, topic, payload string) {
	t.Helper()
	select {
	case m := <-c.msgs:
		if m.Topic() != topic || string(m.Payload()) != payload {
			t.Fatalf("got %s %q, want %s %q", m.Topic(), m.Payload(), topic, payload)
		}
	case <-time.After(waitFor):
		t.Fatalf("no message on %s", topic)
	}
}

func (c *conn) expectLost(t *testing.T) {
	t.Helper()
	select {
	case <-c.lost:
	case <-time.After(waitFor):
		t.Fatal("the connection was not closed")
	}
}

func TestConnectRefused(t *testing.T) {
	f := start(t)
	if !strings.HasPrefix(f.b.URL(), "ssl://127.0.0.1:") {
		t.Fatalf("URL %s, want ssl://", f.b.URL())
	}
	tests := []struct {
		name, clientID, user, pw string
	}{
		{"anonymous", "k-a", "", ""},
		{"wrong password", "k-a", "k-a", "pw-b"},
		{"another device's credentials", "k-b", "k-b", "pw-a"},
		{"client id of another device", "k-b", "k-a", "pw-a"},
		{"unknown device", "k-c", "k-c", "pw-c"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := f.dial(t, tc.clientID, tc.user, tc.pw); err == nil {
				t.Fatal("connected")
			}
		})
	}
	t.Run("plain TCP to the TLS listener", func(t *testing.T) {
		c := paho.NewClient(paho.NewClientOptions().AddBroker("tcp://" + f.b.Addr()).SetClientID("k-a").
			SetUsername("k-a").SetPassword("pw-a").SetConnectTimeout(2 * time.Second).SetAutoReconnect(false))
		tok := c.Connect()
		if tok.WaitTimeout(waitFor) && tok.Error() == nil {
			c.Disconnect(0)
			t.Fatal("connected without TLS")
		}
	})
}

func TestDeviceACL(t *testing.T) {
	f := start(t)
	hub := f.mustDial(t, access.HubUser, "hub-pw")
	if code := hub.subscribe(t, "$share/hub/shequ/v3/up/+/+"); code >= 0x80 {
		t.Fatalf("hub subscribe refused: %#x", code)
	}
	a := f.mustDial(t, "k-a", "pw-a")
	b := f.mustDial(t, "k-b", "pw-b")
	for _, filter := range []string{"shequ/v3/down/k-b/+", "shequ/v3/down/#", "shequ/v3/up/+/feedback", "#"} {
		if code := a.subscribe(t, filter); code < 0x80 {
			t.Errorf("A subscribed to %s (code %#x)", filter, code)
		}
	}
	if code := b.subscribe(t, "shequ/v3/down/k-b/+"); code >= 0x80 {
		t.Fatalf("B's own subscription refused: %#x", code)
	}
	if code := b.subscribe(t, "shequ/v3/down/city/+"); code >= 0x80 {
		t.Fatalf("B's group subscription refused: %#x", code)
	}
	if err := hub.publish(t, "shequ/v3/down/k-b/desired", "for-b"); err != nil {
		t.Fatal(err)
	}
	b.expect(t, "shequ/v3/down/k-b/desired", "for-b")
	if err := hub.publish(t, "shequ/v3/down/city/keys", "for-all"); err != nil {
		t.Fatal(err)
	}
	b.expect(t, "shequ/v3/down/city/keys", "for-all")

	if err := a.publish(t, "shequ/v3/up/k-a/feedback", "from-a"); err != nil {
		t.Fatal(err)
	}
	hub.expect(t, "shequ/v3/up/k-a/feedback", "from-a")
	// A publishes to B's uplink: a 3.1.1 client is disconnected, nothing is delivered.
	a.publish(t, "shequ/v3/up/k-b/feedback", "forged")
	a.expectLost(t)
	// B is unaffected.
	if err := b.publish(t, "shequ/v3/up/k-b/feedback", "from-b"); err != nil {
		t.Fatal(err)
	}
	hub.expect(t, "shequ/v3/up/k-b/feedback", "from-b")
	if err := hub.publish(t, "shequ/v3/down/k-b/ack", "ack-b"); err != nil {
		t.Fatal(err)
	}
	b.expect(t, "shequ/v3/down/k-b/ack", "ack-b")
	select {
	case m := <-a.msgs:
		t.Errorf("A received %s", m.Topic())
	default:
	}
}

func TestRevokeDisconnects(t *testing.T) {
	f := start(t)
	a := f.mustDial(t, "k-a", "pw-a")
	b := f.mustDial(t, "k-b", "pw-b")
	f.table.Set([]access.Account{account(t, "k-b", "pw-b", "city")})
	if !f.b.Disconnect("k-a") {
		t.Fatal("Disconnect found no client k-a")
	}
	a.expectLost(t)
	if _, err := f.dial(t, "k-a", "k-a", "pw-a"); err == nil {
		t.Fatal("revoked device reconnected")
	}
	if err := b.publish(t, "shequ/v3/up/k-b/heartbeat", "still here"); err != nil {
		t.Fatalf("B after A's revocation: %v", err)
	}
	if f.b.Disconnect("k-a") {
		t.Error("Disconnect of a client already gone reported true")
	}
}

func TestListenError(t *testing.T) {
	f := start(t)
	if b2, err := Start(Config{Listen: f.b.Addr(), Access: access.NewTable()}, slog.New(slog.DiscardHandler)); err == nil {
		b2.Close()
		t.Fatalf("second broker on %s started", f.b.Addr())
	}
	if _, err := Start(Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler)); err == nil {
		t.Fatal("started without an access table")
	}
}

func TestURLOnEveryInterface(t *testing.T) {
	b, err := Start(Config{Listen: "0.0.0.0:0", Access: access.NewTable()}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	if !b.Unspecified() {
		t.Error("a broker on 0.0.0.0 does not report listening on every interface")
	}
	if u := b.URL(); !strings.HasPrefix(u, "tcp://127.0.0.1:") {
		t.Errorf("URL() = %q, want loopback", u)
	}
}

func TestMaxPacketSize(t *testing.T) {
	f := start(t)
	hub := f.mustDial(t, access.HubUser, "hub-pw")
	if code := hub.subscribe(t, "$share/hub/shequ/v3/up/+/+"); code >= 0x80 {
		t.Fatalf("hub subscribe refused: %#x", code)
	}
	a := f.mustDial(t, "k-a", "pw-a")
	fits := strings.Repeat("x", MaxPacketSize-1024)
	if err := a.publish(t, "shequ/v3/up/k-a/media", fits); err != nil {
		t.Fatal(err)
	}
	hub.expect(t, "shequ/v3/up/k-a/media", fits)
	a.publish(t, "shequ/v3/up/k-a/media", strings.Repeat("x", MaxPacketSize+1))
	a.expectLost(t)
}
