package photo_test

import (
	"bytes"
	"fmt"
	"image"
	"image/png"
	"log"

	"github.com/shequ/shequ/hub/photo"
)

func ExampleNormalize() {
	// An upload: a 3200×2400 PNG (a phone would send a JPEG or WebP).
	var upload bytes.Buffer
	if err := png.Encode(&upload, image.NewGray(image.Rect(0, 0, 3200, 2400))); err != nil {
		log.Fatal(err)
	}

	p, err := photo.Normalize(&upload, photo.Config{})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%dx%d JPEG, %d hex digits of SHA-256\n", p.Width, p.Height, len(p.SHA256))
	// Output: 1600x1200 JPEG, 64 hex digits of SHA-256
}
