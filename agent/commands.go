package agent

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/shequ/shequ/agent/link"
	"github.com/shequ/shequ/agent/localapi"
	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

// Remote commands (protocol/command.go). The link hands over each command
// whose signature it verified; the agent runs it at most once and reports
// its result as an outbox record:
//
//   - an id seen before (bbolt, store.ClaimCommand) is ignored: no second
//     run, no second result;
//   - a command past its expiry, by this device's clock, is refused;
//   - restart_agent: the ok result is queued durably, the agent waits up
//     to restartAckWait for the hub's ack, then Run returns
//     ErrRestartRequested (cmd/agent exits non-zero, and systemd's
//     Restart=on-failure starts it again);
//   - restart_ui and screenshot: the kiosk UI is told with an EventCommand
//     and answers on POST /v1/commands/{id} (Reply); no answer within
//     Config.CommandReplyTimeout is a failure.

// Limits of remote commands.
const (
	// DefaultCommandReplyTimeout is how long the kiosk UI has to answer.
	DefaultCommandReplyTimeout = 30 * time.Second
	// maxCommands bounds the commands running at once; more are refused.
	maxCommands = 4
	// restartAckWait bounds the wait for the hub's ack of a restart_agent
	// result before the agent exits; a result not acknowledged by then is
	// sent after the restart.
	restartAckWait = 5 * time.Second
)

// ErrRestartRequested is what Run returns after the hub asked the agent to
// restart (restart_agent): the process should exit with a failure status,
// so that systemd (Restart=on-failure) starts it again.
var ErrRestartRequested = errors.New("agent: restart requested by the hub")

// Reasons of refusals and failures, Chinese first.
const (
	reasonExpired   = "命令已过期 / command expired"
	reasonBusy      = "命令过多，请稍后再试 / too many commands at once; try again later"
	reasonNoUI      = "界面未连接 / the kiosk UI is not connected"
	reasonNoAnswer  = "界面未响应 / the kiosk UI did not answer"
	reasonStopping  = "代理正在停止 / the agent is stopping"
	reasonWrongKind = "界面答复与命令不符 / the kiosk UI answered another action"
)

var _ link.CommandSink = (*Agent)(nil)

// DeliverCommand runs a verified command in the background. The link calls
// it from its session goroutine (before the agent waits for background
// work in Close).
func (a *Agent) DeliverCommand(c protocol.Command) {
	st, l, kiosk := a.parts()
	if st == nil || l == nil {
		return
	}
	a.mu.Lock()
	ctx := a.ctx
	a.mu.Unlock()
	a.bg.Add(1)
	go func() {
		defer a.bg.Done()
		a.runCommand(ctx, st, l, kiosk, c)
	}()
}

// RestartRequested is closed once the hub has asked the agent to restart
// and the result has been queued (and, if the hub was reachable,
// acknowledged).
func (a *Agent) RestartRequested() <-chan struct{} { return a.restart }

func (a *Agent) runCommand(ctx context.Context, st *store.Store, l *link.Link, kiosk string, c protocol.Command) {
	log := a.log.With("command", c.ID, "action", c.Action, "by", c.By)
	now := time.Now()
	fresh, err := st.ClaimCommand(c.ID, c.Expires, now)
	if err != nil {
		log.Error("remote command not run: its id could not be recorded", "err", err)
		return
	}
	if !fresh {
		log.Warn("remote command ignored: this id was seen before (a redelivery or a replay)")
		return
	}
	finish := func(status protocol.ResultStatus, reason string, shot *protocol.Screenshot) string {
		r := protocol.CommandResult{Kiosk: kiosk, Command: c.ID, Action: c.Action, Status: status, Reason: reason,
			At: time.Now().UTC().Truncate(time.Millisecond), Screenshot: shot}
		id, err := st.AddResult(r)
		if err != nil {
			log.Error("remote command result not stored", "status", status, "err", err)
			return ""
		}
		log.Info("remote command done", "status", status, "reason", reason, "record", id)
		l.Wake()
		a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
		return id
	}
	if c.Expired(now) {
		finish(protocol.ResultRefused, reasonExpired, nil)
		return
	}
	if !a.startCommand() {
		finish(protocol.ResultRefused, reasonBusy, nil)
		return
	}
	defer a.endCommand()
	log.Info("running remote command")
	switch c.Action {
	case protocol.ActionRestartAgent:
		id := finish(protocol.ResultOK, "", nil)
		if id != "" {
			a.awaitAck(ctx, st, id)
		}
		a.restartOnce.Do(func() { close(a.restart) })
	case protocol.ActionRestartUI, protocol.ActionScreenshot:
		r := a.askUI(ctx, c)
		finish(r.Status, r.Reason, r.Screenshot)
	}
}

