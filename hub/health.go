package hub

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"syscall"
	"time"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/fleet"
)

// Names of the health checks: the keys of /healthz's "checks".
const (
	CheckDatabase = "database"
	CheckBroker   = "broker"
	CheckDisk     = "disk"
	CheckLoop     = "loop"
)

const (
	// checkTimeout bounds one run of the checks (each runs in parallel).
	checkTimeout = 5 * time.Second
	// loopSlack is added to 3×ReconcileEvery before the loop counts as
	// stuck.
	loopSlack = time.Minute
)

// errNotRunning is every check's result before Start completed and after
// Close.
var errNotRunning = errors.New("the hub is not running (starting or stopped)")

// checked is what the checks look at while the hub runs.
type checked struct {
	store Store
	fleet *fleet.Fleet
}

// result is the outcome of one check.
type result struct {
	name string
	err  error
	// fatal: the failure makes Check fail, which stops the systemd
	// watchdog's pings (and so restarts the hub).
	fatal bool
}

// Health runs the health checks and reports each: the body of GET
// /healthz (status 503 unless every check passed). See Check for what
// they test.
func (h *Hub) Health(ctx context.Context) api.Health {
	out := api.Health{Status: api.HealthOK, Checks: map[string]string{}, Version: h.cfg.Version}
	for _, r := range h.checks(ctx) {
		if r.err != nil {
			out.Status = api.HealthFailing
			out.Checks[r.name] = r.err.Error()
		} else {
			out.Checks[r.name] = api.HealthOK
		}
	}
	return out
}

// Check is the hub's liveness check: cmd/hub pings the systemd watchdog
// only while it passes, so a hub that fails it for WatchdogSec is killed
// and restarted. The checks, run in parallel within 5 s (and ctx), are:
//
//   - database: the database answers a query;
//   - loop: the main loop (reconciling desired state, escalation,
//     retention) came round, or finished a kiosk, within the last
//     3×ReconcileEvery + 1 minute;
//   - broker: the hub's MQTT client is connected to the broker (embedded
//     or external) with its subscriptions in place;
//   - disk: DataDir's file system has MinFreeDisk bytes free.
//
// /healthz (Health) reports every failure at once; Check fails only for
// those a restart can cure. A stuck database or loop fails it at once. A
// broker outage fails it only once it has lasted BrokerGrace (5 minutes):
// the client reconnects by itself, and restarting the hub cannot bring an
// external broker back, but a client that stays disconnected for minutes
// from a broker that is up (or from the embedded one) is stuck, and a
// restart makes a new one. A full disk never fails it: a restart frees no
// space, and a hub restarting every half minute would also stop serving
// the console and the kiosks' reads.
func (h *Hub) Check(ctx context.Context) error {
	var errs []error
	for _, r := range h.checks(ctx) {
		if r.err != nil && r.fatal {
			errs = append(errs, fmt.Errorf("%s: %w", r.name, r.err))
		}
	}
	return errors.Join(errs...)
}

// checks runs every check.
func (h *Hub) checks(ctx context.Context) []result {
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	names := []string{CheckDatabase, CheckBroker, CheckDisk, CheckLoop}
	run := h.running.Load()
	if run == nil {
		out := make([]result, len(names))
		for i, n := range names {
			out[i] = result{name: n, err: errNotRunning, fatal: true}
		}
		return out
	}
	out := []result{{name: CheckDatabase, fatal: true}, {name: CheckBroker}, {name: CheckDisk}, {name: CheckLoop, fatal: true}}
	var wg sync.WaitGroup
	wg.Go(func() {
		out[0].err = within(ctx, func() error {
			_, err := run.store.SchemaVersion(ctx)
			return err
		})
	})
	wg.Go(func() { out[2].err = within(ctx, h.checkDisk) })
	out[1].fatal, out[1].err = h.checkBroker(run.fleet)
	out[3].err = h.checkLoop()
	wg.Wait()
	return out
}

// within runs f and waits for it until ctx ends; f is then left to finish
// (it may be stuck in a system call) and what it returns is dropped.
func within(ctx context.Context, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("no answer: %w", ctx.Err())
	}
}

// turned records that the loop made progress.
func (h *Hub) turned() { h.loopTurn.Store(int64(time.Since(h.epoch))) }

// checkLoop fails when the loop has made no progress for 3 ticks and a
// minute.
func (h *Hub) checkLoop() error {
	limit := 3*h.cfg.ReconcileEvery + loopSlack
	idle := time.Since(h.epoch) - time.Duration(h.loopTurn.Load())
	if idle > limit {
		return fmt.Errorf("the main loop made no progress for %v (limit %v)", idle.Round(time.Second), limit)
	}
	return nil
}

// checkBroker fails while the fleet is not connected; fatal once that has
// lasted BrokerGrace.
func (h *Hub) checkBroker(f *fleet.Fleet) (fatal bool, err error) {
	up, since := f.Connection()
	if up {
		return false, nil
	}
	down := time.Since(since)
	return h.cfg.BrokerGrace >= 0 && down > h.cfg.BrokerGrace,
		fmt.Errorf("not connected to the MQTT broker for %v", down.Round(time.Second))
}

// checkDisk fails when DataDir's file system has less than MinFreeDisk
// bytes free for the hub.
func (h *Hub) checkDisk() error {
	if h.cfg.MinFreeDisk < 0 {
		return nil
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(h.cfg.DataDir, &fs); err != nil {
		return fmt.Errorf("free space of the data directory: %w", err)
	}
	free := int64(fs.Bavail) * int64(fs.Bsize)
	if free < h.cfg.MinFreeDisk {
		return fmt.Errorf("%d MiB free in the data directory's file system, below the floor of %d MiB",
			free>>20, h.cfg.MinFreeDisk>>20)
	}
	return nil
}
