// Package remote sends remote commands to kiosks — a screenshot, a restart
// of the kiosk UI or of the agent — and keeps their results and each
// kiosk's latest screenshot (protocol/command.go).
//
//	POST /api/v1/kiosks/{id}/commands   CommandRequest → 202 Command
//	GET  /api/v1/kiosks/{id}/commands   → {"commands":[Command]} (newest first)
//	GET  /api/v1/kiosks/{id}/screenshot → the latest screenshot (image/png or image/jpeg; 404 if none)
//
// The console's fleet pages call Send, Commands and Screenshot directly.
// Every command sent is recorded in the audit log (kiosk.command of
// "kiosk:<id>", by the request's actor) and so is its result when the
// kiosk reports it (kiosk.command_result, by "kiosk:<id>").
package remote

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shequ/shequ/hub/fleet"
	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Store is what the service needs from the hub database.
type Store interface {
	InsertCommand(ctx context.Context, c store.CommandRecord) error
	FinishCommand(ctx context.Context, resultID string, r protocol.CommandResult, at time.Time) (store.CommandRecord, bool, error)
	KioskCommands(ctx context.Context, kiosk string, limit int) ([]store.CommandRecord, error)
	Screenshot(ctx context.Context, kiosk string) (store.ScreenshotRecord, error)
}

var _ Store = (*store.SQLite)(nil)

// Signer gives the key commands are signed with (the hub's current key).
type Signer interface {
	Signer() ed25519.PrivateKey
}

// Mux is where the service registers its API endpoints.
type Mux interface {
	Handle(pattern string, h http.Handler)
}

// Errors.
var (
	// ErrUnknownKiosk means the kiosk is not in the org tree.
	ErrUnknownKiosk = errors.New("remote: no such kiosk")
	// ErrAction means the action is not one of protocol.Actions.
	ErrAction = errors.New("remote: unknown action")
	// ErrNotSent means the command was stored but could not be handed to
	// the broker; it shows as unanswered.
	ErrNotSent = errors.New("remote: command not sent")
)

// Config configures the service. Every field but TTL, Audit and Now is
// required.
type Config struct {
	Store  Store
	Tree   *orgtree.Tree
	Signer Signer
	// Publish hands a message to the broker (hub/fleet.Fleet.Publish).
	Publish func(ctx context.Context, t protocol.Topic, payload []byte) error
	// TTL is how long a command may take to arrive; default
	// protocol.DefaultCommandTTL, at most protocol.MaxCommandTTL.
	TTL time.Duration
	// Audit records a change in the hub's audit log, by
	// jsonhttp.Actor(ctx) (accounts.Service.AuditChange); nil: no audit.
	Audit func(ctx context.Context, action, object string, before, after any)
	Now   func() time.Time // default time.Now
}

// Service sends commands and takes their results.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns the service.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.Store == nil || cfg.Tree == nil || cfg.Signer == nil || cfg.Publish == nil {
		return nil, errors.New("remote: Store, Tree, Signer and Publish are required")
	}
	if cfg.TTL <= 0 {
		cfg.TTL = protocol.DefaultCommandTTL
	}
	if cfg.TTL > protocol.MaxCommandTTL {
		return nil, fmt.Errorf("remote: TTL %v is over %v", cfg.TTL, protocol.MaxCommandTTL)
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, string, string, any, any) {}
	}
	return &Service{cfg: cfg, log: log}, nil
}

// Command is a command as the API and the console show it.
type Command struct {
	ID          string    `json:"id"`
	Kiosk       string    `json:"kiosk"`
	Action      string    `json:"action"`
	RequestedBy string    `json:"requested_by"`
	RequestedAt time.Time `json:"requested_at"`
	ExpiresAt   time.Time `json:"expires_at"`
	// Status is "sent" until the kiosk answers ("ok", "refused",
	// "failed"), or "unanswered" once a sent command has expired.
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
}

// Unanswered is the status of a sent command that expired without a
// result (the kiosk was offline, or the command was lost).
const Unanswered = "unanswered"

