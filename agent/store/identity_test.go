package store_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

func enrolment(t *testing.T) protocol.EnrolResponse {
	t.Helper()
	data, err := os.ReadFile("../../protocol/testdata/enrol_response.json")
	if err != nil {
		t.Fatal(err)
	}
	r, err := protocol.DecodeEnrolResponse(data)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func TestDeviceKeyStableAcrossReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	s, err := store.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasDeviceKey(); err != nil || ok {
		t.Fatalf("HasDeviceKey on a new file = %v, %v", ok, err)
	}
	k1, err := s.DeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = open(t, path)
	k2, err := s.DeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Equal(k2) {
		t.Fatal("device key changed across reopen")
	}
	if ok, err := s.HasDeviceKey(); err != nil || !ok {
		t.Fatalf("HasDeviceKey = %v, %v", ok, err)
	}
}

func TestSaveIdentity(t *testing.T) {
	r := enrolment(t)
	tests := []struct {
		name      string
		before    int // feedback records before enrolment
		floor     uint64
		wantNext  uint64
		withKey   bool
		wantError bool
	}{
		{"floor raises the sequence", 1, 43, 43, true, false},
		{"floor below the sequence keeps it", 5, 3, 6, true, false},
		{"zero floor", 0, 0, 1, true, false},
		{"no device key refused", 0, 43, 1, false, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := open(t, filepath.Join(t.TempDir(), "agent.db"))
			for range tc.before {
				if _, err := s.AddFeedback(r.Kiosk, feedbackRequest(t), now); err != nil {
					t.Fatal(err)
				}
			}
			if _, err := s.ApplyDesired(desired(t, 9), now); err != nil {
				t.Fatal(err)
			}
			if tc.withKey {
				if _, err := s.DeviceKey(); err != nil {
					t.Fatal(err)
				}
			}
			err := s.SaveIdentity(store.IdentityFrom(r, "https://hub.example", now), tc.floor)
			if (err != nil) != tc.wantError {
				t.Fatalf("SaveIdentity: %v, want error %v", err, tc.wantError)
			}
			id, ok, err := s.Identity()
			if err != nil || ok == tc.wantError {
				t.Fatalf("Identity = %v, %v", ok, err)
			}
			if ok && (id.Kiosk != r.Kiosk || id.MQTTPassword != r.MQTTPassword || id.KeySerial != r.KeySerial || len(id.Groups) != 4) {
				t.Fatalf("identity %+v does not match %+v", id, r)
			}
			rc, err := s.AddFeedback(r.Kiosk, feedbackRequest(t), now)
			if err != nil {
				t.Fatal(err)
			}
			if want := store.Ticket(r.Kiosk, now, tc.wantNext); rc.Ticket != want {
				t.Errorf("next ticket %s, want %s", rc.Ticket, want)
			}
			if v, err := s.DesiredVersion(); err != nil || (v == 0) != !tc.wantError {
				t.Errorf("desired version after enrolment = %d, %v", v, err)
			}
		})
	}
}

func TestIdentityStringHidesPassword(t *testing.T) {
	r := enrolment(t)
	id := store.IdentityFrom(r, "", now)
	for _, s := range []string{id.String(), id.LogValue().String()} {
		if bytes.Contains([]byte(s), []byte(r.MQTTPassword)) {
			t.Errorf("%q contains the MQTT password", s)
		}
	}
}

