package screen

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/protocol"
)

var t0 = time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)

func notice(id string, p protocol.Priority, from, until time.Duration) protocol.Notice {
	n := protocol.Notice{
		ID: id, Title: "标题 " + id, Body: "正文", Category: protocol.NoticePublicity, Priority: p,
		ValidFrom: t0.Add(from),
		Targets:   []protocol.Target{{Level: protocol.LevelCommunity, ID: "c1"}},
	}
	if until != 0 {
		n.ValidUntil = t0.Add(until)
	}
	return n
}

func content(ns ...protocol.Notice) protocol.LocalNotices {
	return protocol.LocalNotices{
		Kiosk: "k-01", Version: 3,
		Station: protocol.Station{Name: "测试工作室", Community: "c1", Hours: "9:00-17:00"},
		Notices: ns,
	}
}

func newModel(t *testing.T, cfg Config, ns ...protocol.Notice) *Model {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	m.SetContent(content(ns...))
	return m
}

func ids(ns []protocol.Notice) []string {
	var out []string
	for _, n := range ns {
		out = append(out, n.ID)
	}
	return out
}

// fakeSubmitter is a hand-written Submitter that records requests and
// fails while err is set.
type fakeSubmitter struct {
	mu   sync.Mutex
	reqs []protocol.FeedbackRequest
	err  error
	// block, when set, is waited on inside SubmitFeedback.
	block chan struct{}
	// entered, when set, is closed when SubmitFeedback starts.
	entered chan struct{}
}

func (f *fakeSubmitter) SubmitFeedback(ctx context.Context, req protocol.FeedbackRequest) (protocol.FeedbackReceipt, error) {
	if f.entered != nil {
		close(f.entered)
	}
	if f.block != nil {
		<-f.block
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	f.reqs = append(f.reqs, req)
	if f.err != nil {
		return protocol.FeedbackReceipt{}, f.err
	}
	return protocol.FeedbackReceipt{ID: "r1", Ticket: fmt.Sprintf("SQ-%04d", len(f.reqs)), SubmittedAt: t0}, nil
}

var _ Submitter = (*fakeSubmitter)(nil)

func TestConfig(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr bool
	}{
		{"zero is defaults", Config{}, false},
		{"english", Config{Lang: i18n.En}, false},
		{"bad language", Config{Lang: "fr"}, true},
		{"negative idle", Config{IdleTimeout: -time.Second}, true},
		{"follow url without ticket", Config{FollowURL: "https://x.example/"}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, err := New(tt.cfg)
			if (err != nil) != tt.wantErr {
				t.Fatalf("New(%+v) error = %v, wantErr %v", tt.cfg, err, tt.wantErr)
			}
			if err != nil && !errors.Is(err, ErrConfig) {
				t.Errorf("error %v is not ErrConfig", err)
			}
			if err == nil && (m.Config().IdleTimeout != DefaultIdleTimeout || m.Config().RotateInterval != DefaultRotateInterval) {
				t.Errorf("defaults not applied: %+v", m.Config())
			}
		})
	}
}

