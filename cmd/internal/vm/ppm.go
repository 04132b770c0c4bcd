package vm

import (
	"fmt"
	"image"
)

// Screendump limits, PPM or PNG: a screendump is at most a few 4K screens.
const (
	maxPPMSide   = 16384
	maxPPMPixels = 32 << 20
)

// decodePPM decodes a binary PPM ("P6") image, the format of QEMU's
// screendump: the magic, width, height and maximum sample value separated
// by whitespace (with # comments), one whitespace byte, then the samples,
// one byte each (two, big-endian, if the maximum is over 255). Data after
// the last pixel is ignored, as Netpbm does for a single image.
func decodePPM(data []byte) (*image.NRGBA, error) {
	p := ppmParser{data: data}
	if len(data) < 2 || data[0] != 'P' || data[1] != '6' {
		return nil, fmt.Errorf("vm: ppm: %w: not a binary PPM (no P6)", ErrBadImage)
	}
	p.off = 2
	var hdr [3]int
	for i, name := range []string{"width", "height", "maximum value"} {
		n, err := p.number(name)
		if err != nil {
			return nil, err
		}
		hdr[i] = n
	}
	w, h, maxval := hdr[0], hdr[1], hdr[2]
	switch {
	case w < 1 || h < 1 || w > maxPPMSide || h > maxPPMSide || w*h > maxPPMPixels:
		return nil, fmt.Errorf("vm: ppm: %w: size %d×%d out of range", ErrBadImage, w, h)
	case maxval < 1 || maxval > 65535:
		return nil, fmt.Errorf("vm: ppm: %w: maximum value %d out of range", ErrBadImage, maxval)
	}
	if p.off >= len(data) || !isSpace(data[p.off]) {
		return nil, fmt.Errorf("vm: ppm: %w: no whitespace after the header", ErrBadImage)
	}
	p.off++
	bytesPerSample := 1
	if maxval > 255 {
		bytesPerSample = 2
	}
	samples := data[p.off:]
	if need := w * h * 3 * bytesPerSample; len(samples) < need {
		return nil, fmt.Errorf("vm: ppm: %w: %d bytes of pixels, want %d", ErrBadImage, len(samples), need)
	}
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for i := 0; i < w*h; i++ {
		for c := 0; c < 3; c++ {
			j := (i*3 + c) * bytesPerSample
			v := int(samples[j])
			if bytesPerSample == 2 {
				v = v<<8 | int(samples[j+1])
			}
			if v > maxval {
				return nil, fmt.Errorf("vm: ppm: %w: sample %d over the maximum %d", ErrBadImage, v, maxval)
			}
			if maxval != 255 {
				v = (v*255 + maxval/2) / maxval
			}
			img.Pix[i*4+c] = uint8(v)
		}
		img.Pix[i*4+3] = 0xff
	}
	return img, nil
}

type ppmParser struct {
	data []byte
	off  int
}

// number skips whitespace and comments and reads a decimal number of at
// most 5 digits (every value in range has fewer).
func (p *ppmParser) number(name string) (int, error) {
skip:
	for p.off < len(p.data) {
		switch c := p.data[p.off]; {
		case isSpace(c):
			p.off++
		case c == '#':
			for p.off < len(p.data) && p.data[p.off] != '\n' && p.data[p.off] != '\r' {
				p.off++
			}
		default:
			break skip
		}
	}
	n, digits := 0, 0
	for ; p.off < len(p.data) && '0' <= p.data[p.off] && p.data[p.off] <= '9'; p.off++ {
		if digits++; digits > 5 {
			return 0, fmt.Errorf("vm: ppm: %w: %s too long", ErrBadImage, name)
		}
		n = n*10 + int(p.data[p.off]-'0')
	}
	if digits == 0 {
		return 0, fmt.Errorf("vm: ppm: %w: no %s", ErrBadImage, name)
	}
	return n, nil
}

func isSpace(c byte) bool {
	return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r'
}
