// Package media is the agent's media cache and downloader: it holds the
// files the playlists of the held desired state need, each named by its
// SHA-256 under Dir/media/<sha256>, and fetches the missing ones in chunks
// checked against a manifest the hub signed.
//
// # Files
//
// Complete, verified files live in Dir/media (0750, group: the kiosk UI's,
// which reads them); a file being fetched lives in Dir/media/partial and
// its download state (the signed manifest envelope and a bitmap of the
// chunks written) in a bbolt file, Dir/media.db, so a download survives a
// restart and continues with the missing chunks only. The bitmap is
// persisted after the data it covers is fsynced, every PersistEvery chunks
// and whenever the downloader stops. On Open every complete file is hashed
// again; a damaged one is removed (and fetched again when wanted).
//
// # Downloads
//
// Run fetches the wanted files (Want) in playlist order, at most
// Concurrency at a time, each after a staggered delay drawn from a hash of
// the kiosk id and the file's hash (so a fleet does not ask at once). For
// each file it asks for the manifest (checked with Config.Verify: signed by
// the trusted hub key; its size and hash must match the reference), then
// for chunks, keeping at most Window requests in flight and asking again
// after ChunkTimeout. A chunk whose hash does not match the manifest is
// dropped and asked again. When every chunk is in, the whole file is
// hashed, fsynced and renamed into place; a bad whole-file hash drops the
// partial file and starts again.
//
// How requests travel is a Requester's business: the MQTT link publishes
// them (and hands back what the hub sends with DeliverManifest and
// DeliverChunk), HTTP issues range requests.
//
// # Space
//
// The wanted files are taken in playlist order while they fit in Quota;
// the rest are reported failed ("quota"). A file is not started, and a
// download is stopped, when the disk would have less than MinFreeDisk free
// ("disk full", retried with backoff). Files no longer wanted are removed
// only once every wanted file is held, and never a file the kiosk showed
// within OnScreenFor.
package media

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"syscall"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shequ/shequ/protocol"
)

// Failure reasons reported in MediaStatus.
const (
	ReasonQuota    = "quota"
	ReasonDiskFull = "disk full"
	ReasonHash     = "hash mismatch"
	ReasonManifest = "bad manifest"
)

// Config configures a Cache. Zero values mean the defaults.
type Config struct {
	Dir          string        // required: files in Dir/media, state in Dir/media.db
	Group        string        // group that may read Dir/media (the kiosk UI's); empty: the agent's
	Kiosk        string        // kiosk id, for the staggered start
	Quota        int64         // bytes of media held at most; default 2 GiB
	MinFreeDisk  int64         // bytes always left free on the disk; default 512 MiB; negative: none
	Stagger      time.Duration // start of each download spread over this; default 60s; negative: none
	Concurrency  int           // files fetched at once; default 1
	Window       int           // chunk requests in flight per file; default 8
	ChunkTimeout time.Duration // a request unanswered this long is made again; default 15s
	PersistEvery int           // chunks between bitmap writes; default 16
	OnScreenFor  time.Duration // a file shown this recently is never removed; default 10m
	RetryMin     time.Duration // first retry after "disk full" or a bad file; default 5s (doubling to 30m)
	// Verify checks a signed manifest envelope and returns the manifest;
	// required.
	Verify func(data []byte) (protocol.Manifest, error)
	// OnHeld is called (from the downloader goroutine, must not block)
	// when a file becomes held.
	OnHeld func(sha string)
}

func (c *Config) setDefaults() {
	if c.Quota <= 0 {
		c.Quota = 2 << 30
	}
	switch {
	case c.MinFreeDisk == 0:
		c.MinFreeDisk = 512 << 20
	case c.MinFreeDisk < 0:
		c.MinFreeDisk = 0
	}
	switch {
	case c.Stagger == 0:
		c.Stagger = 60 * time.Second
	case c.Stagger < 0:
		c.Stagger = 0
	}
	if c.Concurrency <= 0 {
		c.Concurrency = 1
	}
	if c.Window <= 0 {
		c.Window = 8
	}
	c.Window = min(c.Window, protocol.MaxRequestChunks)
	if c.ChunkTimeout <= 0 {
		c.ChunkTimeout = 15 * time.Second
	}
	if c.PersistEvery <= 0 {
		c.PersistEvery = 16
	}
	if c.OnScreenFor <= 0 {
		c.OnScreenFor = 10 * time.Minute
	}
	if c.RetryMin <= 0 {
		c.RetryMin = 5 * time.Second
	}
}

