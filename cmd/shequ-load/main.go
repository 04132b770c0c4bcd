// Command shequ-load runs a simulated fleet of agents against a running hub
// and prints load figures: notice fan-out time, or feedback ingestion rate
// with a check for lost and duplicated records. The agents enrol with claim
// codes created through the hub's staff API (admin token, hub CA pinned), so
// the hub must allow a fleet's worth of enrolments. See docs/benchmarks.md.
//
//	shequ-load -gen-org 1000 > org.json
//	hub serve -org org.json -data /tmp/hub -enrol-per-minute 100000 &
//	shequ-load -data /tmp/hub -mode fanout -n 1000
//	shequ-load -data /tmp/hub -mode ingest -n 1000 -records 10000 -root /tmp/devices
//
// From another machine: -hub https://HOST:8080 -token TOKEN -ca-pin PIN
// (the pin is printed by `hub claim`; the token is the hub's admin.token).
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/shequ/shequ/agent/fleetsim/load"
	"github.com/shequ/shequ/agent/fleetsim/orgfile"
)

func main() {
	var (
		cfg     load.Config
		kiosks  string
		genOrg  int
		verbose bool
	)
	flag.StringVar(&cfg.HubURL, "hub", load.DefaultHubURL, "hub HTTPS API base URL")
	flag.StringVar(&cfg.HubData, "data", "", "the hub's data directory, on this machine: read the admin token and the CA pin from it")
	flag.StringVar(&cfg.Token, "token", "", "the hub's admin token (default: from -data)")
	flag.StringVar(&cfg.CAPin, "ca-pin", "", "hex SHA-256 of the hub CA certificate, as \"hub claim\" prints it (default: from -data)")
	flag.StringVar(&cfg.BrokerURL, "broker", "", "override the MQTT broker URL the agents receive at enrolment")
	flag.IntVar(&cfg.EnrolConcurrency, "enrol-concurrency", 0, "agents enrolling at once (0: fleetsim's default, 8)")
	flag.StringVar(&kiosks, "kiosks", "", "kiosk ids to simulate, comma-separated, ranges allowed: k-0001..k-1000 (default: from -org, else the hub's GET /api/v1/kiosks)")
	flag.StringVar(&cfg.OrgFile, "org", "", "org file to read the kiosk ids from")
	flag.IntVar(&cfg.N, "n", 0, "simulate the first N kiosks (0: all)")
	flag.StringVar(&cfg.Mode, "mode", load.ModeFanout, "scenario: fanout or ingest")
	flag.IntVar(&cfg.Records, "records", load.DefaultRecords, "ingest: records in all (rounded up to a multiple of -n)")
	flag.IntVar(&cfg.Notices, "notices", load.DefaultNotices, "fanout: notices to send, one after another")
	flag.IntVar(&cfg.Concurrency, "concurrency", load.DefaultConcurrency, "ingest: submissions at once")
	flag.StringVar(&cfg.Root, "root", "", "directory for the agents' databases (default: a temporary directory, removed afterwards)")
	flag.IntVar(&cfg.MaxInFlight, "max-in-flight", 0, "agents' unacknowledged records in flight (0: the agent's default)")
	flag.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 0, "agents' heartbeat interval (0: the agent's default)")
	flag.DurationVar(&cfg.ResendAfter, "resend-after", 0, "agents' resend delay for unacknowledged records (0: the agent's default)")
	flag.DurationVar(&cfg.Timeout, "timeout", load.DefaultTimeout, "bound of each wait")
	flag.IntVar(&genOrg, "gen-org", 0, "write an org file with N kiosks to stdout and exit")
	flag.BoolVar(&verbose, "v", false, "log the agents' info messages")
	flag.Parse()

	level := slog.LevelWarn
	if verbose {
		level = slog.LevelInfo
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: level}))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, cfg, kiosks, genOrg, log)
	stop()
	if err != nil {
		log.Error("shequ-load failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, cfg load.Config, kiosks string, genOrg int, log *slog.Logger) error {
	if genOrg != 0 {
		b, err := orgfile.Generate(genOrg)
		if err != nil {
			return err
		}
		if _, err := os.Stdout.Write(b); err != nil {
			return fmt.Errorf("write org file: %w", err)
		}
		return nil
	}
	if kiosks != "" {
		ids, err := load.ParseKioskList(kiosks)
		if err != nil {
			return err
		}
		cfg.Kiosks = ids
	}
	return load.Run(ctx, cfg, log, os.Stdout)
}
