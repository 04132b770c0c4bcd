package enrol

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/internal/audittest"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/pki"
	"github.com/shequ/shequ/hub/signing"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

const adminToken = "test-admin-token-0123456789"

// TestAudit: a claim created and a device revoked through the API are in
// the audit log with the admin token as actor, without the claim code or
// the device's password; refused requests and a repeated revocation write
// nothing.
func TestAudit(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signing.Open(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	ca, err := pki.Ensure(filepath.Join(dir, "tls"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	log := slog.New(slog.DiscardHandler)
	a, err := api.New(api.Config{Store: st, Tree: tree, AdminToken: adminToken}, log)
	if err != nil {
		t.Fatal(err)
	}
	var (
		endedMu sync.Mutex
		ended   []string
	)
	en, err := New(Config{Store: st, Tree: tree, Keys: keys, Secret: bytes.Repeat([]byte("k"), 32), CACertPEM: ca.CAPEM,
		BrokerURL: "ssl://127.0.0.1:8883", Audit: audittest.Func(t, st, tree),
		AccessChanged: func(_ context.Context, ds []store.Device) error {
			endedMu.Lock()
			defer endedMu.Unlock()
			for _, d := range ds {
				ended = append(ended, d.ID)
			}
			return nil
		}}, log)
	if err != nil {
		t.Fatal(err)
	}
	en.Register(a)
	srv := httptest.NewServer(a)
	t.Cleanup(srv.Close)
	post := func(path, body, auth string) (int, []byte) {
		t.Helper()
		req, err := http.NewRequest(http.MethodPost, srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		if auth != "" {
			req.Header.Set("Authorization", "Bearer "+auth)
		}
		resp, err := srv.Client().Do(req)
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
	entries := func() []store.AuditRecord {
		t.Helper()
		rs, err := st.AuditLog(ctx, "", 100)
		if err != nil {
			t.Fatal(err)
		}
		return rs
	}

	code, b := post("/api/v1/claims", `{"community":"sangcheng","ttl":"2h"}`, adminToken)
	if code != http.StatusCreated {
		t.Fatalf("claim: %d %s", code, b)
	}
	var claim ClaimCreated
	if err := json.Unmarshal(b, &claim); err != nil {
		t.Fatal(err)
	}
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	req, err := json.Marshal(protocol.EnrolRequest{ClaimCode: protocol.NormalizeClaimCode(claim.Code),
		PublicKey: protocol.EncodeKey(pub), HardwareID: "hw-test-1", SoftwareVersion: "1.0.0"})
	if err != nil {
		t.Fatal(err)
	}
	code, b = post(protocol.HubPathEnrol, string(req), "")
	if code != http.StatusOK {
		t.Fatalf("enrol: %d %s", code, b)
	}
	var enrolled protocol.EnrolResponse
	if err := json.Unmarshal(b, &enrolled); err != nil {
		t.Fatal(err)
	}
	ds, err := st.Devices(ctx)
	if err != nil || len(ds) != 1 {
		t.Fatalf("devices %+v, %v", ds, err)
	}
	dev := ds[0]
	if code, b := post("/api/v1/devices/"+dev.ID+"/revoke", "", adminToken); code != http.StatusOK {
		t.Fatalf("revoke: %d %s", code, b)
	}

	for _, tc := range []struct {
		name, path, body, auth string
		code                   int
	}{
		{"claim without token", "/api/v1/claims", `{"community":"sangcheng"}`, "", http.StatusUnauthorized},
		{"claim for a street", "/api/v1/claims", `{"community":"wuliqiao"}`, adminToken, http.StatusBadRequest},
		{"claim for another community's kiosk", "/api/v1/claims", `{"community":"sangcheng","kiosk":"k-ruiyi-01"}`, adminToken, http.StatusBadRequest},
		{"claim with a bad ttl", "/api/v1/claims", `{"community":"sangcheng","ttl":"1m"}`, adminToken, http.StatusBadRequest},
		{"revoke without token", "/api/v1/devices/" + dev.ID + "/revoke", "", "", http.StatusUnauthorized},
		{"revoke unknown", "/api/v1/devices/nope/revoke", "", adminToken, http.StatusNotFound},
		{"revoked again", "/api/v1/devices/" + dev.ID + "/revoke", "", adminToken, http.StatusOK},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, b := post(tc.path, tc.body, tc.auth); code != tc.code {
				t.Fatalf("POST %s: %d %s, want %d", tc.path, code, b, tc.code)
			}
			if e := entries(); len(e) != 2 {
				t.Errorf("%d audit entries, want 2", len(e))
			}
		})
	}

	e := entries() // newest first
	if len(e) != 2 {
		t.Fatalf("audit log %+v, want claim.create and device.revoke", e)
	}
	for i, w := range []struct{ action, object, before, after string }{
		{"device.revoke", "device:" + dev.ID, `"status":"enrolled"`, `"status":"revoked"`},
		{"claim.create", "claim:" + claim.ID, "", `"community":"sangcheng"`},
	} {
		if e[i].Action != w.action || e[i].Actor != api.AdminActor || e[i].Object != w.object {
			t.Errorf("entry %d = %s by %s on %s, want %s by %s on %s", i, e[i].Action, e[i].Actor, e[i].Object,
				w.action, api.AdminActor, w.object)
		}
		if (w.before == "") != (e[i].Before == "") || !strings.Contains(e[i].Before, w.before) || !strings.Contains(e[i].After, w.after) {
			t.Errorf("entry %d: before %s after %s", i, e[i].Before, e[i].After)
		}
		all := e[i].Before + e[i].After + e[i].Actor
		for name, secret := range map[string]string{"claim code": protocol.NormalizeClaimCode(claim.Code),
			"formatted claim code": claim.Code, "device password": enrolled.MQTTPassword, "admin token": adminToken} {
			if strings.Contains(all, secret) {
				t.Errorf("entry %d holds the %s", i, name)
			}
		}
	}
	endedMu.Lock()
	defer endedMu.Unlock()
	if len(ended) != 1 || ended[0] != dev.ID {
		t.Errorf("access ended for %v, want [%s]", ended, dev.ID)
	}
}
