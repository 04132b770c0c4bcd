package photo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"flag"
	"fmt"
	"hash/crc32"
	"image"
	"image/color"
	"image/gif"
	"image/jpeg"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the Go-generated seed files in testdata/")

// stored describes, for each EXIF orientation, how a camera stores the
// upright 64×32 picture: its size and its quarters.
var stored = []struct {
	orientation int
	w, h        int
	q           quad
}{
	{1, 64, 32, quad{red, green, blue, white}},
	{2, 64, 32, quad{green, red, white, blue}},
	{3, 64, 32, quad{white, blue, green, red}},
	{4, 64, 32, quad{blue, white, red, green}},
	{5, 32, 64, quad{red, blue, green, white}},
	{6, 32, 64, quad{green, white, red, blue}},
	{7, 32, 64, quad{white, green, blue, red}},
	{8, 32, 64, quad{blue, red, white, green}},
}

func TestOrientation(t *testing.T) {
	for _, s := range stored {
		m := quadImage(s.w, s.h, s.q)
		for _, tc := range []struct {
			format string
			data   []byte
		}{
			{"jpeg", encodeJPEG(t, m, exifAPP1(tiff(s.orientation, false)))},
			{"jpeg-gps", encodeJPEG(t, m, jpegSegment(0xE0, []byte("JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00")), exifAPP1(tiff(s.orientation, true)))},
			{"png", encodePNG(t, m, pngChunk("eXIf", tiff(s.orientation, false)))},
		} {
			t.Run(fmt.Sprintf("%s/%d", tc.format, s.orientation), func(t *testing.T) {
				p, err := Normalize(bytes.NewReader(tc.data), Config{})
				if err != nil {
					t.Fatal(err)
				}
				checkQuad(t, p, 64, 32, upright)
			})
		}
	}
}

func TestFormats(t *testing.T) {
	m := quadImage(64, 32, upright)
	readFile := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, m, nil); err != nil {
		t.Fatal(err)
	}
	rot6 := readFile("quad-stored-rot6.lossless.webp")[12:] // the VP8L chunk
	const exifFlag = 1 << 3
	cases := []struct {
		name string
		data []byte
		w, h int
	}{
		{"jpeg", encodeJPEG(t, m), 64, 32},
		{"png", encodePNG(t, m), 64, 32},
		{"gif", gifBuf.Bytes(), 64, 32},
		{"webp lossless", readFile("quad.lossless.webp"), 64, 32},
		{"webp lossy", readFile("quad.lossy.webp"), 64, 32},
		{"webp exif orientation 6", webpFile(vp8x(exifFlag, 32, 64), rot6, riffChunk("EXIF", tiff(6, true))), 64, 32},
		{"webp exif with prefix", webpFile(vp8x(exifFlag, 32, 64), rot6, riffChunk("EXIF", append([]byte("Exif\x00\x00"), tiff(6, false)...))), 64, 32},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Normalize(bytes.NewReader(tc.data), Config{})
			if err != nil {
				t.Fatal(err)
			}
			checkQuad(t, p, tc.w, tc.h, upright)
			if !bytes.HasPrefix(p.JPEG, []byte{0xFF, 0xD8}) || len(p.SHA256) != 64 {
				t.Errorf("not a JPEG with a hash: % x… %q", p.JPEG[:4], p.SHA256)
			}
		})
	}
}

