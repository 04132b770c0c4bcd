package agent_test

import (
	"bytes"
	"context"
	"errors"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/agent/media"
	"github.com/shequ/shequ/protocol"
)

// chunk is the chunk size of the media tests: the smallest allowed, so
// small files have many chunks.
const chunk = protocol.MinChunkSize

// mediaConfig is an agent configuration for media tests: no stagger, quick
// retries, no free-disk floor (test machines' disks vary).
func mediaConfig(dir string) agent.Config {
	return agent.Config{
		DataDir: dir, MediaStagger: -1, MinFreeDisk: -1, MediaChunkTimeout: 2 * time.Second,
		MediaRetryMin: 20 * time.Millisecond, HeartbeatInterval: 50 * time.Millisecond,
	}
}

// fileData returns n deterministic pseudo-random bytes, different per seed.
func fileData(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 42))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// mediaDoc is a desired state of version whose one playlist shows each
// file in turn.
func mediaDoc(t *testing.T, version int64, refs ...protocol.MediaRef) protocol.DesiredState {
	t.Helper()
	data, err := os.ReadFile("../protocol/testdata/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, err := protocol.DecodeDesired(data)
	if err != nil {
		t.Fatal(err)
	}
	doc.Kiosk, doc.Version = kiosk, version
	pl := protocol.Playlist{ID: "pl-test", Name: "宣传", ValidFrom: time.Now().Add(-time.Hour),
		Targets: []protocol.Target{{Level: "district", ID: "huangpu"}}}
	for _, r := range refs {
		it := protocol.PlaylistItem{Kind: protocol.ItemImage, Media: r.SHA256, DurationMS: 5000}
		if r.Kind == protocol.MediaVideo {
			it = protocol.PlaylistItem{Kind: protocol.ItemVideo, Media: r.SHA256}
		}
		pl.Items = append(pl.Items, it)
	}
	doc.Playlists, doc.Media = nil, refs
	if len(refs) > 0 {
		doc.Playlists = []protocol.Playlist{pl}
	}
	if err := doc.Validate(); err != nil {
		t.Fatalf("test desired state: %v", err)
	}
	return doc
}

func progress(a *agent.Agent, sha string) media.Progress {
	c := a.Media()
	if c == nil {
		return media.Progress{}
	}
	for _, p := range c.Progress() {
		if p.SHA256 == sha {
			return p
		}
	}
	return media.Progress{}
}

func waitHeld(t *testing.T, a *agent.Agent, data []byte, refs ...protocol.MediaRef) {
	t.Helper()
	for _, r := range refs {
		hubtest.Eventually(t, 20*time.Second, "file "+r.SHA256[:8]+" held", func() bool {
			return progress(a, r.SHA256).State == protocol.MediaHeld
		})
	}
	if data != nil {
		got, err := os.ReadFile(a.Media().Path(refs[0].SHA256))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, data) {
			t.Fatal("held file differs from the hub's")
		}
	}
}

// sentOnce fails unless every chunk of ref was sent by the hub exactly once.
func sentOnce(t *testing.T, hub *hubtest.Hub, ref protocol.MediaRef) {
	t.Helper()
	sent := hub.ChunksSent(ref.SHA256)
	n := protocol.ChunkCount(ref.Size, chunk)
	for i := range n {
		if sent[i] != 1 {
			t.Errorf("chunk %d sent %d times, want 1", i, sent[i])
		}
	}
}

