package releases

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/store"
)

// Mux is where the service adds its endpoints (hub/api.API).
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandleLarge(pattern string, h http.Handler, limit int64)
}

// maxRequest bounds a rollout or state-change request body.
const maxRequest = 64 << 10

// uploadDeadline is how long a bundle upload may take.
const uploadDeadline = 30 * time.Minute

// Register adds the staff endpoints:
//
//	POST /api/v1/releases[?notes=]            raw bundle body (Content-Length) → 201 Release; 400 if refused, 409 if the version exists
//	GET  /api/v1/releases                     → {"releases":[Release]} newest first
//	POST /api/v1/rollouts                     RolloutRequest → 201 RolloutView
//	GET  /api/v1/rollouts                     → {"rollouts":[RolloutView]} newest first
//	GET  /api/v1/rollouts/{id}                → RolloutView
//	POST /api/v1/rollouts/{id}/halt           {"reason":…} → RolloutView
//	POST /api/v1/rollouts/{id}/resume         → RolloutView
//	POST /api/v1/rollouts/{id}/cancel         {"reason":…} → RolloutView
func (s *Service) Register(m Mux) {
	m.HandleLarge("POST /api/v1/releases", http.HandlerFunc(s.upload), s.cfg.MaxUpload)
	m.Handle("GET /api/v1/releases", http.HandlerFunc(s.list))
	m.Handle("POST /api/v1/rollouts", http.HandlerFunc(s.start))
	m.Handle("GET /api/v1/rollouts", http.HandlerFunc(s.rollouts))
	m.Handle("GET /api/v1/rollouts/{id}", http.HandlerFunc(s.rollout))
	m.Handle("POST /api/v1/rollouts/{id}/halt", s.setState(store.RolloutHalted))
	m.Handle("POST /api/v1/rollouts/{id}/resume", s.setState(store.RolloutRunning))
	m.Handle("POST /api/v1/rollouts/{id}/cancel", s.setState(store.RolloutCancelled))
}

// Release is a release as the API shows it.
type Release struct {
	Version    string    `json:"version"`
	SHA256     string    `json:"sha256"`
	Size       int64     `json:"size"`
	Compatible string    `json:"compatible"`
	Build      string    `json:"build,omitempty"`
	Notes      string    `json:"notes,omitempty"`
	UploadedBy string    `json:"uploaded_by"`
	UploadedAt time.Time `json:"uploaded_at"`
}

// status maps the service's errors to HTTP statuses.
func status(err error) int {
	switch {
	case errors.Is(err, ErrBadRequest):
		return http.StatusBadRequest
	case errors.Is(err, ErrNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrConflict):
		return http.StatusConflict
	default:
		return http.StatusInternalServerError
	}
}

// UploadHandler is the upload endpoint's handler, for the console to mount
// behind its own authentication.
func (s *Service) UploadHandler() http.Handler { return http.HandlerFunc(s.upload) }

func (s *Service) upload(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.ContentLength < 0:
		jsonhttp.Error(w, s.log, http.StatusLengthRequired, errors.New("Content-Length is required"))
		return
	case r.ContentLength == 0:
		jsonhttp.Error(w, s.log, http.StatusBadRequest, errors.New("empty upload"))
		return
	case r.ContentLength > s.cfg.MaxUpload:
		jsonhttp.Error(w, s.log, http.StatusRequestEntityTooLarge, fmt.Errorf("upload of %d bytes, limit %d", r.ContentLength, s.cfg.MaxUpload))
		return
	}
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(uploadDeadline)
	if err := errors.Join(rc.SetReadDeadline(deadline), rc.SetWriteDeadline(deadline)); err != nil {
		s.log.Warn("could not extend the upload's deadlines", "err", err)
	}
	rec, err := s.Upload(r.Context(), r.Body, r.URL.Query().Get("notes"), jsonhttp.Actor(r.Context()))
	if err != nil {
		jsonhttp.Error(w, s.log, status(err), err)
		return
	}
	jsonhttp.Write(w, s.log, http.StatusCreated, Release(rec))
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	rs, err := s.Releases(r.Context())
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
		return
	}
	out := make([]Release, len(rs))
	for i, rec := range rs {
		out[i] = Release(rec)
	}
	jsonhttp.Write(w, s.log, http.StatusOK, struct {
		Releases []Release `json:"releases"`
	}{out})
}

func (s *Service) start(w http.ResponseWriter, r *http.Request) {
	body, code, err := jsonhttp.ReadBody(r, maxRequest)
	if err != nil {
		jsonhttp.Error(w, s.log, code, err)
		return
	}
	var req RolloutRequest
	if err := json.Unmarshal(body, &req); err != nil {
		jsonhttp.Error(w, s.log, http.StatusBadRequest, fmt.Errorf("rollout request: %w", err))
		return
	}
	ro, err := s.Start(r.Context(), req, jsonhttp.Actor(r.Context()))
	if err != nil {
		jsonhttp.Error(w, s.log, status(err), err)
		return
	}
	v, err := s.View(r.Context(), ro.ID)
	if err != nil {
		jsonhttp.Error(w, s.log, status(err), err)
		return
	}
	jsonhttp.Write(w, s.log, http.StatusCreated, v)
}

func (s *Service) rollouts(w http.ResponseWriter, r *http.Request) {
	vs, err := s.Views(r.Context())
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
		return
	}
	jsonhttp.Write(w, s.log, http.StatusOK, struct {
		Rollouts []RolloutView `json:"rollouts"`
	}{vs})
}

func (s *Service) rollout(w http.ResponseWriter, r *http.Request) {
	v, err := s.View(r.Context(), r.PathValue("id"))
	if err != nil {
		jsonhttp.Error(w, s.log, status(err), err)
		return
	}
	jsonhttp.Write(w, s.log, http.StatusOK, v)
}

func (s *Service) setState(state string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var req struct {
			Reason string `json:"reason"`
		}
		body, code, err := jsonhttp.ReadBody(r, maxRequest)
		if err != nil {
			jsonhttp.Error(w, s.log, code, err)
			return
		}
		if len(body) > 0 {
			if err := json.Unmarshal(body, &req); err != nil {
				jsonhttp.Error(w, s.log, http.StatusBadRequest, fmt.Errorf("request: %w", err))
				return
			}
		}
		if len([]rune(req.Reason)) > 200 {
			jsonhttp.Error(w, s.log, http.StatusBadRequest, errors.New("reason longer than 200 characters"))
			return
		}
		if _, err := s.SetState(r.Context(), r.PathValue("id"), state, req.Reason); err != nil {
			jsonhttp.Error(w, s.log, status(err), err)
			return
		}
		v, err := s.View(r.Context(), r.PathValue("id"))
		if err != nil {
			jsonhttp.Error(w, s.log, status(err), err)
			return
		}
		jsonhttp.Write(w, s.log, http.StatusOK, v)
	})
}