func TestVisibleNotices(t *testing.T) {
	tests := []struct {
		name    string
		notices []protocol.Notice
		at      time.Duration
		want    []string
	}{
		{"none", nil, 0, nil},
		{"priority first then newest", []protocol.Notice{
			notice("n-old", protocol.PriorityNormal, -2*time.Hour, 0),
			notice("n-new", protocol.PriorityNormal, -time.Hour, 0),
			notice("imp", protocol.PriorityImportant, -3*time.Hour, 0),
			notice("urg", protocol.PriorityUrgent, -4*time.Hour, 0),
		}, 0, []string{"urg", "imp", "n-new", "n-old"}},
		{"same time ordered by id", []protocol.Notice{
			notice("b", protocol.PriorityNormal, -time.Hour, 0),
			notice("a", protocol.PriorityNormal, -time.Hour, 0),
		}, 0, []string{"a", "b"}},
		{"not yet valid hidden", []protocol.Notice{
			notice("later", protocol.PriorityNormal, time.Hour, 0),
			notice("now", protocol.PriorityNormal, 0, 0),
		}, 0, []string{"now"}},
		{"expired hidden", []protocol.Notice{
			notice("gone", protocol.PriorityUrgent, -2*time.Hour, -time.Hour),
			notice("ends-later", protocol.PriorityNormal, -2*time.Hour, time.Hour),
		}, 0, []string{"ends-later"}},
		{"ends exactly now hidden", []protocol.Notice{
			notice("edge", protocol.PriorityNormal, -time.Hour, 0),
			notice("until-now", protocol.PriorityNormal, -time.Hour, time.Minute),
		}, time.Minute, []string{"edge"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, Config{}, tt.notices...)
			if got := ids(m.VisibleNotices(t0.Add(tt.at))); !slices.Equal(got, tt.want) {
				t.Errorf("VisibleNotices = %v, want %v", got, tt.want)
			}
		})
	}
}

func TestUrgentTakeover(t *testing.T) {
	urgent := notice("urg", protocol.PriorityUrgent, time.Minute, 10*time.Minute)
	normal := notice("norm", protocol.PriorityNormal, -time.Hour, 0)
	tests := []struct {
		name string
		run  func(m *Model) // actions
		at   time.Duration  // when to look
		want Screen
		// wantUrgent is the id Urgent should report, "" for none.
		wantUrgent string
	}{
		{"before start home", func(m *Model) {}, 0, Home, ""},
		{"starts", func(m *Model) {}, time.Minute, Urgent, "urg"},
		{"ends", func(m *Model) {}, 10 * time.Minute, Home, ""},
		{"withdrawn", func(m *Model) { m.SetContent(content(normal)) }, 2 * time.Minute, Home, ""},
		{"newest urgent wins", func(m *Model) {
			m.SetContent(content(normal, urgent, notice("urg2", protocol.PriorityUrgent, 2*time.Minute, 0)))
		}, 3 * time.Minute, Urgent, "urg2"},
		{"does not interrupt a form", func(m *Model) {
			m.StartFeedback(t0)
			m.ChooseKind(protocol.KindHelp, t0)
		}, 2 * time.Minute, Category, "urg"},
		{"appears after cancel", func(m *Model) {
			m.StartFeedback(t0)
			m.Cancel(t0.Add(2 * time.Minute))
		}, 2 * time.Minute, Urgent, "urg"},
		{"does not interrupt a notice being read", func(m *Model) { m.OpenNotice(t0) }, 2 * time.Minute, NoticeDetail, "urg"},
		{"feedback can start from urgent", func(m *Model) { m.StartFeedback(t0.Add(2 * time.Minute)) }, 2 * time.Minute, Kind, "urg"},
		{"urgent can be opened", func(m *Model) { m.OpenNotice(t0.Add(2 * time.Minute)) }, 2 * time.Minute, NoticeDetail, "urg"},
		{"idle after form shows urgent", func(m *Model) {
			m.StartFeedback(t0)
			m.Tick(t0.Add(DefaultIdleTimeout))
		}, 2 * time.Minute, Urgent, "urg"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, Config{}, normal, urgent)
			tt.run(m)
			at := t0.Add(tt.at)
			if got := m.Screen(at); got != tt.want {
				t.Errorf("Screen = %v, want %v", got, tt.want)
			}
			n, ok := m.Urgent(at)
			if ok != (tt.wantUrgent != "") || n.ID != tt.wantUrgent {
				t.Errorf("Urgent = %q, %v; want %q", n.ID, ok, tt.wantUrgent)
			}
			if v := m.View(at); v.Screen == Urgent && (!v.HasNotice || v.Notice.ID != tt.wantUrgent) {
				t.Errorf("urgent view shows %q", v.Notice.ID)
			}
		})
	}
}

