package protocol

import (
	"bytes"
	"fmt"
	"time"

	"github.com/google/uuid"
)

// Remote commands (protocol v3, additive, issue 11).
//
// A technician at the console asks one kiosk for a screenshot, or to
// restart its UI or its agent. The hub sends a Command, signed, on the
// kiosk's own command channel; the agent verifies it like every downlink
// message, refuses it if it has expired, runs it at most once (it
// remembers command ids), and reports a CommandResult as an outbox record,
// acknowledged like feedback. The result of a screenshot carries the image.
//
//	shequ/v3/down/{kiosk}/command  hub → agent  QoS 1, not retained  Command (signed)
//	shequ/v3/up/{kiosk}/result     agent → hub  QoS 1, not retained  CommandResult (an outbox record, acknowledged)
//
// Commands are not retained and the agent's sessions are clean, so a
// command sent while the kiosk is offline is lost, never delivered late;
// the expiry guards against a command delivered late anyway (held by a
// broker, replayed by an attacker who recorded it).

// Action is what a command asks for.
type Action string

// Actions.
const (
	ActionScreenshot   Action = "screenshot"    // 截屏: capture the UI, unless a resident is using it
	ActionRestartUI    Action = "restart_ui"    // 重启界面: the kiosk UI exits; systemd starts it again
	ActionRestartAgent Action = "restart_agent" // 重启代理: the agent reports, then exits; systemd starts it again
)

// Actions lists every action.
var Actions = []Action{ActionScreenshot, ActionRestartUI, ActionRestartAgent}

// ResultStatus is how a command ended.
type ResultStatus string

// Result statuses.
const (
	ResultOK      ResultStatus = "ok"      // done (a screenshot carries its image)
	ResultRefused ResultStatus = "refused" // not done on purpose: expired, a resident is using the kiosk
	ResultFailed  ResultStatus = "failed"  // tried and failed: the UI did not answer, the capture failed
)

// ResultStatuses lists every result status.
var ResultStatuses = []ResultStatus{ResultOK, ResultRefused, ResultFailed}

// Screenshot image types.
const (
	ImagePNG  = "image/png"
	ImageJPEG = "image/jpeg"
)

// Limits of command messages.
const (
	// DefaultCommandTTL is how long the hub gives a command to arrive.
	DefaultCommandTTL = 2 * time.Minute
	// MaxCommandTTL bounds expires − issued, so no command is valid for
	// long whatever the hub's settings.
	MaxCommandTTL = 10 * time.Minute
	// MaxBy bounds the characters of Command.By.
	MaxBy = 100
	// MaxScreenshotBytes bounds a screenshot's image. A 1080×1920 screen
	// of the kiosk UI (flat colours, text) is 100–400 KB as PNG; a screen
	// full of photographs can be 2–4 MB as PNG, which the kiosk then sends
	// as JPEG (about 300 KB at quality 85). 1 MiB keeps a result message
	// small for a kiosk on a mobile link and bounds what the hub keeps per
	// kiosk.
	MaxScreenshotBytes = 1 << 20
	// MaxScreenshotSide bounds a screenshot's width and height in pixels.
	MaxScreenshotSide = 8192
	// MaxCommandSize bounds a command message.
	MaxCommandSize = 2 << 10
	// MaxResultSize bounds a result message: the image in base64 and the
	// rest of the envelope.
	MaxResultSize = (MaxScreenshotBytes+2)/3*4 + 4<<10
)

// Command is the body of a command message. ID repeats the envelope's id
// inside the signed body, so a recorded command cannot be replayed under a
// new envelope id; the agent refuses a command whose ids differ.
type Command struct {
	ID      string    `json:"id"`
	Kiosk   string    `json:"kiosk"`
	Action  Action    `json:"action"`
	By      string    `json:"by"` // who asked, as the hub's audit log names them
	Issued  time.Time `json:"issued"`
	Expires time.Time `json:"expires"` // the agent refuses the command after this
}

// Screenshot is a captured screen of the kiosk UI.
type Screenshot struct {
	Type    string    `json:"type"` // ImagePNG or ImageJPEG
	Width   int       `json:"width"`
	Height  int       `json:"height"`
	TakenAt time.Time `json:"taken_at"`
	Data    []byte    `json:"data"` // the encoded image (base64 in JSON)
}

