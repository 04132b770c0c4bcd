package ui

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"image"
	"image/jpeg"
	"image/png"
	"time"

	"fyne.io/fyne/v2"

	"github.com/shequ/shequ/protocol"
)

// Remote commands the agent hands to the UI (protocol/command.go): a
// technician's screenshot, and a restart of the UI.

// ErrInUse means a screenshot was refused because the screen shows a
// resident's business (screen.Model.Capturable). Its text is the reason
// the technician reads.
var ErrInUse = errors.New("居民正在使用 / resident is using the kiosk")

// CommandReplier answers remote commands; agentclient.Client implements it.
type CommandReplier interface {
	ReplyCommand(ctx context.Context, id string, r protocol.LocalCommandReply) error
}

// jpegQualities are tried in turn when the PNG of a screen is larger than
// protocol.MaxScreenshotBytes (a screen full of photographs).
var jpegQualities = []int{85, 70, 50, 30}

// Screenshot captures the window, if the model says the screen shows
// nothing of a resident's, and encodes it: PNG, or JPEG when the PNG is
// over protocol.MaxScreenshotBytes. The check and the capture run in one
// call on the Fyne goroutine, so no tap comes between them. Call it from
// any goroutine but the Fyne one. It fails with ErrInUse on any screen of
// a resident's.
func (u *UI) Screenshot() (protocol.Screenshot, error) {
	var img image.Image
	var inUse bool
	now := u.now()
	fyne.DoAndWait(func() {
		if !u.model.Capturable(now) {
			inUse = true
			return
		}
		// Draw the model's current view first, so a redraw still pending
		// cannot leave an older screen on the canvas.
		u.Render()
		img = u.win.Canvas().Capture()
	})
	if inUse {
		return protocol.Screenshot{}, ErrInUse
	}
	if img == nil || img.Bounds().Empty() {
		return protocol.Screenshot{}, errors.New("ui: the window captured as an empty image")
	}
	return encodeScreenshot(img, now)
}

// encodeScreenshot encodes a captured screen within the size limit.
func encodeScreenshot(img image.Image, at time.Time) (protocol.Screenshot, error) {
	b := img.Bounds()
	shot := protocol.Screenshot{Type: protocol.ImagePNG, Width: b.Dx(), Height: b.Dy(), TakenAt: at.UTC()}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return shot, fmt.Errorf("ui: encode screenshot as PNG: %w", err)
	}
	for _, q := range jpegQualities {
		if buf.Len() <= protocol.MaxScreenshotBytes {
			break
		}
		buf.Reset()
		shot.Type = protocol.ImageJPEG
		if err := jpeg.Encode(&buf, img, &jpeg.Options{Quality: q}); err != nil {
			return shot, fmt.Errorf("ui: encode screenshot as JPEG: %w", err)
		}
	}
	if buf.Len() > protocol.MaxScreenshotBytes {
		return shot, fmt.Errorf("ui: screenshot is %d bytes even as JPEG at quality %d, limit %d",
			buf.Len(), jpegQualities[len(jpegQualities)-1], protocol.MaxScreenshotBytes)
	}
	shot.Data = buf.Bytes()
	return shot, shot.Validate()
}

// Command acts on a remote command the agent announced and answers it
// through r: a screenshot (refused on a resident's screen), or a restart
// of the UI, answered ok before quit is called (the kiosk exits; systemd
// starts it again). Call it from any goroutine but the Fyne one.
func (u *UI) Command(ctx context.Context, ev protocol.LocalEvent, r CommandReplier, quit func()) error {
	reply := protocol.LocalCommandReply{Action: ev.Action, Status: protocol.ResultOK}
	switch ev.Action {
	case protocol.ActionScreenshot:
		shot, err := u.Screenshot()
		switch {
		case errors.Is(err, ErrInUse):
			reply.Status, reply.Reason = protocol.ResultRefused, ErrInUse.Error()
		case err != nil:
			reply.Status, reply.Reason = protocol.ResultFailed, "截屏失败 / capture failed: "+err.Error()
			if len([]rune(reply.Reason)) > protocol.MaxReason {
				reply.Reason = string([]rune(reply.Reason)[:protocol.MaxReason])
			}
		default:
			reply.Screenshot = &shot
		}
		u.log.Info("remote screenshot", "command", ev.Command, "status", reply.Status, "reason", reply.Reason)
	case protocol.ActionRestartUI:
		u.log.Info("restarting the UI, as the hub asked", "command", ev.Command)
	default:
		return fmt.Errorf("ui: command %s: %w: action %q is not the UI's", ev.Command, protocol.ErrInvalid, ev.Action)
	}
	if err := r.ReplyCommand(ctx, ev.Command, reply); err != nil {
		return fmt.Errorf("ui: answer command %s: %w", ev.Command, err)
	}
	if ev.Action == protocol.ActionRestartUI {
		quit()
	}
	return nil
}
