package e2e

import (
	"bytes"
	"context"
	"image"
	"image/color"
	"image/png"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/browser"
	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/protocol"
)

// TestRemoteScreenshotInBrowser: a technician clicks 截屏 Screenshot on a
// kiosk's page in Chromium; the hub signs the command, the real agent
// passes it to the kiosk, which answers from its screen logic: a
// screenshot on the home screen, a refusal while a resident is in the
// feedback form. The page shows the image and then the refusal.
func TestRemoteScreenshotInBrowser(t *testing.T) {
	e := newEnv(t, "mochi", nil)
	hubAPI := e.api()
	base := e.hub.HTTPURL()
	socket, agentDir := filepath.Join(t.TempDir(), "agent.sock"), t.TempDir()
	e.enrol(demoKiosk, agentDir)
	e.startAgent(agentDir, socket)
	tech := hubAPI.addAccount("zhao.yw", "赵运维", "technician", "shanghai")

	// The kiosk: the screen logic, answering commands through the local
	// API as cmd/kiosk does (the capture itself is kiosk/ui's, tested
	// with Fyne's driver; here a drawn image stands for it).
	model, err := screen.New(screen.Config{})
	if err != nil {
		t.Fatal(err)
	}
	img := image.NewRGBA(image.Rect(0, 0, 108, 192))
	for i := range img.Pix {
		img.Pix[i] = 0xff
	}
	img.Set(10, 10, color.RGBA{0xc8, 0x10, 0x2e, 0xff})
	var pngData bytes.Buffer
	if err := png.Encode(&pngData, img); err != nil {
		t.Fatal(err)
	}
	client := agentclient.New(socket)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- agentclient.SyncAll(ctx, client, agentclient.Apply{Content: model.SetContent, Status: model.SetStatus,
			Command: func(ev protocol.LocalEvent) {
				reply := protocol.LocalCommandReply{Action: ev.Action, Status: protocol.ResultOK}
				switch {
				case ev.Action != protocol.ActionScreenshot:
				case !model.Capturable(time.Now()):
					reply.Status, reply.Reason = protocol.ResultRefused, "居民正在使用 / resident is using the kiosk"
				default:
					reply.Screenshot = &protocol.Screenshot{Type: protocol.ImagePNG, Width: 108, Height: 192, TakenAt: time.Now(), Data: pngData.Bytes()}
				}
				go func() {
					if err := client.ReplyCommand(ctx, ev.Command, reply); err != nil && ctx.Err() == nil {
						t.Errorf("kiosk: reply to %s: %v", ev.Command, err)
					}
				}()
			}}, testLogger(t).With("proc", "kiosk"))
	}()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("kiosk sync: %v", err)
		}
		client.Close()
	})
	waitFor(t, 20*time.Second, "the kiosk connected to its agent", func() (bool, error) {
		st, err := client.Status(ctx)
		return err == nil && st.Connected, nil
	})

	b := browser.Start(t, browser.WithCA(e.hub.CACertPEM()))
	desk := b.NewTab(t, browser.Desktop())
	if got := login(t, desk, base, tech); got != "/fleet" {
		t.Fatalf("technician landed on %s, want /fleet", got)
	}
	if code := desk.Go(base + "/fleet/" + demoKiosk); code != http.StatusOK {
		t.Fatalf("kiosk page: %d", code)
	}
	desk.WaitText("#screenshot", "还没有截屏")
	if code := desk.ClickLoad(`form.commands button[value="screenshot"]`); code != http.StatusOK {
		t.Fatalf("click 截屏: %d", code)
	}
	desk.WaitText("#flash", "命令已发出")
	waitFor(t, 20*time.Second, "the screenshot on the kiosk page", func() (bool, error) {
		if code := desk.Go(base + "/fleet/" + demoKiosk); code != http.StatusOK {
			return false, nil
		}
		var loaded bool
		desk.Eval(`(() => { const i = document.querySelector("#screenshot img"); return !!i && i.complete && i.naturalWidth === 108; })()`, &loaded)
		return loaded, nil
	})
	desk.WaitText("#commands", "已完成")
	desk.WaitText("#commands", "赵运维")

	// A resident starts giving feedback: the next screenshot is refused.
	model.StartFeedback(time.Now())
	if code := desk.ClickLoad(`form.commands button[value="screenshot"]`); code != http.StatusOK {
		t.Fatalf("click 截屏: %d", code)
	}
	waitFor(t, 20*time.Second, "the refusal on the kiosk page", func() (bool, error) {
		if code := desk.Go(base + "/fleet/" + demoKiosk); code != http.StatusOK {
			return false, nil
		}
		var refused bool
		desk.Eval(`document.querySelector("#commands tbody tr").dataset.status === "refused"`, &refused)
		return refused, nil
	})
	desk.WaitText("#commands", "居民正在使用 / resident is using the kiosk")
	shot(t, desk, "console-kiosk-remote.png")
}
