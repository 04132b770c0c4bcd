package screen

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/protocol"
)

// Enroller enrols the device with its hub using the claim code a technician
// typed (digits only, protocol.ClaimCodeDigits of them) and returns the
// agent's status afterwards. agentclient.Client implements it.
type Enroller interface {
	Enrol(ctx context.Context, code string) (protocol.AgentStatus, error)
}

// AgentError is implemented by errors that carry the agent's reply to a
// request: its HTTP status and the reason it gave (agentclient.StatusError).
// Enrol uses it to tell a refused code from an unreachable hub.
type AgentError interface {
	error
	StatusCode() int
	Reason() string
}

// ClaimPlaceholder stands for a claim-code digit not typed yet.
const ClaimPlaceholder = "_"

// claimGroup is the number of digits shown together.
const claimGroup = 4

// FormatClaimCode groups the typed digits of a claim code 4-4-4 for display,
// with ClaimPlaceholder for the digits still to type:
// "12345" → "1234 5___ ____".
func FormatClaimCode(digits string) string {
	n := max(len(digits), protocol.ClaimCodeDigits)
	var b strings.Builder
	for i := range n {
		if i > 0 && i%claimGroup == 0 {
			b.WriteByte(' ')
		}
		if i < len(digits) {
			b.WriteByte(digits[i])
		} else {
			b.WriteString(ClaimPlaceholder)
		}
	}
	return b.String()
}

// SetStatus records the agent's status. While it reports the device as not
// enrolled, the Setup screen replaces every other screen (the urgent
// takeover included). Entering or leaving Setup starts afresh: a resident's
// half-filled form is wiped on the way in, the typed claim code on the way
// out.
func (m *Model) SetStatus(st protocol.AgentStatus) {
	m.update(func() { m.setStatusLocked(st) })
}

func (m *Model) setStatusLocked(st protocol.AgentStatus) {
	was := m.setupLocked()
	m.status, m.hasStatus = st, true
	if m.setupLocked() != was {
		m.goHomeLocked()
	}
}

// setupLocked reports whether the agent has said the device is not enrolled.
// Before the first status the kiosk shows its usual screens.
func (m *Model) setupLocked() bool {
	return m.hasStatus && !m.status.Enrolled
}

// Status returns the agent's last status and whether there has been one.
func (m *Model) Status() (protocol.AgentStatus, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.status, m.hasStatus
}

// Enrol sends the claim code typed on the Setup screen to e. On success the
// returned status replaces the model's, so the kiosk leaves Setup for Home;
// on failure it stays on Setup with a message, the agent's reason in
// View.ErrDetail and the code kept for correction. The model's lock is not
// held while e runs; a second Enrol while one is in flight does nothing,
// and so does Enrol on another screen.
func (m *Model) Enrol(ctx context.Context, e Enroller, now time.Time) error {
	m.mu.Lock()
	if m.current(now) != Setup || m.submitting {
		m.mu.Unlock()
		return nil
	}
	code := m.keypad
	gen, err := m.beginCall(now, "enrol", protocol.ValidClaimCode(code), i18n.ErrEnrolCode)
	if err != nil {
		return err
	}

	st, err := e.Enrol(ctx, code)

	var result error
	m.update(func() {
		m.submitting = false
		if err == nil {
			m.setStatusLocked(st)
			if !st.Enrolled {
				m.err, m.errDetail = i18n.ErrEnrol, "the agent replied that the device is still not enrolled"
				result = errors.New("screen: enrol: the agent replied that the device is still not enrolled")
			}
			return
		}
		result = fmt.Errorf("screen: enrol: %w", err)
		if gen != m.generation {
			return // the code was wiped or Setup left meanwhile
		}
		m.err, m.errDetail = enrolMessage(err)
	})
	return result
}

// enrolMessage chooses the message for a failed enrolment and its detail:
// the agent's reason when it replied, else the error itself.
func enrolMessage(err error) (i18n.Key, string) {
	var ae AgentError
	if !errors.As(err, &ae) {
		return i18n.ErrEnrolAgent, err.Error()
	}
	key := i18n.ErrEnrol
	switch ae.StatusCode() {
	case http.StatusBadRequest:
		key = i18n.ErrEnrolCode
	case http.StatusForbidden:
		key = i18n.ErrEnrolRefused
	case http.StatusConflict:
		key = i18n.ErrEnrolled
	case http.StatusBadGateway, http.StatusServiceUnavailable, http.StatusGatewayTimeout:
		key = i18n.ErrEnrolHub
	}
	return key, ae.Reason()
}