func TestResize(t *testing.T) {
	cases := []struct {
		name         string
		data         []byte
		cfg          Config
		wantW, wantH int
	}{
		{"landscape to default edge", encodeJPEG(t, quadImage(3200, 800, upright)), Config{}, 1600, 400},
		{"portrait to default edge", encodeJPEG(t, quadImage(900, 2000, upright)), Config{}, 720, 1600},
		{"turned and shrunk", encodeJPEG(t, quadImage(1000, 2000, stored[5].q), exifAPP1(tiff(6, false))), Config{}, 1600, 800},
		{"small not upscaled", encodeJPEG(t, quadImage(300, 200, upright)), Config{}, 300, 200},
		{"exactly the edge", encodePNG(t, quadImage(1600, 10, upright)), Config{}, 1600, 10},
		{"custom edge", encodePNG(t, quadImage(64, 32, upright)), Config{MaxEdge: 16}, 16, 8},
		{"thin line keeps one pixel", encodePNG(t, quadImage(4000, 2, upright)), Config{MaxEdge: 100}, 100, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Normalize(bytes.NewReader(tc.data), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			if tc.wantH < 4 {
				if p.Width != tc.wantW || p.Height != tc.wantH {
					t.Fatalf("got %dx%d, want %dx%d", p.Width, p.Height, tc.wantW, tc.wantH)
				}
				return
			}
			checkQuad(t, p, tc.wantW, tc.wantH, upright)
		})
	}
}

// TestTransparency checks that transparent pixels come out white, not black.
func TestTransparency(t *testing.T) {
	m := image.NewNRGBA(image.Rect(0, 0, 40, 40))
	for _, cfg := range []Config{{}, {MaxEdge: 20}} {
		p, err := Normalize(bytes.NewReader(encodePNG(t, m)), cfg)
		if err != nil {
			t.Fatal(err)
		}
		checkQuad(t, p, p.Width, p.Height, quad{white, white, white, white})
	}
}

func TestMetadataRemoved(t *testing.T) {
	in := encodeJPEG(t, quadImage(32, 64, stored[5].q),
		exifAPP1(tiff(6, true)),
		jpegSegment(0xE1, []byte("http://ns.adobe.com/xap/1.0/\x00<x:xmpmeta>SECRET-XMP</x:xmpmeta>")),
		jpegSegment(0xFE, []byte("SECRET-COMMENT")),
	)
	for _, s := range []string{"Exif", "SECRET-GPS", "SECRET-XMP", "SECRET-COMMENT", "ns.adobe.com"} {
		if !bytes.Contains(in, []byte(s)) {
			t.Fatalf("test input lacks %q", s)
		}
	}
	p, err := Normalize(bytes.NewReader(in), Config{})
	if err != nil {
		t.Fatal(err)
	}
	checkQuad(t, p, 64, 32, upright) // the EXIF was read before it was dropped
	for _, s := range []string{"Exif", "SECRET", "ns.adobe.com", "xmpmeta"} {
		if bytes.Contains(p.JPEG, []byte(s)) {
			t.Errorf("output contains %q", s)
		}
	}
	// Nothing but the image itself: no APPn or COM segment at all.
	if seg := metadataSegment(p.JPEG); seg != 0 {
		t.Errorf("output has marker %#x", seg)
	}
}

// metadataSegment returns the first APPn or COM marker before the scan, or 0.
func metadataSegment(b []byte) byte {
	for i := 2; i+4 <= len(b) && b[i] == 0xFF && b[i+1] != 0xDA; {
		if m := b[i+1]; (m >= 0xE0 && m <= 0xEF) || m == 0xFE {
			return m
		}
		i += 2 + int(binary.BigEndian.Uint16(b[i+2:]))
	}
	return 0
}

// pngWithSize returns a tiny PNG whose header declares w×h.
func pngWithSize(t testing.TB, w, h uint32) []byte {
	b := encodePNG(t, image.NewGray(image.Rect(0, 0, 1, 1)))
	binary.BigEndian.PutUint32(b[16:], w)
	binary.BigEndian.PutUint32(b[20:], h)
	binary.BigEndian.PutUint32(b[29:], crc32.ChecksumIEEE(b[12:29]))
	return b
}

// jpegWithSize returns a tiny JPEG whose frame header declares w×h.
func jpegWithSize(t testing.TB, w, h uint16) []byte {
	b := encodeJPEG(t, image.NewGray(image.Rect(0, 0, 8, 8)))
	i := bytes.Index(b, []byte{0xFF, 0xC0})
	if i < 0 {
		t.Fatal("no SOF0 in encoder output")
	}
	binary.BigEndian.PutUint16(b[i+5:], h)
	binary.BigEndian.PutUint16(b[i+7:], w)
	return b
}

