package jsonhttp

import (
	"bytes"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

func TestError(t *testing.T) {
	var logged bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logged, nil))
	for _, tc := range []struct {
		name string
		code int
		err  error
		want string
	}{
		{"client error shows its reason", http.StatusBadRequest, errors.New("title is required"), "title is required"},
		{"server error hides its detail", http.StatusInternalServerError, errors.New("disk /var/lib/x full"), "Internal Server Error"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			Error(rec, log, tc.code, tc.err)
			var body ErrorBody
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if rec.Code != tc.code || body.Error != tc.want {
				t.Errorf("reply %d %q, want %d %q", rec.Code, body.Error, tc.code, tc.want)
			}
			if rec.Header().Get("Cache-Control") != "no-store" {
				t.Error("reply may be cached")
			}
		})
	}
	if !strings.Contains(logged.String(), "disk /var/lib/x full") {
		t.Error("the server error's detail was not logged")
	}
}

func TestReadBody(t *testing.T) {
	for _, tc := range []struct {
		name     string
		body     string
		wantCode int
	}{
		{"within the limit", "0123456789", 0},
		{"over the limit", "0123456789x", http.StatusRequestEntityTooLarge},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodPost, "/", strings.NewReader(tc.body))
			b, code, err := ReadBody(r, 10)
			if code != tc.wantCode || (err == nil) != (tc.wantCode == 0) {
				t.Fatalf("ReadBody = %d, %v; want %d", code, err, tc.wantCode)
			}
			if err == nil && string(b) != tc.body {
				t.Errorf("body %q, want %q", b, tc.body)
			}
		})
	}
}
