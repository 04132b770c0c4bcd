package gate

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// fake is a kiosk whose state the test scripts: step n of the gate's
// looks sees units[n] (the last entry repeats) and status.
type fake struct {
	mu     sync.Mutex
	looks  int
	units  []map[string]UnitState
	status func(look int) (protocol.AgentStatus, error)
}

func (f *fake) Unit(_ context.Context, name string) (UnitState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	step := f.units[min(f.looks, len(f.units)-1)]
	s, ok := step[name]
	if !ok {
		return s, errors.New("no such unit")
	}
	return s, nil
}

func (f *fake) Status(context.Context) (protocol.AgentStatus, error) {
	f.mu.Lock()
	look := f.looks
	f.looks++ // Status is read last in each look
	f.mu.Unlock()
	if f.status == nil {
		return protocol.AgentStatus{Enrolled: true, Connected: true}, nil
	}
	return f.status(look)
}

var units = []string{"shequ-agent.service", "shequ-kiosk.service"}

func up(restarts int) map[string]UnitState {
	return map[string]UnitState{
		"shequ-agent.service": {Active: true},
		"shequ-kiosk.service": {Active: true, Restarts: restarts},
	}
}

func cfg() Config {
	return Config{Units: units, Stable: 20 * time.Millisecond, Timeout: 300 * time.Millisecond, MaxRestarts: 3, Poll: time.Millisecond}
}

func quiet() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

func TestWait(t *testing.T) {
	down := map[string]UnitState{"shequ-agent.service": {Active: true}, "shequ-kiosk.service": {}}
	for _, c := range []struct {
		name    string
		cfg     func(Config) Config
		units   []map[string]UnitState
		status  func(int) (protocol.AgentStatus, error)
		wantErr string // "" passes
	}{
		{name: "healthy", units: []map[string]UnitState{up(0)}},
		{name: "the UI comes up late", units: []map[string]UnitState{down, down, down, up(1)}},
		{name: "a restart while watching starts the watch again", units: []map[string]UnitState{up(0), up(0), up(1)}},
		{name: "crash loop fails at once", units: []map[string]UnitState{up(0), down, up(1), down, up(2), down, up(3)},
			cfg: func(c Config) Config { c.Timeout = time.Hour; return c }, wantErr: "crash loop"},
		{name: "UI never draws", units: []map[string]UnitState{down}, wantErr: "shequ-kiosk.service is not active"},
		{name: "start limit hit is a crash loop", units: []map[string]UnitState{down, {"shequ-agent.service": {Active: true}, "shequ-kiosk.service": {Failed: true, Restarts: 2}}},
			cfg: func(c Config) Config { c.Timeout = time.Hour; return c }, wantErr: "crash loop"},
		{name: "unit unknown", units: []map[string]UnitState{{"shequ-agent.service": {Active: true}}}, wantErr: "reading shequ-kiosk.service"},
		{name: "agent silent", units: []map[string]UnitState{up(0)},
			status: func(int) (protocol.AgentStatus, error) {
				return protocol.AgentStatus{}, errors.New("connection refused")
			},
			wantErr: "the agent does not answer"},
		{name: "hub unreachable", units: []map[string]UnitState{up(0)},
			status:  func(int) (protocol.AgentStatus, error) { return protocol.AgentStatus{Enrolled: true}, nil },
			wantErr: "the hub is not reachable"},
		{name: "hub unreachable, offline allowed", units: []map[string]UnitState{up(0)},
			cfg:    func(c Config) Config { c.Offline = true; return c },
			status: func(int) (protocol.AgentStatus, error) { return protocol.AgentStatus{Enrolled: true}, nil }},
		{name: "not enrolled needs no hub", units: []map[string]UnitState{up(0)},
			status: func(int) (protocol.AgentStatus, error) { return protocol.AgentStatus{}, nil }},
		{name: "hub flaps: a stable stretch still passes", units: []map[string]UnitState{up(0)},
			status: func(look int) (protocol.AgentStatus, error) {
				return protocol.AgentStatus{Enrolled: true, Connected: look%2 == 0 || look > 10}, nil
			}},
	} {
		t.Run(c.name, func(t *testing.T) {
			conf := cfg()
			if c.cfg != nil {
				conf = c.cfg(conf)
			}
			f := &fake{units: c.units, status: c.status}
			err := Wait(context.Background(), conf, f, f, quiet())
			switch {
			case c.wantErr == "" && err != nil:
				t.Fatalf("Wait = %v, want nil", err)
			case c.wantErr != "" && (err == nil || !errors.Is(err, ErrUnhealthy) || !strings.Contains(err.Error(), c.wantErr)):
				t.Fatalf("Wait = %v, want ErrUnhealthy with %q", err, c.wantErr)
			case errors.Is(err, ErrCrashLoop) != (c.wantErr == "crash loop"):
				t.Fatalf("Wait = %v: ErrCrashLoop %v, want %v", err, errors.Is(err, ErrCrashLoop), c.wantErr == "crash loop")
			}
		})
	}
}

// TestWaitRestartResetsStable: a restart inside the stable window means the
// gate must see a whole new stable window afterwards, not pass on the old
// one.
func TestWaitRestartResetsStable(t *testing.T) {
	steps := []map[string]UnitState{}
	for i := 0; i < 5; i++ {
		steps = append(steps, up(0))
	}
	steps = append(steps, up(1))
	f := &fake{units: steps}
	c := cfg()
	c.Stable = time.Hour // never stable: must time out, not pass
	c.Timeout = 30 * time.Millisecond
	if err := Wait(context.Background(), c, f, f, quiet()); !errors.Is(err, ErrUnhealthy) {
		t.Fatalf("Wait = %v, want ErrUnhealthy", err)
	}
}

func TestWaitCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	f := &fake{units: []map[string]UnitState{{"shequ-agent.service": {}, "shequ-kiosk.service": {}}}}
	c := cfg()
	c.Timeout = time.Hour
	err := Wait(ctx, c, f, f, quiet())
	if err == nil || errors.Is(err, ErrUnhealthy) || !errors.Is(err, context.Canceled) {
		t.Fatalf("Wait = %v, want context.Canceled", err)
	}
}

func TestParseShow(t *testing.T) {
	s, err := parseShow([]byte("NRestarts=4\nActiveState=active\n"))
	if err != nil || !s.Active || s.Restarts != 4 {
		t.Fatalf("parseShow = %+v, %v", s, err)
	}
	s, err = parseShow([]byte("ActiveState=activating\nNRestarts=0\n"))
	if err != nil || s.Active || s.Failed || s.Restarts != 0 {
		t.Fatalf("parseShow = %+v, %v", s, err)
	}
	s, err = parseShow([]byte("ActiveState=failed\nNRestarts=2\n"))
	if err != nil || s.Active || !s.Failed || s.Restarts != 2 {
		t.Fatalf("parseShow = %+v, %v", s, err)
	}
	for _, bad := range []string{"", "ActiveState=active\n", "ActiveState=active\nNRestarts=x\n"} {
		if _, err := parseShow([]byte(bad)); err == nil {
			t.Errorf("parseShow(%q) = nil error", bad)
		}
	}
}

func FuzzParseShow(f *testing.F) {
	f.Add([]byte("ActiveState=active\nNRestarts=2\n"))
	f.Add([]byte("NRestarts=-1\nActiveState=failed"))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := parseShow(b)
		if err == nil && s.Restarts < 0 && !strings.Contains(string(b), "NRestarts=-") {
			t.Fatalf("negative restarts %d from %q", s.Restarts, b)
		}
	})
}
