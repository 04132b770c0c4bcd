package load

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/protocol"
)

// Reply size limits of the hub API calls the client makes.
const (
	MaxKiosksReply   = 16 << 20 // GET /api/v1/kiosks: about 400 bytes a kiosk
	MaxNoticeReply   = 64 << 10 // POST /api/v1/notices and …/withdraw
	MaxFeedbackReply = 16 << 20 // GET /api/v1/feedback: up to MaxFeedbackLimit records
	maxErrorReply    = 4 << 10
)

// MaxFeedbackLimit is the most records the hub lists in one reply.
const MaxFeedbackLimit = 1000

// DefaultRequestTimeout bounds one API call. Creating a notice waits until
// the hub has published the desired state of every kiosk it reaches.
const DefaultRequestTimeout = 5 * time.Minute

// ErrReply means the hub's reply could not be used: an error status, a body
// over its limit, or JSON that does not fit.
var ErrReply = errors.New("load: bad reply from the hub")

// Client calls the parts of the hub's HTTP API a load run needs. The agent
// side may not import the hub, so the few reply fields used are declared
// here; unknown fields are ignored.
type Client struct {
	base string
	http *http.Client
}

// NewClient returns a client of the hub API at base, e.g.
// "http://127.0.0.1:8080".
func NewClient(base string) (*Client, error) {
	u, err := url.Parse(base)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("load: hub URL %q: want http(s)://host[:port]", base)
	}
	return &Client{base: strings.TrimRight(base, "/"), http: &http.Client{Timeout: DefaultRequestTimeout}}, nil
}

// KioskStatus is a kiosk as the hub reports it.
type KioskStatus struct {
	ID              string `json:"id"`
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
