package hubtest

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

// Claim is a claim code the fake enrolment server accepts once.
type Claim struct {
	Code        string // normalised, 12 digits
	Kiosk       string
	Groups      []string
	TicketFloor uint64
}

// EnrolServer is a fake hub enrolment endpoint over HTTPS, with a server
// certificate from the broker's CA.
type EnrolServer struct {
	URL string
	Srv *httptest.Server

	mu       sync.Mutex
	claims   map[string]Claim
	requests []protocol.EnrolRequest
}

// StartEnrol serves POST /api/v1/enrol for claims until the end of the
// test. A valid claim code enrols the device (Hub.Enrolment) once; any
// other request gets 403 or 400 with an ErrorResponse.
func (h *Hub) StartEnrol(t testing.TB, claims ...Claim) *EnrolServer {
	t.Helper()
	e := &EnrolServer{claims: map[string]Claim{}}
	for _, c := range claims {
		e.claims[c.Code] = c
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST "+protocol.HubPathEnrol, func(w http.ResponseWriter, r *http.Request) {
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, protocol.MaxEnrolRequestSize))
		if err != nil {
			writeJSON(w, http.StatusRequestEntityTooLarge, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		req, err := protocol.DecodeEnrolRequest(data)
		if err != nil {
			writeJSON(w, http.StatusBadRequest, protocol.ErrorResponse{Error: err.Error()})
			return
		}
		e.mu.Lock()
		e.requests = append(e.requests, req)
		c, ok := e.claims[req.ClaimCode]
		delete(e.claims, req.ClaimCode)
		e.mu.Unlock()
		if !ok {
			writeJSON(w, http.StatusForbidden, protocol.ErrorResponse{Error: "认领码无效、已使用或已过期 / claim code unknown, used or expired"})
			return
		}
		resp := h.Enrolment(c.Kiosk, c.Groups...)
		resp.TicketFloor = c.TicketFloor
		writeJSON(w, http.StatusOK, resp)
	})
	e.Srv = h.b.CA.StartTLS(t, mux)
	e.URL = e.Srv.URL
	return e
}

// Requests returns the enrolment requests received so far.
func (e *EnrolServer) Requests() []protocol.EnrolRequest {
	e.mu.Lock()
	defer e.mu.Unlock()
	return append([]protocol.EnrolRequest(nil), e.requests...)
}

// StartTLS serves h over HTTPS on loopback with a server certificate from
// ca (chain: server certificate, then ca) until the end of the test.
func (ca *CA) StartTLS(t testing.TB, h http.Handler) *httptest.Server {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.TLS = ca.ServerConfig(t)
	srv.StartTLS()
	t.Cleanup(srv.Close)
	return srv
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		return // client gone; the test sees the failure on its side
	}
}

// EnrolDir gives the agent data directory dir an identity for kiosk, as if
// it had enrolled (a device key and the hub's Enrolment), without HTTP.
func (h *Hub) EnrolDir(t testing.TB, dir, kiosk string, groups ...string) protocol.EnrolResponse {
	t.Helper()
	st, err := store.Open(filepath.Join(dir, "agent.db"))
	if err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	defer func() {
		if err := st.Close(); err != nil {
			t.Errorf("hubtest: %v", err)
		}
	}()
	if _, err := st.DeviceKey(); err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	r := h.Enrolment(kiosk, groups...)
	if err := st.SaveIdentity(store.IdentityFrom(r, "", time.Now()), 0); err != nil {
		t.Fatalf("hubtest: %v", err)
	}
	return r
}
