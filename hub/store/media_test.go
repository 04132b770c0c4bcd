package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

func TestPlaysAndDeliveries(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	hour := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	sha := strings.Repeat("a", 64)
	p := protocol.PlayStats{Kiosk: "k-1", Hour: hour, Items: []protocol.PlayCount{
		{Kind: protocol.ItemNotice, Notice: "n-1", Count: 2, Last: hour.Add(time.Minute)},
		{Kind: protocol.ItemVideo, Media: sha, Count: 5, Last: hour.Add(2 * time.Minute)},
	}}
	for i, want := range []bool{false, true} {
		dup, err := s.InsertPlays(ctx, "r-1", p, hour.Add(time.Hour))
		if err != nil || dup != want {
			t.Fatalf("insert %d: dup=%v err=%v, want dup=%v", i, dup, err, want)
		}
	}
	p.Hour = hour.Add(time.Hour)
	if _, err := s.InsertPlays(ctx, "r-2", p, hour.Add(2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, kind, ref string
		count           int64
		last            time.Time
	}{
		{"notice", RefNotice, "n-1", 4, hour.Add(time.Minute)},
		{"media", RefMedia, sha, 10, hour.Add(2 * time.Minute)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := s.PlayTotals(ctx, tc.kind, tc.ref)
			if err != nil {
				t.Fatal(err)
			}
			if g := got["k-1"]; len(got) != 1 || g.Count != tc.count || !g.Last.Equal(tc.last) {
				t.Errorf("totals %+v, want %d last %v", got, tc.count, tc.last)
			}
		})
	}

	refs := []DeliveryRef{{RefNotice, "n-1"}, {RefMedia, sha}}
	if err := s.RecordDelivery(ctx, "k-1", 3, refs, hour); err != nil {
		t.Fatal(err)
	}
	if err := s.RecordDelivery(ctx, "k-1", 5, refs, hour.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	d, err := s.Deliveries(ctx, RefMedia, sha)
	if err != nil || d["k-1"].Version != 3 || !d["k-1"].PublishedAt.Equal(hour) {
		t.Errorf("deliveries %+v %v: want the first version, 3", d, err)
	}
}

func TestMediaRecords(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Date(2026, 7, 1, 10, 0, 0, 0, time.UTC)
	m := MediaRecord{ID: "m-1", OrigSHA256: strings.Repeat("b", 64), OrigSize: 10, Kind: protocol.MediaVideo,
		Status: MediaQueued, CreatedAt: now, UpdatedAt: now}
	if err := s.CreateMedia(ctx, m); err != nil {
		t.Fatal(err)
	}
	if jobs, err := s.MediaJobs(ctx); err != nil || len(jobs) != 1 {
		t.Fatalf("jobs %v %v", jobs, err)
	}
	if _, err := s.ReadyMedia(ctx, strings.Repeat("c", 64)); !errors.Is(err, ErrNotFound) {
		t.Errorf("ReadyMedia before ready: %v", err)
	}
	m.Status, m.SHA256, m.Size, m.Percent = MediaReady, strings.Repeat("c", 64), 7, 100
	if err := s.UpdateMedia(ctx, m); err != nil {
		t.Fatal(err)
	}
	got, err := s.ReadyMedia(ctx, m.SHA256)
	if err != nil || got.ID != "m-1" || got.Ref() != (protocol.MediaRef{SHA256: m.SHA256, Kind: protocol.MediaVideo, Size: 7}) {
		t.Errorf("ReadyMedia: %+v %v", got, err)
	}
	if jobs, err := s.MediaJobs(ctx); err != nil || len(jobs) != 0 {
		t.Errorf("jobs after ready: %v %v", jobs, err)
	}
	if err := s.UpdateMedia(ctx, MediaRecord{ID: "none"}); !errors.Is(err, ErrNotFound) {
		t.Errorf("update of a missing record: %v", err)
	}
}
