package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// decoder decodes one message type and re-encodes what it accepted, so the
// golden, invalid-input and fuzz tests share one table of decoders.
type decoder struct {
	decode func(data []byte) (decoded, error)
}

// decoded is what a decoder accepted.
type decoded struct {
	canonical []byte // JSON of the decoded value (envelope without body, plus body)
	reencoded []byte // the value encoded again with the package's encoder
	encodeErr error  // why the value could not be encoded again
}

// envelopeDecoder adapts a typed envelope decoder.
func envelopeDecoder[T any](dec func([]byte) (protocol.Envelope, T, error)) decoder {
	return decoder{decode: func(data []byte) (decoded, error) {
		e, body, err := dec(data)
		if err != nil {
			return decoded{}, err
		}
		var d decoded
		if e.Sig != "" {
			// Signatures are deterministic: re-signing with the key that
			// signed the golden files reproduces them byte for byte.
			d.reencoded, d.encodeErr = protocol.EncodeSigned(e.ID, e.Type, e.TS, body, testKey(1))
		} else {
			d.reencoded, d.encodeErr = protocol.EncodeID(e.ID, e.Type, e.TS, body)
		}
		// The canonical form says whether the message was signed, not by
		// what: re-encoding re-signs with the test key.
		d.canonical, err = json.Marshal(struct {
			V      int
			ID     string
			Type   string
			TS     time.Time
			Body   T
			Signed bool
		}{e.V, e.ID, e.Type, e.TS.UTC(), body, e.Sig != ""})
		if err != nil {
			d.encodeErr = errors.Join(d.encodeErr, fmt.Errorf("canonical form: %w", err))
		}
		return d, nil
	}}
}

var decoders = map[string]decoder{
	"feedback":      envelopeDecoder(protocol.DecodeFeedback),
	"presence":      envelopeDecoder(protocol.DecodePresence),
	"heartbeat":     envelopeDecoder(protocol.DecodeHeartbeat),
	"ack":           envelopeDecoder(protocol.DecodeAck),
	"desired":       envelopeDecoder(protocol.DecodeDesired),
	"keys":          envelopeDecoder(protocol.DecodeKeys),
	"media":         envelopeDecoder(protocol.DecodeMediaRequest),
	"manifest":      envelopeDecoder(protocol.DecodeManifest),
	"chunk":         envelopeDecoder(protocol.DecodeChunk),
	"plays":         envelopeDecoder(protocol.DecodePlays),
	"cases":         envelopeDecoder(protocol.DecodeCaseBoard),
	"rating":        envelopeDecoder(protocol.DecodeRating),
	"update":        envelopeDecoder(protocol.DecodeUpdate),
	"update_offer":  envelopeDecoder(protocol.DecodeUpdateOffer),
	"update_status": envelopeDecoder(protocol.DecodeUpdateStatus),
	"command":       envelopeDecoder(protocol.DecodeCommand),
	"result":        envelopeDecoder(protocol.DecodeResult),
	"local_command_reply": {decode: func(data []byte) (decoded, error) {
		return plainDecoded(protocol.DecodeLocalCommandReply(data))
	}},
	"local_rating_request": {decode: func(data []byte) (decoded, error) {
		return plainDecoded(protocol.DecodeLocalRatingRequest(data))
	}},
	"play_event": {decode: func(data []byte) (decoded, error) {
		return plainDecoded(protocol.DecodePlayEvent(data))
	}},
	"media_error": {decode: func(data []byte) (decoded, error) {
		return plainDecoded(protocol.DecodeMediaError(data))
	}},
	"enrol_request": {decode: func(data []byte) (decoded, error) {
		return plainDecoded(protocol.DecodeEnrolRequest(data))
	}},
	"enrol_response": {decode: func(data []byte) (decoded, error) {
		return plainDecoded(protocol.DecodeEnrolResponse(data))
	}},
	"local_enrol_request": {decode: func(data []byte) (decoded, error) {
		return plainDecoded(protocol.DecodeLocalEnrolRequest(data))
	}},
	"feedback_request": {decode: func(data []byte) (decoded, error) {
		r, err := protocol.DecodeFeedbackRequest(data)
		if err != nil {
			return decoded{}, err
		}
		var d decoded
		d.reencoded, d.encodeErr = json.Marshal(r)
		d.canonical = d.reencoded
		return d, nil
	}},
}

