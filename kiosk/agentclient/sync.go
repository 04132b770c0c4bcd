package agentclient

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/shequ/shequ/protocol"
)

// Backoff between reconnects to the agent.
const (
	minBackoff = 250 * time.Millisecond
	maxBackoff = 10 * time.Second
)

// Apply receives what SyncAll fetches from the agent. A nil function is
// not fetched.
type Apply struct {
	// Content receives the station and notices: once the event stream is
	// open and again on every EventNotices.
	Content func(protocol.LocalNotices)
	// Status receives the agent's status (whether the device is enrolled,
	// connected, its outbox): once the event stream is open, before the
	// content, and again on every EventStatus.
	Status func(protocol.AgentStatus)
	// Cases is told of every EventCases with the board's version: a case
	// on screen should be fetched again. It must not block.
	Cases func(version int64)
	// Command is told of every EventCommand (a remote command the UI
	// must act on and answer with Client.ReplyCommand). It must not block.
	Command func(ev protocol.LocalEvent)
}

// Sync keeps the kiosk's content in step with the agent until ctx ends: it
// subscribes to the event stream, fetches the notices once the stream is open
// and again on every EventNotices, and calls apply with each result. When the
// agent is not there or restarts it reconnects with exponential backoff. It
// returns nil when ctx ends. It is SyncAll with only Apply.Content.
func Sync(ctx context.Context, c *Client, apply func(protocol.LocalNotices), log *slog.Logger) error {
	return SyncAll(ctx, c, Apply{Content: apply}, log)
}

// SyncAll is Sync for the content and the agent's status: the kiosk learns
// from the status whether the device is enrolled. A failed fetch ends the
// event stream, which is then reopened with backoff, so nothing is missed.
// It returns nil when ctx ends.
func SyncAll(ctx context.Context, c *Client, apply Apply, log *slog.Logger) error {
	fetchNotices := func() error {
		if apply.Content == nil {
			return nil
		}
		n, err := c.Notices(ctx)
		if err != nil {
			return fmt.Errorf("fetch notices: %w", err)
		}
		apply.Content(n)
		return nil
	}
	fetchStatus := func() error {
		if apply.Status == nil {
			return nil
		}
		st, err := c.Status(ctx)
		if err != nil {
			return fmt.Errorf("fetch status: %w", err)
		}
		apply.Status(st)
		return nil
	}
	backoff := minBackoff
	failures := 0
	for {
		connected := false
		err := c.events(ctx, func() error {
			connected = true
			if err := fetchStatus(); err != nil {
				return err
			}
			if err := fetchNotices(); err != nil {
				return err
			}
			if failures > 0 {
				log.Info("agent connected", "after_failures", failures)
			}
			failures = 0
			return nil
		}, func(ev protocol.LocalEvent) error {
			switch ev.Type {
			case protocol.EventNotices:
				return fetchNotices()
			case protocol.EventStatus:
				return fetchStatus()
			case protocol.EventCases:
				if apply.Cases != nil {
					apply.Cases(ev.Version)
				}
			case protocol.EventCommand:
				if apply.Command != nil {
					apply.Command(ev)
				}
			}
			return nil
		})
		if ctx.Err() != nil {
			return nil
		}
		if connected {
			backoff = minBackoff
		}
		failures++
		// Log the first failure and then every tenth, not every retry.
		if failures == 1 || failures%10 == 0 {
			log.Warn("agent unavailable, retrying", "err", err, "failures", failures, "retry_in", backoff)
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
		backoff = min(backoff*2, maxBackoff)
	}
}