// Requester sends requests for a file's manifest or chunks; the answers
// come back through DeliverManifest and DeliverChunk. A request that
// fails (e.g. not connected) is made again after ChunkTimeout.
type Requester interface {
	RequestManifest(sha string) error
	RequestChunks(sha string, idx []int) error
}

// Progress is one wanted file's state, with chunk counts.
type Progress struct {
	protocol.MediaStatus
	Have, Total int // chunks written and in the manifest (0 before it)
}

var bucketPartial = []byte("partial")

// maxStateSize bounds a stored download state.
const maxStateSize = protocol.MaxManifestSize + protocol.MaxManifestChunks/8 + 4<<10

// state is a download's persisted state.
type state struct {
	Manifest []byte `json:"manifest"` // signed envelope as received
	Bitmap   []byte `json:"bitmap"`
}

// job is a download in progress.
type job struct {
	ref      protocol.MediaRef
	man      *protocol.Manifest
	env      []byte
	bits     []byte
	have     int
	inflight map[int]time.Time
	askedAt  time.Time // manifest request
	f        *os.File
	dirty    int // chunks written since the bitmap was persisted
	chunks   int // chunk requests made (tests and logs)
	cursor   int // every chunk before it is written
	misfits  int // chunks in a row whose length does not fit the manifest
}

// maxMisfits is how many chunks in a row may have a length the manifest
// does not give them before the agent decides the hub cut the file at
// another chunk size (its -chunk-size changed) and fetches the manifest again.
const maxMisfits = 3

// delivery is a manifest or a chunk handed to the downloader.
type delivery struct {
	manifest []byte
	chunk    protocol.Chunk
}

// Cache is the media cache. Create with Open, run the downloader with Run.
type Cache struct {
	cfg  Config
	log  *slog.Logger
	db   *bolt.DB
	dir  string // Dir/media
	part string // Dir/media/partial
	in   chan delivery
	wake chan struct{}
	kick chan struct{}
	gid  int // group given the files (Config.Group); -1: the agent's

	mu       sync.Mutex
	held     map[string]int64 // sha → size of complete files
	kinds    map[string]protocol.MediaKind
	want     []protocol.MediaRef // in playlist order, then the bundle
	docWant  []protocol.MediaRef // the desired state's files, in playlist order
	bundle   *protocol.MediaRef  // an update bundle to fetch (WantBundle)
	status   map[string]Progress
	failedAt map[string]time.Time // retry time of failed files
	shown    map[string]time.Time // last play event per file
	broken   map[string]string    // held files the kiosk cannot play, with its reason
	requests int                  // chunk indexes requested, all files
	corrupt  int                  // chunks dropped for a bad hash
	wantSet  bool                 // Want was called: until then nothing is removed
	gcNeeded bool                 // the wanted set or the files held changed
	gcAt     time.Time            // last removal pass
	retries  map[string]int       // failures in a row per file, for the backoff
	chunkSz  map[string]int       // chunk size of the manifest of each job
	lostAt   time.Time            // when the connection was last lost
	since    map[string]time.Time // when each wanted file became wanted: its stagger starts then
}

// Open opens the cache in cfg.Dir, checking every complete file again.
func Open(cfg Config, log *slog.Logger) (*Cache, error) {
	if cfg.Dir == "" {
		return nil, errors.New("media: dir is required")
	}
	if cfg.Verify == nil {
		return nil, errors.New("media: verify is required")
	}
	cfg.setDefaults()
	c := &Cache{
		cfg: cfg, log: log,
		dir:      filepath.Join(cfg.Dir, "media"),
		part:     filepath.Join(cfg.Dir, "media", "partial"),
		in:       make(chan delivery, 4*protocol.MaxRequestChunks),
		wake:     make(chan struct{}, 1),
		kick:     make(chan struct{}, 1),
		gid:      -1,
		held:     map[string]int64{},
		kinds:    map[string]protocol.MediaKind{},
		status:   map[string]Progress{},
		failedAt: map[string]time.Time{},
		shown:    map[string]time.Time{},
		broken:   map[string]string{},
		retries:  map[string]int{},
		chunkSz:  map[string]int{},
		since:    map[string]time.Time{},
	}
	if err := os.MkdirAll(c.part, 0o750); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if err := os.Chmod(c.dir, 0o750); err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	if cfg.Group != "" {
		g, err := user.LookupGroup(cfg.Group)
		if err != nil {
			return nil, fmt.Errorf("media: group %q: %w", cfg.Group, err)
		}
		gid, err := strconv.Atoi(g.Gid)
		if err != nil {
			return nil, fmt.Errorf("media: group %q: gid %q: %w", cfg.Group, g.Gid, err)
		}
		// The kiosk UI runs as another user in this group: it must be able
		// to pass through the data directory (whose files stay 0600) to the
		// media directory.
		for _, d := range []string{cfg.Dir, c.dir} {
			if err := os.Chown(d, -1, gid); err != nil {
				return nil, fmt.Errorf("media: chown %s: %w", d, err)
			}
			if err := os.Chmod(d, 0o750); err != nil {
				return nil, fmt.Errorf("media: chmod %s: %w", d, err)
			}
		}
		c.gid = gid
	}
	db, err := bolt.Open(filepath.Join(cfg.Dir, "media.db"), 0o600, &bolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("media: open state: %w", err)
	}
	if err := db.Update(func(tx *bolt.Tx) error {
		_, err := tx.CreateBucketIfNotExists(bucketPartial)
		return err
	}); err != nil {
		return nil, errors.Join(fmt.Errorf("media: open state: %w", err), db.Close())
	}
	c.db = db
	if err := c.verifyHeld(); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return c, nil
}

