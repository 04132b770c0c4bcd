package screen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/protocol"
)

// Case lookup, rating and staff check-in.
//
// Home → Lookup (the resident types the query code printed on the receipt)
// → CaseResult (state in plain words, the answer, and while the case is
// rateable three rating buttons) → Rated (thanks) → Home. A discreet
// button on Home opens Checkin, the staff check-in QR code, which goes home
// by itself after CheckinTimeout.

const (
	// CheckinTimeout is how long the check-in screen stays up.
	CheckinTimeout = 60 * time.Second
	// CheckinRefresh is how long before the shown code expires a new one
	// is due (CheckinDue).
	CheckinRefresh = 5 * time.Second
)

// CaseClient looks cases up and rates them. agentclient.Client implements
// it. Errors carrying the agent's reply implement AgentError.
type CaseClient interface {
	Case(ctx context.Context, ticketOrCode string) (protocol.LocalCase, error)
	RateCase(ctx context.Context, ticketOrCode string, r protocol.Rating) (protocol.RatingReceipt, error)
}

// CheckinClient fetches the current check-in code. agentclient.Client
// implements it.
type CheckinClient interface {
	CheckinCode(ctx context.Context) (protocol.CheckinCode, error)
}

// caseState is the model's state of the case and check-in screens, wiped
// by goHomeLocked.
type caseState struct {
	c      protocol.LocalCase
	rating protocol.Rating // given on this visit (Rated)

	checkin       protocol.CheckinCode
	hasCheckin    bool
	checkinOpened time.Time
	loading       bool // a check-in code fetch is in flight
}

func (m *Model) caseViewLocked(v *View) {
	v.Case = m.cs.c
	v.CaseStale = !m.hasStatus || !m.status.Connected
	v.Rating = m.cs.rating
	v.Checkin, v.HasCheckin = m.cs.checkin, m.cs.hasCheckin
}

// StartLookup opens the query-code keypad from Home (or a notice).
func (m *Model) StartLookup(now time.Time) {
	m.act(now, func() {
		switch m.current(now) {
		case Home, Urgent, NoticeDetail:
			m.goHomeLocked()
			m.enter(Lookup)
		}
	})
}

// LookUp looks up the typed query code. Found: CaseResult. Not found, or
// the agent unavailable: the resident stays on Lookup with a message. The
// model's lock is not held while c runs.
func (m *Model) LookUp(ctx context.Context, c CaseClient, now time.Time) error {
	m.mu.Lock()
	if m.current(now) != Lookup || m.submitting {
		m.mu.Unlock()
		return nil
	}
	code := m.keypad
	var invalid error
	if !protocol.IsQueryCode(code) {
		invalid = fmt.Errorf("%w: query code %q must have %d-%d digits", protocol.ErrInvalid, code, protocol.MinQueryCode, protocol.MaxQueryCode)
	}
	gen, err := m.beginCall(now, "look up case", invalid, i18n.ErrQueryCode)
	if err != nil {
		return err
	}

	got, err := c.Case(ctx, code)

	var result error
	m.update(func() {
		m.submitting = false
		if gen != m.generation {
			return
		}
		if err != nil {
			m.err, m.errDetail = caseMessage(err, i18n.ErrCaseLookup)
			result = fmt.Errorf("screen: look up case: %w", err)
			return
		}
		m.cs.c = got
		m.screen = CaseResult
	})
	return result
}

// Rate rates the case on screen. Done: Rated. Refused because the case is
// not rateable now: the buttons go and a message says so. The model's lock
// is not held while c runs.
func (m *Model) Rate(ctx context.Context, c CaseClient, r protocol.Rating, now time.Time) error {
	m.mu.Lock()
	if m.current(now) != CaseResult || m.submitting || !m.cs.c.Rateable {
		m.mu.Unlock()
		return nil
	}
	var invalid error
	if !valid(r, protocol.Ratings) {
		invalid = fmt.Errorf("%w: rating %q", protocol.ErrInvalid, r)
	}
	ticket := m.cs.c.Ticket
	gen, err := m.beginCall(now, "rate case", invalid, i18n.ErrRate)
	if err != nil {
		return err
	}

	_, err = c.RateCase(ctx, ticket, r)

	var result error
	m.update(func() {
		m.submitting = false
		if gen != m.generation {
			return
		}
		if err != nil {
			m.err, m.errDetail = caseMessage(err, i18n.ErrRate)
			if m.err == i18n.ErrNotRateable {
				m.cs.c.Rateable = false
			}
			result = fmt.Errorf("screen: rate case: %w", err)
			return
		}
		m.cs.c.Rateable, m.cs.c.Rating = false, r
		m.cs.rating = r
		m.screen = Rated
	})
	return result
}

// RefreshCase fetches the case on screen again (the agent announced a new
// case board). It does not count as activity; on another screen, or if
// the fetch fails, nothing changes.
func (m *Model) RefreshCase(ctx context.Context, c CaseClient) error {
	m.mu.Lock()
	if m.screen != CaseResult || m.submitting {
		m.mu.Unlock()
		return nil
	}
	ticket, gen := m.cs.c.Ticket, m.generation
	m.mu.Unlock()

	got, err := c.Case(ctx, ticket)
	if err != nil {
		return fmt.Errorf("screen: refresh case: %w", err)
	}
	m.update(func() {
		if gen == m.generation && m.screen == CaseResult && !m.submitting && m.cs.c.Ticket == got.Ticket {
			m.cs.c = got
		}
	})
	return nil
}

// caseMessage chooses the message for a failed lookup or rating.
func caseMessage(err error, fallback i18n.Key) (i18n.Key, string) {
	var ae AgentError
	if !errors.As(err, &ae) {
		return fallback, err.Error()
	}
	switch ae.StatusCode() {
	case http.StatusNotFound:
		return i18n.ErrCaseNotFound, ae.Reason()
	case http.StatusConflict:
		return i18n.ErrNotRateable, ae.Reason()
	}
	return fallback, ae.Reason()
}

// StartCheckin opens the staff check-in screen from Home.
func (m *Model) StartCheckin(now time.Time) {
	m.act(now, func() {
		switch m.current(now) {
		case Home, NoticeDetail:
			m.goHomeLocked()
			m.screen = Checkin
			m.cs.checkinOpened = now
		}
	})
}

// CheckinDue reports whether the check-in screen needs a (new) code: none
// yet, or the one shown expires within CheckinRefresh.
func (m *Model) CheckinDue(now time.Time) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.current(now) == Checkin && !m.cs.loading &&
		(!m.cs.hasCheckin || !now.Before(m.cs.checkin.Expires.Add(-CheckinRefresh)))
}

// LoadCheckin fetches the check-in code for the check-in screen. It does
// not count as activity. On failure the screen shows a message (and the
// old code, if any, until it is replaced).
func (m *Model) LoadCheckin(ctx context.Context, c CheckinClient, now time.Time) error {
	m.mu.Lock()
	if m.current(now) != Checkin || m.cs.loading {
		m.mu.Unlock()
		return nil
	}
	m.cs.loading = true
	gen := m.generation
	m.mu.Unlock()

	code, err := c.CheckinCode(ctx)

	var result error
	m.update(func() {
		if gen != m.generation {
			return
		}
		m.cs.loading = false
		if err != nil {
			m.err, m.errDetail = i18n.ErrCheckin, err.Error()
			result = fmt.Errorf("screen: check-in code: %w", err)
			return
		}
		m.err, m.errDetail = "", ""
		m.cs.checkin, m.cs.hasCheckin = code, true
	})
	return result
}