func TestRotation(t *testing.T) {
	ns := []protocol.Notice{
		notice("a", protocol.PriorityImportant, -time.Hour, 0),
		notice("b", protocol.PriorityNormal, -time.Hour, 0),
		notice("c", protocol.PriorityNormal, -2*time.Hour, 30*time.Second),
	}
	m := newModel(t, Config{RotateInterval: 10 * time.Second}, ns...)
	type step struct {
		at     time.Duration
		action func(now time.Time)
		want   string
	}
	steps := []step{
		{0, nil, "a"},
		{9 * time.Second, nil, "a"},
		{10 * time.Second, nil, "b"},
		{20 * time.Second, nil, "c"},
		{25 * time.Second, m.NextNotice, "a"},
		{26 * time.Second, m.PrevNotice, "c"},
		{30 * time.Second, nil, "a"}, // c expired
		{40 * time.Second, nil, "b"},
		{50 * time.Second, nil, "a"}, // wraps
	}
	for _, s := range steps {
		now := t0.Add(s.at)
		if s.action != nil {
			s.action(now)
		}
		m.Tick(now)
		v := m.View(now)
		if v.Screen != Home || !v.HasNotice || v.Notice.ID != s.want {
			t.Fatalf("at %v: screen %v notice %q, want home %q", s.at, v.Screen, v.Notice.ID, s.want)
		}
		if v.NoticeCount != len(m.VisibleNotices(now)) || ids(m.VisibleNotices(now))[v.NoticeIndex] != s.want {
			t.Fatalf("at %v: index %d of %d inconsistent", s.at, v.NoticeIndex, v.NoticeCount)
		}
	}
	m.OpenNotice(t0.Add(51 * time.Second))
	if v := m.View(t0.Add(51 * time.Second)); v.Screen != NoticeDetail || v.Notice.ID != "a" {
		t.Fatalf("open: %v %q", v.Screen, v.Notice.ID)
	}
	// Withdrawn while open: back home.
	m.SetContent(content(ns[1]))
	if v := m.View(t0.Add(52 * time.Second)); v.Screen != Home || v.Notice.ID != "b" {
		t.Fatalf("after withdraw: %v %q", v.Screen, v.Notice.ID)
	}
}

// fill walks the flow to the confirm screen.
func fill(m *Model, now time.Time) {
	m.StartFeedback(now)
	m.ChooseKind(protocol.KindComplaint, now)
	m.ChooseCategory(protocol.CatGreenSpace, now)
	for _, d := range "12" {
		m.Digit(d, now)
	}
	m.Next(now)
	m.Skip(now) // unit
	for _, d := range "301" {
		m.Digit(d, now)
	}
	m.Next(now)
	for _, d := range "13800138000" {
		m.Digit(d, now)
	}
	m.Next(now)
	m.TogglePhrase("phrase.green_space.2", now)
	m.TogglePhrase("phrase.green_space.1", now)
	m.TogglePhrase("phrase.other.2", now)
	m.TogglePhrase("phrase.other.2", now)  // deselected again
	m.TogglePhrase("phrase.facade.1", now) // not offered: ignored
	m.SetFreeText("  门口  ", now)
	m.Next(now)
}

