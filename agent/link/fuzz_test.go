package link

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"testing"

	"github.com/shequ/shequ/protocol"
)

// FuzzVerify feeds arbitrary payloads on each downlink topic to the
// verifier: it never panics, and whatever it accepts verifies with the
// trusted key (desired, ack) or advances the chain from it (keys).
func FuzzVerify(f *testing.F) {
	seeds, err := filepath.Glob("../../protocol/testdata/*.json")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		for ch := range 3 {
			f.Add(uint8(ch), b)
		}
	}
	f.Add(uint8(0), []byte(`{"v":2}`))
	// The key that signed the golden key chain's first link: a chain from it
	// must advance.
	first, err := protocol.DecodeKey("Z+/ayBGGGfjoMjrxBRDVWVecbxwKp0ex/q7WGJdxm3I=")
	if err != nil {
		f.Fatal(err)
	}
	topics := []string{
		protocol.DownTopic("k-sangcheng-01", protocol.ChannelDesired).String(),
		protocol.DownTopic("k-sangcheng-01", protocol.ChannelAck).String(),
		protocol.DownTopic("shanghai", protocol.ChannelKeys).String(),
	}
	f.Fuzz(func(t *testing.T, ch uint8, payload []byte) {
		v := newVerifier("k-sangcheng-01", []string{"shanghai", "sangcheng"}, first, 1)
		m, err := v.check(topics[int(ch)%len(topics)], payload)
		if err != nil {
			return
		}
		switch m.typ {
		case protocol.TypeDesired, protocol.TypeAck:
			if err := protocol.VerifyEnvelope(m.env, first); err != nil {
				t.Fatalf("accepted %s that does not verify: %v", m.typ, err)
			}
		case protocol.TypeKeys:
			if len(m.next) != ed25519.PublicKeySize || protocol.VerifyEnvelope(m.env, m.next) != nil {
				t.Fatal("accepted a key chain whose envelope is not signed by its newest key")
			}
		default:
			t.Fatalf("accepted unknown type %q", m.typ)
		}
	})
}
