// Package broker runs the hub's embedded MQTT broker (mochi-mqtt) on a TCP
// listener. Every client is allowed for now; access control per kiosk comes
// with device enrolment.
package broker

import (
	"errors"
	"fmt"
	"log/slog"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/hooks/auth"
	"github.com/mochi-mqtt/server/v2/listeners"
)

// DefaultListen is the address the broker listens on when Config.Listen is empty.
const DefaultListen = "127.0.0.1:1883"

// Config configures the broker.
type Config struct {
	// Listen is the TCP address; default DefaultListen. Port 0 picks a free port.
	Listen string
}

// Broker is a running embedded MQTT broker.
type Broker struct {
	srv *mqtt.Server
	tcp *listeners.TCP
}

// Start starts a broker listening on cfg.Listen. It logs through log.
func Start(cfg Config, log *slog.Logger) (*Broker, error) {
	if cfg.Listen == "" {
		cfg.Listen = DefaultListen
	}
	srv := mqtt.New(&mqtt.Options{Logger: log.With("component", "mqtt-broker")})
	if err := srv.AddHook(new(auth.AllowHook), nil); err != nil {
		return nil, fmt.Errorf("broker: add auth hook: %w", err)
	}
	tcp := listeners.NewTCP(listeners.Config{Type: listeners.TypeTCP, ID: "tcp", Address: cfg.Listen})
	if err := srv.AddListener(tcp); err != nil {
		return nil, fmt.Errorf("broker: listen on %s: %w", cfg.Listen, err)
	}
	if err := srv.Serve(); err != nil {
		return nil, errors.Join(fmt.Errorf("broker: serve: %w", err), srv.Close())
	}
	return &Broker{srv: srv, tcp: tcp}, nil
}

// Addr returns the address the broker listens on, e.g. "127.0.0.1:41883".
func (b *Broker) Addr() string { return b.tcp.Address() }

// URL returns the broker's URL for MQTT clients, e.g. "tcp://127.0.0.1:41883".
func (b *Broker) URL() string { return "tcp://" + b.Addr() }

// Close disconnects every client and stops the broker.
func (b *Broker) Close() error {
	if err := b.srv.Close(); err != nil {
		return fmt.Errorf("broker: close: %w", err)
	}
	return nil
}
