package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/fleetsim/load"
	"github.com/shequ/shequ/agent/fleetsim/orgfile"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/protocol"
)

// noisePNG returns a PNG of side² 16-bit RGBA pixels of noise (8 bytes
// each), stored without compression (the hub keeps images as uploaded).
func noisePNG(b testing.TB, side int) []byte {
	b.Helper()
	img := image.NewRGBA64(image.Rect(0, 0, side, side))
	r := rand.New(rand.NewPCG(7, 7))
	for i := 0; i+8 <= len(img.Pix); i += 8 {
		v := r.Uint64()
		for k := range 8 {
			img.Pix[i+k] = byte(v >> (8 * k))
		}
	}
	var buf bytes.Buffer
	if err := (&png.Encoder{CompressionLevel: png.NoCompression}).Encode(&buf, img); err != nil {
		b.Fatal(err)
	}
	return buf.Bytes()
}

// realHub starts a real hub on loopback for a generated org tree of one
// kiosk, with cfg's other settings, until the test ends.
func realHub(tb testing.TB, ctx context.Context, cfg hub.Config) (*hub.Hub, *orgtree.Tree) {
	tb.Helper()
	org, err := orgfile.Generate(1)
	if err != nil {
		tb.Fatal(err)
	}
	if cfg.Org, err = orgtree.Parse(org); err != nil {
		tb.Fatal(err)
	}
	cfg.DataDir, cfg.MQTTListen, cfg.HTTPListen = tb.TempDir(), "127.0.0.1:0", "127.0.0.1:0"
	h, err := hub.New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		tb.Fatal(err)
	}
	if err := h.Start(ctx); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() {
		if err := h.Close(); err != nil {
			tb.Errorf("hub close: %v", err)
		}
	})
	return h, cfg.Org
}

// hubCall calls the hub's API with the admin token and returns the body of
// a reply with status want.
func hubCall(tb testing.TB, ctx context.Context, h *hub.Hub, method, path string, body []byte, want int) []byte {
	tb.Helper()
	req, err := http.NewRequestWithContext(ctx, method, h.HTTPURL()+path, bytes.NewReader(body))
	if err != nil {
		tb.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.AdminToken())
	resp, err := h.HTTPClient().Do(req)
	if err != nil {
		tb.Fatal(err)
	}
	defer resp.Body.Close() //nolint:errcheck // test
	out, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != want {
		tb.Fatalf("%s %s: %d %s (%v), want %d", method, path, resp.StatusCode, out, err, want)
	}
	return out
}

// enrolled claims the hub's one kiosk and enrols a fresh data directory as
// it, as a technician does on site.
func enrolled(tb testing.TB, ctx context.Context, h *hub.Hub) (kiosk, dir string) {
	tb.Helper()
	c, err := load.NewClient(load.ClientConfig{HubURL: h.HTTPURL(), Token: h.AdminToken(), CAPin: h.CAPin()})
	if err != nil {
		tb.Fatal(err)
	}
	defer c.Close()
	ks, err := c.Kiosks(ctx)
	if err != nil || len(ks) != 1 {
		tb.Fatalf("kiosks: %v, %v", ks, err)
	}
	claim, err := c.Claimer(ctx)
	if err != nil {
		tb.Fatal(err)
	}
	code, err := claim(ctx, ks[0].ID)
	if err != nil {
		tb.Fatal(err)
	}
	dir = tb.TempDir()
	if _, err := agent.Enrol(ctx, agent.EnrolConfig{DataDir: dir, HubURL: h.HTTPURL(), ClaimCode: code, CAPin: h.CAPin()}, slog.New(slog.DiscardHandler)); err != nil {
		tb.Fatal(err)
	}
	return ks[0].ID, dir
}

