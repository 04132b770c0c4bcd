// Package photo turns an uploaded photo into a safe, small JPEG: it refuses
// files that are too large, formats it does not know and images whose
// dimensions would need too much memory (checked from the header, before
// decoding); it turns the picture upright according to its EXIF Orientation,
// shrinks it so that its longest edge fits, and re-encodes it as a baseline
// JPEG, which leaves behind every piece of metadata the upload carried (EXIF
// with GPS position and camera serial numbers, XMP, ICC profiles, comments).
//
// Officers' portraits (issue 5) and residents' report photos (issue 6) both go
// through Normalize before they are stored or shown anywhere.
//
// Memory: the decoded image is held whole, so a photo at the default pixel
// limit can take a few hundred megabytes while it is normalized (a 40 MP
// 16-bit PNG decodes to 320 MB; a progressive JPEG keeps its coefficients).
// Servers should bound how many calls run at once.
package photo

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"image"
	"image/gif"
	"image/jpeg"
	"image/png"
	"io"

	"golang.org/x/image/webp"
)

// Errors returned by Normalize, wrapped with the operation that failed;
// test for them with errors.Is.
var (
	// ErrTooLarge: the upload has more than Config.MaxBytes bytes.
	ErrTooLarge = errors.New("photo too large")
	// ErrUnsupported: not a JPEG, PNG, GIF or WebP file, or a variant of
	// one that the decoders cannot read (12-bit or arithmetic-coded JPEG,
	// animated WebP).
	ErrUnsupported = errors.New("unsupported image format")
	// ErrTooManyPixels: the header declares more than Config.MaxPixels
	// pixels (or no pixels at all); the image is not decoded.
	ErrTooManyPixels = errors.New("image has too many pixels")
	// ErrCorrupt: the file claims a known format but cannot be decoded.
	ErrCorrupt = errors.New("corrupt image")
)

// Defaults for the zero values of Config.
const (
	DefaultMaxBytes  = 15 << 20
	DefaultMaxPixels = 40_000_000
	DefaultMaxEdge   = 1600
	DefaultQuality   = 82
)

// Config limits and shapes what Normalize accepts and produces. The zero
// value means the defaults.
type Config struct {
	// MaxBytes is the largest upload accepted (default 15 MiB).
	MaxBytes int64
	// MaxPixels is the largest width×height accepted, checked from the
	// image header before anything is decoded (default 40 million).
	MaxPixels int
	// MaxEdge is the longest edge of the result; larger photos are scaled
	// down, smaller ones are never scaled up (default 1600).
	MaxEdge int
	// Quality is the JPEG quality of the result, 1..100 (default 82).
	Quality int
}

func (c Config) withDefaults() Config {
	if c.MaxBytes <= 0 {
		c.MaxBytes = DefaultMaxBytes
	}
	if c.MaxPixels <= 0 {
		c.MaxPixels = DefaultMaxPixels
	}
	if c.MaxEdge <= 0 {
		c.MaxEdge = DefaultMaxEdge
	}
	if c.Quality <= 0 {
		c.Quality = DefaultQuality
	}
	c.Quality = min(c.Quality, 100)
	return c
}

// Photo is a normalized photo: an upright JPEG without metadata.
type Photo struct {
	JPEG          []byte
	Width, Height int
	SHA256        string // lower-case hex of the SHA-256 of JPEG
}

// format is one accepted input format.
type format struct {
	name   string
	config func(io.Reader) (image.Config, error)
	decode func(io.Reader) (image.Image, error)
}

// sniff recognises an accepted format from the first bytes of a file.
func sniff(b []byte) (format, bool) {
	switch {
	case bytes.HasPrefix(b, []byte{0xFF, 0xD8, 0xFF}):
		return format{"jpeg", jpeg.DecodeConfig, jpeg.Decode}, true
	case bytes.HasPrefix(b, []byte("\x89PNG\r\n\x1a\n")):
		return format{"png", png.DecodeConfig, png.Decode}, true
	case bytes.HasPrefix(b, []byte("GIF87a")), bytes.HasPrefix(b, []byte("GIF89a")):
		return format{"gif", gif.DecodeConfig, gif.Decode}, true
	case len(b) >= 12 && string(b[:4]) == "RIFF" && string(b[8:12]) == "WEBP":
		return format{"webp", webp.DecodeConfig, webp.Decode}, true
	}
	return format{}, false
}

