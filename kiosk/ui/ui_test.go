package ui

import (
	"context"
	"errors"
	"flag"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/canvas"
	"fyne.io/fyne/v2/test"
	"fyne.io/fyne/v2/widget"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

var screenshots = flag.Bool("screenshots", false, "write docs/screenshots/kiosk-*.png from the golden screens")

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func demoContent() protocol.LocalNotices {
	tg := []protocol.Target{{Level: protocol.LevelCommunity, ID: "jingan-caojiadu-01"}}
	return protocol.LocalNotices{
		Kiosk: "k-caojiadu-01", Version: 7,
		Station: protocol.Station{
			Name: "曹家渡社区城管工作室", Community: "jingan-caojiadu-01", CommunityName: "曹家渡街道",
			Address: "康定路1号", Hours: "周一至周五 9:00–17:00", Contact: "021-62761234", DutyOfficer: "王建国",
		},
		Notices: []protocol.Notice{
			{ID: "n-green", Title: "爱护小区绿化，共建美丽家园", Body: "近期部分小区出现毁绿种菜、占用绿地堆物等现象。城管执法队员将开展专项巡查，请居民自觉维护公共绿地，发现问题可在本机反映。",
				Category: protocol.NoticeEnforcement, Priority: protocol.PriorityImportant, ValidFrom: t0.Add(-48 * time.Hour), Targets: tg},
			{ID: "n-case", Title: "以案释法：擅自拆改承重墙被责令恢复原状", Body: "某小区业主装修时拆除承重墙，经查证属实，城管部门依法责令其限期恢复原状并处以罚款。",
				Category: protocol.NoticeLawCase, Priority: protocol.PriorityNormal, ValidFrom: t0.Add(-24 * time.Hour), Targets: tg},
		},
	}
}

// fakeSubmitter is a hand-written Submitter.
type fakeSubmitter struct {
	mu   sync.Mutex
	reqs []protocol.FeedbackRequest
	err  error
}

func (f *fakeSubmitter) SubmitFeedback(_ context.Context, req protocol.FeedbackRequest) (protocol.FeedbackReceipt, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return protocol.FeedbackReceipt{}, f.err
	}
	return protocol.FeedbackReceipt{ID: "0195f0e2-0000-7000-8000-000000000001", Ticket: "250301-K-CAOJIADU-01-0042", SubmittedAt: t0}, nil
}

type harness struct {
	t     *testing.T
	win   fyne.Window
	model *screen.Model
	ui    *UI
	sub   *fakeSubmitter
	enr   *fakeEnroller
	now   time.Time
}

// newHarness shows a kiosk of 1080×1920 drawn at scale 0.5 (540×960 pixels).
func newHarness(t *testing.T, c *protocol.LocalNotices) *harness {
	t.Helper()
	return newHarnessConfig(t, c, screen.Config{})
}

// newHarnessConfig is newHarness with a model configured by cfg.
func newHarnessConfig(t *testing.T, c *protocol.LocalNotices, cfg screen.Config) *harness {
	t.Helper()
	t.Setenv("LANG", "zh_CN.UTF-8")
	a := test.NewTempApp(t)
	a.Settings().SetTheme(Theme{})
	m, err := screen.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if c != nil {
		m.SetContent(*c)
	}
	h := &harness{t: t, model: m, sub: &fakeSubmitter{}, enr: &fakeEnroller{}, now: t0}
	h.win = test.NewWindow(nil)
	t.Cleanup(h.win.Close)
	h.win.SetPadded(false)
	h.win.Canvas().(test.WindowlessCanvas).SetScale(0.5)
	h.win.Resize(fyne.NewSize(1080, 1920))
	t.Cleanup(func() {
		if h.ui != nil {
			h.ui.Close()
		}
	})
	h.ui = New(h.win, m, h.sub, Options{
		Now:      func() time.Time { return h.now },
		Async:    func(f func()) { f() },
		Enroller: h.enr,
	})
	h.ui.Tick()
	return h
}

