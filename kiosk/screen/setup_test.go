package screen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/protocol"
)

var (
	notEnrolled = protocol.AgentStatus{Enrolled: false, SoftwareVersion: "test", StartedAt: t0}
	enrolled    = protocol.AgentStatus{Enrolled: true, Kiosk: "k-01", SoftwareVersion: "test", StartedAt: t0}
)

// agentErr is a hand-written AgentError.
type agentErr struct {
	code   int
	reason string
}

func (e *agentErr) Error() string   { return fmt.Sprintf("agent replied %d: %s", e.code, e.reason) }
func (e *agentErr) StatusCode() int { return e.code }
func (e *agentErr) Reason() string  { return e.reason }

var _ AgentError = (*agentErr)(nil)

// fakeEnroller is a hand-written Enroller that records codes and answers
// with st and err.
type fakeEnroller struct {
	mu    sync.Mutex
	codes []string
	st    protocol.AgentStatus
	err   error
	// block, when set, is waited on inside Enrol.
	block chan struct{}
	// entered, when set, is closed when Enrol starts.
	entered chan struct{}
}

var _ Enroller = (*fakeEnroller)(nil)

func (f *fakeEnroller) Enrol(_ context.Context, code string) (protocol.AgentStatus, error) {
	if f.entered != nil {
		close(f.entered)
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.codes = append(f.codes, code)
	return f.st, f.err
}

// setupModel returns a model with content whose agent reports the device
// not enrolled.
func setupModel(t *testing.T, ns ...protocol.Notice) *Model {
	t.Helper()
	m := newModel(t, Config{}, ns...)
	m.SetStatus(notEnrolled)
	return m
}

func typeDigits(m *Model, s string, now time.Time) {
	for _, d := range s {
		m.Digit(d, now)
	}
}

func TestFormatClaimCode(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"empty", "", "____ ____ ____"},
		{"one", "7", "7___ ____ ____"},
		{"one group", "1234", "1234 ____ ____"},
		{"into the second group", "12345", "1234 5___ ____"},
		{"eleven", "12345678901", "1234 5678 901_"},
		{"whole", "123456789012", "1234 5678 9012"},
		{"longer than a code", "1234567890123", "1234 5678 9012 3"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := FormatClaimCode(tt.in); got != tt.want {
				t.Errorf("FormatClaimCode(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestSetupTyping(t *testing.T) {
	tests := []struct {
		name     string
		do       func(m *Model)
		keypad   string
		shown    string
		canEnrol bool
	}{
		{"nothing typed", func(*Model) {}, "", "____ ____ ____", false},
		{"grouped as typed", func(m *Model) { typeDigits(m, "123456", t0) }, "123456", "1234 56__ ____", false},
		{"eleven digits cannot enrol", func(m *Model) { typeDigits(m, "12345678901", t0) }, "12345678901", "1234 5678 901_", false},
		{"twelve digits can enrol", func(m *Model) { typeDigits(m, "123456789012", t0) }, "123456789012", "1234 5678 9012", true},
		{"digits past twelve ignored", func(m *Model) { typeDigits(m, "1234567890129", t0) }, "123456789012", "1234 5678 9012", true},
		{"non-digits ignored", func(m *Model) { typeDigits(m, "12a-3 4", t0) }, "1234", "1234 ____ ____", false},
		{"delete", func(m *Model) {
			typeDigits(m, "123456789012", t0)
			m.Delete(t0)
		}, "12345678901", "1234 5678 901_", false},
		{"delete on empty", func(m *Model) { m.Delete(t0) }, "", "____ ____ ____", false},
		{"clear", func(m *Model) {
			typeDigits(m, "98765", t0)
			m.Clear(t0)
		}, "", "____ ____ ____", false},
		{"feedback cannot start", func(m *Model) {
			m.StartFeedback(t0)
			typeDigits(m, "55", t0)
		}, "55", "55__ ____ ____", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := setupModel(t)
			tt.do(m)
			v := m.View(t0)
			if v.Screen != Setup {
				t.Fatalf("screen %v, want setup", v.Screen)
			}
			if v.Keypad != tt.keypad || v.ClaimCode != tt.shown || v.CanEnrol != tt.canEnrol || v.KeypadMax != protocol.ClaimCodeDigits {
				t.Errorf("keypad %q shown %q canEnrol %v max %d; want %q %q %v %d",
					v.Keypad, v.ClaimCode, v.CanEnrol, v.KeypadMax, tt.keypad, tt.shown, tt.canEnrol, protocol.ClaimCodeDigits)
			}
		})
	}
}

func TestSetupStatusSwitching(t *testing.T) {
	urgent := notice("u", protocol.PriorityUrgent, -time.Minute, time.Hour)
	tests := []struct {
		name     string
		notices  []protocol.Notice
		statuses []protocol.AgentStatus
		before   func(m *Model) // actions before the statuses
		want     Screen
	}{
		{"no status yet shows home", nil, nil, nil, Home},
		{"not enrolled shows setup", nil, []protocol.AgentStatus{notEnrolled}, nil, Setup},
		{"enrolled shows home", nil, []protocol.AgentStatus{enrolled}, nil, Home},
		{"setup covers the urgent takeover", []protocol.Notice{urgent}, []protocol.AgentStatus{notEnrolled}, nil, Setup},
		{"urgent after enrolment", []protocol.Notice{urgent}, []protocol.AgentStatus{notEnrolled, enrolled}, nil, Urgent},
		{"setup to home", nil, []protocol.AgentStatus{notEnrolled, enrolled}, nil, Home},
		{"home to setup", nil, []protocol.AgentStatus{enrolled, notEnrolled}, nil, Setup},
		{"setup covers a form in progress", nil, []protocol.AgentStatus{notEnrolled}, func(m *Model) {
			fill(m, t0)
		}, Setup},
		{"a form in progress is gone after setup", nil, []protocol.AgentStatus{enrolled, notEnrolled, enrolled}, func(m *Model) {
			fill(m, t0)
		}, Home},
		{"a repeated status changes nothing", nil, []protocol.AgentStatus{enrolled, enrolled}, func(m *Model) {
			m.StartFeedback(t0)
		}, Kind},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, Config{}, tt.notices...)
			if tt.before != nil {
				tt.before(m)
			}
			for _, st := range tt.statuses {
				m.SetStatus(st)
			}
			v := m.View(t0)
			if v.Screen != tt.want {
				t.Fatalf("screen %v, want %v", v.Screen, tt.want)
			}
			if tt.want == Home && (v.Form.Kind != "" || v.Keypad != "") {
				t.Errorf("form not wiped: %+v keypad %q", v.Form, v.Keypad)
			}
			got, ok := m.Status()
			if ok != (len(tt.statuses) > 0) || (ok && got != tt.statuses[len(tt.statuses)-1]) {
				t.Errorf("Status() = %+v, %v", got, ok)
			}
		})
	}
}