// CommandResult reports how a command ended. Its record id is the id of
// the envelope that carries it (not the command's id).
type CommandResult struct {
	Kiosk      string       `json:"kiosk"`
	Command    string       `json:"command"` // the command's id
	Action     Action       `json:"action"`
	Status     ResultStatus `json:"status"`
	Reason     string       `json:"reason,omitempty"` // required unless ok
	At         time.Time    `json:"at"`
	Screenshot *Screenshot  `json:"screenshot,omitempty"` // exactly when a screenshot is ok
}

// Expired reports whether the command may no longer run at now.
func (c Command) Expired(now time.Time) bool { return !now.Before(c.Expires) }

func validUUID(field, s string) error {
	if _, err := uuid.Parse(s); err != nil || len(s) != 36 {
		return fmt.Errorf("%w: %s %q is not a UUID", ErrInvalid, field, s)
	}
	return nil
}

// Validate checks a command.
func (c Command) Validate() error {
	if err := firstErr(
		validUUID("command id", c.ID),
		id("kiosk", c.Kiosk),
		oneOf("action", c.Action, Actions),
		text("by", c.By, true, MaxBy),
	); err != nil {
		return err
	}
	if c.Issued.IsZero() || c.Expires.IsZero() {
		return fmt.Errorf("%w: issued and expires are required", ErrInvalid)
	}
	if ttl := c.Expires.Sub(c.Issued); ttl <= 0 || ttl > MaxCommandTTL {
		return fmt.Errorf("%w: expires must be after issued and within %v of it, is %v", ErrInvalid, MaxCommandTTL, ttl)
	}
	return nil
}

// Validate checks a screenshot: its size and that its bytes start as its
// type says.
func (s Screenshot) Validate() error {
	if s.Width < 1 || s.Height < 1 || s.Width > MaxScreenshotSide || s.Height > MaxScreenshotSide {
		return fmt.Errorf("%w: screenshot is %d×%d, want 1-%d pixels a side", ErrInvalid, s.Width, s.Height, MaxScreenshotSide)
	}
	if len(s.Data) == 0 || len(s.Data) > MaxScreenshotBytes {
		return fmt.Errorf("%w: screenshot is %d bytes, want 1-%d", ErrInvalid, len(s.Data), MaxScreenshotBytes)
	}
	var magic []byte
	switch s.Type {
	case ImagePNG:
		magic = []byte("\x89PNG\r\n\x1a\n")
	case ImageJPEG:
		magic = []byte{0xff, 0xd8, 0xff}
	default:
		return fmt.Errorf("%w: screenshot type %q is not %s or %s", ErrInvalid, s.Type, ImagePNG, ImageJPEG)
	}
	if !bytes.HasPrefix(s.Data, magic) {
		return fmt.Errorf("%w: screenshot data is not %s", ErrInvalid, s.Type)
	}
	if s.TakenAt.IsZero() {
		return fmt.Errorf("%w: screenshot taken_at is required", ErrInvalid)
	}
	return nil
}

// validateReply checks what a result and a local reply share.
func validateReply(a Action, st ResultStatus, reason string, shot *Screenshot) error {
	if err := firstErr(
		oneOf("status", st, ResultStatuses),
		text("reason", reason, st != ResultOK, MaxReason),
	); err != nil {
		return err
	}
	want := a == ActionScreenshot && st == ResultOK
	switch {
	case want && shot == nil:
		return fmt.Errorf("%w: a screenshot that succeeded carries the image", ErrInvalid)
	case !want && shot != nil:
		return fmt.Errorf("%w: only a screenshot that succeeded carries an image", ErrInvalid)
	case shot != nil:
		return shot.Validate()
	}
	return nil
}

// Validate checks a result record.
func (r CommandResult) Validate() error {
	if err := firstErr(
		id("kiosk", r.Kiosk),
		validUUID("command", r.Command),
		oneOf("action", r.Action, Actions),
	); err != nil {
		return err
	}
	if r.At.IsZero() {
		return fmt.Errorf("%w: result at is required", ErrInvalid)
	}
	return validateReply(r.Action, r.Status, r.Reason, r.Screenshot)
}

// DecodeCommand decodes a command message.
func DecodeCommand(data []byte) (Envelope, Command, error) {
	return decodeAs[Command](data, TypeCommand)
}

// DecodeResult decodes a result record.
func DecodeResult(data []byte) (Envelope, CommandResult, error) {
	return decodeAs[CommandResult](data, TypeResult)
}
