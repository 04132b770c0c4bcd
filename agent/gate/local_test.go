package gate

import (
	"context"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"

	"github.com/shequ/shequ/protocol"
)

// serve answers GET /v1/status on a Unix socket with body.
func serve(t *testing.T, code int, body string) string {
	t.Helper()
	sock := filepath.Join(t.TempDir(), "agent.sock")
	l, err := net.Listen("unix", sock)
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != protocol.LocalPathStatus {
			http.NotFound(w, r)
			return
		}
		w.WriteHeader(code)
		w.Write([]byte(body))
	})}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return sock
}

func TestLocalAPI(t *testing.T) {
	sock := serve(t, 200, `{"enrolled":true,"kiosk":"k1","connected":true,"outbox_depth":3}`)
	s, err := NewLocalAPI(sock).Status(context.Background())
	if err != nil || !s.Enrolled || !s.Connected || s.OutboxDepth != 3 || s.Kiosk != "k1" {
		t.Fatalf("Status = %+v, %v", s, err)
	}
	for _, c := range []struct {
		code int
		body string
		want string
	}{
		{503, `{}`, "503"},
		{200, `{"enrolled":`, "unexpected end"},
		{200, `"` + strings.Repeat("x", maxStatus+10) + `"`, "larger than"},
	} {
		_, err := NewLocalAPI(serve(t, c.code, c.body)).Status(context.Background())
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("Status with %d %.20q = %v, want %q", c.code, c.body, err, c.want)
		}
	}
	if _, err := NewLocalAPI(filepath.Join(t.TempDir(), "none.sock")).Status(context.Background()); err == nil {
		t.Error("Status without an agent = nil error")
	}
}