// TestMediaDownload: the files of the desired state are fetched over MQTT,
// verified and held; the local API lists the playlists and the files with
// their paths, an event announces each file held, and heartbeats report
// the cache.
func TestMediaDownload(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	img := fileData(1, 5*chunk+123)
	vid := fileData(2, 9*chunk)
	refImg := hub.AddMedia(img, protocol.MediaImage, chunk)
	refVid := hub.AddMedia(vid, protocol.MediaVideo, chunk)
	a := newAgent(t, mediaConfig(dir))
	start(t, a)
	events, cancel := a.Subscribe()
	defer cancel()
	hub.Desired(kiosk, mediaDoc(t, 1, refImg, refVid))
	waitHeld(t, a, img, refImg)
	waitHeld(t, a, vid, refVid)
	sentOnce(t, hub, refImg)
	sentOnce(t, hub, refVid)

	n, err := a.Notices()
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Playlists) != 1 || len(n.Media) != 2 {
		t.Fatalf("notices have %d playlists and %d media, want 1 and 2", len(n.Playlists), len(n.Media))
	}
	for _, m := range n.Media {
		if !filepath.IsAbs(m.Path) {
			t.Errorf("media path %q is not absolute", m.Path)
		}
		if _, err := os.Stat(m.Path); err != nil {
			t.Errorf("media path: %v", err)
		}
	}
	if fi, err := os.Stat(filepath.Join(dir, "media")); err != nil || fi.Mode().Perm() != 0o750 {
		t.Errorf("media dir mode = %v, %v; want 0750", fi.Mode().Perm(), err)
	}
	sawNotices := 0
	for drained := false; !drained; {
		select {
		case ev := <-events:
			if ev.Type == protocol.EventNotices {
				sawNotices++
			}
		default:
			drained = true
		}
	}
	if sawNotices < 2 { // the desired state, then at least one file held
		t.Errorf("%d notices events, want at least 2", sawNotices)
	}

	hubtest.Eventually(t, wait, "heartbeat reporting both files held", func() bool {
		m, ok := hub.TryNext(kiosk, protocol.ChannelHeartbeat, wait)
		if !ok {
			return false
		}
		_, hb, err := protocol.DecodeHeartbeat(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		held := 0
		for _, s := range hb.Media {
			if s.State == protocol.MediaHeld && s.Percent == 100 {
				held++
			}
		}
		return held == 2 && hb.CacheBytes == refImg.Size+refVid.Size && hb.CacheQuota == 2<<30
	})
}

// TestMediaResume: a transfer cut off (by the broker connection dropping,
// or by the agent stopping) continues with the missing chunks only: no
// chunk is sent twice.
func TestMediaResume(t *testing.T) {
	tests := []struct {
		name      string
		interrupt func(t *testing.T, b *hubtest.Broker, a *agent.Agent, dir string) *agent.Agent
	}{
		{"connection dropped", func(t *testing.T, b *hubtest.Broker, a *agent.Agent, dir string) *agent.Agent {
			if !b.Kick(kiosk) {
				t.Fatal("agent was not connected")
			}
			return a
		}},
		{"agent restarted", func(t *testing.T, b *hubtest.Broker, a *agent.Agent, dir string) *agent.Agent {
			if err := a.Close(); err != nil {
				t.Fatal(err)
			}
			a2 := newAgent(t, mediaConfig(dir))
			if err := a2.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			return a2
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := hubtest.StartBroker(t)
			hub := hubtest.NewHub(t, b)
			dir := enrolledDir(t, hub)
			data := fileData(3, 40*chunk+7)
			ref := hub.AddMedia(data, protocol.MediaVideo, chunk)
			const first = 19 // not a multiple of the bitmap's persist interval
			hub.LimitChunks(first)
			a := newAgent(t, mediaConfig(dir))
			if err := a.Start(context.Background()); err != nil {
				t.Fatal(err)
			}
			hub.Desired(kiosk, mediaDoc(t, 1, ref))
			hubtest.Eventually(t, wait, "first chunks written", func() bool { return progress(a, ref.SHA256).Have == first })
			a = tc.interrupt(t, b, a, dir)
			t.Cleanup(func() {
				if err := a.Close(); err != nil {
					t.Errorf("Close: %v", err)
				}
			})
			hub.LimitChunks(-1)
			waitHeld(t, a, data, ref)
			// No chunk written before the interruption is fetched again.
			// Chunks that were in flight then may come twice: the agent asks
			// for them again after the reconnect, and the hub may still answer
			// the first request late. At most one window of them.
			sent := hub.ChunksSent(ref.SHA256)
			for i := range first {
				if sent[i] != 1 {
					t.Errorf("chunk %d, written before the interruption, sent %d times", i, sent[i])
				}
			}
			n := protocol.ChunkCount(ref.Size, chunk)
			for i := first; i < n; i++ {
				if sent[i] < 1 || sent[i] > 2 {
					t.Errorf("chunk %d sent %d times, want 1 or 2", i, sent[i])
				}
			}
			const window = 8 // the agent's default MediaWindow
			if got := hub.ChunksServed(); got < n || got > n+window {
				t.Errorf("hub served %d chunks, want %d to %d", got, n, n+window)
			}
		})
	}
}

