// Package video plays a video file for the kiosk's attract loop without any
// UI toolkit: ffmpeg decodes it into RGBA frames on a pipe, a Player reads
// them into a few reused buffers and hands them to a show function at the
// file's frame rate; the UI draws them (kiosk/ui does it in a Fyne image).
//
// Open probes the file (ffprobe) and starts ffmpeg at once, which decodes
// the first frame and then waits (the pipe is not read further), so a
// player opened ahead of time (the next item) starts showing frames
// without delay when Play is called. Close kills ffmpeg.
package video

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	"io"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Defaults of Config.
const (
	DefaultMaxWidth  = 1280
	DefaultMaxHeight = 1280
	// DefaultFPS is the frame rate used when the file does not tell one
	// (or tells more than MaxFPS, which is then forced).
	DefaultFPS = 25
	MaxFPS     = 60
	// buffers is how many frame buffers a player reuses: one on screen,
	// one handed to the UI, one being decoded into.
	buffers = 3
	// maxStderr bounds what is kept of ffmpeg's error output.
	maxStderr = 4 << 10
)

// Config configures players. The zero value means the defaults.
type Config struct {
	FFmpeg  string // ffmpeg executable; "" means "ffmpeg" from PATH
	FFprobe string // ffprobe executable; "" means "ffprobe" from PATH
	// MaxWidth and MaxHeight bound the decoded frame size; a larger video
	// is scaled down keeping its aspect (the UI scales further to fit).
	// 0 means DefaultMaxWidth and DefaultMaxHeight.
	MaxWidth, MaxHeight int
	// Log receives ffmpeg failures; nil discards them.
	Log *slog.Logger
}

func (c Config) withDefaults() Config {
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.FFprobe == "" {
		c.FFprobe = "ffprobe"
	}
	if c.MaxWidth <= 0 {
		c.MaxWidth = DefaultMaxWidth
	}
	if c.MaxHeight <= 0 {
		c.MaxHeight = DefaultMaxHeight
	}
	if c.Log == nil {
		c.Log = slog.New(slog.DiscardHandler)
	}
	return c
}

// Errors returned, wrapped, by Open and Err.
var (
	// ErrNotVideo means ffprobe found no video stream in the file.
	ErrNotVideo = errors.New("video: not a playable video")
	// ErrNoFrames means ffmpeg ended without producing a frame.
	ErrNoFrames = errors.New("video: no frames decoded")
)

// Info is what ffprobe tells about a file's video stream.
type Info struct {
	Width, Height int
	FPS           float64
}

// Probe returns the size and frame rate of the first video stream of path.
func Probe(ctx context.Context, ffprobe, path string) (Info, error) {
	if ffprobe == "" {
		ffprobe = "ffprobe"
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-select_streams", "v:0",
		"-show_entries", "stream=width,height,avg_frame_rate,r_frame_rate", "-of", "json", "--", path)
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: maxStderr}
	out, err := cmd.Output()
	if err != nil {
		return Info{}, fmt.Errorf("%w: ffprobe %s: %v: %s", ErrNotVideo, path, err, strings.TrimSpace(stderr.String()))
	}
	var doc struct {
		Streams []struct {
			Width        int    `json:"width"`
			Height       int    `json:"height"`
			AvgFrameRate string `json:"avg_frame_rate"`
			RFrameRate   string `json:"r_frame_rate"`
		} `json:"streams"`
	}
	if err := json.Unmarshal(out, &doc); err != nil {
		return Info{}, fmt.Errorf("video: decode ffprobe output for %s: %w", path, err)
	}
	if len(doc.Streams) == 0 || doc.Streams[0].Width <= 0 || doc.Streams[0].Height <= 0 {
		return Info{}, fmt.Errorf("%w: %s has no video stream", ErrNotVideo, path)
	}
	s := doc.Streams[0]
	fps := rate(s.AvgFrameRate)
	if fps <= 0 {
		fps = rate(s.RFrameRate)
	}
	return Info{Width: s.Width, Height: s.Height, FPS: fps}, nil
}

