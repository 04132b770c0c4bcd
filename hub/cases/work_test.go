package cases

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

func TestWorkRecords(t *testing.T) {
	var changed []string
	f := newFixture(t, Config{Changed: func(_ context.Context, c Case) { changed = append(changed, c.State) }})
	ctx := context.Background()
	leader := f.actor("leader", RoleSquadLeader, "wuliqiao")
	officer := f.actor("officer-1", RoleOfficer, "wuliqiao")
	other := f.actor("officer-2", RoleOfficer, "wuliqiao")
	partner := f.actor("partner", RolePartner, "sangcheng")
	c := f.create(t, protocol.CatOther)
	photo := store.Photo{PhotoRef: store.PhotoRef{SHA256: "aa", Width: 2, Height: 1}, JPEG: []byte{0xff, 0xd8}}
	if _, err := f.svc.AddWork(ctx, c.ID, leader, "到场", nil); !errors.Is(err, ErrForbiddenTransition) {
		t.Errorf("work on a received case: %v, want ErrForbiddenTransition", err)
	}
	if _, err := f.svc.Dispatch(ctx, c.ID, leader, "officer-1", ""); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		actor  Scope
		note   string
		photos []store.Photo
		want   error
	}{
		{"assigned officer", officer, "已到现场", []store.Photo{photo}, nil},
		{"leader", leader, "跟进", nil, nil},
		{"another officer", other, "x", nil, ErrNotInScope},
		{"partner", partner, "x", nil, ErrNotInScope},
		{"empty", officer, "", nil, ErrInvalid},
		{"too many photos", officer, "x", make([]store.Photo, MaxWorkPhotos+1), ErrInvalid},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := f.svc.AddWork(ctx, c.ID, tt.actor, tt.note, tt.photos)
			if tt.want == nil && err != nil || tt.want != nil && !errors.Is(err, tt.want) {
				t.Errorf("AddWork: %v, want %v", err, tt.want)
			}
		})
	}
	ws, err := f.svc.Work(ctx, c.ID, partner)
	if err != nil || len(ws) != 2 || len(ws[0].Photos) != 1 {
		t.Fatalf("Work: %d records, %v", len(ws), err)
	}
	if _, err := f.svc.Work(ctx, c.ID, f.actor("x", RolePartner, "ruiyi")); !errors.Is(err, ErrNotInScope) {
		t.Errorf("work seen from another community: %v", err)
	}
	if p, err := f.svc.Photo(ctx, c.ID, "aa", officer); err != nil || p.Width != 2 {
		t.Errorf("Photo: %+v %v", p.PhotoRef, err)
	}
	if _, err := f.svc.Photo(ctx, c.ID, "aa", f.actor("x", RoleDistrictAdmin, "xuhui")); !errors.Is(err, ErrNotInScope) {
		t.Errorf("photo seen from another district: %v", err)
	}
	if want := []string{"received", "dispatched", "dispatched", "dispatched"}; !slices.Equal(changed, want) {
		t.Errorf("Changed saw %v, want %v", changed, want)
	}
}

func TestAllowed(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	leader := f.actor("leader", RoleSquadLeader, "wuliqiao")
	c := f.create(t, protocol.CatOther)
	tests := []struct {
		name  string
		state State
		actor Scope
		want  []Action
	}{
		{"leader, received", StateReceived, leader, []Action{ActionDispatch, ActionClose}},
		{"district admin, received", StateReceived, f.actor("d", RoleDistrictAdmin, "huangpu"), []Action{ActionDispatch, ActionClose, ActionSupervise}},
		{"officer, dispatched", StateDispatched, f.actor("officer-1", RoleOfficer, "wuliqiao"), []Action{ActionAccept, ActionReturn}},
		{"other officer, dispatched", StateDispatched, f.actor("officer-2", RoleOfficer, "wuliqiao"), nil},
		{"partner, answered", StateAnswered, f.actor("p", RolePartner, "sangcheng"), nil},
		{"other district, received", StateReceived, f.actor("d", RoleDistrictAdmin, "xuhui"), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f.force(t, c.ID, tt.state)
			got, err := f.svc.Case(ctx, c.ID)
			if err != nil {
				t.Fatal(err)
			}
			if a := Allowed(got, tt.actor); !slices.Equal(a, tt.want) {
				t.Errorf("Allowed = %v, want %v", a, tt.want)
			}
		})
	}
}

func TestAddReportPhotos(t *testing.T) {
	f := newFixture(t, Config{})
	ctx := context.Background()
	c := f.create(t, protocol.CatOther)
	photo := store.Photo{PhotoRef: store.PhotoRef{SHA256: "bb", Width: 2, Height: 1}, JPEG: []byte{0xff, 0xd8}}
	if _, err := f.svc.AddReportPhotos(ctx, c.ID, nil); !errors.Is(err, ErrInvalid) {
		t.Errorf("no photos: %v, want ErrInvalid", err)
	}
	w, err := f.svc.AddReportPhotos(ctx, c.ID, []store.Photo{photo})
	if err != nil || w.Actor != RoleResident || len(w.Photos) != 1 {
		t.Fatalf("AddReportPhotos: %+v %v", w, err)
	}
	if p, err := f.svc.Photo(ctx, c.ID, "bb", f.actor("p", RolePartner, "sangcheng")); err != nil || p.Height != 1 {
		t.Errorf("photo: %+v %v", p.PhotoRef, err)
	}
}
