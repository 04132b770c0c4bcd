package gate

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"

	"github.com/shequ/shequ/protocol"
)

// maxStatus bounds the agent's status reply.
const maxStatus = 64 << 10

// LocalAPI reads the agent's status from its local API socket.
type LocalAPI struct {
	client *http.Client
}

// NewLocalAPI returns a Status reading the agent's socket.
func NewLocalAPI(socket string) *LocalAPI {
	return &LocalAPI{client: &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
	}}}
}

// Status implements Status.
func (l *LocalAPI) Status(ctx context.Context) (protocol.AgentStatus, error) {
	var s protocol.AgentStatus
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://agent"+protocol.LocalPathStatus, nil)
	if err != nil {
		return s, err
	}
	resp, err := l.client.Do(req)
	if err != nil {
		return s, fmt.Errorf("agent status: %w", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxStatus+1))
	if err != nil {
		return s, fmt.Errorf("agent status: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		return s, fmt.Errorf("agent status: %s", resp.Status)
	}
	if len(body) > maxStatus {
		return s, fmt.Errorf("agent status: reply larger than %d bytes", maxStatus)
	}
	if err := json.Unmarshal(body, &s); err != nil {
		return s, fmt.Errorf("agent status: %w", err)
	}
	return s, nil
}
