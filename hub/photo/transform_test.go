package photo

import (
	"fmt"
	"image"
	"image/color"
	"math"
	"testing"
)

func TestSpans(t *testing.T) {
	for _, tc := range []struct{ n, m int }{{4000, 1600}, {3, 2}, {7, 7}, {10, 1}, {1601, 1600}, {40_000, 3}} {
		t.Run(fmt.Sprintf("%d to %d", tc.n, tc.m), func(t *testing.T) {
			sum := make([]float64, tc.m)
			for i, s := range spans(tc.n, tc.m) {
				if s.d < 0 || s.d >= tc.m || (s.w1 != 0 && s.d+1 >= tc.m) {
					t.Fatalf("pixel %d lands on %d of %d", i, s.d, tc.m)
				}
				sum[s.d] += float64(s.w0)
				if s.w1 != 0 {
					sum[s.d+1] += float64(s.w1)
				}
			}
			for d, v := range sum {
				if math.Abs(v-1) > 1e-3 {
					t.Fatalf("destination pixel %d receives weight %v", d, v)
				}
			}
		})
	}
}

// TestScaleAverages checks that shrinking averages what it drops: fine
// detail turns grey instead of aliasing into stripes, and flat colours
// stay exactly as they were.
func TestScaleAverages(t *testing.T) {
	stripes := image.NewGray(image.Rect(0, 0, 300, 90))
	for y := range 90 {
		for x := range 300 {
			if (x+y)%2 == 0 {
				stripes.SetGray(x, y, color.Gray{255})
			}
		}
	}
	flat := image.NewNRGBA(image.Rect(10, 20, 310, 110)) // bounds not at the origin
	for i := range flat.Pix {
		flat.Pix[i] = []uint8{200, 100, 50, 255}[i%4]
	}
	for _, tc := range []struct {
		name    string
		src     image.Image
		edge    int
		want    color.RGBA
		maxDiff int
	}{
		{"checkerboard to a half", stripes, 150, color.RGBA{128, 128, 128, 255}, 1},
		{"checkerboard to a third", stripes, 100, color.RGBA{128, 128, 128, 255}, 15},
		{"checkerboard to 0.7", stripes, 210, color.RGBA{128, 128, 128, 255}, 40},
		{"flat colour", flat, 77, color.RGBA{200, 100, 50, 255}, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := scale(tc.src, tc.edge)
			if m.Rect.Dx() != tc.edge {
				t.Fatalf("width %d, want %d", m.Rect.Dx(), tc.edge)
			}
			for y := range m.Rect.Dy() {
				for x := range m.Rect.Dx() {
					got := m.RGBAAt(x, y)
					for c, v := range []uint8{got.R - tc.want.R, got.G - tc.want.G, got.B - tc.want.B, got.A - tc.want.A} {
						if d := int(int8(v)); d > tc.maxDiff || -d > tc.maxDiff {
							t.Fatalf("pixel (%d,%d) channel %d is %v, want %v", x, y, c, got, tc.want)
						}
					}
				}
			}
		})
	}
}