// TestMediaUnplayable: the kiosk reports a held file it cannot play; the
// agent reports it failed, with the kiosk's reason, in its media status
// (and so in heartbeats); a file it does not hold is refused.
func TestMediaUnplayable(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	vid := fileData(7, 3*chunk)
	ref := hub.AddMedia(vid, protocol.MediaVideo, chunk)
	a := newAgent(t, mediaConfig(dir))
	start(t, a)
	hub.Desired(kiosk, mediaDoc(t, 1, ref))
	waitHeld(t, a, vid, ref)

	if err := a.MediaError(protocol.MediaError{SHA256: ref.SHA256, Reason: "ffmpeg: Invalid data", At: time.Now()}); err != nil {
		t.Fatalf("MediaError: %v", err)
	}
	files, _, _ := a.Media().Status()
	if len(files) != 1 || files[0].State != protocol.MediaFailed || !strings.Contains(files[0].Reason, "ffmpeg: Invalid data") {
		t.Fatalf("status after the kiosk's report: %+v", files)
	}
	other := strings.Repeat("ab", 32)
	if err := a.MediaError(protocol.MediaError{SHA256: other, Reason: "x", At: time.Now()}); !errors.Is(err, protocol.ErrInvalid) {
		t.Fatalf("MediaError for a file not held = %v, want ErrInvalid", err)
	}
}

// TestMediaChunkSizeChanged: the hub's chunk size changes in the middle of
// a download (its -chunk-size flag): the chunks no longer fit the manifest
// the agent holds, so it fetches the manifest again and finishes.
func TestMediaChunkSizeChanged(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	data := fileData(5, 40*chunk+7)
	ref := hub.AddMedia(data, protocol.MediaVideo, chunk)
	hub.LimitChunks(10)
	a := newAgent(t, mediaConfig(dir))
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := a.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	hub.Desired(kiosk, mediaDoc(t, 1, ref))
	hubtest.Eventually(t, wait, "first chunks written", func() bool { return progress(a, ref.SHA256).Have == 10 })
	if again := hub.AddMedia(data, protocol.MediaVideo, 2*chunk); again != ref {
		t.Fatalf("the same bytes got another reference: %+v", again)
	}
	hub.LimitChunks(-1)
	waitHeld(t, a, data, ref)
}

// TestMediaCorruption: a chunk that does not match the manifest is asked
// for again; a held file damaged on disk is found at start and fetched
// again.
func TestMediaCorruption(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	data := fileData(4, 12*chunk)
	ref := hub.AddMedia(data, protocol.MediaImage, chunk)
	hub.CorruptChunk(ref.SHA256, 3)
	a := newAgent(t, mediaConfig(dir))
	if err := a.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	hub.Desired(kiosk, mediaDoc(t, 1, ref))
	waitHeld(t, a, data, ref)
	if got := a.Media().Corrupt(); got != 1 {
		t.Errorf("corrupt chunks = %d, want 1", got)
	}
	if got := hub.ChunkRequests(ref.SHA256)[3]; got != 2 {
		t.Errorf("chunk 3 requested %d times, want 2", got)
	}
	path := a.Media().Path(ref.SHA256)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}

	damaged := bytes.Clone(data)
	damaged[len(damaged)/2] ^= 0x01
	if err := os.WriteFile(path, damaged, 0o640); err != nil {
		t.Fatal(err)
	}
	a = newAgent(t, mediaConfig(dir))
	start(t, a)
	waitHeld(t, a, data, ref)
	if got := hub.ManifestRequests(ref.SHA256); got != 2 {
		t.Errorf("manifest requested %d times, want 2 (the damaged file fetched again)", got)
	}
}

// TestMediaQuota: files are taken in playlist order while they fit in the
// quota; the rest are reported failed ("quota") and never asked for.
func TestMediaQuota(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	var refs []protocol.MediaRef
	for i := range 3 {
		refs = append(refs, hub.AddMedia(fileData(uint64(10+i), 3*chunk), protocol.MediaImage, chunk))
	}
	cfg := mediaConfig(dir)
	cfg.MediaQuota = 7 * chunk // two files fit
	a := newAgent(t, cfg)
	start(t, a)
	hub.Desired(kiosk, mediaDoc(t, 1, refs...))
	waitHeld(t, a, nil, refs[0], refs[1])
	hubtest.Eventually(t, wait, "third file failed for quota", func() bool {
		p := progress(a, refs[2].SHA256)
		return p.State == protocol.MediaFailed && p.Reason == media.ReasonQuota
	})
	if n := hub.ManifestRequests(refs[2].SHA256); n != 0 {
		t.Errorf("file over the quota: manifest requested %d times", n)
	}
	if _, err := os.Stat(a.Media().Path(refs[2].SHA256)); err == nil {
		t.Error("file over the quota is on disk")
	}
}

