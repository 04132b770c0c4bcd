package protocol

import "errors"

// Sentinel errors returned (wrapped) by the decoders. Callers use errors.Is.
var (
	// ErrTooLarge means the payload exceeds the limit for its message type.
	ErrTooLarge = errors.New("protocol: message too large")
	// ErrVersion means the envelope carries a protocol version this build does not speak.
	ErrVersion = errors.New("protocol: unsupported protocol version")
	// ErrType means the envelope's type is not the one the decoder expects, or unknown.
	ErrType = errors.New("protocol: unexpected message type")
	// ErrMalformed means the payload is not valid JSON for the expected shape.
	ErrMalformed = errors.New("protocol: malformed message")
	// ErrInvalid means a required field is missing or a value is out of range.
	ErrInvalid = errors.New("protocol: invalid field")
	// ErrTopic means a topic does not belong to the Shequ tree.
	ErrTopic = errors.New("protocol: unknown topic")
	// ErrSignature means a downlink message is unsigned, signed by a key the
	// receiver does not trust, or its signature does not match its body.
	ErrSignature = errors.New("protocol: bad signature")
	// ErrExpired means a check-in code is genuine but too old (or too far
	// in the future) to prove presence now.
	ErrExpired = errors.New("protocol: check-in code expired")
)
