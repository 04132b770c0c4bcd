package localapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// fakeBackend accepts every valid request; it stands in for the agent so
// the fuzzer exercises only the HTTP handling.
type fakeBackend struct {
	n, enrols, plays, mediaErrors, ratings int
	replies                                []protocol.LocalCommandReply
}

// fakeCommand is the one command the fake backend waits for an answer to.
const fakeCommand = "019ac0f4-4000-7000-8000-000000000010"

func (f *fakeBackend) Play(e protocol.PlayEvent) error {
	f.plays++
	return nil
}

func (f *fakeBackend) MediaError(e protocol.MediaError) error {
	f.mediaErrors++
	return nil
}

func (f *fakeBackend) Enrol(_ context.Context, code string) error {
	if err := protocol.ValidClaimCode(code); err != nil {
		return err
	}
	f.enrols++
	return nil
}

func (f *fakeBackend) SubmitFeedback(req protocol.FeedbackRequest) (protocol.FeedbackReceipt, error) {
	if err := req.Validate(); err != nil {
		return protocol.FeedbackReceipt{}, err
	}
	f.n++
	return protocol.FeedbackReceipt{ID: protocol.NewID(), Ticket: "261126-TEST-0001", SubmittedAt: time.Now()}, nil
}
func (f *fakeBackend) Notices() (protocol.LocalNotices, error) { return protocol.LocalNotices{}, nil }
func (f *fakeBackend) Status() protocol.AgentStatus            { return protocol.AgentStatus{} }
func (f *fakeBackend) Subscribe() (<-chan protocol.LocalEvent, func()) {
	ch := make(chan protocol.LocalEvent)
	return ch, func() {}
}

var _ Backend = (*fakeBackend)(nil)

