// Package hubtest gives the agent's tests a real in-process MQTT broker
// (mochi-mqtt on 127.0.0.1) and a fake hub: a plain paho client that sees
// everything kiosks publish and can send acks and desired state.
//
// The broker lets every client connect (auth.AllowHook) and records, as a
// test failure, any publish or subscribe by a kiosk client (any client id
// not starting with "hub") outside its own up/ (publish) or down/
// (subscribe) topics.
package hubtest

import (
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"

	"github.com/shequ/shequ/protocol"
)

// Broker is a running in-process broker.
type Broker struct {
	Server *mqtt.Server
	URL    string // tcp://127.0.0.1:port
}

// aclHook allows everything but records kiosks stepping outside their topics.
type aclHook struct {
	auth.AllowHook
	t testing.TB
}

func (h *aclHook) ID() string { return "hubtest-acl" }

func (h *aclHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if strings.HasPrefix(cl.ID, "hub") || cl.ID == mqtt.InlineClientId {
		return true
	}
	want := protocol.Root + "/down/" + cl.ID + "/"
	if write {
		want = protocol.Root + "/up/" + cl.ID + "/"
	}
	if !strings.HasPrefix(topic, want) {
		h.t.Errorf("hubtest: client %q used topic %q (write=%v) outside %s", cl.ID, topic, write, want)
		return false
	}
	return true
}

// StartBroker starts a broker on a free loopback port; it stops at the end
// of the test.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler)})
	if err := s.AddHook(&aclHook{t: t}, nil); err != nil {
		t.Fatalf("hubtest: add hook: %v", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: "tcp", ID: "t1", Address: "127.0.0.1:0"})
	if err := s.AddListener(tcp); err != nil {
		t.Fatalf("hubtest: listen: %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Fatalf("hubtest: serve: %v", err)
	}
	t.Cleanup(func() {
		if err := s.Close(); err != nil {
			t.Errorf("hubtest: close broker: %v", err)
		}
	})
	return &Broker{Server: s, URL: "tcp://" + tcp.Address()}
}

// Kick drops a client's network connection without a DISCONNECT, as a
// network failure would, so the broker publishes its will. It reports
// whether the client was connected.
func (b *Broker) Kick(clientID string) bool {
	cl, ok := b.Server.Clients.Get(clientID)
	if !ok || cl.Closed() {
		return false
	}
	cl.Stop(fmt.Errorf("hubtest: kicked"))
	return true
}

// Message is one message the fake hub received.
type Message struct {
	Topic   protocol.Topic
	Payload []byte
}

// Hub is a fake hub: a paho client subscribed to every kiosk's uplink.
type Hub struct {
	t testing.TB
	c paho.Client

	mu     sync.Mutex
	queues map[protocol.Topic]chan Message // one per kiosk and channel
}

// queueCap bounds the messages held per kiosk and channel.
const queueCap = 10000

func (h *Hub) queue(top protocol.Topic) chan Message {
	h.mu.Lock()
	defer h.mu.Unlock()
	q := h.queues[top]
	if q == nil {
		q = make(chan Message, queueCap)
		h.queues[top] = q
	}
	return q
}

// NewHub connects a fake hub to the broker and subscribes to all uplink
// channels; it disconnects at the end of the test.
func NewHub(t testing.TB, b *Broker) *Hub {
	t.Helper()
	h := &Hub{t: t, queues: make(map[protocol.Topic]chan Message)}
	opts := paho.NewClientOptions().AddBroker(b.URL).SetClientID("hub-" + protocol.NewID()[:8]).
		SetCleanSession(true).SetAutoReconnect(false)
	h.c = paho.NewClient(opts)
	h.wait(h.c.Connect(), "connect")
	filters := map[string]byte{}
	for _, ch := range []string{protocol.ChannelFeedback, protocol.ChannelPresence, protocol.ChannelHeartbeat} {
		filters[protocol.UpFilter(ch)] = 1
	}
	h.wait(h.c.SubscribeMultiple(filters, func(_ paho.Client, m paho.Message) {
		top, err := protocol.ParseTopic(m.Topic())
		if err != nil {
			t.Errorf("hubtest: message on bad topic: %v", err)
			return
		}
		select {
		case h.queue(top) <- Message{Topic: top, Payload: m.Payload()}:
		default:
			t.Errorf("hubtest: message buffer full; dropped one on %s", m.Topic())
		}
	}), "subscribe")
	t.Cleanup(func() { h.c.Disconnect(0) })
	return h
}

