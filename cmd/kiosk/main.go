// Command kiosk is the Shequ touchscreen UI. It shows what the on-device
// agent holds and submits residents' feedback through the agent's local API
// on a Unix socket; it never talks MQTT or opens the agent's database. While
// the agent reports the device not enrolled it shows the setup screen, where
// a technician enters the claim code.
//
//	kiosk -socket /run/shequ-agent/agent.sock
//	kiosk -windowed -size 540x960 -lang en -attract 20s
//
// After -attract without a touch on the home screen it plays the attract
// loop (the agent's playlists: images, notice cards and videos decoded by
// ffmpeg) until someone touches the screen, and reports what it shows to the
// agent (proof of play).
//
// Remote commands the agent passes on (kiosk/ui.UI.Command): a screenshot,
// taken only on a screen without a resident's business, and a restart,
// for which the kiosk quits (shequ-kiosk.service has Restart=always).
//
// Run it with LANG=zh_CN.UTF-8 (Fyne logs a locale error under C); the
// display language itself comes from -lang and the on-screen toggle.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"fyne.io/fyne/v2"
	"fyne.io/fyne/v2/app"

	"github.com/shequ/shequ/cmd/internal/sdnotify"
	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/kiosk/i18n"
	"github.com/shequ/shequ/kiosk/screen"
	"github.com/shequ/shequ/kiosk/ui"
	"github.com/shequ/shequ/kiosk/video"
	"github.com/shequ/shequ/protocol"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

// config is what the flags say.
type config struct {
	socket   string
	windowed bool
	size     fyne.Size
	screen   screen.Config
	video    video.Config
}

func main() {
	socket := flag.String("socket", "./data/agent/agent.sock", "the agent's local API socket")
	windowed := flag.Bool("windowed", false, "run in a window instead of full screen")
	size := flag.String("size", "1080x1920", "window size WIDTHxHEIGHT (logical pixels)")
	lang := flag.String("lang", "zh", "default language: zh or en")
	idle := flag.Duration("idle", screen.DefaultIdleTimeout, "return to the home screen after this long without a touch")
	attract := flag.Duration("attract", screen.DefaultAttractAfter, "start the attract loop after the home screen is idle this long")
	ffmpeg := flag.String("ffmpeg", "ffmpeg", "ffmpeg executable for attract videos (ffprobe is looked up beside it)")
	qrURL := flag.String("qr-url", screen.DefaultStationURL, "城管码 URL template; {community} and {kiosk} are replaced")
	followURL := flag.String("follow-url", screen.DefaultFollowURL, "receipt QR URL template; {ticket} is replaced")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	cfg, err := parse(*socket, *windowed, *size, *lang, *idle, *attract, *qrURL, *followURL)
	if err != nil {
		fmt.Fprintln(os.Stderr, "kiosk:", err)
		os.Exit(2)
	}
	cfg.video = video.Config{FFmpeg: *ffmpeg, FFprobe: ffprobeBeside(*ffmpeg)}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, cfg, log); err != nil {
		log.Error("kiosk stopped", "err", err)
		os.Exit(1)
	}
}

// ffprobeBeside returns the ffprobe that goes with the ffmpeg executable.
func ffprobeBeside(ffmpeg string) string {
	dir, file := filepath.Split(ffmpeg)
	return dir + strings.Replace(file, "ffmpeg", "ffprobe", 1)
}

func parse(socket string, windowed bool, size, lang string, idle, attract time.Duration, qrURL, followURL string) (config, error) {
	w, h, ok := strings.Cut(size, "x")
	wi, err1 := strconv.Atoi(w)
	hi, err2 := strconv.Atoi(h)
	if !ok || err1 != nil || err2 != nil || wi <= 0 || hi <= 0 {
		return config{}, fmt.Errorf("-size %q: want WIDTHxHEIGHT, e.g. 1080x1920", size)
	}
	l, err := i18n.ParseLang(lang)
	if err != nil {
		return config{}, fmt.Errorf("-lang: %w", err)
	}
	if idle <= 0 {
		return config{}, errors.New("-idle must be positive")
	}
	if attract <= 0 {
		return config{}, errors.New("-attract must be positive")
	}
	return config{
		socket: socket, windowed: windowed, size: fyne.NewSize(float32(wi), float32(hi)),
		screen: screen.Config{Lang: l, IdleTimeout: idle, AttractAfter: attract, StationURL: qrURL, FollowURL: followURL},
	}, nil
}

const (
	// tickEvery is how often the screen model's clock advances: attract
	// items change within this of their end.
	tickEvery = 250 * time.Millisecond
	// playQueue bounds the play events waiting to be sent to the agent.
	playQueue = 256
)

