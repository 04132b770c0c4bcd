package media

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"strconv"
	"testing"

	"github.com/shequ/shequ/protocol"
)

func TestManifest(t *testing.T) {
	f, err := NewFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 100<<10+123)
	if _, err := rand.Read(data); err != nil {
		t.Fatal(err)
	}
	tmp, err := f.Write(bytes.NewReader(data), 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(tmp); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write(bytes.NewReader(data), 1000); err == nil {
		t.Error("Write over the limit succeeded")
	}
	for _, tc := range []struct {
		name   string
		chunk  int
		chunks int
	}{
		{"16 KiB", 16 << 10, 7},
		{"64 KiB", 64 << 10, 2},
		{"larger than the file", 1 << 20, 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m, err := f.Manifest(tmp.SHA256, tc.chunk)
			if err != nil {
				t.Fatal(err)
			}
			if m.Size != int64(len(data)) || len(m.Chunks) != tc.chunks || m.Validate() != nil {
				t.Fatalf("manifest size %d, %d chunks, want %d", m.Size, len(m.Chunks), tc.chunks)
			}
			for i := range m.Chunks {
				off := i * tc.chunk
				sum := sha256.Sum256(data[off : off+m.ChunkLen(i)])
				if hex.EncodeToString(sum[:]) != m.Chunks[i] {
					t.Errorf("chunk %d hash", i)
				}
			}
			// A fresh store reads the sidecar; a damaged sidecar is recomputed.
			sidecar := f.Path(tmp.SHA256) + ".manifest-" + strconv.Itoa(tc.chunk)
			if _, err := os.Stat(sidecar); err != nil {
				t.Fatalf("no sidecar: %v", err)
			}
			if err := os.WriteFile(sidecar, []byte(`{"sha256":"x"}`), 0o600); err != nil {
				t.Fatal(err)
			}
			f2, err := NewFiles(f.Dir)
			if err != nil {
				t.Fatal(err)
			}
			m2, err := f2.Manifest(tmp.SHA256, tc.chunk)
			if err != nil || len(m2.Chunks) != tc.chunks || m2.Chunks[0] != m.Chunks[0] {
				t.Errorf("recomputed manifest: %v", err)
			}
		})
	}
	if _, err := f.Manifest(protocol.NewID(), 16<<10); err == nil {
		t.Error("manifest of an invalid name")
	}
}
