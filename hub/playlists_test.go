package hub

import (
	"encoding/json"
	"fmt"
	"net/http"
	"testing"

	"github.com/shequ/shequ/hub/playlists"
	"github.com/shequ/shequ/protocol"
)

// mediaFixture uploads a PNG and a video and creates a notice.
type mediaFixture struct {
	img, vid string // media ids
	imgSHA   string
	vidSHA   string
	notice   string
}

func setupMedia(t *testing.T, h *Hub) mediaFixture {
	t.Helper()
	img := uploadOK(t, h, testPNG(t), "海报.png")
	vid := uploadOK(t, h, testVideo(t), "宣传片.mp4")
	n := post(t, h, "/api/v1/notices", `{"title":"垃圾分类","body":"每周二","category":"publicity","priority":"normal",
		"targets":[{"level":"community","id":"sangcheng"}]}`, http.StatusCreated)
	return mediaFixture{img: img.ID, vid: vid.ID, imgSHA: img.File.SHA256, vidSHA: vid.File.SHA256, notice: n.ID}
}

func postPlaylist(t *testing.T, h *Hub, body string, want int) playlists.View {
	t.Helper()
	code, b := call(t, h, "POST", "/api/v1/playlists", body)
	if code != want {
		t.Fatalf("POST playlist: %d %s, want %d", code, b, want)
	}
	var v playlists.View
	if code == http.StatusCreated {
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatal(err)
		}
	}
	return v
}

func playlistBody(items string, target string) string {
	return fmt.Sprintf(`{"name":"社区宣传","items":[%s],"targets":[%s]}`, items, target)
}

func TestPlaylists(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	f := setupMedia(t, h)
	sangcheng := `{"level":"community","id":"sangcheng"}`
	for _, tc := range []struct {
		name, items, target string
	}{
		{"unknown media", `{"kind":"image","media":"nope","duration_ms":5000}`, sangcheng},
		{"unknown sha", fmt.Sprintf(`{"kind":"image","media":"%064d","duration_ms":5000}`, 0), sangcheng},
		{"image as video", fmt.Sprintf(`{"kind":"video","media":%q}`, f.img), sangcheng},
		{"original of a video", fmt.Sprintf(`{"kind":"video","media":%q}`, getJSON[struct {
			Original struct{ SHA256 string }
		}](t, h, "/api/v1/media/"+f.vid).Original.SHA256), sangcheng},
		{"video with duration", fmt.Sprintf(`{"kind":"video","media":%q,"duration_ms":5000}`, f.vid), sangcheng},
		{"unknown notice", `{"kind":"notice","notice":"n-none","duration_ms":5000}`, sangcheng},
		{"unknown target", fmt.Sprintf(`{"kind":"video","media":%q}`, f.vid), `{"level":"community","id":"atlantis"}`},
		{"no items", ``, sangcheng},
	} {
		t.Run(tc.name, func(t *testing.T) {
			postPlaylist(t, h, playlistBody(tc.items, tc.target), http.StatusBadRequest)
		})
	}

	w := watchDesired(t, h, "k-sangcheng-01")
	p := postPlaylist(t, h, playlistBody(fmt.Sprintf(`{"kind":"video","media":%q},{"kind":"image","media":%q,"duration_ms":5000},
		{"kind":"notice","notice":%q,"duration_ms":8000}`, f.vid, f.imgSHA, f.notice), sangcheng), http.StatusCreated)
	if p.Status != playlists.StatusActive || p.Items[0].Media != f.vidSHA || p.Items[1].Media != f.imgSHA {
		t.Errorf("created: %+v", p)
	}
	d := w.next(t, "with the playlist", func(d protocol.DesiredState) bool { return len(d.Playlists) == 1 })
	if d.Playlists[0].ID != p.ID || len(d.Media) != 2 || d.Media[0].SHA256 != f.vidSHA || d.Media[0].Kind != protocol.MediaVideo ||
		d.Media[1].SHA256 != f.imgSHA {
		t.Errorf("desired: %+v %+v", d.Playlists, d.Media)
	}
	if !h.References("k-sangcheng-01", f.vidSHA) || h.References("k-ruiyi-01", f.vidSHA) {
		t.Error("References does not follow the desired state")
	}
	kp := postPlaylist(t, h, playlistBody(fmt.Sprintf(`{"kind":"image","media":%q,"duration_ms":5000}`, f.img),
		`{"level":"kiosk","id":"k-sangcheng-01"}`), http.StatusCreated)
	d = w.next(t, "with two playlists", func(d protocol.DesiredState) bool { return len(d.Playlists) == 2 })
	if d.Playlists[0].ID != kp.ID || d.Playlists[1].ID != p.ID {
		t.Errorf("precedence: %s, %s; want the kiosk's own %s first", d.Playlists[0].ID, d.Playlists[1].ID, kp.ID)
	}
	if l := getJSON[struct{ Playlists []playlists.View }](t, h, "/api/v1/playlists"); len(l.Playlists) != 2 {
		t.Errorf("list: %d playlists", len(l.Playlists))
	}
	code, b := call(t, h, "POST", "/api/v1/playlists/"+p.ID+"/withdraw", "")
	if code != http.StatusOK {
		t.Fatalf("withdraw: %d %s", code, b)
	}
	d = w.next(t, "without the withdrawn playlist", func(d protocol.DesiredState) bool { return len(d.Playlists) == 1 })
	if d.Playlists[0].ID != kp.ID || len(d.Media) != 1 || d.Media[0].SHA256 != f.imgSHA {
		t.Errorf("after withdrawal: %+v %+v", d.Playlists, d.Media)
	}
	if v := getJSON[playlists.View](t, h, "/api/v1/playlists/"+p.ID); v.Status != playlists.StatusWithdrawn {
		t.Errorf("status %s", v.Status)
	}
}
