package vm

import (
	"bytes"
	"errors"
	"fmt"
	"image"
	"strings"
	"testing"
)

// encodePPM writes img as QEMU does: P6, maximum value 255.
func encodePPM(img *image.NRGBA) []byte {
	b := img.Bounds()
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "P6\n%d %d\n255\n", b.Dx(), b.Dy())
	for i := 0; i < len(img.Pix); i += 4 {
		buf.Write(img.Pix[i : i+3])
	}
	return buf.Bytes()
}

func TestDecodePPM(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want string // the pixels as "rrggbb" joined by spaces, or an error substring
	}{
		{"qemu", "P6\n2 1\n255\n\x01\x02\x03\xff\x00\x80", "010203 ff0080"},
		{"comments and spaces", "P6 # made by hand\n 1\t# width\n1\r255 \x10\x20\x30", "102030"},
		{"maximum 15 scaled", "P6\n1 1\n15\n\x0f\x00\x08", "ff0088"},
		{"16-bit", "P6\n1 1\n65535\n\xff\xff\x00\x00\x80\x00", "ff0080"},
		{"trailing data ignored", "P6\n1 1\n255\nabcXYZ", "616263"},
		{"not P6", "P3\n1 1\n255\n1 2 3", "no P6"},
		{"empty", "", "no P6"},
		{"no width", "P6\n", "no width"},
		{"letters", "P6\nx 1\n255\n", "no width"},
		{"zero width", "P6\n0 1\n255\n", "out of range"},
		{"too wide", "P6\n16385 1\n255\n", "out of range"},
		{"too many pixels", "P6\n16384 16384\n255\n", "out of range"},
		{"long number", "P6\n0000001 1\n255\n", "too long"},
		{"maximum 0", "P6\n1 1\n0\n", "maximum value 0"},
		{"maximum too large", "P6\n1 1\n65536\n", "maximum value 65536"},
		{"no space after header", "P6\n1 1\n255", "no whitespace"},
		{"short", "P6\n2 2\n255\n\x00\x00\x00", "3 bytes of pixels, want 12"},
		{"sample over maximum", "P6\n1 1\n100\n\x65\x00\x00", "over the maximum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			img, err := decodePPM([]byte(c.in))
			if err != nil {
				if !errors.Is(err, ErrBadImage) {
					t.Errorf("error %v does not wrap ErrBadImage", err)
				}
				if !strings.Contains(err.Error(), c.want) {
					t.Errorf("error %q; want %q", err, c.want)
				}
				return
			}
			var px []string
			for i := 0; i < len(img.Pix); i += 4 {
				if img.Pix[i+3] != 0xff {
					t.Errorf("pixel %d is not opaque", i/4)
				}
				px = append(px, fmt.Sprintf("%02x%02x%02x", img.Pix[i], img.Pix[i+1], img.Pix[i+2]))
			}
			if got := strings.Join(px, " "); got != c.want {
				t.Errorf("pixels %q; want %q", got, c.want)
			}
		})
	}
}

// FuzzPPM: the decoder must not panic or allocate beyond its input, must
// fail only with ErrBadImage, and an image it decodes must survive being
// written as QEMU writes it and decoded again.
func FuzzPPM(f *testing.F) {
	for _, s := range []string{
		"P6\n2 1\n255\n\x01\x02\x03\xff\x00\x80",
		"P6 # c\n1 1\n15\n\x0f\x00\x08",
		"P6\n1 1\n65535\n\xff\xff\x00\x00\x80\x00",
		"P6\n3 2\n255\n" + strings.Repeat("\x7f", 18),
		"P6\n16384 16384\n255\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		img, err := decodePPM(data)
		if err != nil {
			if !errors.Is(err, ErrBadImage) {
				t.Fatalf("error %v does not wrap ErrBadImage", err)
			}
			return
		}
		if b := img.Bounds(); b.Dx()*b.Dy()*3 > len(data) {
			t.Fatalf("%d×%d image from %d bytes", b.Dx(), b.Dy(), len(data))
		}
		again, err := decodePPM(encodePPM(img))
		if err != nil {
			t.Fatalf("decode re-encoded image: %v", err)
		}
		if again.Bounds() != img.Bounds() || !bytes.Equal(again.Pix, img.Pix) {
			t.Fatalf("re-encoded image differs")
		}
	})
}
