package vm

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"sync"
	"time"
)

// Guest agent timing and sizes.
const (
	// syncAttempt bounds one guest-sync-delimited; the agent answers at
	// once when it runs, so a silent one is asked again.
	syncAttempt = 2 * time.Second
	// execPoll is how often Exec asks whether the command has ended.
	execPoll = 50 * time.Millisecond
	// fileChunk is the size of one guest-file-write or guest-file-read.
	fileChunk = 1 << 20
	// maxReadFile bounds what ReadFile returns.
	maxReadFile = 256 << 20
)

// agent is a client of the QEMU guest agent (qemu-ga) in the guest. It
// synchronises with guest-sync-delimited before its first command and
// after any command the agent did not answer in time, so a reply left over
// from an earlier command or an agent restarted with the guest cannot be
// taken for another's.
type agent struct {
	c      *client
	synced bool // guarded by c.mu
}

func newAgent(conn net.Conn, log *slog.Logger) *agent {
	return &agent{c: newClient("guest agent", conn, maxAgentMessage, nil, log)}
}

// sync waits until the agent answers a guest-sync-delimited, asking again
// every syncAttempt, until ctx ends. c.mu must be held.
func (a *agent) syncLocked(ctx context.Context) error {
	for {
		id := rand.Int64N(1 << 52)
		actx, cancel := context.WithTimeout(ctx, syncAttempt)
		_, err := a.c.exchangeLocked(actx, []byte{agentDelimiter}, request{
			Execute:   "guest-sync-delimited",
			Arguments: map[string]int64{"id": id},
		}, func(m *message) bool {
			var got int64
			return m.delimited && m.Return != nil && json.Unmarshal(m.Return, &got) == nil && got == id
		})
		cancel()
		switch {
		case err == nil:
			a.synced = true
			return nil
		case ctx.Err() != nil:
			return fmt.Errorf("vm: guest agent does not answer: %w", context.Cause(ctx))
		case errors.Is(err, context.DeadlineExceeded):
			a.c.log.Debug("vm: guest agent silent; asking again")
		default:
			return err
		}
	}
}

// call runs an agent command, synchronising first if needed.
func (a *agent) call(ctx context.Context, command string, args, result any) error {
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	if !a.synced {
		if err := a.syncLocked(ctx); err != nil {
			return err
		}
	}
	err := a.c.callLocked(ctx, command, args, result)
	if err != nil && ctx.Err() != nil {
		a.synced = false // its reply may still come
	}
	return err
}

func (a *agent) ping(ctx context.Context) error {
	a.c.mu.Lock()
	defer a.c.mu.Unlock()
	if err := a.syncLocked(ctx); err != nil {
		return err
	}
	return a.c.callLocked(ctx, "guest-ping", nil, nil)
}

type execArgs struct {
	Path          string   `json:"path"`
	Arg           []string `json:"arg,omitempty"`
	CaptureOutput bool     `json:"capture-output"`
}

type execStatus struct {
	Exited       bool   `json:"exited"`
	ExitCode     *int   `json:"exitcode"`
	Signal       *int   `json:"signal"`
	OutData      string `json:"out-data"`
	ErrData      string `json:"err-data"`
	OutTruncated bool   `json:"out-truncated"`
	ErrTruncated bool   `json:"err-truncated"`
}

func (a *agent) exec(ctx context.Context, path string, args []string) (stdout, stderr []byte, exitCode int, err error) {
	var started struct {
		PID int64 `json:"pid"`
	}
	if err := a.call(ctx, "guest-exec", execArgs{Path: path, Arg: args, CaptureOutput: true}, &started); err != nil {
		return nil, nil, -1, fmt.Errorf("vm: exec %s: %w", path, err)
	}
	tick := time.NewTicker(execPoll)
	defer tick.Stop()
	for {
		var st execStatus
		if err := a.call(ctx, "guest-exec-status", map[string]int64{"pid": started.PID}, &st); err != nil {
			return nil, nil, -1, fmt.Errorf("vm: exec %s: %w", path, err)
		}
		if st.Exited {
			return st.result(path)
		}
		select {
		case <-tick.C:
		case <-ctx.Done():
			return nil, nil, -1, fmt.Errorf("vm: exec %s: still running (pid %d in the guest): %w", path, started.PID, context.Cause(ctx))
		}
	}
}

func (st *execStatus) result(path string) (stdout, stderr []byte, exitCode int, err error) {
	if stdout, err = base64.StdEncoding.DecodeString(st.OutData); err != nil {
		return nil, nil, -1, fmt.Errorf("vm: exec %s: decode stdout: %w", path, err)
	}
	if stderr, err = base64.StdEncoding.DecodeString(st.ErrData); err != nil {
		return nil, nil, -1, fmt.Errorf("vm: exec %s: decode stderr: %w", path, err)
	}
	switch {
	case st.Signal != nil:
		return stdout, stderr, -1, fmt.Errorf("vm: exec %s: killed by signal %d", path, *st.Signal)
	case st.ExitCode == nil:
		return stdout, stderr, -1, fmt.Errorf("vm: exec %s: %w: exited without an exit code", path, ErrBadMessage)
	case st.OutTruncated || st.ErrTruncated:
		return stdout, stderr, *st.ExitCode, fmt.Errorf("vm: exec %s: the guest agent truncated the output", path)
	}
	return stdout, stderr, *st.ExitCode, nil
}

