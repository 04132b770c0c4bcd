package hub

import (
	"context"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/enrol"
	"github.com/shequ/shequ/hub/open311"
	"github.com/shequ/shequ/hub/playlists"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// postJSON calls the staff API with the admin token, wants code and
// decodes the reply into a T.
func postJSON[T any](t *testing.T, h *Hub, path, body string, code int) T {
	t.Helper()
	got, b := call(t, h, "POST", path, body)
	if got != code {
		t.Fatalf("POST %s: %d %s, want %d", path, got, b, code)
	}
	var v T
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("POST %s: %v: %s", path, err, b)
	}
	return v
}

// TestAPIChangesAudited: every change made through the staff API with the
// admin token is in the audit log once, as made by "admin-token", with no
// secret (admin token, claim code, device password, Open311 key) in it;
// refused requests add nothing.
func TestAPIChangesAudited(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	st, ok := h.store.(*store.SQLite)
	if !ok {
		t.Fatalf("store is a %T", h.store)
	}
	ctx := context.Background()
	log := func() []store.AuditRecord {
		t.Helper()
		rs, err := st.AuditLog(ctx, "", 1000)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}
	if n := len(log()); n != 0 {
		t.Fatalf("%d audit entries before any change", n)
	}

	// Refused requests.
	if code, _ := call(t, h, "POST", "/api/v1/notices", `{"title":"x"}`); code != http.StatusBadRequest {
		t.Fatalf("bad notice: %d", code)
	}
	if code, _ := call(t, h, "POST", "/api/v1/claims", `{"community":"nowhere"}`); code != http.StatusBadRequest {
		t.Fatalf("bad claim: %d", code)
	}
	if code, _ := upload(t, h, []byte("text, not an image\n"), "a.png", h.AdminToken(), false); code != http.StatusUnsupportedMediaType {
		t.Fatalf("text upload: %d", code)
	}
	if code, _ := upload(t, h, testPNG(t), "a.png", "wrong-token-0123456789", false); code != http.StatusUnauthorized {
		t.Fatalf("upload with a wrong token: %d", code)
	}
	if n := len(log()); n != 0 {
		t.Fatalf("%d audit entries after refused requests", n)
	}

	n := postJSON[api.Notice](t, h, "/api/v1/notices", `{"title":"开放日","body":"欢迎居民参加。","category":"event",
		"priority":"normal","targets":[{"level":"community","id":"sangcheng"}]}`, http.StatusCreated)
	m := uploadOK(t, h, testPNG(t), "宣传图.png")
	p := postJSON[playlists.View](t, h, "/api/v1/playlists", `{"name":"宣传","items":[{"kind":"image","media":"`+m.ID+
		`","duration_ms":8000}],"targets":[{"level":"community","id":"sangcheng"}]}`, http.StatusCreated)
	claim := createClaim(t, h, "sangcheng", "", "")
	cred := enrolDevice(t, h, "k-ruiyi-01")
	devs := getJSON[struct{ Devices []enrol.Device }](t, h, "/api/v1/devices")
	if len(devs.Devices) != 1 {
		t.Fatalf("devices %+v", devs)
	}
	dev := devs.Devices[0]
	key := postJSON[open311.KeyCreated](t, h, "/api/v1/open311/keys", `{"name":"12345","nodes":["huangpu"]}`, http.StatusCreated)
	_, oldKID, _ := h.keys.Current()
	rot := postJSON[RotateResult](t, h, "/api/v1/keys/rotate", "", http.StatusOK)
	postJSON[api.Notice](t, h, "/api/v1/notices/"+n.ID+"/withdraw", "", http.StatusOK)
	postJSON[playlists.View](t, h, "/api/v1/playlists/"+p.ID+"/withdraw", "", http.StatusOK)
	postJSON[enrol.Device](t, h, "/api/v1/devices/"+dev.ID+"/revoke", "", http.StatusOK)
	postJSON[open311.Key](t, h, "/api/v1/open311/keys/"+key.Key.ID+"/revoke", "", http.StatusOK)

	want := []struct{ action, object, after string }{
		{"notice.create", "notice:" + n.ID, "开放日"},
		{"media.upload", "media:" + m.ID, "宣传图.png"},
		{"playlist.create", "playlist:" + p.ID, "宣传"},
		{"claim.create", "claim:" + claim.ID, `"sangcheng"`},
		{"claim.create", "", `"k-ruiyi-01"`}, // enrolDevice's claim
		{"open311_key.create", "open311_key:" + key.Key.ID, `"12345"`},
		{"keys.rotate", "keys", rot.KID},
		{"notice.withdraw", "notice:" + n.ID, `"withdrawn"`},
		{"playlist.withdraw", "playlist:" + p.ID, `"withdrawn"`},
		{"device.revoke", "device:" + dev.ID, `"revoked"`},
		{"open311_key.revoke", "open311_key:" + key.Key.ID, `"revoked_at"`},
	}
	got := log()
	if len(got) != len(want) {
		for _, e := range got {
			t.Logf("%s %s %s", e.Action, e.Actor, e.Object)
		}
		t.Fatalf("%d audit entries, want %d", len(got), len(want))
	}
	secrets := map[string]string{"admin token": h.AdminToken(), "claim code": protocol.NormalizeClaimCode(claim.Code),
		"formatted claim code": claim.Code, "device password": cred.MQTTPassword, "Open311 key": key.APIKey}
	for i, w := range want {
		e := got[len(got)-1-i] // the log is newest first
		if e.Action != w.action || e.Actor != api.AdminActor || (w.object != "" && e.Object != w.object) || !strings.Contains(e.After, w.after) {
			t.Errorf("entry %d = %s by %s on %s after %s; want %s by %s on %s with %s", i, e.Action, e.Actor, e.Object, e.After,
				w.action, api.AdminActor, w.object, w.after)
		}
		for name, s := range secrets {
			if strings.Contains(e.Before+e.After+e.Actor+e.Object, s) {
				t.Errorf("entry %d (%s) holds the %s", i, e.Action, name)
			}
		}
	}
	if rotated := got[len(got)-1-6]; !strings.Contains(rotated.Before, oldKID) {
		t.Errorf("key rotation before %s, want the old kid %s", rotated.Before, oldKID)
	}
}
