// Package agentclient is the kiosk's client for the agent's local API
// (protocol/local.go), spoken as HTTP over the agent's Unix socket. It never
// talks MQTT or opens the agent's database.
package agentclient

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"time"

	"github.com/google/uuid"

	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

// Limits.
const (
	// MaxResponseSize bounds any JSON reply of the agent. The notices reply
	// carries at most one desired-state document.
	MaxResponseSize = protocol.MaxDesiredSize + 64<<10
	// MaxErrorSize bounds the body of an error reply.
	MaxErrorSize = 4 << 10
	// MaxEventLine bounds one line of the event stream.
	MaxEventLine = 4 << 10
	// RequestTimeout bounds each plain request (not the event stream).
	RequestTimeout = 15 * time.Second
	// EnrolTimeout bounds an enrolment, for which the agent waits on the
	// hub (up to 45 s) before it answers.
	EnrolTimeout = 60 * time.Second
)

// Errors returned, wrapped, by the client.
var (
	// ErrTooLarge means a reply or an event line exceeded its size limit.
	ErrTooLarge = errors.New("agentclient: reply too large")
	// ErrMalformed means a reply was not the JSON the local API specifies.
	ErrMalformed = errors.New("agentclient: malformed reply")
)

// StatusError is an error reply of the agent.
type StatusError struct {
	Code    int    // HTTP status
	Message string // ErrorResponse.Error, or the status text
}

func (e *StatusError) Error() string {
	return fmt.Sprintf("agent replied %d: %s", e.Code, e.Message)
}

// StatusCode returns the HTTP status of the reply.
func (e *StatusError) StatusCode() int { return e.Code }

// Reason returns the agent's message.
func (e *StatusError) Reason() string { return e.Message }

var _ screen.AgentError = (*StatusError)(nil)

// Client talks to one agent. It is safe for concurrent use.
type Client struct {
	hc *http.Client
}

var (
	_ screen.Submitter = (*Client)(nil)
	_ screen.Enroller  = (*Client)(nil)
)

// base is the URL prefix of requests; the host is ignored by the transport.
const base = "http://agent"

// New returns a client for the agent listening on the Unix socket at path.
// Nothing is dialled until the first request.
func New(socket string) *Client {
	var d net.Dialer
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			return d.DialContext(ctx, "unix", socket)
		},
		MaxIdleConns:          4,
		IdleConnTimeout:       30 * time.Second,
		ResponseHeaderTimeout: EnrolTimeout, // each request has its own, shorter or equal, deadline
		DisableCompression:    true,
	}
	return &Client{hc: &http.Client{Transport: tr}}
}

// Close releases idle connections.
func (c *Client) Close() {
	c.hc.CloseIdleConnections()
}

// Notices fetches the station and the notices the agent holds.
func (c *Client) Notices(ctx context.Context) (protocol.LocalNotices, error) {
	var out protocol.LocalNotices
	err := c.do(ctx, RequestTimeout, http.MethodGet, protocol.LocalPathNotices, nil, http.StatusOK, &out)
	return out, err
}

// Status fetches the agent's status.
func (c *Client) Status(ctx context.Context) (protocol.AgentStatus, error) {
	var out protocol.AgentStatus
	err := c.do(ctx, RequestTimeout, http.MethodGet, protocol.LocalPathStatus, nil, http.StatusOK, &out)
	return out, err
}