// TestMediaRefused: a file is not fetched when the disk lacks room
// (reported "disk full"), when its manifest is not signed by the trusted
// key (asked for again, never used), or when the manifest does not match
// the reference (reported "bad manifest").
func TestMediaRefused(t *testing.T) {
	tests := []struct {
		name   string
		setup  func(t *testing.T, hub *hubtest.Hub, cfg *agent.Config) protocol.MediaRef
		reason string // failed with; empty: still waiting for a usable manifest
	}{
		{"disk full", func(t *testing.T, hub *hubtest.Hub, cfg *agent.Config) protocol.MediaRef {
			cfg.MinFreeDisk = 1 << 62
			return hub.AddMedia(fileData(50, 2*chunk), protocol.MediaImage, chunk)
		}, media.ReasonDiskFull},
		{"manifest signed by another key", func(t *testing.T, hub *hubtest.Hub, cfg *agent.Config) protocol.MediaRef {
			return hub.AddMediaSigned(fileData(51, 2*chunk), protocol.MediaImage, chunk, hubtest.NewKey(t))
		}, ""},
		{"file does not match its name", func(t *testing.T, hub *hubtest.Hub, cfg *agent.Config) protocol.MediaRef {
			cfg.MediaRetryMin = time.Hour // fetched once, then waits
			return hub.AddMediaMislabelled(fileData(53, 2*chunk), fileData(54, 2*chunk), protocol.MediaImage, chunk)
		}, media.ReasonHash},
		{"manifest size differs from the reference", func(t *testing.T, hub *hubtest.Hub, cfg *agent.Config) protocol.MediaRef {
			r := hub.AddMedia(fileData(52, 2*chunk), protocol.MediaImage, chunk)
			r.Size++
			return r
		}, media.ReasonManifest},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := hubtest.StartBroker(t)
			hub := hubtest.NewHub(t, b)
			dir := enrolledDir(t, hub)
			cfg := mediaConfig(dir)
			cfg.MediaChunkTimeout = 50 * time.Millisecond
			ref := tc.setup(t, hub, &cfg)
			a := newAgent(t, cfg)
			start(t, a)
			hub.Desired(kiosk, mediaDoc(t, 1, ref))
			if tc.reason != "" {
				hubtest.Eventually(t, wait, "failed with "+tc.reason, func() bool {
					p := progress(a, ref.SHA256)
					return p.State == protocol.MediaFailed && p.Reason == tc.reason
				})
			} else {
				hubtest.Eventually(t, wait, "manifest asked for again", func() bool { return hub.ManifestRequests(ref.SHA256) >= 3 })
			}
			if n := len(hub.ChunkRequests(ref.SHA256)); n != 0 && tc.reason != media.ReasonHash {
				t.Errorf("%d chunks requested", n)
			}
			if a.Media().Has(ref.SHA256) {
				t.Error("file held")
			}
			if ents, err := os.ReadDir(filepath.Join(dir, "media", "partial")); err != nil || (tc.reason == media.ReasonHash && len(ents) != 0) {
				t.Errorf("partial files after a bad whole-file hash: %v, %v", ents, err)
			}
		})
	}
}

