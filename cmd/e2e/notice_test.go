package e2e

import (
	"context"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

// kioskView is the kiosk's screen logic fed from the agent's local API, the
// way cmd/kiosk runs it, minus the Fyne layer.
type kioskView struct {
	model  *screen.Model
	client *agentclient.Client
}

func startKioskView(t *testing.T, socket string) *kioskView {
	t.Helper()
	model, err := screen.New(screen.Config{})
	if err != nil {
		t.Fatalf("screen.New: %v", err)
	}
	v := &kioskView{model: model, client: agentclient.New(socket)}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agentclient.Sync(ctx, v.client, v.model.SetContent, testLogger(t).With("proc", "kiosk"))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && ctx.Err() == nil {
			t.Errorf("kiosk sync: %v", err)
		}
	})
	return v
}

// titles returns the titles the kiosk would show now.
func (v *kioskView) titles() []string {
	var out []string
	for _, n := range v.model.VisibleNotices(time.Now()) {
		out = append(out, n.Title)
	}
	return out
}

func (v *kioskView) waitShows(t *testing.T, title string, want bool) {
	t.Helper()
	waitFor(t, 15*time.Second, "kiosk showing="+map[bool]string{true: "yes", false: "no"}[want]+" "+title, func() (bool, error) {
		return slices.Contains(v.titles(), title) == want, nil
	})
}

// TestNoticeReachesKiosk: a notice created through the hub API appears in
// the kiosk's screen model; withdrawing it removes it; a kiosk that was
// offline when a notice was created gets it when it reconnects. Run against
// the embedded broker and against mosquitto.
func TestNoticeReachesKiosk(t *testing.T) {
	for _, b := range brokers {
		t.Run(b, func(t *testing.T) {
			e := newEnv(t, b, nil)
			hubAPI := e.api()

			agentDir := t.TempDir()
			socket := filepath.Join(t.TempDir(), "agent.sock")
			e.enrol(demoKiosk, agentDir)
			ag := e.startAgent(agentDir, socket)
			view := startKioskView(t, socket)

			// Online: create, see it, withdraw, see it go.
			n := hubAPI.createNotice("小区违法搭建专项整治", protocol.PriorityImportant, kioskTarget(demoKiosk))
			view.waitShows(t, n.Title, true)
			hubAPI.withdraw(n.ID)
			view.waitShows(t, n.Title, false)

			// The hub sees what the kiosk holds.
			waitFor(t, 15*time.Second, "hub to report the kiosk online and up to date", func() (bool, error) {
				k, ok := hubAPI.kiosk(demoKiosk)
				return ok && k.Online && k.ContentVersion == k.DesiredVersion && k.DesiredVersion > 0, nil
			})

			// Offline: stop the agent, create a notice, start the agent again.
			if err := ag.Close(); err != nil {
				t.Fatalf("stop agent: %v", err)
			}
			waitFor(t, 15*time.Second, "hub to mark the kiosk offline", func() (bool, error) {
				k, ok := hubAPI.kiosk(demoKiosk)
				return ok && !k.Online, nil
			})
			late := hubAPI.createNotice("7.15城管公众开放日", protocol.PriorityNormal,
				protocol.Target{Level: protocol.LevelCity, ID: cityOf(t, hubAPI)})
			e.startAgent(agentDir, socket)
			view.waitShows(t, late.Title, true)
			if slices.Contains(view.titles(), n.Title) {
				t.Errorf("withdrawn notice %q came back after reconnect", n.Title)
			}
		})
	}
}

// TestUrgentNoticeTakesOver: an urgent notice takes over the kiosk's screen
// until it is withdrawn.
func TestUrgentNoticeTakesOver(t *testing.T) {
	e := newEnv(t, "mochi", nil)
	hubAPI := e.api()
	socket, agentDir := filepath.Join(t.TempDir(), "agent.sock"), t.TempDir()
	e.enrol(demoKiosk, agentDir)
	e.startAgent(agentDir, socket)
	view := startKioskView(t, socket)

	n := hubAPI.createNotice("台风预警：请勿在阳台堆放杂物", protocol.PriorityUrgent, kioskTarget(demoKiosk))
	waitFor(t, 15*time.Second, "urgent takeover", func() (bool, error) {
		u, ok := view.model.Urgent(time.Now())
		return ok && u.ID == n.ID, nil
	})
	hubAPI.withdraw(n.ID)
	waitFor(t, 15*time.Second, "urgent takeover to end", func() (bool, error) {
		_, ok := view.model.Urgent(time.Now())
		return !ok, nil
	})
}

// cityOf returns the id of the org tree's root node.
func cityOf(t *testing.T, a api) string {
	t.Helper()
	var org struct {
		Root struct {
			ID    string `json:"id"`
			Level string `json:"level"`
		} `json:"root"`
	}
	a.do("GET", "/api/v1/org", nil, &org)
	root := org.Root
	if root.Level != string(protocol.LevelCity) || root.ID == "" {
		t.Fatalf("org root is %+v, want a city", root)
	}
	return root.ID
}
