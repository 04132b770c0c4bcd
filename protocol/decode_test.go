package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

var fixedTime = time.Date(2026, 11, 26, 2, 15, 30, 0, time.UTC)

// obj is a decoded JSON object that test cases mutate.
type obj = map[string]any

// mutate loads a golden file, applies f to its decoded JSON and re-marshals it.
func mutate(t *testing.T, file string, f func(m obj)) []byte {
	t.Helper()
	var m obj
	if err := json.Unmarshal(readFile(t, file), &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func body(m obj) obj          { return m["body"].(obj) }
func notice(m obj, i int) obj { return body(m)["notices"].([]any)[i].(obj) }

func TestDecodeInvalid(t *testing.T) {
	type tc struct {
		name    string
		decoder string
		input   func(t *testing.T) []byte
		want    error
	}
	raw := func(s string) func(*testing.T) []byte { return func(*testing.T) []byte { return []byte(s) } }
	mut := func(file string, f func(obj)) func(*testing.T) []byte {
		return func(t *testing.T) []byte { return mutate(t, file, f) }
	}
	padded := func(file string, n int) func(*testing.T) []byte {
		return func(t *testing.T) []byte {
			return append(readFile(t, file), strings.Repeat(" ", n)...)
		}
	}
	cases := []tc{
		// Envelope rules, checked through every envelope decoder.
		{"empty input", "feedback", raw(""), protocol.ErrMalformed},
		{"not JSON", "presence", raw("online"), protocol.ErrMalformed},
		{"JSON array", "heartbeat", raw("[]"), protocol.ErrMalformed},
		{"null", "ack", raw("null"), protocol.ErrVersion},
		{"larger than any envelope", "desired", padded("desired.json", protocol.MaxEnvelopeSize), protocol.ErrTooLarge},
		{"feedback over its limit", "feedback", padded("feedback.json", protocol.MaxFeedbackSize), protocol.ErrTooLarge},
		{"presence over its limit", "presence", padded("presence_online.json", protocol.MaxPresenceSize), protocol.ErrTooLarge},
		{"heartbeat over its limit", "heartbeat", padded("heartbeat.json", protocol.MaxHeartbeatSize), protocol.ErrTooLarge},
		{"ack over its limit", "ack", padded("ack_stored.json", protocol.MaxAckSize), protocol.ErrTooLarge},
		{"version 0", "feedback", mut("feedback.json", func(m obj) { m["v"] = 0 }), protocol.ErrVersion},
		{"version 1", "desired", mut("desired.json", func(m obj) { m["v"] = 1 }), protocol.ErrVersion},
		{"version missing", "ack", mut("ack_stored.json", func(m obj) { delete(m, "v") }), protocol.ErrVersion},
		{"version as string", "ack", mut("ack_stored.json", func(m obj) { m["v"] = "1" }), protocol.ErrMalformed},
		{"unknown type", "heartbeat", mut("heartbeat.json", func(m obj) { m["type"] = "status" }), protocol.ErrType},
		{"wrong type", "feedback", mut("presence_online.json", func(m obj) {}), protocol.ErrType},
		{"wrong type ack as presence", "presence", mut("ack_stored.json", func(m obj) {}), protocol.ErrType},
		{"type missing", "ack", mut("ack_stored.json", func(m obj) { delete(m, "type") }), protocol.ErrType},
		{"id missing", "ack", mut("ack_stored.json", func(m obj) { delete(m, "id") }), protocol.ErrInvalid},
		{"id not a uuid", "presence", mut("presence_online.json", func(m obj) { m["id"] = "presence-1" }), protocol.ErrInvalid},
		{"id in braces", "presence", mut("presence_online.json", func(m obj) { m["id"] = "{019ac0e1-0a00-7b12-8c34-56789abcdef0}" }), protocol.ErrInvalid},
		{"id without dashes", "presence", mut("presence_online.json", func(m obj) { m["id"] = "019ac0e10a007b128c3456789abcdef0" }), protocol.ErrInvalid},
		{"ts missing", "heartbeat", mut("heartbeat.json", func(m obj) { delete(m, "ts") }), protocol.ErrInvalid},
		{"ts not RFC 3339", "heartbeat", mut("heartbeat.json", func(m obj) { m["ts"] = "2026-11-26 02:20" }), protocol.ErrMalformed},
		{"ts before year 1 in UTC", "ack", mut("ack_stored.json", func(m obj) { m["ts"] = "0001-01-01T00:30:00+01:00" }), protocol.ErrInvalid},
		{"ts after year 9999 in UTC", "ack", mut("ack_stored.json", func(m obj) { m["ts"] = "9999-12-31T23:30:00-01:00" }), protocol.ErrInvalid},
		{"body missing", "presence", mut("presence_online.json", func(m obj) { delete(m, "body") }), protocol.ErrInvalid},
		{"body null", "presence", mut("presence_online.json", func(m obj) { m["body"] = nil }), protocol.ErrInvalid},
		{"body a string", "presence", mut("presence_online.json", func(m obj) { m["body"] = "online" }), protocol.ErrMalformed},
		{"unknown envelope field", "feedback", mut("feedback.json", func(m obj) { m["signature"] = "x" }), protocol.ErrMalformed},
		{"signed uplink", "feedback", mut("feedback.json", func(m obj) { m["sig"] = "x" }), protocol.ErrInvalid},
		{"unknown body field", "feedback", mut("feedback.json", func(m obj) { body(m)["name"] = "张三" }), protocol.ErrMalformed},
		{"trailing data", "presence", func(t *testing.T) []byte { return append(readFile(t, "presence_online.json"), "{}"...) }, protocol.ErrMalformed},
		{"trailing garbage", "presence", func(t *testing.T) []byte { return append(readFile(t, "presence_online.json"), ']') }, protocol.ErrMalformed},

		// Feedback.
		{"feedback ticket missing", "feedback", mut("feedback.json", func(m obj) { delete(body(m), "ticket") }), protocol.ErrInvalid},
		{"feedback ticket lowercase", "feedback", mut("feedback.json", func(m obj) { body(m)["ticket"] = "sc-1" }), protocol.ErrInvalid},
		{"feedback ticket too long", "feedback", mut("feedback.json", func(m obj) { body(m)["ticket"] = strings.Repeat("A", protocol.MaxTicket+1) }), protocol.ErrInvalid},
		{"feedback kiosk bad id", "feedback", mut("feedback.json", func(m obj) { body(m)["kiosk"] = "K-SangCheng" }), protocol.ErrInvalid},
		{"feedback kiosk with slash", "feedback", mut("feedback.json", func(m obj) { body(m)["kiosk"] = "a/b" }), protocol.ErrInvalid},
		{"feedback kind unknown", "feedback", mut("feedback.json", func(m obj) { body(m)["kind"] = "praise" }), protocol.ErrInvalid},
		{"feedback kind missing", "feedback", mut("feedback.json", func(m obj) { delete(body(m), "kind") }), protocol.ErrInvalid},
		{"feedback category unknown", "feedback", mut("feedback.json", func(m obj) { body(m)["category"] = "noise" }), protocol.ErrInvalid},
		{"feedback phone with dashes", "feedback", mut("feedback.json", func(m obj) { body(m)["phone"] = "138-0013-8000" }), protocol.ErrInvalid},
		{"feedback phone too short", "feedback", mut("feedback.json", func(m obj) { body(m)["phone"] = "1234" }), protocol.ErrInvalid},
		{"feedback phone too long", "feedback", mut("feedback.json", func(m obj) { body(m)["phone"] = strings.Repeat("1", 21) }), protocol.ErrInvalid},
		{"feedback phone full-width digits", "feedback", mut("feedback.json", func(m obj) { body(m)["phone"] = "１３８００１３８０００" }), protocol.ErrInvalid},
		{"feedback description too long", "feedback", mut("feedback.json", func(m obj) { body(m)["description"] = strings.Repeat("违", protocol.MaxDescription+1) }), protocol.ErrInvalid},
		{"feedback room too long", "feedback", mut("feedback.json", func(m obj) { body(m)["where"].(obj)["room"] = strings.Repeat("室", protocol.MaxWhereField+1) }), protocol.ErrInvalid},
		{"feedback submitted_at missing", "feedback", mut("feedback.json", func(m obj) { delete(body(m), "submitted_at") }), protocol.ErrInvalid},
		{"feedback where not an object", "feedback", mut("feedback.json", func(m obj) { body(m)["where"] = "12号" }), protocol.ErrMalformed},

		// Presence.
		{"presence epoch 0", "presence", mut("presence_online.json", func(m obj) { body(m)["epoch"] = 0 }), protocol.ErrInvalid},
		{"presence epoch negative", "presence", mut("presence_offline.json", func(m obj) { body(m)["epoch"] = -5 }), protocol.ErrInvalid},
		{"presence epoch missing", "presence", mut("presence_offline.json", func(m obj) { delete(body(m), "epoch") }), protocol.ErrInvalid},
		{"presence epoch fractional", "presence", mut("presence_offline.json", func(m obj) { body(m)["epoch"] = 1.5 }), protocol.ErrMalformed},
		{"presence state unknown", "presence", mut("presence_online.json", func(m obj) { body(m)["state"] = "away" }), protocol.ErrInvalid},
		{"presence kiosk missing", "presence", mut("presence_online.json", func(m obj) { delete(body(m), "kiosk") }), protocol.ErrInvalid},
		{"presence kiosk too long", "presence", mut("presence_online.json", func(m obj) { body(m)["kiosk"] = strings.Repeat("k", 65) }), protocol.ErrInvalid},

		// Heartbeat.
		{"heartbeat epoch 0", "heartbeat", mut("heartbeat.json", func(m obj) { body(m)["epoch"] = 0 }), protocol.ErrInvalid},
		{"heartbeat software_version missing", "heartbeat", mut("heartbeat.json", func(m obj) { delete(body(m), "software_version") }), protocol.ErrInvalid},
		{"heartbeat software_version too long", "heartbeat", mut("heartbeat.json", func(m obj) { body(m)["software_version"] = strings.Repeat("1", protocol.MaxVersionText+1) }), protocol.ErrInvalid},
		{"heartbeat negative uptime", "heartbeat", mut("heartbeat.json", func(m obj) { body(m)["uptime_seconds"] = -1 }), protocol.ErrInvalid},
		{"heartbeat negative disk", "heartbeat", mut("heartbeat.json", func(m obj) { body(m)["free_disk_bytes"] = -1 }), protocol.ErrInvalid},
		{"heartbeat outbox overflows int", "heartbeat", mut("heartbeat.json", func(m obj) { body(m)["outbox_depth"] = 1e30 }), protocol.ErrMalformed},

		// Ack.
		{"ack ref missing", "ack", mut("ack_stored.json", func(m obj) { delete(body(m), "ref") }), protocol.ErrInvalid},
		{"ack ref too long", "ack", mut("ack_stored.json", func(m obj) { body(m)["ref"] = strings.Repeat("f", 65) }), protocol.ErrInvalid},
		{"ack status unknown", "ack", mut("ack_stored.json", func(m obj) { body(m)["status"] = "ok" }), protocol.ErrInvalid},
		{"ack status wrong case", "ack", mut("ack_stored.json", func(m obj) { body(m)["status"] = "STORED" }), protocol.ErrInvalid},
		{"ack reason too long", "ack", mut("ack_rejected.json", func(m obj) { body(m)["reason"] = strings.Repeat("r", protocol.MaxReason+1) }), protocol.ErrInvalid},

		// Desired state.
		{"desired version 0", "desired", mut("desired.json", func(m obj) { body(m)["version"] = 0 }), protocol.ErrInvalid},
		{"desired version negative", "desired", mut("desired.json", func(m obj) { body(m)["version"] = -17 }), protocol.ErrInvalid},
		{"desired kiosk bad id", "desired", mut("desired.json", func(m obj) { body(m)["kiosk"] = "桑城01" }), protocol.ErrInvalid},
		{"desired station missing", "desired", mut("desired.json", func(m obj) { delete(body(m), "station") }), protocol.ErrInvalid},
		{"desired station name missing", "desired", mut("desired.json", func(m obj) { delete(body(m)["station"].(obj), "name") }), protocol.ErrInvalid},
		{"desired station community bad id", "desired", mut("desired.json", func(m obj) { body(m)["station"].(obj)["community"] = "桑城" }), protocol.ErrInvalid},
		{"desired duplicate notice id", "desired", mut("desired.json", func(m obj) { notice(m, 1)["id"] = notice(m, 0)["id"] }), protocol.ErrInvalid},
		{"desired too many notices", "desired", mut("desired.json", func(m obj) {
			ns := make([]any, protocol.MaxNotices+1)
			for i := range ns {
				n := map[string]any{}
				for k, v := range notice(m, 1) {
					n[k] = v
				}
				n["id"] = fmt.Sprintf("n-%03d", i)
				ns[i] = n
			}
			body(m)["notices"] = ns
		}), protocol.ErrInvalid},
		{"notice valid_until before valid_from", "desired", mut("desired.json", func(m obj) { notice(m, 0)["valid_until"] = "2026-10-01T00:00:00+08:00" }), protocol.ErrInvalid},
		{"notice valid_until equal valid_from", "desired", mut("desired.json", func(m obj) { notice(m, 0)["valid_until"] = notice(m, 0)["valid_from"] }), protocol.ErrInvalid},
		{"notice valid_from missing", "desired", mut("desired.json", func(m obj) { delete(notice(m, 0), "valid_from") }), protocol.ErrInvalid},
		{"notice title missing", "desired", mut("desired.json", func(m obj) { delete(notice(m, 0), "title") }), protocol.ErrInvalid},
		{"notice title too long", "desired", mut("desired.json", func(m obj) { notice(m, 0)["title"] = strings.Repeat("通", protocol.MaxTitle+1) }), protocol.ErrInvalid},
		{"notice body too long", "desired", mut("desired.json", func(m obj) { notice(m, 0)["body"] = strings.Repeat("告", protocol.MaxNoticeBody+1) }), protocol.ErrInvalid},
		{"notice bad id", "desired", mut("desired.json", func(m obj) { notice(m, 0)["id"] = "N 1" }), protocol.ErrInvalid},
		{"notice bad category", "desired", mut("desired.json", func(m obj) { notice(m, 0)["category"] = "ad" }), protocol.ErrInvalid},
		{"notice bad priority", "desired", mut("desired.json", func(m obj) { notice(m, 0)["priority"] = "critical" }), protocol.ErrInvalid},
		{"notice no targets", "desired", mut("desired.json", func(m obj) { notice(m, 0)["targets"] = []any{} }), protocol.ErrInvalid},
		{"notice target bad level", "desired", mut("desired.json", func(m obj) { notice(m, 0)["targets"] = []any{obj{"level": "province", "id": "sh"}} }), protocol.ErrInvalid},
		{"notice target bad id", "desired", mut("desired.json", func(m obj) { notice(m, 0)["targets"] = []any{obj{"level": "street", "id": ""}} }), protocol.ErrInvalid},
		{"notice unknown field", "desired", mut("desired.json", func(m obj) { notice(m, 0)["media"] = []any{} }), protocol.ErrMalformed},

		// Feedback request (local API).
		{"request too large", "feedback_request", func(t *testing.T) []byte {
			return append(readFile(t, "feedback_request.json"), strings.Repeat(" ", protocol.MaxFeedbackRequestSize)...)
		}, protocol.ErrTooLarge},
		{"request empty", "feedback_request", raw(""), protocol.ErrMalformed},
		{"request empty object", "feedback_request", raw("{}"), protocol.ErrInvalid},
		{"request unknown field", "feedback_request", mut("feedback_request.json", func(m obj) { m["ticket"] = "SC-1" }), protocol.ErrMalformed},
		{"request trailing data", "feedback_request", func(t *testing.T) []byte { return append(readFile(t, "feedback_request.json"), "{}"...) }, protocol.ErrMalformed},
		{"request kind unknown", "feedback_request", mut("feedback_request.json", func(m obj) { m["kind"] = "praise" }), protocol.ErrInvalid},
		{"request category missing", "feedback_request", mut("feedback_request.json", func(m obj) { delete(m, "category") }), protocol.ErrInvalid},
		{"request phone letters", "feedback_request", mut("feedback_request.json", func(m obj) { m["phone"] = "1380013800a" }), protocol.ErrInvalid},
		{"request phone with plus", "feedback_request", mut("feedback_request.json", func(m obj) { m["phone"] = "+8613800138000" }), protocol.ErrInvalid},
		{"request building too long", "feedback_request", mut("feedback_request.json", func(m obj) { m["where"].(obj)["building"] = strings.Repeat("楼", protocol.MaxWhereField+1) }), protocol.ErrInvalid},
		{"request description too long", "feedback_request", mut("feedback_request.json", func(m obj) { m["description"] = strings.Repeat("d", protocol.MaxDescription+1) }), protocol.ErrInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			dec, ok := decoders[c.decoder]
			if !ok {
				t.Fatalf("no decoder %q", c.decoder)
			}
			_, err := dec.decode(c.input(t))
			if !errors.Is(err, c.want) {
				t.Fatalf("decode = %v, want an error wrapping %v", err, c.want)
			}
		})
	}
}

// TestDecodeBoundaries checks values exactly at their limits are accepted.
func TestDecodeBoundaries(t *testing.T) {
	cases := []struct {
		name    string
		decoder string
		file    string
		f       func(obj)
	}{
		{"ticket at limit", "feedback", "feedback.json", func(m obj) { body(m)["ticket"] = strings.Repeat("A", protocol.MaxTicket) }},
		{"phone 5 digits", "feedback", "feedback.json", func(m obj) { body(m)["phone"] = "12345" }},
		{"phone 20 digits", "feedback", "feedback.json", func(m obj) { body(m)["phone"] = strings.Repeat("9", 20) }},
		{"phone empty", "feedback", "feedback.json", func(m obj) { delete(body(m), "phone") }},
		{"description at limit", "feedback", "feedback.json", func(m obj) { body(m)["description"] = strings.Repeat("违", protocol.MaxDescription) }},
		{"where empty", "feedback", "feedback.json", func(m obj) { body(m)["where"] = obj{} }},
		{"kiosk id 64 chars", "presence", "presence_online.json", func(m obj) { body(m)["kiosk"] = strings.Repeat("k", 64) }},
		{"kiosk id with dot and underscore", "presence", "presence_online.json", func(m obj) { body(m)["kiosk"] = "pd.huamu_sc-01" }},
		{"epoch 1", "presence", "presence_online.json", func(m obj) { body(m)["epoch"] = 1 }},
		{"heartbeat zero counters", "heartbeat", "heartbeat.json", func(m obj) {
			for _, k := range []string{"uptime_seconds", "outbox_depth", "content_version", "free_disk_bytes"} {
				body(m)[k] = 0
			}
		}},
		{"ack reason at limit", "ack", "ack_rejected.json", func(m obj) { body(m)["reason"] = strings.Repeat("r", protocol.MaxReason) }},
		{"desired no notices", "desired", "desired.json", func(m obj) { body(m)["notices"] = []any{} }},
		{"desired version 1", "desired", "desired.json", func(m obj) { body(m)["version"] = 1 }},
		{"notice title at limit", "desired", "desired.json", func(m obj) { notice(m, 0)["title"] = strings.Repeat("通", protocol.MaxTitle) }},
		{"notice every level", "desired", "desired.json", func(m obj) {
			var ts []any
			for _, l := range protocol.Levels {
				ts = append(ts, obj{"level": string(l), "id": "x"})
			}
			notice(m, 0)["targets"] = ts
		}},
		{"request minimal", "feedback_request", "feedback_request.json", func(m obj) {
			for k := range m {
				if k != "kind" && k != "category" {
					delete(m, k)
				}
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			d, err := decoders[c.decoder].decode(mutate(t, c.file, c.f))
			if err != nil {
				t.Fatalf("decode: %v", err)
			}
			if d.encodeErr != nil {
				t.Fatalf("re-encode: %v", d.encodeErr)
			}
		})
	}
}

// TestEveryEnumAccepted decodes one message per enum value, so adding a
// value to the protocol without accepting it fails here.
func TestEveryEnumAccepted(t *testing.T) {
	for _, k := range protocol.FeedbackKinds {
		for _, c := range protocol.FeedbackCategories {
			b := mutate(t, "feedback.json", func(m obj) { body(m)["kind"] = string(k); body(m)["category"] = string(c) })
			if _, _, err := protocol.DecodeFeedback(b); err != nil {
				t.Errorf("kind %s category %s: %v", k, c, err)
			}
		}
	}
	for _, c := range protocol.NoticeCategories {
		for _, p := range protocol.Priorities {
			b := mutate(t, "desired.json", func(m obj) { notice(m, 0)["category"] = string(c); notice(m, 0)["priority"] = string(p) })
			if _, _, err := protocol.DecodeDesired(b); err != nil {
				t.Errorf("notice category %s priority %s: %v", c, p, err)
			}
		}
	}
}