// TestMediaGC: files no longer wanted are removed only once every wanted
// file is held, and never the file on screen or a wanted one.
func TestMediaGC(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	onScreen := hub.AddMedia(fileData(20, 2*chunk), protocol.MediaImage, chunk)
	old := hub.AddMedia(fileData(21, 2*chunk), protocol.MediaImage, chunk)
	kept := hub.AddMedia(fileData(22, 2*chunk), protocol.MediaImage, chunk)
	next := hub.AddMedia(fileData(23, 4*chunk), protocol.MediaVideo, chunk)
	a := newAgent(t, mediaConfig(dir))
	start(t, a)
	hub.Desired(kiosk, mediaDoc(t, 1, onScreen, old, kept))
	waitHeld(t, a, nil, onScreen, old, kept)
	if err := a.Play(protocol.PlayEvent{Kind: protocol.ItemImage, Media: onScreen.SHA256, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	exists := func(r protocol.MediaRef) bool {
		_, err := os.Stat(a.Media().Path(r.SHA256))
		return err == nil
	}

	hub.LimitChunks(0)
	hub.Desired(kiosk, mediaDoc(t, 2, kept, next))
	hubtest.Eventually(t, wait, "new file downloading", func() bool {
		p := progress(a, next.SHA256)
		return p.State == protocol.MediaDownloading && p.Total > 0
	})
	if !exists(old) || !exists(onScreen) {
		t.Fatal("a file was removed before every wanted file was held")
	}
	hub.LimitChunks(-1)
	waitHeld(t, a, nil, next)
	hubtest.Eventually(t, wait, "unwanted file removed", func() bool { return !exists(old) })
	if !exists(onScreen) {
		t.Error("the file on screen was removed")
	}
	if !exists(kept) || !exists(next) {
		t.Error("a wanted file was removed")
	}
}

// TestPlays: plays are counted per hour and item; each finished hour
// becomes one PlayStats record, sent on the plays channel (next to
// feedback on its own) until acknowledged, then deleted; the current hour
// waits.
func TestPlays(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	a := newAgent(t, agent.Config{DataDir: dir})
	start(t, a)
	vid := hub.AddMedia(fileData(30, chunk), protocol.MediaVideo, chunk).SHA256
	now := time.Now().UTC()
	past := now.Truncate(time.Hour).Add(-2 * time.Hour)
	events := []protocol.PlayEvent{
		{Kind: protocol.ItemVideo, Media: vid, At: past.Add(5 * time.Minute)},
		{Kind: protocol.ItemVideo, Media: vid, At: past.Add(50 * time.Minute)},
		{Kind: protocol.ItemVideo, Media: vid, At: past.Add(20 * time.Minute)},
		{Kind: protocol.ItemNotice, Notice: "n-1", At: past.Add(30 * time.Minute)},
		{Kind: protocol.ItemNotice, Notice: "n-1", At: now},
	}
	for _, e := range events {
		if err := a.Play(e); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := a.SubmitFeedback(request(t)); err != nil {
		t.Fatal(err)
	}
	n, err := a.FlushPlays(now)
	if err != nil || n != 1 {
		t.Fatalf("FlushPlays = %d, %v; want 1 record", n, err)
	}
	id, ps := hub.Plays(kiosk, wait)
	if !ps.Hour.Equal(past) || ps.Kiosk != kiosk || len(ps.Items) != 2 {
		t.Fatalf("play stats = %+v", ps)
	}
	for _, it := range ps.Items {
		switch {
		case it.Kind == protocol.ItemVideo && it.Media == vid:
			if it.Count != 3 || !it.Last.Equal(past.Add(50*time.Minute)) {
				t.Errorf("video count %d last %v, want 3 at :50", it.Count, it.Last)
			}
		case it.Kind == protocol.ItemNotice && it.Notice == "n-1":
			if it.Count != 1 {
				t.Errorf("notice count %d, want 1 (the current hour waits)", it.Count)
			}
		default:
			t.Errorf("unexpected item %+v", it)
		}
	}
	fid, _ := hub.Feedback(kiosk, wait)
	hub.Ack(kiosk, id, protocol.AckStored, "")
	hub.Ack(kiosk, fid, protocol.AckStored, "")
	hubtest.Eventually(t, wait, "outbox empty after acks", func() bool { return a.Status().OutboxDepth == 0 })
	if n, err := a.FlushPlays(now); err != nil || n != 0 {
		t.Errorf("second FlushPlays = %d, %v; want nothing (sent once)", n, err)
	}
	if n, err := a.FlushPlays(now.Add(time.Hour)); err != nil || n != 1 {
		t.Errorf("FlushPlays an hour later = %d, %v; want the then finished hour", n, err)
	}
}

// TestMediaHTTP: with MediaHTTP set, files come by HTTPS range requests
// (device credentials, pinned CA), checked the same way.
func TestMediaHTTP(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	dir := enrolledDir(t, hub)
	data := fileData(40, 10*chunk+5)
	ref := hub.AddMedia(data, protocol.MediaVideo, chunk)
	cfg := mediaConfig(dir)
	cfg.MediaHTTP = hub.StartMediaHTTP(t)
	a := newAgent(t, cfg)
	start(t, a)
	hub.Desired(kiosk, mediaDoc(t, 1, ref))
	waitHeld(t, a, data, ref)
	if got, want := hub.HTTPRanges(), protocol.ChunkCount(ref.Size, chunk); got != want {
		t.Errorf("HTTP range requests = %d, want %d", got, want)
	}
	if got := hub.ChunksServed(); got != 0 {
		t.Errorf("%d chunks sent over MQTT in HTTP mode", got)
	}
}