func (a *Agent) startCommand() bool {
	a.cmdMu.Lock()
	defer a.cmdMu.Unlock()
	if a.running >= maxCommands {
		return false
	}
	a.running++
	return true
}

func (a *Agent) endCommand() {
	a.cmdMu.Lock()
	defer a.cmdMu.Unlock()
	a.running--
}

// awaitAck waits until the record id has left the outbox (the hub
// acknowledged it), restartAckWait passes, or ctx ends.
func (a *Agent) awaitAck(ctx context.Context, st *store.Store, id string) {
	deadline := time.NewTimer(restartAckWait)
	defer deadline.Stop()
	poll := time.NewTicker(50 * time.Millisecond)
	defer poll.Stop()
	for {
		if in, err := st.InOutbox(id); err != nil || !in {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-deadline.C:
			a.log.Warn("restarting before the hub acknowledged the result; it is sent after the restart", "record", id)
			return
		case <-poll.C:
		}
	}
}

// askUI tells the kiosk UI to act on c and waits for its answer.
func (a *Agent) askUI(ctx context.Context, c protocol.Command) protocol.LocalCommandReply {
	failed := func(reason string) protocol.LocalCommandReply {
		return protocol.LocalCommandReply{Action: c.Action, Status: protocol.ResultFailed, Reason: reason}
	}
	ch := make(chan protocol.LocalCommandReply, 1)
	a.mu.Lock()
	listeners := len(a.subs)
	a.mu.Unlock()
	if listeners == 0 {
		return failed(reasonNoUI)
	}
	a.cmdMu.Lock()
	a.pending[c.ID] = pendingCommand{action: c.Action, reply: ch}
	a.cmdMu.Unlock()
	defer func() {
		a.cmdMu.Lock()
		delete(a.pending, c.ID)
		a.cmdMu.Unlock()
	}()
	a.broadcast(protocol.LocalEvent{Type: protocol.EventCommand, Command: c.ID, Action: c.Action})
	t := time.NewTimer(a.cfg.CommandReplyTimeout)
	defer t.Stop()
	select {
	case r := <-ch:
		return r
	case <-t.C:
		return failed(reasonNoAnswer)
	case <-ctx.Done():
		return failed(reasonStopping)
	}
}

// pendingCommand is a command waiting for the kiosk UI's answer.
type pendingCommand struct {
	action protocol.Action
	reply  chan<- protocol.LocalCommandReply
}

// CommandReply takes the kiosk UI's answer to a command it was told of
// (POST /v1/commands/{id}). An id no command waits under (unknown,
// answered already, timed out) is localapi.ErrNoCommand.
func (a *Agent) CommandReply(id string, r protocol.LocalCommandReply) error {
	if err := r.Validate(); err != nil {
		return fmt.Errorf("agent: command reply: %w", err)
	}
	a.cmdMu.Lock()
	p, ok := a.pending[id]
	if ok && p.action == r.Action {
		delete(a.pending, id)
	}
	a.cmdMu.Unlock()
	switch {
	case !ok:
		return fmt.Errorf("agent: command %s: %w", id, localapi.ErrNoCommand)
	case p.action != r.Action:
		return fmt.Errorf("agent: command %s: %w: %s", id, protocol.ErrInvalid, reasonWrongKind)
	}
	p.reply <- r // capacity 1, and only the one taken from pending sends
	return nil
}