func TestFeedbackFlow(t *testing.T) {
	m := newModel(t, Config{})
	sub := &fakeSubmitter{}
	fill(m, t0)
	v := m.View(t0)
	if v.Screen != Confirm {
		t.Fatalf("screen %v, want confirm", v.Screen)
	}
	want := protocol.FeedbackRequest{
		Kind: protocol.KindComplaint, Category: protocol.CatGreenSpace,
		Where:       protocol.Where{Building: "12", Room: "301"},
		Phone:       "13800138000",
		Description: "绿地被占用；毁绿种菜；门口",
	}
	if got := v.Form.Request(); got != want {
		t.Fatalf("request\n got %+v\nwant %+v", got, want)
	}
	if err := m.Submit(context.Background(), sub, t0); err != nil {
		t.Fatalf("Submit: %v", err)
	}
	v = m.View(t0)
	if v.Screen != Receipt || v.Receipt.Ticket != "SQ-0001" || v.FollowQR != "https://cgm.shequ.example/t/SQ-0001" {
		t.Fatalf("receipt view: %v %+v %q", v.Screen, v.Receipt, v.FollowQR)
	}
	if v.Form.Kind != "" || len(sub.reqs) != 1 || sub.reqs[0] != want {
		t.Fatalf("form not wiped or wrong request: %+v %+v", v.Form, sub.reqs)
	}
	m.Back(t0)
	if v := m.View(t0); v.Screen != Home || v.Receipt.Ticket != "" {
		t.Fatalf("done: %v %+v", v.Screen, v.Receipt)
	}
}

func TestSubmitErrorAndRetry(t *testing.T) {
	m := newModel(t, Config{})
	sub := &fakeSubmitter{err: errors.New("agent down")}
	fill(m, t0)
	if err := m.Submit(context.Background(), sub, t0); err == nil {
		t.Fatal("Submit succeeded with a failing submitter")
	}
	v := m.View(t0)
	if v.Screen != Confirm || v.Err != i18n.ErrSubmit || v.ErrDetail == "" || v.Form.Kind != protocol.KindComplaint {
		t.Fatalf("after error: %v err %q form %+v", v.Screen, v.Err, v.Form)
	}
	sub.err = nil
	if err := m.Submit(context.Background(), sub, t0); err != nil {
		t.Fatalf("retry: %v", err)
	}
	if v := m.View(t0); v.Screen != Receipt || v.Err != "" || v.Receipt.Ticket != "SQ-0002" {
		t.Fatalf("after retry: %v %q %+v", v.Screen, v.Err, v.Receipt)
	}
}

func TestSubmitInFlight(t *testing.T) {
	m := newModel(t, Config{})
	sub := &fakeSubmitter{block: make(chan struct{}), entered: make(chan struct{})}
	fill(m, t0)
	done := make(chan error)
	go func() { done <- m.Submit(context.Background(), sub, t0) }()
	<-sub.entered
	if v := m.View(t0); !v.Submitting || v.Screen != Confirm {
		t.Fatalf("not submitting: %+v", v)
	}
	// Ignored while in flight: a second submit, cancel, and the idle timeout.
	if err := m.Submit(context.Background(), sub, t0); err != nil {
		t.Fatalf("second submit: %v", err)
	}
	m.Cancel(t0)
	m.Tick(t0.Add(time.Hour))
	close(sub.block)
	if err := <-done; err != nil {
		t.Fatalf("Submit: %v", err)
	}
	if v := m.View(t0.Add(time.Hour)); v.Screen != Receipt || len(sub.reqs) != 1 {
		t.Fatalf("after in-flight submit: %v, %d requests", v.Screen, len(sub.reqs))
	}
}

func TestSubmitRejectsIncompleteForm(t *testing.T) {
	m := newModel(t, Config{})
	m.mu.Lock()
	m.screen = Confirm // reached without choosing a kind: a bug elsewhere
	m.mu.Unlock()
	sub := &fakeSubmitter{}
	if err := m.Submit(context.Background(), sub, t0); err == nil {
		t.Fatal("incomplete form submitted")
	}
	if v := m.View(t0); v.Err != i18n.ErrInvalidForm || len(sub.reqs) != 0 {
		t.Fatalf("err %q, %d requests", v.Err, len(sub.reqs))
	}
}

