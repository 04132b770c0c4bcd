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
//
// # Strictness
//
// Every decoder enforces a size limit, rejects unknown protocol versions,
// unknown fields, missing required fields and out-of-range enums, and
// returns an error wrapping one of the sentinel errors below. Adding a field
// is a protocol version change.
package protocol
