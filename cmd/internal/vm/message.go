package vm

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
)

// Size limits of one message, including its line end.
const (
	// maxQMPMessage bounds a message from QEMU's monitor; the largest
	// reply, query-qmp-schema, is a few hundred KiB.
	maxQMPMessage = 4 << 20
	// maxAgentMessage bounds a message from the guest agent; qemu-ga 7.2
	// keeps up to 16 MiB of a command's output, 22 MiB in base64.
	maxAgentMessage = 32 << 20
)

// agentDelimiter is the byte qemu-ga sends before its reply to
// guest-sync-delimited, and that a client sends to reset qemu-ga's parser.
// It never occurs in JSON text.
const agentDelimiter = 0xff

// message is one message from QMP or the guest agent: exactly one of a
// greeting, a reply (return or error) or an event.
type message struct {
	Greeting  json.RawMessage `json:"QMP"`
	Return    json.RawMessage `json:"return"`
	Error     *commandFault   `json:"error"`
	Event     string          `json:"event"`
	Data      json.RawMessage `json:"data"`
	Timestamp *struct {
		Seconds      int64 `json:"seconds"`
		Microseconds int64 `json:"microseconds"`
	} `json:"timestamp"`
	ID json.RawMessage `json:"id"`

	// delimited is set when agentDelimiter came before the message on
	// its line.
	delimited bool
}

// commandFault is the error object of a failed command.
type commandFault struct {
	Class string `json:"class"`
	Desc  string `json:"desc"`
}

// kinds counts the kinds of message m claims to be; a valid one has 1.
func (m *message) kinds() int {
	n := 0
	for _, present := range []bool{m.Greeting != nil, m.Return != nil, m.Error != nil, m.Event != ""} {
		if present {
			n++
		}
	}
	return n
}

// decoder reads messages, one a line, from QEMU's monitor or a guest
// agent. A malformed or oversized message is an error for that message
// only: the decoder skips to the next line and goes on.
type decoder struct {
	r        *bufio.Reader
	max      int
	line     []byte // the current line, kept across read errors
	complete bool   // line has been returned; start a new one
	skip     bool   // discarding the rest of an oversized line
}

func newDecoder(r io.Reader, max int) *decoder {
	return &decoder{r: bufio.NewReaderSize(r, min(64<<10, max)), max: max}
}

// next returns the next message, or an error wrapping ErrMessageTooLarge
// or ErrBadMessage for a bad one (after which next may be called again),
// or the reader's error.
func (d *decoder) next() (*message, error) {
	for {
		line, err := d.readLine()
		if err != nil {
			return nil, err
		}
		delimited := false
		if i := bytes.LastIndexByte(line, agentDelimiter); i >= 0 {
			line, delimited = line[i+1:], true
		}
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		m := &message{delimited: delimited}
		if err := json.Unmarshal(line, m); err != nil {
			return nil, fmt.Errorf("%w: %w: %.100q", ErrBadMessage, err, line)
		}
		if n := m.kinds(); n != 1 {
			return nil, fmt.Errorf("%w: %d of greeting, return, error and event: %.100q", ErrBadMessage, n, line)
		}
		return m, nil
	}
}

// readLine returns the next line without its newline; the line is valid
// until the next call. A line longer than d.max is consumed and reported
// as ErrMessageTooLarge.
func (d *decoder) readLine() ([]byte, error) {
	if d.complete {
		d.complete = false
		d.line = d.line[:0]
		if cap(d.line) > 1<<20 {
			d.line = nil // do not keep a large buffer for small messages
		}
	}
	for {
		chunk, err := d.r.ReadSlice('\n')
		if d.skip {
			switch err {
			case nil:
				d.skip = false
			case bufio.ErrBufferFull:
			default:
				return nil, err
			}
			continue
		}
		d.line = append(d.line, chunk...)
		if len(d.line) > d.max {
			d.line = d.line[:0]
			switch err {
			case nil:
			case bufio.ErrBufferFull:
				d.skip = true
			default:
				return nil, err
			}
			return nil, fmt.Errorf("%w: over %d bytes", ErrMessageTooLarge, d.max)
		}
		switch err {
		case nil:
			d.complete = true
			return d.line[:len(d.line)-1], nil
		case bufio.ErrBufferFull:
		default:
			return nil, err
		}
	}
}