func TestIdleWipe(t *testing.T) {
	const idle = 30 * time.Second
	tests := []struct {
		name  string
		setup func(t *testing.T, m *Model, now time.Time)
	}{
		{"kind", func(t *testing.T, m *Model, now time.Time) { m.StartFeedback(now) }},
		{"keypad", func(t *testing.T, m *Model, now time.Time) {
			m.StartFeedback(now)
			m.ChooseKind(protocol.KindHelp, now)
			m.ChooseCategory(protocol.CatOther, now)
			m.Digit('7', now)
		}},
		{"confirm", func(t *testing.T, m *Model, now time.Time) { fill(m, now) }},
		{"receipt", func(t *testing.T, m *Model, now time.Time) {
			fill(m, now)
			if err := m.Submit(context.Background(), &fakeSubmitter{}, now); err != nil {
				t.Fatal(err)
			}
		}},
		{"notice", func(t *testing.T, m *Model, now time.Time) { m.OpenNotice(now) }},
		{"english on home", func(t *testing.T, m *Model, now time.Time) { m.ToggleLang(now) }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, Config{IdleTimeout: idle}, notice("n", protocol.PriorityNormal, -time.Hour, 0))
			m.ToggleLang(t0)
			tt.setup(t, m, t0)
			before := m.View(t0)
			if m.Tick(t0.Add(idle - time.Second)); m.View(t0).Screen != before.Screen {
				t.Fatalf("left %v before the idle timeout", before.Screen)
			}
			m.Tick(t0.Add(idle))
			v := m.View(t0.Add(idle))
			if v.Screen != Home || v.Lang != i18n.Zh || v.Form.Kind != "" || v.Keypad != "" || v.Receipt.Ticket != "" {
				t.Fatalf("after idle: screen %v lang %v form %+v keypad %q receipt %+v", v.Screen, v.Lang, v.Form, v.Keypad, v.Receipt)
			}
		})
	}
}

func TestActivityPostponesIdle(t *testing.T) {
	m := newModel(t, Config{IdleTimeout: 30 * time.Second})
	m.StartFeedback(t0)
	m.Touch(t0.Add(20 * time.Second))
	m.Tick(t0.Add(40 * time.Second))
	if s := m.Screen(t0.Add(40 * time.Second)); s != Kind {
		t.Fatalf("screen %v, want kind: touch should postpone idle", s)
	}
}

func TestKeypad(t *testing.T) {
	tests := []struct {
		name   string
		screen Screen
		keys   string // digits; 'd' delete, 'c' clear, 'x' an invalid key
		want   string
	}{
		{"building limit", Building, "123456", "1234"},
		{"unit limit", Unit, "123", "12"},
		{"room limit", Room, "1234567", "12345"},
		{"phone limit", Phone, "123456789012345678901234", "12345678901234567890"},
		{"delete", Room, "123d", "12"},
		{"delete on empty", Room, "dd1", "1"},
		{"clear", Phone, "555c9", "9"},
		{"non digits ignored", Building, "1x2", "12"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, Config{})
			m.StartFeedback(t0)
			m.ChooseKind(protocol.KindHelp, t0)
			m.ChooseCategory(protocol.CatOther, t0)
			for m.Screen(t0) != tt.screen {
				m.Skip(t0)
			}
			for _, k := range tt.keys {
				switch k {
				case 'd':
					m.Delete(t0)
				case 'c':
					m.Clear(t0)
				case 'x':
					m.Digit('a', t0)
				default:
					m.Digit(k, t0)
				}
			}
			v := m.View(t0)
			if v.Keypad != tt.want || v.KeypadMax != keypadMax(tt.screen) {
				t.Errorf("keypad %q (max %d), want %q", v.Keypad, v.KeypadMax, tt.want)
			}
		})
	}
}

