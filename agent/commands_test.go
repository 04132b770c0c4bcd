package agent_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"errors"
	"image"
	"image/png"
	"log/slog"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/protocol"
)

// commandRig is a real agent, with its local API on a Unix socket,
// enrolled with a fake hub on a real broker.
type commandRig struct {
	t    *testing.T
	hub  *hubtest.Hub
	dir  string
	a    *agent.Agent
	logs *hubtest.Logs
	sock string
}

func newCommandRig(t *testing.T, cfg agent.Config) *commandRig {
	t.Helper()
	b := hubtest.StartBroker(t)
	r := &commandRig{t: t, hub: hubtest.NewHub(t, b), logs: hubtest.NewLogs(t)}
	r.dir = enrolledDir(t, r.hub)
	r.sock = filepath.Join(r.dir, "agent.sock")
	cfg.DataDir, cfg.Socket = r.dir, r.sock
	cfg.ReconnectMin, cfg.ReconnectMax = 10*time.Millisecond, 100*time.Millisecond
	a, err := agent.New(cfg, r.logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	r.a = a
	start(t, a)
	hubtest.Eventually(t, wait, "agent connected", func() bool { return a.Status().Connected })
	return r
}

// command returns a command for the rig's kiosk, valid for a minute.
func command(action protocol.Action) protocol.Command {
	now := time.Now()
	return protocol.Command{ID: protocol.NewID(), Kiosk: kiosk, Action: action, By: "account:tech-1",
		Issued: now, Expires: now.Add(time.Minute)}
}

// send publishes c signed with key (nil: unsigned) under the envelope id
// envID (empty: the command's id), as the hub does, and returns the bytes.
func (r *commandRig) send(c protocol.Command, key ed25519.PrivateKey, envID string) []byte {
	r.t.Helper()
	if envID == "" {
		envID = c.ID
	}
	var data []byte
	var err error
	if key == nil {
		data, err = protocol.EncodeID(envID, protocol.TypeCommand, time.Now(), c)
	} else {
		data, err = protocol.EncodeSigned(envID, protocol.TypeCommand, time.Now(), c, key)
	}
	if err != nil {
		r.t.Fatal(err)
	}
	r.hub.PublishRaw(protocol.DownTopic(kiosk, protocol.ChannelCommand), data)
	return data
}

// result waits for the next result record at the hub and acknowledges it.
func (r *commandRig) result() protocol.CommandResult {
	r.t.Helper()
	m := r.hub.Next(kiosk, protocol.ChannelResult, wait)
	env, res, err := protocol.DecodeResult(m.Payload)
	if err != nil {
		r.t.Fatalf("result: %v", err)
	}
	r.hub.Ack(kiosk, env.ID, protocol.AckStored, "")
	return res
}

// kioskUI answers commands through the real local API client as the kiosk
// UI does, with answer, until the test ends.
func (r *commandRig) kioskUI(answer func(ev protocol.LocalEvent) protocol.LocalCommandReply) {
	r.t.Helper()
	kioskUI(r.t, r.a, r.sock, answer)
}

// kioskUI answers the commands of agent a, whose local API is on sock,
// through the real local API client as the kiosk UI does, until the test
// ends.
func kioskUI(t *testing.T, a *agent.Agent, sock string, answer func(ev protocol.LocalEvent) protocol.LocalCommandReply) {
	t.Helper()
	c := agentclient.New(sock)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		err := c.Events(ctx, func(ev protocol.LocalEvent) {
			if ev.Type != protocol.EventCommand {
				return
			}
			if err := c.ReplyCommand(ctx, ev.Command, answer(ev)); err != nil {
				t.Errorf("reply to %s: %v", ev.Command, err)
			}
		})
		if ctx.Err() == nil {
			t.Errorf("event stream ended: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
		c.Close()
	})
	hubtest.Eventually(t, wait, "kiosk UI subscribed", func() bool { return agent.Subscribers(a) > 0 })
}

func testPNG(t *testing.T) []byte {
	t.Helper()
	var b bytes.Buffer
	if err := png.Encode(&b, image.NewGray(image.Rect(0, 0, 108, 192))); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// TestCommandsRunThroughTheUI: a signed screenshot command reaches the kiosk
// UI through the local API and its image reaches the hub; a refusal of the
// UI is reported as such; restart_ui is answered ok.
func TestCommandsRunThroughTheUI(t *testing.T) {
	r := newCommandRig(t, agent.Config{})
	shot := testPNG(t)
	var inForm atomic.Bool
	r.kioskUI(func(ev protocol.LocalEvent) protocol.LocalCommandReply {
		switch {
		case ev.Action == protocol.ActionRestartUI:
			return protocol.LocalCommandReply{Action: ev.Action, Status: protocol.ResultOK}
		case inForm.Load():
			return protocol.LocalCommandReply{Action: ev.Action, Status: protocol.ResultRefused, Reason: "居民正在使用 / resident is using the kiosk"}
		default:
			return protocol.LocalCommandReply{Action: ev.Action, Status: protocol.ResultOK, Screenshot: &protocol.Screenshot{
				Type: protocol.ImagePNG, Width: 108, Height: 192, TakenAt: time.Now(), Data: shot}}
		}
	})

	c := command(protocol.ActionScreenshot)
	r.send(c, r.hub.Key(), "")
	res := r.result()
	if res.Command != c.ID || res.Status != protocol.ResultOK || res.Screenshot == nil || !bytes.Equal(res.Screenshot.Data, shot) {
		t.Fatalf("screenshot result %+v", res)
	}

	inForm.Store(true)
	c = command(protocol.ActionScreenshot)
	r.send(c, r.hub.Key(), "")
	if res := r.result(); res.Command != c.ID || res.Status != protocol.ResultRefused || res.Screenshot != nil || res.Reason == "" {
		t.Fatalf("screenshot during a form: %+v", res)
	}

	c = command(protocol.ActionRestartUI)
	r.send(c, r.hub.Key(), "")
	if res := r.result(); res.Command != c.ID || res.Status != protocol.ResultOK {
		t.Fatalf("restart_ui result %+v", res)
	}
	hubtest.Eventually(t, wait, "results acknowledged", func() bool { return r.a.Status().OutboxDepth == 0 })
}

// TestCommandsRefused: what is not run, and what the hub hears of it.
func TestCommandsRefused(t *testing.T) {
	r := newCommandRig(t, agent.Config{CommandReplyTimeout: 200 * time.Millisecond})
	refusedLog := func(id string) {
		t.Helper()
		hubtest.Eventually(t, wait, "refusal of "+id+" logged", func() bool {
			for _, rec := range r.logs.Records(slog.LevelWarn, "downlink message refused") {
				if rec.Attrs["id"] == id {
					return true
				}
			}
			return false
		})
	}

	t.Run("expired", func(t *testing.T) {
		c := command(protocol.ActionRestartAgent)
		c.Issued, c.Expires = time.Now().Add(-3*time.Hour), time.Now().Add(-3*time.Hour+2*time.Minute)
		r.send(c, r.hub.Key(), "")
		res := r.result()
		if res.Command != c.ID || res.Status != protocol.ResultRefused || res.Reason != "命令已过期 / command expired" {
			t.Fatalf("expired command: %+v", res)
		}
		select {
		case <-r.a.RestartRequested():
			t.Fatal("an expired restart_agent restarted the agent")
		default:
		}
	})

	t.Run("no kiosk UI", func(t *testing.T) {
		c := command(protocol.ActionScreenshot)
		r.send(c, r.hub.Key(), "")
		if res := r.result(); res.Status != protocol.ResultFailed || res.Reason != "界面未连接 / the kiosk UI is not connected" {
			t.Fatalf("screenshot without a UI: %+v", res)
		}
	})

	t.Run("replayed", func(t *testing.T) {
		c := command(protocol.ActionScreenshot)
		data := r.send(c, r.hub.Key(), "")
		if res := r.result(); res.Command != c.ID {
			t.Fatalf("first run: %+v", res)
		}
		r.hub.PublishRaw(protocol.DownTopic(kiosk, protocol.ChannelCommand), data)
		r.logs.WaitFor(slog.LevelWarn, "remote command ignored: this id was seen before", 1, wait)
		if m, ok := r.hub.TryNext(kiosk, protocol.ChannelResult, 0); ok {
			t.Fatalf("a replayed command was reported again: %s", m.Payload)
		}
	})

	t.Run("replayed under a new envelope id", func(t *testing.T) {
		c := command(protocol.ActionScreenshot)
		env := protocol.NewID()
		r.send(c, r.hub.Key(), env)
		refusedLog(env)
	})

	t.Run("unsigned", func(t *testing.T) {
		c := command(protocol.ActionRestartAgent)
		r.send(c, nil, "")
		refusedLog(c.ID)
	})

	t.Run("signed by another key", func(t *testing.T) {
		c := command(protocol.ActionRestartAgent)
		r.send(c, hubtest.NewKey(t), "")
		refusedLog(c.ID)
	})

	t.Run("for another kiosk", func(t *testing.T) {
		c := command(protocol.ActionRestartAgent)
		c.Kiosk = "k-ruiyi-01"
		r.send(c, r.hub.Key(), "")
		refusedLog(c.ID)
	})

	// Nothing refused above produced a result, and the agent never asked
	// to restart.
	if m, ok := r.hub.TryNext(kiosk, protocol.ChannelResult, 0); ok {
		t.Fatalf("unexpected result: %s", m.Payload)
	}
	select {
	case <-r.a.RestartRequested():
		t.Fatal("a refused command restarted the agent")
	default:
	}
}

// TestRestartAgent: restart_agent reports ok, the hub acknowledges it,
// Run returns ErrRestartRequested; the agent started again on the same
// data does not run the same command a second time.
func TestRestartAgent(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	a := newAgent(t, agent.Config{DataDir: dir})
	ran := make(chan error, 1)
	go func() { ran <- a.Run(context.Background()) }()
	hubtest.Eventually(t, wait, "agent connected", func() bool { return a.Status().Connected })

	c := command(protocol.ActionRestartAgent)
	data, err := protocol.EncodeSigned(c.ID, protocol.TypeCommand, time.Now(), c, hub.Key())
	if err != nil {
		t.Fatal(err)
	}
	hub.PublishRaw(protocol.DownTopic(kiosk, protocol.ChannelCommand), data)
	m := hub.Next(kiosk, protocol.ChannelResult, wait)
	env, res, err := protocol.DecodeResult(m.Payload)
	if err != nil || res.Command != c.ID || res.Status != protocol.ResultOK {
		t.Fatalf("restart_agent result %+v, %v", res, err)
	}
	hub.Ack(kiosk, env.ID, protocol.AckStored, "")
	select {
	case err := <-ran:
		if !errors.Is(err, agent.ErrRestartRequested) {
			t.Fatalf("Run = %v, want ErrRestartRequested", err)
		}
	case <-time.After(wait):
		t.Fatal("the agent did not stop to restart")
	}

	logs := hubtest.NewLogs(t)
	a2, err := agent.New(agent.Config{DataDir: dir, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 100 * time.Millisecond}, logs.Logger())
	if err != nil {
		t.Fatal(err)
	}
	start(t, a2)
	hubtest.Eventually(t, wait, "agent connected again", func() bool { return a2.Status().Connected })
	if st := a2.Status(); st.OutboxDepth != 0 {
		t.Fatalf("the acknowledged result is still queued: %+v", st)
	}
	hub.PublishRaw(protocol.DownTopic(kiosk, protocol.ChannelCommand), data)
	logs.WaitFor(slog.LevelWarn, "remote command ignored: this id was seen before", 1, wait)
	select {
	case <-a2.RestartRequested():
		t.Fatal("the same restart_agent ran twice")
	default:
	}
}