// benchHub starts a real hub with one kiosk and chunkSize, uploads data
// as an image, targets every kiosk with a playlist of it, and returns the
// hub, the file's reference and a data directory enrolled as the kiosk.
func benchHub(b testing.TB, data []byte, chunkSize int) (*hub.Hub, string, string) {
	b.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, tree := realHub(b, ctx, hub.Config{ChunkSize: chunkSize})
	call := func(method, path string, body []byte, want int) []byte {
		b.Helper()
		return hubCall(b, ctx, h, method, path, body, want)
	}
	type view struct {
		ID     string
		Status string
		File   *struct{ SHA256 string }
	}
	var v view
	if err := json.Unmarshal(call(http.MethodPost, "/api/v1/media", data, http.StatusAccepted), &v); err != nil {
		b.Fatal(err)
	}
	for v.File == nil || v.Status != "ready" {
		if v.Status == "failed" || ctx.Err() != nil {
			b.Fatalf("upload: %+v", v)
		}
		time.Sleep(20 * time.Millisecond)
		if err := json.Unmarshal(call(http.MethodGet, "/api/v1/media/"+v.ID, nil, http.StatusOK), &v); err != nil {
			b.Fatal(err)
		}
	}
	pl := fmt.Sprintf(`{"name":"基准","items":[{"kind":"image","media":%q,"duration_ms":5000}],"targets":[{"level":"city","id":%q}]}`, v.ID, tree.Root().ID)
	call(http.MethodPost, "/api/v1/playlists", []byte(pl), http.StatusCreated)
	_, dir := enrolled(b, ctx, h)
	// Sync the desired state once, so every run starts with it held.
	a, err := agent.New(agent.Config{DataDir: dir, MediaStagger: time.Hour}, slog.New(slog.DiscardHandler))
	if err != nil {
		b.Fatal(err)
	}
	if err := a.Start(ctx); err != nil {
		b.Fatal(err)
	}
	for a.Status().ContentVersion == 0 {
		if ctx.Err() != nil {
			b.Fatal("no desired state")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := a.Close(); err != nil {
		b.Fatal(err)
	}
	return h, v.File.SHA256, dir
}

// TestMediaWithRealHub: a real agent fetches a file of a playlist from a
// real hub over MQTT and over HTTPS, and its play stats are stored and
// acknowledged by the hub.
func TestMediaWithRealHub(t *testing.T) {
	data := noisePNG(t, 400) // 1.28 MB
	h, sha, dir := benchHub(t, data, 64<<10)
	for _, mode := range []string{"mqtt", "https"} {
		t.Run(mode, func(t *testing.T) {
			for _, p := range []string{"media", "media.db"} {
				if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
					t.Fatal(err)
				}
			}
			cfg := agent.Config{DataDir: dir, MediaStagger: -1, MinFreeDisk: -1}
			if mode == "https" {
				cfg.MediaHTTP = h.HTTPURL()
			}
			a := newAgent(t, cfg)
			start(t, a)
			hubtest.Eventually(t, time.Minute, "file held", func() bool { return a.Media().Has(sha) })
			got, err := os.ReadFile(a.Media().Path(sha))
			if err != nil || !bytes.Equal(got, data) {
				t.Fatalf("held file differs from the upload (%v)", err)
			}
			past := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
			if err := a.Play(protocol.PlayEvent{Kind: protocol.ItemImage, Media: sha, At: past}); err != nil {
				t.Fatal(err)
			}
			if n, err := a.FlushPlays(time.Now()); err != nil || n != 1 {
				t.Fatalf("FlushPlays = %d, %v", n, err)
			}
			hubtest.Eventually(t, time.Minute, "play stats acknowledged", func() bool { return a.Status().OutboxDepth == 0 })
		})
	}
}

// BenchmarkMediaTransfer fetches a 100 MB file from a real hub on
// loopback, over MQTT in chunks and over HTTPS in ranges, with 64 KiB and
// 1 MiB chunks, and reports the throughput (MB/s) from the agent's start
// to the file held and verified. Run with -benchtime=1x.
func BenchmarkMediaTransfer(b *testing.B) {
	data := noisePNG(b, 3620) // 3620² × 8 bytes ≈ 100 MiB
	for _, cs := range []int{64 << 10, 1 << 20} {
		h, sha, dir := benchHub(b, data, cs)
		for _, mode := range []string{"mqtt", "https"} {
			b.Run(fmt.Sprintf("%s/chunk=%dKiB", mode, cs>>10), func(b *testing.B) {
				b.SetBytes(int64(len(data)))
				var total time.Duration
				for b.Loop() {
					for _, p := range []string{"media", "media.db"} {
						if err := os.RemoveAll(filepath.Join(dir, p)); err != nil {
							b.Fatal(err)
						}
					}
					cfg := agent.Config{DataDir: dir, MediaStagger: -1, MinFreeDisk: -1, HeartbeatInterval: time.Hour}
					if mode == "https" {
						cfg.MediaHTTP = h.HTTPURL()
					}
					a, err := agent.New(cfg, slog.New(slog.DiscardHandler))
					if err != nil {
						b.Fatal(err)
					}
					t0 := time.Now()
					if err := a.Start(context.Background()); err != nil {
						b.Fatal(err)
					}
					deadline := time.Now().Add(5 * time.Minute)
					for a.Media() == nil || !a.Media().Has(sha) {
						if time.Now().After(deadline) {
							b.Fatalf("not held after 5 minutes: %+v", a.Media().Progress())
						}
						time.Sleep(2 * time.Millisecond)
					}
					total += time.Since(t0)
					if err := a.Close(); err != nil {
						b.Fatal(err)
					}
				}
				b.ReportMetric(float64(len(data))/1e6/total.Seconds()*float64(b.N), "MB/s")
			})
		}
	}
}

// TestCommandsWithRealHub: the hub's API sends a screenshot command to a
// real agent, whose kiosk UI (the real local API client) answers with an
// image; the hub stores the result and serves the image. Then
// restart_agent: the agent asks to be restarted and the hub shows ok.
func TestCommandsWithRealHub(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	h, _ := realHub(t, ctx, hub.Config{})
	call := func(method, path string, body string, want int) []byte {
		t.Helper()
		return hubCall(t, ctx, h, method, path, []byte(body), want)
	}
	kid, dir := enrolled(t, ctx, h)
	sock := filepath.Join(dir, "agent.sock")
	a := newAgent(t, agent.Config{DataDir: dir, Socket: sock, MediaStagger: time.Hour})
	start(t, a)
	hubtest.Eventually(t, time.Minute, "agent connected", func() bool { return a.Status().Connected })
	shot := testPNG(t)
	kioskUI(t, a, sock, func(ev protocol.LocalEvent) protocol.LocalCommandReply {
		return protocol.LocalCommandReply{Action: ev.Action, Status: protocol.ResultOK, Screenshot: &protocol.Screenshot{
			Type: protocol.ImagePNG, Width: 108, Height: 192, TakenAt: time.Now(), Data: shot}}
	})

	type command struct{ ID, Status, Reason string }
	send := func(action protocol.Action) string {
		var cmd command
		if err := json.Unmarshal(call(http.MethodPost, "/api/v1/kiosks/"+kid+"/commands", `{"action":"`+string(action)+`"}`, http.StatusAccepted), &cmd); err != nil {
			t.Fatal(err)
		}
		return cmd.ID
	}
	status := func(id string) command {
		var list struct{ Commands []command }
		if err := json.Unmarshal(call(http.MethodGet, "/api/v1/kiosks/"+kid+"/commands", "", http.StatusOK), &list); err != nil {
			t.Fatal(err)
		}
		for _, c := range list.Commands {
			if c.ID == id {
				return c
			}
		}
		t.Fatalf("command %s not listed", id)
		return command{}
	}

	id := send(protocol.ActionScreenshot)
	hubtest.Eventually(t, time.Minute, "screenshot result at the hub", func() bool { return status(id).Status == "ok" })
	if got := call(http.MethodGet, "/api/v1/kiosks/"+kid+"/screenshot", "", http.StatusOK); !bytes.Equal(got, shot) {
		t.Fatalf("the hub serves %d bytes, not the kiosk's screenshot", len(got))
	}
	hubtest.Eventually(t, time.Minute, "result acknowledged", func() bool { return a.Status().OutboxDepth == 0 })

	id = send(protocol.ActionRestartAgent)
	select {
	case <-a.RestartRequested():
	case <-ctx.Done():
		t.Fatal("the agent did not ask to restart")
	}
	hubtest.Eventually(t, time.Minute, "restart result at the hub", func() bool { return status(id).Status == "ok" })
}
