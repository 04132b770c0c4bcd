// Package sdnotify tells systemd how a service is doing (sd_notify(3)) and
// feeds its watchdog, for the hub and the agent run as Type=notify units
// with WatchdogSec=.
//
// A main reads the Config systemd gives the process with FromEnv, starts
// its service, and then calls Serve with the service's liveness check:
//
//	cfg, err := sdnotify.FromEnv(os.Getenv, os.Getpid())
//	…
//	if err := svc.Start(ctx); err != nil { … }
//	err = sdnotify.Serve(ctx, cfg, log, svc.Check) // until ctx ends
//	return errors.Join(err, svc.Close())
//
// Serve sends READY=1 at once, so the unit becomes active only after the
// service started. With a watchdog it runs the check every half interval
// and sends WATCHDOG=1 only when the check passed within
// Config.CheckTimeout; a failing or hanging check withholds the ping (so
// systemd kills and restarts a service that stays unhealthy for the
// watchdog interval), sets STATUS= to the reason, and is logged, at most
// once a minute for the same reason. When ctx ends it sends STOPPING=1.
//
// With WatchdogSec=30s the check runs every 15 s with 7.5 s to answer.
// The ping after a failed round comes no earlier than the watchdog's
// deadline, so one failed round is usually enough for a restart: a check
// must fail only for trouble a restart cures, and tolerate passing
// trouble itself (the hub's does, e.g. for broker outages).
//
// Without NOTIFY_SOCKET (development, tests) everything is a no-op. The
// protocol is written here (a datagram to a Unix socket, abstract when its
// name starts with '@') rather than taken from go-systemd: it is a few
// lines, and a Config passed in lets tests use a socket of their own.
package sdnotify

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"strings"
	"time"
)

// Notification states (sd_notify(3)).
const (
	Ready    = "READY=1"
	Stopping = "STOPPING=1"
	Watchdog = "WATCHDOG=1"
)

// logEvery is how often the same failure is logged again while it lasts.
const logEvery = time.Minute

// Config says where to send notifications and how often to ping the
// watchdog. The zero Config sends nothing.
type Config struct {
	// Socket is the notification socket ($NOTIFY_SOCKET): a path, or a
	// name starting with '@' for an abstract socket. Empty: no
	// notifications at all.
	Socket string
	// Watchdog is the watchdog timeout ($WATCHDOG_USEC); zero: no
	// watchdog, no checks. The check runs and the watchdog is pinged every
	// Watchdog/2.
	Watchdog time.Duration
	// CheckTimeout bounds one run of the check; default Watchdog/4, so a
	// hanging check is noticed well before the next ping is due.
	CheckTimeout time.Duration
	// Status is the STATUS= text sent with READY=1 and when the check
	// passes again after failing; default "running".
	Status string
}

// FromEnv returns the Config systemd gives a service through its
// environment: NOTIFY_SOCKET, and WATCHDOG_USEC unless WATCHDOG_PID names
// another process than pid. getenv is os.Getenv outside tests.
func FromEnv(getenv func(string) string, pid int) (Config, error) {
	cfg := Config{Socket: getenv("NOTIFY_SOCKET")}
	usec := getenv("WATCHDOG_USEC")
	if usec == "" {
		return cfg, nil
	}
	if p := getenv("WATCHDOG_PID"); p != "" {
		n, err := strconv.Atoi(p)
		if err != nil {
			return cfg, fmt.Errorf("sdnotify: WATCHDOG_PID=%q: %w", p, err)
		}
		if n != pid {
			return cfg, nil // the watchdog is another process's
		}
	}
	n, err := strconv.ParseInt(usec, 10, 64)
	if err != nil || n <= 0 {
		return cfg, fmt.Errorf("sdnotify: WATCHDOG_USEC=%q is not a positive number of microseconds", usec)
	}
	cfg.Watchdog = time.Duration(n) * time.Microsecond
	return cfg, nil
}

// Send sends one notification, e.g. "READY=1\nSTATUS=running", to the
// socket (a no-op when socket is empty).
func Send(socket, state string) error {
	if socket == "" {
		return nil
	}
	c, err := net.DialUnix("unixgram", nil, &net.UnixAddr{Name: socket, Net: "unixgram"})
	if err != nil {
		return fmt.Errorf("sdnotify: %w", err)
	}
	_, err = c.Write([]byte(state))
	if cerr := c.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("sdnotify: send %q: %w", firstLine(state), err)
	}
	return nil
}