func TestPhoneValidation(t *testing.T) {
	tests := []struct {
		name   string
		digits string
		want   Screen
		err    i18n.Key
	}{
		{"empty is fine", "", Description, ""},
		{"too short", "1234", Phone, i18n.ErrPhone},
		{"shortest", "12345", Description, ""},
		{"mobile", "13912345678", Description, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, Config{})
			m.StartFeedback(t0)
			m.ChooseKind(protocol.KindHelp, t0)
			m.ChooseCategory(protocol.CatOther, t0)
			m.Skip(t0)
			m.Skip(t0)
			m.Skip(t0)
			for _, d := range tt.digits {
				m.Digit(d, t0)
			}
			m.Next(t0)
			v := m.View(t0)
			if v.Screen != tt.want || v.Err != tt.err {
				t.Fatalf("screen %v err %q, want %v %q", v.Screen, v.Err, tt.want, tt.err)
			}
			if tt.err != "" {
				m.Digit('9', t0)
				if v := m.View(t0); v.Err != "" {
					t.Errorf("message not cleared by the next key: %q", v.Err)
				}
			}
		})
	}
}

func TestBackAndCancel(t *testing.T) {
	tests := []struct {
		name string
		from Screen
		want Screen
	}{
		{"kind to home", Kind, Home},
		{"category to kind", Category, Kind},
		{"building to category", Building, Category},
		{"unit to building", Unit, Building},
		{"room to unit", Room, Unit},
		{"phone to room", Phone, Room},
		{"description to phone", Description, Phone},
		{"confirm to description", Confirm, Description},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, Config{})
			m.StartFeedback(t0)
			m.ChooseKind(protocol.KindConsultation, t0)
			m.ChooseCategory(protocol.CatFacade, t0)
			m.Digit('5', t0)
			m.Next(t0) // building 5
			for _, s := range []Screen{Unit, Room, Phone, Description} {
				if m.Screen(t0) == s {
					m.Next(t0)
				}
			}
			// Now on Confirm; walk back to tt.from.
			for m.Screen(t0) != tt.from {
				m.Back(t0)
			}
			m.Back(t0)
			v := m.View(t0)
			if v.Screen != tt.want {
				t.Fatalf("back from %v: %v, want %v", tt.from, v.Screen, tt.want)
			}
			if tt.want == Building && v.Keypad != "5" {
				t.Errorf("building keypad %q, want the value entered before", v.Keypad)
			}
			if tt.want != Home && v.Form.Kind != protocol.KindConsultation {
				t.Errorf("back lost the form: %+v", v.Form)
			}
			m.Cancel(t0)
			if v := m.View(t0); v.Screen != Home || v.Form.Kind != "" {
				t.Errorf("cancel: %v %+v", v.Screen, v.Form)
			}
		})
	}
}

func TestWrongScreenActionsIgnored(t *testing.T) {
	m := newModel(t, Config{})
	m.ChooseKind(protocol.KindHelp, t0)
	m.ChooseCategory(protocol.CatOther, t0)
	m.Digit('1', t0)
	m.Next(t0)
	m.TogglePhrase("phrase.other.1", t0)
	m.SetFreeText("x", t0)
	if v := m.View(t0); v.Screen != Home || v.Form.Kind != "" || v.Keypad != "" || v.Form.FreeText != "" {
		t.Fatalf("actions on home changed state: %+v", v)
	}
	m.StartFeedback(t0)
	m.ChooseKind("bogus", t0)
	if s := m.Screen(t0); s != Kind {
		t.Fatalf("unknown kind accepted: %v", s)
	}
}

func TestLanguageSwitch(t *testing.T) {
	m := newModel(t, Config{Lang: i18n.En})
	if m.Lang() != i18n.En {
		t.Fatalf("default lang %v", m.Lang())
	}
	fill(m, t0)
	m.ToggleLang(t0)
	v := m.View(t0)
	if v.Lang != i18n.Zh || v.Screen != Confirm || v.Form.Phone != "13800138000" {
		t.Fatalf("toggle changed more than the language: %+v", v)
	}
	m.SetLang(i18n.En, t0)
	if m.Lang() != i18n.En {
		t.Fatal("SetLang")
	}
	// Phrases go out in Chinese whatever the display language.
	if d := m.View(t0).Form.Request().Description; d != "绿地被占用；毁绿种菜；门口" {
		t.Errorf("description %q", d)
	}
}

