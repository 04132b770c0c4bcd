// Package localapi serves the agent's local API (see protocol/local.go) as
// JSON over HTTP on a Unix socket, for the kiosk UI and for technicians
// (curl --unix-socket).
//
// The socket is mode 0660, owned by the agent's user and, with
// Config.SocketGroup, by the kiosk UI's group: only they can submit
// feedback or enrol the device. Keep it in a directory others cannot
// write (e.g. /run/shequ, 0750).
package localapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/user"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/shequ/shequ/agent/enrol"
	"github.com/shequ/shequ/protocol"
)

// Errors a Backend returns that the API answers with a specific status.
var (
	// ErrNotEnrolled: the device has no identity yet (503).
	ErrNotEnrolled = errors.New("本机尚未注册 / this kiosk is not enrolled")
	// ErrAlreadyEnrolled: enrolment asked for on an enrolled device (409).
	ErrAlreadyEnrolled = errors.New("本机已注册 / this kiosk is already enrolled")
	// ErrNoHub: the agent has no hub URL to enrol with (503).
	ErrNoHub = errors.New("未配置中心地址 / no hub URL configured for enrolment (agent -hub)")
	// ErrNoCase: the case board has no such case of this kiosk (404).
	ErrNoCase = errors.New("未找到该查询码，请核对回执 / no such case at this kiosk")
	// ErrNotRateable: the case may not be rated now (409).
	ErrNotRateable = errors.New("该事项当前不可评价 / this case cannot be rated now")
	// ErrNoCommand: no command waits for an answer under that id (404).
	ErrNoCommand = errors.New("没有等待答复的命令 / no command waits for this answer")
)

// Backend is what the local API serves. The agent implements it.
type Backend interface {
	// Enrol enrols the device with a claim code; errors of agent/enrol
	// and the errors above are answered with their own status.
	Enrol(ctx context.Context, claimCode string) error
	SubmitFeedback(req protocol.FeedbackRequest) (protocol.FeedbackReceipt, error)
	Notices() (protocol.LocalNotices, error)
	// Play counts a play event (proof of play; the file on screen).
	Play(e protocol.PlayEvent) error
	// MediaError records that the kiosk cannot play a held file.
	MediaError(e protocol.MediaError) error
	Status() protocol.AgentStatus
	// Case looks up a case by ticket or query code (ErrNoCase).
	Case(ticketOrCode string) (protocol.LocalCase, error)
	// Rate stores a rating in the outbox (ErrNoCase, ErrNotRateable).
	Rate(ticketOrCode string, r protocol.Rating) (protocol.RatingReceipt, error)
	// CheckinCode signs the current check-in code (ErrNoHub without a hub URL).
	CheckinCode() (protocol.CheckinCode, error)
	// Subscribe returns a stream of events and a function that ends it.
	Subscribe() (events <-chan protocol.LocalEvent, cancel func())
	// CommandReply takes the kiosk UI's answer to a remote command it
	// was told of (ErrNoCommand).
	CommandReply(id string, r protocol.LocalCommandReply) error
}

// Config configures a Server. Zero values mean the defaults.
type Config struct {
	Socket       string        // Unix socket path; required for Start
	SocketGroup  string        // group name the socket is chowned to; empty: the process's group
	PingInterval time.Duration // SSE keep-alive comment; default 15s
}

// Server is the local API server.
type Server struct {
	cfg  Config
	b    Backend
	log  *slog.Logger
	srv  *http.Server
	done chan struct{} // closed on shutdown: ends event streams

	closeOnce sync.Once
	served    chan error
}

// New returns a server for b.
func New(cfg Config, b Backend, log *slog.Logger) *Server {
	if cfg.PingInterval <= 0 {
		cfg.PingInterval = 15 * time.Second
	}
	s := &Server{cfg: cfg, b: b, log: log, done: make(chan struct{}), served: make(chan error, 1)}
	s.srv = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       10 * time.Second,
		WriteTimeout:      10 * time.Second, // lifted for event streams
		IdleTimeout:       60 * time.Second,
		MaxHeaderBytes:    16 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	s.srv.RegisterOnShutdown(func() { s.stopStreams() })
	return s
}

func (s *Server) stopStreams() {
	s.closeOnce.Do(func() { close(s.done) })
}

// Handler returns the API's HTTP handler.
func (s *Server) Handler() http.Handler {
	routes := map[string]map[string]http.HandlerFunc{
		protocol.LocalPathNotices:     {http.MethodGet: s.notices},
		protocol.LocalPathFeedback:    {http.MethodPost: s.feedback},
		protocol.LocalPathStatus:      {http.MethodGet: s.status},
		protocol.LocalPathEvents:      {http.MethodGet: s.events},
		protocol.LocalPathEnrol:       {http.MethodPost: s.enrol},
		protocol.LocalPathPlays:       {http.MethodPost: s.play},
		protocol.LocalPathMediaErrors: {http.MethodPost: s.mediaError},
		protocol.LocalPathCheckinCode: {http.MethodGet: s.checkinCode},
		// GET {LocalPathCases}/{ticket} and POST .../{ticket}/rating: see cases.
		protocol.LocalPathCases + "/": {http.MethodGet: s.getCase, http.MethodPost: s.rate},
		// POST {LocalPathCommands}/{id}: see commandReply.
		protocol.LocalPathCommands + "/": {http.MethodPost: s.commandReply},
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		path := r.URL.Path
		for _, prefix := range []string{protocol.LocalPathCases + "/", protocol.LocalPathCommands + "/"} {
			if strings.HasPrefix(path, prefix) {
				path = prefix
			}
		}
		methods, ok := routes[path]
		if !ok {
			s.writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
			return
		}
		h, ok := methods[r.Method]
		if !ok {
			for m := range methods {
				w.Header().Set("Allow", m)
			}
			s.writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
			return
		}
		h(w, r)
	})
}

