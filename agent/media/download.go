package media

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"time"

	"github.com/shequ/shequ/protocol"
)

// maxRetry caps the backoff of a failed file.
const maxRetry = 30 * time.Minute

// Run fetches wanted files through req until ctx is done, then persists
// every download's state and returns nil; only a state database failure
// ends it early.
func (c *Cache) Run(ctx context.Context, req Requester) (err error) {
	jobs := map[string]*job{}
	defer func() {
		for sha, j := range jobs {
			err = errors.Join(err, c.stopJob(sha, j))
		}
	}()
	tick := time.NewTicker(max(min(c.cfg.ChunkTimeout/4, time.Second), 5*time.Millisecond))
	defer tick.Stop()
	for {
		if err := c.plan(req, jobs); err != nil {
			return err
		}
		select {
		case <-ctx.Done():
			return nil
		case d := <-c.in:
			if err := c.deliver(d, jobs); err != nil {
				return err
			}
			// Take what else arrived before planning again.
			for n := 0; n < cap(c.in); n++ {
				select {
				case d := <-c.in:
					if err := c.deliver(d, jobs); err != nil {
						return err
					}
					continue
				default:
				}
				break
			}
		case <-c.wake:
		case <-c.kick:
			// Requests made before the connection was lost will never be
			// answered: make them again now.
			c.mu.Lock()
			lost := c.lostAt
			c.mu.Unlock()
			for _, j := range jobs {
				if j.askedAt.Before(lost) {
					j.askedAt = time.Time{}
				}
				for i, at := range j.inflight {
					if at.Before(lost) {
						delete(j.inflight, i)
					}
				}
			}
		case <-tick.C:
		}
	}
}

// plan starts and stops jobs to match what is wanted, makes the requests
// due, and removes files no longer wanted once everything wanted is held.
func (c *Cache) plan(req Requester, jobs map[string]*job) error {
	now := time.Now()
	c.mu.Lock()
	want, wantSet := c.want, c.wantSet
	allowed := map[string]protocol.MediaRef{}
	var used int64
	var quotaFailed []string
	for _, r := range want {
		if _, ok := c.held[r.SHA256]; ok || used+r.Size <= c.cfg.Quota {
			used += r.Size
			allowed[r.SHA256] = r
		} else {
			quotaFailed = append(quotaFailed, r.SHA256)
		}
	}
	c.mu.Unlock()
	for _, sha := range quotaFailed {
		if j := jobs[sha]; j != nil {
			if err := c.stopJob(sha, j); err != nil {
				return err
			}
			delete(jobs, sha)
		}
		c.setStatus(sha, protocol.MediaFailed, nil, ReasonQuota)
	}
	for sha, j := range jobs {
		if _, ok := allowed[sha]; !ok {
			if err := c.stopJob(sha, j); err != nil {
				return err
			}
			delete(jobs, sha)
		}
	}
	allHeld := true
	for _, r := range want {
		if _, ok := allowed[r.SHA256]; !ok || c.Has(r.SHA256) {
			continue
		}
		allHeld = false
		if jobs[r.SHA256] != nil || len(jobs) >= c.cfg.Concurrency {
			continue
		}
		c.mu.Lock()
		retryAt, failed := c.failedAt[r.SHA256]
		since := c.since[r.SHA256]
		c.mu.Unlock()
		if now.Before(since.Add(c.stagger(r.SHA256))) || (failed && now.Before(retryAt)) {
			continue
		}
		j, err := c.startJob(r)
		if err != nil {
			return err
		}
		if j != nil {
			jobs[r.SHA256] = j
		}
	}
	for sha, j := range jobs {
		c.request(req, sha, j, now)
	}
	c.mu.Lock()
	due := c.gcNeeded || now.Sub(c.gcAt) >= time.Minute
	c.mu.Unlock()
	if allHeld && wantSet && due {
		return c.gc(allowed, now)
	}
	return nil
}

