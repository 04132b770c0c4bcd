package ui

import (
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

// fakeCases is a hand-written screen.CaseClient and screen.CheckinClient
// behaving as the agent does: one case, rateable until rated once.
type fakeCases struct {
	c       protocol.LocalCase
	ratings []protocol.Rating
}

// statusErr is a hand-written screen.AgentError.
type statusErr struct{ code int }

func (e statusErr) Error() string   { return http.StatusText(e.code) }
func (e statusErr) StatusCode() int { return e.code }
func (e statusErr) Reason() string  { return http.StatusText(e.code) }

func (f *fakeCases) Case(_ context.Context, key string) (protocol.LocalCase, error) {
	if code, _ := protocol.QueryCode(f.c.Ticket); key != code {
		return protocol.LocalCase{}, statusErr{http.StatusNotFound}
	}
	return f.c, nil
}

func (f *fakeCases) RateCase(_ context.Context, _ string, r protocol.Rating) (protocol.RatingReceipt, error) {
	if !f.c.Rateable {
		return protocol.RatingReceipt{}, statusErr{http.StatusConflict}
	}
	f.ratings = append(f.ratings, r)
	f.c.Rateable, f.c.Rating, f.c.State = false, r, protocol.CaseRated
	return protocol.RatingReceipt{ID: protocol.NewID(), Ticket: f.c.Ticket, Rating: r, At: t0}, nil
}

func (f *fakeCases) CheckinCode(context.Context) (protocol.CheckinCode, error) {
	slot := protocol.CheckinSlot(t0)
	return protocol.CheckinCode{
		URL:     "https://hub.shequ.example/m/checkin?k=k-caojiadu-01&s=29012340&sig=AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_AbCdEfGh",
		Expires: protocol.CheckinSlotEnd(slot),
	}, nil
}

func newCaseHarness(t *testing.T) (*harness, *fakeCases) {
	t.Helper()
	c := demoContent()
	h := newHarness(t, &c)
	f := &fakeCases{c: protocol.LocalCase{CaseStatus: protocol.CaseStatus{
		Ticket: "250228-K-CAOJIADU-01-0041", State: protocol.CaseAnswered, Category: protocol.CatIllegalConstruction,
		Kind: protocol.KindComplaint, Answer: "经现场核查，楼顶彩钢板房系违法搭建，已责令当事人于3月10日前自行拆除，逾期将依法强制拆除。",
		AnsweredAt: t0.Add(-2 * time.Hour), Rateable: true, Updated: t0.Add(-2 * time.Hour)}, BoardVersion: 4, BoardReceived: t0}}
	h.ui.cases, h.ui.checkin = f, f
	h.model.SetStatus(protocol.AgentStatus{Enrolled: true, Kiosk: "k-caojiadu-01", Connected: true})
	return h, f
}

func TestCaseLookupAndRating(t *testing.T) {
	h, f := newCaseHarness(t)
	h.tap("查询进度 · 输入回执上的查询码")
	h.want(screen.Lookup)
	for _, d := range "2502280099" {
		h.tap(string(d))
	}
	h.tap("查询")
	h.want(screen.Lookup)
	if !h.shows("未找到该查询码，请核对回执") {
		t.Fatalf("unknown code: no message; texts %v", h.texts())
	}
	h.tap("清空")
	for _, d := range "2502280041" {
		h.tap(string(d))
	}
	h.golden("case-lookup.png", "kiosk-case-lookup.png")
	h.tap("查询")
	h.want(screen.CaseResult)
	if !h.shows("已答复") {
		t.Fatalf("state not shown; texts %v", h.texts())
	}
	h.golden("case-result.png", "kiosk-case-result.png")
	h.tap("基本满意")
	h.want(screen.Rated)
	if len(f.ratings) != 1 || f.ratings[0] != protocol.RatingBasicallySatisfied {
		t.Fatalf("ratings sent %v", f.ratings)
	}
	h.golden("case-rated.png", "kiosk-case-rated.png")
	h.tap("完成")
	h.want(screen.Home)
}

func TestCaseOffline(t *testing.T) {
	h, _ := newCaseHarness(t)
	h.model.SetStatus(protocol.AgentStatus{Enrolled: true, Kiosk: "k-caojiadu-01"})
	h.tap("查询进度 · 输入回执上的查询码")
	for _, d := range "2502280041" {
		h.tap(string(d))
	}
	h.tap("查询")
	if !h.shows("本机暂时离线，信息可能不是最新") {
		t.Fatalf("no offline note; texts %v", h.texts())
	}
}

func TestStaffCheckin(t *testing.T) {
	h, _ := newCaseHarness(t)
	h.tap("工作人员签到")
	h.want(screen.Checkin)
	if !h.shows("有效至") {
		t.Fatalf("no code shown; texts %v", h.texts())
	}
	h.golden("checkin.png", "kiosk-checkin.png")
	h.now = h.now.Add(screen.CheckinTimeout)
	h.ui.Tick()
	h.want(screen.Home)
	// The staff button stays usable; Back leaves at once.
	h.tap("工作人员签到")
	h.tap("返回")
	h.want(screen.Home)
}
