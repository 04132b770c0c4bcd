package vm

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Screen and input constants.
const (
	// maxScreendump bounds a screendump file.
	maxScreendump = 128 << 20
	// absMax is the largest value of QEMU's absolute pointer axes; 0 is
	// the left or top edge of the screen.
	absMax = 0x7fff
	// tapHold is how long Tap keeps the finger down: a short touch, as
	// a person's, not a wait for anything.
	tapHold = 60 * time.Millisecond
)

// Screendump returns what the display shows (QMP screendump). QEMU 7.1
// and later write PNG; an older QEMU writes PPM, used when PNG is refused.
// The last screendump stays in Dir as screen.png (or screen.ppm). Its size
// is the guest's current display mode, which is Config.Width×Height only
// once the guest's driver has set it: the firmware picks its own.
func (v *VM) Screendump(ctx context.Context) (image.Image, error) {
	v.screenMu.Lock()
	defer v.screenMu.Unlock()
	if !v.ppmOnly {
		path := filepath.Join(v.dir, "screen.png")
		err := v.qmp.call(ctx, "screendump", map[string]string{"filename": path, "format": "png"}, nil)
		var ce *CommandError
		switch {
		case err == nil:
			return readScreendump(path, func(b []byte) (image.Image, error) {
				cfg, err := png.DecodeConfig(bytes.NewReader(b))
				if err != nil {
					return nil, fmt.Errorf("%w: %w", ErrBadImage, err)
				}
				if cfg.Width > maxPPMSide || cfg.Height > maxPPMSide || cfg.Width*cfg.Height > maxPPMPixels {
					return nil, fmt.Errorf("%w: size %d×%d out of range", ErrBadImage, cfg.Width, cfg.Height)
				}
				img, err := png.Decode(bytes.NewReader(b))
				if err != nil {
					return nil, fmt.Errorf("%w: %w", ErrBadImage, err)
				}
				return img, nil
			})
		case errors.As(err, &ce) && strings.Contains(ce.Desc, "format"):
			v.log.Info("vm: qemu cannot write PNG screendumps; using PPM", "err", err)
			v.ppmOnly = true
		default:
			return nil, fmt.Errorf("vm: screendump: %w", err)
		}
	}
	path := filepath.Join(v.dir, "screen.ppm")
	if err := v.qmp.call(ctx, "screendump", map[string]string{"filename": path}, nil); err != nil {
		return nil, fmt.Errorf("vm: screendump: %w", err)
	}
	return readScreendump(path, func(b []byte) (image.Image, error) { return decodePPM(b) })
}

func readScreendump(path string, decode func([]byte) (image.Image, error)) (image.Image, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("vm: screendump: %w", err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("vm: screendump: %w", err)
	}
	if st.Size() > maxScreendump {
		return nil, fmt.Errorf("vm: screendump: %s: %w: %d bytes", path, ErrBadImage, st.Size())
	}
	b := make([]byte, st.Size())
	if _, err := f.ReadAt(b, 0); err != nil {
		return nil, fmt.Errorf("vm: screendump: %w", err)
	}
	img, err := decode(b)
	if err != nil {
		return nil, fmt.Errorf("vm: screendump: %s: %w", path, err)
	}
	return img, nil
}

// SavePNG writes img to path as a PNG, replacing the file only once it is
// complete.
func SavePNG(path string, img image.Image) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return fmt.Errorf("vm: save png: %w", err)
	}
	defer os.Remove(tmp.Name()) // gone after the rename; the error is of no use
	if err := png.Encode(tmp, img); err != nil {
		tmp.Close()
		return fmt.Errorf("vm: save png %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("vm: save png %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("vm: save png: %w", err)
	}
	return nil
}

// inputEvent is one event of QMP input-send-event.
type inputEvent struct {
	Type string `json:"type"` // "abs", "btn" or "key"
	Data any    `json:"data"`
}

type absEvent struct {
	Axis  string `json:"axis"` // "x" or "y"
	Value int    `json:"value"`
}

type btnEvent struct {
	Down   bool   `json:"down"`
	Button string `json:"button"`
}

// Tap touches the screen at pixel (x, y) of the Config.Width×Height
// display: the USB tablet moves there, then its left button goes down
// and, a moment later, up. The guest sees an absolute pointer, not a
// touchscreen: evdev ABS_X/ABS_Y over 0..32767 and BTN_LEFT, which udev
// tags as a mouse and libinput turns into pointer motion and a click.
func (v *VM) Tap(ctx context.Context, x, y int) error {
	if x < 0 || y < 0 || x >= v.cfg.Width || y >= v.cfg.Height {
		return fmt.Errorf("vm: tap (%d, %d): outside the %d×%d display", x, y, v.cfg.Width, v.cfg.Height)
	}
	send := func(ctx context.Context, events ...inputEvent) error {
		if err := v.qmp.call(ctx, "input-send-event", map[string]any{"events": events}, nil); err != nil {
			return fmt.Errorf("vm: tap (%d, %d): %w", x, y, err)
		}
		return nil
	}
	if err := send(ctx,
		inputEvent{Type: "abs", Data: absEvent{Axis: "x", Value: absValue(x, v.cfg.Width)}},
		inputEvent{Type: "abs", Data: absEvent{Axis: "y", Value: absValue(y, v.cfg.Height)}},
	); err != nil {
		return err
	}
	if err := send(ctx, inputEvent{Type: "btn", Data: btnEvent{Down: true, Button: "left"}}); err != nil {
		return err
	}
	hold := time.NewTimer(tapHold)
	defer hold.Stop()
	select {
	case <-hold.C:
	case <-ctx.Done():
	}
	// Lift the finger even when ctx has ended, or the button stays down.
	upCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := send(upCtx, inputEvent{Type: "btn", Data: btnEvent{Down: false, Button: "left"}}); err != nil {
		return err
	}
	if ctx.Err() != nil {
		return fmt.Errorf("vm: tap (%d, %d): %w", x, y, context.Cause(ctx))
	}
	return nil
}

// absValue maps pixel p of a side of n pixels to the middle of its range
// on QEMU's 0..absMax axis.
func absValue(p, n int) int {
	return min((2*p+1)*(absMax+1)/(2*n), absMax)
}

// Key presses the keys together and releases them (QMP send-key, which
// holds them 100 ms). Keys are QEMU qcodes: "a", "1", "ret", "esc",
// "spc", "shift", "ctrl", "alt", "tab", "backspace", "f1", "minus" and so
// on (QEMU's QKeyCode).
func (v *VM) Key(ctx context.Context, qcodes ...string) error {
	if len(qcodes) == 0 {
		return errors.New("vm: key: no keys")
	}
	keys := make([]map[string]string, len(qcodes))
	for i, q := range qcodes {
		keys[i] = map[string]string{"type": "qcode", "data": q}
	}
	if err := v.qmp.call(ctx, "send-key", map[string]any{"keys": keys}, nil); err != nil {
		return fmt.Errorf("vm: key %s: %w", strings.Join(qcodes, "+"), err)
	}
	return nil
}