// request makes the requests of one job that are due.
func (c *Cache) request(req Requester, sha string, j *job, now time.Time) {
	if j.man == nil {
		if j.askedAt.IsZero() || now.Sub(j.askedAt) >= c.cfg.ChunkTimeout {
			j.askedAt = now
			if err := req.RequestManifest(sha); err != nil {
				c.log.Debug("manifest request not sent", "sha256", sha, "err", err)
				j.askedAt = time.Time{} // due again at the next tick
			}
		}
		return
	}
	for i, at := range j.inflight {
		if now.Sub(at) >= c.cfg.ChunkTimeout {
			delete(j.inflight, i)
		}
	}
	var idx []int
	n := len(j.man.Chunks)
	for j.cursor < n && bit(j.bits, j.cursor) {
		j.cursor++
	}
	for i := j.cursor; i < n && len(j.inflight)+len(idx) < c.cfg.Window; i++ {
		if bit(j.bits, i) {
			continue
		}
		if _, ok := j.inflight[i]; ok {
			continue
		}
		idx = append(idx, i)
	}
	if len(idx) == 0 {
		return
	}
	for _, i := range idx {
		j.inflight[i] = now
	}
	j.chunks += len(idx)
	c.mu.Lock()
	c.requests += len(idx)
	c.mu.Unlock()
	if err := req.RequestChunks(sha, idx); err != nil {
		c.log.Debug("chunk request not sent", "sha256", sha, "err", err)
		for _, i := range idx {
			j.inflight[i] = time.Time{} // due again at the next tick
		}
	}
}

// startJob resumes or begins the download of r; nil (and a failed status)
// if the disk has no room.
func (c *Cache) startJob(r protocol.MediaRef) (*job, error) {
	s, m, ok, err := c.loadState(r.SHA256)
	if err != nil {
		return nil, err
	}
	j := &job{ref: r, inflight: map[int]time.Time{}}
	if ok {
		if m.SHA256 != r.SHA256 || m.Size != r.Size {
			c.log.Warn("download state does not match the file: starting over", "sha256", r.SHA256)
			if err := c.dropState(r.SHA256); err != nil {
				return nil, err
			}
		} else {
			j.man, j.env, j.bits = &m, s.Manifest, s.Bitmap
			for i := range m.Chunks {
				if bit(j.bits, i) {
					j.have++
				}
			}
		}
	}
	need := r.Size
	if j.man != nil {
		need -= int64(j.have) * int64(j.man.ChunkSize)
	}
	if free, err := c.freeDisk(); err != nil || free-need < c.cfg.MinFreeDisk {
		if err != nil {
			c.log.Warn("free disk unknown", "err", err)
		}
		c.fail(r.SHA256, ReasonDiskFull)
		return nil, nil
	}
	path := filepath.Join(c.part, r.SHA256)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o640)
	if err != nil {
		return nil, fmt.Errorf("media: %w", err)
	}
	j.f = f
	if j.man != nil {
		if fi, err := f.Stat(); err != nil || fi.Size() != r.Size {
			c.log.Warn("partial file missing or resized: starting over", "sha256", r.SHA256)
			clear(j.bits)
			j.have = 0
			if err := f.Truncate(r.Size); err != nil {
				return nil, errors.Join(fmt.Errorf("media: %w", err), f.Close())
			}
		}
		c.log.Info("media download resumed", "sha256", r.SHA256, "have", j.have, "chunks", len(j.man.Chunks))
	} else {
		c.log.Info("media download started", "sha256", r.SHA256, "size", r.Size)
	}
	c.setStatus(r.SHA256, protocol.MediaDownloading, j, "")
	return j, nil
}

// stopJob persists a job's state and closes its file.
func (c *Cache) stopJob(sha string, j *job) error {
	if j.f == nil {
		return nil
	}
	err := c.persist(sha, j)
	if cerr := j.f.Close(); cerr != nil {
		err = errors.Join(err, fmt.Errorf("media: %w", cerr))
	}
	j.f = nil
	return err
}

// persist fsyncs the data written and then records its bits.
func (c *Cache) persist(sha string, j *job) error {
	if j.man == nil {
		return nil
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("media: sync %s: %w", sha, err)
	}
	j.dirty = 0
	return c.saveState(sha, state{Manifest: j.env, Bitmap: j.bits})
}

