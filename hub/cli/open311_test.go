package cli

import (
	"context"
	"log/slog"
	"net/http/httptest"
	"path/filepath"
	"testing"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/open311"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
)

// TestOpen311Keys drives the key commands' client calls against the real
// admin endpoints.
func TestOpen311Keys(t *testing.T) {
	ctx := context.Background()
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	cs, err := cases.New(cases.Config{Store: st, Tree: tree})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := open311.New(open311.Config{Cases: cs, Store: st, Tree: tree})
	if err != nil {
		t.Fatal(err)
	}
	const token = "cli-test-admin-token-0123"
	a, err := api.New(api.Config{Store: st, Tree: tree, AdminToken: token}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	srv.RegisterAdmin(a)
	ts := httptest.NewServer(a)
	defer ts.Close()
	c := &Client{URL: ts.URL, Token: token, HTTP: ts.Client()}

	kc, err := c.AddOpen311Key(ctx, open311.KeyRequest{Name: "12345 热线平台", Nodes: []string{"huangpu"}, Source: "hotline"})
	if err != nil || kc.APIKey == "" || kc.Key.Source != "hotline" {
		t.Fatalf("add: %+v, %v", kc, err)
	}
	if _, err := c.AddOpen311Key(ctx, open311.KeyRequest{Name: "x", Nodes: []string{"nowhere"}}); err == nil {
		t.Error("a key for an unknown node was issued")
	}
	l, err := c.Open311Keys(ctx)
	if err != nil || len(l.Keys) != 1 || l.Keys[0].ID != kc.Key.ID {
		t.Fatalf("list: %+v, %v", l, err)
	}
	k, err := c.RevokeOpen311Key(ctx, kc.Key.ID)
	if err != nil || k.RevokedAt.IsZero() {
		t.Fatalf("revoke: %+v, %v", k, err)
	}
	if _, err := c.RevokeOpen311Key(ctx, "no-such-key"); err == nil {
		t.Error("revoking an unknown key succeeded")
	}
}
