package open311

import (
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/store"
)

// auditTo is Config.Audit as hub/hub.go wires it, writing straight to the
// store's audit log: the actor is the request's (jsonhttp.Actor).
func auditTo(t *testing.T, st *store.SQLite) func(ctx context.Context, action, object string, before, after any) {
	return func(ctx context.Context, action, object string, before, after any) {
		rec := store.AuditRecord{At: time.Now(), Actor: jsonhttp.Actor(ctx), Action: action, Object: object}
		for _, v := range []struct {
			dst *string
			val any
		}{{&rec.Before, before}, {&rec.After, after}} {
			if v.val == nil {
				continue
			}
			b, err := json.Marshal(v.val)
			if err != nil {
				t.Errorf("audit %s: %v", action, err)
				return
			}
			*v.dst = string(b)
		}
		if err := st.InsertAudit(ctx, rec); err != nil {
			t.Errorf("audit %s: %v", action, err)
		}
	}
}
