// Package enrol enrols a device with the hub: it makes sure the device has
// its own ed25519 key (generated and stored before anything is sent, so a
// retry sends the same key), sends the claim code, the public key and the
// hardware id to the hub's enrolment endpoint over HTTPS, checks the answer
// strictly, and stores the identity the hub gave the device.
//
// # Trust
//
// The device has no secret and trusts nothing yet. With a CA pin (the hex
// SHA-256 of the hub CA's certificate, printed by `hub claim` for the
// technician) the TLS handshake succeeds only if the chain the hub presents
// contains that CA and the server certificate verifies against it for the
// hub's host, so the claim code is never sent to anyone else. Without a pin
// the first hub answering is trusted (trust on first use), which is logged
// as a warning and meant for development. Either way the CA returned in the
// response must be the one that signed the server certificate, and with a
// pin it must be the pinned one; from then on the device trusts only it.
package enrol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

// Errors, returned wrapped; test with errors.Is.
var (
	// ErrConfig means the enrolment was asked for with a bad hub URL,
	// claim code, pin or hardware id; nothing was sent.
	ErrConfig = errors.New("enrol: bad configuration")
	// ErrRefused means the hub answered and refused the enrolment (unknown,
	// used or expired claim code, no free slot, rate limit); the error
	// carries the hub's message.
	ErrRefused = errors.New("enrol: the hub refused the enrolment")
	// ErrUntrusted means the hub's certificate did not match the CA pin, or
	// the CA in its answer did not sign its certificate.
	ErrUntrusted = errors.New("enrol: hub not trusted")
	// ErrResponse means the hub's answer was not a valid enrolment response.
	ErrResponse = errors.New("enrol: bad response from the hub")
)

// Config configures an enrolment. Zero values mean the defaults.
type Config struct {
	HubURL          string       // required: https://host:port (http:// only for a development hub, without a pin)
	ClaimCode       string       // required: 12 digits; spaces and dashes are ignored
	CAPin           string       // hex SHA-256 of the hub CA's DER; empty: trust on first use (warned)
	HardwareID      string       // default: HardwareID()
	SoftwareVersion string       // default "dev"
	HTTPClient      *http.Client // optional, used as is (it must already trust the hub); default: a client doing the pin check
	Timeout         time.Duration
}

// maxErrorBody bounds what is read of a refusal.
const maxErrorBody = 4 << 10

