package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

func slots(community string) []string {
	return map[string][]string{"sangcheng": {"k-sangcheng-01", "k-sangcheng-02"}, "ruiyi": {"k-ruiyi-01"}}[community]
}

func TestEnrol(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	now := time.Date(2026, 11, 26, 8, 0, 0, 0, time.UTC)
	claims := []Claim{
		{ID: "c-any-1", CodeHash: "h-any-1", Community: "sangcheng"},
		{ID: "c-any-2", CodeHash: "h-any-2", Community: "sangcheng"},
		{ID: "c-any-3", CodeHash: "h-any-3", Community: "sangcheng"},
		{ID: "c-slot", CodeHash: "h-slot", Community: "sangcheng", Kiosk: "k-sangcheng-01"},
		{ID: "c-old", CodeHash: "h-old", Community: "ruiyi", ExpiresAt: now},
	}
	for _, c := range claims {
		c.CreatedAt = now.Add(-time.Hour)
		if c.ExpiresAt.IsZero() {
			c.ExpiresAt = now.Add(72 * time.Hour)
		}
		if err := s.CreateClaim(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	enrol := func(hash, id string) (Device, []Device, error) {
		return s.Enrol(ctx, EnrolRequest{CodeHash: hash, Now: now, Slots: slots, Device: Device{
			ID: id, PublicKey: "pk-" + id, KeyID: "kid-" + id, HardwareID: "hw-" + id, SoftwareVersion: "1",
			MQTTSHA256: "sha-" + id, MQTTMosquitto: "$7$-" + id,
		}})
	}
	steps := []struct {
		name         string
		hash, device string
		wantErr      error
		wantKiosk    string
		wantReplaced []string
	}{
		{"first free slot", "h-any-1", "d1", nil, "k-sangcheng-01", nil},
		{"next free slot", "h-any-2", "d2", nil, "k-sangcheng-02", nil},
		{"used code", "h-any-1", "d3", ErrClaimUsed, "", nil},
		{"no free slot", "h-any-3", "d3", ErrNoSlot, "", nil},
		{"unknown code", "h-nope", "d3", ErrClaimUnknown, "", nil},
		{"expired code", "h-old", "d3", ErrClaimExpired, "", nil},
		{"replacement into a named slot", "h-slot", "d4", nil, "k-sangcheng-01", []string{"d1"}},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			before, err := s.Devices(ctx)
			if err != nil {
				t.Fatal(err)
			}
			d, replaced, err := enrol(st.hash, st.device)
			if !errors.Is(err, st.wantErr) || (err == nil) != (st.wantErr == nil) {
				t.Fatalf("Enrol = %v, want %v", err, st.wantErr)
			}
			if err != nil {
				after, err := s.Devices(ctx)
				if err != nil {
					t.Fatal(err)
				}
				if len(after) != len(before) {
					t.Errorf("a refused enrolment changed the devices: %d → %d", len(before), len(after))
				}
				return
			}
			if d.Kiosk != st.wantKiosk || d.Status != DeviceEnrolled || d.Community != "sangcheng" {
				t.Errorf("device %+v, want kiosk %s enrolled", d, st.wantKiosk)
			}
			var ids []string
			for _, r := range replaced {
				ids = append(ids, r.ID)
				got, err := s.Device(ctx, r.ID)
				if err != nil || got.Status != DeviceReplaced || got.RevokedAt.IsZero() {
					t.Errorf("replaced device %s stored as %+v, %v", r.ID, got, err)
				}
			}
			if len(ids) != len(st.wantReplaced) || (len(ids) > 0 && ids[0] != st.wantReplaced[0]) {
				t.Errorf("replaced %v, want %v", ids, st.wantReplaced)
			}
		})
	}
	cs, err := s.Claims(ctx)
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]string{}
	for _, c := range cs {
		if !c.UsedAt.IsZero() {
			used[c.ID] = c.Device
		}
	}
	if len(used) != 3 || used["c-any-1"] != "d1" || used["c-slot"] != "d4" {
		t.Errorf("used claims %v", used)
	}

	r, revoked, err := s.RevokeDevice(ctx, "d2", now)
	if !revoked {
		t.Error("revoking an enrolled device reported no change")
	}
	if err != nil || r.Status != DeviceRevoked {
		t.Fatalf("revoke: %+v, %v", r, err)
	}
	if again, revoked, err := s.RevokeDevice(ctx, "d1", now.Add(time.Hour)); err != nil || again.Status != DeviceReplaced || revoked {
		t.Errorf("revoking a replaced device: %+v, %v; want it unchanged", again, err)
	}
	if _, _, err := s.RevokeDevice(ctx, "nope", now); !errors.Is(err, ErrNotFound) {
		t.Errorf("revoke unknown: %v", err)
	}
}

func TestTicketFloor(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	for i, ticket := range []string{"261126-K-SANGCHENG-01-0007", "261127-K-SANGCHENG-01-0012", "OLD-FORMAT", "261127-K-SANGCHENG-01-0003"} {
		f := feedback(ticket)
		if _, err := s.InsertFeedback(ctx, protocol.NewID(), f, time.Now().Add(time.Duration(i))); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		kiosk string
		want  uint64
	}{{"k-sangcheng-01", 13}, {"k-ruiyi-01", 1}}
	for _, tc := range tests {
		t.Run(tc.kiosk, func(t *testing.T) {
			if got, err := s.TicketFloor(ctx, tc.kiosk); err != nil || got != tc.want {
				t.Fatalf("TicketFloor = %d, %v; want %d", got, err, tc.want)
			}
		})
	}
}
