package link_test

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/agent/link"
	"github.com/shequ/shequ/protocol"
)

// held returns the desired version held and the outbox depth.
func (f *fixture) held(t *testing.T) (int64, int) {
	t.Helper()
	v, err := f.st.DesiredVersion()
	if err != nil {
		t.Fatal(err)
	}
	return v, f.depth(t)
}

// tamper changes the notice title inside a signed desired message's body,
// keeping the signature.
func tamper(t *testing.T, data []byte) []byte {
	t.Helper()
	var env map[string]json.RawMessage
	if err := json.Unmarshal(data, &env); err != nil {
		t.Fatal(err)
	}
	body := bytes.Replace(env["body"], []byte(`"version":`), []byte(`"version":1`), 1)
	if bytes.Equal(body, env["body"]) {
		t.Fatal("nothing to tamper with")
	}
	env["body"] = body
	out, err := json.Marshal(env)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// chainOf returns a key chain of keys, each handed over from the one before.
func chainOf(keys ...ed25519.PrivateKey) protocol.KeyChain {
	pub := func(k ed25519.PrivateKey) ed25519.PublicKey { return k.Public().(ed25519.PublicKey) }
	c := protocol.KeyChain{Links: []protocol.KeyLink{{Serial: 1, Key: protocol.EncodeKey(pub(keys[0])), KID: protocol.KeyID(pub(keys[0]))}}}
	for i, k := range keys[1:] {
		c.Links = append(c.Links, protocol.NewKeyLink(int64(i+2), pub(k), keys[i]))
	}
	return c
}

// TestDownlinkAttacks: whatever arrives on the kiosk's downlink topics that
// the hub's trusted key did not sign (or that replays an older state) is
// never stored or shown, is logged as refused, and leaves the link working
// with its outbox intact.
func TestDownlinkAttacks(t *testing.T) {
	own := func(ch string) string { return protocol.DownTopic(kiosk, ch).String() }
	root := protocol.DownTopic(groups[0], protocol.ChannelKeys).String()
	tests := []struct {
		name    string
		attack  func(t *testing.T, f *fixture) // publishes the attack
		refused int                            // refusal log lines expected
		reason  string                         // in the first refusal's reason
		msg     string                         // log message; default "downlink message refused"
	}{
		{"unsigned desired from the hub's topic", func(t *testing.T, f *fixture) {
			f.hub.PublishSigned(protocol.DownTopic(kiosk, protocol.ChannelDesired), protocol.TypeDesired, desired(t, kiosk, 50), nil)
		}, 1, "not signed", ""},
		{"notice injected by a non-hub client with another key", func(t *testing.T, f *fixture) {
			f.broker.Inject(t, own(protocol.ChannelDesired), hubtest.Sign(t, protocol.TypeDesired, desired(t, kiosk, 50), hubtest.NewKey(t)), true)
		}, 1, "unknown key", "unknown key"},
		{"notice injected unsigned by a non-hub client", func(t *testing.T, f *fixture) {
			f.broker.Inject(t, own(protocol.ChannelDesired), hubtest.Sign(t, protocol.TypeDesired, desired(t, kiosk, 50), nil), true)
		}, 1, "not signed", ""},
		{"tampered signature", func(t *testing.T, f *fixture) {
			f.broker.Inject(t, own(protocol.ChannelDesired), tamper(t, hubtest.Sign(t, protocol.TypeDesired, desired(t, kiosk, 5), f.hub.Key())), true)
		}, 1, "does not match", ""},
		{"signature claims the trusted kid", func(t *testing.T, f *fixture) {
			data := hubtest.Sign(t, protocol.TypeDesired, desired(t, kiosk, 50), hubtest.NewKey(t))
			var env protocol.Envelope
			if err := json.Unmarshal(data, &env); err != nil {
				t.Fatal(err)
			}
			data = bytes.Replace(data, []byte(env.KID), []byte(protocol.KeyID(f.hub.Key().Public().(ed25519.PublicKey))), 1)
			f.broker.Inject(t, own(protocol.ChannelDesired), data, true)
		}, 1, "does not match", ""},
		{"replayed older desired version", func(t *testing.T, f *fixture) {
			old := hubtest.Sign(t, protocol.TypeDesired, desired(t, kiosk, 3), f.hub.Key())
			f.broker.Inject(t, own(protocol.ChannelDesired), old, true)
		}, 1, "replay", ""},
		{"key chain not rooted in the trusted key", func(t *testing.T, f *fixture) {
			a1, a2 := hubtest.NewKey(t), hubtest.NewKey(t)
			f.broker.Inject(t, root, hubtest.Sign(t, protocol.TypeKeys, chainOf(a1, a2), a2), true)
			f.broker.Inject(t, own(protocol.ChannelDesired), hubtest.Sign(t, protocol.TypeDesired, desired(t, kiosk, 60), a2), true)
		}, 2, "not in the key chain", ""},
		{"key chain from the trusted key, envelope signed by another", func(t *testing.T, f *fixture) {
			a := hubtest.NewKey(t)
			f.broker.Inject(t, root, hubtest.Sign(t, protocol.TypeKeys, chainOf(f.hub.Key(), a), hubtest.NewKey(t)), true)
		}, 1, "signed by key", ""},
		{"key chain handing over without the trusted key's signature", func(t *testing.T, f *fixture) {
			a := hubtest.NewKey(t)
			c := chainOf(f.hub.Key(), a)
			c.Links[1] = protocol.NewKeyLink(2, a.Public().(ed25519.PublicKey), a) // self-signed handover
			f.broker.Inject(t, root, hubtest.Sign(t, protocol.TypeKeys, c, a), true)
		}, 1, "is not signed by key", ""},
		{"forged ack for the pending record", func(t *testing.T, f *fixture) {
			recs, err := f.st.Outbox("", 1)
			if err != nil || len(recs) != 1 {
				t.Fatalf("outbox %v, %v", recs, err)
			}
			f.broker.Inject(t, own(protocol.ChannelAck), hubtest.Sign(t, protocol.TypeAck, protocol.Ack{Ref: recs[0].ID, Status: protocol.AckStored}, hubtest.NewKey(t)), false)
			f.broker.Inject(t, own(protocol.ChannelAck), hubtest.Sign(t, protocol.TypeAck, protocol.Ack{Ref: recs[0].ID, Status: protocol.AckRejected, Reason: "x"}, nil), false)
		}, 2, "", ""},
		{"oversized payload on every subscribed topic", func(t *testing.T, f *fixture) {
			big := bytes.Repeat([]byte("x"), protocol.MaxEnvelopeSize+1)
			for _, top := range []string{own(protocol.ChannelDesired), own(protocol.ChannelAck), root, protocol.DownTopic(groups[3], protocol.ChannelDesired).String()} {
				f.broker.Inject(t, top, big, false)
			}
		}, 4, "", ""},
		{"malformed payload on every subscribed topic", func(t *testing.T, f *fixture) {
			for _, top := range []string{own(protocol.ChannelDesired), own(protocol.ChannelAck), root, protocol.DownTopic(groups[1], protocol.ChannelKeys).String()} {
				f.broker.Inject(t, top, []byte(`{"v":2,"id":`), false)
			}
		}, 4, "", ""},
		{"signed desired on a group topic", func(t *testing.T, f *fixture) {
			f.hub.PublishSigned(protocol.DownTopic(groups[2], protocol.ChannelDesired), protocol.TypeDesired, desired(t, kiosk, 70), f.hub.Key())
		}, 1, "unexpected channel", ""},
		{"signed desired for another kiosk", func(t *testing.T, f *fixture) {
			f.hub.Desired(kiosk, desired(t, "k-other", 70))
		}, 1, "k-other", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f := start(t, link.Config{ResendAfter: time.Hour})
			f.hub.Presence(kiosk, wait)
			f.hub.Desired(kiosk, desired(t, kiosk, 5))
			hubtest.Eventually(t, wait, "version 5 applied", func() bool { v, _ := f.held(t); return v == 5 })
			f.addFeedback(t)
			f.hub.Next(kiosk, protocol.ChannelFeedback, wait)
			tc.attack(t, f)
			msg := tc.msg
			if msg == "" {
				msg = "downlink message refused"
			}
			recs := f.logs.WaitFor(slog.LevelWarn, msg, 1, wait)
			hubtest.Eventually(t, wait, "every attack message logged", func() bool {
				return len(f.logs.Records(slog.LevelWarn, "refused"))+len(f.logs.Records(slog.LevelWarn, "unknown key")) >= tc.refused
			})
			if tc.reason != "" && !strings.Contains(recs[0].Attrs["reason"], tc.reason) {
				t.Errorf("first refusal %v, want reason containing %q", recs[0], tc.reason)
			}
			if v, d := f.held(t); v != 5 || d != 1 {
				t.Fatalf("after the attack: desired version %d, outbox depth %d; want 5 and 1", v, d)
			}
			if got := f.obs.appliedVersions(); !slices.Equal(got, []int64{5}) {
				t.Fatalf("applied versions %v, want [5]", got)
			}
			// The link still works: a real update is applied and the
			// pending record is acknowledged.
			f.hub.Desired(kiosk, desired(t, kiosk, 6))
			recs2, err := f.st.Outbox("", 1)
			if err != nil || len(recs2) != 1 {
				t.Fatal(recs2, err)
			}
			f.hub.Ack(kiosk, recs2[0].ID, protocol.AckStored, "")
			hubtest.Eventually(t, wait, "version 6 applied and outbox empty", func() bool { v, d := f.held(t); return v == 6 && d == 0 })
			if n := len(f.logs.Records(slog.LevelWarn, "refused")) + len(f.logs.Records(slog.LevelWarn, "unknown key")); n != tc.refused {
				t.Errorf("%d refusals logged, want %d: %v", n, tc.refused, f.logs.All())
			}
		})
	}
}