// webpFrameWithSize returns a lossy WebP whose canvas is 64×32 but whose
// frame header declares 16383×16383.
func webpFrameWithSize(t testing.TB) []byte {
	b, err := os.ReadFile("testdata/quad.lossy.webp")
	if err != nil {
		t.Fatal(err)
	}
	frame := bytes.Clone(b[12:])
	i := bytes.Index(frame, []byte{0x9d, 0x01, 0x2a})
	if i < 0 {
		t.Fatal("no VP8 start code")
	}
	binary.LittleEndian.PutUint16(frame[i+3:], 16383)
	binary.LittleEndian.PutUint16(frame[i+5:], 16383)
	return webpFile(vp8x(0, 64, 32), frame)
}

func TestRefused(t *testing.T) {
	gifBomb := func() []byte {
		var buf bytes.Buffer
		if err := gif.Encode(&buf, image.NewPaletted(image.Rect(0, 0, 1, 1), color.Palette{color.Black, color.White}), nil); err != nil {
			t.Fatal(err)
		}
		b := buf.Bytes()
		binary.LittleEndian.PutUint16(b[6:], 65535)
		binary.LittleEndian.PutUint16(b[8:], 65535)
		return b
	}()
	small := encodePNG(t, quadImage(64, 32, upright))
	cases := []struct {
		name string
		data []byte
		cfg  Config
		want error
	}{
		{"png bomb", pngWithSize(t, 100_000, 100_000), Config{}, ErrTooManyPixels},
		{"png just over", pngWithSize(t, 40_001, 1000), Config{}, ErrTooManyPixels},
		{"jpeg bomb", jpegWithSize(t, 65_000, 65_000), Config{}, ErrTooManyPixels},
		{"gif bomb", gifBomb, Config{}, ErrTooManyPixels},
		{"webp canvas bomb", webpFile(vp8x(0, 1<<24, 1<<24), riffChunk("VP8L", nil)), Config{}, ErrTooManyPixels},
		{"webp frame bigger than canvas", webpFrameWithSize(t), Config{}, ErrTooManyPixels},
		{"custom pixel limit", small, Config{MaxPixels: 64*32 - 1}, ErrTooManyPixels},
		{"over the byte limit", small, Config{MaxBytes: int64(len(small) - 1)}, ErrTooLarge},
		{"text", []byte("Dear officer, here is my photo.\n"), Config{}, ErrUnsupported},
		{"empty", nil, Config{}, ErrUnsupported},
		{"bmp", append([]byte("BM"), make([]byte, 60)...), Config{}, ErrUnsupported},
		{"tiff", []byte("II*\x00\x08\x00\x00\x00"), Config{}, ErrUnsupported},
		{"heic", []byte("\x00\x00\x00\x18ftypheic\x00\x00\x00\x00mif1heic"), Config{}, ErrUnsupported},
		{"truncated jpeg", encodeJPEG(t, quadImage(64, 32, upright))[:300], Config{}, ErrCorrupt},
		{"png bad crc", append(small[:30:30], 0, 0, 0, 0), Config{}, ErrCorrupt},
		{"webp without frame", webpFile(vp8x(0, 2, 2)), Config{}, ErrCorrupt},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			p, err := Normalize(bytes.NewReader(tc.data), tc.cfg)
			runtime.ReadMemStats(&after)
			if !errors.Is(err, tc.want) {
				t.Fatalf("got %v (%dx%d), want %v", err, p.Width, p.Height, tc.want)
			}
			// Refused before decoding: nothing near the size of the image
			// was allocated.
			if got := after.TotalAlloc - before.TotalAlloc; got > 4<<20 {
				t.Errorf("allocated %d bytes before refusing", got)
			}
		})
	}
}

