package load

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/shequ/shequ/agent/enrol"
	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/protocol"
)

// Reply size limits of the hub API calls the client makes.
const (
	MaxKiosksReply   = 16 << 20 // GET /api/v1/kiosks: about 400 bytes a kiosk
	MaxNoticeReply   = 64 << 10 // POST /api/v1/notices and …/withdraw
	MaxFeedbackReply = 16 << 20 // GET /api/v1/feedback: up to MaxFeedbackLimit records
	MaxClaimReply    = 4 << 10  // POST /api/v1/claims
	maxErrorReply    = 4 << 10
)

// Files under the hub's data directory that a tool on the hub's machine
// reads (the same names as hub.AdminTokenFile, hub.TLSDir and pki.CAFile;
// the agent side may not import the hub, a test checks they agree).
const (
	AdminTokenFile = "admin.token"
	CAFile         = "tls/ca.pem"
)

// MaxFeedbackLimit is the most records the hub lists in one reply.
const MaxFeedbackLimit = 1000

// DefaultRequestTimeout bounds one API call. Creating a notice waits until
// the hub has published the desired state of every kiosk it reaches.
const DefaultRequestTimeout = 5 * time.Minute

// ErrReply means the hub's reply could not be used: an error status, a body
// over its limit, or JSON that does not fit.
var ErrReply = errors.New("load: bad reply from the hub")

// Client calls the parts of the hub's HTTP API a load run needs, with the
// admin token on every call and, over HTTPS, trusting only the pinned hub
// CA. The agent side may not import the hub, so the few reply fields used
// are declared here; unknown fields are ignored.
type Client struct {
	base  string
	token string
	http  *http.Client
}

// ClientConfig configures a Client.
type ClientConfig struct {
	HubURL string // required: https://host:port (http:// only for a hub run with -dev-plain)
	Token  string // required: the hub's admin token
	// CAPin is the hex SHA-256 of the hub CA's certificate; required for
	// https. The handshake succeeds only if the chain the hub presents
	// contains that CA and the server certificate verifies against it.
	CAPin string
}