// tap finds the tappable whose label is text and taps it.
func (h *harness) tap(label string) {
	h.t.Helper()
	obj := h.find(label)
	if obj == nil {
		h.t.Fatalf("no button %q on screen %v; texts: %v", label, h.model.Screen(h.now), h.texts())
	}
	test.Tap(obj)
}

func (h *harness) find(label string) fyne.Tappable {
	for _, o := range test.LaidOutObjects(h.win.Canvas().Content()) {
		switch w := o.(type) {
		case *widget.Button:
			if w.Text == label && o.Visible() {
				return w
			}
		case *tapArea:
			if w.label == label {
				return w
			}
		}
	}
	return nil
}

// texts lists every text drawn on screen.
func (h *harness) texts() []string {
	var out []string
	for _, o := range test.LaidOutObjects(h.win.Canvas().Content()) {
		switch w := o.(type) {
		case *canvas.Text:
			out = append(out, w.Text)
		case *widget.Button:
			out = append(out, w.Text)
		}
	}
	return out
}

func (h *harness) shows(s string) bool {
	for _, x := range h.texts() {
		if strings.Contains(x, s) {
			return true
		}
	}
	return false
}

func (h *harness) want(s screen.Screen) {
	h.t.Helper()
	if got := h.model.Screen(h.now); got != s {
		h.t.Fatalf("screen %v, want %v", got, s)
	}
}

func TestFeedbackNavigation(t *testing.T) {
	c := demoContent()
	h := newHarness(t, &c)
	h.want(screen.Home)
	h.tap("我要反映")
	h.want(screen.Kind)
	h.tap("投诉")
	h.want(screen.Category)
	h.tap("占绿毁绿")
	h.want(screen.Building)
	h.tap("1")
	h.tap("2")
	if !h.shows("12") {
		t.Fatalf("keypad does not show 12: %v", h.texts())
	}
	h.tap("下一步")
	h.want(screen.Unit)
	h.tap("跳过")
	h.want(screen.Room)
	h.tap("返回")
	h.want(screen.Unit)
	h.tap("跳过")
	h.tap("3")
	h.tap("下一步")
	h.want(screen.Phone)
	h.tap("1")
	h.tap("下一步")
	h.want(screen.Phone)
	if !h.shows("") || h.model.View(h.now).Err != i18n.ErrPhone {
		t.Fatal("short phone accepted")
	}
	h.tap("清空")
	h.tap("跳过")
	h.want(screen.Description)
	h.tap("毁绿种菜")
	h.tap("下一步")
	h.want(screen.Confirm)
	if !h.shows("确认提交") {
		t.Fatalf("confirm texts: %v", h.texts())
	}
	h.sub.err = errors.New("agent down")
	h.tap("确认提交")
	h.want(screen.Confirm)
	h.sub.err = nil
	h.tap("确认提交")
	h.want(screen.Receipt)
	if !h.shows("250301-K-CAOJIADU-01-0042") {
		t.Fatalf("receipt lacks the ticket: %v", h.texts())
	}
	want := protocol.FeedbackRequest{Kind: protocol.KindComplaint, Category: protocol.CatGreenSpace,
		Where: protocol.Where{Building: "12", Room: "3"}, Description: "毁绿种菜"}
	if len(h.sub.reqs) != 2 || h.sub.reqs[1] != want {
		t.Fatalf("requests %+v, want twice %+v", h.sub.reqs, want)
	}
	h.tap("完成")
	h.want(screen.Home)
}

func TestCancelAndBack(t *testing.T) {
	tests := []struct {
		name string
		taps []string
		want screen.Screen
	}{
		{"cancel from kind", []string{"我要反映", "取消"}, screen.Home},
		{"back from kind", []string{"我要反映", "返回"}, screen.Home},
		{"back from category", []string{"我要反映", "求助", "返回"}, screen.Kind},
		{"cancel from keypad", []string{"我要反映", "求助", "其他", "取消"}, screen.Home},
		{"open notice and back", []string{"爱护小区绿化，共建美丽家园", "返回"}, screen.Home},
		{"open notice", []string{"爱护小区绿化，共建美丽家园"}, screen.NoticeDetail},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := demoContent()
			h := newHarness(t, &c)
			for _, l := range tt.taps {
				h.tap(l)
			}
			h.want(tt.want)
		})
	}
}

