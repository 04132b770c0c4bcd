package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/shequ/shequ/protocol"
)

// Check is the agent's liveness check: cmd/agent pings the systemd
// watchdog only while it passes, so an agent that fails it for
// WatchdogSec is killed and restarted. It fails when
//
//   - the agent is not started, or closed (ErrNotStarted);
//   - the store does not answer a read transaction of the outbox within
//     ctx (counting its records, which reads every page of it);
//   - with Config.Socket, the local API does not answer GET /v1/status on
//     its socket with 200 within ctx (so the server is accepting, and the
//     agent is not stuck on its lock);
//   - once enrolled, the MQTT link's goroutine has made no progress for
//     longer than it ever waits (link.Link.Check: about 3½ minutes with
//     the defaults).
//
// An offline kiosk, or one not enrolled yet, is a normal state and passes.
// A store stuck in a system call is reported when ctx ends; the call it
// made is left to finish.
func (a *Agent) Check(ctx context.Context) error {
	a.mu.Lock()
	st, l, api := a.st, a.link, a.api
	a.mu.Unlock()
	if st == nil {
		return ErrNotStarted
	}
	var errs []error
	if err := within(ctx, "store", func() error {
		_, err := st.OutboxDepth()
		return err
	}); err != nil {
		errs = append(errs, err) // "store: …"
	}
	if api != nil {
		if err := a.probeLocalAPI(ctx); err != nil {
			errs = append(errs, fmt.Errorf("local API: %w", err))
		}
	}
	if l != nil {
		if err := l.Check(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// probeLocalAPI asks the local API for the agent's status over its socket.
func (a *Agent) probeLocalAPI(ctx context.Context) error {
	c := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", a.cfg.Socket)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+protocol.LocalPathStatus, nil)
	if err != nil {
		return err
	}
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10)); err != nil {
		return fmt.Errorf("GET %s: %w", protocol.LocalPathStatus, err)
	}
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("GET %s: %s", protocol.LocalPathStatus, resp.Status)
	}
	return nil
}

// within runs f and waits for it until ctx ends; f is then left to finish
// (bbolt takes no context) and what it returns is dropped.
func within(ctx context.Context, what string, f func() error) error {
	done := make(chan error, 1)
	go func() { done <- f() }()
	select {
	case err := <-done:
		return err
	case <-ctx.Done():
		return fmt.Errorf("%s: no answer: %w", what, ctx.Err())
	}
}
