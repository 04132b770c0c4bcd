package accounts

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/store"
)

// maxAccountRequest bounds the body of POST /api/v1/accounts.
const maxAccountRequest = 4 << 10

// AccountRequest is the body of POST /api/v1/accounts.
type AccountRequest struct {
	Username    string `json:"username"`
	DisplayName string `json:"display_name"`
	Role        Role   `json:"role"`
	Node        string `json:"node"`
	Password    string `json:"password"`
}

// DecodeAccountRequest strictly decodes an account request: one JSON
// object of at most 4 KiB without unknown fields.
func DecodeAccountRequest(b []byte) (AccountRequest, error) {
	var req AccountRequest
	if len(b) > maxAccountRequest {
		return req, fmt.Errorf("%w: account request is %d bytes, limit %d", ErrInvalid, len(b), maxAccountRequest)
	}
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	if err := d.Decode(&req); err != nil {
		return req, fmt.Errorf("%w: account request: %v", ErrInvalid, err)
	}
	if _, err := d.Token(); err != io.EOF {
		return req, fmt.Errorf("%w: account request: trailing data", ErrInvalid)
	}
	return req, nil
}

// Mux is where the admin endpoints go (hub/api.API, behind the admin token).
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// RegisterAdmin adds the endpoints the hub CLI uses to bootstrap and list
// accounts, behind the API's authentication (audited as the request's
// actor, jsonhttp.Actor: "admin-token" or the personal token's account):
//
//	POST /api/v1/accounts  AccountRequest → 201 Account; 400 invalid or weak password; 409 username taken
//	GET  /api/v1/accounts  → {"accounts":[Account]}
func (s *Service) RegisterAdmin(m Mux) {
	m.Handle("POST /api/v1/accounts", http.HandlerFunc(s.createHandler))
	m.Handle("GET /api/v1/accounts", http.HandlerFunc(s.listHandler))
}

func (s *Service) createHandler(w http.ResponseWriter, r *http.Request) {
	body, code, err := jsonhttp.ReadBody(r, maxAccountRequest)
	if err != nil {
		jsonhttp.Error(w, s.log, code, err)
		return
	}
	req, err := DecodeAccountRequest(body)
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusBadRequest, err)
		return
	}
	actor := jsonhttp.Actor(r.Context())
	if actor == "" {
		actor = "admin-token" // mounted without the API's authentication: tests
	}
	a, err := s.CreateAccount(r.Context(), actor, NewAccount(req))
	switch {
	case errors.Is(err, ErrInvalid), errors.Is(err, ErrWeakPassword):
		jsonhttp.Error(w, s.log, http.StatusBadRequest, err)
	case errors.Is(err, store.ErrUsernameTaken):
		jsonhttp.Error(w, s.log, http.StatusConflict, fmt.Errorf("username %q is taken", req.Username))
	case err != nil:
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
	default:
		s.log.Info("account created", "id", a.ID, "username", a.Username, "role", a.Role, "node", a.Node)
		jsonhttp.Write(w, s.log, http.StatusCreated, a)
	}
}

func (s *Service) listHandler(w http.ResponseWriter, r *http.Request) {
	rs, err := s.cfg.Store.Accounts(r.Context())
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
		return
	}
	out := make([]Account, len(rs))
	for i, rec := range rs {
		out[i] = view(rec)
	}
	jsonhttp.Write(w, s.log, http.StatusOK, struct {
		Accounts []Account `json:"accounts"`
	}{out})
}