// fail reports a file failed and schedules a retry with backoff.
func (c *Cache) fail(sha, reason string) {
	c.mu.Lock()
	n := c.retries[sha]
	c.retries[sha] = n + 1
	d := maxRetry
	if n < 20 {
		d = min(c.cfg.RetryMin<<n, maxRetry)
	}
	c.failedAt[sha] = time.Now().Add(d)
	prev := c.status[sha]
	c.mu.Unlock()
	if prev.State != protocol.MediaFailed || prev.Reason != reason {
		c.log.Error("media download failed", "sha256", sha, "reason", reason, "retry_in", d)
	}
	c.setStatus(sha, protocol.MediaFailed, nil, reason)
}

// deliver applies a manifest or chunk that arrived.
func (c *Cache) deliver(d delivery, jobs map[string]*job) error {
	if d.manifest != nil {
		m, err := c.cfg.Verify(d.manifest)
		if err != nil {
			c.log.Warn("manifest refused", "err", err)
			return nil
		}
		j := jobs[m.SHA256]
		if j == nil || j.man != nil {
			return nil
		}
		if m.Size != j.ref.Size {
			c.log.Error("manifest does not match the media reference", "sha256", m.SHA256, "size", m.Size, "want", j.ref.Size)
			c.fail(m.SHA256, ReasonManifest)
			if err := c.stopJob(m.SHA256, j); err != nil {
				return err
			}
			delete(jobs, m.SHA256)
			return nil
		}
		if err := j.f.Truncate(m.Size); err != nil {
			return c.writeFailed(m.SHA256, j, jobs, err)
		}
		j.man, j.env, j.bits, j.have = &m, d.manifest, make([]byte, (len(m.Chunks)+7)/8), 0
		c.setStatus(m.SHA256, protocol.MediaDownloading, j, "")
		return c.persist(m.SHA256, j)
	}
	ch := d.chunk
	j := jobs[ch.SHA256]
	if j == nil || j.man == nil || ch.Index < 0 || ch.Index >= len(j.man.Chunks) || bit(j.bits, ch.Index) {
		return nil
	}
	i := ch.Index
	delete(j.inflight, i)
	if len(ch.Data) != j.man.ChunkLen(i) {
		j.misfits++
		if j.misfits >= maxMisfits {
			c.log.Warn("chunks do not fit the manifest (the hub's chunk size changed?): fetching the manifest again",
				"sha256", ch.SHA256, "chunk_size", j.man.ChunkSize, "got", len(ch.Data))
			j.man, j.env, j.bits, j.have, j.cursor, j.misfits, j.dirty = nil, nil, nil, 0, 0, 0, 0
			j.inflight, j.askedAt = map[int]time.Time{}, time.Time{}
			// The partial file stays (it is reopened by this job); only the
			// saved manifest and bitmap go, so a restart asks again too.
			return c.forgetState(ch.SHA256)
		}
	}
	if len(ch.Data) != j.man.ChunkLen(i) || chunkHash(ch.Data) != j.man.Chunks[i] {
		c.mu.Lock()
		c.corrupt++
		c.mu.Unlock()
		c.log.Warn("corrupted chunk dropped: asking again", "sha256", ch.SHA256, "index", i)
		return nil
	}
	j.misfits = 0
	if _, err := j.f.WriteAt(ch.Data, int64(i)*int64(j.man.ChunkSize)); err != nil {
		return c.writeFailed(ch.SHA256, j, jobs, err)
	}
	setBit(j.bits, i)
	j.have++
	j.dirty++
	if j.have == len(j.man.Chunks) {
		delete(jobs, ch.SHA256)
		return c.finish(ch.SHA256, j)
	}
	c.setStatus(ch.SHA256, protocol.MediaDownloading, j, "")
	if j.dirty >= c.cfg.PersistEvery {
		if err := c.persist(ch.SHA256, j); err != nil {
			return c.writeFailed(ch.SHA256, j, jobs, err)
		}
		// The file is allocated sparse: stop before the disk gets too full.
		need := int64(len(j.man.Chunks)-j.have) * int64(j.man.ChunkSize)
		if free, err := c.freeDisk(); err == nil && free-need < c.cfg.MinFreeDisk {
			return c.writeFailed(ch.SHA256, j, jobs, fmt.Errorf("%w: %d bytes free, %d still to write, %d kept free", syscall.ENOSPC, free, need, c.cfg.MinFreeDisk))
		}
	}
	return nil
}