// rate parses an ffprobe rate such as "25/1"; 0 when it is not one.
func rate(s string) float64 {
	num, den, ok := strings.Cut(s, "/")
	n, err1 := strconv.ParseFloat(num, 64)
	d, err2 := strconv.ParseFloat(den, 64)
	if !ok || err1 != nil || err2 != nil || d == 0 || n <= 0 {
		return 0
	}
	return n / d
}

// fit scales w×h down to fit maxW×maxH keeping the aspect, with even sizes
// (what yuv-based scalers want).
func fit(w, h, maxW, maxH int) (int, int) {
	if w > maxW || h > maxH {
		if w*maxH > h*maxW {
			w, h = maxW, h*maxW/w
		} else {
			w, h = w*maxH/h, maxH
		}
	}
	return max(2, w&^1), max(2, h&^1)
}

// Player plays one file. Create it with Open.
type Player struct {
	path   string
	w, h   int
	frame  time.Duration
	cancel context.CancelFunc
	frames chan *image.RGBA // decoded frames, closed at the end of the stream
	free   chan *image.RGBA // buffers the UI has released
	done   chan struct{}
	ready  chan struct{} // closed when the first frame is decoded

	playOnce  sync.Once
	closeOnce sync.Once
	wg        sync.WaitGroup

	mu      sync.Mutex
	err     error // why decoding failed; set before frames is closed
	shown   int
	dropped int
}

// Open probes path, starts ffmpeg decoding it and returns a player that
// holds the first frame ready (see Play). The player runs until Close, or
// until ctx ends.
func Open(ctx context.Context, path string, cfg Config) (*Player, error) {
	cfg = cfg.withDefaults()
	info, err := Probe(ctx, cfg.FFprobe, path)
	if err != nil {
		return nil, err
	}
	w, h := fit(info.Width, info.Height, cfg.MaxWidth, cfg.MaxHeight)
	args := []string{"-nostdin", "-v", "error", "-i", path, "-an", "-sn", "-dn",
		"-vf", fmt.Sprintf("scale=%d:%d", w, h), "-f", "rawvideo", "-pix_fmt", "rgba"}
	fps := info.FPS
	if fps <= 0 || fps > MaxFPS {
		fps = DefaultFPS
		args = append(args, "-r", strconv.Itoa(DefaultFPS))
	}
	args = append(args, "pipe:1")

	ctx, cancel := context.WithCancel(ctx)
	cmd := exec.CommandContext(ctx, cfg.FFmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{buf: &stderr, max: maxStderr}
	out, err := cmd.StdoutPipe()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("video: ffmpeg pipe: %w", err)
	}
	if err := cmd.Start(); err != nil {
		cancel()
		return nil, fmt.Errorf("video: start ffmpeg for %s: %w", path, err)
	}
	p := &Player{
		path: path, w: w, h: h, frame: time.Duration(float64(time.Second) / fps),
		cancel: cancel,
		frames: make(chan *image.RGBA),
		free:   make(chan *image.RGBA, buffers),
		done:   make(chan struct{}),
		ready:  make(chan struct{}),
	}
	for range buffers {
		p.free <- image.NewRGBA(image.Rect(0, 0, w, h))
	}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		n, rerr := p.decode(ctx, out)
		werr := cmd.Wait()
		p.mu.Lock()
		switch {
		case ctx.Err() != nil: // closed: not a failure of the file
		case werr != nil:
			p.err = fmt.Errorf("video: ffmpeg %s: %v: %s", path, werr, strings.TrimSpace(stderr.String()))
		case rerr != nil:
			p.err = fmt.Errorf("video: read frames of %s: %w", path, rerr)
		case n == 0:
			p.err = fmt.Errorf("%w: %s", ErrNoFrames, path)
		}
		failed := p.err != nil && n == 0
		p.mu.Unlock()
		if p.err != nil {
			cfg.Log.Warn("video decoding failed", "path", path, "frames", n, "err", p.err)
		}
		close(p.frames)
		if failed { // nothing will ever be shown: over even if never played
			p.finish()
		}
	}()
	return p, nil
}

