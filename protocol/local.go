package protocol

import (
	"fmt"
	"time"
)

// The agent's local API, served as JSON over HTTP on a Unix socket for the
// kiosk UI and for technicians (curl --unix-socket).
//
//	GET  /v1/notices   → LocalNotices   notices held and not yet expired, with the station
//	POST /v1/feedback  FeedbackRequest → 201 FeedbackReceipt (durable in the outbox before the reply)
//	GET  /v1/status    → AgentStatus
//	GET  /v1/events    → text/event-stream of LocalEvent (one "data:" JSON line per event)
//	POST /v1/enrol     LocalEnrolRequest → 200 AgentStatus (enrols with the hub the agent is configured for)
//	POST /v1/plays     PlayEvent → 204 (the kiosk started showing an item: proof of play, and "on screen")
//	POST /v1/media-errors  MediaError → 204 (the kiosk cannot play a file the agent holds; reported to the hub)
//	GET  /v1/cases/{ticket}         → LocalCase (ticket or query code; 404 if the board has no such case)
//	POST /v1/cases/{ticket}/rating  LocalRatingRequest → 202 RatingReceipt (durable in the outbox; 409 if not rateable)
//	GET  /v1/checkin-code           → CheckinCode (the current signed check-in URL)
//	POST /v1/commands/{id}          LocalCommandReply → 204 (the kiosk UI's answer to an EventCommand; 404 if none waits)
//
// Errors are returned as ErrorResponse with a 4xx/5xx status.
const (
	LocalPathNotices  = "/v1/notices"
	LocalPathFeedback = "/v1/feedback"
	LocalPathStatus   = "/v1/status"
	LocalPathEvents   = "/v1/events"
	LocalPathEnrol    = "/v1/enrol"
	LocalPathPlays    = "/v1/plays"
	// LocalPathMediaErrors is where the kiosk reports a file it cannot play.
	LocalPathMediaErrors = "/v1/media-errors"

	// LocalPathCases is the prefix of GET /v1/cases/{ticket} and
	// POST /v1/cases/{ticket}/rating; {ticket} is a ticket or its query code.
	LocalPathCases = "/v1/cases"
	// LocalPathCheckinCode serves the check-in code the kiosk shows.
	LocalPathCheckinCode = "/v1/checkin-code"
	// LocalPathCommands is the prefix of POST /v1/commands/{id}, where
	// the kiosk UI answers a command the agent announced (EventCommand).
	LocalPathCommands = "/v1/commands"

	// MaxLocalCommandReplySize bounds the body of POST /v1/commands/{id}:
	// a screenshot in base64 and a little more.
	MaxLocalCommandReplySize = (MaxScreenshotBytes+2)/3*4 + 2<<10

	// MaxLocalRatingRequestSize bounds the body of POST /v1/cases/{ticket}/rating.
	MaxLocalRatingRequestSize = 256

	// MaxPlayEventSize bounds the body of POST /v1/plays.
	MaxPlayEventSize = 1 << 10

	// MaxFeedbackRequestSize bounds the body of POST /v1/feedback.
	MaxFeedbackRequestSize = 8 << 10
)

// LocalNotices is the reply of GET /v1/notices: everything the kiosk shows.
type LocalNotices struct {
	Kiosk   string   `json:"kiosk"`
	Version int64    `json:"version"` // content version held; 0 before the first desired state
	Station Station  `json:"station"`
	Notices []Notice `json:"notices"`
	// Playlists of the attract loop, in precedence order (play the first
	// active one), and the media files the agent holds for them, complete
	// and verified. An item whose file is not in Media is skipped.
	Playlists []Playlist   `json:"playlists,omitempty"`
	Media     []LocalMedia `json:"media,omitempty"`
}

// LocalMedia is a media file the agent holds, where the kiosk can read it.
type LocalMedia struct {
	SHA256 string    `json:"sha256"`
	Kind   MediaKind `json:"kind"`
	Path   string    `json:"path"` // absolute path of the verified file
}

// PlayEvent is what the kiosk reports when it starts showing an item of the
// attract loop or a notice on the home screen. The agent counts them per
// hour (proof of play) and never removes the file of the item on screen.
type PlayEvent struct {
	Kind   ItemKind  `json:"kind"`
	Media  string    `json:"media,omitempty"`
	Notice string    `json:"notice,omitempty"`
	At     time.Time `json:"at"`
}

// MediaError is what the kiosk reports when a file the agent holds (whole
// and verified) cannot be played: ffmpeg cannot decode it, an image cannot
// be read. The kiosk skips the item; the agent reports the file failed in
// its heartbeats, so staff see it per kiosk.
type MediaError struct {
	SHA256 string    `json:"sha256"`
	Reason string    `json:"reason"`
	At     time.Time `json:"at"`
}

