package agentclient

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

// caseAgent is a hand-written stand-in for the agent's case endpoints,
// with the agent's replies: one rateable case, rated once.
type caseAgent struct {
	rated bool
}

func (a *caseAgent) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := protocol.LocalCase{CaseStatus: protocol.CaseStatus{Ticket: "261126-K-01-0007", State: protocol.CaseAnswered,
		Category: protocol.CatOther, Kind: protocol.KindHelp, Answer: "已处理", Rateable: !a.rated, Updated: t0},
		BoardVersion: 3, BoardReceived: t0}
	switch {
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalPathCheckinCode:
		writeJSON(w, http.StatusOK, protocol.CheckinCode{URL: "https://hub/m/checkin?k=k-01&s=1&sig=x", Expires: t0})
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalCasePath("2611260007"):
		writeJSON(w, http.StatusOK, c)
	case r.Method == http.MethodGet && r.URL.Path == protocol.LocalCasePath("2611260008"):
		c.Rating = protocol.RatingSatisfied // rated and rateable: not a valid case
		writeJSON(w, http.StatusOK, c)
	case r.Method == http.MethodPost && r.URL.Path == protocol.LocalRatingPath("2611260007"):
		data, err := io.ReadAll(io.LimitReader(r.Body, protocol.MaxLocalRatingRequestSize+1))
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		req, err := protocol.DecodeLocalRatingRequest(data)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		if a.rated {
			writeJSON(w, http.StatusConflict, protocol.ErrorResponse{Error: "该事项当前不可评价"})
			return
		}
		a.rated = true
		writeJSON(w, http.StatusAccepted, protocol.RatingReceipt{ID: protocol.NewID(), Ticket: c.Ticket, Rating: req.Rating, At: t0})
	default:
		writeJSON(w, http.StatusNotFound, protocol.ErrorResponse{Error: "未找到该查询码，请核对回执"})
	}
}

func TestCaseCalls(t *testing.T) {
	path := sockPath(t)
	serve(t, path, &caseAgent{})
	c := New(path)
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()

	got, err := c.Case(ctx, "2611260007")
	if err != nil || got.Ticket != "261126-K-01-0007" || !got.Rateable || got.BoardVersion != 3 {
		t.Fatalf("Case = %+v, %v", got, err)
	}
	var se *StatusError
	if _, err := c.Case(ctx, "2611260099"); !errors.As(err, &se) || se.Code != http.StatusNotFound || !strings.Contains(se.Message, "未找到") {
		t.Fatalf("unknown case: %v, want a 404 StatusError", err)
	}
	if _, err := c.Case(ctx, "2611260008"); !errors.Is(err, ErrMalformed) {
		t.Fatalf("invalid case: %v, want ErrMalformed", err)
	}
	for _, bad := range []string{"", "26112a", "../status", "2611260007/rating"} {
		if _, err := c.Case(ctx, bad); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("Case(%q) = %v, want ErrInvalid before any request", bad, err)
		}
	}
	if _, err := c.RateCase(ctx, "2611260007", "great"); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("bad rating: %v, want ErrInvalid", err)
	}
	rc, err := c.RateCase(ctx, "2611260007", protocol.RatingNotSatisfied)
	if err != nil || rc.Rating != protocol.RatingNotSatisfied || rc.Ticket != "261126-K-01-0007" {
		t.Fatalf("RateCase = %+v, %v", rc, err)
	}
	if _, err := c.RateCase(ctx, "2611260007", protocol.RatingSatisfied); !errors.As(err, &se) || se.Code != http.StatusConflict {
		t.Fatalf("second rating: %v, want a 409 StatusError", err)
	}
	cc, err := c.CheckinCode(ctx)
	if err != nil || !strings.HasPrefix(cc.URL, "https://hub/m/checkin?") || !cc.Expires.Equal(t0) {
		t.Fatalf("CheckinCode = %+v, %v", cc, err)
	}
}