// verifyHeld hashes every complete file again and removes damaged ones.
func (c *Cache) verifyHeld() error {
	ents, err := os.ReadDir(c.dir)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	for _, e := range ents {
		name := e.Name()
		if !e.Type().IsRegular() {
			continue
		}
		path := filepath.Join(c.dir, name)
		if protocol.ValidSHA256(name) != nil {
			c.log.Warn("removing a stray file from the media directory", "file", path)
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("media: %w", err)
			}
			continue
		}
		sum, size, err := hashFile(path)
		if err != nil {
			return fmt.Errorf("media: verify %s: %w", name, err)
		}
		if sum != name {
			c.log.Error("held media file is damaged: removed, fetched again if wanted", "sha256", name, "got", sum)
			if err := os.Remove(path); err != nil {
				return fmt.Errorf("media: %w", err)
			}
			continue
		}
		c.held[name] = size
	}
	return nil
}

func hashFile(path string) (string, int64, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", 0, err
	}
	defer f.Close() //nolint:errcheck // read only
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return "", 0, err
	}
	return hex.EncodeToString(h.Sum(nil)), n, nil
}

// Close closes the state database. Run must have returned.
func (c *Cache) Close() error {
	if err := c.db.Close(); err != nil {
		return fmt.Errorf("media: close state: %w", err)
	}
	return nil
}

// Path is where a held file is (absolute when Dir is).
func (c *Cache) Path(sha string) string { return filepath.Join(c.dir, sha) }

// Want sets the files to hold: the media of doc, in the order its
// playlists play them. It never blocks.
func (c *Cache) Want(doc protocol.DesiredState) {
	refs := map[string]protocol.MediaRef{}
	for _, m := range doc.Media {
		refs[m.SHA256] = m
	}
	var want []protocol.MediaRef
	seen := map[string]bool{}
	add := func(sha string) {
		if r, ok := refs[sha]; ok && !seen[sha] {
			seen[sha] = true
			want = append(want, r)
		}
	}
	for _, p := range doc.Playlists {
		for _, it := range p.Items {
			add(it.Media)
		}
	}
	for _, m := range doc.Media {
		add(m.SHA256)
	}
	c.mu.Lock()
	c.docWant = want
	c.wantSet = true
	c.setWantLocked()
	c.mu.Unlock()
	signal(c.wake)
}

// WantBundle adds an update bundle to the files to hold (after the
// playlists' media, so it never delays a video), or removes it with nil.
// It never blocks.
func (c *Cache) WantBundle(ref *protocol.MediaRef) {
	c.mu.Lock()
	if ref == nil && c.bundle == nil || ref != nil && c.bundle != nil && *ref == *c.bundle {
		c.mu.Unlock()
		return
	}
	c.bundle = ref
	c.setWantLocked()
	c.mu.Unlock()
	signal(c.wake)
}

// setWantLocked sets want from the document's files and the bundle.
func (c *Cache) setWantLocked() {
	want := slices.Clone(c.docWant)
	if b := c.bundle; b != nil && !slices.ContainsFunc(want, func(r protocol.MediaRef) bool { return r.SHA256 == b.SHA256 }) {
		want = append(want, *b)
	}
	now := time.Now()
	since := make(map[string]time.Time, len(want))
	for _, r := range want {
		since[r.SHA256] = now
		if t, ok := c.since[r.SHA256]; ok {
			since[r.SHA256] = t
		}
	}
	c.want, c.since = want, since
	c.gcNeeded = true
	for _, r := range want {
		c.kinds[r.SHA256] = r.Kind
	}
}