// DecodeMediaError strictly decodes the body of POST /v1/media-errors.
func DecodeMediaError(data []byte) (MediaError, error) {
	var e MediaError
	if len(data) > MaxPlayEventSize {
		return e, fmt.Errorf("%w: media error is %d bytes, limit %d", ErrTooLarge, len(data), MaxPlayEventSize)
	}
	if err := strictUnmarshal(data, &e); err != nil {
		return e, fmt.Errorf("%w: media error: %v", ErrMalformed, err)
	}
	if err := firstErr(ValidSHA256(e.SHA256), text("media error reason", e.Reason, true, MaxReason)); err != nil {
		return e, fmt.Errorf("media error: %w", err)
	}
	if e.At.IsZero() {
		return e, fmt.Errorf("media error: %w: at is required", ErrInvalid)
	}
	return e, nil
}

// DecodePlayEvent strictly decodes the body of POST /v1/plays.
func DecodePlayEvent(data []byte) (PlayEvent, error) {
	var e PlayEvent
	if len(data) > MaxPlayEventSize {
		return e, fmt.Errorf("%w: play event is %d bytes, limit %d", ErrTooLarge, len(data), MaxPlayEventSize)
	}
	if err := strictUnmarshal(data, &e); err != nil {
		return e, fmt.Errorf("%w: play event: %v", ErrMalformed, err)
	}
	c := PlayCount{Kind: e.Kind, Media: e.Media, Notice: e.Notice, Count: 1, Last: e.At}
	if err := c.Validate(); err != nil {
		return e, fmt.Errorf("play event: %w", err)
	}
	return e, nil
}

// FeedbackRequest is what the kiosk submits; the agent adds the ticket, the
// kiosk id, the record id and the time.
type FeedbackRequest struct {
	Kind        FeedbackKind     `json:"kind"`
	Category    FeedbackCategory `json:"category"`
	Where       Where            `json:"where"`
	Description string           `json:"description,omitempty"`
	Phone       string           `json:"phone,omitempty"`
}

// Validate checks a feedback request.
func (r FeedbackRequest) Validate() error {
	return firstErr(
		oneOf("kind", r.Kind, FeedbackKinds),
		oneOf("category", r.Category, FeedbackCategories),
		r.Where.Validate(),
		text("description", r.Description, false, MaxDescription),
		ValidPhone(r.Phone),
	)
}

// DecodeFeedbackRequest strictly decodes the body of POST /v1/feedback.
func DecodeFeedbackRequest(data []byte) (FeedbackRequest, error) {
	var r FeedbackRequest
	if len(data) > MaxFeedbackRequestSize {
		return r, fmt.Errorf("%w: feedback request is %d bytes, limit %d", ErrTooLarge, len(data), MaxFeedbackRequestSize)
	}
	if err := strictUnmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: feedback request: %v", ErrMalformed, err)
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("feedback request: %w", err)
	}
	return r, nil
}

// FeedbackReceipt is the reply of POST /v1/feedback: the record is in the
// agent's outbox and will reach the hub.
type FeedbackReceipt struct {
	ID          string    `json:"id"`     // record id (envelope id)
	Ticket      string    `json:"ticket"` // shown to the resident
	SubmittedAt time.Time `json:"submitted_at"`
}

// LocalEnrolRequest is the body of POST /v1/enrol: the claim code a
// technician typed on the kiosk's setup screen.
type LocalEnrolRequest struct {
	ClaimCode string `json:"claim_code"`
}

// DecodeLocalEnrolRequest strictly decodes the body of POST /v1/enrol and
// normalises the claim code.
func DecodeLocalEnrolRequest(data []byte) (LocalEnrolRequest, error) {
	var r LocalEnrolRequest
	if len(data) > MaxEnrolRequestSize {
		return r, fmt.Errorf("%w: enrol request is %d bytes, limit %d", ErrTooLarge, len(data), MaxEnrolRequestSize)
	}
	if err := strictUnmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: enrol request: %v", ErrMalformed, err)
	}
	r.ClaimCode = NormalizeClaimCode(r.ClaimCode)
	if err := ValidClaimCode(r.ClaimCode); err != nil {
		return r, fmt.Errorf("enrol request: %w", err)
	}
	return r, nil
}

// AgentStatus is the reply of GET /v1/status.
type AgentStatus struct {
	Enrolled        bool      `json:"enrolled"` // false until the device has enrolled with a hub
	Kiosk           string    `json:"kiosk"`
	SoftwareVersion string    `json:"software_version"`
	Connected       bool      `json:"connected"`
	OutboxDepth     int       `json:"outbox_depth"`
	ContentVersion  int64     `json:"content_version"`
	LastSync        time.Time `json:"last_sync,omitzero"` // last desired state applied
	StartedAt       time.Time `json:"started_at"`
}

