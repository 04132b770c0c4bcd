// Package jsonhttp reads request bodies and writes JSON replies and errors
// the same way for every handler of the hub's HTTP API: bounded bodies, a
// JSON object per reply, {"error": "..."} for every error, and no detail of
// internal failures leaked to the client (they are logged instead).
package jsonhttp

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
)

// ErrorBody is the body of every error reply.
type ErrorBody struct {
	Error string `json:"error"`
}

// Write writes v as the JSON reply with status code. Replies are never
// cached: they hold live state and, for some, secrets shown once.
func Write(w http.ResponseWriter, log *slog.Logger, code int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		log.Error("encoding reply", "err", err)
		code, b = http.StatusInternalServerError, []byte(`{"error":"Internal Server Error"}`)
	}
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	if _, err := w.Write(append(b, '\n')); err != nil {
		log.Debug("writing reply", "err", err)
	}
}

// Error writes err as an error reply with status code. A 5xx error is
// logged and replaced by its status text, so internals stay inside.
func Error(w http.ResponseWriter, log *slog.Logger, code int, err error) {
	if code >= 500 {
		log.Error("request failed", "status", code, "err", err)
		err = errors.New(http.StatusText(code))
	}
	Write(w, log, code, ErrorBody{Error: err.Error()})
}

// ReadBody reads a request body of at most limit bytes. On failure it
// returns the status to answer with: 413 over the limit, 400 otherwise.
func ReadBody(r *http.Request, limit int64) ([]byte, int, error) {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, limit))
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return nil, http.StatusRequestEntityTooLarge, fmt.Errorf("request body larger than %d bytes", tooLarge.Limit)
	}
	if err != nil {
		return nil, http.StatusBadRequest, fmt.Errorf("reading request body: %w", err)
	}
	return b, 0, nil
}

// actorKey is the context key of WithActor.
type actorKey struct{}

// WithActor returns ctx carrying who made an API request, as the API's
// authentication found it: "admin-token", or "account:<id>" for a
// personal API token.
func WithActor(ctx context.Context, actor string) context.Context {
	return context.WithValue(ctx, actorKey{}, actor)
}

// Actor is who made the API request ctx belongs to (WithActor), or "".
func Actor(ctx context.Context) string {
	a, _ := ctx.Value(actorKey{}).(string) // "" when not set
	return a
}
