// Package audittest gives the tests of the hub's packages their Audit hook
// as the hub wires it: a real accounts service's AuditChange on the test's
// own SQLite store, so what a test finds in the audit log is what the hub
// would write. It is test support, used only from _test.go files.
package audittest

import (
	"context"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
)

// Func returns the Audit hook of hub/api, hub/media, hub/playlists,
// hub/enrol and hub/open311 writing to st (accounts.Service.AuditChange).
func Func(t testing.TB, st *store.SQLite, tree *orgtree.Tree) func(ctx context.Context, action, object string, before, after any) {
	t.Helper()
	acc, err := accounts.New(accounts.Config{Store: st, Tree: tree, Secret: []byte(strings.Repeat("s", 32))})
	if err != nil {
		t.Fatalf("audittest: %v", err)
	}
	return acc.AuditChange
}
