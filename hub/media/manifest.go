package media

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/shequ/shequ/hub/atomicfile"
	"github.com/shequ/shequ/protocol"
)

// maxSidecar bounds a cached manifest file read back from disk.
const maxSidecar = protocol.MaxManifestSize

// Manifest returns the manifest of a stored file for chunks of chunkSize:
// computed once (reading the file chunk by chunk), then kept in memory and
// in a sidecar file next to the file (<sha256>.manifest-<chunkSize>).
func (f *Files) Manifest(sha string, chunkSize int) (protocol.Manifest, error) {
	key := manifestKey{sha, chunkSize}
	f.mu.Lock()
	defer f.mu.Unlock()
	if m, ok := f.manifests[key]; ok {
		return m, nil
	}
	if err := protocol.ValidSHA256(sha); err != nil {
		return protocol.Manifest{}, fmt.Errorf("media: manifest: %w", err)
	}
	sidecar := f.Path(sha) + ".manifest-" + strconv.Itoa(chunkSize)
	if m, err := readSidecar(sidecar); err == nil && m.SHA256 == sha && m.ChunkSize == chunkSize {
		f.manifests[key] = m
		return m, nil
	}
	m, err := f.computeManifest(sha, chunkSize)
	if err != nil {
		return m, err
	}
	b, err := json.Marshal(m)
	if err != nil {
		return m, fmt.Errorf("media: manifest %s: %w", sha, err)
	}
	if err := atomicfile.Write(sidecar, b, 0o640); err != nil {
		return m, fmt.Errorf("media: manifest %s: %w", sha, err)
	}
	f.manifests[key] = m
	return m, nil
}

func readSidecar(path string) (protocol.Manifest, error) {
	var m protocol.Manifest
	file, err := os.Open(path)
	if err != nil {
		return m, err
	}
	defer file.Close()
	b, err := io.ReadAll(io.LimitReader(file, maxSidecar+1))
	if err != nil {
		return m, err
	}
	if len(b) > maxSidecar {
		return m, errors.New("sidecar too large")
	}
	if err := json.Unmarshal(b, &m); err != nil {
		return m, err
	}
	return m, m.Validate()
}

func (f *Files) computeManifest(sha string, chunkSize int) (protocol.Manifest, error) {
	m := protocol.Manifest{SHA256: sha, ChunkSize: chunkSize}
	file, err := f.Open(sha)
	if err != nil {
		return m, err
	}
	defer file.Close()
	whole := sha256.New()
	buf := make([]byte, chunkSize)
	for {
		n, err := io.ReadFull(file, buf)
		if n > 0 {
			sum := sha256.Sum256(buf[:n])
			m.Chunks = append(m.Chunks, hex.EncodeToString(sum[:]))
			whole.Write(buf[:n]) // hash.Hash.Write never fails
			m.Size += int64(n)
		}
		if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
			break
		}
		if err != nil {
			return m, fmt.Errorf("media: manifest %s: %w", sha, err)
		}
	}
	if got := hex.EncodeToString(whole.Sum(nil)); got != sha {
		return m, fmt.Errorf("media: manifest %s: the stored file hashes to %s", sha, got)
	}
	if err := m.Validate(); err != nil {
		return m, fmt.Errorf("media: manifest %s: %w", sha, err)
	}
	return m, nil
}
