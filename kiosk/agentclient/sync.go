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

// Sync keeps the kiosk's content in step with the agent until ctx ends: it
// subscribes to the event stream, fetches the notices once the stream is open
// and again on every EventNotices, and calls apply with each result. When the
// agent is not there or restarts it reconnects with exponential backoff. It
// returns nil when ctx ends.
func Sync(ctx context.Context, c *Client, apply func(protocol.LocalNotices), log *slog.Logger) error {
	fetch := func() error {
		n, err := c.Notices(ctx)
		if err != nil {
			return fmt.Errorf("fetch notices: %w", err)
		}
		apply(n)
		return nil
	}
	backoff := minBackoff
	failures := 0
	for {
		connected := false
		err := c.events(ctx, func() error {
			connected = true
			if err := fetch(); err != nil {
				return err
			}
			if failures > 0 {
				log.Info("agent connected", "after_failures", failures)
			}
			failures = 0
			return nil
		}, func(ev protocol.LocalEvent) error {
			if ev.Type == protocol.EventNotices {
				return fetch()
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
