package photo

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"

	"golang.org/x/image/riff"
	"golang.org/x/image/vp8"
	"golang.org/x/image/vp8l"
)

// maxEXIF bounds the EXIF block read from a PNG or WebP chunk; a JPEG APP1
// segment cannot exceed 64 KiB anyway.
const maxEXIF = 1 << 16

// jpegEXIF returns the TIFF structure inside a JPEG's EXIF APP1 segment, or
// nil. It walks the marker segments before the first scan.
func jpegEXIF(b []byte) []byte {
	i := 2 // after SOI
	for i+4 <= len(b) {
		if b[i] != 0xFF {
			return nil
		}
		switch m := b[i+1]; {
		case m == 0xFF: // fill byte
			i++
			continue
		case m == 0x01 || m == 0xD8 || (m >= 0xD0 && m <= 0xD7): // no length
			i += 2
			continue
		case m == 0xDA || m == 0xD9: // start of scan, end of image
			return nil
		}
		n := int(binary.BigEndian.Uint16(b[i+2:]))
		if n < 2 || i+2+n > len(b) {
			return nil
		}
		seg := b[i+4 : i+2+n]
		if b[i+1] == 0xE1 && bytes.HasPrefix(seg, []byte("Exif\x00\x00")) {
			return seg[6:]
		}
		i += 2 + n
	}
	return nil
}

// pngEXIF returns the contents of a PNG's eXIf chunk, or nil.
func pngEXIF(b []byte) []byte {
	i := 8 // after the signature
	for i+12 <= len(b) {
		n := binary.BigEndian.Uint32(b[i:])
		typ := string(b[i+4 : i+8])
		if uint64(n) > uint64(len(b)-i-12) || typ == "IEND" {
			return nil
		}
		if typ == "eXIf" && n <= maxEXIF {
			return b[i+8 : i+8+int(n)]
		}
		i += 12 + int(n)
	}
	return nil
}

// webpScan walks a WebP file's chunks with the same reader the decoder
// uses. It refuses a first frame larger than maxPixels and returns the
// TIFF structure of the EXIF chunk, or nil.
func webpScan(b []byte, maxPixels int) (exif []byte, err error) {
	_, chunks, err := riff.NewReader(bytes.NewReader(b))
	if err != nil {
		return nil, decodeError("webp", "container", err)
	}
	framed := false
	for {
		id, n, data, err := chunks.Next()
		if errors.Is(err, io.EOF) || (err != nil && framed) {
			return exif, nil // the decoder reports a missing frame
		}
		if err != nil {
			return nil, decodeError("webp", "container", err)
		}
		switch string(id[:]) {
		case "VP8 ", "VP8L":
			if framed {
				continue
			}
			framed = true
			var w, h int
			if id[3] == ' ' {
				d := vp8.NewDecoder()
				d.Init(data, int(min(n, 1<<30)))
				fh, err := d.DecodeFrameHeader()
				if err != nil {
					return nil, decodeError("webp", "frame header", err)
				}
				w, h = fh.Width, fh.Height
			} else {
				c, err := vp8l.DecodeConfig(data)
				if err != nil {
					return nil, decodeError("webp", "frame header", err)
				}
				w, h = c.Width, c.Height
			}
			if err := checkPixels(w, h, maxPixels); err != nil {
				return nil, fmt.Errorf("photo: webp frame header: %w", err)
			}
		case "EXIF":
			if n > maxEXIF {
				continue
			}
			e, err := io.ReadAll(data)
			if err != nil {
				return nil, decodeError("webp", "exif chunk", err)
			}
			exif = bytes.TrimPrefix(e, []byte("Exif\x00\x00"))
		}
	}
}

// tiffOrientation returns the Orientation tag (0x0112, 1..8) of the first
// IFD of a TIFF structure, or 1 (upright) when there is none or it is
// malformed.
func tiffOrientation(t []byte) int {
	if len(t) < 8 {
		return 1
	}
	var bo binary.ByteOrder
	switch string(t[:2]) {
	case "II":
		bo = binary.LittleEndian
	case "MM":
		bo = binary.BigEndian
	default:
		return 1
	}
	if bo.Uint16(t[2:]) != 42 {
		return 1
	}
	off := uint64(bo.Uint32(t[4:]))
	if off+2 > uint64(len(t)) {
		return 1
	}
	count := int(bo.Uint16(t[off:]))
	entries := t[off+2:]
	for i := 0; i < count && 12*i+12 <= len(entries); i++ {
		e := entries[12*i : 12*i+12]
		if bo.Uint16(e) != 0x0112 {
			continue
		}
		if bo.Uint16(e[2:]) != 3 || bo.Uint32(e[4:]) != 1 { // one SHORT
			return 1
		}
		if v := int(bo.Uint16(e[8:])); v >= 1 && v <= 8 {
			return v
		}
		return 1
	}
	return 1
}
