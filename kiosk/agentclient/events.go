package agentclient

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/shequ/shequ/protocol"
)

// ErrStreamEnded means the agent closed the event stream.
var ErrStreamEnded = errors.New("agentclient: event stream ended")

// Events subscribes to the agent's event stream and calls fn for each event,
// in order, on the calling goroutine, until ctx ends (it then returns
// ctx.Err()) or the stream fails or ends (ErrStreamEnded).
func (c *Client) Events(ctx context.Context, fn func(protocol.LocalEvent)) error {
	return c.events(ctx, nil, func(ev protocol.LocalEvent) error {
		fn(ev)
		return nil
	})
}

// events is Events with a hook called once the stream is open; an error of
// opened or fn ends the stream and is returned.
func (c *Client) events(ctx context.Context, opened func() error, fn func(protocol.LocalEvent) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+protocol.LocalPathEvents, nil)
	if err != nil {
		return fmt.Errorf("agentclient: events: %w", err)
	}
	req.Header.Set("Accept", "text/event-stream")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agentclient: events: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("agentclient: events: %w", readError(resp))
	}
	if opened != nil {
		if err := opened(); err != nil {
			return err
		}
	}
	err = parseEvents(resp.Body, fn)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	if err == nil {
		err = ErrStreamEnded
	}
	return fmt.Errorf("agentclient: events: %w", err)
}

// parseEvents reads a text/event-stream and calls fn for every event whose
// data is a valid LocalEvent; an error of fn stops it and is returned. Data lines of one event are joined with "\n"
// as the SSE format specifies; comments and other fields are ignored. A line
// longer than MaxEventLine or an event with invalid data is an error. It
// returns nil at the end of the stream.
func parseEvents(r io.Reader, fn func(protocol.LocalEvent) error) error {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 512), MaxEventLine)
	var data []byte
	pending := false
	dispatch := func() error {
		if !pending {
			return nil
		}
		pending = false
		var ev protocol.LocalEvent
		if err := strictUnmarshal(data, &ev); err != nil {
			return fmt.Errorf("%w: event %q: %v", ErrMalformed, data, err)
		}
		if ev.Type == "" || len(ev.Type) > 64 {
			return fmt.Errorf("%w: event %q has no valid type", ErrMalformed, data)
		}
		data = data[:0]
		return fn(ev)
	}
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 {
			if err := dispatch(); err != nil {
				return err
			}
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		if string(field) != "data" {
			continue // comment (empty field), event, id, retry
		}
		if pending {
			data = append(data, '\n')
		}
		if len(data)+len(value) > MaxEventLine {
			return fmt.Errorf("%w: event data over %d bytes", ErrTooLarge, MaxEventLine)
		}
		data = append(data, value...)
		pending = true
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return fmt.Errorf("%w: event line over %d bytes", ErrTooLarge, MaxEventLine)
		}
		return fmt.Errorf("read event stream: %w", err)
	}
	return nil
}
