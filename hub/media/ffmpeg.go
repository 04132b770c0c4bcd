package media

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/shequ/shequ/protocol"
)

// Info is what ffprobe says about a file.
type Info struct {
	Kind     protocol.MediaKind
	Format   string // ffprobe's format_name
	Width    int
	Height   int
	Duration time.Duration // zero for images
	Audio    bool
}

// imageFormats are the ffprobe formats of still images the kiosk shows as is.
var imageFormats = []string{"png_pipe", "jpeg_pipe", "webp_pipe"}

// imageCodecs are codecs of still pictures: a "video" made of one is refused.
var imageCodecs = []string{"png", "mjpeg", "webp", "bmp", "gif", "tiff", "ansi"}

// maxProbeOutput bounds ffprobe's JSON output.
const maxProbeOutput = 1 << 20

type probeOutput struct {
	Format struct {
		FormatName string `json:"format_name"`
		Duration   string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecType string `json:"codec_type"`
		CodecName string `json:"codec_name"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

// Time limits of the ffmpeg tools, and the largest image kiosks are given.
const (
	ProbeTimeout = 30 * time.Second
	// MaxImagePixels bounds an uploaded image (a kiosk decodes it whole):
	// 40 megapixels, more than an 8K poster.
	MaxImagePixels = 40_000_000
)

// TranscodeTimeout is how long a transcode of a video of length d may take:
// ten times its length, and at least ten minutes.
func TranscodeTimeout(d time.Duration) time.Duration { return max(10*d, 10*time.Minute) }

// Probe runs ffprobe on path and classifies the file from its content: a
// PNG, JPEG or WebP image, or a video (a container with a moving-picture
// video stream and a duration). Anything else is ErrUnsupported.
func Probe(ctx context.Context, ffprobe, path string) (Info, error) {
	ctx, cancel := context.WithTimeout(ctx, ProbeTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, ffprobe, "-v", "error", "-show_format", "-show_streams", "-of", "json", "--", path)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &limitedBuffer{&stdout, maxProbeOutput}, &limitedBuffer{&stderr, 4 << 10}
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return Info{}, fmt.Errorf("media: ffprobe: %w", ctx.Err())
		}
		var exit *exec.ExitError
		if errors.As(err, &exit) {
			return Info{}, fmt.Errorf("%w: ffprobe: %s", ErrUnsupported, firstLine(stderr.String()))
		}
		return Info{}, fmt.Errorf("media: ffprobe: %w", err)
	}
	var out probeOutput
	if err := json.Unmarshal(stdout.Bytes(), &out); err != nil {
		return Info{}, fmt.Errorf("media: ffprobe output: %w", err)
	}
	info := Info{Format: out.Format.FormatName}
	video := -1
	for i, s := range out.Streams {
		switch s.CodecType {
		case "video":
			if video < 0 {
				video = i
			}
		case "audio":
			info.Audio = true
		}
	}
	if video < 0 {
		return Info{}, fmt.Errorf("%w: no picture in the file (format %q)", ErrUnsupported, info.Format)
	}
	v := out.Streams[video]
	info.Width, info.Height = v.Width, v.Height
	if info.Width <= 0 || info.Height <= 0 {
		return Info{}, fmt.Errorf("%w: picture without a size (format %q)", ErrUnsupported, info.Format)
	}
	if slices.Contains(imageFormats, info.Format) {
		info.Kind = protocol.MediaImage
		return info, nil
	}
	secs, err := strconv.ParseFloat(out.Format.Duration, 64)
	if err != nil || secs <= 0 || slices.Contains(imageCodecs, v.CodecName) || info.Format == "tty" {
		return Info{}, fmt.Errorf("%w: format %q with codec %q is neither a PNG/JPEG/WebP image nor a video",
			ErrUnsupported, info.Format, v.CodecName)
	}
	info.Kind = protocol.MediaVideo
	info.Duration = time.Duration(secs * float64(time.Second))
	return info, nil
}

// Profile is the kiosk video profile.
type Profile struct {
	Bitrate int  // video bits per second
	Audio   bool // keep the audio (AAC); otherwise drop it
}

// Transcode runs ffmpeg to turn in into an H.264 yuv420p MP4 of at most
// 1920×1080 (aspect kept) at out, reporting progress (0..100) from ffmpeg's
// -progress output against the input's duration.
func Transcode(ctx context.Context, ffmpeg, in, out string, p Profile, duration time.Duration, progress func(percent int)) error {
	// A file that makes ffmpeg hang must not block the queue for ever (nor
	// again after every restart): give up after a generous multiple of the
	// video's length.
	ctx, cancel := context.WithTimeout(ctx, TranscodeTimeout(duration))
	defer cancel()
	args := []string{"-hide_banner", "-nostdin", "-y", "-v", "error", "-i", in, "-map", "0:v:0"}
	if p.Audio {
		args = append(args, "-map", "0:a:0?", "-c:a", "aac", "-b:a", "128k")
	} else {
		args = append(args, "-an")
	}
	br := strconv.Itoa(p.Bitrate)
	args = append(args,
		"-vf", "scale=w='min(1920,iw)':h='min(1080,ih)':force_original_aspect_ratio=decrease,scale=trunc(iw/2)*2:trunc(ih/2)*2",
		"-c:v", "libx264", "-preset", "veryfast", "-pix_fmt", "yuv420p",
		"-b:v", br, "-maxrate", br, "-bufsize", strconv.Itoa(2*p.Bitrate),
		"-movflags", "+faststart", "-sn", "-dn",
		"-progress", "pipe:1", "-stats_period", "0.2", "-nostats", "-f", "mp4", out)
	cmd := exec.CommandContext(ctx, ffmpeg, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &limitedBuffer{&stderr, 8 << 10}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return fmt.Errorf("media: ffmpeg: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("media: ffmpeg: %w", err)
	}
	last := -1
	sc := bufio.NewScanner(stdout)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "out_time_us=")
		if !ok || duration <= 0 {
			continue
		}
		us, err := strconv.ParseInt(v, 10, 64)
		if err != nil || us < 0 {
			continue
		}
		pct := min(99, int(time.Duration(us)*time.Microsecond*100/duration))
		if pct > last {
			last = pct
			progress(pct)
		}
	}
	// Drain what is left so ffmpeg never blocks on a full pipe.
	if _, err := io.Copy(io.Discard, stdout); err != nil && !errors.Is(err, io.ErrClosedPipe) {
		return errors.Join(fmt.Errorf("media: ffmpeg output: %w", err), cmd.Wait())
	}
	if err := cmd.Wait(); err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("media: ffmpeg: %w", ctx.Err())
		}
		return fmt.Errorf("media: ffmpeg: %w: %s", err, firstLine(stderr.String()))
	}
	return nil
}

func firstLine(s string) string {
	s = strings.TrimSpace(s)
	if i := strings.IndexByte(s, '\n'); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}

// limitedBuffer keeps at most n bytes and discards the rest.
type limitedBuffer struct {
	b *bytes.Buffer
	n int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.n - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)]) // bytes.Buffer.Write never fails
	}
	return len(p), nil
}
