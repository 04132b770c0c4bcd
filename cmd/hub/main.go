// Command hub runs the Shequ hub (the MQTT broker, embedded by default, the
// hub database and the HTTPS API) and holds the staff and technician
// commands that talk to a running hub.
//
//	hub serve -data ./data/hub -org packaging/demo/org.json
//	hub claim -community sangcheng [-kiosk k-sangcheng-01] [-ttl 72h]
//	hub devices | hub revoke DEVICE-ID | hub rotate-key | hub mosquitto-conf -org FILE
package main

import (
	"context"
	"errors"
	"flag"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shequ/shequ/hub/cli"
)

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := cli.Run(ctx, os.Args[1:], os.Stdin, os.Stdout, log)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		return
	}
	if err != nil {
		log.Error("hub failed", "err", err)
		os.Exit(1)
	}
}