// Start listens on the socket and serves in the background. A stale socket
// file left by a crash is removed; a socket another process still serves,
// or a path that is not a socket, is an error.
func (s *Server) Start() error {
	path := s.cfg.Socket
	if fi, err := os.Lstat(path); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return fmt.Errorf("localapi: %s exists and is not a socket", path)
		}
		if c, err := net.DialTimeout("unix", path, time.Second); err == nil {
			if cerr := c.Close(); cerr != nil {
				s.log.Warn("closing probe connection", "err", cerr)
			}
			return fmt.Errorf("localapi: %s is in use by another process", path)
		}
		if err := os.Remove(path); err != nil {
			return fmt.Errorf("localapi: remove stale socket: %w", err)
		}
	}
	ln, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("localapi: listen: %w", err)
	}
	if err := os.Chmod(path, 0o660); err != nil {
		return errors.Join(fmt.Errorf("localapi: chmod socket: %w", err), ln.Close())
	}
	if g := s.cfg.SocketGroup; g != "" {
		if err := chgrp(path, g); err != nil {
			return errors.Join(fmt.Errorf("localapi: socket group: %w", err), ln.Close())
		}
	}
	go func() {
		err := s.srv.Serve(ln)
		if errors.Is(err, http.ErrServerClosed) {
			err = nil
		}
		s.served <- err
	}()
	s.log.Info("local API listening", "socket", path)
	return nil
}

// Close ends event streams, shuts the server down (waiting up to 5 s for
// requests in progress) and removes the socket file.
func (s *Server) Close() error {
	s.stopStreams()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := s.srv.Shutdown(ctx)
	if err != nil {
		err = fmt.Errorf("localapi: shutdown: %w", err)
	}
	select {
	case serr := <-s.served:
		if serr != nil {
			err = errors.Join(err, fmt.Errorf("localapi: serve: %w", serr))
		}
	default: // never started
	}
	return err
}

func (s *Server) writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if err := json.NewEncoder(w).Encode(v); err != nil {
		s.log.Debug("reply not written; client gone", "err", err)
	}
}

func (s *Server) writeError(w http.ResponseWriter, code int, msg string) {
	s.writeJSON(w, code, protocol.ErrorResponse{Error: msg})
}

func (s *Server) notices(w http.ResponseWriter, r *http.Request) {
	n, err := s.b.Notices()
	if err != nil {
		s.log.Error("notices", "err", err)
		s.writeError(w, http.StatusInternalServerError, "notices unavailable")
		return
	}
	s.writeJSON(w, http.StatusOK, n)
}

func (s *Server) status(w http.ResponseWriter, r *http.Request) {
	s.writeJSON(w, http.StatusOK, s.b.Status())
}

func (s *Server) feedback(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, protocol.MaxFeedbackRequestSize, "feedback request")
	if !ok {
		return
	}
	req, err := protocol.DecodeFeedbackRequest(body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	rc, err := s.b.SubmitFeedback(req)
	switch {
	case errors.Is(err, protocol.ErrInvalid):
		s.writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotEnrolled):
		s.writeError(w, http.StatusServiceUnavailable, ErrNotEnrolled.Error())
	case err != nil:
		s.log.Error("feedback not saved", "err", err)
		s.writeError(w, http.StatusInternalServerError, "feedback not saved; please try again")
	default:
		s.writeJSON(w, http.StatusCreated, rc)
	}
}

// play counts a play event: 204.
func (s *Server) play(w http.ResponseWriter, r *http.Request) {
	report(s, w, r, "play event", protocol.DecodePlayEvent, s.b.Play)
}

// mediaError takes the kiosk's report of a held file it cannot play: 204.
func (s *Server) mediaError(w http.ResponseWriter, r *http.Request) {
	report(s, w, r, "media error", protocol.DecodeMediaError, s.b.MediaError)
}