// FuzzFeedbackHandler posts arbitrary bodies to POST /v1/feedback: the
// handler answers 201 exactly when the body is a valid request, otherwise
// 400 or 413 with an ErrorResponse, and never panics.
func FuzzFeedbackHandler(f *testing.F) {
	seeds, err := filepath.Glob("../../protocol/testdata/feedback_request*.json")
	if err != nil || len(seeds) == 0 {
		f.Fatalf("no seeds: %v", err)
	}
	for _, p := range seeds {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"kind":"help","category":"other","where":{}}`))
	f.Add([]byte(`{"kind":"help"} {}`))
	f.Add([]byte(strings.Repeat("[", 9000)))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := &fakeBackend{}
		h := New(Config{}, b, slog.New(slog.DiscardHandler)).Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, protocol.LocalPathFeedback, strings.NewReader(string(body))))
		_, decodeErr := protocol.DecodeFeedbackRequest(body)
		switch rec.Code {
		case http.StatusCreated:
			if decodeErr != nil || b.n != 1 {
				t.Fatalf("201 for a body the decoder refuses (%v)", decodeErr)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e protocol.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("error reply %q is not an ErrorResponse", rec.Body.String())
			}
			if decodeErr == nil || b.n != 0 {
				t.Fatalf("%d for a valid body", rec.Code)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// FuzzPlayHandler posts arbitrary bodies to POST /v1/plays: 204 exactly
// when the body is a valid play event (and the backend counted it once),
// otherwise 400 or 413 with an ErrorResponse.
func FuzzPlayHandler(f *testing.F) {
	seed, err := os.ReadFile("../../protocol/testdata/play_event.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"kind":"notice","notice":"n1","at":"2026-11-26T10:00:00Z"}`))
	f.Add([]byte(`{"kind":"video","media":"00","at":"2026-11-26T10:00:00Z"}`))
	f.Add([]byte(strings.Repeat("{", 2000)))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := &fakeBackend{}
		h := New(Config{}, b, slog.New(slog.DiscardHandler)).Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, protocol.LocalPathPlays, strings.NewReader(string(body))))
		_, decodeErr := protocol.DecodePlayEvent(body)
		switch rec.Code {
		case http.StatusNoContent:
			if decodeErr != nil || b.plays != 1 {
				t.Fatalf("204 for a body the decoder refuses (%v)", decodeErr)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e protocol.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("error reply %q is not an ErrorResponse", rec.Body.String())
			}
			if decodeErr == nil || b.plays != 0 {
				t.Fatalf("%d for a valid body", rec.Code)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// FuzzEnrolHandler posts arbitrary bodies to POST /v1/enrol: 200 exactly
// when the body is a valid request (and then the backend was asked once),
// otherwise 400 or 413 with an ErrorResponse; never a panic.
func FuzzEnrolHandler(f *testing.F) {
	b, err := os.ReadFile("../../protocol/testdata/local_enrol_request.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"claim_code":"1234 5678 9012"}`))
	f.Add([]byte(`{"claim_code":"1234-5678-901x"}`))
	f.Add([]byte(`{"claim_code":"123456789012","x":1}`))
	f.Add([]byte(strings.Repeat(" ", 5000)))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := &fakeBackend{}
		h := New(Config{}, b, slog.New(slog.DiscardHandler)).Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, protocol.LocalPathEnrol, strings.NewReader(string(body))))
		_, decodeErr := protocol.DecodeLocalEnrolRequest(body)
		switch rec.Code {
		case http.StatusOK:
			if decodeErr != nil || b.enrols != 1 {
				t.Fatalf("200 for a body the decoder refuses (%v)", decodeErr)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e protocol.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("error reply %q is not an ErrorResponse", rec.Body.String())
			}
			if decodeErr == nil || b.enrols != 0 {
				t.Fatalf("%d for a valid body", rec.Code)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

func (f *fakeBackend) Case(key string) (protocol.LocalCase, error) {
	return protocol.LocalCase{}, ErrNoCase
}

func (f *fakeBackend) Rate(key string, r protocol.Rating) (protocol.RatingReceipt, error) {
	f.ratings++
	return protocol.RatingReceipt{ID: protocol.NewID(), Ticket: key, Rating: r, At: time.Now()}, nil
}

func (f *fakeBackend) CheckinCode() (protocol.CheckinCode, error) {
	return protocol.CheckinCode{}, ErrNoHub
}

// FuzzRatingHandler posts arbitrary bodies to POST /v1/cases/{ticket}/rating:
// 202 exactly when the body is a valid rating request (and the backend was
// asked once), otherwise 400 or 413 with an ErrorResponse; never a panic.
func FuzzRatingHandler(f *testing.F) {
	b, err := os.ReadFile("../../protocol/testdata/local_rating_request.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`{"rating":"not_satisfied"}`))
	f.Add([]byte(`{"rating":"great"}`))
	f.Add([]byte(`{"rating":"satisfied","x":1}`))
	f.Add([]byte(strings.Repeat(" ", 500)))
	f.Fuzz(func(t *testing.T, body []byte) {
		b := &fakeBackend{}
		h := New(Config{}, b, slog.New(slog.DiscardHandler)).Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, protocol.LocalRatingPath("2611260007"), strings.NewReader(string(body))))
		_, decodeErr := protocol.DecodeLocalRatingRequest(body)
		switch rec.Code {
		case http.StatusAccepted:
			if decodeErr != nil || b.ratings != 1 {
				t.Fatalf("202 for a body the decoder refuses (%v)", decodeErr)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e protocol.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("error reply %q is not an ErrorResponse", rec.Body.String())
			}
			if decodeErr == nil || b.ratings != 0 {
				t.Fatalf("%d for a valid body", rec.Code)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}

// FuzzCasePath requests arbitrary case paths: never a panic, and the
// backend is asked only for a well-formed key.
func FuzzCasePath(f *testing.F) {
	for _, s := range []string{"2611260007", "261126-K-SANGCHENG-01-0007", "a/b", "", "%2F..", "x/rating/rating", strings.Repeat("9", 41)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, key string) {
		b := &fakeBackend{}
		h := New(Config{}, b, slog.New(slog.DiscardHandler)).Handler()
		req, err := http.NewRequest(http.MethodGet, "http://agent/", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.URL.Path = protocol.LocalCasePath(key)
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusNotFound {
			t.Fatalf("GET %q = %d, want 404 (no case, or no such endpoint)", req.URL.Path, rec.Code)
		}
	})
}

func (f *fakeBackend) CommandReply(id string, r protocol.LocalCommandReply) error {
	if id != fakeCommand {
		return ErrNoCommand
	}
	f.replies = append(f.replies, r)
	return nil
}

// FuzzCommandReplyHandler posts arbitrary bodies to POST /v1/commands/{id}:
// 204 exactly when the body is a valid reply (and the backend took it),
// otherwise 400 or 413 with an ErrorResponse; never a panic. Another id
// is 404 for a valid body.
func FuzzCommandReplyHandler(f *testing.F) {
	b, err := os.ReadFile("../../protocol/testdata/local_command_reply.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, true)
	f.Add([]byte(`{"action":"restart_ui","status":"ok"}`), true)
	f.Add([]byte(`{"action":"restart_ui","status":"ok"}`), false)
	f.Add([]byte(`{"action":"screenshot","status":"ok"}`), true)
	f.Add([]byte(`{"action":"restart_agent","status":"ok"}`), true)
	f.Fuzz(func(t *testing.T, body []byte, known bool) {
		be := &fakeBackend{}
		id := fakeCommand
		if !known {
			id = protocol.NewID()
		}
		h := New(Config{}, be, slog.New(slog.DiscardHandler)).Handler()
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, protocol.LocalCommandPath(id), strings.NewReader(string(body))))
		_, decodeErr := protocol.DecodeLocalCommandReply(body)
		switch rec.Code {
		case http.StatusNoContent:
			if decodeErr != nil || len(be.replies) != 1 || !known {
				t.Fatalf("204 for a body the decoder refuses (%v) or an unknown id", decodeErr)
			}
		case http.StatusNotFound:
			if decodeErr != nil || known {
				t.Fatalf("404 for a known id or an invalid body (%v)", decodeErr)
			}
		case http.StatusBadRequest, http.StatusRequestEntityTooLarge:
			var e protocol.ErrorResponse
			if err := json.Unmarshal(rec.Body.Bytes(), &e); err != nil || e.Error == "" {
				t.Fatalf("error reply %q is not an ErrorResponse", rec.Body.String())
			}
			if decodeErr == nil || len(be.replies) != 0 {
				t.Fatalf("%d for a valid body", rec.Code)
			}
		default:
			t.Fatalf("status %d", rec.Code)
		}
	})
}