func (h *Hub) wait(tok paho.Token, what string) {
	h.t.Helper()
	if !tok.WaitTimeout(10 * time.Second) {
		h.t.Fatalf("hubtest: %s timed out", what)
	}
	if err := tok.Error(); err != nil {
		h.t.Fatalf("hubtest: %s: %v", what, err)
	}
}

// Next returns the next message on channel ch (e.g. protocol.ChannelFeedback)
// from kiosk, or fails the test after timeout. Messages of each kiosk and
// channel are queued separately, so waiting for one kind loses no other.
func (h *Hub) Next(kiosk, ch string, timeout time.Duration) Message {
	h.t.Helper()
	m, ok := h.TryNext(kiosk, ch, timeout)
	if !ok {
		h.t.Fatalf("hubtest: no %s message from %s within %v", ch, kiosk, timeout)
	}
	return m
}

// TryNext is Next that reports a timeout instead of failing.
func (h *Hub) TryNext(kiosk, ch string, timeout time.Duration) (Message, bool) {
	q := h.queue(protocol.UpTopic(kiosk, ch))
	t := time.NewTimer(timeout)
	defer t.Stop()
	select {
	case m := <-q:
		return m, true
	case <-t.C:
		return Message{}, false
	}
}

// Presence waits for the next presence message of kiosk and decodes it.
func (h *Hub) Presence(kiosk string, timeout time.Duration) protocol.Presence {
	h.t.Helper()
	m := h.Next(kiosk, protocol.ChannelPresence, timeout)
	_, p, err := protocol.DecodePresence(m.Payload)
	if err != nil {
		h.t.Fatalf("hubtest: presence: %v", err)
	}
	return p
}

// Feedback waits for the next feedback record of kiosk and returns its
// record id and body.
func (h *Hub) Feedback(kiosk string, timeout time.Duration) (string, protocol.Feedback) {
	h.t.Helper()
	m := h.Next(kiosk, protocol.ChannelFeedback, timeout)
	env, fb, err := protocol.DecodeFeedback(m.Payload)
	if err != nil {
		h.t.Fatalf("hubtest: feedback: %v", err)
	}
	return env.ID, fb
}

// Ack acknowledges a record of kiosk.
func (h *Hub) Ack(kiosk, ref string, status protocol.AckStatus, reason string) {
	h.t.Helper()
	h.Publish(protocol.DownTopic(kiosk, protocol.ChannelAck), protocol.TypeAck, protocol.Ack{Ref: ref, Status: status, Reason: reason})
}

// Desired publishes a desired-state document, retained, to kiosk's topic.
func (h *Hub) Desired(kiosk string, doc protocol.DesiredState) {
	h.t.Helper()
	h.Publish(protocol.DownTopic(kiosk, protocol.ChannelDesired), protocol.TypeDesired, doc)
}

// Publish encodes body as a message of type typ and publishes it on topic
// with the topic's QoS and retain flag.
func (h *Hub) Publish(topic protocol.Topic, typ string, body any) {
	h.t.Helper()
	data, err := protocol.Encode(typ, time.Now(), body)
	if err != nil {
		h.t.Fatalf("hubtest: encode %s: %v", typ, err)
	}
	h.wait(h.c.Publish(topic.String(), topic.QoS(), topic.Retained(), data), "publish "+topic.String())
}

// Eventually polls cond every few milliseconds until it holds or timeout
// passes, then fails the test with msg.
func Eventually(t testing.TB, timeout time.Duration, msg string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("condition not met within %v: %s", timeout, msg)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