// postReports sends play events and reports of unplayable files to the
// agent until ctx ends. A failure is logged and the report dropped: proof
// of play is a count and a broken file is reported again when it fails
// again after the agent fetched it anew; neither is a record a resident
// depends on.
func postReports(ctx context.Context, c *agentclient.Client, plays <-chan protocol.PlayEvent, broken <-chan protocol.MediaError, log *slog.Logger) {
	for {
		select {
		case <-ctx.Done():
			return
		case ev := <-plays:
			if err := c.PostPlay(ctx, ev); err != nil && ctx.Err() == nil {
				log.Warn("report play to the agent", "err", err)
			}
		case e := <-broken:
			if err := c.PostMediaError(ctx, e); err != nil && ctx.Err() == nil {
				log.Warn("report unplayable media to the agent", "sha256", e.SHA256, "err", err)
			}
		}
	}
}

// run shows the kiosk until ctx ends or the window is closed.
func run(ctx context.Context, cfg config, log *slog.Logger) error {
	m, err := screen.New(cfg.screen)
	if err != nil {
		return fmt.Errorf("screen model: %w", err)
	}
	a := app.NewWithID("org.shequ.kiosk")
	a.Settings().SetTheme(ui.Theme{})
	win := a.NewWindow("Shequ 社区城管工作室")
	win.SetPadded(false)
	win.Resize(cfg.size)
	win.SetFixedSize(true) // the screen is the size; content scrolls, the window never grows
	if !cfg.windowed {
		win.SetFullScreen(true)
	}

	client := agentclient.New(cfg.socket)
	defer client.Close()
	// The home layout shows "正在连接… / Connecting…" until Sync delivers
	// the first content, so the screen is never blank; the setup screen
	// replaces it while the agent reports the device not enrolled.
	vc := cfg.video
	vc.Log = log
	u := ui.New(win, m, client, ui.Options{Log: log, Enroller: client, Video: vc})
	defer u.Close()

	stopped := ctx
	ctx, cancel := context.WithCancel(ctx)
	// Play events go to the agent from one goroutine; the model never
	// waits for it (a full queue drops events, logged).
	plays := make(chan protocol.PlayEvent, playQueue)
	m.OnPlay(func(ev protocol.PlayEvent) {
		select {
		case plays <- ev:
		default:
			log.Warn("play event dropped: agent too slow", "kind", ev.Kind, "media", ev.Media, "notice", ev.Notice)
		}
	})
	broken := make(chan protocol.MediaError, playQueue)
	m.OnBroken(func(e protocol.MediaError) {
		select {
		case broken <- e:
		default:
			log.Warn("media error report dropped: agent too slow", "sha256", e.SHA256)
		}
	})
	var wg sync.WaitGroup
	wg.Add(4)
	go func() {
		defer wg.Done()
		postReports(ctx, client, plays, broken, log)
	}()
	go func() {
		defer wg.Done()
		apply := agentclient.Apply{Content: m.SetContent, Status: m.SetStatus, Cases: func(int64) { u.CasesChanged() },
			Command: func(ev protocol.LocalEvent) {
				// A remote command: a screenshot, or a restart of the UI,
				// for which the kiosk quits and systemd starts it again.
				go func() {
					if err := u.Command(ctx, ev, client, func() { fyne.Do(a.Quit) }); err != nil {
						log.Warn("remote command", "command", ev.Command, "action", ev.Action, "err", err)
					}
				}()
			}}
		if err := agentclient.SyncAll(ctx, client, apply, log); err != nil {
			log.Error("agent sync stopped", "err", err)
		}
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(tickEvery)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				u.Tick()
			}
		}
	}()
	go func() {
		defer wg.Done()
		<-ctx.Done()
		if stopped.Err() != nil { // a signal, not the window closing
			fyne.Do(a.Quit)
		}
	}()
	// Under systemd (shequ-kiosk.service: Type=notify, the UI a child of
	// the compositor) the session is up once the window is.
	a.Lifecycle().SetOnStarted(func() {
		if err := sdnotify.Send(os.Getenv("NOTIFY_SOCKET"), sdnotify.Ready); err != nil {
			log.Warn("telling systemd the kiosk is up", "err", err)
		}
	})
	log.Info("kiosk started", "version", version, "socket", cfg.socket, "windowed", cfg.windowed, "size", cfg.size, "lang", cfg.screen.Lang)
	win.ShowAndRun()
	cancel()
	wg.Wait()
	log.Info("kiosk stopped")
	return nil
}