// Normalize reads one uploaded photo from r (at most cfg.MaxBytes+1 bytes)
// and returns it upright, scaled to fit cfg.MaxEdge and re-encoded as a
// JPEG without metadata. It accepts JPEG, PNG, GIF (the first frame) and
// still WebP; transparent parts are laid on white.
func Normalize(r io.Reader, cfg Config) (Photo, error) {
	cfg = cfg.withDefaults()
	data, err := io.ReadAll(io.LimitReader(r, cfg.MaxBytes+1))
	if err != nil {
		return Photo{}, fmt.Errorf("photo: read upload: %w", err)
	}
	if int64(len(data)) > cfg.MaxBytes {
		return Photo{}, fmt.Errorf("photo: read upload: more than %d bytes: %w", cfg.MaxBytes, ErrTooLarge)
	}
	f, ok := sniff(data)
	if !ok {
		return Photo{}, fmt.Errorf("photo: sniff format of %d bytes: %w", len(data), ErrUnsupported)
	}

	hdr, err := f.config(bytes.NewReader(data))
	if err != nil {
		return Photo{}, decodeError(f.name, "header", err)
	}
	if err := checkPixels(hdr.Width, hdr.Height, cfg.MaxPixels); err != nil {
		return Photo{}, fmt.Errorf("photo: %s header: %w", f.name, err)
	}
	orientation := 1
	switch f.name {
	case "jpeg":
		orientation = tiffOrientation(jpegEXIF(data))
	case "png":
		orientation = tiffOrientation(pngEXIF(data))
	case "webp":
		// The WebP decoder sizes its buffers from the frame header, which
		// need not agree with the canvas size DecodeConfig reported.
		exif, err := webpScan(data, cfg.MaxPixels)
		if err != nil {
			return Photo{}, err
		}
		orientation = tiffOrientation(exif)
	}

	img, err := f.decode(bytes.NewReader(data))
	if err != nil {
		return Photo{}, decodeError(f.name, "image", err)
	}
	// A GIF's first frame may be smaller than its logical screen.
	if b := img.Bounds(); b.Empty() || b.Dx() > hdr.Width || b.Dy() > hdr.Height {
		return Photo{}, fmt.Errorf("photo: decode %s: image is %dx%d, header said %dx%d: %w",
			f.name, b.Dx(), b.Dy(), hdr.Width, hdr.Height, ErrCorrupt)
	}

	out := orient(scale(img, cfg.MaxEdge), orientation)
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, out, &jpeg.Options{Quality: cfg.Quality}); err != nil {
		return Photo{}, fmt.Errorf("photo: encode jpeg: %w", err)
	}
	sum := sha256.Sum256(buf.Bytes())
	return Photo{
		JPEG:   buf.Bytes(),
		Width:  out.Rect.Dx(),
		Height: out.Rect.Dy(),
		SHA256: hex.EncodeToString(sum[:]),
	}, nil
}

// checkPixels refuses empty images and images of more than limit pixels.
func checkPixels(w, h, limit int) error {
	if w <= 0 || h <= 0 {
		return fmt.Errorf("%dx%d: %w", w, h, ErrTooManyPixels)
	}
	if int64(w)*int64(h) > int64(limit) {
		return fmt.Errorf("%dx%d is more than %d pixels: %w", w, h, limit, ErrTooManyPixels)
	}
	return nil
}

// decodeError wraps a decoder's error as ErrUnsupported when the decoder
// said it does not implement a feature the file uses, else as ErrCorrupt.
func decodeError(name, what string, err error) error {
	var ju jpeg.UnsupportedError
	var pu png.UnsupportedError
	if errors.As(err, &ju) || errors.As(err, &pu) {
		return fmt.Errorf("photo: decode %s %s: %w: %w", name, what, ErrUnsupported, err)
	}
	return fmt.Errorf("photo: decode %s %s: %w: %w", name, what, ErrCorrupt, err)
}