func TestAccepted(t *testing.T) {
	small := encodePNG(t, quadImage(64, 32, upright))
	cases := []struct {
		name string
		data []byte
		cfg  Config
	}{
		{"exactly the byte limit", small, Config{MaxBytes: int64(len(small))}},
		{"exactly the pixel limit", small, Config{MaxPixels: 64 * 32}},
		{"quality above 100", small, Config{Quality: 1000}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			p, err := Normalize(bytes.NewReader(tc.data), tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			checkQuad(t, p, 64, 32, upright)
		})
	}
}

// endless is a reader of zeros that counts what was read from it.
type endless struct{ n int64 }

func (e *endless) Read(p []byte) (int, error) {
	clear(p)
	e.n += int64(len(p))
	return len(p), nil
}

func TestReadsAtMostLimit(t *testing.T) {
	r := &endless{}
	_, err := Normalize(io.LimitReader(r, 1<<40), Config{MaxBytes: 1000})
	if !errors.Is(err, ErrTooLarge) {
		t.Fatalf("got %v, want ErrTooLarge", err)
	}
	if r.n > 1<<20 {
		t.Errorf("read %d bytes for a 1000-byte limit", r.n)
	}
	readErr := errors.New("connection reset")
	_, err = Normalize(io.MultiReader(bytes.NewReader([]byte{0xFF, 0xD8}), errReader{readErr}), Config{})
	if !errors.Is(err, readErr) {
		t.Errorf("got %v, want the reader's error", err)
	}
}

type errReader struct{ err error }

func (e errReader) Read([]byte) (int, error) { return 0, e.err }

func TestTIFFOrientation(t *testing.T) {
	good := tiff(6, true)
	le := []byte("II\x2a\x00\x08\x00\x00\x00\x01\x00\x12\x01\x03\x00\x01\x00\x00\x00\x08\x00\x00\x00")
	cases := []struct {
		name string
		t    []byte
		want int
	}{
		{"big endian with gps", good, 6},
		{"little endian", le, 8},
		{"nil", nil, 1},
		{"no tag", tiff(0, true), 1},
		{"truncated entries", good[:14], 1},
		{"bad byte order", append([]byte("XX"), good[2:]...), 1},
		{"bad magic", append([]byte("MM\x00\x2b"), good[4:]...), 1},
		{"offset past end", []byte("MM\x00\x2a\xff\xff\xff\xf0"), 1},
		{"huge count", []byte("MM\x00\x2a\x00\x00\x00\x08\xff\xff"), 1},
		{"value 9", tiff(9, false), 1},
		{"value 0", append(tiff(1, false)[:17], 0, 0, 0, 0, 0, 0, 0), 1},
		{"wrong type", []byte("MM\x00\x2a\x00\x00\x00\x08\x00\x01\x01\x12\x00\x04\x00\x00\x00\x01\x00\x00\x00\x06"), 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := tiffOrientation(tc.t); got != tc.want {
				t.Errorf("got %d, want %d", got, tc.want)
			}
		})
	}
}

// seeds are the fuzz seeds written by Go (the WebP files come from
// ImageMagick, see testdata/README) and what Normalize must make of them
// with fuzzConfig.
func seeds(t testing.TB) map[string][]byte {
	q := quadImage(16, 8, upright)
	var gifBuf bytes.Buffer
	if err := gif.Encode(&gifBuf, q, nil); err != nil {
		t.Fatal(err)
	}
	return map[string][]byte{
		"exif-gps.jpg":    encodeJPEG(t, quadImage(8, 16, stored[5].q), exifAPP1(tiff(6, true)), jpegSegment(0xFE, []byte("comment"))),
		"exif.png":        encodePNG(t, q, pngChunk("eXIf", tiff(3, false))),
		"quad.gif":        gifBuf.Bytes(),
		"alpha.png":       encodePNG(t, image.NewNRGBA(image.Rect(0, 0, 4, 4))),
		"bomb.png":        pngWithSize(t, 100_000, 100_000),
		"bomb.jpg":        jpegWithSize(t, 65_000, 65_000),
		"bomb-frame.webp": webpFrameWithSize(t),
		"text.txt":        []byte("not a photo\n"),
	}
}

