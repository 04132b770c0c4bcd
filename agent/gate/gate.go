// Package gate is the health gate of a kiosk's new root slot: on the first
// boots after an update (systemd-boot's counted tries), shequ-agent
// health-gate decides whether the kiosk really works before the slot is
// marked good (boot-complete.target, then systemd-bless-boot). The kiosk
// works when, for a stable while, the agent answers on its local API with
// its store open and its outbox readable, the hub is reachable (when the
// kiosk is enrolled), and the agent and the kiosk UI run without being
// restarted (a watchdog reset or a crash counts as a restart). A UI or
// agent that crash-loops fails the gate at once rather than at the timeout,
// so the kiosk gets back to its previous slot sooner.
package gate

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/shequ/shequ/protocol"
)

// Status reads the agent's status (its local API's GET /v1/status).
type Status interface {
	Status(ctx context.Context) (protocol.AgentStatus, error)
}

// Units reads the state of systemd units.
type Units interface {
	Unit(ctx context.Context, name string) (UnitState, error)
}

// UnitState is what the gate needs of a systemd unit.
type UnitState struct {
	Active   bool // ActiveState=active (for a Type=notify unit: READY=1 was sent)
	Failed   bool // ActiveState=failed: systemd gave up on it (for Restart=always, the start limit)
	Restarts int  // NRestarts: automatic restarts since the unit was loaded this boot
}

// Config says what the gate waits for.
type Config struct {
	// Units must be active and must not restart during Stable.
	Units []string
	// Stable is how long everything must stay healthy without a restart.
	Stable time.Duration
	// Timeout is how long the gate waits for Stable healthy time at most.
	Timeout time.Duration
	// MaxRestarts fails the gate at once when a unit has restarted this
	// many times this boot (a crash loop); 0 means never.
	MaxRestarts int
	// Offline passes the gate without the hub: for kiosks updated where
	// the hub cannot be reached (a documented allowance, not the default).
	Offline bool
	// Poll is how often the gate looks (default 2 s).
	Poll time.Duration
}

// ErrUnhealthy is wrapped by every verdict that the slot is not good.
var ErrUnhealthy = errors.New("the new slot is not healthy")

// ErrCrashLoop is wrapped (with ErrUnhealthy) when a unit crash-loops: a
// verdict that another try of the slot would not change.
var ErrCrashLoop = errors.New("crash loop")

// Wait returns nil once the kiosk has been healthy for cfg.Stable, or an
// error wrapping ErrUnhealthy with the last reason when cfg.Timeout passes
// first or a unit crash-loops.
func Wait(ctx context.Context, cfg Config, st Status, units Units, log *slog.Logger) error {
	if cfg.Poll <= 0 {
		cfg.Poll = 2 * time.Second
	}
	deadline := time.Now().Add(cfg.Timeout)
	var healthySince time.Time
	var baseline map[string]int // restarts when the current healthy stretch began
	reason := "not checked yet"
	t := time.NewTicker(cfg.Poll)
	defer t.Stop()
	for {
		now := time.Now()
		restarts, why, err := check(ctx, cfg, st, units)
		if err != nil {
			return err
		}
		switch {
		case why != "":
			if why != reason {
				log.Info("health gate: waiting", "reason", why)
			}
			reason, healthySince, baseline = why, time.Time{}, nil
		case baseline == nil:
			healthySince, baseline, reason = now, restarts, ""
			log.Info("health gate: healthy, watching for restarts", "for", cfg.Stable)
		default:
			for u, n := range restarts {
				if n != baseline[u] {
					reason = fmt.Sprintf("%s restarted (%d restarts this boot)", u, n)
					log.Warn("health gate: " + reason)
					healthySince, baseline = time.Time{}, nil
					break
				}
			}
			if baseline != nil && now.Sub(healthySince) >= cfg.Stable {
				log.Info("health gate: passed", "stable_for", now.Sub(healthySince).Round(time.Second))
				return nil
			}
		}
		if now.After(deadline) {
			return fmt.Errorf("%w: not healthy for %s within %s: %s", ErrUnhealthy, cfg.Stable, cfg.Timeout, reason)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("health gate: %w", context.Cause(ctx))
		case <-t.C:
		}
	}
}

// check looks once. It returns each unit's restarts and why the kiosk is
// not healthy now ("" when it is), or an error when it never will be (a
// crash loop).
func check(ctx context.Context, cfg Config, st Status, units Units) (map[string]int, string, error) {
	restarts := make(map[string]int, len(cfg.Units))
	why := ""
	for _, u := range cfg.Units {
		s, err := units.Unit(ctx, u)
		if err != nil {
			if why == "" {
				why = fmt.Sprintf("reading %s: %v", u, err)
			}
			continue
		}
		restarts[u] = s.Restarts
		if cfg.MaxRestarts > 0 && s.Restarts >= cfg.MaxRestarts {
			return nil, "", fmt.Errorf("%w: %s restarted %d times this boot (%w)", ErrUnhealthy, u, s.Restarts, ErrCrashLoop)
		}
		if s.Failed {
			return nil, "", fmt.Errorf("%w: %s failed and systemd stopped restarting it, after %d restarts (%w)", ErrUnhealthy, u, s.Restarts, ErrCrashLoop)
		}
		if !s.Active && why == "" {
			why = u + " is not active"
		}
	}
	s, err := st.Status(ctx)
	switch {
	case err != nil:
		if why == "" {
			why = fmt.Sprintf("the agent does not answer: %v", err)
		}
	case s.OutboxDepth < 0:
		if why == "" {
			why = fmt.Sprintf("the agent reports an unreadable outbox (depth %d)", s.OutboxDepth)
		}
	case s.Enrolled && !s.Connected && !cfg.Offline:
		if why == "" {
			why = "the hub is not reachable"
		}
	}
	return restarts, why, nil
}
