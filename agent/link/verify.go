package link

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"slices"

	"github.com/shequ/shequ/protocol"
)

// errUnknownKey marks a message signed by a key that is neither the
// trusted key nor one it replaced: perhaps the hub's next key, whose chain
// has not arrived yet.
var errUnknownKey = errors.New("signed by an unknown key")

// verifier holds what the link trusts and checks every downlink message
// against it before anything else is done with the message. It is used by
// the session goroutine only.
type verifier struct {
	kiosk   string
	nodes   []string // the kiosk, then its groups
	root    string   // the node whose down topic carries the key chain
	key     ed25519.PublicKey
	kid     string
	serial  int64
	retired map[string]bool // kids of keys the trusted key replaced
}

func newVerifier(kiosk string, groups []string, key ed25519.PublicKey, serial int64) *verifier {
	root := kiosk
	if len(groups) > 0 {
		root = groups[0]
	}
	return &verifier{
		kiosk:   kiosk,
		nodes:   append([]string{kiosk}, groups...),
		root:    root,
		key:     key,
		kid:     protocol.KeyID(key),
		serial:  serial,
		retired: map[string]bool{},
	}
}

// message is a downlink message that passed verification.
type message struct {
	env  protocol.Envelope
	typ  string
	doc  protocol.DesiredState // TypeDesired
	brd  protocol.CaseBoard    // TypeCases
	ack  protocol.Ack          // TypeAck
	man  protocol.Manifest     // TypeManifest
	chk  protocol.Chunk        // TypeChunk
	off  protocol.UpdateOffer  // TypeUpdateOffer
	cmd  protocol.Command      // TypeCommand
	next ed25519.PublicKey     // TypeKeys: newest key of the chain
	ser  int64                 // TypeKeys: its serial
	kids []string              // TypeKeys: kids of the chain up to next
}

// check decodes and verifies one downlink message received on topic. It
// returns the envelope (as far as it decoded) with any error, so refusals
// can be logged by message id. A desired document or case board signed by
// an unknown key is returned with an error wrapping errUnknownKey.
func (v *verifier) check(topic string, payload []byte) (message, error) {
	var m message
	top, err := protocol.ParseTopic(topic)
	if err != nil {
		return m, err
	}
	if top.Dir != protocol.Down || !slices.Contains(v.nodes, top.Kiosk) {
		return m, fmt.Errorf("%w: %s is not one of this kiosk's downlink topics", protocol.ErrTopic, topic)
	}
	own := top.Kiosk == v.kiosk
	switch {
	case top.Channel == protocol.ChannelDesired && own:
		m.typ = protocol.TypeDesired
		if m.env, m.doc, err = protocol.DecodeDesired(payload); err != nil {
			return m, err
		}
		if err := v.verify(m.env); err != nil {
			return m, err
		}
		if m.doc.Kiosk != v.kiosk {
			return m, fmt.Errorf("%w: desired state for kiosk %q", protocol.ErrInvalid, m.doc.Kiosk)
		}
		return m, nil
	case top.Channel == protocol.ChannelCases && own:
		m.typ = protocol.TypeCases
		if m.env, m.brd, err = protocol.DecodeCaseBoard(payload); err != nil {
			return m, err
		}
		if err := v.verify(m.env); err != nil {
			return m, err
		}
		if m.brd.Kiosk != v.kiosk {
			return m, fmt.Errorf("%w: case board for kiosk %q", protocol.ErrInvalid, m.brd.Kiosk)
		}
		return m, nil
	case top.Channel == protocol.ChannelRelease && own:
		m.typ = protocol.TypeUpdateOffer
		if m.env, m.off, err = protocol.DecodeUpdateOffer(payload); err != nil {
			return m, err
		}
		if err := v.verify(m.env); err != nil {
			return m, err
		}
		if m.off.Kiosk != v.kiosk {
			return m, fmt.Errorf("%w: update offer for kiosk %q", protocol.ErrInvalid, m.off.Kiosk)
		}
		return m, nil
	case top.Channel == protocol.ChannelAck && own:
		m.typ = protocol.TypeAck
		if m.env, m.ack, err = protocol.DecodeAck(payload); err != nil {
			return m, err
		}
		return m, v.verify(m.env)
	case top.Channel == protocol.ChannelManifest && own:
		m.typ = protocol.TypeManifest
		if m.env, m.man, err = protocol.DecodeManifest(payload); err != nil {
			return m, err
		}
		return m, v.verify(m.env)
	case top.Channel == protocol.ChannelCommand && own:
		m.typ = protocol.TypeCommand
		if m.env, m.cmd, err = protocol.DecodeCommand(payload); err != nil {
			return m, err
		}
		if err := v.verify(m.env); err != nil {
			return m, err
		}
		// The signature covers the body only: its id and kiosk, not the
		// envelope's, are what the command is known by.
		if m.cmd.Kiosk != v.kiosk {
			return m, fmt.Errorf("%w: command for kiosk %q", protocol.ErrInvalid, m.cmd.Kiosk)
		}
		if m.cmd.ID != m.env.ID {
			return m, fmt.Errorf("%w: command id %s is not its envelope's id %s", protocol.ErrInvalid, m.cmd.ID, m.env.ID)
		}
		return m, nil
	case top.Channel == protocol.ChannelChunk && own:
		// Chunks are not signed: the signed manifest covers their hashes,
		// checked by the media cache.
		m.typ = protocol.TypeChunk
		m.env, m.chk, err = protocol.DecodeChunk(payload)
		return m, err
	case top.Channel == protocol.ChannelKeys && top.Kiosk == v.root:
		m.typ = protocol.TypeKeys
		var chain protocol.KeyChain
		if m.env, chain, err = protocol.DecodeKeys(payload); err != nil {
			return m, err
		}
		if m.next, m.ser, err = chain.Advance(v.key); err != nil {
			return m, err
		}
		// The chain is only as good as its envelope: signed by its newest key.
		if err := protocol.VerifyEnvelope(m.env, m.next); err != nil {
			return m, err
		}
		for _, l := range chain.Links {
			m.kids = append(m.kids, l.KID)
		}
		return m, nil
	default:
		return m, fmt.Errorf("%w: unexpected channel %q on %s", protocol.ErrTopic, top.Channel, topic)
	}
}

// verify checks a signed envelope against the trusted key. A retained
// document (desired, cases) signed by a key not known yet wraps
// errUnknownKey.
func (v *verifier) verify(e protocol.Envelope) error {
	if e.KID != "" && e.KID != v.kid {
		if v.retired[e.KID] {
			return fmt.Errorf("%w: %s %s is signed by retired key %s", protocol.ErrSignature, e.Type, e.ID, e.KID)
		}
		if e.Type == protocol.TypeDesired || e.Type == protocol.TypeCases || e.Type == protocol.TypeUpdateOffer {
			return fmt.Errorf("%w: %w: %s %s (key %s, trusted %s)", protocol.ErrSignature, errUnknownKey, e.Type, e.ID, e.KID, v.kid)
		}
	}
	return protocol.VerifyEnvelope(e, v.key)
}

// adopt trusts the newest key of a verified chain and retires the ones
// before it.
func (v *verifier) adopt(m message) {
	for _, k := range m.kids {
		if k != protocol.KeyID(m.next) {
			v.retired[k] = true
		}
	}
	v.key, v.kid, v.serial = m.next, protocol.KeyID(m.next), m.ser
}