func TestLanguageToggle(t *testing.T) {
	c := demoContent()
	h := newHarness(t, &c)
	h.tap("English")
	if !h.shows("Give feedback") || h.shows("我要反映") {
		t.Fatalf("english home: %v", h.texts())
	}
	h.tap("Give feedback")
	h.tap("Complaint")
	if !h.shows("Damage to green space") {
		t.Fatalf("english categories: %v", h.texts())
	}
	h.tap("中文")
	if !h.shows("占绿毁绿") {
		t.Fatalf("back to chinese: %v", h.texts())
	}
}

func TestConnectingAndUrgent(t *testing.T) {
	h := newHarness(t, nil)
	if !h.shows("正在连接…") || h.find("我要反映") == nil {
		t.Fatalf("connecting home: %v", h.texts())
	}
	c := demoContent()
	c.Notices = append(c.Notices, protocol.Notice{ID: "n-urgent", Title: "大风橙色预警", Body: "请居民收好阳台晾晒物品。",
		Category: protocol.NoticeStation, Priority: protocol.PriorityUrgent, ValidFrom: t0.Add(-time.Minute), ValidUntil: t0.Add(time.Hour),
		Targets: []protocol.Target{{Level: protocol.LevelCity, ID: "shanghai"}}})
	h.model.SetContent(c) // redraws through the change hook
	if h.shows("正在连接…") || !h.shows("紧急通知") {
		t.Fatalf("urgent takeover: %v", h.texts())
	}
	h.now = t0.Add(time.Hour)
	h.ui.Tick()
	if h.shows("紧急通知") || !h.shows("我要反映") {
		t.Fatalf("after the urgent notice ended: %v", h.texts())
	}
}

func TestIdleReturnsHome(t *testing.T) {
	c := demoContent()
	h := newHarness(t, &c)
	h.tap("我要反映")
	h.tap("建议")
	h.now = t0.Add(screen.DefaultIdleTimeout)
	h.ui.Tick()
	h.want(screen.Home)
	if !h.shows("我要反映") {
		t.Fatalf("not redrawn home: %v", h.texts())
	}
}

func TestRefreshFromGoroutine(t *testing.T) {
	c := demoContent()
	h := newHarness(t, &c)
	done := make(chan struct{})
	go func() {
		defer close(done)
		h.ui.Refresh()
	}()
	<-done
	if !h.shows("我要反映") {
		t.Fatal("refresh lost the screen")
	}
}

// golden captures the window and compares it with testdata/name; with
// -screenshots it also writes docs/screenshots/shot.
func (h *harness) golden(name, shot string) {
	h.t.Helper()
	img := h.win.Canvas().Capture()
	if b := img.Bounds(); b.Dx() != 540 || b.Dy() != 960 {
		h.t.Fatalf("capture is %v, want 540×960", b)
	}
	test.AssertImageMatches(h.t, name, img)
	if *screenshots {
		writePNG(h.t, filepath.Join("..", "..", "docs", "screenshots", shot), img)
	}
}

func writePNG(t *testing.T, path string, img image.Image) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := png.Encode(f, img); err != nil {
		t.Fatal(err)
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestGoldenScreens(t *testing.T) {
	c := demoContent()
	h := newHarness(t, &c)
	h.golden("home.png", "kiosk-home.png")

	h.tap("我要反映")
	h.tap("投诉")
	h.tap("违法搭建")
	h.tap("1")
	h.tap("2")
	h.golden("feedback-building.png", "kiosk-feedback.png")

	h.tap("下一步")
	h.tap("跳过")
	h.tap("跳过")
	h.tap("跳过")
	h.tap("楼顶或阳台搭建")
	h.tap("下一步")
	h.tap("确认提交")
	h.golden("receipt.png", "kiosk-receipt.png")
}
