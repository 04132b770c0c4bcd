package vm

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"
)

// CommandError is a QMP or guest agent command that QEMU or the agent
// answered with an error.
type CommandError struct {
	Command string
	Class   string // such as "GenericError" or "CommandNotFound"
	Desc    string
}

func (e *CommandError) Error() string {
	return fmt.Sprintf("vm: %s: %s: %s", e.Command, e.Class, e.Desc)
}

// request is a command as QMP and qemu-ga read it.
type request struct {
	Execute   string `json:"execute"`
	Arguments any    `json:"arguments,omitempty"`
	ID        string `json:"id,omitempty"`
}

// reply is what the reading goroutine hands to the command waiting for
// one: a message, or the error of a message that could not be decoded.
type reply struct {
	msg *message
	err error
}

// client runs commands, one at a time, over a connection to QEMU's
// monitor or a guest agent. A goroutine reads every message: events go to
// the event log (if any), everything else to the command waiting, which
// discards replies that are not its own (late replies to a command whose
// context ended, greetings, qemu-ga's complaints about a sync byte).
type client struct {
	name   string // "qmp" or "guest agent", for errors
	conn   net.Conn
	log    *slog.Logger
	events *eventLog // nil: no events expected

	mu     sync.Mutex // held for a whole exchange
	nextID uint64

	replies chan reply
	done    chan struct{} // closed when the reading goroutine ends
	err     error         // why it ended; read after done is closed
}

func newClient(name string, conn net.Conn, max int, events *eventLog, log *slog.Logger) *client {
	c := &client{
		name:    name,
		conn:    conn,
		log:     log,
		events:  events,
		replies: make(chan reply, 16),
		done:    make(chan struct{}),
	}
	go c.read(newDecoder(conn, max))
	return c
}

func (c *client) read(dec *decoder) {
	defer close(c.done)
	for {
		m, err := dec.next()
		switch {
		case errors.Is(err, ErrBadMessage) || errors.Is(err, ErrMessageTooLarge):
			c.log.Warn("vm: bad message", "from", c.name, "err", err)
			c.deliver(reply{err: err})
			continue
		case err != nil:
			c.err = err
			return
		}
		if m.Event != "" && c.events != nil {
			e := Event{Name: m.Event, Data: m.Data}
			if m.Timestamp != nil {
				e.Time = time.Unix(m.Timestamp.Seconds, m.Timestamp.Microseconds*1000)
			}
			c.log.Debug("vm: event", "name", e.Name, "data", string(e.Data))
			c.events.add(e)
			continue
		}
		c.deliver(reply{msg: m})
	}
}

// deliver passes r to the waiting command, dropping it when nobody has
// taken the last 16 (they can only be stale).
func (c *client) deliver(r reply) {
	select {
	case c.replies <- r:
	default:
		c.log.Debug("vm: dropped a reply nobody waits for", "from", c.name)
	}
}

// call runs command with args (nil for none) and decodes its return value
// into result (nil to ignore it).
func (c *client) call(ctx context.Context, command string, args, result any) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.callLocked(ctx, command, args, result)
}

func (c *client) callLocked(ctx context.Context, command string, args, result any) error {
	c.nextID++
	id := fmt.Sprintf("%s-%d", c.name, c.nextID)
	m, err := c.exchangeLocked(ctx, nil, request{Execute: command, Arguments: args, ID: id}, func(m *message) bool {
		var got string
		return (m.Return != nil || m.Error != nil) && json.Unmarshal(m.ID, &got) == nil && got == id
	})
	if err != nil {
		return err
	}
	if m.Error != nil {
		return &CommandError{Command: command, Class: m.Error.Class, Desc: m.Error.Desc}
	}
	if result != nil {
		if err := json.Unmarshal(m.Return, result); err != nil {
			return fmt.Errorf("vm: %s %s: decode return value: %w", c.name, command, err)
		}
	}
	return nil
}