// NewClient returns a client of the hub API.
func NewClient(cfg ClientConfig) (*Client, error) {
	u, err := url.Parse(cfg.HubURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("load: hub URL %q: want https://host[:port]", cfg.HubURL)
	}
	if cfg.Token == "" || strings.ContainsAny(cfg.Token, " \t\r\n") {
		return nil, errors.New("load: the hub's admin token is required (-token, or -data with the hub's data directory)")
	}
	tr := &http.Transport{
		Proxy:                  http.ProxyFromEnvironment,
		TLSHandshakeTimeout:    10 * time.Second,
		MaxIdleConnsPerHost:    verifyConcurrency * 2,
		MaxResponseHeaderBytes: 16 << 10,
	}
	if u.Scheme == "https" {
		if cfg.CAPin == "" {
			return nil, errors.New("load: the hub CA pin is required for https (-ca-pin, or -data with the hub's data directory)")
		}
		pin, err := enrol.ParsePin(cfg.CAPin)
		if err != nil {
			return nil, fmt.Errorf("load: %w", err)
		}
		tr.TLSClientConfig = pinnedTLS(pin, u.Hostname())
	} else if cfg.CAPin != "" {
		return nil, fmt.Errorf("load: a CA pin was given for the plain HTTP URL %q", cfg.HubURL)
	}
	return &Client{
		base:  strings.TrimRight(cfg.HubURL, "/"),
		token: cfg.Token,
		http: &http.Client{
			Timeout:       DefaultRequestTimeout,
			Transport:     tr,
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
	}, nil
}

// pinnedTLS returns a TLS configuration that accepts a server only if the
// chain it presents contains the CA whose certificate hashes to pin and the
// first certificate verifies against that CA for host.
func pinnedTLS(pin []byte, host string) *tls.Config {
	return &tls.Config{
		MinVersion:         tls.VersionTLS12,
		InsecureSkipVerify: true, // verification is done by VerifyConnection below
		VerifyConnection: func(cs tls.ConnectionState) error {
			if len(cs.PeerCertificates) == 0 {
				return errors.New("load: the hub presented no certificate")
			}
			for _, ca := range cs.PeerCertificates {
				if sum := sha256.Sum256(ca.Raw); !bytes.Equal(sum[:], pin) {
					continue
				}
				roots := x509.NewCertPool()
				roots.AddCert(ca)
				inter := x509.NewCertPool()
				for _, c := range cs.PeerCertificates[1:] {
					inter.AddCert(c)
				}
				if _, err := cs.PeerCertificates[0].Verify(x509.VerifyOptions{
					Roots: roots, Intermediates: inter, DNSName: host,
				}); err != nil {
					return fmt.Errorf("load: the hub's certificate does not verify against the pinned CA: %w", err)
				}
				return nil
			}
			return fmt.Errorf("load: the hub's certificate chain does not contain the pinned CA %x", pin)
		},
	}
}

// HubCredentials reads the admin token and the CA pin from the data
// directory of a hub on this machine.
func HubCredentials(dataDir string) (token, caPin string, err error) {
	tok, err := readFile(filepath.Join(dataDir, AdminTokenFile), 4<<10)
	if err != nil {
		return "", "", fmt.Errorf("load: admin token: %w", err)
	}
	token = strings.TrimSpace(string(tok))
	if token == "" {
		return "", "", fmt.Errorf("load: %s is empty", filepath.Join(dataDir, AdminTokenFile))
	}
	caPEM, err := readFile(filepath.Join(dataDir, CAFile), 64<<10)
	if err != nil {
		return "", "", fmt.Errorf("load: hub CA: %w", err)
	}
	block, _ := pem.Decode(caPEM)
	if block == nil || block.Type != "CERTIFICATE" {
		return "", "", fmt.Errorf("load: %s holds no certificate", filepath.Join(dataDir, CAFile))
	}
	sum := sha256.Sum256(block.Bytes)
	return token, hex.EncodeToString(sum[:]), nil
}

// Close closes the client's idle connections to the hub. A connection the
// client dialled but never used would otherwise keep the hub's HTTP
// shutdown waiting.
func (c *Client) Close() {
	c.http.CloseIdleConnections()
}

// KioskStatus is a kiosk as the hub reports it.
type KioskStatus struct {
	ID              string `json:"id"`
	Community       string `json:"community"` // empty for a kiosk not in the org tree
	Online          bool   `json:"online"`
	SoftwareVersion string `json:"software_version"`
	ContentVersion  int64  `json:"content_version"`
	DesiredVersion  int64  `json:"desired_version"`
	InOrgTree       bool   `json:"in_org_tree"`
}

// NoticeRequest is the body of POST /api/v1/notices.
type NoticeRequest struct {
	Title    string                  `json:"title"`
	Body     string                  `json:"body"`
	Category protocol.NoticeCategory `json:"category"`
	Priority protocol.Priority       `json:"priority"`
	Targets  []protocol.Target       `json:"targets"`
}

// FeedbackRow is a feedback record as the hub lists it.
type FeedbackRow struct {
	ID          string    `json:"id"`
	Ticket      string    `json:"ticket"`
	Kiosk       string    `json:"kiosk"`
	SubmittedAt time.Time `json:"submitted_at"`
	ReceivedAt  time.Time `json:"received_at"`
}

// Kiosks returns every kiosk the hub knows.
func (c *Client) Kiosks(ctx context.Context) ([]KioskStatus, error) {
	b, err := c.do(ctx, http.MethodGet, "/api/v1/kiosks", nil, MaxKiosksReply)
	if err != nil {
		return nil, err
	}
	return decodeKiosks(b)
}

// Org returns the root and the kiosk ids of the hub's org tree.
func (c *Client) Org(ctx context.Context) (orgfile.Tree, error) {
	b, err := c.do(ctx, http.MethodGet, "/api/v1/org", nil, orgfile.MaxFileSize)
	if err != nil {
		return orgfile.Tree{}, err
	}
	t, err := orgfile.Parse(b)
	if err != nil {
		return orgfile.Tree{}, fmt.Errorf("%w: GET /api/v1/org: %w", ErrReply, err)
	}
	return t, nil
}

// CreateNotice creates a notice and returns its id. The hub replies once
// the desired state of every kiosk it reaches is published.
func (c *Client) CreateNotice(ctx context.Context, req NoticeRequest) (string, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return "", fmt.Errorf("load: encode notice request: %w", err)
	}
	b, err := c.do(ctx, http.MethodPost, "/api/v1/notices", body, MaxNoticeReply)
	if err != nil {
		return "", err
	}
	return decodeNotice(b)
}

// WithdrawNotice withdraws a notice.
func (c *Client) WithdrawNotice(ctx context.Context, id string) error {
	if err := protocol.ValidID(id); err != nil {
		return fmt.Errorf("load: withdraw: %w", err)
	}
	b, err := c.do(ctx, http.MethodPost, "/api/v1/notices/"+id+"/withdraw", nil, MaxNoticeReply)
	if err != nil {
		return err
	}
	_, err = decodeNotice(b)
	return err
}

// Feedback returns the newest limit (at most MaxFeedbackLimit) feedback
// records of a kiosk, newest first.
func (c *Client) Feedback(ctx context.Context, kiosk string, limit int) ([]FeedbackRow, error) {
	if err := protocol.ValidID(kiosk); err != nil {
		return nil, fmt.Errorf("load: feedback: %w", err)
	}
	q := url.Values{"kiosk": {kiosk}, "limit": {fmt.Sprint(limit)}}
	b, err := c.do(ctx, http.MethodGet, "/api/v1/feedback?"+q.Encode(), nil, MaxFeedbackReply)
	if err != nil {
		return nil, err
	}
	return decodeFeedback(b)
}

// CreateClaim creates a one-time claim code for the slot of kiosk in
// community and returns the code.
func (c *Client) CreateClaim(ctx context.Context, community, kiosk string) (string, error) {
	body, err := json.Marshal(struct {
		Community string `json:"community"`
		Kiosk     string `json:"kiosk"`
	}{community, kiosk})
	if err != nil {
		return "", fmt.Errorf("load: encode claim request: %w", err)
	}
	b, err := c.do(ctx, http.MethodPost, "/api/v1/claims", body, MaxClaimReply)
	if err != nil {
		return "", err
	}
	return decodeClaim(b)
}

