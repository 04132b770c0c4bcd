package resident

import (
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/protocol"
)

// event is one public step of a case's timeline.
type event struct {
	At     time.Time
	Key    string // message key of the step
	Answer string // the answer, on an answer step
}

// publicSteps are the timeline actions residents see, by message key;
// the others (returns, supervision, escalation) are internal.
var publicSteps = map[cases.Action]string{
	cases.ActionCreate:   "event.create",
	cases.ActionDispatch: "event.dispatch",
	cases.ActionReassign: "event.reassign",
	cases.ActionAccept:   "event.accept",
	cases.ActionAnswer:   "event.answer",
	cases.ActionRate:     "event.rate",
	cases.ActionReopen:   "event.reopen",
	cases.ActionClose:    "event.close",
	cases.ActionMerge:    "event.merge",
}

// ticketView is the data of the progress page: the public view of a case,
// with no phone, description or staff names.
type ticketView struct {
	Ticket       string
	New          bool // just filed: show the ticket prominently
	StateKey     string
	Category     string
	Community    string
	ReportedAt   time.Time
	DueAt        time.Time // the handler's deadline, while the case is being handled
	Timeline     []event
	Answer       string
	AnsweredAt   time.Time
	Rating       string // message key of the rating, once rated
	Reopened     bool   // rated not satisfied and being handled again
	MergedTicket string
	Key          string // the follow key, when valid
	Rateable     bool
	KioskCase    bool // filed at a kiosk: rated there
	NoKey        bool // answered, but the page was opened without the key
	Ratings      []option
	RateError    bool
	Rated        bool // just rated
}

// ticketPage serves GET /t/{ticket}[?key=…].
func (p *Pages) ticketPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	p.showTicket(w, r, http.StatusOK, r.PathValue("ticket"), q.Get("key"), q.Get("new") == "1", q.Get("rated") == "1", false)
}

func (p *Pages) showTicket(w http.ResponseWriter, r *http.Request, code int, ticket, key string, isNew, rated, rateErr bool) {
	v, err := p.ticketView(r, ticket, key)
	switch {
	case errors.Is(err, cases.ErrNotFound):
		p.fail(w, r, http.StatusNotFound, "err.ticket", "")
		return
	case err != nil:
		p.internal(w, r, err)
		return
	}
	v.New, v.Rated, v.RateError = isNew, rated, rateErr
	self := "/t/" + v.Ticket
	if v.Key != "" {
		self += "?" + url.Values{"key": {v.Key}}.Encode()
	}
	// The page may carry the follow key: keep it out of shared caches.
	w.Header().Set("Cache-Control", "private, no-store")
	p.render(w, r, code, "ticket", "ticket.title", self, v)
}

// ticketView builds the public view of the case with ticket; ErrNotFound
// when there is none (or the ticket is malformed).
func (p *Pages) ticketView(r *http.Request, ticket, key string) (ticketView, error) {
	ctx := r.Context()
	if protocol.ValidTicket(ticket) != nil {
		return ticketView{}, cases.ErrNotFound
	}
	c, err := p.cfg.Store.CaseByTicket(ctx, ticket)
	if err != nil {
		return ticketView{}, fmt.Errorf("ticket page %s: %w", ticket, err)
	}
	d, err := p.cfg.Cases.Detail(ctx, c.ID, residentScope{community: c.Community})
	if err != nil {
		return ticketView{}, fmt.Errorf("ticket page %s: %w", ticket, err)
	}
	v := ticketView{
		Ticket: c.Ticket, StateKey: "plain." + c.State, Category: "category." + c.Category,
		ReportedAt: c.ReportedAt, KioskCase: c.Source == string(cases.SourceKiosk),
	}
	if n := p.cfg.Tree.Node(c.Community); n != nil {
		v.Community = n.Name
	}
	if (c.State == string(cases.StateDispatched) || c.State == string(cases.StateInProgress)) && c.MergedInto == "" {
		v.DueAt = c.DueAt
	}
	for _, e := range d.Timeline {
		k, ok := publicSteps[cases.Action(e.Action)]
		if !ok {
			continue
		}
		ev := event{At: e.At, Key: k}
		if cases.Action(e.Action) == cases.ActionAnswer {
			ev.Answer = e.Note
			v.Answer, v.AnsweredAt = e.Note, e.At
		}
		v.Timeline = append(v.Timeline, ev)
	}
	if c.Rating != "" {
		v.Rating = "rating." + c.Rating
		v.Reopened = c.Rating == string(cases.NotSatisfied) && c.State != string(cases.StateRated) &&
			c.State != string(cases.StateClosed) && c.State != string(cases.StateAnswered)
	}
	if c.MergedInto != "" {
		t, err := p.cfg.Cases.Case(ctx, c.MergedInto)
		if err != nil {
			return v, fmt.Errorf("ticket page %s: merged into %s: %w", ticket, c.MergedInto, err)
		}
		v.MergedTicket = t.Ticket
	}
	if c.Source == string(cases.SourceQRCode) && p.validKey(c.Ticket, key) {
		v.Key = key
	}
	answered := c.State == string(cases.StateAnswered) && c.MergedInto == ""
	v.Rateable = answered && v.Key != ""
	v.NoKey = answered && v.Key == "" && !v.KioskCase
	for _, rt := range cases.Ratings {
		v.Ratings = append(v.Ratings, option{Value: string(rt), Key: "rating." + string(rt)})
	}
	return v, nil
}

// rate serves POST /t/{ticket}/rate: the rating of an answered case,
// with the follow key.
func (p *Pages) rate(w http.ResponseWriter, r *http.Request) {
	if !p.allowAttempt(w, r) {
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, maxForm)
	if err := r.ParseForm(); err != nil {
		p.fail(w, r, http.StatusBadRequest, "err.badrequest", "")
		return
	}
	ticket, key := r.PathValue("ticket"), r.PostForm.Get("key")
	back := "/t/" + url.PathEscape(ticket)
	if protocol.ValidTicket(ticket) != nil {
		p.fail(w, r, http.StatusNotFound, "err.ticket", "")
		return
	}
	c, err := p.cfg.Store.CaseByTicket(r.Context(), ticket)
	switch {
	case errors.Is(err, cases.ErrNotFound):
		p.fail(w, r, http.StatusNotFound, "err.ticket", "")
		return
	case err != nil:
		p.internal(w, r, err)
		return
	}
	if c.Source != string(cases.SourceQRCode) || !p.validKey(ticket, key) {
		p.fail(w, r, http.StatusForbidden, "err.key", back)
		return
	}
	back += "?" + url.Values{"key": {key}}.Encode()
	rt := cases.Rating(r.PostForm.Get("rating"))
	if !contains(cases.Ratings, rt) {
		p.showTicket(w, r, http.StatusBadRequest, ticket, key, false, false, true)
		return
	}
	if c.MergedInto != "" {
		p.fail(w, r, http.StatusConflict, "err.notrateable", back)
		return
	}
	if ok, wait := p.cfg.Limiter.Allow(clientIP(r)); !ok {
		p.tooMany(w, r, wait, back)
		return
	}
	_, err = p.cfg.Cases.Rate(r.Context(), c.ID, residentScope{community: c.Community, id: "qrcode:" + ticket}, rt, "城管码评价")
	switch {
	case errors.Is(err, cases.ErrForbiddenTransition), errors.Is(err, cases.ErrNotInScope):
		p.fail(w, r, http.StatusConflict, "err.notrateable", back)
		return
	case err != nil:
		p.internal(w, r, err)
		return
	}
	http.Redirect(w, r, back+"&rated=1", http.StatusSeeOther)
}
