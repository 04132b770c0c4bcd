package protocol

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"net/url"
	"strings"
)

// Enrolment: a new kiosk has no secret. A technician gives it a one-time
// claim code; the agent generates its own ed25519 key pair and sends
//
//	POST /api/v1/enrol   EnrolRequest → 200 EnrolResponse
//
// to the hub over HTTPS. That endpoint needs no credentials and can do
// nothing else.
const (
	HubPathEnrol = "/api/v1/enrol"

	// ClaimCodeDigits is the length of a claim code, digits only.
	ClaimCodeDigits = 12

	MaxEnrolRequestSize  = 4 << 10
	MaxEnrolResponseSize = 64 << 10
	MaxHardwareID        = 128
)

// NormalizeClaimCode strips the spaces and dashes people type between the
// groups of a claim code ("1234-5678-9012" → "123456789012").
func NormalizeClaimCode(s string) string {
	return strings.Map(func(r rune) rune {
		if r == ' ' || r == '-' {
			return -1
		}
		return r
	}, s)
}

// ValidClaimCode checks a normalised claim code.
func ValidClaimCode(code string) error {
	if len(code) != ClaimCodeDigits {
		return fmt.Errorf("%w: claim code must have %d digits", ErrInvalid, ClaimCodeDigits)
	}
	for _, r := range code {
		if r < '0' || r > '9' {
			return fmt.Errorf("%w: claim code must contain digits only", ErrInvalid)
		}
	}
	return nil
}

// EnrolRequest is what a device sends to enrol.
type EnrolRequest struct {
	ClaimCode       string `json:"claim_code"`       // normalised, 12 digits
	PublicKey       string `json:"public_key"`       // EncodeKey of the device's ed25519 public key
	HardwareID      string `json:"hardware_id"`      // e.g. DMI product UUID or /etc/machine-id
	SoftwareVersion string `json:"software_version"` //
}

// Validate checks an enrolment request.
func (r EnrolRequest) Validate() error {
	if err := ValidClaimCode(r.ClaimCode); err != nil {
		return err
	}
	if _, err := DecodeKey(r.PublicKey); err != nil {
		return fmt.Errorf("public_key: %w", err)
	}
	if err := printable("hardware_id", r.HardwareID, MaxHardwareID); err != nil {
		return err
	}
	return text("software_version", r.SoftwareVersion, true, MaxVersionText)
}

// EnrolResponse is the hub's answer to an accepted enrolment.
type EnrolResponse struct {
	Kiosk        string   `json:"kiosk"`         // the kiosk slot the device now fills
	Groups       []string `json:"groups"`        // the kiosk's org-tree ancestors, root first
	BrokerURL    string   `json:"broker_url"`    // ssl://host:port (tcp:// only on a development hub)
	MQTTUsername string   `json:"mqtt_username"` // equals Kiosk
	MQTTPassword string   `json:"mqtt_password"` //
	HubKey       string   `json:"hub_key"`       // EncodeKey of the hub's current signing key
	HubKID       string   `json:"hub_kid"`       //
	KeySerial    int64    `json:"key_serial"`    // serial of HubKey in the key chain
	CACert       string   `json:"ca_cert"`       // PEM; the only CA the device trusts from now on
	TicketFloor  uint64   `json:"ticket_floor"`  // the device's ticket sequence starts at least here
}

// Validate checks an enrolment response.
func (r EnrolResponse) Validate() error {
	if err := firstErr(id("kiosk", r.Kiosk), id("mqtt_username", r.MQTTUsername)); err != nil {
		return err
	}
	if len(r.Groups) > len(Levels) {
		return fmt.Errorf("%w: %d groups, at most %d", ErrInvalid, len(r.Groups), len(Levels))
	}
	for i, g := range r.Groups {
		if err := id(fmt.Sprintf("groups[%d]", i), g); err != nil {
			return err
		}
	}
	u, err := url.Parse(r.BrokerURL)
	if err != nil || (u.Scheme != "ssl" && u.Scheme != "tls" && u.Scheme != "tcp") || u.Host == "" {
		return fmt.Errorf("%w: broker_url %q is not ssl://host:port", ErrInvalid, r.BrokerURL)
	}
	if err := printable("mqtt_password", r.MQTTPassword, 128); err != nil {
		return err
	}
	pub, err := DecodeKey(r.HubKey)
	if err != nil {
		return fmt.Errorf("hub_key: %w", err)
	}
	if r.HubKID != KeyID(pub) {
		return fmt.Errorf("%w: hub_kid %q does not name hub_key", ErrInvalid, r.HubKID)
	}
	if r.KeySerial < 1 {
		return fmt.Errorf("%w: key_serial must be positive", ErrInvalid)
	}
	if r.CACert != "" {
		if _, err := ParseCACert([]byte(r.CACert)); err != nil {
			return err
		}
	} else if u.Scheme != "tcp" {
		return fmt.Errorf("%w: ca_cert is required with a TLS broker", ErrInvalid)
	}
	return nil
}

// ParseCACert parses a PEM CA certificate as sent in EnrolResponse.
func ParseCACert(p []byte) (*x509.Certificate, error) {
	block, rest := pem.Decode(p)
	if block == nil || block.Type != "CERTIFICATE" || len(strings.TrimSpace(string(rest))) != 0 {
		return nil, fmt.Errorf("%w: ca_cert is not one PEM certificate", ErrInvalid)
	}
	c, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: ca_cert: %v", ErrInvalid, err)
	}
	if !c.IsCA {
		return nil, fmt.Errorf("%w: ca_cert is not a CA certificate", ErrInvalid)
	}
	return c, nil
}

// DecodeEnrolRequest strictly decodes an enrolment request.
func DecodeEnrolRequest(data []byte) (EnrolRequest, error) {
	var r EnrolRequest
	if len(data) > MaxEnrolRequestSize {
		return r, fmt.Errorf("%w: enrolment request is %d bytes, limit %d", ErrTooLarge, len(data), MaxEnrolRequestSize)
	}
	if err := strictUnmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: enrolment request: %v", ErrMalformed, err)
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("enrolment request: %w", err)
	}
	return r, nil
}

// DecodeEnrolResponse strictly decodes an enrolment response.
func DecodeEnrolResponse(data []byte) (EnrolResponse, error) {
	var r EnrolResponse
	if len(data) > MaxEnrolResponseSize {
		return r, fmt.Errorf("%w: enrolment response is %d bytes, limit %d", ErrTooLarge, len(data), MaxEnrolResponseSize)
	}
	if err := strictUnmarshal(data, &r); err != nil {
		return r, fmt.Errorf("%w: enrolment response: %v", ErrMalformed, err)
	}
	if err := r.Validate(); err != nil {
		return r, fmt.Errorf("enrolment response: %w", err)
	}
	return r, nil
}

// printable checks a required string of printable ASCII.
func printable(field, s string, max int) error {
	if s == "" || len(s) > max {
		return fmt.Errorf("%w: %s must be 1-%d characters", ErrInvalid, field, max)
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return fmt.Errorf("%w: %s must be printable ASCII without spaces", ErrInvalid, field)
		}
	}
	return nil
}