func TestFreeTextLimit(t *testing.T) {
	m := newModel(t, Config{})
	m.StartFeedback(t0)
	m.ChooseKind(protocol.KindHelp, t0)
	m.ChooseCategory(protocol.CatOther, t0)
	for range 4 {
		m.Skip(t0)
	}
	long := make([]rune, protocol.MaxDescription+50)
	for i := range long {
		long[i] = '长'
	}
	m.SetFreeText(string(long), t0)
	m.TogglePhrase("phrase.other.1", t0)
	req := m.View(t0).Form.Request()
	if err := req.Validate(); err != nil {
		t.Fatalf("long description not cut: %v", err)
	}
}

func TestQR(t *testing.T) {
	tests := []struct {
		name string
		tmpl string
		want string
	}{
		{"default", "", "https://cgm.shequ.example/s?c=c1&k=k-01"},
		{"custom", "https://x.example/{kiosk}/{community}", "https://x.example/k-01/c1"},
		{"no placeholders", "https://x.example/", "https://x.example/"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newModel(t, Config{StationURL: tt.tmpl})
			if got := m.StationURL(); got != tt.want {
				t.Errorf("StationURL = %q, want %q", got, tt.want)
			}
			if got := m.View(t0).StationQR; got != tt.want {
				t.Errorf("View.StationQR = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestConnecting(t *testing.T) {
	m, err := New(Config{})
	if err != nil {
		t.Fatal(err)
	}
	if v := m.View(t0); !v.Connecting || v.Screen != Home || v.HasNotice {
		t.Fatalf("before content: %+v", v)
	}
	m.SetContent(content())
	if v := m.View(t0); v.Connecting || v.Station.Name != "测试工作室" {
		t.Fatalf("after content: %+v", v)
	}
}

func TestOnChange(t *testing.T) {
	m := newModel(t, Config{}, notice("a", protocol.PriorityNormal, -time.Hour, 0), notice("b", protocol.PriorityNormal, -time.Hour, 0))
	calls := 0
	m.OnChange(func() {
		calls++
		m.View(t0) // the hook may use the model: no lock held
	})
	m.StartFeedback(t0)
	if calls != 1 {
		t.Fatalf("calls after action = %d", calls)
	}
	m.SetFreeText("x", t0)
	m.Touch(t0)
	if calls != 1 {
		t.Fatalf("typing redrew: %d", calls)
	}
	m.Cancel(t0)
	calls = 0
	if !m.Tick(t0) || calls != 1 {
		t.Fatalf("first tick: calls %d", calls)
	}
	if m.Tick(t0.Add(time.Second)) || calls != 1 {
		t.Fatalf("quiet tick redrew: %d", calls)
	}
	if !m.Tick(t0.Add(DefaultRotateInterval)) || calls != 2 {
		t.Fatalf("rotation did not redraw: %d", calls)
	}
}

func TestConcurrentUse(t *testing.T) {
	m := newModel(t, Config{})
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 200 {
				now := t0.Add(time.Duration(i) * time.Second)
				switch g {
				case 0:
					m.SetContent(content(notice(fmt.Sprint(i%5), protocol.PriorityNormal, -time.Hour, 0)))
				case 1:
					m.Tick(now)
				case 2:
					m.StartFeedback(now)
					m.Cancel(now)
				case 3:
					m.View(now)
					m.VisibleNotices(now)
				}
			}
		}()
	}
	wg.Wait()
}

func TestScreenString(t *testing.T) {
	if Home.String() != "home" || Receipt.String() != "receipt" || Setup.String() != "setup" || Screen(99).String() != "screen(99)" {
		t.Error("Screen.String")
	}
}