// exchangeLocked writes prefix and req, then waits for the first message
// that match accepts. c.mu must be held.
func (c *client) exchangeLocked(ctx context.Context, prefix []byte, req request, match func(*message) bool) (*message, error) {
	b, err := json.Marshal(req)
	if err != nil {
		return nil, fmt.Errorf("vm: %s %s: encode: %w", c.name, req.Execute, err)
	}
	if err := c.write(ctx, append(append(prefix, b...), '\n')); err != nil {
		if ctx.Err() == nil { // not a deadline: the connection is broken
			err = fmt.Errorf("%w: %w", ErrClosed, err)
		}
		return nil, fmt.Errorf("vm: %s %s: %w", c.name, req.Execute, err)
	}
	for {
		r, err := c.receive(ctx)
		if err != nil {
			return nil, fmt.Errorf("vm: %s %s: %w", c.name, req.Execute, err)
		}
		if r.err != nil {
			return nil, fmt.Errorf("vm: %s %s: %w", c.name, req.Execute, r.err)
		}
		if match(r.msg) {
			return r.msg, nil
		}
		c.log.Debug("vm: skipped a message that is not the reply", "from", c.name, "awaiting", req.Execute, "id", string(r.msg.ID))
	}
}

// receive returns the next reply, waiting until ctx ends. Once the
// connection has ended it returns the replies still queued, then
// ErrClosed: a reply that came just before the end is not lost.
func (c *client) receive(ctx context.Context) (reply, error) {
	select {
	case r := <-c.replies:
		return r, nil
	case <-c.done:
		select {
		case r := <-c.replies:
			return r, nil
		default:
			return reply{}, fmt.Errorf("%w (%w)", ErrClosed, c.err)
		}
	case <-ctx.Done():
		return reply{}, fmt.Errorf("no reply: %w", context.Cause(ctx))
	}
}

// write writes b, giving up when ctx ends (a guest agent that is not
// running stops reading once the channel's buffers are full).
func (c *client) write(ctx context.Context, b []byte) error {
	fired := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(fired)
		if err := c.conn.SetWriteDeadline(time.Now()); err != nil {
			c.log.Debug("vm: set write deadline", "err", err)
		}
	})
	_, err := c.conn.Write(b)
	if !stop() {
		// ctx ended and the deadline is set: clear it for the next
		// command.
		<-fired
		if derr := c.conn.SetWriteDeadline(time.Time{}); derr != nil && err == nil {
			err = derr
		}
		if err != nil {
			err = fmt.Errorf("%w (%w)", err, context.Cause(ctx))
		}
	}
	return err
}

// close closes the connection and waits for the reading goroutine.
func (c *client) close() error {
	err := c.conn.Close()
	<-c.done
	return err
}

// Event is an asynchronous QMP event, such as RESET, SHUTDOWN, STOP or
// WATCHDOG.
type Event struct {
	Name string
	Data json.RawMessage // the event's "data" member, if any
	Time time.Time       // when QEMU emitted it
}

// maxEvents bounds the events kept; the oldest go first.
const maxEvents = 10000

// eventLog keeps QMP events until a waiter takes them.
type eventLog struct {
	mu      sync.Mutex
	events  []Event
	changed chan struct{} // closed and replaced on every add
}

func newEventLog() *eventLog {
	return &eventLog{changed: make(chan struct{})}
}

func (l *eventLog) add(e Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.events) >= maxEvents {
		l.events = append(l.events[:0], l.events[1:]...)
	}
	l.events = append(l.events, e)
	close(l.changed)
	l.changed = make(chan struct{})
}

// take removes and returns the oldest event called name and waits for one
// until ctx ends; done, when closed, means no more events will come.
func (l *eventLog) take(ctx context.Context, name string, done <-chan struct{}) (Event, error) {
	ended := false
	for {
		l.mu.Lock()
		for i, e := range l.events {
			if e.Name == name {
				l.events = append(l.events[:i], l.events[i+1:]...)
				l.mu.Unlock()
				return e, nil
			}
		}
		changed := l.changed
		l.mu.Unlock()
		if ended {
			return Event{}, fmt.Errorf("vm: waiting for event %s: %w", name, ErrClosed)
		}
		select {
		case <-changed:
		case <-done:
			ended = true // look once more: the last event may have come with the end
		case <-ctx.Done():
			return Event{}, fmt.Errorf("vm: waiting for event %s: %w", name, context.Cause(ctx))
		}
	}
}
