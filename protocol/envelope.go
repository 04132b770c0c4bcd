package protocol

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/google/uuid"
)

// Version is the protocol version this build speaks.
const Version = 3

// Message types carried in Envelope.Type.
const (
	TypeFeedback  = "feedback"
	TypePresence  = "presence"
	TypeHeartbeat = "heartbeat"
	TypeDesired   = "desired"
	TypeAck       = "ack"
	TypeKeys      = "keys"
	TypeMedia     = "media"    // MediaRequest, agent → hub
	TypeManifest  = "manifest" // Manifest, hub → agent, signed
	TypeChunk     = "chunk"    // Chunk, hub → agent, checked against the manifest
	TypePlays     = "plays"    // PlayStats, agent → hub, an outbox record
	TypeCases     = "cases"    // CaseBoard, hub → agent, signed, retained
	TypeRating    = "rating"   // CaseRating, agent → hub, an outbox record
	TypeUpdate    = "update"   // UpdateReport, agent → hub, an outbox record
	// TypeUpdateOffer is UpdateOffer, hub → agent, signed, retained.
	TypeUpdateOffer = "update_offer"
	// TypeUpdateStatus is UpdateStatus, agent → hub, with each heartbeat.
	TypeUpdateStatus = "update_status"
	TypeCommand      = "command" // Command, hub → agent, signed
	TypeResult       = "result"  // CommandResult, agent → hub, an outbox record
)

// downlink lists the types the hub sends; their envelopes are signed.
var downlink = map[string]bool{TypeDesired: true, TypeAck: true, TypeKeys: true, TypeManifest: true, TypeChunk: true, TypeCases: true,
	TypeUpdateOffer: true, TypeCommand: true}

// IsDownlink reports whether messages of type typ go from hub to device and
// so must be signed.
func IsDownlink(typ string) bool { return downlink[typ] }

// Size limits, per message type, of the whole encoded envelope.
const (
	MaxFeedbackSize  = 16 << 10
	MaxPresenceSize  = 1 << 10
	MaxHeartbeatSize = 32 << 10
	// MaxAckSize fits the longest valid ack even when every character of
	// its ref and reason is escaped by the encoder (\u003c, \u2028: 6 bytes).
	MaxAckSize     = 2 << 10
	MaxDesiredSize = 1 << 20
	// MaxKeysSize bounds a key-chain message (MaxKeyLinks links).
	MaxKeysSize         = 64 << 10
	MaxMediaRequestSize = 4 << 10
	MaxManifestSize     = 3 << 20 // MaxManifestChunks hashes
	MaxChunkMessageSize = 6 << 20 // MaxChunkSize bytes in base64
	MaxPlaysSize        = 128 << 10
	// MaxEnvelopeSize bounds any envelope before its type is known.
	MaxEnvelopeSize = MaxChunkMessageSize
)

var typeLimit = map[string]int{
	TypeFeedback:     MaxFeedbackSize,
	TypePresence:     MaxPresenceSize,
	TypeHeartbeat:    MaxHeartbeatSize,
	TypeAck:          MaxAckSize,
	TypeDesired:      MaxDesiredSize,
	TypeKeys:         MaxKeysSize,
	TypeMedia:        MaxMediaRequestSize,
	TypeManifest:     MaxManifestSize,
	TypeChunk:        MaxChunkMessageSize,
	TypePlays:        MaxPlaysSize,
	TypeCases:        MaxCaseBoardSize,
	TypeRating:       MaxRatingSize,
	TypeUpdate:       MaxUpdateSize,
	TypeUpdateOffer:  MaxUpdateOfferSize,
	TypeUpdateStatus: MaxUpdateStatusSize,
	TypeCommand:      MaxCommandSize,
	TypeResult:       MaxResultSize,
}

// Envelope wraps every message on the wire.
type Envelope struct {
	V    int             `json:"v"`
	ID   string          `json:"id"`
	Type string          `json:"type"`
	TS   time.Time       `json:"ts"`
	Body json.RawMessage `json:"body"`
	// KID and Sig sign downlink messages: KID names the hub key (KeyID),
	// Sig is base64(ed25519 signature over Body's exact bytes).
	KID string `json:"kid,omitempty"`
	Sig string `json:"sig,omitempty"`
}

// NewID returns a fresh UUIDv7 (time-ordered) message id.
func NewID() string { return uuid.Must(uuid.NewV7()).String() }

// Encode wraps body in a new envelope with a fresh id and returns its bytes.
func Encode(typ string, ts time.Time, body any) ([]byte, error) {
	return EncodeID(NewID(), typ, ts, body)
}

// EncodeID is Encode with a caller-chosen id, for records whose id is fixed
// before they are sent (an outbox record keeps its id across resends).
func EncodeID(id, typ string, ts time.Time, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s body: %w", typ, err)
	}
	out, err := json.Marshal(Envelope{V: Version, ID: id, Type: typ, TS: ts.UTC(), Body: b})
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s envelope: %w", typ, err)
	}
	if lim, ok := typeLimit[typ]; ok && len(out) > lim {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, typ, len(out), lim)
	}
	return out, nil
}

