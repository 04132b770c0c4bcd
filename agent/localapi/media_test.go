package localapi_test

import (
	"bytes"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/protocol"
)

// TestMediaAndPlays: GET /v1/notices lists the playlists and, once held,
// the media files with paths the kiosk can read; POST /v1/plays counts
// valid play events (204) and refuses others (400).
func TestMediaAndPlays(t *testing.T) {
	_, hub := newHub(t)
	dir := t.TempDir()
	hub.EnrolDir(t, dir, kiosk, groups...)
	a, c, _ := startAgentIn(t, dir, agent.Config{MediaStagger: -1, MinFreeDisk: -1})
	data := bytes.Repeat([]byte("海报"), protocol.MinChunkSize)
	ref := hub.AddMedia(data, protocol.MediaImage, protocol.MinChunkSize)

	raw, err := os.ReadFile("../../protocol/testdata/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, err := protocol.DecodeDesired(raw)
	if err != nil {
		t.Fatal(err)
	}
	doc.Kiosk, doc.Version, doc.Media = kiosk, 1, []protocol.MediaRef{ref}
	doc.Playlists = []protocol.Playlist{{ID: "pl-1", Name: "宣传", ValidFrom: time.Now().Add(-time.Minute),
		Items:   []protocol.PlaylistItem{{Kind: protocol.ItemImage, Media: ref.SHA256, DurationMS: 5000}},
		Targets: []protocol.Target{{Level: "community", ID: "sangcheng"}}}}
	hub.Desired(kiosk, doc)

	var n protocol.LocalNotices
	hubtest.Eventually(t, 10*time.Second, "notices list the held file", func() bool {
		code, body := do(t, c, http.MethodGet, protocol.LocalPathNotices, "")
		n = decode[protocol.LocalNotices](t, body)
		return code == http.StatusOK && len(n.Media) == 1
	})
	if len(n.Playlists) != 1 || n.Playlists[0].ID != "pl-1" {
		t.Fatalf("playlists = %+v", n.Playlists)
	}
	if got, err := os.ReadFile(n.Media[0].Path); err != nil || !bytes.Equal(got, data) || n.Media[0].SHA256 != ref.SHA256 {
		t.Fatalf("media %+v: %v", n.Media[0], err)
	}

	at := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour + time.Minute).Format(time.RFC3339) // the last hour
	tests := []struct {
		name string
		body string
		want int
	}{
		{"image shown", fmt.Sprintf(`{"kind":"image","media":%q,"at":%q}`, ref.SHA256, at), http.StatusNoContent},
		{"notice shown", fmt.Sprintf(`{"kind":"notice","notice":"n-1","at":%q}`, at), http.StatusNoContent},
		{"bad sha", `{"kind":"image","media":"abc","at":"2026-11-26T10:00:00Z"}`, http.StatusBadRequest},
		{"unknown field", `{"kind":"notice","notice":"n-1","at":"2026-11-26T10:00:00Z","x":1}`, http.StatusBadRequest},
		{"too large", `{"kind":"notice","notice":"` + strings.Repeat("n", 2000) + `"}`, http.StatusRequestEntityTooLarge},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			resp, err := c.Post("http://agent"+protocol.LocalPathPlays, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if err := resp.Body.Close(); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("POST plays = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if got, err := a.FlushPlays(time.Now()); err != nil || got != 1 {
		t.Fatalf("FlushPlays = %d, %v; want one record of the two plays", got, err)
	}
	_, ps := hub.Plays(kiosk, 10*time.Second)
	if len(ps.Items) != 2 {
		t.Fatalf("play stats %+v, want 2 items", ps)
	}

	// The kiosk cannot play the held file: it reports it; the agent's
	// media status says so.
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{"held file", fmt.Sprintf(`{"sha256":%q,"reason":"image: unknown format","at":%q}`, ref.SHA256, at), http.StatusNoContent},
		{"file not held", fmt.Sprintf(`{"sha256":%q,"reason":"x","at":%q}`, strings.Repeat("cd", 32), at), http.StatusBadRequest},
		{"no reason", fmt.Sprintf(`{"sha256":%q,"at":%q}`, ref.SHA256, at), http.StatusBadRequest},
		{"too large", `{"sha256":"` + strings.Repeat("a", 2000) + `"}`, http.StatusRequestEntityTooLarge},
	} {
		t.Run("media error: "+tc.name, func(t *testing.T) {
			resp, err := c.Post("http://agent"+protocol.LocalPathMediaErrors, "application/json", strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if err := resp.Body.Close(); err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want {
				t.Fatalf("POST media-errors = %d, want %d", resp.StatusCode, tc.want)
			}
		})
	}
	if files, _, _ := a.Media().Status(); len(files) != 1 || files[0].State != protocol.MediaFailed {
		t.Fatalf("media status after the kiosk's report: %+v", files)
	}
}