// Failure returns why the last try to fetch a wanted file failed (it is
// tried again later), or "".
func (c *Cache) Failure(sha string) string {
	c.mu.Lock()
	defer c.mu.Unlock()
	if st := c.status[sha]; st.State == protocol.MediaFailed {
		return st.Reason
	}
	return ""
}

// Percent returns how much of a wanted file is here: 100 once held.
func (c *Cache) Percent(sha string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.held[sha]; ok {
		return 100
	}
	return c.status[sha].Percent
}

// Played records that the kiosk started showing a file at t.
func (c *Cache) Played(sha string, t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if t.After(c.shown[sha]) {
		c.shown[sha] = t
	}
}

// Disconnected records that the connection to the hub was lost: requests
// made before now will not be answered.
func (c *Cache) Disconnected() {
	c.mu.Lock()
	c.lostAt = time.Now()
	c.mu.Unlock()
}

// Kick makes again, now, the requests made before the connection was last
// lost (Disconnected) or that could not be sent; call it when the
// connection is back.
func (c *Cache) Kick() { signal(c.kick) }

// DeliverManifest hands a signed manifest envelope to the downloader. It
// never blocks; one dropped is asked for again.
func (c *Cache) DeliverManifest(data []byte) {
	select {
	case c.in <- delivery{manifest: data}:
	default:
	}
}

// DeliverChunk hands a chunk to the downloader. It never blocks; one
// dropped is asked for again.
func (c *Cache) DeliverChunk(ch protocol.Chunk) {
	select {
	case c.in <- delivery{chunk: ch}:
	default:
	}
}

// Held returns the wanted files held, in playlist order, with their paths.
func (c *Cache) Held() []protocol.LocalMedia {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []protocol.LocalMedia
	for _, r := range c.want {
		if _, ok := c.held[r.SHA256]; ok {
			out = append(out, protocol.LocalMedia{SHA256: r.SHA256, Kind: r.Kind, Path: c.Path(r.SHA256)})
		}
	}
	return out
}

// Has reports whether a complete, verified file is held.
func (c *Cache) Has(sha string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.held[sha]
	return ok
}

// Status returns the state of every wanted file, the bytes held and the
// quota, for the heartbeat.
func (c *Cache) Status() (files []protocol.MediaStatus, bytes, quota int64) {
	for _, p := range c.Progress() {
		files = append(files, p.MediaStatus)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, n := range c.held {
		bytes += n
	}
	return files, bytes, c.cfg.Quota
}

// Unplayable records that the kiosk cannot play a file the cache holds
// (it is whole and verified, but ffmpeg or the image decoder refuses it):
// the file is reported failed, with the kiosk's reason, until it is no
// longer held. It reports whether the file is held.
func (c *Cache) Unplayable(sha, reason string) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.held[sha]; !ok {
		return false
	}
	c.broken[sha] = reason
	return true
}

// Progress returns the state of every wanted file, in playlist order.
func (c *Cache) Progress() []Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]Progress, 0, len(c.want))
	for _, r := range c.want {
		if _, ok := c.held[r.SHA256]; ok {
			st := protocol.MediaStatus{SHA256: r.SHA256, State: protocol.MediaHeld, Percent: 100}
			if why, bad := c.broken[r.SHA256]; bad {
				st.State, st.Reason = protocol.MediaFailed, truncate("kiosk cannot play it: "+why, protocol.MaxReason)
			}
			out = append(out, Progress{MediaStatus: st})
			continue
		}
		p, ok := c.status[r.SHA256]
		if !ok {
			p = Progress{MediaStatus: protocol.MediaStatus{SHA256: r.SHA256, State: protocol.MediaPending}}
		}
		out = append(out, p)
	}
	return out
}

// Corrupt returns how many chunks were dropped because their hash did not
// match the manifest.
func (c *Cache) Corrupt() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.corrupt
}

// Requests returns how many chunk indexes were requested so far.
func (c *Cache) Requests() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.requests
}

// chunkSize is the chunk size of the manifest held for sha; 0 if none.
func (c *Cache) chunkSize(sha string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.chunkSz[sha]
}

