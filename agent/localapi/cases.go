package localapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/shequ/shequ/protocol"
)

// caseKey returns the {ticket} of /v1/cases/{ticket}[/rating] and whether
// the path has the /rating suffix. The key is a ticket or a query code:
// 1–40 characters of [A-Za-z0-9-].
func caseKey(path string) (key string, rating, ok bool) {
	rest := strings.TrimPrefix(path, protocol.LocalPathCases+"/")
	key, rating = strings.CutSuffix(rest, "/rating")
	if key == "" || len(key) > protocol.MaxTicket {
		return "", false, false
	}
	for _, r := range key {
		if !(r >= 'A' && r <= 'Z' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '-') {
			return "", false, false
		}
	}
	return key, rating, true
}

// getCase serves GET /v1/cases/{ticket}.
func (s *Server) getCase(w http.ResponseWriter, r *http.Request) {
	key, rating, ok := caseKey(r.URL.Path)
	if !ok || rating {
		s.writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	c, err := s.b.Case(key)
	if err != nil {
		s.caseError(w, "case lookup", err)
		return
	}
	s.writeJSON(w, http.StatusOK, c)
}

// rate serves POST /v1/cases/{ticket}/rating: 202 once the rating record
// is durable in the outbox.
func (s *Server) rate(w http.ResponseWriter, r *http.Request) {
	key, rating, ok := caseKey(r.URL.Path)
	if !ok || !rating {
		s.writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	body, ok := s.readBody(w, r, protocol.MaxLocalRatingRequestSize, "rating request")
	if !ok {
		return
	}
	req, err := protocol.DecodeLocalRatingRequest(body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rc, err := s.b.Rate(key, req.Rating)
	if err != nil {
		s.caseError(w, "rating", err)
		return
	}
	s.writeJSON(w, http.StatusAccepted, rc)
}

// caseError answers a case lookup or rating error with its status.
func (s *Server) caseError(w http.ResponseWriter, what string, err error) {
	switch {
	case errors.Is(err, ErrNoCase):
		s.writeError(w, http.StatusNotFound, ErrNoCase.Error())
	case errors.Is(err, ErrNotRateable):
		s.writeError(w, http.StatusConflict, ErrNotRateable.Error())
	case errors.Is(err, protocol.ErrInvalid):
		s.writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotEnrolled):
		s.writeError(w, http.StatusServiceUnavailable, ErrNotEnrolled.Error())
	default:
		s.log.Error(what+" failed", "err", err)
		s.writeError(w, http.StatusInternalServerError, what+" failed; please try again")
	}
}

// checkinCode serves GET /v1/checkin-code.
func (s *Server) checkinCode(w http.ResponseWriter, r *http.Request) {
	c, err := s.b.CheckinCode()
	switch {
	case errors.Is(err, ErrNotEnrolled):
		s.writeError(w, http.StatusServiceUnavailable, ErrNotEnrolled.Error())
	case errors.Is(err, ErrNoHub):
		s.writeError(w, http.StatusServiceUnavailable, ErrNoHub.Error())
	case err != nil:
		s.log.Error("check-in code failed", "err", err)
		s.writeError(w, http.StatusInternalServerError, "check-in code unavailable")
	default:
		s.writeJSON(w, http.StatusOK, c)
	}
}