// Claimer returns a fleetsim.Config.Claim function: it creates a claim code
// for a kiosk's slot in the kiosk's community, as the hub's kiosk list
// (read once, now) gives it.
func (c *Client) Claimer(ctx context.Context) (func(ctx context.Context, kiosk string) (string, error), error) {
	ks, err := c.Kiosks(ctx)
	if err != nil {
		return nil, err
	}
	community := make(map[string]string, len(ks))
	for _, k := range ks {
		if k.InOrgTree && k.Community != "" {
			community[k.ID] = k.Community
		}
	}
	return func(ctx context.Context, kiosk string) (string, error) {
		cm, ok := community[kiosk]
		if !ok {
			return "", fmt.Errorf("load: kiosk %s is not in the hub's org tree", kiosk)
		}
		return c.CreateClaim(ctx, cm, kiosk)
	}, nil
}

// do makes one request and returns the body of a 2xx reply of at most
// limit bytes.
func (c *Client) do(ctx context.Context, method, path string, body []byte, limit int64) ([]byte, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return nil, fmt.Errorf("load: %s %s: %w", method, path, err)
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, fmt.Errorf("load: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		msg, err := io.ReadAll(io.LimitReader(resp.Body, maxErrorReply))
		if err != nil {
			return nil, fmt.Errorf("%w: %s %s: %s (reading the body: %v)", ErrReply, method, path, resp.Status, err)
		}
		return nil, fmt.Errorf("%w: %s %s: %s: %s", ErrReply, method, path, resp.Status, bytes.TrimSpace(msg))
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("load: %s %s: reading the reply: %w", method, path, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s %s: reply larger than %d bytes", ErrReply, method, path, limit)
	}
	return b, nil
}

// decodeJSON decodes one JSON value of at most limit bytes into v.
func decodeJSON(what string, data []byte, limit int, v any) error {
	if len(data) > limit {
		return fmt.Errorf("%w: %s: %d bytes, limit %d", ErrReply, what, len(data), limit)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrReply, what, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return fmt.Errorf("%w: %s: trailing data", ErrReply, what)
	}
	return nil
}

func decodeKiosks(data []byte) ([]KioskStatus, error) {
	var r struct {
		Kiosks *[]KioskStatus `json:"kiosks"`
	}
	if err := decodeJSON("kiosk list", data, MaxKiosksReply, &r); err != nil {
		return nil, err
	}
	if r.Kiosks == nil {
		return nil, fmt.Errorf("%w: kiosk list: no kiosks field", ErrReply)
	}
	seen := make(map[string]bool, len(*r.Kiosks))
	for _, k := range *r.Kiosks {
		if err := protocol.ValidID(k.ID); err != nil {
			return nil, fmt.Errorf("%w: kiosk list: %v", ErrReply, err)
		}
		if seen[k.ID] {
			return nil, fmt.Errorf("%w: kiosk list: %q listed twice", ErrReply, k.ID)
		}
		seen[k.ID] = true
	}
	return *r.Kiosks, nil
}

func decodeNotice(data []byte) (string, error) {
	var r struct {
		ID string `json:"id"`
	}
	if err := decodeJSON("notice", data, MaxNoticeReply, &r); err != nil {
		return "", err
	}
	if err := protocol.ValidID(r.ID); err != nil {
		return "", fmt.Errorf("%w: notice: %v", ErrReply, err)
	}
	return r.ID, nil
}

func decodeFeedback(data []byte) ([]FeedbackRow, error) {
	var r struct {
		Feedback *[]FeedbackRow `json:"feedback"`
	}
	if err := decodeJSON("feedback list", data, MaxFeedbackReply, &r); err != nil {
		return nil, err
	}
	if r.Feedback == nil {
		return nil, fmt.Errorf("%w: feedback list: no feedback field", ErrReply)
	}
	if n := len(*r.Feedback); n > MaxFeedbackLimit {
		return nil, fmt.Errorf("%w: feedback list: %d records, limit %d", ErrReply, n, MaxFeedbackLimit)
	}
	for _, f := range *r.Feedback {
		if f.ID == "" || f.Ticket == "" {
			return nil, fmt.Errorf("%w: feedback list: record without id or ticket", ErrReply)
		}
		if err := protocol.ValidID(f.Kiosk); err != nil {
			return nil, fmt.Errorf("%w: feedback list: %v", ErrReply, err)
		}
	}
	return *r.Feedback, nil
}

func decodeClaim(data []byte) (string, error) {
	var r struct {
		Code string `json:"code"`
	}
	if err := decodeJSON("claim", data, MaxClaimReply, &r); err != nil {
		return "", err
	}
	if err := protocol.ValidClaimCode(protocol.NormalizeClaimCode(r.Code)); err != nil {
		return "", fmt.Errorf("%w: claim: %v", ErrReply, err)
	}
	return r.Code, nil
}
