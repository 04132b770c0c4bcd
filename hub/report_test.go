package hub

import (
	"fmt"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/report"
	"github.com/shequ/shequ/protocol"
)

type deliveryList struct{ Kiosks []report.Delivery }

func byKiosk(ds []report.Delivery) map[string]report.Delivery {
	out := map[string]report.Delivery{}
	for _, d := range ds {
		out[d.Kiosk] = d
	}
	return out
}

func TestPlaysAndReports(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	f := setupMedia(t, h)
	w := watchDesired(t, h, "k-sangcheng-01")
	p := postPlaylist(t, h, playlistBody(fmt.Sprintf(`{"kind":"video","media":%q},{"kind":"notice","notice":%q,"duration_ms":8000}`,
		f.vid, f.notice), `{"level":"community","id":"sangcheng"}`), 201)
	doc := w.next(t, "with the playlist", func(d protocol.DesiredState) bool { return len(d.Playlists) == 1 })
	k := newKiosk(t, h, "k-sangcheng-01")

	// Before the kiosk reports: sent to both kiosks of the community, held by none.
	nd := byKiosk(getJSON[deliveryList](t, h, "/api/v1/notices/"+f.notice+"/delivery").Kiosks)
	if len(nd) != 2 || !nd["k-sangcheng-01"].Sent || nd["k-sangcheng-01"].Held || !nd["k-sangcheng-02"].Sent {
		t.Errorf("notice delivery before reports: %+v", nd)
	}
	km := getJSON[report.KioskMedia](t, h, "/api/v1/kiosks/k-sangcheng-01/media")
	if len(km.Media) != 1 || km.Media[0].SHA256 != f.vidSHA || km.Media[0].State != protocol.MediaPending {
		t.Errorf("kiosk media before reports: %+v", km)
	}

	k.publish(t, protocol.ChannelHeartbeat, encode(t, protocol.NewID(), protocol.TypeHeartbeat, protocol.Heartbeat{
		Kiosk: k.id, Epoch: 1, SoftwareVersion: "0.4.0", ContentVersion: doc.Version,
		Media:      []protocol.MediaStatus{{SHA256: f.vidSHA, State: protocol.MediaHeld, Percent: 100}},
		CacheBytes: 1 << 20, CacheQuota: 2 << 30}))
	waitKiosk(t, h, k.id, "reporting", func(a api.Kiosk) bool { return a.ContentVersion == doc.Version })

	hour := time.Now().UTC().Truncate(time.Hour).Add(-time.Hour)
	stats := protocol.PlayStats{Kiosk: k.id, Hour: hour, Items: []protocol.PlayCount{
		{Kind: protocol.ItemNotice, Notice: f.notice, Count: 3, Last: hour.Add(30 * time.Minute)},
		{Kind: protocol.ItemVideo, Media: f.vidSHA, Count: 2, Last: hour.Add(40 * time.Minute)},
	}}
	id := protocol.NewID()
	for _, want := range []protocol.AckStatus{protocol.AckStored, protocol.AckDuplicate} {
		k.publish(t, protocol.ChannelPlays, encode(t, id, protocol.TypePlays, stats))
		if a := k.ack(t); a.Ref != id || a.Status != want {
			t.Errorf("ack %+v, want %s", a, want)
		}
	}
	bad := stats
	bad.Kiosk = "k-sangcheng-02"
	badID := protocol.NewID()
	k.publish(t, protocol.ChannelPlays, encode(t, badID, protocol.TypePlays, bad))
	if a := k.ack(t); a.Ref != badID || a.Status != protocol.AckRejected {
		t.Errorf("ack of another kiosk's stats: %+v", a)
	}

	nd = byKiosk(getJSON[deliveryList](t, h, "/api/v1/notices/"+f.notice+"/delivery").Kiosks)
	if d := nd["k-sangcheng-01"]; !d.Sent || !d.Held || d.Shown != 3 || !d.Last.Equal(hour.Add(30*time.Minute)) || d.Version > doc.Version {
		t.Errorf("notice delivery on k-sangcheng-01: %+v", d)
	}
	if d := nd["k-sangcheng-02"]; !d.Sent || d.Held || d.Shown != 0 {
		t.Errorf("notice delivery on k-sangcheng-02: %+v", d)
	}
	md := byKiosk(getJSON[deliveryList](t, h, "/api/v1/media/"+f.vid+"/delivery").Kiosks)
	if d := md["k-sangcheng-01"]; len(md) != 2 || !d.Sent || !d.Held || d.Shown != 2 || d.Version != doc.Version {
		t.Errorf("media delivery: %+v", md)
	}
	km = getJSON[report.KioskMedia](t, h, "/api/v1/kiosks/k-sangcheng-01/media")
	if len(km.Media) != 1 || km.Media[0].State != protocol.MediaHeld || km.CacheBytes != 1<<20 || km.CacheQuota != 2<<30 {
		t.Errorf("kiosk media: %+v", km)
	}
	st := getJSON[struct{ Kiosks []report.PlaylistKiosk }](t, h, "/api/v1/playlists/"+p.ID+"/status")
	for _, pk := range st.Kiosks {
		want := protocol.MediaPending
		if pk.Kiosk == "k-sangcheng-01" {
			want = protocol.MediaHeld
		}
		for _, it := range pk.Items {
			if it.State != want {
				t.Errorf("playlist status on %s item %d: %s, want %s", pk.Kiosk, it.Index, it.State, want)
			}
		}
	}
	if len(st.Kiosks) != 2 {
		t.Errorf("playlist status for %d kiosks", len(st.Kiosks))
	}
}
