// Package hubtest gives the agent's tests a real in-process MQTT broker
// (mochi-mqtt on 127.0.0.1, over TLS with a throwaway CA) and a fake hub:
// a privileged paho client that sees everything kiosks publish and sends
// signed acks, desired state and key chains, plus an HTTPS enrolment
// server.
//
// The broker stands in for the hub's: anonymous clients and unknown
// credentials are refused, the client id must equal the username, and an
// ACL hook records, as a test failure (and refuses), any publish by a
// device outside its own up/ topics or any subscription outside the down/
// topics of itself and its groups. An agent that trips it is broken.
package hubtest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/shequ/shequ/protocol"
)

// HubUser is the fake hub's MQTT username and client id.
const HubUser = "shequ-hub"

// Broker is a running in-process broker.
type Broker struct {
	Server *mqtt.Server
	URL    string // ssl://127.0.0.1:port
	CA     *CA
	auth   *authHook
}

type account struct {
	password []byte
	nodes    []string // readable down/ nodes; nil for the hub (everything)
	hub      bool
}

// authHook checks credentials and topics.
type authHook struct {
	mqtt.HookBase
	t testing.TB

	mu    sync.Mutex
	users map[string]account
}

func (h *authHook) ID() string { return "hubtest-auth" }

func (h *authHook) Provides(b byte) bool {
	return bytes.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, []byte{b})
}

func (h *authHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	user := string(pk.Connect.Username)
	h.mu.Lock()
	acc, ok := h.users[user]
	h.mu.Unlock()
	return ok && user != "" && cl.ID == user && bytes.Equal(pk.Connect.Password, acc.password)
}

func (h *authHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	if cl.ID == mqtt.InlineClientId {
		return true
	}
	user := string(cl.Properties.Username)
	h.mu.Lock()
	acc, ok := h.users[user]
	h.mu.Unlock()
	if !ok {
		return false
	}
	if acc.hub {
		return true
	}
	if ok := allowed(user, acc.nodes, topic, write); !ok {
		h.t.Errorf("hubtest: device %q used topic %q (write=%v) outside its own", user, topic, write)
		return false
	}
	return true
}

// allowed is the device ACL: publish only to its own up/ channels,
// subscribe only to down/{node}/+ or down/{node}/{channel} of its nodes.
func allowed(user string, nodes []string, topic string, write bool) bool {
	if write {
		for _, ch := range []string{protocol.ChannelFeedback, protocol.ChannelPresence, protocol.ChannelHeartbeat, protocol.ChannelMedia,
			protocol.ChannelPlays, protocol.ChannelRating, protocol.ChannelUpdate, protocol.ChannelUpdateStatus, protocol.ChannelResult} {
			if topic == protocol.UpTopic(user, ch).String() {
				return true
			}
		}
		return false
	}
	for _, n := range append([]string{user}, nodes...) {
		prefix := protocol.Root + "/down/" + n + "/"
		if rest, ok := strings.CutPrefix(topic, prefix); ok && rest != "" && rest != "#" && !strings.ContainsAny(rest, "/#") {
			return true
		}
	}
	return false
}

// StartBroker starts a TLS broker with a new CA on a free loopback port;
// it stops at the end of the test.
func StartBroker(t testing.TB) *Broker {
	t.Helper()
	ca := NewCA(t)
	s := mqtt.New(&mqtt.Options{Logger: slog.New(slog.DiscardHandler), InlineClient: true})
	h := &authHook{t: t, users: map[string]account{}}
	if err := s.AddHook(h, nil); err != nil {
		t.Fatalf("hubtest: add hook: %v", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: "tcp", ID: "t1", Address: "127.0.0.1:0", TLSConfig: ca.ServerConfig(t)})
	if err := s.AddListener(tcp); err != nil {
		t.Fatalf("hubtest: listen: %v", err)
	}
	if err := s.Serve(); err != nil {
		t.Fatalf("hubtest: serve: %v", err)
	}
	t.Cleanup(func() {
		settle(s)
		if err := s.Close(); err != nil {
			t.Errorf("hubtest: close broker: %v", err)
		}
	})
	return &Broker{Server: s, URL: "ssl://" + tcp.Address(), CA: ca, auth: h}
}

