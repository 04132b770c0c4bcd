package protocol

import (
	"fmt"
	"strings"
	"time"
)

// Case updates and ratings at the kiosk (protocol v3, issue 5).
//
// Every feedback becomes a case at the hub. The hub publishes, per kiosk, the
// public status of the cases filed there as one retained, signed document
// (CaseBoard), replaced whole on every change, so a resident can look up a
// ticket at the kiosk and read the answer. A resident's rating of an
// answered case travels back as an outbox record (CaseRating), acknowledged
// like feedback.
//
//	shequ/v3/down/{kiosk}/cases   hub → agent  QoS 1, retained   CaseBoard (signed)
//	shequ/v3/up/{kiosk}/rating    agent → hub  QoS 1             CaseRating (an outbox record, acknowledged)
//
// A board carries no phone, no description and no location: anyone who
// knows a ticket (or its query code) can read its entry.

// CaseState is where a case stands, as the public sees it.
type CaseState string

// Case states (the 12345 hotline's loop).
const (
	CaseReceived   CaseState = "received"    // 已受理
	CaseDispatched CaseState = "dispatched"  // 已派单
	CaseInProgress CaseState = "in_progress" // 处理中
	CaseReturned   CaseState = "returned"    // 已退单, waiting to be reassigned
	CaseAnswered   CaseState = "answered"    // 已答复
	CaseRated      CaseState = "rated"       // 已评价
	CaseClosed     CaseState = "closed"      // 已办结
)

// CaseStates lists every case state.
var CaseStates = []CaseState{CaseReceived, CaseDispatched, CaseInProgress, CaseReturned, CaseAnswered, CaseRated, CaseClosed}

// Rating is a resident's verdict on the answer to their case.
type Rating string

// Ratings. NotSatisfied reopens the case for review at the hub.
const (
	RatingSatisfied          Rating = "satisfied"           // 满意
	RatingBasicallySatisfied Rating = "basically_satisfied" // 基本满意
	RatingNotSatisfied       Rating = "not_satisfied"       // 不满意
)

// Ratings lists every rating.
var Ratings = []Rating{RatingSatisfied, RatingBasicallySatisfied, RatingNotSatisfied}

// Limits of case messages.
const (
	MaxBoardCases = 500  // entries in one CaseBoard
	MaxAnswer     = 2000 // characters of a case's answer
	// MaxCaseBoardSize bounds a cases message. 500 entries with 2,000
	// Chinese characters of answer each fit; a board whose answers are full
	// of characters the encoder escapes may not, and the hub then drops its
	// oldest entries until it fits.
	MaxCaseBoardSize = 4 << 20
	MaxRatingSize    = 1 << 10
)

// CaseStatus is the public status of one case.
type CaseStatus struct {
	Ticket     string           `json:"ticket"`
	State      CaseState        `json:"state"`
	Category   FeedbackCategory `json:"category"`
	Kind       FeedbackKind     `json:"kind"`
	Answer     string           `json:"answer"` // the reply to the resident; "" until answered
	AnsweredAt time.Time        `json:"answered_at,omitzero"`
	Rating     Rating           `json:"rating"` // "" until rated
	// Rateable is true only while the resident may rate the answer now.
	Rateable bool      `json:"rateable"`
	Updated  time.Time `json:"updated"`
}

// CaseBoard is the whole document of the cases filed at one kiosk, newest
// first. The agent replaces what it holds with it; a board whose Version is
// not greater than the one held is ignored.
type CaseBoard struct {
	Kiosk   string       `json:"kiosk"`
	Version int64        `json:"version"`
	Cases   []CaseStatus `json:"cases"`
}

// CaseRating is a resident's rating of a case, made at a kiosk. Its record
// id is the id of the envelope that carries it.
type CaseRating struct {
	Kiosk  string    `json:"kiosk"`
	Ticket string    `json:"ticket"`
	Rating Rating    `json:"rating"`
	At     time.Time `json:"at"`
}

