package accounts_test

import (
	"context"
	"log/slog"
	"net/http"

	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
)

// The hub mounts the login and logout handlers and wraps its staff pages in
// RequireSession; handlers read the account and its CSRF token from the
// request's context.
func ExampleService_RequireSession() {
	ctx := context.Background()
	st, err := store.Open(ctx, "/var/lib/shequ/hub.db")
	if err != nil {
		return
	}
	tree, err := orgtree.Load("/etc/shequ/org.json")
	if err != nil {
		return
	}
	var secret []byte // 32 or more random bytes the hub keeps in its data directory
	svc, err := accounts.New(accounts.Config{Store: st, Tree: tree, Secret: secret, Log: slog.Default()})
	if err != nil {
		return
	}
	mux := http.NewServeMux()
	mux.Handle("POST /login", svc.LoginHandler())
	mux.Handle("POST /logout", svc.LogoutHandler())
	inbox := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a, _ := accounts.CurrentAccount(r.Context())
		if !svc.CanSee(a, r.URL.Query().Get("community")) {
			http.Error(w, "forbidden", http.StatusForbidden)
			return
		}
		// Render the inbox with accounts.CSRF(r.Context()) in each form.
	})
	mux.Handle("/cases", svc.RequireSession(accounts.RoleBureauAdmin, accounts.RoleDistrictAdmin, accounts.RoleSquadLeader)(inbox))
}