// openFile opens path in the guest and returns a function that closes it.
func (a *agent) openFile(ctx context.Context, path, mode string) (handle int64, closeFile func() error, err error) {
	if err := a.call(ctx, "guest-file-open", map[string]string{"path": path, "mode": mode}, &handle); err != nil {
		return 0, nil, err
	}
	var once sync.Once
	var closeErr error
	closeFile = func() error {
		once.Do(func() {
			// Close even when ctx has ended, or the agent keeps
			// the file open.
			cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
			defer cancel()
			closeErr = a.call(cctx, "guest-file-close", map[string]int64{"handle": handle}, nil)
		})
		return closeErr
	}
	return handle, closeFile, nil
}

func (a *agent) writeFile(ctx context.Context, path string, data []byte) (err error) {
	handle, closeFile, err := a.openFile(ctx, path, "w")
	if err != nil {
		return fmt.Errorf("vm: write %s in the guest: %w", path, err)
	}
	defer func() {
		if cerr := closeFile(); cerr != nil && err == nil {
			err = fmt.Errorf("vm: write %s in the guest: %w", path, cerr)
		}
	}()
	for off := 0; off < len(data); {
		chunk := data[off:min(off+fileChunk, len(data))]
		var wrote struct {
			Count int `json:"count"`
		}
		args := map[string]any{"handle": handle, "buf-b64": base64.StdEncoding.EncodeToString(chunk), "count": len(chunk)}
		if err := a.call(ctx, "guest-file-write", args, &wrote); err != nil {
			return fmt.Errorf("vm: write %s in the guest at %d: %w", path, off, err)
		}
		if wrote.Count <= 0 || wrote.Count > len(chunk) {
			return fmt.Errorf("vm: write %s in the guest at %d: agent wrote %d of %d bytes", path, off, wrote.Count, len(chunk))
		}
		off += wrote.Count
	}
	return nil
}

func (a *agent) readFile(ctx context.Context, path string) (_ []byte, err error) {
	handle, closeFile, err := a.openFile(ctx, path, "r")
	if err != nil {
		return nil, fmt.Errorf("vm: read %s in the guest: %w", path, err)
	}
	defer func() {
		if cerr := closeFile(); cerr != nil && err == nil {
			err = fmt.Errorf("vm: read %s in the guest: %w", path, cerr)
		}
	}()
	var data []byte
	for {
		var got struct {
			Count  int    `json:"count"`
			BufB64 string `json:"buf-b64"`
			EOF    bool   `json:"eof"`
		}
		if err := a.call(ctx, "guest-file-read", map[string]int64{"handle": handle, "count": fileChunk}, &got); err != nil {
			return nil, fmt.Errorf("vm: read %s in the guest at %d: %w", path, len(data), err)
		}
		chunk, err := base64.StdEncoding.DecodeString(got.BufB64)
		if err != nil {
			return nil, fmt.Errorf("vm: read %s in the guest at %d: %w", path, len(data), err)
		}
		if len(data)+len(chunk) > maxReadFile {
			return nil, fmt.Errorf("vm: read %s in the guest: larger than %d bytes", path, maxReadFile)
		}
		data = append(data, chunk...)
		if got.EOF || len(chunk) == 0 {
			return data, nil
		}
	}
}

// GuestPing waits until the guest agent answers, asking again every two
// seconds, until ctx ends: use it to wait for the guest to have booted far
// enough.
func (v *VM) GuestPing(ctx context.Context) error {
	if v.agent == nil {
		return fmt.Errorf("vm: guest ping: %w", ErrNoAgent)
	}
	return v.agent.ping(ctx)
}

// Exec runs path with args in the guest (guest-exec) and waits until it
// ends. A command that exits with a non-zero status is not an error: the
// status is exitCode. One killed by a signal is, with exitCode -1. The
// guest agent keeps at most 16 MiB of each output. path should be
// absolute; its environment is the agent's.
func (v *VM) Exec(ctx context.Context, path string, args ...string) (stdout, stderr []byte, exitCode int, err error) {
	if v.agent == nil {
		return nil, nil, -1, fmt.Errorf("vm: exec %s: %w", path, ErrNoAgent)
	}
	return v.agent.exec(ctx, path, args)
}

// GuestExecute runs a guest agent command, like Execute does a QMP one.
func (v *VM) GuestExecute(ctx context.Context, command string, args, result any) error {
	if v.agent == nil {
		return fmt.Errorf("vm: %s: %w", command, ErrNoAgent)
	}
	return v.agent.call(ctx, command, args, result)
}

// WriteFile creates or truncates guestPath in the guest and writes data to
// it in 1 MiB pieces (guest-file-open, -write, -close). The file's mode is
// the agent's default (0666 less its umask, so usually 0644).
func (v *VM) WriteFile(ctx context.Context, guestPath string, data []byte) error {
	if v.agent == nil {
		return fmt.Errorf("vm: write %s in the guest: %w", guestPath, ErrNoAgent)
	}
	return v.agent.writeFile(ctx, guestPath, data)
}

// ReadFile returns the contents of guestPath in the guest, up to 256 MiB.
func (v *VM) ReadFile(ctx context.Context, guestPath string) ([]byte, error) {
	if v.agent == nil {
		return nil, fmt.Errorf("vm: read %s in the guest: %w", guestPath, ErrNoAgent)
	}
	return v.agent.readFile(ctx, guestPath)
}
