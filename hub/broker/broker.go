// Package broker runs the hub's embedded MQTT broker (mochi-mqtt) on a TCP
// listener, with TLS unless told otherwise, and with access control by an
// access.Table: anonymous clients are refused, devices publish only to their
// own uplink topics and read only their own and their groups' downlink.
package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/listeners"
	"github.com/mochi-mqtt/server/v2/packets"

	"github.com/shequ/shequ/hub/access"
	"github.com/shequ/shequ/protocol"
)

// MaxPacketSize bounds every MQTT packet the broker takes: the largest
// envelope (a media chunk) with room for the topic and headers. A client
// sending a larger packet is disconnected.
const MaxPacketSize = protocol.MaxEnvelopeSize + 64<<10

// DefaultListen is the address the broker listens on when Config.Listen is empty.
const DefaultListen = "127.0.0.1:8883"

// ErrRevoked is the reason given when a client is disconnected because its
// access ended.
var ErrRevoked = errors.New("broker: access revoked")

// Config configures the broker.
type Config struct {
	// Listen is the TCP address; default DefaultListen. Port 0 picks a free port.
	Listen string
	// TLS, when set, makes the listener speak TLS (ssl://); nil means plain
	// TCP (development only).
	TLS *tls.Config
	// Access decides who may connect and what they may do; required.
	Access *access.Table
}

// Broker is a running embedded MQTT broker.
type Broker struct {
	srv *mqtt.Server
	tcp *listeners.TCP
	tls bool
}

// Start starts a broker listening on cfg.Listen. It logs through log.
func Start(cfg Config, log *slog.Logger) (*Broker, error) {
	if cfg.Access == nil {
		return nil, errors.New("broker: Access is required")
	}
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	log = log.With("component", "mqtt-broker")
	caps := mqtt.NewDefaultServerCapabilities()
	caps.MaximumPacketSize = MaxPacketSize
	srv := mqtt.New(&mqtt.Options{Logger: log, Capabilities: caps})
	if err := srv.AddHook(&accessHook{table: cfg.Access, log: log}, nil); err != nil {
		return nil, fmt.Errorf("broker: add access hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "tcp", Address: cfg.Listen, TLSConfig: cfg.TLS})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", cfg.Listen, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, errors.Join(fmt.Errorf("broker: serve: %w", err), srv.Close())
	}
	return &Broker{srv: srv, tcp: tcp, tls: cfg.TLS != nil}, nil
}

// Addr returns the address the broker listens on, e.g. "127.0.0.1:41883".
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL returns the URL a client on this machine reaches the broker at:
// "ssl://127.0.0.1:41883", or tcp:// without TLS. A broker listening on
// every interface (0.0.0.0 or ::) is reached on loopback.
func (b *Broker) URL() string {
	addr := b.Addr()
	if host, port, err := net.SplitHostPort(addr); err == nil {
		if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
			addr = net.JoinHostPort("127.0.0.1", port) // Go's wildcard sockets take IPv4 too
		}
	}
	if b.tls {
		return "ssl://" + addr
	}
	return "tcp://" + addr
}

// Unspecified reports whether the broker listens on every interface, so
// its URL on this machine is no use to devices elsewhere.
func (b *Broker) Unspecified() bool {
	host, _, err := net.SplitHostPort(b.Addr())
	ip := net.ParseIP(host)
	return err == nil && ip != nil && ip.IsUnspecified()
}

// Disconnect closes the connection of the client with the id, if connected,
// and reports whether there was one. Its access must have been removed from
// the table first, or it can simply reconnect.
func (b *Broker) Disconnect(clientID string) bool {
	cl, ok := b.srv.Clients.Get(clientID)
	if !ok || cl.Closed() {
		return false
	}
	cl.Stop(ErrRevoked)
	return true
}

// Close disconnects every client and stops the broker.
func (b *Broker) Close() error {
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}

// accessHook asks the access table about every connect, publish,
// subscription and delivery.
type accessHook struct {
	mqtt.HookBase
	table *access.Table
	log   *slog.Logger
}

func (h *accessHook) ID() string { return "shequ-access" }

func (h *accessHook) Provides(b byte) bool {
	return slices.Contains([]byte{mqtt.OnConnectAuthenticate, mqtt.OnACLCheck}, b)
}

func (h *accessHook) OnConnectAuthenticate(cl *mqtt.Client, pk packets.Packet) bool {
	will := ""
	if pk.Connect.WillFlag {
		will = pk.Connect.WillTopic
	}
	user := string(pk.Connect.Username)
	if err := h.table.Authenticate(user, cl.ID, pk.Connect.Password, will); err != nil {
		h.log.Warn("MQTT connection refused", "client", cl.ID, "username", user, "remote", cl.Net.Remote, "err", err)
		return false
	}
	return true
}

func (h *accessHook) OnACLCheck(cl *mqtt.Client, topic string, write bool) bool {
	user := string(cl.Properties.Username)
	var ok bool
	if write {
		ok = h.table.CanPublish(user, topic)
	} else {
		ok = h.table.CanRead(user, topic)
	}
	if !ok {
		h.log.Warn("MQTT access denied", "client", cl.ID, "username", user, "topic", topic, "publish", write)
	}
	return ok
}