func TestAdoptHubKey(t *testing.T) {
	r := enrolment(t)
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AdoptHubKey(pub, 3); !errors.Is(err, store.ErrNotEnrolled) {
		t.Fatalf("AdoptHubKey before enrolment = %v, want ErrNotEnrolled", err)
	}
	if _, err := s.DeviceKey(); err != nil {
		t.Fatal(err)
	}
	if err := s.SaveIdentity(store.IdentityFrom(r, "", now), 0); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		serial int64
		want   error
	}{
		{"older serial", 1, store.ErrStaleKey},
		{"same serial", r.KeySerial, store.ErrStaleKey},
		{"newer serial", r.KeySerial + 1, nil},
		{"same again", r.KeySerial + 1, store.ErrStaleKey},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.AdoptHubKey(pub, tc.serial)
			if !errors.Is(err, tc.want) {
				t.Fatalf("AdoptHubKey(serial %d) = %v, want %v", tc.serial, err, tc.want)
			}
		})
	}
	id, _, err := s.Identity()
	if err != nil {
		t.Fatal(err)
	}
	got, err := id.TrustedKey()
	if err != nil || !got.Equal(pub) || id.HubKID != protocol.KeyID(pub) || id.KeySerial != r.KeySerial+1 {
		t.Fatalf("trusted key after adoption: %s serial %d, %v", id.HubKID, id.KeySerial, err)
	}
}

func TestV2FileMigrates(t *testing.T) {
	path := filepath.Join(t.TempDir(), "agent.db")
	copyFile(t, "testdata/v2.db", path)
	s := open(t, path)
	if v, err := s.SchemaVersion(); err != nil || v != store.SchemaVersion {
		t.Fatalf("schema %d, %v", v, err)
	}
	if _, ok, err := s.Identity(); err != nil || ok {
		t.Fatalf("v2 file enrolled = %v, %v; want not enrolled", ok, err)
	}
	if d, err := s.OutboxDepth(); err != nil || d != 2 {
		t.Fatalf("v2 outbox depth %d, %v; want 2", d, err)
	}
	doc, _, ok, err := s.Desired()
	if err != nil || !ok || doc.Version != 23 {
		t.Fatalf("v2 desired = v%d, %v, %v", doc.Version, ok, err)
	}
	rc, err := s.AddFeedback("k-sangcheng-02", feedbackRequest(t), now)
	if err != nil || rc.Ticket != "261126-K-SANGCHENG-02-0003" {
		t.Fatalf("AddFeedback on v2 file = %+v, %v; want sequence 3", rc, err)
	}
}

// TestReEnrolmentGetsAFreshKey: a device enrolling again gets a new key
// (a revoked device's key never comes back), a retry of that re-enrolment
// sends the same new key, and the old key stays the device key until the
// new identity is saved.
func TestReEnrolmentGetsAFreshKey(t *testing.T) {
	s := open(t, filepath.Join(t.TempDir(), "agent.db"))
	first, err := s.EnrolmentKey()
	if err != nil {
		t.Fatal(err)
	}
	if again, err := s.EnrolmentKey(); err != nil || !again.Equal(first) {
		t.Fatalf("a retried first enrolment changed key (%v)", err)
	}
	r := enrolment(t)
	if err := s.SaveIdentity(store.IdentityFrom(r, "https://hub.example:8443", time.Now()), 0); err != nil {
		t.Fatal(err)
	}

	next, err := s.EnrolmentKey()
	if err != nil {
		t.Fatal(err)
	}
	if next.Equal(first) {
		t.Fatal("re-enrolment reuses the enrolled key")
	}
	if retry, err := s.EnrolmentKey(); err != nil || !retry.Equal(next) {
		t.Fatalf("a retried re-enrolment changed key (%v)", err)
	}
	if cur, err := s.DeviceKey(); err != nil || !cur.Equal(first) {
		t.Fatalf("device key changed before the re-enrolment succeeded (%v)", err)
	}
	if err := s.SaveIdentity(store.IdentityFrom(r, "https://hub.example:8443", time.Now()), 0); err != nil {
		t.Fatal(err)
	}
	if cur, err := s.DeviceKey(); err != nil || !cur.Equal(next) {
		t.Fatalf("device key after re-enrolment is not the new key (%v)", err)
	}
	if again, err := s.EnrolmentKey(); err != nil || again.Equal(next) || again.Equal(first) {
		t.Fatalf("a third enrolment must get yet another key (%v)", err)
	}
}
