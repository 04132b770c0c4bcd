// Package protocol holds Shequ's wire contract: the MQTT topic tree, the
// message envelope, the body of every message type, the agent's local API
// types, and strict decoders for all of them.
//
// It depends only on the standard library (and github.com/google/uuid for
// UUIDv7 message ids), so the hub, the agent and the kiosk can share it
// without pulling in each other's dependencies.
//
// # Version history
//
//	v1 (2026-11-26): envelope {v,id,type,ts,body}; notice, desired state,
//	    feedback, ack, presence, heartbeat; local API types.
//	v2 (2026-11-26): topic root shequ/v2; downlink topics address a kiosk or
//	    any org-tree node (group topics); envelope gains kid and sig (ed25519
//	    over the exact body bytes) on every hub → device message; keys message
//	    (the hub's signing key chain, for rotation); enrolment request and
//	    response; local API: enrolled flag in the status and POST /v1/enrol.
//	v3 (2026-11-26): media, playlists, manifests, chunks, proof of play.
//	v3 (2026-11-27, additive): case board (channel cases, signed, retained)
//	    and ratings (channel rating, an outbox record); query codes;
//	    check-in codes; local API /v1/cases/{ticket}, its rating, and
//	    /v1/checkin-code.
//	v3 (2026-11-28, additive): remote commands (channel command, signed,
//	    not retained) and their results (channel result, an outbox record,
//	    carrying a screenshot); local API POST /v1/commands/{id} and the
//	    command event.
//
// # Signatures
//
// Every downlink envelope (desired, ack, keys, manifest, cases, command) carries kid, the id of the
// hub key that signed it (KeyID), and sig, the ed25519 signature over the
// body exactly as it appears in the envelope. Decoders check their shape;
// a receiver calls VerifyEnvelope with the key it trusts before it stores or
// shows anything. Uplink envelopes carry neither.
//
// # Strictness
//
// Every decoder enforces a size limit, rejects unknown protocol versions,
// unknown fields, missing required fields and out-of-range enums, and
// returns an error wrapping one of the sentinel errors below. Adding a field
// is a protocol version change.
package protocol