// settle drops every client and waits (up to 5 s) until they are gone
// from the broker's map. mochi-mqtt v2.7.9's Close takes the map's read
// lock twice (GetByListener calls Len), so a client removed at that moment
// (its write lock queued between the two) deadlocks Close.
func settle(s *mqtt.Server) {
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		left := 0
		for id, cl := range s.Clients.GetAll() {
			if id == mqtt.InlineClientId {
				continue
			}
			left++
			if !cl.Closed() {
				cl.Stop(fmt.Errorf("hubtest: broker closing"))
			}
		}
		if left == 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// AddDevice lets a device connect as user with password, reading the down/
// topics of itself and of nodes.
func (b *Broker) AddDevice(user, password string, nodes ...string) {
	b.auth.mu.Lock()
	defer b.auth.mu.Unlock()
	b.auth.users[user] = account{password: []byte(password), nodes: slices.Clone(nodes)}
}

// RemoveDevice revokes a device's credentials and drops its connection.
func (b *Broker) RemoveDevice(user string) {
	b.auth.mu.Lock()
	delete(b.auth.users, user)
	b.auth.mu.Unlock()
	b.Kick(user)
}

func (b *Broker) addHub(password string) {
	b.auth.mu.Lock()
	defer b.auth.mu.Unlock()
	b.auth.users[HubUser] = account{password: []byte(password), hub: true}
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

// Connected reports whether a client with this id is connected.
func (b *Broker) Connected(clientID string) bool {
	cl, ok := b.Server.Clients.Get(clientID)
	return ok && !cl.Closed()
}

// Inject publishes raw bytes on a topic from inside the broker, bypassing
// authentication and ACLs: it stands in for a publisher that is not the
// hub (a compromised broker, or a rogue client the ACL failed to stop).
func (b *Broker) Inject(t testing.TB, topic string, payload []byte, retain bool) {
	t.Helper()
	if err := b.Server.Publish(topic, payload, retain, 1); err != nil {
		t.Fatalf("hubtest: inject on %s: %v", topic, err)
	}
}

// Message is one message the fake hub received.
type Message struct {
	Topic   protocol.Topic
	Payload []byte
}

// Hub is a fake hub: a privileged paho client subscribed to every kiosk's
// uplink, holding the hub's signing key chain.
type Hub struct {
	t testing.TB
	b *Broker
	c paho.Client

	mu     sync.Mutex
	queues map[protocol.Topic]chan Message // one per kiosk and channel
	keys   []ed25519.PrivateKey            // every signing key, oldest first
	chain  protocol.KeyChain

	media mediaServer
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

// NewKey returns a new ed25519 key or fails the test.
func NewKey(t testing.TB) ed25519.PrivateKey {
	t.Helper()
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatalf("hubtest: generate key: %v", err)
	}
	return k
}

// Password returns a random MQTT password.
func Password(t testing.TB) string {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatalf("hubtest: password: %v", err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// NewHub connects a fake hub to the broker (TLS, privileged credentials),
// with a new signing key (serial 1), and subscribes to all uplink channels;
// it disconnects at the end of the test.
func NewHub(t testing.TB, b *Broker) *Hub {
	t.Helper()
	k := NewKey(t)
	h := &Hub{t: t, b: b, queues: make(map[protocol.Topic]chan Message), keys: []ed25519.PrivateKey{k}}
	h.media = mediaServer{files: map[string]*mediaFile{}, chunkReqs: map[string]map[int]int{}, manReqs: map[string]int{}, corrupt: map[string]map[int]bool{}, sent: map[string]map[int]int{}, budget: -1}
	h.chain.Links = []protocol.KeyLink{{Serial: 1, Key: protocol.EncodeKey(k.Public().(ed25519.PublicKey)), KID: protocol.KeyID(k.Public().(ed25519.PublicKey))}}
	pw := Password(t)
	b.addHub(pw)
	opts := paho.NewClientOptions().AddBroker(b.URL).SetClientID(HubUser).
		SetUsername(HubUser).SetPassword(pw).SetTLSConfig(b.CA.ClientConfig()).
		SetCleanSession(true).SetAutoReconnect(false)
	h.c = paho.NewClient(opts)
	h.wait(h.c.Connect(), "connect")
	filters := map[string]byte{}
	for _, ch := range []string{protocol.ChannelFeedback, protocol.ChannelPresence, protocol.ChannelHeartbeat, protocol.ChannelPlays,
		protocol.ChannelRating, protocol.ChannelUpdate, protocol.ChannelUpdateStatus, protocol.ChannelResult} {
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
	reqs, done := make(chan mediaRequest, queueCap), make(chan struct{})
	h.wait(h.c.Subscribe(protocol.UpFilter(protocol.ChannelMedia), 1, h.onMediaRequest(reqs)), "subscribe media")
	served := make(chan struct{})
	go func() {
		defer close(served)
		h.serveMedia(reqs, done)
	}()
	t.Cleanup(func() {
		close(done)
		<-served
		h.c.Disconnect(0)
	})
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

// Key returns the hub's current signing key.
func (h *Hub) Key() ed25519.PrivateKey {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.keys[len(h.keys)-1]
}

// Chain returns the hub's key chain.
func (h *Hub) Chain() protocol.KeyChain {
	h.mu.Lock()
	defer h.mu.Unlock()
	return protocol.KeyChain{Links: slices.Clone(h.chain.Links)}
}

// Rotate makes a new signing key, handed over from the current one, and
// returns it. It publishes nothing; see PublishKeys.
func (h *Hub) Rotate() ed25519.PrivateKey {
	k := NewKey(h.t)
	h.mu.Lock()
	defer h.mu.Unlock()
	prev := h.keys[len(h.keys)-1]
	serial := h.chain.Links[len(h.chain.Links)-1].Serial + 1
	h.chain.Links = append(h.chain.Links, protocol.NewKeyLink(serial, k.Public().(ed25519.PublicKey), prev))
	h.keys = append(h.keys, k)
	return k
}

// PublishKeys publishes the key chain, signed by the newest key, retained
// on the down topic of root (the org tree's root node).
func (h *Hub) PublishKeys(root string) {
	h.t.Helper()
	h.PublishSigned(protocol.DownTopic(root, protocol.ChannelKeys), protocol.TypeKeys, h.Chain(), h.Key())
}

// Enrolment registers a device for kiosk with the broker (new password;
// readable groups) and returns what the hub's enrolment would answer.
func (h *Hub) Enrolment(kiosk string, groups ...string) protocol.EnrolResponse {
	h.t.Helper()
	pw := Password(h.t)
	h.b.AddDevice(kiosk, pw, groups...)
	k := h.Key().Public().(ed25519.PublicKey)
	chain := h.Chain()
	return protocol.EnrolResponse{
		Kiosk:        kiosk,
		Groups:       slices.Clone(groups),
		BrokerURL:    h.b.URL,
		MQTTUsername: kiosk,
		MQTTPassword: pw,
		HubKey:       protocol.EncodeKey(k),
		HubKID:       protocol.KeyID(k),
		KeySerial:    chain.Links[len(chain.Links)-1].Serial,
		CACert:       string(h.b.CA.PEM),
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

// Plays waits for the next PlayStats record of kiosk and returns its
// record id and body.
func (h *Hub) Plays(kiosk string, timeout time.Duration) (string, protocol.PlayStats) {
	h.t.Helper()
	m := h.Next(kiosk, protocol.ChannelPlays, timeout)
	env, ps, err := protocol.DecodePlays(m.Payload)
	if err != nil {
		h.t.Fatalf("hubtest: plays: %v", err)
	}
	return env.ID, ps
}

// Rating waits for the next rating record of kiosk and returns its record
// id and body.
func (h *Hub) Rating(kiosk string, timeout time.Duration) (string, protocol.CaseRating) {
	h.t.Helper()
	m := h.Next(kiosk, protocol.ChannelRating, timeout)
	env, r, err := protocol.DecodeRating(m.Payload)
	if err != nil {
		h.t.Fatalf("hubtest: rating: %v", err)
	}
	return env.ID, r
}

// Cases publishes a case board, retained and signed with the current key,
// to its kiosk's topic.
func (h *Hub) Cases(b protocol.CaseBoard) {
	h.t.Helper()
	h.PublishSigned(protocol.DownTopic(b.Kiosk, protocol.ChannelCases), protocol.TypeCases, b, h.Key())
}

// Ack acknowledges a record of kiosk, signed with the current key.
func (h *Hub) Ack(kiosk, ref string, status protocol.AckStatus, reason string) {
	h.t.Helper()
	h.PublishSigned(protocol.DownTopic(kiosk, protocol.ChannelAck), protocol.TypeAck, protocol.Ack{Ref: ref, Status: status, Reason: reason}, h.Key())
}

// Desired publishes a desired-state document, retained and signed with the
// current key, to kiosk's topic.
func (h *Hub) Desired(kiosk string, doc protocol.DesiredState) {
	h.t.Helper()
	h.PublishSigned(protocol.DownTopic(kiosk, protocol.ChannelDesired), protocol.TypeDesired, doc, h.Key())
}

// PublishSigned encodes body as a message of type typ signed with key (nil:
// unsigned) and publishes it on topic with the topic's QoS and retain flag.
func (h *Hub) PublishSigned(topic protocol.Topic, typ string, body any, key ed25519.PrivateKey) {
	h.t.Helper()
	h.PublishRaw(topic, Sign(h.t, typ, body, key))
}

// Sign encodes a downlink message signed with key (nil: unsigned).
func Sign(t testing.TB, typ string, body any, key ed25519.PrivateKey) []byte {
	t.Helper()
	var data []byte
	var err error
	if key == nil {
		data, err = protocol.Encode(typ, time.Now(), body)
	} else {
		data, err = protocol.EncodeSigned(protocol.NewID(), typ, time.Now(), body, key)
	}
	if err != nil {
		t.Fatalf("hubtest: encode %s: %v", typ, err)
	}
	return data
}

// PublishRaw publishes payload on topic with the topic's QoS and retain
// flag, as the hub.
func (h *Hub) PublishRaw(topic protocol.Topic, payload []byte) {
	h.t.Helper()
	h.wait(h.c.Publish(topic.String(), topic.QoS(), topic.Retained(), payload), "publish "+topic.String())
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