// writeFailed stops a job whose file could not be written: a full disk is
// reported and retried; anything else too, under its own message.
func (c *Cache) writeFailed(sha string, j *job, jobs map[string]*job, werr error) error {
	delete(jobs, sha)
	reason := ReasonDiskFull
	if !errors.Is(werr, syscall.ENOSPC) {
		reason = "write failed"
	}
	c.log.Error("media file not written", "sha256", sha, "err", werr)
	c.fail(sha, reason)
	if err := c.stopJob(sha, j); err != nil {
		c.log.Error("media download state not saved", "sha256", sha, "err", err)
	}
	return nil
}

// finish checks a complete file and moves it into place.
func (c *Cache) finish(sha string, j *job) error {
	path := filepath.Join(c.part, sha)
	err := j.f.Sync()
	if cerr := j.f.Close(); err == nil {
		err = cerr
	}
	j.f = nil
	if err != nil {
		c.log.Error("media file not synced", "sha256", sha, "err", err)
		c.fail(sha, "write failed")
		return nil
	}
	sum, size, err := hashFile(path)
	if err != nil {
		return fmt.Errorf("media: hash %s: %w", sha, err)
	}
	if sum != sha || size != j.ref.Size {
		c.log.Error("downloaded file does not match its hash: dropped, fetched again", "sha256", sha, "got", sum)
		if err := c.dropState(sha); err != nil {
			return err
		}
		c.fail(sha, ReasonHash)
		return nil
	}
	if err := os.Chmod(path, 0o640); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if c.gid >= 0 {
		if err := os.Chown(path, -1, c.gid); err != nil {
			return fmt.Errorf("media: %w", err)
		}
	}
	if err := os.Rename(path, c.Path(sha)); err != nil {
		return fmt.Errorf("media: %w", err)
	}
	if err := syncDir(c.dir); err != nil {
		return err
	}
	if err := c.dropState(sha); err != nil {
		return err
	}
	c.mu.Lock()
	c.held[sha] = size
	c.gcNeeded = true
	delete(c.status, sha)
	delete(c.failedAt, sha)
	delete(c.retries, sha)
	c.mu.Unlock()
	c.log.Info("media file held", "sha256", sha, "size", size, "chunk_requests", j.chunks)
	if c.cfg.OnHeld != nil {
		c.cfg.OnHeld(sha)
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("media: sync %s: %w", dir, err)
	}
	return nil
}

// gc removes held files and partial downloads no longer wanted, except a
// file shown within OnScreenFor.
func (c *Cache) gc(wanted map[string]protocol.MediaRef, now time.Time) error {
	c.mu.Lock()
	c.gcNeeded, c.gcAt = false, now
	var drop []string
	for sha := range c.held {
		if _, ok := wanted[sha]; ok || now.Sub(c.shown[sha]) < c.cfg.OnScreenFor {
			continue
		}
		drop = append(drop, sha)
		delete(c.held, sha)
		delete(c.broken, sha)
	}
	c.mu.Unlock()
	for _, sha := range drop {
		c.log.Info("media file no longer wanted: removed", "sha256", sha)
		if err := os.Remove(c.Path(sha)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("media: %w", err)
		}
	}
	ents, err := os.ReadDir(c.part)
	if err != nil {
		return fmt.Errorf("media: %w", err)
	}
	for _, e := range ents {
		if _, ok := wanted[e.Name()]; !ok {
			if err := c.dropState(e.Name()); err != nil {
				return err
			}
		}
	}
	return nil
}
