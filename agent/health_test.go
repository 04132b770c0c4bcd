package agent_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/internal/hubtest"
)

// TestCheck: the liveness check passes for a started agent, also offline
// and not enrolled, and fails once its store is closed.
func TestCheck(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	tests := []struct {
		name     string
		enrolled bool
		socket   bool
		breakIt  func(*testing.T, *agent.Agent)
		wantErr  string // "" for none
	}{
		{"not enrolled, local API", false, true, nil, ""},
		{"enrolled, offline, local API", true, true, nil, ""},
		{"enrolled, offline, no local API", true, false, nil, ""},
		{"store closed", true, true, func(t *testing.T, a *agent.Agent) {
			if err := agent.CloseStore(a); err != nil {
				t.Fatal(err)
			}
		}, "store: "},
		{"agent closed", false, true, func(t *testing.T, a *agent.Agent) {
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
		}, agent.ErrNotStarted.Error()},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			cfg := agent.Config{DataDir: t.TempDir(), BrokerURL: nowhere}
			if tc.enrolled {
				cfg.DataDir = enrolledDir(t, hub)
			}
			if tc.socket {
				cfg.Socket = filepath.Join(t.TempDir(), "agent.sock")
			}
			a := newAgent(t, cfg)
			if err := a.Check(context.Background()); !errors.Is(err, agent.ErrNotStarted) {
				t.Errorf("Check before Start = %v, want ErrNotStarted", err)
			}
			if err := a.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			defer func() {
				if err := a.Close(); err != nil && tc.breakIt == nil {
					t.Errorf("Close: %v", err)
				}
			}()
			if err := a.Check(context.Background()); err != nil {
				t.Fatalf("Check of a started agent: %v", err)
			}
			if tc.breakIt == nil {
				return
			}
			tc.breakIt(t, a)
			err := a.Check(context.Background())
			t.Logf("Check: %v", err)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Check = %v, want an error with %q", err, tc.wantErr)
			}
		})
	}
}
