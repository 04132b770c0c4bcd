package e2e

import (
	"bytes"
	"context"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/protocol"
)

// agentProc is cmd/agent running as a child process.
type agentProc struct {
	cmd *exec.Cmd
	out *bytes.Buffer
}

// enrolProc enrols a fresh device with the agent binary's enrol command, as
// a technician does on site.
func enrolProc(t *testing.T, e *env, bin, dataDir string) {
	t.Helper()
	out, err := exec.Command(bin, "enrol", "-data", dataDir, "-hub", e.hub.HTTPURL(),
		"-code", e.claim(demoKiosk), "-ca-pin", e.hub.CAPin()).CombinedOutput()
	if err != nil {
		t.Fatalf("agent enrol: %v\n%s", err, out)
	}
}

func spawnAgent(t *testing.T, bin, dataDir, socket string) *agentProc {
	t.Helper()
	cmd := exec.Command(bin, "run", "-data", dataDir, "-socket", socket, "-heartbeat", "500ms")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatalf("start agent: %v", err)
	}
	p := &agentProc{cmd: cmd, out: &out}
	t.Cleanup(func() {
		if p.cmd.ProcessState == nil {
			p.kill(t)
		}
	})
	client := agentclient.New(socket)
	waitFor(t, 15*time.Second, "agent process to serve its local API", func() (bool, error) {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		_, err := client.Status(ctx)
		return err == nil, err
	})
	return p
}

// kill sends SIGKILL: no clean shutdown, no chance to flush anything.
func (p *agentProc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("SIGKILL agent: %v", err)
	}
	err := p.cmd.Wait()
	if ws, ok := p.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("agent did not die of SIGKILL: %v\n%s", err, p.out.String())
	}
	t.Logf("agent killed; its log:\n%s", p.out.String())
}

// TestAgentKilledBeforeAck runs cmd/agent as a real process and kills it with
// SIGKILL after the feedback is in its outbox and before the hub's ack
// reaches it; after a restart the hub holds exactly one record.
func TestAgentKilledBeforeAck(t *testing.T) {
	bin := buildCmd(t, "agent", false)
	cases := []struct {
		name string
		// hubUpAtSubmit: the hub receives and commits the record, the ack is
		// held back until the agent is dead. Otherwise the hub is down and the
		// record never left the agent before the kill.
		hubUpAtSubmit bool
	}{
		{name: "stored-at-hub-ack-lost", hubUpAtSubmit: true},
		{name: "hub-down-never-sent", hubUpAtSubmit: false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			committed := make(chan string, 16)
			release := make(chan struct{})
			var once sync.Once
			hold := func(id string) {
				committed <- id
				<-release
			}
			e := newEnv(t, "mochi", hold)
			t.Cleanup(func() { once.Do(func() { close(release) }) })
			agentDir := t.TempDir()
			enrolProc(t, e, bin, agentDir)
			if !tc.hubUpAtSubmit {
				e.stop()
			}

			socket := filepath.Join(t.TempDir(), "agent.sock")
			proc := spawnAgent(t, bin, agentDir, socket)
			client := agentclient.New(socket)
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			receipt, err := client.SubmitFeedback(ctx, sampleFeedback("502"))
			cancel()
			if err != nil {
				t.Fatalf("submit: %v", err)
			}

			if tc.hubUpAtSubmit {
				select {
				case id := <-committed:
					if id != receipt.ID {
						t.Fatalf("hub committed %s, receipt is %s", id, receipt.ID)
					}
				case <-time.After(15 * time.Second):
					t.Fatalf("hub never stored the record; agent log:\n%s", proc.out.String())
				}
			}
			proc.kill(t) // the ack is still held back by the hub
			once.Do(func() { close(release) })

			if !tc.hubUpAtSubmit {
				e.start() // hold no longer blocks: release is closed
			}
			spawnAgent(t, bin, agentDir, socket)
			waitFor(t, 30*time.Second, "restarted agent's outbox to drain", func() (bool, error) {
				ctx, cancel := context.WithTimeout(context.Background(), time.Second)
				defer cancel()
				st, err := client.Status(ctx)
				return err == nil && st.Connected && st.OutboxDepth == 0, err
			})
			// The restarted agent resent the record and the hub answered it
			// as a duplicate (the hook runs before every ack).
			select {
			case id := <-committed:
				if id != receipt.ID {
					t.Errorf("hub acknowledged %s after the restart, want %s", id, receipt.ID)
				}
			default:
				t.Errorf("the restarted agent's outbox drained without the hub acknowledging %s", receipt.ID)
			}
			assertFeedbackOnce(t, e.api().feedback(),
				map[string]protocol.FeedbackReceipt{receipt.ID: receipt})
		})
	}
}