func (s *Service) view(c store.CommandRecord) Command {
	v := Command{ID: c.ID, Kiosk: c.Kiosk, Action: c.Action, RequestedBy: c.RequestedBy, RequestedAt: c.RequestedAt,
		ExpiresAt: c.ExpiresAt, Status: c.Status, Reason: c.Reason, FinishedAt: c.FinishedAt}
	if v.Status == store.CommandSent && !s.cfg.Now().Before(c.ExpiresAt) {
		v.Status = Unanswered
	}
	return v
}

// auditCommand is the audit record of a command sent.
type auditCommand struct {
	Command string `json:"command"`
	Action  string `json:"action"`
}

// auditResult is the audit record of a command's result.
type auditResult struct {
	Command string `json:"command"`
	Action  string `json:"action"`
	Status  string `json:"status"`
	Reason  string `json:"reason,omitempty"`
}

// Send stores, signs and publishes a command to a kiosk, on behalf of
// jsonhttp.Actor(ctx), and audits it. A command that was stored but not
// published is returned with an error wrapping ErrNotSent.
func (s *Service) Send(ctx context.Context, kiosk string, action protocol.Action) (Command, error) {
	if _, ok := s.cfg.Tree.Kiosk(kiosk); !ok {
		return Command{}, fmt.Errorf("%w: %q", ErrUnknownKiosk, kiosk)
	}
	if !slices.Contains(protocol.Actions, action) {
		return Command{}, fmt.Errorf("%w: %q", ErrAction, action)
	}
	by := jsonhttp.Actor(ctx)
	if by == "" {
		by = "system"
	}
	now := s.cfg.Now().UTC().Truncate(time.Millisecond)
	c := protocol.Command{ID: protocol.NewID(), Kiosk: kiosk, Action: action, By: by, Issued: now, Expires: now.Add(s.cfg.TTL)}
	if err := c.Validate(); err != nil {
		return Command{}, fmt.Errorf("remote: %w", err)
	}
	payload, err := protocol.EncodeSigned(c.ID, protocol.TypeCommand, now, c, s.cfg.Signer.Signer())
	if err != nil {
		return Command{}, fmt.Errorf("remote: %w", err)
	}
	rec := store.CommandRecord{ID: c.ID, Kiosk: kiosk, Action: string(action), RequestedBy: by, RequestedAt: now,
		ExpiresAt: c.Expires, Status: store.CommandSent}
	if err := s.cfg.Store.InsertCommand(ctx, rec); err != nil {
		return Command{}, fmt.Errorf("remote: %w", err)
	}
	s.cfg.Audit(ctx, "kiosk.command", "kiosk:"+kiosk, nil, auditCommand{Command: c.ID, Action: string(action)})
	s.log.Info("remote command sent", "kiosk", kiosk, "command", c.ID, "action", action, "by", by)
	if err := s.cfg.Publish(ctx, protocol.DownTopic(kiosk, protocol.ChannelCommand), payload); err != nil {
		return s.view(rec), fmt.Errorf("%w: %w", ErrNotSent, err)
	}
	return s.view(rec), nil
}

// ResultReceived stores a kiosk's result of a command (fleet.Config's
// ResultReceived) and audits it once. A result of a command the kiosk was
// never sent wraps fleet.ErrRejected.
func (s *Service) ResultReceived(ctx context.Context, id string, r protocol.CommandResult, at time.Time) error {
	c, dup, err := s.cfg.Store.FinishCommand(ctx, id, r, at)
	if errors.Is(err, store.ErrNotFound) {
		return fmt.Errorf("%w: no command %s of this kiosk", fleet.ErrRejected, r.Command)
	}
	if err != nil {
		return fmt.Errorf("remote: %w", err)
	}
	if !dup {
		s.cfg.Audit(jsonhttp.WithActor(ctx, "kiosk:"+r.Kiosk), "kiosk.command_result", "kiosk:"+r.Kiosk, nil,
			auditResult{Command: c.ID, Action: c.Action, Status: c.Status, Reason: c.Reason})
	}
	return nil
}

// Commands returns the newest commands of a kiosk, newest first.
func (s *Service) Commands(ctx context.Context, kiosk string, limit int) ([]Command, error) {
	recs, err := s.cfg.Store.KioskCommands(ctx, kiosk, limit)
	if err != nil {
		return nil, fmt.Errorf("remote: %w", err)
	}
	out := make([]Command, 0, len(recs))
	for _, r := range recs {
		out = append(out, s.view(r))
	}
	return out, nil
}