// Serve tells systemd the service is ready, feeds the watchdog while check
// passes, and says the service is stopping when ctx ends. Call it once the
// service has started; it returns when ctx ends (nil), or at once with an
// error if READY=1 cannot be sent. check gets a context that ends after
// Config.CheckTimeout; a check that ignores it is waited for no longer
// and fails the round, and until it has returned no new check is started
// (and no ping sent).
func Serve(ctx context.Context, cfg Config, log *slog.Logger, check func(context.Context) error) error {
	if cfg.Socket == "" {
		<-ctx.Done()
		return nil
	}
	if cfg.Status == "" {
		cfg.Status = "running"
	}
	if err := Send(cfg.Socket, Ready+"\nSTATUS="+oneLine(cfg.Status)); err != nil {
		return err
	}
	if cfg.Watchdog > 0 {
		if cfg.CheckTimeout <= 0 {
			cfg.CheckTimeout = cfg.Watchdog / 4
		}
		log.Info("systemd watchdog enabled", "timeout", cfg.Watchdog, "check_every", cfg.Watchdog/2)
		w := &watch{cfg: cfg, log: log, check: check}
		tick := time.NewTicker(cfg.Watchdog / 2)
		for ctx.Err() == nil {
			w.round(ctx)
			select {
			case <-ctx.Done():
			case <-tick.C:
			}
		}
		tick.Stop()
	} else {
		<-ctx.Done()
	}
	if err := Send(cfg.Socket, Stopping); err != nil {
		log.Warn("telling systemd the service stops", "err", err)
	}
	return nil
}

// watch is the state of the watchdog loop.
type watch struct {
	cfg   Config
	log   *slog.Logger
	check func(context.Context) error

	running  chan error // a check that timed out and has not returned yet
	failing  string     // the reason of the last failed round; "" while healthy
	loggedAt time.Time  // when failing was last logged
}

// round runs the check once and pings the watchdog if it passed.
func (w *watch) round(ctx context.Context) {
	err := w.run(ctx)
	if ctx.Err() != nil {
		return // stopping: neither a ping nor a failure
	}
	if err != nil {
		w.fail(err)
		return
	}
	state := Watchdog
	if w.failing != "" {
		w.log.Info("health check passes again", "was", w.failing)
		state += "\nSTATUS=" + oneLine(w.cfg.Status)
		w.failing = ""
	}
	if err := Send(w.cfg.Socket, state); err != nil {
		w.log.Warn("pinging the systemd watchdog", "err", err)
	}
}

// run runs the check with the timeout. A check that does not return in
// time is left running and reported; the next rounds wait for it (up to
// the timeout each) before they start another.
func (w *watch) run(ctx context.Context) error {
	if w.running != nil {
		t := time.NewTimer(w.cfg.CheckTimeout)
		select {
		case <-w.running:
			t.Stop()
			w.running = nil
		case <-t.C:
			return fmt.Errorf("the health check started earlier has not returned (more than %v)", w.cfg.CheckTimeout)
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		}
	}
	cctx, cancel := context.WithTimeout(ctx, w.cfg.CheckTimeout)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- w.check(cctx) }()
	select {
	case err := <-done:
		return err
	case <-cctx.Done():
	}
	select {
	case err := <-done: // it returned as the time ran out: passed, or gave up
		if err == nil {
			return nil
		}
	default:
		w.running = done
	}
	return fmt.Errorf("health check did not answer within %v", w.cfg.CheckTimeout)
}

// fail withholds the ping, shows the reason in systemctl status and logs
// it (again only when it changed or a minute passed).
func (w *watch) fail(err error) {
	reason := oneLine(err.Error())
	if reason != w.failing || time.Since(w.loggedAt) >= logEvery {
		w.log.Error("health check failed: not pinging the systemd watchdog", "err", err)
		w.loggedAt = time.Now()
	}
	if reason == w.failing {
		return
	}
	w.failing = reason
	if err := Send(w.cfg.Socket, "STATUS=unhealthy: "+reason); err != nil {
		w.log.Warn("telling systemd the service is unhealthy", "err", err)
	}
}

// oneLine makes s fit on one notification line.
func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if s == "" {
		return "unknown"
	}
	return s
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
