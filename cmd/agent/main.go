// Command agent is Shequ's on-device agent: it keeps the kiosk's data in
// bbolt, syncs with the hub over MQTT and serves the kiosk UI on a Unix
// socket. It runs as a systemd service; SIGINT or SIGTERM stops it cleanly.
//
//	agent [run] [flags]                                     the service (default)
//	agent enrol -data DIR -hub URL -code CODE [-ca-pin HEX]  enrol this device with a claim code
//	agent status -data DIR                                   who this device is enrolled as (exit 3: not enrolled)
//	agent health-gate [-stable D] [-timeout D] [-offline]     is this new root slot healthy? (docs/updates.md)
//	agent version                                            the version this binary was built as
//
// Under systemd (Type=notify, WatchdogSec=) run tells systemd it is ready
// once the store is open, the local API listens and the link has started
// (enrolled or not, online or not), and pings the watchdog while the
// agent's liveness check passes (cmd/internal/sdnotify).
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/gate"
	"github.com/shequ/shequ/agent/update"
	"github.com/shequ/shequ/cmd/internal/sdnotify"
	"github.com/shequ/shequ/kiosk/agentclient"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := run(ctx, os.Args[1:], os.Stdout, os.Getenv, log)
	stop()
	if errors.Is(err, flag.ErrHelp) {
		os.Exit(2)
	}
	if errors.Is(err, errNotEnrolled) {
		os.Exit(3)
	}
	if errors.Is(err, agent.ErrRestartRequested) && !errors.Is(err, errStopFailed) {
		// Not a crash: systemd's Restart=on-failure starts the agent
		// again because the status is not 0.
		log.Info("exiting to restart, as the hub asked", "exit_status", exitRestart)
		os.Exit(exitRestart)
	}
	if err != nil {
		log.Error("agent failed", "err", err)
		os.Exit(1)
	}
}

// command is a parsed command line.
type command struct {
	name   string // "run", "enrol", "status", "health-gate" or "version"
	run    agent.Config
	enrol  agent.EnrolConfig
	data   string // status: the data directory
	gate   gate.Config
	socket string // health-gate: the agent's local API
	bless  string // health-gate: systemd-bless-boot, run with "bad" on a crash loop
	result string // health-gate: where the verdict goes (agent/update.Gate)
}

// errNotEnrolled makes `agent status` exit 3 for scripts.
var errNotEnrolled = errors.New("this device is not enrolled")

// errStopFailed marks an agent that failed to stop cleanly.
var errStopFailed = errors.New("agent did not stop cleanly")

// exitRestart is the exit status after the hub asked for a restart
// (remote command restart_agent): EX_TEMPFAIL, non-zero so that systemd's
// Restart=on-failure starts the agent again.
const exitRestart = 75