// seedResults is what Normalize with fuzzConfig makes of every file in
// testdata/.
var seedResults = map[string]error{
	"exif-gps.jpg":                   nil,
	"exif.png":                       nil,
	"quad.gif":                       nil,
	"alpha.png":                      nil,
	"bomb.png":                       ErrTooManyPixels,
	"bomb.jpg":                       ErrTooManyPixels,
	"bomb-frame.webp":                ErrTooManyPixels,
	"text.txt":                       ErrUnsupported,
	"quad.lossless.webp":             nil,
	"quad.lossy.webp":                nil,
	"quad-stored-rot6.lossless.webp": nil,
}

var fuzzConfig = Config{MaxBytes: 1 << 20, MaxPixels: 1 << 20, MaxEdge: 64, Quality: 50}

func TestSeedFiles(t *testing.T) {
	if *update {
		for name, b := range seeds(t) {
			if err := os.WriteFile(filepath.Join("testdata", name), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
	files, err := filepath.Glob("testdata/*.*")
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		if name := filepath.Base(f); name != "README" {
			names = append(names, name)
		}
	}
	var want []string
	for name := range seedResults {
		want = append(want, name)
	}
	slices.Sort(want)
	if !slices.Equal(names, want) {
		t.Fatalf("testdata holds %v, seedResults lists %v", names, want)
	}
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join("testdata", name))
			if err != nil {
				t.Fatal(err)
			}
			_, err = Normalize(bytes.NewReader(b), fuzzConfig)
			if want := seedResults[name]; (want == nil && err != nil) || !errors.Is(err, want) {
				t.Errorf("got %v, want %v", err, want)
			}
		})
	}
}

func FuzzNormalize(f *testing.F) {
	files, err := filepath.Glob("testdata/*.*")
	if err != nil || len(files) < len(seedResults) {
		f.Fatalf("seeds missing from testdata: %v", err)
	}
	for _, name := range files {
		b, err := os.ReadFile(name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Normalize(bytes.NewReader(data), fuzzConfig)
		if err != nil {
			if !errors.Is(err, ErrTooLarge) && !errors.Is(err, ErrUnsupported) &&
				!errors.Is(err, ErrTooManyPixels) && !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error of no known kind: %v", err)
			}
			return
		}
		if p.Width < 1 || p.Height < 1 || max(p.Width, p.Height) > fuzzConfig.MaxEdge {
			t.Fatalf("output %dx%d outside the limits", p.Width, p.Height)
		}
		c, err := jpeg.DecodeConfig(bytes.NewReader(p.JPEG))
		if err != nil || c.Width != p.Width || c.Height != p.Height {
			t.Fatalf("output JPEG %+v, %v; Photo says %dx%d", c, err, p.Width, p.Height)
		}
		if metadataSegment(p.JPEG) != 0 {
			t.Fatal("output carries metadata")
		}
	})
}

func BenchmarkNormalize(b *testing.B) {
	// A 12 MP photo with some texture, so the JPEG is of realistic size.
	m := image.NewRGBA(image.Rect(0, 0, 4000, 3000))
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range m.Pix {
		m.Pix[i] = uint8(i/4000) + uint8(rng.IntN(32))
	}
	data := encodeJPEG(b, m, exifAPP1(tiff(6, true)))
	b.SetBytes(int64(len(data)))
	b.ResetTimer()
	for b.Loop() {
		p, err := Normalize(bytes.NewReader(data), Config{})
		if err != nil {
			b.Fatal(err)
		}
		if p.Width != 1200 || p.Height != 1600 {
			b.Fatalf("got %dx%d", p.Width, p.Height)
		}
	}
}