// DecodeEnvelope checks size, version, id, type and timestamp and returns the
// envelope with its body still raw. Use the typed decoders to get a body.
func DecodeEnvelope(data []byte) (Envelope, error) {
	var e Envelope
	if len(data) > MaxEnvelopeSize {
		return e, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(data), MaxEnvelopeSize)
	}
	if err := strictUnmarshal(data, &e); err != nil {
		return e, fmt.Errorf("%w: envelope: %v", ErrMalformed, err)
	}
	if e.V != Version {
		return e, fmt.Errorf("%w: got v=%d, this build speaks v=%d", ErrVersion, e.V, Version)
	}
	if _, err := uuid.Parse(e.ID); err != nil || len(e.ID) != 36 {
		return e, fmt.Errorf("%w: envelope id %q is not a UUID", ErrInvalid, e.ID)
	}
	lim, ok := typeLimit[e.Type]
	if !ok {
		return e, fmt.Errorf("%w: %q", ErrType, e.Type)
	}
	if len(data) > lim {
		return e, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, e.Type, len(data), lim)
	}
	if e.TS.IsZero() {
		return e, fmt.Errorf("%w: envelope ts is missing", ErrInvalid)
	}
	if y := e.TS.UTC().Year(); y < 1 || y > 9999 {
		// Encode writes ts in UTC, which must be a four-digit year.
		return e, fmt.Errorf("%w: envelope ts %s is outside years 1-9999 in UTC", ErrInvalid, e.TS.Format(time.RFC3339))
	}
	if len(e.Body) == 0 || bytes.Equal(e.Body, []byte("null")) {
		return e, fmt.Errorf("%w: envelope body is missing", ErrInvalid)
	}
	if err := checkSignatureShape(e); err != nil {
		return e, err
	}
	return e, nil
}

// validator is implemented by every body type.
type validator interface{ Validate() error }

// decodeAs decodes an envelope of type typ and its body into v.
func decodeAs[T any, P interface {
	*T
	validator
}](data []byte, typ string) (Envelope, T, error) {
	var body T
	e, err := DecodeEnvelope(data)
	if err != nil {
		return e, body, err
	}
	if e.Type != typ {
		return e, body, fmt.Errorf("%w: got %q, want %q", ErrType, e.Type, typ)
	}
	if err := strictUnmarshal(e.Body, &body); err != nil {
		return e, body, fmt.Errorf("%w: %s body: %v", ErrMalformed, typ, err)
	}
	if err := P(&body).Validate(); err != nil {
		return e, body, fmt.Errorf("%s: %w", typ, err)
	}
	return e, body, nil
}

// strictUnmarshal decodes exactly one JSON value, rejecting unknown fields
// and trailing data.
func strictUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("trailing data after JSON value")
	}
	return nil
}

// DecodeFeedback decodes a feedback message.
func DecodeFeedback(data []byte) (Envelope, Feedback, error) {
	return decodeAs[Feedback](data, TypeFeedback)
}

// DecodePresence decodes a presence message.
func DecodePresence(data []byte) (Envelope, Presence, error) {
	return decodeAs[Presence](data, TypePresence)
}

// DecodeHeartbeat decodes a heartbeat message.
func DecodeHeartbeat(data []byte) (Envelope, Heartbeat, error) {
	return decodeAs[Heartbeat](data, TypeHeartbeat)
}

// DecodeAck decodes an ack message.
func DecodeAck(data []byte) (Envelope, Ack, error) {
	return decodeAs[Ack](data, TypeAck)
}

// DecodeKeys decodes a key-chain message.
func DecodeKeys(data []byte) (Envelope, KeyChain, error) {
	return decodeAs[KeyChain](data, TypeKeys)
}

// DecodeMediaRequest decodes a media request.
func DecodeMediaRequest(data []byte) (Envelope, MediaRequest, error) {
	return decodeAs[MediaRequest](data, TypeMedia)
}

// DecodeManifest decodes a manifest message.
func DecodeManifest(data []byte) (Envelope, Manifest, error) {
	return decodeAs[Manifest](data, TypeManifest)
}

// DecodeChunk decodes a chunk message.
func DecodeChunk(data []byte) (Envelope, Chunk, error) {
	return decodeAs[Chunk](data, TypeChunk)
}

// DecodePlays decodes a proof-of-play record.
func DecodePlays(data []byte) (Envelope, PlayStats, error) {
	return decodeAs[PlayStats](data, TypePlays)
}

// DecodeDesired decodes a desired-state message.
func DecodeDesired(data []byte) (Envelope, DesiredState, error) {
	return decodeAs[DesiredState](data, TypeDesired)
}