// goldens maps each golden file to the decoder that must accept it.
var goldens = []struct {
	file    string
	decoder string
}{
	{"feedback.json", "feedback"},
	{"presence_online.json", "presence"},
	{"presence_offline.json", "presence"},
	{"heartbeat.json", "heartbeat"},
	{"desired.json", "desired"},
	{"ack_stored.json", "ack"},
	{"ack_duplicate.json", "ack"},
	{"ack_rejected.json", "ack"},
	{"feedback_request.json", "feedback_request"},
	{"keys.json", "keys"},
	{"enrol_request.json", "enrol_request"},
	{"enrol_response.json", "enrol_response"},
	{"local_enrol_request.json", "local_enrol_request"},
	{"desired_media.json", "desired"},
	{"manifest.json", "manifest"},
	{"media_request.json", "media"},
	{"chunk.json", "chunk"},
	{"plays.json", "plays"},
	{"play_event.json", "play_event"},
	{"media_error.json", "media_error"},
	{"cases.json", "cases"},
	{"rating.json", "rating"},
	{"local_rating_request.json", "local_rating_request"},
	{"update_offer.json", "update_offer"},
	{"update_status.json", "update_status"},
	{"update.json", "update"},
	{"command.json", "command"},
	{"result_refused.json", "result"},
	{"result_screenshot.json", "result"},
	{"local_command_reply.json", "local_command_reply"},
}

// plainDecoded adapts a decoder of a plain JSON body (no envelope).
func plainDecoded[T any](v T, err error) (decoded, error) {
	if err != nil {
		return decoded{}, err
	}
	var d decoded
	d.reencoded, d.encodeErr = json.Marshal(v)
	d.canonical = d.reencoded
	return d, nil
}

func readFile(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatalf("read golden file: %v", err)
	}
	return b
}

// sameJSON reports whether a and b hold the same JSON value.
func sameJSON(t testing.TB, a, b []byte) bool {
	t.Helper()
	var va, vb any
	if err := json.Unmarshal(a, &va); err != nil {
		t.Fatalf("unmarshal %s: %v", a, err)
	}
	if err := json.Unmarshal(b, &vb); err != nil {
		t.Fatalf("unmarshal %s: %v", b, err)
	}
	return reflect.DeepEqual(va, vb)
}

func TestGoldenRoundTrip(t *testing.T) {
	for _, g := range goldens {
		t.Run(g.file, func(t *testing.T) {
			in := readFile(t, g.file)
			d, err := decoders[g.decoder].decode(in)
			if err != nil {
				t.Fatalf("decode %s: %v", g.file, err)
			}
			if d.encodeErr != nil {
				t.Fatalf("re-encode %s: %v", g.file, d.encodeErr)
			}
			out := d.reencoded
			if !sameJSON(t, in, out) {
				t.Errorf("re-encoded JSON differs from golden file\n got: %s\nwant: %s", out, in)
			}
		})
	}
}

// TestGoldenValues pins a few decoded values, so a golden file that decodes
// into the wrong fields (or a silently renamed JSON tag) fails loudly.
func TestGoldenValues(t *testing.T) {
	_, fb, err := protocol.DecodeFeedback(readFile(t, "feedback.json"))
	if err != nil {
		t.Fatal(err)
	}
	if fb.Ticket != "SC-20261126-0042" || fb.Kind != protocol.KindComplaint ||
		fb.Category != protocol.CatIllegalConstruction || fb.Where.Room != "502室" {
		t.Errorf("feedback decoded to %+v", fb)
	}

	e, ds, err := protocol.DecodeDesired(readFile(t, "desired.json"))
	if err != nil {
		t.Fatal(err)
	}
	if e.Type != protocol.TypeDesired || ds.Version != 17 || len(ds.Notices) != 2 || ds.Station.CommunityName != "桑城居委" {
		t.Errorf("desired decoded to %+v", ds)
	}
	if !ds.Notices[1].ValidUntil.IsZero() {
		t.Errorf("notice without valid_until decoded with %v", ds.Notices[1].ValidUntil)
	}
	if now := ds.Notices[0].ValidFrom.AddDate(0, 1, 0); !ds.Notices[0].Active(now) || ds.Notices[0].Active(ds.Notices[0].ValidUntil) {
		t.Errorf("notice %s: Active is wrong around its validity window", ds.Notices[0].ID)
	}

	for _, c := range []struct {
		file  string
		state protocol.PresenceState
	}{{"presence_online.json", protocol.Online}, {"presence_offline.json", protocol.Offline}} {
		_, p, err := protocol.DecodePresence(readFile(t, c.file))
		if err != nil {
			t.Fatal(err)
		}
		if p.State != c.state || p.Epoch != 1795654800000 {
			t.Errorf("%s decoded to %+v", c.file, p)
		}
	}
}

