// Package totp is time-based one-time passwords (RFC 6238) over HMAC-based
// ones (RFC 4226), as authenticator apps make them: HMAC-SHA1, 6 digits,
// 30-second steps, the secret in unpadded base32 inside an otpauth:// URI.
//
// A code is accepted for the current step and one step either side (clock
// drift), and only for a step later than the last one accepted, so a code
// seen by someone else cannot be used again (Verify's last).
package totp

import (
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/base32"
	"encoding/binary"
	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"
)

// The parameters of the codes this package makes and checks.
const (
	Digits     = 6                // digits of a code
	Period     = 30 * time.Second // length of a step
	Skew       = 1                // steps accepted either side of the current one
	SecretSize = 20               // bytes of a generated secret (160 bits, RFC 4226 §4)
)

// Limits of what ParseSecret and ParseCode accept.
const (
	// MinSecret and MaxSecret bound a secret's decoded length in bytes.
	MinSecret = 16
	MaxSecret = 64
	// MaxInput bounds the text ParseSecret and ParseCode look at.
	MaxInput = 256
)

// Errors returned (wrapped) by the parsers.
var (
	// ErrBadSecret means a secret is not base32 of MinSecret-MaxSecret bytes.
	ErrBadSecret = errors.New("totp: malformed secret")
	// ErrBadCode means a code is not Digits decimal digits.
	ErrBadCode = errors.New("totp: malformed code")
)

var b32 = base32.StdEncoding.WithPadding(base32.NoPadding)

// NewSecret returns a random secret of SecretSize bytes.
func NewSecret() ([]byte, error) {
	b := make([]byte, SecretSize)
	if _, err := rand.Read(b); err != nil {
		return nil, fmt.Errorf("totp: new secret: %w", err)
	}
	return b, nil
}

// EncodeSecret returns the secret in unpadded base32, as the otpauth URI
// carries it.
func EncodeSecret(secret []byte) string { return b32.EncodeToString(secret) }

// GroupSecret returns the secret in base32 in groups of four characters,
// for typing into an app by hand.
func GroupSecret(secret []byte) string {
	s := EncodeSecret(secret)
	var b strings.Builder
	for i := 0; i < len(s); i += 4 {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(s[i:min(i+4, len(s))])
	}
	return b.String()
}

// ParseSecret decodes a base32 secret as people type it: upper or lower
// case, with spaces, hyphens or '=' padding anywhere.
func ParseSecret(s string) ([]byte, error) {
	if len(s) > MaxInput {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrBadSecret, len(s), MaxInput)
	}
	clean := strings.Map(func(r rune) rune {
		switch {
		case r == ' ' || r == '-' || r == '=':
			return -1
		case r >= 'a' && r <= 'z':
			return r - 'a' + 'A'
		}
		return r
	}, s)
	b, err := b32.DecodeString(clean)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSecret, err)
	}
	if len(b) < MinSecret || len(b) > MaxSecret {
		return nil, fmt.Errorf("%w: %d bytes, want %d-%d", ErrBadSecret, len(b), MinSecret, MaxSecret)
	}
	return b, nil
}

// ParseCode returns the Digits-digit code in s, which may carry spaces
// (apps show "123 456").
func ParseCode(s string) (string, error) {
	if len(s) > MaxInput {
		return "", fmt.Errorf("%w: %d bytes, limit %d", ErrBadCode, len(s), MaxInput)
	}
	clean := strings.ReplaceAll(strings.TrimSpace(s), " ", "")
	if len(clean) != Digits {
		return "", fmt.Errorf("%w: want %d digits", ErrBadCode, Digits)
	}
	for i := 0; i < len(clean); i++ {
		if clean[i] < '0' || clean[i] > '9' {
			return "", fmt.Errorf("%w: want %d digits", ErrBadCode, Digits)
		}
	}
	return clean, nil
}

// HOTP returns the RFC 4226 code of the secret at the counter, digits
// long (1-9), with HMAC-SHA1.
func HOTP(secret []byte, counter uint64, digits int) string {
	m := hmac.New(sha1.New, secret)
	var c [8]byte
	binary.BigEndian.PutUint64(c[:], counter)
	m.Write(c[:])
	sum := m.Sum(nil)
	off := sum[len(sum)-1] & 0x0f
	bin := binary.BigEndian.Uint32(sum[off:off+4]) & 0x7fffffff
	mod := uint32(1)
	for range digits {
		mod *= 10
	}
	return fmt.Sprintf("%0*d", digits, bin%mod)
}

// Step returns the RFC 6238 time step of t (T0 = 0, X = Period).
func Step(t time.Time) int64 { return t.Unix() / int64(Period/time.Second) }

// Code returns the Digits-digit code of the secret at t.
func Code(secret []byte, t time.Time) string { return HOTP(secret, uint64(Step(t)), Digits) }

// Verify checks code against the secret at now: it matches the step of now
// or one within Skew of it, and that step is after last, the last step
// accepted before (0 for none). It returns the step matched, which the
// caller stores as the new last. The comparisons take the same time
// whichever step matches.
func Verify(secret []byte, code string, now time.Time, last int64) (int64, bool) {
	cur := Step(now)
	var step int64
	found := false
	for d := int64(-Skew); d <= Skew; d++ {
		s := cur + d
		if s < 0 {
			continue
		}
		eq := subtle.ConstantTimeCompare([]byte(HOTP(secret, uint64(s), Digits)), []byte(code)) == 1
		if eq && s > last && !found {
			step, found = s, true
		}
	}
	return step, found
}

// URI returns the otpauth:// URI an authenticator app reads from a QR
// code: otpauth://totp/{issuer}:{account}?secret=…&issuer={issuer}, with
// the algorithm, digits and period spelled out.
func URI(issuer, account string, secret []byte) string {
	return fmt.Sprintf("otpauth://totp/%s:%s?secret=%s&issuer=%s&algorithm=SHA1&digits=%d&period=%d",
		url.PathEscape(issuer), url.PathEscape(account), EncodeSecret(secret), url.QueryEscape(issuer),
		Digits, int(Period/time.Second))
}
