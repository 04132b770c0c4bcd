package photo

import (
	"image"
	"image/draw"
)

// fit returns the size of a w×h image scaled so that its longest edge is at
// most maxEdge, keeping the aspect ratio; it never scales up.
func fit(w, h, maxEdge int) (int, int) {
	long := max(w, h)
	if long <= maxEdge {
		return w, h
	}
	sw := int((int64(w)*int64(maxEdge) + int64(long)/2) / int64(long))
	sh := int((int64(h)*int64(maxEdge) + int64(long)/2) / int64(long))
	return max(sw, 1), max(sh, 1)
}

// stripRows is how many source rows scale converts to RGBA at a time.
const stripRows = 32

// scale draws src into a new RGBA image that fits maxEdge, laid on white
// (JPEG has no alpha). It shrinks by area averaging: every destination
// pixel is the mean of the source pixels it covers, weighted by how much of
// each it covers. The source is converted a strip of rows at a time, so
// memory beyond the decoded image stays a few megabytes (x/image/draw's
// kernel scalers keep a float64 buffer of destination width × source
// height: 120 MB for a 12 MP photo).
func scale(src image.Image, maxEdge int) *image.RGBA {
	sr := src.Bounds()
	sw, sh := sr.Dx(), sr.Dy()
	w, h := fit(sw, sh, maxEdge)
	dst := image.NewRGBA(image.Rect(0, 0, w, h))
	op := draw.Src
	if o, ok := src.(interface{ Opaque() bool }); !ok || !o.Opaque() {
		op = draw.Over
	}
	if w == sw && h == sh {
		if op == draw.Over {
			draw.Draw(dst, dst.Rect, image.White, image.Point{}, draw.Src)
		}
		draw.Draw(dst, dst.Rect, src, sr.Min, op)
		return dst
	}

	xs, ys := spans(sw, w), spans(sh, h)
	strip := image.NewRGBA(image.Rect(0, 0, sw, min(stripRows, sh)))
	row := make([]float32, 4*w)   // one source row, shrunk horizontally
	acc := make([]float32, 2*4*w) // destination rows cur and cur+1
	cur := 0
	flush := func() {
		out := dst.Pix[cur*dst.Stride:][:4*w]
		for i, v := range acc[:4*w] {
			out[i] = uint8(min(v+0.5, 255))
		}
		copy(acc, acc[4*w:])
		clear(acc[4*w:])
		cur++
	}
	for y0 := 0; y0 < sh; y0 += stripRows {
		r := image.Rect(0, 0, sw, min(stripRows, sh-y0))
		if op == draw.Over {
			draw.Draw(strip, r, image.White, image.Point{}, draw.Src)
		}
		draw.Draw(strip, r, src, sr.Min.Add(image.Pt(0, y0)), op)
		for yy := range r.Dy() {
			clear(row)
			pix := strip.Pix[yy*strip.Stride:][:4*sw]
			for x, s := range xs {
				p := pix[4*x : 4*x+4 : 4*x+4]
				o := row[4*s.d : 4*s.d+4 : 4*s.d+4]
				for c := range 4 {
					o[c] += s.w0 * float32(p[c])
				}
				if s.w1 != 0 {
					o := row[4*s.d+4 : 4*s.d+8 : 4*s.d+8]
					for c := range 4 {
						o[c] += s.w1 * float32(p[c])
					}
				}
			}
			s := ys[y0+yy]
			for cur < s.d {
				flush()
			}
			for i, v := range row {
				acc[i] += s.w0 * v
			}
			if s.w1 != 0 {
				for i, v := range row {
					acc[4*w+i] += s.w1 * v
				}
			}
		}
	}
	for cur < h {
		flush()
	}
	return dst
}

// span says where one source pixel lands when n pixels shrink to m: the
// fraction w0 of destination pixel d and w1 of d+1. A destination pixel
// receives weights that sum to 1.
type span struct {
	d      int
	w0, w1 float32
}

func spans(n, m int) []span {
	s := make([]span, n)
	for i := range s {
		lo, hi := int64(i)*int64(m), int64(i+1)*int64(m) // in 1/n of a destination pixel
		d := lo / int64(n)
		edge := (d + 1) * int64(n)
		s[i] = span{d: int(d), w0: float32(min(hi, edge)-lo) / float32(n)}
		if hi > edge && d+1 < int64(m) {
			s[i].w1 = float32(hi-edge) / float32(n)
		}
	}
	return s
}

// orient returns m turned upright according to an EXIF Orientation value:
// 1 upright, 2 mirrored, 3 rotated 180°, 4 mirrored vertically, 5
// transposed, 6 to be turned 90° clockwise, 7 transversed, 8 to be turned
// 90° counter-clockwise. Other values leave m as it is.
func orient(m *image.RGBA, orientation int) *image.RGBA {
	if orientation < 2 || orientation > 8 {
		return m
	}
	w, h := m.Rect.Dx(), m.Rect.Dy()
	dw, dh := w, h
	if orientation >= 5 {
		dw, dh = h, w
	}
	out := image.NewRGBA(image.Rect(0, 0, dw, dh))
	for y := 0; y < dh; y++ {
		for x := 0; x < dw; x++ {
			sx, sy := x, y
			switch orientation {
			case 2:
				sx = w - 1 - x
			case 3:
				sx, sy = w-1-x, h-1-y
			case 4:
				sy = h - 1 - y
			case 5:
				sx, sy = y, x
			case 6:
				sx, sy = y, h-1-x
			case 7:
				sx, sy = w-1-y, h-1-x
			case 8:
				sx, sy = w-1-y, x
			}
			copy(out.Pix[out.PixOffset(x, y):][:4], m.Pix[m.PixOffset(sx, sy):][:4])
		}
	}
	return out
}