// SubmitFeedback submits a resident's feedback. A receipt means the record is
// durable in the agent's outbox.
func (c *Client) SubmitFeedback(ctx context.Context, req protocol.FeedbackRequest) (protocol.FeedbackReceipt, error) {
	var out protocol.FeedbackReceipt
	if err := req.Validate(); err != nil {
		return out, fmt.Errorf("agentclient: submit feedback: %w", err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return out, fmt.Errorf("agentclient: encode feedback: %w", err)
	}
	if err := c.do(ctx, RequestTimeout, http.MethodPost, protocol.LocalPathFeedback, body, http.StatusCreated, &out); err != nil {
		return out, err
	}
	if err := protocol.ValidTicket(out.Ticket); err != nil {
		return out, fmt.Errorf("%w: %s: %v", ErrMalformed, protocol.LocalPathFeedback, err)
	}
	return out, nil
}

// Enrol asks the agent to enrol the device with its hub using a
// technician's claim code (spaces and dashes between the groups are
// allowed) and returns the agent's status once enrolled; it waits up to
// EnrolTimeout. A code that is not 12 digits is not sent
// (protocol.ErrInvalid). When the agent refuses, the error is a
// *StatusError carrying its status and message: 400 bad code or no hub
// configured, 403 refused by the hub (unknown, used or expired code, or
// another community), 409 already enrolled, 502/503 hub unreachable.
func (c *Client) Enrol(ctx context.Context, code string) (protocol.AgentStatus, error) {
	var out protocol.AgentStatus
	req := protocol.LocalEnrolRequest{ClaimCode: protocol.NormalizeClaimCode(code)}
	if err := protocol.ValidClaimCode(req.ClaimCode); err != nil {
		return out, fmt.Errorf("agentclient: enrol: %w", err)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return out, fmt.Errorf("agentclient: encode enrol request: %w", err)
	}
	err = c.do(ctx, EnrolTimeout, http.MethodPost, protocol.LocalPathEnrol, body, http.StatusOK, &out)
	return out, err
}

// PostPlay reports that the kiosk started showing an attract item or a
// notice on the home rotation (proof of play; the agent also keeps the file
// on screen). The agent answers 204.
func (c *Client) PostPlay(ctx context.Context, ev protocol.PlayEvent) error {
	body, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("agentclient: encode play event: %w", err)
	}
	if _, err := protocol.DecodePlayEvent(body); err != nil {
		return fmt.Errorf("agentclient: post play: %w", err)
	}
	return c.do(ctx, RequestTimeout, http.MethodPost, protocol.LocalPathPlays, body, http.StatusNoContent, nil)
}

// PostMediaError reports a held media file the kiosk cannot play.
func (c *Client) PostMediaError(ctx context.Context, e protocol.MediaError) error {
	body, err := json.Marshal(e)
	if err != nil {
		return fmt.Errorf("agentclient: encode media error: %w", err)
	}
	if _, err := protocol.DecodeMediaError(body); err != nil {
		return fmt.Errorf("agentclient: post media error: %w", err)
	}
	return c.do(ctx, RequestTimeout, http.MethodPost, protocol.LocalPathMediaErrors, body, http.StatusNoContent, nil)
}

// Case looks a case of this kiosk up by ticket or query code. A case the
// agent's board does not hold is a *StatusError with code 404.
func (c *Client) Case(ctx context.Context, ticketOrCode string) (protocol.LocalCase, error) {
	var out protocol.LocalCase
	if err := validCaseKey(ticketOrCode); err != nil {
		return out, fmt.Errorf("agentclient: case: %w", err)
	}
	if err := c.do(ctx, RequestTimeout, http.MethodGet, protocol.LocalCasePath(ticketOrCode), nil, http.StatusOK, &out); err != nil {
		return out, err
	}
	if err := out.CaseStatus.Validate(); err != nil {
		return out, fmt.Errorf("%w: case %s: %v", ErrMalformed, ticketOrCode, err)
	}
	return out, nil
}

// RateCase rates a case. A receipt means the rating is durable in the
// agent's outbox. The agent answers 409 (a *StatusError) when the case may
// not be rated now and 404 when it does not know the case.
func (c *Client) RateCase(ctx context.Context, ticketOrCode string, r protocol.Rating) (protocol.RatingReceipt, error) {
	var out protocol.RatingReceipt
	if err := validCaseKey(ticketOrCode); err != nil {
		return out, fmt.Errorf("agentclient: rate case: %w", err)
	}
	body, err := json.Marshal(protocol.LocalRatingRequest{Rating: r})
	if err != nil {
		return out, fmt.Errorf("agentclient: encode rating: %w", err)
	}
	if _, err := protocol.DecodeLocalRatingRequest(body); err != nil {
		return out, fmt.Errorf("agentclient: rate case: %w", err)
	}
	err = c.do(ctx, RequestTimeout, http.MethodPost, protocol.LocalRatingPath(ticketOrCode), body, http.StatusAccepted, &out)
	return out, err
}