// TestKeyRotation: a chain from the trusted key is adopted and persisted;
// a desired state signed by the new key that arrived before the chain is
// applied once the chain arrives; the old key is refused afterwards.
func TestKeyRotation(t *testing.T) {
	f := start(t, link.Config{})
	f.hub.Presence(kiosk, wait)
	f.hub.PublishKeys(groups[0]) // the current chain: nothing to adopt
	f.hub.Desired(kiosk, desired(t, kiosk, 5))
	hubtest.Eventually(t, wait, "version 5 applied", func() bool { v, _ := f.held(t); return v == 5 })

	old := f.hub.Key()
	next := f.hub.Rotate()
	f.hub.Desired(kiosk, desired(t, kiosk, 6)) // signed by next, before the chain
	f.logs.WaitFor(slog.LevelWarn, "unknown key", 1, wait)
	if v, _ := f.held(t); v != 5 {
		t.Fatalf("desired signed by a key not yet adopted applied: version %d", v)
	}
	f.hub.PublishKeys(groups[0])
	hubtest.Eventually(t, wait, "held version 6 applied after adoption", func() bool { v, _ := f.held(t); return v == 6 })
	id, _, err := f.st.Identity()
	if err != nil {
		t.Fatal(err)
	}
	if want := protocol.KeyID(next.Public().(ed25519.PublicKey)); id.HubKID != want || id.KeySerial != 2 {
		t.Fatalf("identity trusts %s serial %d, want %s serial 2", id.HubKID, id.KeySerial, want)
	}

	// The old key is retired: a newer version signed with it is refused.
	f.hub.PublishSigned(protocol.DownTopic(kiosk, protocol.ChannelDesired), protocol.TypeDesired, desired(t, kiosk, 9), old)
	recs := f.logs.WaitFor(slog.LevelWarn, "downlink message refused", 1, wait)
	if !strings.Contains(recs[0].Attrs["reason"], "retired") {
		t.Fatalf("refusal %v, want retired key", recs[0])
	}
	f.hub.Desired(kiosk, desired(t, kiosk, 10))
	// The observer hears of a commit just after it; wait for it, then
	// check nothing else was applied on the way.
	hubtest.Eventually(t, wait, "version 10 applied and reported", func() bool {
		got := f.obs.appliedVersions()
		return len(got) > 0 && got[len(got)-1] == 10
	})
	if got := f.obs.appliedVersions(); !slices.Equal(got, []int64{5, 6, 10}) {
		t.Fatalf("applied versions %v, want [5 6 10]", got)
	}

}