// Enrol enrols the device whose database is st and stores the identity the
// hub returned. The response it returns holds the MQTT password: never log
// it. On any failure nothing is stored but the device key.
func Enrol(ctx context.Context, st *store.Store, cfg Config, log *slog.Logger) (protocol.EnrolResponse, error) {
	var none protocol.EnrolResponse
	hub, err := url.Parse(cfg.HubURL)
	if err != nil || (hub.Scheme != "https" && hub.Scheme != "http") || hub.Host == "" {
		return none, fmt.Errorf("%w: hub url %q: want https://host:port", ErrConfig, cfg.HubURL)
	}
	code := protocol.NormalizeClaimCode(cfg.ClaimCode)
	if err := protocol.ValidClaimCode(code); err != nil {
		return none, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	var pin []byte
	if cfg.CAPin != "" {
		if pin, err = ParsePin(cfg.CAPin); err != nil {
			return none, err
		}
	}
	if hub.Scheme == "http" {
		if pin != nil {
			return none, fmt.Errorf("%w: a CA pin needs an https:// hub url", ErrConfig)
		}
		log.Warn("enrolling over plain HTTP: the claim code and the credentials cross the network in clear text; development only", "hub", cfg.HubURL)
	} else if pin == nil {
		log.Warn("enrolling without a CA pin: trusting whichever server answers at the hub URL on first use; anyone on the network path could impersonate the hub. Pass the pin printed by `hub claim` in production", "hub", cfg.HubURL)
	}
	hw := cfg.HardwareID
	if hw == "" {
		if hw, err = HardwareID(); err != nil {
			return none, err
		}
	} else if hw, err = parseHardwareID([]byte(hw)); err != nil {
		return none, err
	}
	if cfg.SoftwareVersion == "" {
		cfg.SoftwareVersion = "dev"
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = 30 * time.Second
	}

	key, err := st.EnrolmentKey() // durable before the request
	if err != nil {
		return none, fmt.Errorf("enrol: %w", err)
	}
	body, err := json.Marshal(protocol.EnrolRequest{
		ClaimCode:       code,
		PublicKey:       protocol.EncodeKey(key.Public().(ed25519.PublicKey)),
		HardwareID:      hw,
		SoftwareVersion: cfg.SoftwareVersion,
	})
	if err != nil {
		return none, fmt.Errorf("enrol: encode request: %w", err)
	}
	client := cfg.HTTPClient
	if client == nil {
		client = newClient(pin, hub.Hostname(), cfg.Timeout)
	}
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	endpoint := hub.JoinPath(protocol.HubPathEnrol).String()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, endpoint, bytes.NewReader(body))
	if err != nil {
		return none, fmt.Errorf("enrol: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := client.Do(req)
	if err != nil {
		if errors.Is(err, ErrUntrusted) {
			return none, fmt.Errorf("enrol: POST %s: %w", endpoint, ErrUntrusted)
		}
		return none, fmt.Errorf("enrol: POST %s: %w", endpoint, err)
	}
	defer resp.Body.Close()
	r, err := decodeResponse(resp.StatusCode, io.LimitReader(resp.Body, protocol.MaxEnrolResponseSize+1))
	if err != nil {
		return none, err
	}
	if err := checkCA(r, resp.TLS, pin, hub.Hostname()); err != nil {
		return none, err
	}
	if r.CACert == "" && strings.HasPrefix(r.BrokerURL, "tcp://") {
		log.Warn("the hub hands out a plain TCP broker: development only", "broker", r.BrokerURL)
	}
	if err := st.SaveIdentity(store.IdentityFrom(r, cfg.HubURL, time.Now()), r.TicketFloor); err != nil {
		return none, fmt.Errorf("enrol: %w", err)
	}
	log.Info("enrolled", "kiosk", r.Kiosk, "groups", r.Groups, "broker", r.BrokerURL,
		"hub_kid", r.HubKID, "key_serial", r.KeySerial, "ticket_floor", r.TicketFloor, "ca", fingerprint(r.CACert))
	return r, nil
}

// decodeResponse turns the hub's answer into an enrolment response or an
// error carrying the hub's message.
func decodeResponse(status int, body io.Reader) (protocol.EnrolResponse, error) {
	var none protocol.EnrolResponse
	if status != http.StatusOK {
		data, err := io.ReadAll(io.LimitReader(body, maxErrorBody))
		if err != nil {
			return none, fmt.Errorf("%w: status %d (reading the reason: %v)", ErrRefused, status, err)
		}
		var e protocol.ErrorResponse
		msg := strings.TrimSpace(string(data))
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			msg = e.Error
		}
		return none, fmt.Errorf("%w: %d %s: %s", ErrRefused, status, http.StatusText(status), clean(msg))
	}
	data, err := io.ReadAll(body)
	if err != nil {
		return none, fmt.Errorf("%w: reading: %v", ErrResponse, err)
	}
	r, err := protocol.DecodeEnrolResponse(data)
	if err != nil {
		return none, fmt.Errorf("%w: %w", ErrResponse, err)
	}
	if r.MQTTUsername != r.Kiosk {
		return none, fmt.Errorf("%w: mqtt_username %q is not the kiosk id %q", ErrResponse, r.MQTTUsername, r.Kiosk)
	}
	return r, nil
}

// clean keeps a hub message printable and short enough for a log line or
// the kiosk's screen.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if r := []rune(s); len(r) > 200 {
		s = string(r[:200]) + "…"
	}
	return s
}

// checkCA checks that the CA the hub returned signed the certificate it
// presented and, with a pin, is the pinned CA.
func checkCA(r protocol.EnrolResponse, cs *tls.ConnectionState, pin []byte, host string) error {
	if cs == nil {
		return nil // plain HTTP (development); nothing to check against
	}
	if r.CACert == "" {
		return fmt.Errorf("%w: the hub returned no CA certificate", ErrResponse)
	}
	ca, err := protocol.ParseCACert([]byte(r.CACert))
	if err != nil {
		return fmt.Errorf("%w: %w", ErrResponse, err)
	}
	if pin != nil {
		if sum := sha256.Sum256(ca.Raw); !bytes.Equal(sum[:], pin) {
			return fmt.Errorf("%w: the CA in the response (%x) is not the pinned CA (%x)", ErrUntrusted, sum, pin)
		}
	}
	if len(cs.PeerCertificates) == 0 {
		return fmt.Errorf("%w: no server certificate", ErrUntrusted)
	}
	if err := verifyLeaf(cs.PeerCertificates, ca, host); err != nil {
		return fmt.Errorf("%w: the CA in the response did not sign the hub's certificate: %v", ErrUntrusted, err)
	}
	return nil
}

