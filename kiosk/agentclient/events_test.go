package agentclient

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/shequ/shequ/protocol"
)

func TestParseEvents(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    []string // "type/version"
		wantErr error
	}{
		{"empty", "", nil, nil},
		{"one", "data: {\"type\":\"notices\",\"version\":3}\n\n", []string{"notices/3"}, nil},
		{"comments and other fields", ": hi\nevent: x\nid: 1\nretry: 5\ndata: {\"type\":\"status\"}\n\n", []string{"status/0"}, nil},
		{"no space after colon", "data:{\"type\":\"status\"}\n\n", []string{"status/0"}, nil},
		{"crlf", "data: {\"type\":\"status\"}\r\n\r\n", []string{"status/0"}, nil},
		{"multi-line data", "data: {\"type\":\ndata: \"notices\"}\n\n", []string{"notices/0"}, nil},
		{"two", "data: {\"type\":\"a\"}\n\ndata: {\"type\":\"b\"}\n\n", []string{"a/0", "b/0"}, nil},
		{"unterminated last event dropped", "data: {\"type\":\"a\"}", nil, nil},
		{"blank lines only", "\n\n\n", nil, nil},
		{"bad json", "data: {\n\n", nil, ErrMalformed},
		{"unknown field", "data: {\"type\":\"a\",\"x\":1}\n\n", nil, ErrMalformed},
		{"missing type", "data: {\"version\":1}\n\n", nil, ErrMalformed},
		{"line too long", "data: " + strings.Repeat("x", MaxEventLine) + "\n\n", nil, ErrTooLarge},
		{"data too long", strings.Repeat("data: "+strings.Repeat("x", 1000)+"\n", 5) + "\n", nil, ErrTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			err := parseEvents(strings.NewReader(tt.in), func(ev protocol.LocalEvent) error {
				got = append(got, ev.Type+"/"+itoa(ev.Version))
				return nil
			})
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("err = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("err = %v", err)
			}
			if strings.Join(got, ",") != strings.Join(tt.want, ",") {
				t.Fatalf("events %v, want %v", got, tt.want)
			}
		})
	}
}

func TestParseEventsCallbackError(t *testing.T) {
	stopErr := errors.New("stop")
	n := 0
	err := parseEvents(strings.NewReader("data: {\"type\":\"a\"}\n\ndata: {\"type\":\"b\"}\n\n"), func(protocol.LocalEvent) error {
		n++
		return stopErr
	})
	if !errors.Is(err, stopErr) || n != 1 {
		t.Fatalf("err %v after %d events", err, n)
	}
}

func itoa(v int64) string { return strconv.FormatInt(v, 10) }

func FuzzParseEvents(f *testing.F) {
	files, err := filepath.Glob("testdata/*.sse")
	if err != nil || len(files) == 0 {
		f.Fatalf("no seeds in testdata: %v", err)
	}
	for _, p := range files {
		b, err := os.ReadFile(p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		err := parseEvents(strings.NewReader(string(data)), func(ev protocol.LocalEvent) error {
			if ev.Type == "" || len(ev.Type) > 64 {
				t.Fatalf("invalid event delivered: %+v", ev)
			}
			return nil
		})
		if err != nil && !errors.Is(err, ErrMalformed) && !errors.Is(err, ErrTooLarge) {
			t.Fatalf("unexpected error kind: %v", err)
		}
	})
}
