package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/protocol"
)

// ffmpegFile makes a media file with ffmpeg's test sources.
func ffmpegFile(t *testing.T, name string, args ...string) string {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-v", "error", "-y"}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg %s: %v\n%s (run packaging/dev/deps.sh)", name, err, b)
	}
	return out
}

// postFile posts a file as the raw request body (Content-Length set), with
// header pairs, and returns the body of a reply with status want.
func (a api) postFile(path, apiPath string, want int, header ...string) []byte {
	a.t.Helper()
	f, err := os.Open(path)
	if err != nil {
		a.t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		a.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, a.base+apiPath, f)
	if err != nil {
		a.t.Fatal(err)
	}
	req.ContentLength = st.Size()
	req.Header.Set("Authorization", "Bearer "+a.token)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := a.client.Do(req)
	if err != nil {
		a.t.Fatalf("post %s to %s: %v", path, apiPath, err)
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != want {
		a.t.Fatalf("post %s to %s: %s %s %v", path, apiPath, resp.Status, body, err)
	}
	return body
}

// upload posts a file to the hub's media library and waits until it is
// ready for kiosks (videos are transcoded first); it returns the media id
// and the kiosk file's sha256.
func (a api) upload(path string) (id, sha string) {
	a.t.Helper()
	body := a.postFile(path, "/api/v1/media", http.StatusAccepted, "X-Filename", filepath.Base(path))
	var m struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(body, &m); err != nil || m.ID == "" {
		a.t.Fatalf("upload reply %s: %v", body, err)
	}
	waitFor(a.t, 120*time.Second, "media "+m.ID+" to be ready", func() (bool, error) {
		var v struct {
			Status string `json:"status"`
			Reason string `json:"reason"`
			File   *struct {
				SHA256 string `json:"sha256"`
			} `json:"file"`
		}
		a.do(http.MethodGet, "/api/v1/media/"+m.ID, nil, &v)
		if v.Status == "failed" {
			a.t.Fatalf("media %s failed: %s", m.ID, v.Reason)
		}
		if v.Status == "ready" && v.File != nil {
			sha = v.File.SHA256
			return true, nil
		}
		return false, nil
	})
	return m.ID, sha
}

func fileSHA256(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}

// TestMediaReachesKiosk: a video and a poster uploaded at the hub (type
// checked by ffprobe, the video transcoded) and put in a playlist for the
// kiosk's district reach the kiosk: the agent fetches them in signed,
// checked chunks and hands the kiosk verified files; the hub reports them
// held; what the kiosk shows comes back as proof of play, and the hub says
// per notice and per file: sent, held, shown.
func TestMediaReachesKiosk(t *testing.T) {
	for _, b := range brokers {
		t.Run(b, func(t *testing.T) {
			e := newEnv(t, b, nil)
			hubAPI := e.api()
			agentDir, socket := t.TempDir(), filepath.Join(t.TempDir(), "agent.sock")
			e.enrol(demoKiosk, agentDir)
			ag := e.startAgent(agentDir, socket)

			video := ffmpegFile(t, "publicity.mp4", "-f", "lavfi", "-i", "testsrc=size=640x360:rate=25", "-t", "2", "-pix_fmt", "yuv420p")
			poster := ffmpegFile(t, "poster.png", "-f", "lavfi", "-i", "smptebars=size=540x720", "-frames:v", "1")
			videoID, videoSHA := hubAPI.upload(video)
			posterID, posterSHA := hubAPI.upload(poster)
			n := hubAPI.createNotice("以案释法：占绿毁绿被依法查处", protocol.PriorityNormal, kioskTarget(demoKiosk))
			hubAPI.do(http.MethodPost, "/api/v1/playlists", map[string]any{
				"name":    "黄浦区城管宣传轮播",
				"targets": []protocol.Target{{Level: protocol.LevelDistrict, ID: "huangpu"}},
				"items": []map[string]any{
					{"kind": "video", "media": videoID},
					{"kind": "image", "media": posterID, "duration_ms": 8000},
					{"kind": "notice", "notice": n.ID, "duration_ms": 10000},
				},
			}, nil)

			client := agentclient.New(socket)
			var content protocol.LocalNotices
			waitFor(t, 60*time.Second, "the kiosk to be given the playlist with both files held", func() (bool, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
				defer cancel()
				var err error
				content, err = client.Notices(ctx)
				return err == nil && len(content.Playlists) == 1 && len(content.Media) == 2, err
			})
			for _, m := range content.Media {
				want := map[string]string{videoSHA: "video", posterSHA: "image"}[m.SHA256]
				if want != string(m.Kind) {
					t.Errorf("held file %s of kind %s, want %q", m.SHA256, m.Kind, want)
				}
				if got := fileSHA256(t, m.Path); got != m.SHA256 {
					t.Errorf("file %s holds bytes hashing to %s", m.Path, got)
				}
			}

			waitFor(t, 30*time.Second, "the hub to report both files held by the kiosk", func() (bool, error) {
				var rep struct {
					Media []struct {
						SHA256 string `json:"sha256"`
						State  string `json:"state"`
					} `json:"media"`
				}
				hubAPI.do(http.MethodGet, "/api/v1/kiosks/"+demoKiosk+"/media", nil, &rep)
				held := 0
				for _, m := range rep.Media {
					if m.State == string(protocol.MediaHeld) {
						held++
					}
				}
				return held == 2, nil
			})

			// The kiosk shows the video and the notice; an hour later the
			// agent's counts reach the hub through the outbox.
			now := time.Now()
			for _, ev := range []protocol.PlayEvent{
				{Kind: protocol.ItemVideo, Media: videoSHA, At: now},
				{Kind: protocol.ItemVideo, Media: videoSHA, At: now.Add(time.Second)},
				{Kind: protocol.ItemNotice, Notice: n.ID, At: now.Add(2 * time.Second)},
			} {
				if err := client.PostPlay(context.Background(), ev); err != nil {
					t.Fatalf("post play: %v", err)
				}
			}
			if _, err := ag.FlushPlays(now.Add(time.Hour)); err != nil {
				t.Fatalf("flush plays: %v", err)
			}
			waitFor(t, 30*time.Second, "the hub to report the notice shown", func() (bool, error) {
				var rep struct {
					Kiosks []struct {
						Kiosk string `json:"kiosk"`
						Sent  bool   `json:"sent"`
						Held  bool   `json:"held"`
						Shown int    `json:"shown"`
					} `json:"kiosks"`
				}
				hubAPI.do(http.MethodGet, "/api/v1/notices/"+n.ID+"/delivery", nil, &rep)
				for _, k := range rep.Kiosks {
					if k.Kiosk == demoKiosk {
						return k.Sent && k.Held && k.Shown == 1, nil
					}
				}
				return false, nil
			})
			waitFor(t, 30*time.Second, "the hub to report the video shown twice", func() (bool, error) {
				var rep struct {
					Kiosks []struct {
						Kiosk string `json:"kiosk"`
						Shown int    `json:"shown"`
					} `json:"kiosks"`
				}
				hubAPI.do(http.MethodGet, "/api/v1/media/"+videoID+"/delivery", nil, &rep)
				for _, k := range rep.Kiosks {
					if k.Kiosk == demoKiosk {
						return k.Shown == 2, nil
					}
				}
				return false, nil
			})
		})
	}
}
