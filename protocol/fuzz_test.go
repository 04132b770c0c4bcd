package protocol_test

import (
	"bytes"
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/shequ/shequ/protocol"
)

// addSeeds adds every golden and invalid example under testdata/ to the
// corpus, whatever its type: the other types' files are good seeds for type
// confusion.
func addSeeds(f *testing.F) {
	f.Helper()
	for _, pattern := range []string{"testdata/*.json", "testdata/invalid/*.json"} {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		if len(files) == 0 {
			f.Fatalf("no seed files match %s", pattern)
		}
		for _, name := range files {
			b, err := os.ReadFile(name)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
}

// fuzzDecoder checks that the decoder never panics and that whatever it
// accepts re-encodes into a message that decodes to the same value.
func fuzzDecoder(f *testing.F, name string) {
	addSeeds(f)
	dec := decoders[name]
	f.Fuzz(func(t *testing.T, data []byte) {
		first, err := dec.decode(data)
		if err != nil {
			return
		}
		if first.encodeErr != nil {
			t.Fatalf("accepted %q but cannot encode it again: %v", data, first.encodeErr)
		}
		second, err := dec.decode(first.reencoded)
		if err != nil {
			t.Fatalf("accepted %q but rejected its re-encoding %q: %v", data, first.reencoded, err)
		}
		if second.encodeErr != nil {
			t.Fatalf("re-encoding %q cannot be encoded again: %v", first.reencoded, second.encodeErr)
		}
		if !bytes.Equal(first.canonical, second.canonical) {
			t.Fatalf("value changed across re-encoding:\nfirst:  %s\nsecond: %s", first.canonical, second.canonical)
		}
		if !bytes.Equal(first.reencoded, second.reencoded) {
			t.Fatalf("encoding is not stable:\nfirst:  %s\nsecond: %s", first.reencoded, second.reencoded)
		}
	})
}

func FuzzDecodeFeedback(f *testing.F)        { fuzzDecoder(f, "feedback") }
func FuzzDecodePresence(f *testing.F)        { fuzzDecoder(f, "presence") }
func FuzzDecodeHeartbeat(f *testing.F)       { fuzzDecoder(f, "heartbeat") }
func FuzzDecodeAck(f *testing.F)             { fuzzDecoder(f, "ack") }
func FuzzDecodeDesired(f *testing.F)         { fuzzDecoder(f, "desired") }
func FuzzDecodeFeedbackRequest(f *testing.F) { fuzzDecoder(f, "feedback_request") }
func FuzzDecodeKeys(f *testing.F)            { fuzzDecoder(f, "keys") }
func FuzzDecodeEnrolRequest(f *testing.F)    { fuzzDecoder(f, "enrol_request") }
func FuzzDecodeEnrolResponse(f *testing.F)   { fuzzDecoder(f, "enrol_response") }
func FuzzDecodeLocalEnrol(f *testing.F)      { fuzzDecoder(f, "local_enrol_request") }
func FuzzDecodeMediaRequest(f *testing.F)    { fuzzDecoder(f, "media") }
func FuzzDecodeManifest(f *testing.F)        { fuzzDecoder(f, "manifest") }
func FuzzDecodeChunk(f *testing.F)           { fuzzDecoder(f, "chunk") }
func FuzzDecodePlays(f *testing.F)           { fuzzDecoder(f, "plays") }
func FuzzDecodePlayEvent(f *testing.F)       { fuzzDecoder(f, "play_event") }
func FuzzDecodeMediaError(f *testing.F)      { fuzzDecoder(f, "media_error") }
func FuzzDecodeCaseBoard(f *testing.F)       { fuzzDecoder(f, "cases") }
func FuzzDecodeRating(f *testing.F)          { fuzzDecoder(f, "rating") }
func FuzzDecodeLocalRating(f *testing.F)     { fuzzDecoder(f, "local_rating_request") }
func FuzzDecodeUpdate(f *testing.F)          { fuzzDecoder(f, "update") }
func FuzzDecodeUpdateOffer(f *testing.F)     { fuzzDecoder(f, "update_offer") }
func FuzzDecodeUpdateStatus(f *testing.F)    { fuzzDecoder(f, "update_status") }
func FuzzDecodeCommand(f *testing.F)         { fuzzDecoder(f, "command") }
func FuzzDecodeResult(f *testing.F)          { fuzzDecoder(f, "result") }
func FuzzDecodeLocalCommandReply(f *testing.F) {
	fuzzDecoder(f, "local_command_reply")
}

// FuzzVerify checks that verifying any accepted downlink message, and
// walking any accepted key chain, never panics and never accepts a message
// the test key did not sign.
func FuzzVerify(f *testing.F) {
	addSeeds(f)
	trusted := pub(testKey(1))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := protocol.DecodeEnvelope(data)
		if err != nil {
			return
		}
		if protocol.VerifyEnvelope(e, trusted) == nil && !protocol.IsDownlink(e.Type) {
			t.Fatalf("verified an uplink %s", e.Type)
		}
		if _, chain, err := protocol.DecodeKeys(data); err == nil {
			if k, _, err := chain.Advance(pub(testKey(0))); err == nil && len(k) != ed25519.PublicKeySize {
				t.Fatalf("Advance returned a %d-byte key", len(k))
			}
		}
	})
}

func FuzzParseTopic(f *testing.F) {
	for _, s := range []string{
		"shequ/v3/up/k-sangcheng-01/feedback",
		"shequ/v3/up/k-sangcheng-01/presence",
		"shequ/v3/up/k-sangcheng-01/heartbeat",
		"shequ/v3/down/k-sangcheng-01/desired",
		"shequ/v3/down/k-sangcheng-01/ack",
		"shequ/v3/up/+/feedback",
		"$share/hub/shequ/v3/up/+/feedback",
		"shequ/v3/down/k1/feedback",
		"shequ/v3//k1/ack",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		tp, err := protocol.ParseTopic(s)
		if err != nil {
			return
		}
		if tp.String() != s {
			t.Fatalf("ParseTopic(%q).String() = %q", s, tp.String())
		}
		again, err := protocol.ParseTopic(tp.String())
		if err != nil || again != tp {
			t.Fatalf("re-parse of %q = %+v, %v; want %+v", s, again, err, tp)
		}
		if err := protocol.ValidID(tp.Kiosk); err != nil {
			t.Fatalf("accepted topic %q with invalid kiosk id: %v", s, err)
		}
	})
}