// CheckinCode fetches the current staff check-in code (a URL to show as a
// QR code, and when it expires).
func (c *Client) CheckinCode(ctx context.Context) (protocol.CheckinCode, error) {
	var out protocol.CheckinCode
	if err := c.do(ctx, RequestTimeout, http.MethodGet, protocol.LocalPathCheckinCode, nil, http.StatusOK, &out); err != nil {
		return out, err
	}
	if out.URL == "" || out.Expires.IsZero() {
		return out, fmt.Errorf("%w: %s: url and expires are required", ErrMalformed, protocol.LocalPathCheckinCode)
	}
	return out, nil
}

// ReplyCommand answers a remote command the agent announced with an
// EventCommand. The agent answers 404 (a *StatusError) when no command
// waits under that id any more (it timed out, or was answered).
func (c *Client) ReplyCommand(ctx context.Context, id string, r protocol.LocalCommandReply) error {
	if _, err := uuid.Parse(id); err != nil || len(id) != 36 {
		return fmt.Errorf("agentclient: reply to command %q: %w: not a command id", id, protocol.ErrInvalid)
	}
	body, err := json.Marshal(r)
	if err != nil {
		return fmt.Errorf("agentclient: encode command reply: %w", err)
	}
	if _, err := protocol.DecodeLocalCommandReply(body); err != nil {
		return fmt.Errorf("agentclient: reply to command %s: %w", id, err)
	}
	return c.do(ctx, RequestTimeout, http.MethodPost, protocol.LocalCommandPath(id), body, http.StatusNoContent, nil)
}

// validCaseKey checks a ticket or a query code before it goes into a path.
func validCaseKey(k string) error {
	if protocol.IsQueryCode(k) {
		return nil
	}
	return protocol.ValidTicket(k)
}

// do performs one request within timeout and strictly decodes a reply of
// status want into out; a nil out expects an empty reply.
func (c *Client) do(ctx context.Context, timeout time.Duration, method, path string, body []byte, want int, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, base+path, rd)
	if err != nil {
		return fmt.Errorf("agentclient: %s %s: %w", method, path, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("agentclient: %s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != want {
		return fmt.Errorf("agentclient: %s %s: %w", method, path, readError(resp))
	}
	data, err := readLimited(resp.Body, MaxResponseSize)
	if err != nil {
		return fmt.Errorf("agentclient: %s %s: %w", method, path, err)
	}
	if out == nil {
		if len(bytes.TrimSpace(data)) != 0 {
			return fmt.Errorf("%w: %s %s: unexpected body of %d bytes", ErrMalformed, method, path, len(data))
		}
		return nil
	}
	if err := strictUnmarshal(data, out); err != nil {
		return fmt.Errorf("%w: %s %s: %v", ErrMalformed, method, path, err)
	}
	return nil
}

func readError(resp *http.Response) error {
	e := &StatusError{Code: resp.StatusCode, Message: http.StatusText(resp.StatusCode)}
	data, err := readLimited(resp.Body, MaxErrorSize)
	if err != nil {
		return e
	}
	var er protocol.ErrorResponse
	if json.Unmarshal(data, &er) == nil && er.Error != "" {
		e.Message = er.Error
	}
	return e
}

func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, fmt.Errorf("read reply: %w", err)
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	return data, nil
}

// strictUnmarshal decodes exactly one JSON value, rejecting unknown fields
// and trailing data.
func strictUnmarshal(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return err
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("trailing data after JSON value")
	}
	return nil
}