// parse parses the command line: a subcommand (default run) and its flags.
func parse(args []string, out io.Writer) (command, error) {
	c := command{name: "run"}
	var units string // health-gate -units
	if len(args) > 0 && (args[0] == "run" || args[0] == "enrol" || args[0] == "status" || args[0] == "health-gate" || args[0] == "version") {
		c.name, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet("agent "+c.name, flag.ContinueOnError)
	fs.SetOutput(out)
	switch c.name {
	case "run":
		cfg := &c.run
		fs.StringVar(&cfg.DataDir, "data", "./data/agent", "data directory (holds agent.db with the device identity)")
		fs.StringVar(&cfg.Socket, "socket", "./data/agent/agent.sock", "local API Unix socket (mode 0660); empty disables the local API")
		fs.StringVar(&cfg.SocketGroup, "socket-group", "", "group to give the socket to (the kiosk UI's group)")
		fs.StringVar(&cfg.HubURL, "hub", "", "hub HTTPS URL, for enrolment from the kiosk's setup screen")
		fs.StringVar(&cfg.CAPin, "ca-pin", "", "hex SHA-256 of the hub CA certificate (printed by 'hub claim'); empty: trust on first use")
		fs.StringVar(&cfg.BrokerURL, "broker", "", "override the MQTT broker URL received at enrolment")
		fs.StringVar(&cfg.HardwareID, "hardware-id", "", "override the hardware id (default: DMI product UUID or /etc/machine-id)")
		fs.DurationVar(&cfg.HeartbeatInterval, "heartbeat", 30*time.Second, "heartbeat interval")
		fs.IntVar(&cfg.MaxInFlight, "max-inflight", 32, "outbox records published and not yet acknowledged, at most")
		fs.Int64Var(&cfg.MediaQuota, "media-quota", 2<<30, "bytes of media files held at most (DATA/media)")
		fs.Int64Var(&cfg.MinFreeDisk, "min-free-disk", 512<<20, "bytes of disk always left free by media downloads")
		fs.DurationVar(&cfg.MediaStagger, "media-stagger", 60*time.Second, "downloads start at a delay within this, from a hash of kiosk and file (negative: at once)")
		fs.IntVar(&cfg.MediaConcurrency, "media-concurrency", 1, "media files fetched at once")
		fs.IntVar(&cfg.MediaWindow, "media-window", 8, "chunk requests in flight per file")
		fs.StringVar(&cfg.MediaHTTP, "media-http", "", "fetch media with HTTPS range requests from this hub URL (e.g. https://hub.example:8443) instead of over MQTT")
		cfg.SoftwareVersion = version
	case "enrol":
		cfg := &c.enrol
		fs.StringVar(&cfg.DataDir, "data", "./data/agent", "data directory (holds agent.db); stop the agent service first")
		fs.StringVar(&cfg.HubURL, "hub", "", "hub HTTPS URL, e.g. https://hub.example:8443 (required)")
		fs.StringVar(&cfg.ClaimCode, "code", "", "claim code from 'hub claim', e.g. 1234-5678-9012 (required)")
		fs.StringVar(&cfg.CAPin, "ca-pin", "", "hex SHA-256 of the hub CA certificate (printed by 'hub claim'); empty: trust on first use")
		fs.StringVar(&cfg.HardwareID, "hardware-id", "", "override the hardware id (default: DMI product UUID or /etc/machine-id)")
		cfg.SoftwareVersion = version
	case "status":
		fs.StringVar(&c.data, "data", "./data/agent", "data directory (holds agent.db); stop the agent service first")
	case "health-gate":
		g := &c.gate
		fs.StringVar(&c.socket, "socket", "/run/shequ-agent/agent.sock", "the running agent's local API socket")
		fs.StringVar(&units, "units", "shequ-agent.service,shequ-kiosk.service", "systemd units that must be active and not restart (comma-separated)")
		fs.DurationVar(&g.Stable, "stable", time.Minute, "how long everything must stay healthy without a restart")
		fs.DurationVar(&g.Timeout, "timeout", 150*time.Second, "how long to wait for that at most")
		fs.IntVar(&g.MaxRestarts, "max-restarts", 3, "fail at once when a unit has restarted this many times this boot (0: never)")
		fs.BoolVar(&g.Offline, "offline", false, "pass without reaching the hub (kiosks updated where the hub is out of reach)")
		fs.StringVar(&c.bless, "bless-boot", "", "on a crash loop, run this (systemd-bless-boot) with \"bad\": the boot entry loses its remaining tries")
		fs.StringVar(&c.result, "result", "/var/lib/shequ-agent/"+agent.GateFile, "write the verdict here for the agent to report (empty: nowhere)")
	}
	if err := fs.Parse(args); err != nil {
		return c, err
	}
	if c.name == "health-gate" {
		c.gate.Units = strings.Split(units, ",")
	}
	if fs.NArg() > 0 {
		return c, fmt.Errorf("agent %s: unexpected arguments %q", c.name, fs.Args())
	}
	if c.name == "enrol" && (c.enrol.HubURL == "" || c.enrol.ClaimCode == "") {
		return c, fmt.Errorf("agent enrol: -hub and -code are required")
	}
	return c, nil
}

// run runs the command line args; getenv is os.Getenv outside tests (run
// reads systemd's NOTIFY_SOCKET and WATCHDOG_USEC).
func run(ctx context.Context, args []string, out io.Writer, getenv func(string) string, log *slog.Logger) error {
	c, err := parse(args, out)
	if err != nil {
		return err
	}
	if c.name == "version" {
		_, err := fmt.Fprintln(out, version)
		return err
	}
	if c.name == "status" {
		id, ok, err := agent.ReadIdentity(c.data)
		if err != nil {
			return err
		}
		if !ok {
			_, err := fmt.Fprintln(out, "not enrolled: get a claim code from the hub ('hub claim') and run 'agent enrol'")
			return errors.Join(err, errNotEnrolled)
		}
		_, err = fmt.Fprintf(out, "kiosk %s (groups %v), enrolled %s; broker %s; hub %s; hub key %s (serial %d)\n",
			id.Kiosk, id.Groups, id.EnrolledAt.Local().Format(time.DateTime), id.BrokerURL, id.HubURL, id.HubKID, id.KeySerial)
		return err
	}
	if c.name == "health-gate" {
		ac := agentclient.New(c.socket)
		defer ac.Close()
		err := gate.Wait(ctx, c.gate, ac, gate.Systemctl{}, log)
		if c.result != "" && ctx.Err() == nil {
			if werr := writeVerdict(c.result, err); werr != nil {
				log.Error("health gate: verdict not written", "err", werr)
			}
		}
		if errors.Is(err, gate.ErrCrashLoop) && c.bless != "" {
			// Another try would crash the same way: give up the slot now.
			if out, berr := exec.CommandContext(ctx, c.bless, "bad").CombinedOutput(); berr != nil {
				err = errors.Join(err, fmt.Errorf("%s bad: %w: %s", c.bless, berr, out))
			} else {
				log.Warn("health gate: marked this boot entry bad", "err", err)
			}
		}
		return err
	}
	if c.name == "enrol" {
		r, err := agent.Enrol(ctx, c.enrol, log)
		if err != nil {
			return err
		}
		_, err = fmt.Fprintf(out, "enrolled as kiosk %s (groups %v); broker %s; hub key %s (serial %d)\n", r.Kiosk, r.Groups, r.BrokerURL, r.HubKID, r.KeySerial)
		return err
	}
	notify, err := sdnotify.FromEnv(getenv, os.Getpid())
	if err != nil {
		return err
	}
	notify.Status = "agent " + version + " running"
	a, err := agent.New(c.run, log)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := a.Start(ctx); err != nil {
		return err
	}
	serveCtx, stopServing := context.WithCancel(ctx)
	defer stopServing()
	go func() {
		select {
		case <-a.RestartRequested():
			stopServing()
		case <-serveCtx.Done():
		}
	}()
	err = sdnotify.Serve(serveCtx, notify, log, a.Check)
	if cerr := a.Close(); cerr != nil {
		err = errors.Join(err, errStopFailed, cerr)
	}
	select {
	case <-a.RestartRequested():
		return errors.Join(err, agent.ErrRestartRequested)
	default:
		return err
	}
}

// writeVerdict leaves the gate's verdict on this boot's slot for the agent,
// which reports a rollback with its reason after the previous slot boots.
func writeVerdict(path string, verdict error) error {
	g := update.Gate{Passed: verdict == nil, At: time.Now().UTC()}
	if verdict != nil {
		g.Reason = verdict.Error()
	}
	if b, err := os.ReadFile("/proc/cmdline"); err == nil {
		if _, rest, ok := strings.Cut(string(b), "rauc.slot="); ok && rest != "" {
			g.Slot = rest[:1]
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/random/boot_id"); err == nil {
		g.BootID = strings.TrimSpace(string(b))
	}
	return update.WriteGate(path, g)
}