// Validate checks one case status.
func (c CaseStatus) Validate() error {
	if err := firstErr(
		ValidTicket(c.Ticket),
		oneOf("case state", c.State, CaseStates),
		oneOf("category", c.Category, FeedbackCategories),
		oneOf("kind", c.Kind, FeedbackKinds),
		text("answer", c.Answer, false, MaxAnswer),
		oneOf("rating", c.Rating, append([]Rating{""}, Ratings...)),
	); err != nil {
		return fmt.Errorf("case %s: %w", c.Ticket, err)
	}
	if c.Rateable && c.Rating != "" {
		return fmt.Errorf("%w: case %s is rated %s and rateable", ErrInvalid, c.Ticket, c.Rating)
	}
	if c.Updated.IsZero() {
		return fmt.Errorf("%w: case %s: updated is required", ErrInvalid, c.Ticket)
	}
	return nil
}

// Validate checks a case board.
func (b CaseBoard) Validate() error {
	if err := id("kiosk", b.Kiosk); err != nil {
		return err
	}
	if b.Version <= 0 {
		return fmt.Errorf("%w: version must be positive, got %d", ErrInvalid, b.Version)
	}
	if len(b.Cases) > MaxBoardCases {
		return fmt.Errorf("%w: %d cases, limit %d", ErrInvalid, len(b.Cases), MaxBoardCases)
	}
	seen := make(map[string]bool, len(b.Cases))
	for i, c := range b.Cases {
		if err := c.Validate(); err != nil {
			return fmt.Errorf("cases[%d]: %w", i, err)
		}
		if seen[c.Ticket] {
			return fmt.Errorf("%w: ticket %s appears twice", ErrInvalid, c.Ticket)
		}
		seen[c.Ticket] = true
	}
	return nil
}

// Find returns the entry of a ticket, or of a query code (QueryCode), and
// whether the board holds it.
func (b CaseBoard) Find(ticketOrCode string) (CaseStatus, bool) {
	want := strings.ToUpper(strings.TrimSpace(ticketOrCode))
	byCode := IsQueryCode(want)
	for _, c := range b.Cases {
		if c.Ticket == want {
			return c, true
		}
		if code, ok := QueryCode(c.Ticket); byCode && ok && code == want {
			return c, true
		}
	}
	return CaseStatus{}, false
}

// Validate checks a rating record.
func (r CaseRating) Validate() error {
	if err := firstErr(id("kiosk", r.Kiosk), ValidTicket(r.Ticket), oneOf("rating", r.Rating, Ratings)); err != nil {
		return err
	}
	if r.At.IsZero() {
		return fmt.Errorf("%w: rating at is required", ErrInvalid)
	}
	return nil
}

// DecodeCaseBoard decodes a cases message.
func DecodeCaseBoard(data []byte) (Envelope, CaseBoard, error) {
	return decodeAs[CaseBoard](data, TypeCases)
}

// DecodeRating decodes a rating record.
func DecodeRating(data []byte) (Envelope, CaseRating, error) {
	return decodeAs[CaseRating](data, TypeRating)
}

// Query codes. The kiosk's keypad has digits only, so a resident looks a
// case up by its query code: the six date digits of the ticket (YYMMDD)
// followed by the digits of its sequence number, as printed. A kiosk's
// tickets are "YYMMDD-{kiosk code}-{sequence}" with a sequence of at least
// four digits that never resets, so the query code is unique among the
// tickets of one kiosk: ticket 261126-PD-0042-0007 has query code
// 2611260007.
const (
	MinQueryCode = 10 // six date digits and at least four sequence digits
	MaxQueryCode = 26 // six date digits and a 20-digit sequence
)

// QueryCode returns the query code of a kiosk ticket, and false for a
// ticket that is not of the form YYMMDD-{code}-{digits}.
func QueryCode(ticket string) (string, bool) {
	if len(ticket) < 8 || ticket[6] != '-' || !allDigits(ticket[:6]) {
		return "", false
	}
	i := strings.LastIndexByte(ticket, '-')
	seq := ticket[i+1:]
	if i <= 6 || len(seq) < 4 || len(seq) > MaxQueryCode-6 || !allDigits(seq) {
		return "", false
	}
	return ticket[:6] + seq, true
}

// IsQueryCode reports whether s has the shape of a query code.
func IsQueryCode(s string) bool {
	return len(s) >= MinQueryCode && len(s) <= MaxQueryCode && allDigits(s)
}

func allDigits(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return false
		}
	}
	return s != ""
}
