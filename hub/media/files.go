// Package media is the hub's media library: uploaded files stored by
// SHA-256 under DataDir/media/ab/<sha256>, their type detected from the
// content with ffprobe, videos transcoded to the kiosk profile by a
// one-at-a-time job queue kept in the database (so jobs survive a restart),
// signed manifests for chunked downloads, and the serving of manifests and
// chunks to kiosks over MQTT and of files over HTTPS with Range.
package media

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sync"

	"github.com/shequ/shequ/protocol"
)

// Errors returned (wrapped) by the package.
var (
	// ErrTooLarge means an upload exceeded the size limit.
	ErrTooLarge = errors.New("media: file too large")
	// ErrUnsupported means ffprobe did not recognise the file as an image
	// or a video the hub accepts.
	ErrUnsupported = errors.New("media: unsupported file type")
	// ErrNoFile means the store holds no file with that SHA-256.
	ErrNoFile = errors.New("media: no such file")
)

// Files is the content-addressed file store under one directory.
type Files struct {
	Dir string // e.g. DataDir/media

	mu        sync.Mutex // serialises manifest computation
	manifests map[manifestKey]protocol.Manifest
}

type manifestKey struct {
	sha   string
	chunk int
}

// NewFiles creates the store's directories.
func NewFiles(dir string) (*Files, error) {
	if err := os.MkdirAll(filepath.Join(dir, "tmp"), 0o750); err != nil {
		return nil, fmt.Errorf("media: create %s: %w", dir, err)
	}
	return &Files{Dir: dir, manifests: map[manifestKey]protocol.Manifest{}}, nil
}

// Path returns where the file with the given SHA-256 is (or would be).
func (f *Files) Path(sha string) string {
	return filepath.Join(f.Dir, sha[:2], sha)
}

// Has reports whether the file is in the store.
func (f *Files) Has(sha string) bool {
	if protocol.ValidSHA256(sha) != nil {
		return false
	}
	_, err := os.Stat(f.Path(sha))
	return err == nil
}

// Open opens a stored file.
func (f *Files) Open(sha string) (*os.File, error) {
	if err := protocol.ValidSHA256(sha); err != nil {
		return nil, fmt.Errorf("media: open: %w", err)
	}
	file, err := os.Open(f.Path(sha))
	if errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("media: open %s: %w", sha, ErrNoFile)
	}
	if err != nil {
		return nil, fmt.Errorf("media: open: %w", err)
	}
	return file, nil
}

// Temp is a file written to the store's tmp directory, not yet committed.
type Temp struct {
	Path   string
	SHA256 string
	Size   int64
}

// TempPath returns a fresh path in the store's tmp directory.
func (f *Files) TempPath(name string) string {
	return filepath.Join(f.Dir, "tmp", protocol.NewID()+"-"+name)
}

// Write copies r (at most limit bytes; more is ErrTooLarge) into a temporary
// file while hashing it, and syncs it.
func (f *Files) Write(r io.Reader, limit int64) (t Temp, err error) {
	file, err := os.CreateTemp(filepath.Join(f.Dir, "tmp"), "upload-*")
	if err != nil {
		return t, fmt.Errorf("media: temp file: %w", err)
	}
	t.Path = file.Name()
	defer func() {
		if err != nil {
			err = errors.Join(err, os.Remove(t.Path))
		}
	}()
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(file, h), io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("%w: more than %d bytes", ErrTooLarge, limit)
	}
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return t, fmt.Errorf("media: write: %w", err)
	}
	t.SHA256, t.Size = hex.EncodeToString(h.Sum(nil)), n
	return t, nil
}

// Hash hashes an existing temporary file (a transcode's output) and syncs it.
func (f *Files) Hash(path string) (Temp, error) {
	file, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return Temp{}, fmt.Errorf("media: hash: %w", err)
	}
	h := sha256.New()
	n, err := io.Copy(h, file)
	if err == nil {
		err = file.Sync()
	}
	if cerr := file.Close(); err == nil && cerr != nil {
		err = cerr
	}
	if err != nil {
		return Temp{}, fmt.Errorf("media: hash %s: %w", path, err)
	}
	return Temp{Path: path, SHA256: hex.EncodeToString(h.Sum(nil)), Size: n}, nil
}

// Commit moves a temporary file into the store under its hash (if the
// store holds that file already, the temporary file is removed) and syncs
// the directory.
func (f *Files) Commit(t Temp) error {
	dst := f.Path(t.SHA256)
	if _, err := os.Stat(dst); err == nil {
		if err := os.Remove(t.Path); err != nil {
			return fmt.Errorf("media: commit %s: %w", t.SHA256, err)
		}
		return nil
	}
	dir := filepath.Dir(dst)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("media: commit %s: %w", t.SHA256, err)
	}
	if err := os.Chmod(t.Path, 0o640); err != nil {
		return fmt.Errorf("media: commit %s: %w", t.SHA256, err)
	}
	if err := os.Rename(t.Path, dst); err != nil {
		return fmt.Errorf("media: commit %s: %w", t.SHA256, err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("media: commit %s: sync dir: %w", t.SHA256, err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("media: commit %s: sync dir: %w", t.SHA256, err)
	}
	return nil
}

// CleanTemp removes leftovers of uploads and transcodes a stop interrupted.
func (f *Files) CleanTemp() error {
	dir := filepath.Join(f.Dir, "tmp")
	entries, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("media: clean tmp: %w", err)
	}
	var errs []error
	for _, e := range entries {
		if err := os.RemoveAll(filepath.Join(dir, e.Name())); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("media: clean tmp: %w", err)
	}
	return nil
}