// commandReply serves POST /v1/commands/{id}: the kiosk UI's answer to a
// remote command. 204 when taken; 404 when no command waits for it.
func (s *Server) commandReply(w http.ResponseWriter, r *http.Request) {
	id := strings.TrimPrefix(r.URL.Path, protocol.LocalPathCommands+"/")
	if len(id) != 36 || strings.Contains(id, "/") {
		s.writeError(w, http.StatusNotFound, "no such endpoint: "+r.URL.Path)
		return
	}
	body, ok := s.readBody(w, r, protocol.MaxLocalCommandReplySize, "command reply")
	if !ok {
		return
	}
	reply, err := protocol.DecodeLocalCommandReply(body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	err = s.b.CommandReply(id, reply)
	switch {
	case errors.Is(err, ErrNoCommand):
		s.writeError(w, http.StatusNotFound, ErrNoCommand.Error())
	case errors.Is(err, protocol.ErrInvalid):
		s.writeError(w, http.StatusBadRequest, err.Error())
	case err != nil:
		s.log.Error("command reply not taken", "err", err)
		s.writeError(w, http.StatusInternalServerError, "command reply not taken")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// readBody reads a request body of at most limit bytes; on failure it
// answers (413 over the limit, 400 otherwise) and returns false.
func (s *Server) readBody(w http.ResponseWriter, r *http.Request, limit int64, what string) ([]byte, bool) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, limit))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		s.writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("%s larger than %d bytes", what, limit))
		return nil, false
	case err != nil:
		s.writeError(w, http.StatusBadRequest, "reading request: "+err.Error())
		return nil, false
	}
	return body, true
}

// report serves a small report from the kiosk (a play event, a media
// error): the body is read within protocol.MaxPlayEventSize, strictly
// decoded and handed to apply; 204 when done, a JSON error otherwise.
func report[T any](s *Server, w http.ResponseWriter, r *http.Request, what string,
	decode func([]byte) (T, error), apply func(T) error) {
	body, ok := s.readBody(w, r, protocol.MaxPlayEventSize, what)
	if !ok {
		return
	}
	v, err := decode(body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	err = apply(v)
	switch {
	case errors.Is(err, protocol.ErrInvalid):
		s.writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, ErrNotEnrolled):
		s.writeError(w, http.StatusServiceUnavailable, ErrNotEnrolled.Error())
	case err != nil:
		s.log.Error(what+" not recorded", "err", err)
		s.writeError(w, http.StatusInternalServerError, what+" not recorded")
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// maxEnrolTime bounds an enrolment request, which waits for the hub.
const maxEnrolTime = 45 * time.Second

// enrol enrols the device with the claim code typed on the setup screen
// and answers with the new status.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	body, ok := s.readBody(w, r, protocol.MaxEnrolRequestSize, "enrol request")
	if !ok {
		return
	}
	req, err := protocol.DecodeLocalEnrolRequest(body)
	if err != nil {
		s.writeError(w, http.StatusBadRequest, "认领码应为12位数字 / "+err.Error())
		return
	}
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Now().Add(maxEnrolTime + 5*time.Second)); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.log.Warn("enrol: write deadline not lifted", "err", err)
	}
	ctx, cancel := context.WithTimeout(r.Context(), maxEnrolTime)
	defer cancel()
	err = s.b.Enrol(ctx, req.ClaimCode)
	var code int
	switch {
	case err == nil:
		s.writeJSON(w, http.StatusOK, s.b.Status())
		return
	case errors.Is(err, ErrAlreadyEnrolled):
		code = http.StatusConflict
	case errors.Is(err, ErrNoHub):
		code = http.StatusServiceUnavailable
	case errors.Is(err, enrol.ErrConfig):
		code = http.StatusBadRequest
	case errors.Is(err, enrol.ErrRefused):
		code = http.StatusForbidden
	default: // unreachable, untrusted or a bad answer from the hub
		code = http.StatusBadGateway
	}
	s.writeError(w, code, err.Error())
}

// chgrp gives the socket to a group, so the kiosk UI running as another
// user in that group can connect.
func chgrp(path, group string) error {
	g, err := user.LookupGroup(group)
	if err != nil {
		return err
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return fmt.Errorf("group %s: gid %q: %w", group, g.Gid, err)
	}
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("chown %s to group %s: %w", path, group, err)
	}
	return nil
}

// events streams LocalEvents as Server-Sent Events until the client leaves
// or the server shuts down.
func (s *Server) events(w http.ResponseWriter, r *http.Request) {
	rc := http.NewResponseController(w)
	if err := rc.SetWriteDeadline(time.Time{}); err != nil && !errors.Is(err, http.ErrNotSupported) {
		s.writeError(w, http.StatusInternalServerError, "cannot stream: "+err.Error())
		return
	}
	events, cancel := s.b.Subscribe()
	defer cancel()
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Accel-Buffering", "no")
	w.WriteHeader(http.StatusOK)
	if err := rc.Flush(); err != nil {
		return
	}
	ping := time.NewTicker(s.cfg.PingInterval)
	defer ping.Stop()
	for {
		var chunk []byte
		select {
		case <-r.Context().Done():
			return
		case <-s.done:
			return
		case ev, ok := <-events:
			if !ok {
				return
			}
			data, err := json.Marshal(ev)
			if err != nil {
				s.log.Error("encode event", "err", err)
				return
			}
			chunk = fmt.Appendf(nil, "data: %s\n\n", data)
		case <-ping.C:
			chunk = []byte(": ping\n\n")
		}
		if _, err := w.Write(chunk); err != nil {
			return
		}
		if err := rc.Flush(); err != nil {
			return
		}
	}
}