// TestInvalidFiles decodes every file under testdata/invalid. A file is named
// DECODER-SENTINEL-CASE.json and must fail with that sentinel.
func TestInvalidFiles(t *testing.T) {
	sentinels := map[string]error{
		"too_large": protocol.ErrTooLarge,
		"version":   protocol.ErrVersion,
		"type":      protocol.ErrType,
		"malformed": protocol.ErrMalformed,
		"invalid":   protocol.ErrInvalid,
	}
	files, err := filepath.Glob(filepath.Join("testdata", "invalid", "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 20 {
		t.Fatalf("found %d invalid examples, want at least 20", len(files))
	}
	for _, f := range files {
		name := strings.TrimSuffix(filepath.Base(f), ".json")
		t.Run(name, func(t *testing.T) {
			parts := strings.SplitN(name, "-", 3)
			if len(parts) != 3 {
				t.Fatalf("file name %q is not DECODER-SENTINEL-CASE", name)
			}
			dec, ok := decoders[parts[0]]
			if !ok {
				t.Fatalf("no decoder %q", parts[0])
			}
			want, ok := sentinels[parts[1]]
			if !ok {
				t.Fatalf("no sentinel %q", parts[1])
			}
			in, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			_, err = dec.decode(in)
			if !errors.Is(err, want) {
				t.Fatalf("decode = %v, want an error wrapping %v", err, want)
			}
		})
	}
}

// TestEncodeLimit checks that Encode refuses what the decoder would refuse.
func TestEncodeLimit(t *testing.T) {
	big := protocol.Ack{Ref: protocol.NewID(), Status: protocol.AckRejected, Reason: strings.Repeat("因", 1000)}
	if _, err := protocol.Encode(protocol.TypeAck, fixedTime, big); !errors.Is(err, protocol.ErrTooLarge) {
		t.Fatalf("Encode oversized ack: err = %v, want ErrTooLarge", err)
	}
	// The longest valid ack, with every character escaped on the wire,
	// still fits its limit.
	worst := protocol.Ack{Ref: strings.Repeat("&", 64), Status: protocol.AckDuplicate, Reason: strings.Repeat("\u2028", protocol.MaxReason)}
	if err := worst.Validate(); err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.Encode(protocol.TypeAck, fixedTime, worst); err != nil {
		t.Fatalf("Encode longest valid ack: %v", err)
	}
	ok := protocol.Ack{Ref: protocol.NewID(), Status: protocol.AckStored}
	b, err := protocol.Encode(protocol.TypeAck, fixedTime, ok)
	if err != nil {
		t.Fatal(err)
	}
	e, got, err := protocol.DecodeAck(b)
	if err != nil {
		t.Fatalf("decode what Encode produced: %v", err)
	}
	if got != ok || !e.TS.Equal(fixedTime) || e.V != protocol.Version {
		t.Errorf("round trip: got %+v at %v, want %+v at %v", got, e.TS, ok, fixedTime)
	}
	if !bytes.Contains(b, []byte(`"v":3`)) {
		t.Errorf("encoded envelope lacks the version: %s", b)
	}
}

func TestNewIDIsUniqueUUIDv7(t *testing.T) {
	seen := map[string]bool{}
	for range 1000 {
		id := protocol.NewID()
		if len(id) != 36 || id[14] != '7' {
			t.Fatalf("NewID() = %q, want a UUIDv7 string", id)
		}
		if seen[id] {
			t.Fatalf("NewID() repeated %q", id)
		}
		seen[id] = true
	}
}