// decode reads frames from ffmpeg's output into free buffers and passes
// them on, until the stream ends or ctx does. It returns how many frames
// it read.
func (p *Player) decode(ctx context.Context, out io.Reader) (int, error) {
	n := 0
	for {
		var buf *image.RGBA
		select {
		case buf = <-p.free:
		case <-ctx.Done():
			return n, nil
		}
		if _, err := io.ReadFull(out, buf.Pix); err != nil {
			if errors.Is(err, io.EOF) {
				return n, nil
			}
			if errors.Is(err, io.ErrUnexpectedEOF) {
				return n, fmt.Errorf("truncated frame %d: %w", n, err)
			}
			return n, err
		}
		n++
		if n == 1 {
			close(p.ready)
		}
		select {
		case p.frames <- buf:
		case <-ctx.Done():
			return n, nil
		}
	}
}

// Ready is closed when the first frame is decoded: Play shows it at once.
func (p *Player) Ready() <-chan struct{} { return p.ready }

// Size returns the size of the frames.
func (p *Player) Size() (w, h int) { return p.w, p.h }

// FrameDuration returns how long each frame is shown.
func (p *Player) FrameDuration() time.Duration { return p.frame }

// Play starts showing frames: show is called with each frame in turn, at
// the file's frame rate, from the player's goroutine. The frame belongs to
// the caller until it calls release with it (when it is no longer on
// screen); a frame not released holds back decoding. Frames are dropped
// when show falls behind. Play runs once; later calls do nothing. Done is
// closed after the last frame.
func (p *Player) Play(show func(img *image.RGBA)) {
	p.playOnce.Do(func() {
		p.wg.Add(1)
		go func() {
			defer p.wg.Done()
			defer p.finish()
			start := time.Now()
			for i := 0; ; i++ {
				buf, ok := <-p.frames
				if !ok {
					return
				}
				due := start.Add(time.Duration(i) * p.frame)
				late := time.Until(due)
				if late < -2*p.frame { // more than two frames behind: drop
					p.count(false)
					p.Release(buf)
					continue
				}
				if late > 0 {
					t := time.NewTimer(late)
					select {
					case <-t.C:
					case <-p.done:
						t.Stop()
						p.Release(buf)
						return
					}
				}
				p.count(true)
				show(buf)
			}
		}()
	})
}

func (p *Player) count(shown bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if shown {
		p.shown++
	} else {
		p.dropped++
	}
}

// Release gives a frame's buffer back to the decoder.
func (p *Player) Release(img *image.RGBA) {
	if img == nil {
		return
	}
	select {
	case p.free <- img:
	default: // not one of ours, or released twice: ignore
	}
}

// Stats returns how many frames were shown and dropped so far.
func (p *Player) Stats() (shown, dropped int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.shown, p.dropped
}

// Done is closed when playback is over: the last frame was shown, the file
// failed (even before Play), or the player was closed.
func (p *Player) Done() <-chan struct{} { return p.done }

// Err returns why the file failed to play, once Done is closed; nil when it
// played to its end (or was closed).
func (p *Player) Err() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

func (p *Player) finish() {
	p.closeOnce.Do(func() { close(p.done) })
}

// Close stops ffmpeg and the player's goroutines and waits for them.
func (p *Player) Close() error {
	p.cancel()
	p.finish()
	p.wg.Wait()
	return nil
}

// limitedBuffer keeps the first max bytes written to it.
type limitedBuffer struct {
	mu  sync.Mutex
	buf *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(b []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if room := l.max - l.buf.Len(); room > 0 {
		l.buf.Write(b[:min(len(b), room)])
	}
	return len(b), nil
}
