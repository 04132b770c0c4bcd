package protocol

import (
	"crypto/ed25519"
	"encoding/base64"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Check-in codes. An officer proves presence at a community workstation by
// scanning the QR code its kiosk shows. The code is a URL of the hub's
// officer pages carrying the kiosk id, the current time slot and the
// kiosk's ed25519 signature (with its device key) over both; it changes
// every CheckinPeriod. The hub verifies the signature with the public key
// the kiosk enrolled with and accepts only a recent slot, so a photo of the
// code is useless a few minutes later.
//
//	{hub}/m/checkin?k={kiosk}&s={slot}&sig={base64url(ed25519 signature)}
//
// The signed message is CheckinMessage(kiosk, slot).

// CheckinPeriod is how long one check-in slot lasts.
const CheckinPeriod = time.Minute

// CheckinPath is the path of the hub's check-in page.
const CheckinPath = "/m/checkin"

// Check-in freshness: VerifyCheckin accepts the slots from
// CheckinMaxAge slots before now up to CheckinMaxSkew slots after it.
const (
	CheckinMaxAge  = 2
	CheckinMaxSkew = 1
)

// maxSlotDigits bounds the slot parameter (an int64 has at most 19 digits).
const maxSlotDigits = 19

// CheckinSlot returns the check-in slot of t: Unix seconds / 60.
func CheckinSlot(t time.Time) int64 {
	return t.Unix() / int64(CheckinPeriod/time.Second)
}

// CheckinSlotEnd returns when a slot ends (when the kiosk shows the next).
func CheckinSlotEnd(slot int64) time.Time {
	return time.Unix((slot+1)*int64(CheckinPeriod/time.Second), 0).UTC()
}

// CheckinMessage is what a kiosk signs for a slot: domain-separated so the
// signature can be mistaken for nothing else the device key signs.
func CheckinMessage(kiosk string, slot int64) []byte {
	return []byte("shequ-checkin-v1\n" + kiosk + "\n" + strconv.FormatInt(slot, 10))
}

// SignCheckin signs a slot with a kiosk's device key.
func SignCheckin(key ed25519.PrivateKey, kiosk string, slot int64) []byte {
	return ed25519.Sign(key, CheckinMessage(kiosk, slot))
}

// CheckinURL returns the URL a kiosk shows as its check-in QR code.
func CheckinURL(hubURL, kiosk string, slot int64, sig []byte) string {
	q := url.Values{}
	q.Set("k", kiosk)
	q.Set("s", strconv.FormatInt(slot, 10))
	q.Set("sig", base64.RawURLEncoding.EncodeToString(sig))
	// Encode sorts by key: k, s, sig.
	return strings.TrimRight(hubURL, "/") + CheckinPath + "?" + q.Encode()
}

// ParseCheckin strictly parses the query of a check-in URL: exactly the
// parameters k, s and sig, each once; k a valid kiosk id, s a positive
// decimal slot without sign or leading zeros, sig the base64url (unpadded)
// of a 64-byte signature. Errors wrap ErrInvalid.
func ParseCheckin(q url.Values) (kiosk string, slot int64, sig []byte, err error) {
	for k := range q {
		if k != "k" && k != "s" && k != "sig" {
			return "", 0, nil, fmt.Errorf("%w: check-in: unknown parameter %q", ErrInvalid, k)
		}
	}
	one := func(name string) (string, error) {
		v := q[name]
		if len(v) != 1 {
			return "", fmt.Errorf("%w: check-in: parameter %s appears %d times, want once", ErrInvalid, name, len(v))
		}
		return v[0], nil
	}
	k, err := one("k")
	if err != nil {
		return "", 0, nil, err
	}
	if err := ValidID(k); err != nil {
		return "", 0, nil, fmt.Errorf("check-in: kiosk: %w", err)
	}
	s, err := one("s")
	if err != nil {
		return "", 0, nil, err
	}
	if s == "" || len(s) > maxSlotDigits || !allDigits(s) || s[0] == '0' {
		return "", 0, nil, fmt.Errorf("%w: check-in: slot %.20q is not a positive decimal", ErrInvalid, s)
	}
	slot, err = strconv.ParseInt(s, 10, 64)
	if err != nil {
		return "", 0, nil, fmt.Errorf("%w: check-in: slot %q: %v", ErrInvalid, s, err)
	}
	g, err := one("sig")
	if err != nil {
		return "", 0, nil, err
	}
	if len(g) != base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize) {
		return "", 0, nil, fmt.Errorf("%w: check-in: sig has %d characters, want %d", ErrInvalid, len(g), base64.RawURLEncoding.EncodedLen(ed25519.SignatureSize))
	}
	sig, err = base64.RawURLEncoding.Strict().DecodeString(g)
	if err != nil || len(sig) != ed25519.SignatureSize {
		return "", 0, nil, fmt.Errorf("%w: check-in: sig is not base64url of %d bytes", ErrInvalid, ed25519.SignatureSize)
	}
	return k, slot, sig, nil
}

// VerifyCheckin checks a check-in code at time now: the signature must be
// the kiosk's (pub, its enrolled device key) over CheckinMessage (else an
// error wrapping ErrSignature), and the slot within CheckinMaxAge slots
// before now's slot and CheckinMaxSkew after it (else ErrExpired). The
// signature is checked first, so ErrExpired means a genuine but stale code.
func VerifyCheckin(pub ed25519.PublicKey, kiosk string, slot int64, sig []byte, now time.Time) error {
	if len(pub) != ed25519.PublicKeySize {
		return fmt.Errorf("%w: check-in: no key for kiosk %s", ErrSignature, kiosk)
	}
	if len(sig) != ed25519.SignatureSize || !ed25519.Verify(pub, CheckinMessage(kiosk, slot), sig) {
		return fmt.Errorf("%w: check-in code of kiosk %s slot %d", ErrSignature, kiosk, slot)
	}
	cur := CheckinSlot(now)
	if slot < cur-CheckinMaxAge || slot > cur+CheckinMaxSkew {
		return fmt.Errorf("%w: kiosk %s slot %d, now slot %d (accepted %d..%d)", ErrExpired, kiosk, slot, cur, cur-CheckinMaxAge, cur+CheckinMaxSkew)
	}
	return nil
}