func TestEnrol(t *testing.T) {
	const code = "123456789012"
	tests := []struct {
		name       string
		typed      string
		st         protocol.AgentStatus
		err        error
		want       Screen
		wantErr    i18n.Key
		wantDetail string
		called     bool
	}{
		{"success goes home", code, enrolled, nil, Home, "", "", true},
		{"bad format", code, protocol.AgentStatus{}, &agentErr{http.StatusBadRequest, "claim code must have 12 digits"},
			Setup, i18n.ErrEnrolCode, "claim code must have 12 digits", true},
		{"no hub configured", code, protocol.AgentStatus{}, &agentErr{http.StatusBadRequest, "no hub configured"},
			Setup, i18n.ErrEnrolCode, "no hub configured", true},
		{"refused by the hub", code, protocol.AgentStatus{}, &agentErr{http.StatusForbidden, "claim code already used"},
			Setup, i18n.ErrEnrolRefused, "claim code already used", true},
		{"already enrolled", code, protocol.AgentStatus{}, &agentErr{http.StatusConflict, "already enrolled as k-01"},
			Setup, i18n.ErrEnrolled, "already enrolled as k-01", true},
		{"hub unreachable 502", code, protocol.AgentStatus{}, &agentErr{http.StatusBadGateway, "dial tcp: connection refused"},
			Setup, i18n.ErrEnrolHub, "dial tcp: connection refused", true},
		{"hub unreachable 503", code, protocol.AgentStatus{}, &agentErr{http.StatusServiceUnavailable, "hub unavailable"},
			Setup, i18n.ErrEnrolHub, "hub unavailable", true},
		{"other status", code, protocol.AgentStatus{}, &agentErr{http.StatusInternalServerError, "disk full"},
			Setup, i18n.ErrEnrol, "disk full", true},
		{"wrapped agent error", code, protocol.AgentStatus{}, fmt.Errorf("agentclient: POST /v1/enrol: %w", &agentErr{http.StatusForbidden, "claim code expired"}),
			Setup, i18n.ErrEnrolRefused, "claim code expired", true},
		{"agent not answering", code, protocol.AgentStatus{}, errors.New("dial unix agent.sock: connect: no such file or directory"),
			Setup, i18n.ErrEnrolAgent, "dial unix agent.sock: connect: no such file or directory", true},
		{"ok but still not enrolled", code, notEnrolled, nil, Setup, i18n.ErrEnrol, "the agent replied that the device is still not enrolled", true},
		{"short code not sent", "12345678901", enrolled, nil, Setup, i18n.ErrEnrolCode, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := setupModel(t)
			typeDigits(m, tt.typed, t0)
			e := &fakeEnroller{st: tt.st, err: tt.err}
			err := m.Enrol(context.Background(), e, t0)
			if (err != nil) != (tt.wantErr != "") {
				t.Fatalf("Enrol error = %v, want error %v", err, tt.wantErr != "")
			}
			if tt.called != (len(e.codes) == 1) || (tt.called && e.codes[0] != tt.typed) {
				t.Fatalf("enroller got %q, want called %v with %q", e.codes, tt.called, tt.typed)
			}
			v := m.View(t0)
			if v.Screen != tt.want || v.Err != tt.wantErr || v.Submitting {
				t.Fatalf("screen %v err %q submitting %v; want %v %q", v.Screen, v.Err, v.Submitting, tt.want, tt.wantErr)
			}
			if tt.wantDetail != "" && v.ErrDetail != tt.wantDetail {
				t.Errorf("detail %q, want %q", v.ErrDetail, tt.wantDetail)
			}
			if tt.want == Setup && v.Keypad != tt.typed {
				t.Errorf("code not kept for correction: %q, want %q", v.Keypad, tt.typed)
			}
			if tt.want == Home {
				if v.Keypad != "" || v.Err != "" {
					t.Errorf("home after enrolment keeps keypad %q err %q", v.Keypad, v.Err)
				}
				if st, _ := m.Status(); !st.Enrolled {
					t.Error("status not taken from the reply")
				}
			}
			// Correcting the code clears the message.
			if tt.want == Setup {
				m.Delete(t0)
				if v := m.View(t0); v.Err != "" || v.Keypad != tt.typed[:len(tt.typed)-1] {
					t.Errorf("after delete: err %q keypad %q", v.Err, v.Keypad)
				}
			}
		})
	}
}

