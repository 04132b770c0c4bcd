package media

import (
	"bufio"
	"bytes"
	"net/http"
	"os"
	"path/filepath"
	"testing"
)

func TestParseUpload(t *testing.T) {
	for _, tc := range []struct {
		name   string
		header string
		length int64
		code   int
		file   string
	}{
		{"plain", "X-Filename: 宣传片.mp4\r\n", 10, 0, "宣传片.mp4"},
		{"no name", "", 10, 0, ""},
		{"no length", "", -1, http.StatusLengthRequired, ""},
		{"empty", "", 0, http.StatusBadRequest, ""},
		{"too large", "", 101, http.StatusRequestEntityTooLarge, ""},
		{"path", "X-Filename: ../etc/passwd\r\n", 10, http.StatusBadRequest, ""},
		{"two names", "X-Filename: a\r\nX-Filename: b\r\n", 10, http.StatusBadRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := readHeader(t, []byte(tc.header))
			name, code, err := ParseUpload(h, tc.length, 100)
			if code != tc.code || (err == nil) != (tc.code == 0) || name != tc.file {
				t.Errorf("ParseUpload = %q, %d, %v; want %q, %d", name, code, err, tc.file, tc.code)
			}
		})
	}
}

func readHeader(t testing.TB, b []byte) http.Header {
	req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(append([]byte("POST / HTTP/1.1\r\nHost: x\r\n"), append(b, "\r\n"...)...))))
	if err != nil {
		return http.Header{}
	}
	return req.Header
}

func FuzzParseUpload(f *testing.F) {
	b, err := os.ReadFile(filepath.Join("testdata", "upload-headers.txt"))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b, int64(1000))
	f.Add([]byte("X-Filename: \x00\r\n"), int64(-1))
	f.Fuzz(func(t *testing.T, header []byte, length int64) {
		h := readHeader(t, header)
		name, code, err := ParseUpload(h, length, 1<<20)
		if (err == nil) != (code == 0) {
			t.Fatalf("code %d with err %v", code, err)
		}
		if err == nil && (len(name) > MaxFilename || bytes.ContainsAny([]byte(name), "/\\\x00\r\n")) {
			t.Fatalf("accepted filename %q", name)
		}
		if err == nil && (length <= 0 || length > 1<<20) {
			t.Fatalf("accepted length %d", length)
		}
	})
}
