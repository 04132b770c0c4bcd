package ui

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

var (
	notEnrolled = protocol.AgentStatus{SoftwareVersion: "test", StartedAt: t0}
	enrolled    = protocol.AgentStatus{Enrolled: true, Kiosk: "k-caojiadu-01", SoftwareVersion: "test", StartedAt: t0}
)

// agentErr is a hand-written screen.AgentError.
type agentErr struct {
	code   int
	reason string
}

func (e *agentErr) Error() string   { return fmt.Sprintf("agent replied %d: %s", e.code, e.reason) }
func (e *agentErr) StatusCode() int { return e.code }
func (e *agentErr) Reason() string  { return e.reason }

// fakeEnroller is a hand-written screen.Enroller answering with st and
// err; during, when set, runs inside Enrol.
type fakeEnroller struct {
	mu     sync.Mutex
	codes  []string
	st     protocol.AgentStatus
	err    error
	during func()
}

func (f *fakeEnroller) Enrol(_ context.Context, code string) (protocol.AgentStatus, error) {
	if f.during != nil {
		f.during()
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.codes = append(f.codes, code)
	return f.st, f.err
}

// newSetupHarness shows a kiosk whose agent reports it not enrolled, with
// an urgent notice that Setup must cover.
func newSetupHarness(t *testing.T) *harness {
	t.Helper()
	c := demoContent()
	c.Notices = append(c.Notices, protocol.Notice{ID: "n-urgent", Title: "大风橙色预警", Body: "请居民收好阳台晾晒物品。",
		Category: protocol.NoticeStation, Priority: protocol.PriorityUrgent, ValidFrom: t0.Add(-time.Minute), ValidUntil: t0.Add(time.Hour),
		Targets: []protocol.Target{{Level: protocol.LevelCity, ID: "shanghai"}}})
	h := newHarness(t, &c)
	h.want(screen.Urgent)
	h.model.SetStatus(notEnrolled) // redraws through the change hook
	h.want(screen.Setup)
	return h
}

// drawnCode returns the digits drawn in the claim-code cells, in order, and
// the number of cells.
func (h *harness) drawnCode() (string, int) {
	var digits strings.Builder
	cells := 0
	for _, o := range test.LaidOutObjects(h.win.Canvas().Content()) {
		if t, ok := o.(*canvas.Text); ok && t.TextSize == sizeClaimDigit && len(t.Text) <= 1 {
			cells++
			digits.WriteString(t.Text)
		}
	}
	return digits.String(), cells
}

// wantCode checks the digits drawn in the claim-code cells.
func (h *harness) wantCode(digits string) {
	h.t.Helper()
	got, cells := h.drawnCode()
	if got != digits || cells != protocol.ClaimCodeDigits {
		h.t.Fatalf("cells show %q in %d cells, want %q in %d", got, cells, digits, protocol.ClaimCodeDigits)
	}
}

func (h *harness) typeCode(digits string) {
	h.t.Helper()
	for _, d := range digits {
		h.tap(string(d))
	}
}

func TestSetupScreen(t *testing.T) {
	h := newSetupHarness(t)
	h.wantCode("")
	for _, s := range []string{"本机尚未注册", "12位认领码", "注册", "清空", "删除"} {
		if !h.shows(s) {
			t.Fatalf("setup screen lacks %q: %v", s, h.texts())
		}
	}
	if h.find("我要反映") != nil || h.shows("紧急通知") {
		t.Fatalf("setup screen offers feedback or the urgent notice: %v", h.texts())
	}

	h.typeCode("12345")
	h.wantCode("12345")
	if v := h.model.View(h.now); v.ClaimCode != "1234 5___ ____" {
		t.Fatalf("code not grouped as typed: %q", v.ClaimCode)
	}
	h.tap("注册") // disabled below 12 digits
	if len(h.enr.codes) != 0 {
		t.Fatalf("enrolled with %q", h.enr.codes)
	}
	h.tap("删除")
	h.typeCode("99678901299")
	h.wantCode("123499678901")

	// The hub refuses: the agent's reason is shown and the code kept.
	h.enr.err = &agentErr{http.StatusForbidden, "claim code already used"}
	var during []string
	h.enr.during = func() { during = h.texts() }
	h.tap("注册")
	if !strings.Contains(strings.Join(during, "|"), "正在注册…") {
		t.Errorf("no 正在注册… while enrolling: %v", during)
	}
	h.want(screen.Setup)
	refused := i18n.T(i18n.Zh, i18n.ErrEnrolRefused)
	if !h.shows(refused[:len("服务器拒绝")]) || !h.shows("claim code already used") {
		t.Fatalf("refusal not shown: %v", h.texts())
	}
	h.wantCode("123499678901")

	// Corrected and accepted: home, with the urgent takeover back.
	h.enr.err, h.enr.during = nil, nil
	h.enr.st = enrolled
	h.tap("删除")
	h.tap("3")
	h.tap("注册")
	h.want(screen.Urgent)
	if !h.shows("紧急通知") || h.find("我要反映") == nil {
		t.Fatalf("not back to the usual screens: %v", h.texts())
	}
	if want := []string{"123499678901", "123499678903"}; strings.Join(h.enr.codes, ",") != strings.Join(want, ",") {
		t.Errorf("codes sent %q, want %q", h.enr.codes, want)
	}
}

func TestSetupErrors(t *testing.T) {
	tests := []struct {
		name   string
		err    error
		msg    i18n.Key
		detail string
	}{
		{"already enrolled", &agentErr{http.StatusConflict, "already enrolled as k-01"}, i18n.ErrEnrolled, "already enrolled as k-01"},
		{"hub unreachable", &agentErr{http.StatusServiceUnavailable, "hub unreachable"}, i18n.ErrEnrolHub, "hub unreachable"},
		{"agent not answering", errors.New("connection refused"), i18n.ErrEnrolAgent, "connection refused"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := newSetupHarness(t)
			h.enr.err = tt.err
			h.typeCode("123456789012")
			h.tap("注册")
			h.want(screen.Setup)
			if v := h.model.View(h.now); v.Err != tt.msg {
				t.Fatalf("message %q, want %q", v.Err, tt.msg)
			}
			if !h.shows(tt.detail) {
				t.Fatalf("reason %q not shown: %v", tt.detail, h.texts())
			}
		})
	}
}

func TestSetupEnglishAndIdle(t *testing.T) {
	h := newSetupHarness(t)
	h.tap("English")
	if !h.shows("This kiosk is not enrolled") || h.find("Enrol") == nil {
		t.Fatalf("english setup: %v", h.texts())
	}
	h.typeCode("4321")
	h.now = t0.Add(screen.DefaultIdleTimeout)
	h.ui.Tick()
	h.want(screen.Setup)
	if !h.shows("本机尚未注册") {
		t.Fatalf("idle did not restore the language: %v", h.texts())
	}
	h.wantCode("")
}

func TestSetupWithoutEnroller(t *testing.T) {
	h := newSetupHarness(t)
	h.ui.enr = noEnroller{}
	h.typeCode("123456789012")
	h.tap("注册")
	if v := h.model.View(h.now); v.Screen != screen.Setup || v.Err != i18n.ErrEnrolAgent || !strings.Contains(v.ErrDetail, ErrNoEnroller.Error()) {
		t.Fatalf("view %v err %q detail %q", v.Screen, v.Err, v.ErrDetail)
	}
}

func TestSetupGolden(t *testing.T) {
	h := newSetupHarness(t)
	h.typeCode("12345678")
	h.golden("setup.png", "kiosk-setup.png")
}
