package enrol

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/shequ/shequ/protocol"
)

// Claim code lifetimes.
const (
	DefaultTTL = 72 * time.Hour
	MinTTL     = 5 * time.Minute
	MaxTTL     = 30 * 24 * time.Hour
	// MaxClaimRequestSize bounds the body of POST /api/v1/claims.
	MaxClaimRequestSize = 1 << 10
)

// NewCode returns a fresh claim code: 12 uniformly random digits.
func NewCode() (string, error) {
	limit := new(big.Int).Exp(big.NewInt(10), big.NewInt(protocol.ClaimCodeDigits), nil)
	n, err := rand.Int(rand.Reader, limit)
	if err != nil {
		return "", fmt.Errorf("enrol: random claim code: %w", err)
	}
	return fmt.Sprintf("%0*d", protocol.ClaimCodeDigits, n), nil
}

// FormatCode groups a normalised code for people: "1234-5678-9012".
func FormatCode(code string) string {
	if len(code) != protocol.ClaimCodeDigits {
		return code
	}
	return code[:4] + "-" + code[4:8] + "-" + code[8:]
}

// HashCode returns the hex HMAC-SHA256 of a normalised code under secret:
// what the hub stores instead of the code.
func HashCode(secret []byte, code string) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(code)) // hash.Hash.Write never fails
	return hex.EncodeToString(m.Sum(nil))
}

// ClaimRequest is the body of POST /api/v1/claims.
type ClaimRequest struct {
	Community string `json:"community"`
	Kiosk     string `json:"kiosk,omitempty"` // optional: the one slot the code may fill (a replacement)
	TTL       string `json:"ttl,omitempty"`   // Go duration, e.g. "72h"; default DefaultTTL
}

// DecodeClaimRequest strictly decodes a claim request: at most
// MaxClaimRequestSize bytes, one JSON object, no unknown fields, ids valid,
// ttl a duration within MinTTL..MaxTTL. Whether the nodes exist is checked
// against the org tree by the handler.
func DecodeClaimRequest(data []byte) (ClaimRequest, time.Duration, error) {
	var r ClaimRequest
	if len(data) > MaxClaimRequestSize {
		return r, 0, fmt.Errorf("claim request is %d bytes, limit %d", len(data), MaxClaimRequestSize)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&r); err != nil {
		return r, 0, fmt.Errorf("claim request: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return r, 0, fmt.Errorf("claim request: trailing data after JSON object")
	}
	if err := protocol.ValidID(r.Community); err != nil {
		return r, 0, fmt.Errorf("claim request: community: %w", err)
	}
	if r.Kiosk != "" {
		if err := protocol.ValidID(r.Kiosk); err != nil {
			return r, 0, fmt.Errorf("claim request: kiosk: %w", err)
		}
	}
	ttl := DefaultTTL
	if r.TTL != "" {
		var err error
		if ttl, err = time.ParseDuration(r.TTL); err != nil {
			return r, 0, fmt.Errorf("claim request: ttl: %w", err)
		}
		if ttl < MinTTL || ttl > MaxTTL {
			return r, 0, fmt.Errorf("claim request: ttl must be between %v and %v, got %v", MinTTL, MaxTTL, ttl)
		}
	}
	return r, ttl, nil
}
