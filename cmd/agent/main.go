// Command agent is Shequ's on-device agent: it keeps the kiosk's data in
// bbolt, syncs with the hub over MQTT and serves the kiosk UI on a Unix
// socket. It runs as a systemd service; SIGINT or SIGTERM stops it cleanly.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/shequ/shequ/agent"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	var cfg agent.Config
	flag.StringVar(&cfg.KioskID, "kiosk", "", "kiosk id (required), e.g. k-sangcheng-01")
	flag.StringVar(&cfg.DataDir, "data", "./data/agent", "data directory (holds agent.db)")
	flag.StringVar(&cfg.BrokerURL, "broker", "tcp://127.0.0.1:1883", "MQTT broker URL")
	flag.StringVar(&cfg.Socket, "socket", "./data/agent/agent.sock", "local API Unix socket; empty disables the local API")
	flag.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 30*time.Second, "heartbeat interval")
	flag.IntVar(&cfg.MaxInFlight, "max-inflight", 32, "outbox records published and not yet acknowledged, at most")
	flag.Parse()
	cfg.SoftwareVersion = version

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	if err := run(cfg, log); err != nil {
		log.Error("agent failed", "err", err)
		os.Exit(1)
	}
}

func run(cfg agent.Config, log *slog.Logger) error {
	a, err := agent.New(cfg, log)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return a.Run(ctx)
}
