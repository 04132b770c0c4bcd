package protocol

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"
)

// MaxKeyLinks bounds the length of the hub's key chain.
const MaxKeyLinks = 64

// KeyID names an ed25519 public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// EncodeKey renders a public key for the wire (standard base64).
func EncodeKey(pub ed25519.PublicKey) string { return base64.StdEncoding.EncodeToString(pub) }

// DecodeKey parses a public key rendered by EncodeKey.
func DecodeKey(s string) (ed25519.PublicKey, error) {
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return nil, fmt.Errorf("%w: key is not a base64 ed25519 public key", ErrInvalid)
	}
	return ed25519.PublicKey(b), nil
}

// EncodeSigned is EncodeID for downlink messages: the body is signed with
// key, and the envelope carries the signature and the key's id.
func EncodeSigned(id, typ string, ts time.Time, body any, key ed25519.PrivateKey) ([]byte, error) {
	if !IsDownlink(typ) {
		return nil, fmt.Errorf("protocol: sign %s: only downlink messages are signed", typ)
	}
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s body: %w", typ, err)
	}
	pub, ok := key.Public().(ed25519.PublicKey)
	if !ok || len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("protocol: sign %s: not an ed25519 private key", typ)
	}
	env := Envelope{
		V: Version, ID: id, Type: typ, TS: ts.UTC(), Body: b,
		KID: KeyID(pub), Sig: base64.StdEncoding.EncodeToString(ed25519.Sign(key, b)),
	}
	out, err := json.Marshal(env)
	if err != nil {
		return nil, fmt.Errorf("protocol: encode %s envelope: %w", typ, err)
	}
	// json.Marshal keeps an already compact, escaped body byte for byte;
	// make sure, since the signature covers those exact bytes.
	if !bytes.Contains(out, b) {
		return nil, fmt.Errorf("protocol: encode %s: body changed while encoding the envelope", typ)
	}
	if lim := typeLimit[typ]; len(out) > lim {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, typ, len(out), lim)
	}
	return out, nil
}

// VerifyEnvelope checks that e is signed by pub over its exact body bytes.
func VerifyEnvelope(e Envelope, pub ed25519.PublicKey) error {
	if e.Sig == "" || e.KID == "" {
		return fmt.Errorf("%w: %s %s is not signed", ErrSignature, e.Type, e.ID)
	}
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: no trusted key to verify %s %s", ErrSignature, e.Type, e.ID)
	}
	if want := KeyID(pub); e.KID != want {
		return fmt.Errorf("%w: %s %s is signed by key %s, trusted key is %s", ErrSignature, e.Type, e.ID, e.KID, want)
	}
	sig, err := base64.StdEncoding.DecodeString(e.Sig)
	if err != nil || !ed25519.Verify(pub, e.Body, sig) {
		return fmt.Errorf("%w: %s %s: signature does not match the body", ErrSignature, e.Type, e.ID)
	}
	return nil
}

// checkSignatureShape checks kid and sig as a decoder can, without keys:
// uplink messages carry neither; downlink messages carry both, well formed,
// or neither (VerifyEnvelope then refuses them).
func checkSignatureShape(e Envelope) error {
	if !IsDownlink(e.Type) {
		if e.KID != "" || e.Sig != "" {
			return fmt.Errorf("%w: uplink %s must not carry kid or sig", ErrInvalid, e.Type)
		}
		return nil
	}
	if e.KID == "" && e.Sig == "" {
		return nil
	}
	if !validKID(e.KID) {
		return fmt.Errorf("%w: kid %q is not 16 hex digits", ErrInvalid, e.KID)
	}
	if sig, err := base64.StdEncoding.DecodeString(e.Sig); err != nil || len(sig) != ed25519.SignatureSize {
		return fmt.Errorf("%w: sig is not a base64 ed25519 signature", ErrInvalid)
	}
	return nil
}

func validKID(s string) bool {
	if len(s) != 16 {
		return false
	}
	for _, r := range s {
		if !(r >= '0' && r <= '9' || r >= 'a' && r <= 'f') {
			return false
		}
	}
	return true
}