// verifyLeaf verifies the first certificate of chain for host with ca as
// the only root.
func verifyLeaf(chain []*x509.Certificate, ca *x509.Certificate, host string) error {
	roots := x509.NewCertPool()
	roots.AddCert(ca)
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	_, err := chain[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, DNSName: host})
	return err
}

// newClient returns an HTTP client for the enrolment. With a pin, the
// handshake fails unless the presented chain contains the pinned CA and the
// server certificate verifies against it for host; without one, any
// certificate is accepted here and checked against the returned CA later.
func newClient(pin []byte, host string, timeout time.Duration) *http.Client {
	tc := &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verification is done by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if pin == nil {
				return nil
			}
			for _, c := range cs.PeerCertificates {
				if sum := sha256.Sum256(c.Raw); bytes.Equal(sum[:], pin) {
					if err := verifyLeaf(cs.PeerCertificates, c, host); err != nil {
						return fmt.Errorf("%w: %v", ErrUntrusted, err)
					}
					return nil
				}
			}
			return fmt.Errorf("%w: the hub's certificate chain does not contain the pinned CA %x", ErrUntrusted, pin)
		},
	}
	return &http.Client{
		Timeout: timeout,
		Transport: &http.Transport{
			Proxy:                  http.ProxyFromEnvironment,
			TLSClientConfig:        tc,
			TLSHandshakeTimeout:    10 * time.Second,
			ResponseHeaderTimeout:  timeout,
			MaxResponseHeaderBytes: 16 << 10,
			DisableKeepAlives:      true,
		},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// ParsePin parses a CA pin: 64 hex digits, upper or lower case, optionally
// with colons or spaces between them.
func ParsePin(s string) ([]byte, error) {
	h := strings.Map(func(r rune) rune {
		if r == ':' || r == ' ' {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	b, err := hex.DecodeString(h)
	if err != nil || len(b) != sha256.Size {
		return nil, fmt.Errorf("%w: CA pin must be 64 hex digits (SHA-256 of the CA certificate)", ErrConfig)
	}
	return b, nil
}

// fingerprint is the pin of a PEM CA certificate, for logs.
func fingerprint(caPEM string) string {
	if caPEM == "" {
		return "none"
	}
	c, err := protocol.ParseCACert([]byte(caPEM))
	if err != nil {
		return "invalid"
	}
	sum := sha256.Sum256(c.Raw)
	return hex.EncodeToString(sum[:])
}

// hardwareIDFiles are read in order by HardwareID.
var hardwareIDFiles = []string{"/sys/class/dmi/id/product_uuid", "/etc/machine-id"}

// HardwareID returns the machine's identity: the DMI product UUID if it
// can be read (usually root only), else /etc/machine-id.
func HardwareID() (string, error) {
	var errs []error
	for _, p := range hardwareIDFiles {
		b, err := os.ReadFile(p)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		id, err := parseHardwareID(b)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", p, err))
			continue
		}
		return id, nil
	}
	return "", fmt.Errorf("%w: no hardware id (set one explicitly): %w", ErrConfig, errors.Join(errs...))
}

// parseHardwareID reads a hardware id file's contents: trimmed, lower
// case, printable ASCII without spaces, at most protocol.MaxHardwareID.
func parseHardwareID(b []byte) (string, error) {
	if len(b) > 4*protocol.MaxHardwareID {
		return "", fmt.Errorf("%w: hardware id is %d bytes", ErrConfig, len(b))
	}
	s := strings.ToLower(strings.TrimSpace(string(b)))
	if s == "" || len(s) > protocol.MaxHardwareID {
		return "", fmt.Errorf("%w: hardware id must be 1-%d characters", ErrConfig, protocol.MaxHardwareID)
	}
	for _, r := range s {
		if r < 0x21 || r > 0x7e {
			return "", fmt.Errorf("%w: hardware id must be printable ASCII without spaces", ErrConfig)
		}
	}
	return s, nil
}
