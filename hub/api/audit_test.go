package api

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/store"
)

// auditLog is every audit entry, oldest first.
func auditLog(t *testing.T, st *store.SQLite) []store.AuditRecord {
	t.Helper()
	rs, err := st.AuditLog(context.Background(), "", 1000)
	if err != nil {
		t.Fatal(err)
	}
	for i, j := 0, len(rs)-1; i < j; i, j = i+1, j-1 {
		rs[i], rs[j] = rs[j], rs[i]
	}
	return rs
}

// TestNoticeAudit: notices created and withdrawn through the API are in
// the audit log with the admin token as actor and the notice before and
// after; refused requests and repeated withdrawals write nothing, and the
// token never appears.
func TestNoticeAudit(t *testing.T) {
	f := newFixture(t)
	code, b := f.do(t, "POST", "/api/v1/notices", readFile(t, "notice-law-case.json"))
	if code != http.StatusCreated {
		t.Fatalf("create: %d %s", code, b)
	}
	n := decode[Notice](t, b)
	if code, b := f.do(t, "POST", "/api/v1/notices/"+n.ID+"/withdraw", ""); code != http.StatusOK {
		t.Fatalf("withdraw: %d %s", code, b)
	}
	want := len(auditLog(t, f.store))

	refused := []struct {
		name, method, path, body, auth string
		code                           int
	}{
		{"invalid notice", "POST", "/api/v1/notices", `{"title":""}`, "Bearer " + testToken, http.StatusBadRequest},
		{"unknown target", "POST", "/api/v1/notices", strings.Replace(readFile(t, "notice-event.json"), `"id": "`, `"id": "nowhere-`, 1), "Bearer " + testToken, http.StatusBadRequest},
		{"no token", "POST", "/api/v1/notices", readFile(t, "notice-event.json"), "", http.StatusUnauthorized},
		{"wrong token", "POST", "/api/v1/notices/" + n.ID + "/withdraw", "", "Bearer wrong-token-0123456789", http.StatusUnauthorized},
		{"unknown notice", "POST", "/api/v1/notices/nope/withdraw", "", "Bearer " + testToken, http.StatusNotFound},
		{"withdrawn again", "POST", "/api/v1/notices/" + n.ID + "/withdraw", "", "Bearer " + testToken, http.StatusOK},
	}
	for _, tc := range refused {
		t.Run(tc.name, func(t *testing.T) {
			req, err := http.NewRequest(tc.method, f.srv.URL+tc.path, strings.NewReader(tc.body))
			if err != nil {
				t.Fatal(err)
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := f.srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != tc.code {
				t.Fatalf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.code)
			}
			if got := len(auditLog(t, f.store)); got != want {
				t.Errorf("%d audit entries after it, want %d", got, want)
			}
		})
	}

	log := auditLog(t, f.store)
	if len(log) != 2 {
		t.Fatalf("audit log %+v, want create and withdraw", log)
	}
	for i, w := range []struct{ action, beforeHas, afterHas string }{
		{"notice.create", "", `"status":"active"`},
		{"notice.withdraw", `"status":"active"`, `"status":"withdrawn"`},
	} {
		e := log[i]
		if e.Action != w.action || e.Actor != AdminActor || e.Object != "notice:"+n.ID {
			t.Errorf("entry %d = %s by %s on %s, want %s by %s on notice:%s", i, e.Action, e.Actor, e.Object, w.action, AdminActor, n.ID)
		}
		if (w.beforeHas == "") != (e.Before == "") || !strings.Contains(e.Before, w.beforeHas) || !strings.Contains(e.After, w.afterHas) ||
			!strings.Contains(e.After, n.Title) {
			t.Errorf("entry %d: before %s after %s", i, e.Before, e.After)
		}
		if strings.Contains(e.Before+e.After+e.Actor, testToken) {
			t.Errorf("entry %d holds the admin token", i)
		}
	}
}