func (c *Cache) setStatus(sha string, st protocol.MediaState, j *job, reason string) {
	p := Progress{MediaStatus: protocol.MediaStatus{SHA256: sha, State: st, Reason: reason}}
	c.mu.Lock()
	if j != nil && j.man != nil {
		c.chunkSz[sha] = j.man.ChunkSize
	}
	c.mu.Unlock()
	if j != nil && j.man != nil {
		p.Have, p.Total = j.have, len(j.man.Chunks)
		p.Percent = j.have * 100 / p.Total
	}
	c.mu.Lock()
	c.status[sha] = p
	c.mu.Unlock()
}

func signal(ch chan struct{}) {
	select {
	case ch <- struct{}{}:
	default:
	}
}

// stagger is the start delay of a file for this kiosk, from when it
// became wanted.
func (c *Cache) stagger(sha string) time.Duration {
	if c.cfg.Stagger <= 0 {
		return 0
	}
	h := fnv.New64a()
	h.Write([]byte(c.cfg.Kiosk + "/" + sha)) //nolint:errcheck // never fails
	return time.Duration(h.Sum64() % uint64(c.cfg.Stagger))
}

// freeDisk returns the bytes free for the agent on the cache's disk.
func (c *Cache) freeDisk() (int64, error) {
	var fs syscall.Statfs_t
	if err := syscall.Statfs(c.dir, &fs); err != nil {
		return 0, fmt.Errorf("media: statfs: %w", err)
	}
	return int64(fs.Bavail) * int64(fs.Bsize), nil
}

func (c *Cache) loadState(sha string) (state, protocol.Manifest, bool, error) {
	var s state
	var m protocol.Manifest
	var ok bool
	err := c.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketPartial).Get([]byte(sha))
		if v == nil {
			return nil
		}
		var err error
		s, m, err = decodeState(v)
		ok = err == nil
		if err != nil {
			c.log.Warn("download state unusable: starting over", "sha256", sha, "err", err)
		}
		return nil
	})
	if err != nil {
		return s, m, false, fmt.Errorf("media: load state: %w", err)
	}
	return s, m, ok, nil
}

// decodeState decodes a stored download state: a manifest envelope that
// decodes (its signature was checked when it arrived) and a bitmap of its
// chunks.
func decodeState(v []byte) (state, protocol.Manifest, error) {
	var s state
	if len(v) > maxStateSize {
		return s, protocol.Manifest{}, fmt.Errorf("media: download state of %d bytes, limit %d", len(v), maxStateSize)
	}
	if err := json.Unmarshal(v, &s); err != nil {
		return s, protocol.Manifest{}, fmt.Errorf("media: download state: %w", err)
	}
	_, m, err := protocol.DecodeManifest(s.Manifest)
	if err != nil {
		return s, m, fmt.Errorf("media: download state: %w", err)
	}
	if len(s.Bitmap) != (len(m.Chunks)+7)/8 {
		return s, m, fmt.Errorf("media: download state: bitmap of %d bytes for %d chunks", len(s.Bitmap), len(m.Chunks))
	}
	return s, m, nil
}

func (c *Cache) saveState(sha string, s state) error {
	data, err := json.Marshal(s)
	if err != nil {
		return fmt.Errorf("media: save state: %w", err)
	}
	if err := c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPartial).Put([]byte(sha), data) }); err != nil {
		return fmt.Errorf("media: save state: %w", err)
	}
	return nil
}

// forgetState deletes the saved manifest and bitmap of a download, keeping
// its partial file.
func (c *Cache) forgetState(sha string) error {
	if err := c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPartial).Delete([]byte(sha)) }); err != nil {
		return fmt.Errorf("media: forget state: %w", err)
	}
	return nil
}

func (c *Cache) dropState(sha string) error {
	if err := c.db.Update(func(tx *bolt.Tx) error { return tx.Bucket(bucketPartial).Delete([]byte(sha)) }); err != nil {
		return fmt.Errorf("media: drop state: %w", err)
	}
	if err := os.Remove(filepath.Join(c.part, sha)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("media: %w", err)
	}
	return nil
}

// chunkHash returns the hex SHA-256 of b.
func chunkHash(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func bit(bits []byte, i int) bool { return bits[i/8]&(1<<(i%8)) != 0 }
func setBit(bits []byte, i int)   { bits[i/8] |= 1 << (i % 8) }

// truncate cuts s to at most n characters.
func truncate(s string, n int) string {
	if r := []rune(s); len(r) > n {
		return string(r[:n])
	}
	return s
}
