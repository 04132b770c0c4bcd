// Command hub runs the Shequ hub: the MQTT broker (embedded by default), the
// hub database and the HTTP API.
//
//	hub -data ./data/hub -org packaging/demo/org.json
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shequ/shequ/hub"
)

func main() {
	var cfg hub.Config
	flag.StringVar(&cfg.DataDir, "data", "./data/hub", "data directory (SQLite database hub.db)")
	flag.StringVar(&cfg.OrgFile, "org", "", "org tree JSON file (required)")
	flag.StringVar(&cfg.MQTTListen, "mqtt", hub.DefaultMQTTListen, "embedded MQTT broker listen address")
	flag.StringVar(&cfg.BrokerURL, "broker", "", "external MQTT broker URL, e.g. tcp://127.0.0.1:1884 (disables the embedded broker)")
	flag.StringVar(&cfg.HTTPListen, "http", hub.DefaultHTTPListen, "HTTP API listen address")
	flag.StringVar(&cfg.ClientID, "client-id", hub.DefaultClientID, "the hub's MQTT client id")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, log)
	stop()
	if err != nil {
		log.Error("hub failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg hub.Config, log *slog.Logger) error {
	if cfg.OrgFile == "" {
		return fmt.Errorf("-org is required")
	}
	h, err := hub.New(cfg, log)
	if err != nil {
		return err
	}
	return h.Run(ctx)
}
