// Command hub runs the Shequ hub (the MQTT broker, embedded by default, the
// hub database and the HTTPS API) and holds the staff and technician
// commands that talk to a running hub.
//
//	hub serve -data ./data/hub -org packaging/demo/org.json
//	hub claim -community sangcheng [-kiosk k-sangcheng-01] [-ttl 72h]
//	hub devices | hub revoke DEVICE-ID | hub rotate-key | hub mosquitto-conf -org FILE
//	hub version
//	hub db-backups | hub restore-db BACKUP   (the hub stopped)
//
// Under systemd (Type=notify, WatchdogSec=) serve tells systemd it is
// ready once the hub has started and pings the watchdog while the hub's
// liveness check passes (cmd/internal/sdnotify).
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shequ/shequ/cmd/internal/sdnotify"
	"github.com/shequ/shequ/hub/cli"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, log, cli.Options{Version: version, Serving: serving(log)})
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Error("hub failed", "err", err)
		os.Exit(1)
	}
}

// serving tells systemd, if it started the hub, that the hub is ready and
// feeds its watchdog while check passes.
func serving(log *slog.Logger) func(ctx context.Context, check func(context.Context) error) error {
	return func(ctx context.Context, check func(context.Context) error) error {
		cfg, err := sdnotify.FromEnv(os.Getenv, os.Getpid())
		if err != nil {
			return err
		}
		cfg.Status = "hub " + version + " serving"
		return sdnotify.Serve(ctx, cfg, log, check)
	}
}