func TestEnrolOnlyOnSetup(t *testing.T) {
	m := newModel(t, Config{})
	m.SetStatus(enrolled)
	e := &fakeEnroller{st: enrolled}
	if err := m.Enrol(context.Background(), e, t0); err != nil || len(e.codes) != 0 {
		t.Fatalf("Enrol on home: err %v, codes %q", err, e.codes)
	}
}

func TestEnrolInFlight(t *testing.T) {
	m := setupModel(t)
	typeDigits(m, "123456789012", t0)
	e := &fakeEnroller{st: enrolled, block: make(chan struct{}), entered: make(chan struct{})}
	done := make(chan error, 1)
	go func() { done <- m.Enrol(context.Background(), e, t0) }()
	select {
	case <-e.entered:
	case err := <-done:
		t.Fatalf("Enrol returned %v without calling the enroller", err)
	}

	v := m.View(t0)
	if !v.Submitting || v.CanEnrol {
		t.Fatalf("in flight: submitting %v canEnrol %v", v.Submitting, v.CanEnrol)
	}
	m.Delete(t0)
	m.Digit('9', t0)
	if err := m.Enrol(context.Background(), e, t0); err != nil {
		t.Fatalf("second Enrol: %v", err)
	}
	if m.Tick(t0.Add(2 * DefaultIdleTimeout)); m.View(t0).Keypad != "123456789012" {
		t.Fatal("idle timeout or typing changed the code while enrolling")
	}
	close(e.block)
	if err := <-done; err != nil {
		t.Fatalf("Enrol: %v", err)
	}
	if len(e.codes) != 1 {
		t.Errorf("enroller called %d times", len(e.codes))
	}
	if got := m.Screen(t0); got != Home {
		t.Errorf("screen %v after enrolment, want home", got)
	}
}

func TestSetupIdleClear(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		wiped bool
	}{
		{"before the timeout", DefaultIdleTimeout - time.Second, false},
		{"at the timeout", DefaultIdleTimeout, true},
		{"long after", 10 * DefaultIdleTimeout, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := setupModel(t)
			m.ToggleLang(t0)
			typeDigits(m, "12345", t0)
			// A failed enrolment leaves a message to be wiped too.
			if err := m.Enrol(context.Background(), &fakeEnroller{}, t0); err == nil {
				t.Fatal("short code enrolled")
			}
			m.Tick(t0.Add(tt.after))
			v := m.View(t0.Add(tt.after))
			if v.Screen != Setup {
				t.Fatalf("screen %v, want setup", v.Screen)
			}
			wiped := v.Keypad == "" && v.Err == "" && v.Lang == i18n.Zh
			kept := v.Keypad == "12345" && v.Err == i18n.ErrEnrolCode && v.Lang == i18n.En
			if (tt.wiped && !wiped) || (!tt.wiped && !kept) {
				t.Errorf("keypad %q err %q lang %q, want wiped %v", v.Keypad, v.Err, v.Lang, tt.wiped)
			}
		})
	}
}

func TestSetupOnChange(t *testing.T) {
	m := newModel(t, Config{})
	calls := 0
	m.OnChange(func() { calls++ })
	m.SetStatus(notEnrolled)
	if calls != 1 {
		t.Fatalf("SetStatus called the hook %d times, want 1", calls)
	}
	typeDigits(m, "123456789012", t0)
	calls = 0
	if err := m.Enrol(context.Background(), &fakeEnroller{st: enrolled}, t0); err != nil {
		t.Fatal(err)
	}
	if calls != 2 { // enrolling, then home
		t.Errorf("Enrol called the hook %d times, want 2", calls)
	}
}