// Screenshot returns the latest screenshot of a kiosk (wrapping
// store.ErrNotFound if none).
func (s *Service) Screenshot(ctx context.Context, kiosk string) (store.ScreenshotRecord, error) {
	sh, err := s.cfg.Store.Screenshot(ctx, kiosk)
	if err != nil {
		return sh, fmt.Errorf("remote: %w", err)
	}
	return sh, nil
}

// Register adds the API endpoints to m.
func (s *Service) Register(m Mux) {
	m.Handle("POST /api/v1/kiosks/{id}/commands", http.HandlerFunc(s.send))
	m.Handle("GET /api/v1/kiosks/{id}/commands", http.HandlerFunc(s.list))
	m.Handle("GET /api/v1/kiosks/{id}/screenshot", http.HandlerFunc(s.screenshot))
}

// CommandRequest is the body of POST /api/v1/kiosks/{id}/commands.
type CommandRequest struct {
	Action protocol.Action `json:"action"`
}

func (s *Service) send(w http.ResponseWriter, r *http.Request) {
	body, code, err := jsonhttp.ReadBody(r, 1<<10)
	if err != nil {
		jsonhttp.Error(w, s.log, code, err)
		return
	}
	var req CommandRequest
	if err := strictJSON(body, &req); err != nil {
		jsonhttp.Error(w, s.log, http.StatusBadRequest, err)
		return
	}
	c, err := s.Send(r.Context(), r.PathValue("id"), req.Action)
	switch {
	case errors.Is(err, ErrUnknownKiosk):
		jsonhttp.Error(w, s.log, http.StatusNotFound, err)
	case errors.Is(err, ErrAction):
		jsonhttp.Error(w, s.log, http.StatusBadRequest, err)
	case errors.Is(err, ErrNotSent):
		jsonhttp.Error(w, s.log, http.StatusServiceUnavailable, err)
	case err != nil:
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
	default:
		jsonhttp.Write(w, s.log, http.StatusAccepted, c)
	}
}

func (s *Service) list(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if _, ok := s.cfg.Tree.Kiosk(id); !ok {
		jsonhttp.Error(w, s.log, http.StatusNotFound, fmt.Errorf("%w: %q", ErrUnknownKiosk, id))
		return
	}
	cs, err := s.Commands(r.Context(), id, 100)
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
		return
	}
	jsonhttp.Write(w, s.log, http.StatusOK, struct {
		Commands []Command `json:"commands"`
	}{cs})
}

func (s *Service) screenshot(w http.ResponseWriter, r *http.Request) {
	sh, err := s.Screenshot(r.Context(), r.PathValue("id"))
	if errors.Is(err, store.ErrNotFound) {
		jsonhttp.Error(w, s.log, http.StatusNotFound, errors.New("no screenshot of this kiosk"))
		return
	}
	if err != nil {
		jsonhttp.Error(w, s.log, http.StatusInternalServerError, err)
		return
	}
	if err := ServeScreenshot(w, sh); err != nil {
		s.log.Debug("screenshot not sent", "kiosk", sh.Kiosk, "err", err)
	}
}

// ServeScreenshot writes a screenshot as an image reply, with its time
// and command in headers; an error means the client went away.
func ServeScreenshot(w http.ResponseWriter, sh store.ScreenshotRecord) error {
	w.Header().Set("Content-Type", sh.ContentType)
	w.Header().Set("Content-Length", strconv.Itoa(len(sh.Data)))
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.Header().Set("X-Shequ-Taken-At", sh.TakenAt.UTC().Format(time.RFC3339))
	w.Header().Set("X-Shequ-Command", sh.Command)
	w.WriteHeader(http.StatusOK)
	if _, err := w.Write(sh.Data); err != nil {
		return fmt.Errorf("remote: write screenshot: %w", err)
	}
	return nil
}

// strictJSON decodes exactly one JSON value, rejecting unknown fields and
// trailing data.
func strictJSON(data []byte, v any) error {
	d := json.NewDecoder(bytes.NewReader(data))
	d.DisallowUnknownFields()
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("request body: %w", err)
	}
	if _, err := d.Token(); err != io.EOF {
		return errors.New("request body: trailing data after the JSON value")
	}
	return nil
}
