package api

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/shequ/shequ/protocol"
)

// NoticeRequest is the body of POST /api/v1/notices. The hub assigns the id.
type NoticeRequest struct {
	Title      string                  `json:"title"`
	Body       string                  `json:"body"`
	Category   protocol.NoticeCategory `json:"category"`
	Priority   protocol.Priority       `json:"priority"`
	ValidFrom  time.Time               `json:"valid_from,omitzero"`  // default: now
	ValidUntil time.Time               `json:"valid_until,omitzero"` // default: no end
	Targets    []protocol.Target       `json:"targets"`
}

// DecodeNoticeRequest strictly decodes a notice request: at most
// MaxBodySize bytes, one JSON object, no unknown fields. It does not
// validate the values; see NoticeRequest.Notice and protocol.Notice.Validate.
func DecodeNoticeRequest(data []byte) (NoticeRequest, error) {
	var req NoticeRequest
	if len(data) > MaxBodySize {
		return req, fmt.Errorf("notice request is %d bytes, limit %d", len(data), MaxBodySize)
	}
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return req, fmt.Errorf("notice request: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return req, fmt.Errorf("notice request: trailing data after JSON object")
	}
	return req, nil
}

// Notice returns the notice the request asks for, with the id given and
// valid_from defaulting to now.
func (r NoticeRequest) Notice(id string, now time.Time) protocol.Notice {
	from := r.ValidFrom
	if from.IsZero() {
		from = now
	}
	return protocol.Notice{
		ID: id, Title: r.Title, Body: r.Body, Category: r.Category, Priority: r.Priority,
		ValidFrom: from, ValidUntil: r.ValidUntil, Targets: r.Targets,
	}
}