// KeyLink is one key of the hub's signing key chain. Every link but the
// first is signed by the key of the link before it.
type KeyLink struct {
	Serial int64  `json:"serial"`        // 1 for the first key, then +1 per rotation
	Key    string `json:"key"`           // EncodeKey of the public key
	KID    string `json:"kid"`           // KeyID of the key
	Sig    string `json:"sig,omitempty"` // previous key's signature over KeyLinkMessage; empty on the first link
}

// KeyChain is the body of a keys message: every signing key the hub has
// used, oldest first. The envelope is signed by the newest key.
type KeyChain struct {
	Links []KeyLink `json:"links"`
}

// KeyLinkMessage is what a key signs to hand over to its successor.
func KeyLinkMessage(serial int64, next ed25519.PublicKey) []byte {
	msg := []byte("shequ key link v2\x00")
	msg = binary.BigEndian.AppendUint64(msg, uint64(serial))
	return append(msg, next...)
}

// NewKeyLink returns the link that hands over from prev to next.
func NewKeyLink(serial int64, next ed25519.PublicKey, prev ed25519.PrivateKey) KeyLink {
	l := KeyLink{Serial: serial, Key: EncodeKey(next), KID: KeyID(next)}
	if prev != nil {
		l.Sig = base64.StdEncoding.EncodeToString(ed25519.Sign(prev, KeyLinkMessage(serial, next)))
	}
	return l
}

// Validate checks the chain's shape (not its signatures; see Advance).
func (c KeyChain) Validate() error {
	if len(c.Links) == 0 || len(c.Links) > MaxKeyLinks {
		return fmt.Errorf("%w: key chain needs 1-%d links, has %d", ErrInvalid, MaxKeyLinks, len(c.Links))
	}
	for i, l := range c.Links {
		pub, err := DecodeKey(l.Key)
		if err != nil {
			return fmt.Errorf("links[%d]: %w", i, err)
		}
		if l.KID != KeyID(pub) {
			return fmt.Errorf("%w: links[%d]: kid %q does not name its key", ErrInvalid, i, l.KID)
		}
		if i > 0 && l.Serial != c.Links[i-1].Serial+1 {
			return fmt.Errorf("%w: links[%d]: serial %d does not follow %d", ErrInvalid, i, l.Serial, c.Links[i-1].Serial)
		}
		if l.Serial < 1 {
			return fmt.Errorf("%w: links[%d]: serial must be positive", ErrInvalid, i)
		}
		if l.Serial == 1 && l.Sig != "" {
			return fmt.Errorf("%w: links[%d]: the first key has no predecessor to sign it", ErrInvalid, i)
		}
		if l.Serial > 1 {
			if sig, err := base64.StdEncoding.DecodeString(l.Sig); err != nil || len(sig) != ed25519.SignatureSize {
				return fmt.Errorf("%w: links[%d]: sig is not a base64 ed25519 signature", ErrInvalid, i)
			}
		}
	}
	return nil
}

// Advance walks the chain from the trusted key to the newest key, checking
// that each handover is signed by the key before it, and returns the newest
// key and its serial. A chain that does not contain the trusted key, or
// whose handovers do not verify, is refused with ErrSignature.
func (c KeyChain) Advance(trusted ed25519.PublicKey) (ed25519.PublicKey, int64, error) {
	if err := c.Validate(); err != nil {
		return nil, 0, err
	}
	kid := KeyID(trusted)
	start := -1
	for i, l := range c.Links {
		if l.KID == kid && l.Key == EncodeKey(trusted) {
			start = i
			break
		}
	}
	if start < 0 {
		return nil, 0, fmt.Errorf("%w: the trusted key %s is not in the key chain", ErrSignature, kid)
	}
	cur := trusted
	for _, l := range c.Links[start+1:] {
		next, err := DecodeKey(l.Key)
		if err != nil {
			return nil, 0, err
		}
		sig, err := base64.StdEncoding.DecodeString(l.Sig)
		if err != nil || !ed25519.Verify(cur, KeyLinkMessage(l.Serial, next), sig) {
			return nil, 0, fmt.Errorf("%w: key %s (serial %d) is not signed by key %s", ErrSignature, l.KID, l.Serial, KeyID(cur))
		}
		cur = next
	}
	return cur, c.Links[len(c.Links)-1].Serial, nil
}
