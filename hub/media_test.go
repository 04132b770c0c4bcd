package hub

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/media"
	"github.com/shequ/shequ/hub/store"
)

// ffmpegFile runs ffmpeg with args writing to a new file named name and
// returns its contents.
func ffmpegFile(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out := filepath.Join(t.TempDir(), name)
	cmd := exec.Command("ffmpeg", append(append([]string{"-v", "error", "-nostdin"}, args...), out)...)
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("ffmpeg: %v: %s", err, b)
	}
	b, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func testPNG(t *testing.T) []byte {
	return ffmpegFile(t, "a.png", "-f", "lavfi", "-i", "testsrc=size=320x240", "-frames:v", "1")
}

func testVideo(t *testing.T) []byte {
	return ffmpegFile(t, "a.mp4", "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=25", "-t", "3",
		"-pix_fmt", "yuv420p", "-c:v", "libx264", "-preset", "ultrafast")
}

// upload posts a file to the media API; a nil header map means no
// Content-Length (chunked).
func upload(t *testing.T, h *Hub, body []byte, filename string, token string, chunked bool) (int, []byte) {
	t.Helper()
	var r io.Reader = bytes.NewReader(body)
	if chunked {
		r = io.MultiReader(r) // hides the length
	}
	req, err := http.NewRequest("POST", h.HTTPURL()+"/api/v1/media", r)
	if err != nil {
		t.Fatal(err)
	}
	if filename != "" {
		req.Header.Set("X-Filename", filename)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := h.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

// uploadOK uploads a file and waits until it is ready.
func uploadOK(t *testing.T, h *Hub, body []byte, filename string) media.View {
	t.Helper()
	code, b := upload(t, h, body, filename, h.AdminToken(), false)
	if code != http.StatusAccepted {
		t.Fatalf("upload %s: %d %s", filename, code, b)
	}
	var v media.View
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(60 * time.Second)
	for v.Status != store.MediaReady {
		if v.Status == store.MediaFailed || time.Now().After(deadline) {
			t.Fatalf("media %s: %s %d%% %q", v.ID, v.Status, v.Percent, v.Reason)
		}
		time.Sleep(20 * time.Millisecond)
		v = getJSON[media.View](t, h, "/api/v1/media/"+v.ID)
	}
	return v
}

func TestMediaUpload(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	text := []byte("not a video at all, only text\n")
	for _, tc := range []struct {
		name     string
		body     []byte
		filename string
		token    string
		chunked  bool
		want     int
	}{
		{"text disguised as mp4", text, "clip.mp4", h.AdminToken(), false, http.StatusUnsupportedMediaType},
		{"no token", testPNG(t), "a.png", "", false, http.StatusUnauthorized},
		{"no length", testPNG(t), "a.png", h.AdminToken(), true, http.StatusLengthRequired},
		{"bad filename", testPNG(t), "a/b.png", h.AdminToken(), false, http.StatusBadRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, b := upload(t, h, tc.body, tc.filename, tc.token, tc.chunked)
			if code != tc.want {
				t.Errorf("%d %s, want %d", code, b, tc.want)
			}
		})
	}
	if l := getJSON[struct{ Media []media.View }](t, h, "/api/v1/media"); len(l.Media) != 0 {
		t.Errorf("refused uploads left records: %+v", l.Media)
	}
	var files []string
	if err := filepath.WalkDir(filepath.Join(h.cfg.DataDir, "media"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if len(files) != 0 {
		t.Errorf("refused uploads left files: %v", files)
	}

	img := uploadOK(t, h, testPNG(t), "海报.png")
	if img.Kind != "image" || img.File == nil || img.File.SHA256 != img.Original.SHA256 || img.Filename != "海报.png" {
		t.Errorf("image: %+v", img)
	}
	vid := uploadOK(t, h, testVideo(t), "宣传片.mp4")
	if vid.Kind != "video" || vid.File == nil || vid.File.Width != 1280 || vid.File.Height != 720 ||
		vid.File.DurationMS < 2900 || vid.Percent != 100 {
		t.Errorf("video: %+v %+v", vid, vid.File)
	}
	if l := getJSON[struct{ Media []media.View }](t, h, "/api/v1/media"); len(l.Media) != 2 || l.Media[0].ID != vid.ID {
		t.Errorf("list: %+v", l.Media)
	}
}

// TestTranscodeSurvivesHubRestart closes the hub in the middle of a
// transcode; the next hub on the same data directory finishes it.
func TestTranscodeSurvivesHubRestart(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir, nil)
	long := ffmpegFile(t, "long.mkv", "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=25", "-t", "20", "-c:v", "mpeg4", "-q:v", "5")
	code, b := upload(t, h, long, "long.mkv", h.AdminToken(), false)
	if code != http.StatusAccepted {
		t.Fatalf("upload: %d %s", code, b)
	}
	var v media.View
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for v.Status != store.MediaTranscoding || v.Percent == 0 {
		if v.Status == store.MediaReady || v.Status == store.MediaFailed || time.Now().After(deadline) {
			t.Fatalf("waiting for progress: %s %d%% %q", v.Status, v.Percent, v.Reason)
		}
		time.Sleep(20 * time.Millisecond)
		v = getJSON[media.View](t, h, "/api/v1/media/"+v.ID)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h2 := startHub(t, dir, nil)
	got := getJSON[media.View](t, h2, "/api/v1/media/"+v.ID)
	if got.Status == store.MediaFailed {
		t.Fatalf("after restart: failed %q", got.Reason)
	}
	deadline = time.Now().Add(60 * time.Second)
	for got.Status != store.MediaReady {
		if got.Status == store.MediaFailed || time.Now().After(deadline) {
			t.Fatalf("after restart: %s %d%% %q", got.Status, got.Percent, got.Reason)
		}
		time.Sleep(20 * time.Millisecond)
		got = getJSON[media.View](t, h2, "/api/v1/media/"+v.ID)
	}
	if got.File == nil || got.File.DurationMS < 19900 {
		t.Errorf("transcoded after restart: %+v", got.File)
	}
}
