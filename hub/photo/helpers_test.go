package photo

import (
	"bytes"
	"encoding/binary"
	"hash/crc32"
	"image"
	"image/color"
	"image/jpeg"
	"image/png"
	"testing"
)

var (
	red   = color.NRGBA{255, 0, 0, 255}
	green = color.NRGBA{0, 255, 0, 255}
	blue  = color.NRGBA{0, 0, 255, 255}
	white = color.NRGBA{255, 255, 255, 255}
)

// quad is a 2×2 grid of colours: top left, top right, bottom left, bottom right.
type quad [4]color.NRGBA

// upright is how every test picture must look once normalized.
var upright = quad{red, green, blue, white}

// quadImage draws q on a w×h image.
func quadImage(w, h int, q quad) *image.NRGBA {
	m := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			i := 0
			if x >= w/2 {
				i++
			}
			if y >= h/2 {
				i += 2
			}
			m.SetNRGBA(x, y, q[i])
		}
	}
	return m
}

// checkQuad decodes a normalized photo and checks its size and the colour
// at the centre of each quarter.
func checkQuad(t *testing.T, p Photo, w, h int, want quad) {
	t.Helper()
	m, err := jpeg.Decode(bytes.NewReader(p.JPEG))
	if err != nil {
		t.Fatalf("output is not a JPEG: %v", err)
	}
	if got := m.Bounds().Size(); got != image.Pt(w, h) || p.Width != w || p.Height != h {
		t.Fatalf("output %v, Photo says %dx%d; want %dx%d", got, p.Width, p.Height, w, h)
	}
	for i, c := range want {
		x, y := w/4+(i%2)*w/2, h/4+(i/2)*h/2
		r, g, b, _ := m.At(x, y).RGBA()
		got := color.NRGBA{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8), 255}
		if far(got.R, c.R) || far(got.G, c.G) || far(got.B, c.B) {
			t.Errorf("quarter %d at (%d,%d) is %v, want %v", i, x, y, got, c)
		}
	}
}

func far(a, b uint8) bool { return max(a, b)-min(a, b) > 48 }

func encodeJPEG(t testing.TB, m image.Image, segments ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := jpeg.Encode(&buf, m, &jpeg.Options{Quality: 95}); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	out := append([]byte{}, b[:2]...) // SOI
	for _, s := range segments {
		out = append(out, s...)
	}
	return append(out, b[2:]...)
}

func encodePNG(t testing.TB, m image.Image, chunks ...[]byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	if err := png.Encode(&buf, m); err != nil {
		t.Fatal(err)
	}
	b := buf.Bytes()
	const afterIHDR = 8 + 8 + 13 + 4
	out := append([]byte{}, b[:afterIHDR]...)
	for _, c := range chunks {
		out = append(out, c...)
	}
	return append(out, b[afterIHDR:]...)
}

// jpegSegment returns a JPEG marker segment.
func jpegSegment(marker byte, payload []byte) []byte {
	s := []byte{0xFF, marker, 0, 0}
	binary.BigEndian.PutUint16(s[2:], uint16(len(payload)+2))
	return append(s, payload...)
}

// pngChunk returns a PNG chunk with its CRC.
func pngChunk(typ string, data []byte) []byte {
	c := binary.BigEndian.AppendUint32(nil, uint32(len(data)))
	c = append(c, typ...)
	c = append(c, data...)
	return binary.BigEndian.AppendUint32(c, crc32.ChecksumIEEE(c[4:]))
}

// riffChunk returns a RIFF chunk, padded to an even length.
func riffChunk(id string, data []byte) []byte {
	c := append([]byte(id), binary.LittleEndian.AppendUint32(nil, uint32(len(data)))...)
	c = append(c, data...)
	if len(data)%2 == 1 {
		c = append(c, 0)
	}
	return c
}

// webpFile wraps chunks into a RIFF WEBP file.
func webpFile(chunks ...[]byte) []byte {
	body := []byte("WEBP")
	for _, c := range chunks {
		body = append(body, c...)
	}
	return append(append([]byte("RIFF"), binary.LittleEndian.AppendUint32(nil, uint32(len(body)))...), body...)
}

// vp8x returns an extended-format header chunk for a w×h canvas.
func vp8x(flags byte, w, h int) []byte {
	d := []byte{flags, 0, 0, 0}
	d = append(d, byte(w-1), byte((w-1)>>8), byte((w-1)>>16))
	d = append(d, byte(h-1), byte((h-1)>>8), byte((h-1)>>16))
	return riffChunk("VP8X", d)
}

// tiff returns a big-endian TIFF structure whose first IFD holds the
// Orientation tag (unless orientation is 0) and, with gps, a pointer to a
// GPS IFD carrying latitude and the string "SECRET-GPS".
func tiff(orientation int, gps bool) []byte {
	be := binary.BigEndian
	type entry struct {
		tag, typ uint16
		count    uint32
		value    []byte // 4 bytes, or the data at an offset
	}
	ifd0 := []entry{}
	if orientation != 0 {
		ifd0 = append(ifd0, entry{0x0112, 3, 1, be.AppendUint16(nil, uint16(orientation))})
	}
	if gps {
		ifd0 = append(ifd0, entry{0x8825, 4, 1, nil}) // GPS IFD pointer, filled below
	}
	out := []byte("MM\x00\x2a\x00\x00\x00\x08")
	ifdLen := func(n int) int { return 2 + 12*n + 4 }
	gpsOff := 8 + ifdLen(len(ifd0))
	out = be.AppendUint16(out, uint16(len(ifd0)))
	for _, e := range ifd0 {
		out = be.AppendUint16(out, e.tag)
		out = be.AppendUint16(out, e.typ)
		out = be.AppendUint32(out, e.count)
		if e.value == nil {
			out = be.AppendUint32(out, uint32(gpsOff))
		} else {
			out = append(out, append(e.value, 0, 0, 0, 0)[:4]...)
		}
	}
	out = be.AppendUint32(out, 0) // no next IFD
	if gps {
		method := []byte("ASCII\x00\x00\x00SECRET-GPS")
		dataOff := gpsOff + ifdLen(3)
		out = be.AppendUint16(out, 3)
		out = append(out, 0, 1, 0, 2, 0, 0, 0, 2, 'N', 0, 0, 0) // GPSLatitudeRef
		out = append(out, 0, 2, 0, 5, 0, 0, 0, 3)               // GPSLatitude, 3 RATIONAL
		out = be.AppendUint32(out, uint32(dataOff))
		out = append(out, 0, 0x1B, 0, 7) // GPSProcessingMethod, UNDEFINED
		out = be.AppendUint32(out, uint32(len(method)))
		out = be.AppendUint32(out, uint32(dataOff+24))
		out = be.AppendUint32(out, 0)
		for _, v := range []uint32{31, 1, 13, 1, 3600, 100} {
			out = be.AppendUint32(out, v)
		}
		out = append(out, method...)
	}
	return out
}

// exifAPP1 returns a JPEG APP1 segment carrying t.
func exifAPP1(t []byte) []byte { return jpegSegment(0xE1, append([]byte("Exif\x00\x00"), t...)) }