// Local event types.
const (
	EventNotices = "notices" // the set of notices or the station changed; refetch /v1/notices
	EventStatus  = "status"  // connection or outbox changed; refetch /v1/status
	EventCases   = "cases"   // the case board changed (Version is the board's); refetch a case on screen
	// EventCommand asks the kiosk UI to act on a remote command (Command
	// and Action are set: screenshot or restart_ui) and to answer on
	// POST /v1/commands/{Command}.
	EventCommand = "command"
)

// LocalEvent is one event on GET /v1/events.
type LocalEvent struct {
	Type    string `json:"type"`
	Version int64  `json:"version,omitempty"`
	Command string `json:"command,omitempty"` // EventCommand: the command's id
	Action  Action `json:"action,omitempty"`  // EventCommand: what to do
}

// LocalCommandPath returns the local API path where the kiosk UI answers
// a command.
func LocalCommandPath(id string) string { return LocalPathCommands + "/" + id }

// LocalCommandReply is the body of POST /v1/commands/{id}: how the kiosk
// UI dealt with a command. A screenshot that succeeded carries the image;
// a refusal or a failure carries the reason. Before it exits for
// restart_ui the UI answers ok.
type LocalCommandReply struct {
	Action     Action       `json:"action"`
	Status     ResultStatus `json:"status"`
	Reason     string       `json:"reason,omitempty"`
	Screenshot *Screenshot  `json:"screenshot,omitempty"`
}

// Validate checks a reply: restart_agent is the agent's own, never the
// UI's.
func (r LocalCommandReply) Validate() error {
	if err := oneOf("action", r.Action, []Action{ActionScreenshot, ActionRestartUI}); err != nil {
		return err
	}
	return validateReply(r.Action, r.Status, r.Reason, r.Screenshot)
}

// DecodeLocalCommandReply strictly decodes the body of POST /v1/commands/{id}.
func DecodeLocalCommandReply(data []byte) (LocalCommandReply, error) {
	var r LocalCommandReply
	if len(data) > MaxLocalCommandReplySize {
		return r, fmt.Errorf("%w: command reply is %d bytes, limit %d", ErrTooLarge, len(data), MaxLocalCommandReplySize)
	}
	if err := strictUnmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: command reply: %v", ErrMalformed, err)
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("command reply: %w", err)
	}
	return r, nil
}

// LocalCasePath returns the local API path of a case (ticket or query code).
func LocalCasePath(ticketOrCode string) string { return LocalPathCases + "/" + ticketOrCode }

// LocalRatingPath returns the local API path to rate a case.
func LocalRatingPath(ticketOrCode string) string { return LocalCasePath(ticketOrCode) + "/rating" }

// LocalCase is the reply of GET /v1/cases/{ticket}: the case's public
// status, and how fresh the board it comes from is.
type LocalCase struct {
	CaseStatus
	BoardVersion  int64     `json:"board_version"`
	BoardReceived time.Time `json:"board_received"` // when the agent stored the board
}

// LocalRatingRequest is the body of POST /v1/cases/{ticket}/rating.
type LocalRatingRequest struct {
	Rating Rating `json:"rating"`
}

// DecodeLocalRatingRequest strictly decodes the body of a rating request.
func DecodeLocalRatingRequest(data []byte) (LocalRatingRequest, error) {
	var r LocalRatingRequest
	if len(data) > MaxLocalRatingRequestSize {
		return r, fmt.Errorf("%w: rating request is %d bytes, limit %d", ErrTooLarge, len(data), MaxLocalRatingRequestSize)
	}
	if err := strictUnmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: rating request: %v", ErrMalformed, err)
	}
	if err := oneOf("rating", r.Rating, Ratings); err != nil {
		return r, fmt.Errorf("rating request: %w", err)
	}
	return r, nil
}

// RatingReceipt is the reply of POST /v1/cases/{ticket}/rating: the rating
// is in the agent's outbox and will reach the hub.
type RatingReceipt struct {
	ID     string    `json:"id"` // record id (envelope id)
	Ticket string    `json:"ticket"`
	Rating Rating    `json:"rating"`
	At     time.Time `json:"at"`
}

// CheckinCode is the reply of GET /v1/checkin-code: the URL to show as a
// QR code, valid for presence until Expires (the end of its slot; the hub
// still accepts it for CheckinMaxAge more slots).
type CheckinCode struct {
	URL     string    `json:"url"`
	Expires time.Time `json:"expires"`
}

// ErrorResponse is the body of every local API error.
type ErrorResponse struct {
	Error string `json:"error"`
}
