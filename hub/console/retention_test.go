package console

import (
	"context"
	"encoding/csv"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/protocol"
)

// digits finds anything left of a phone number: a run of digits or a
// masked one.
var digits = regexp.MustCompile(`1[0-9]{2}(\*{4}|[0-9]{4})[0-9]{4}`)

// TestForgottenPhone: once retention (store.ForgetPhones) cleared the
// phones of a closed case, its page, the complainants list, the inbox
// and the CSV export show no phone for anyone, masked or whole, and
// nothing breaks.
func TestForgottenPhone(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	fb := protocol.Feedback{Ticket: "261102-K-SANGCHENG-01-0001", Kiosk: "k-sangcheng-01", Kind: protocol.KindComplaint,
		Category: protocol.CatFacade, Where: protocol.Where{Building: "5"}, Description: "外墙被改", Phone: "13800138000",
		SubmittedAt: f.clock.Now()}
	if _, err := f.st.InsertFeedback(ctx, "fb-1", fb, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	kiosk, _, err := f.cases.FromFeedback(ctx, "fb-1", fb, f.clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	hotline := f.newCase("bureau", cases.NewCase{Source: cases.SourceHotline, Community: "sangcheng", Phone: "13700137000",
		Category: protocol.CatFacade, Where: protocol.Where{Building: "5"}})
	if _, err := f.cases.Merge(ctx, kiosk.ID, []string{hotline.ID}, f.principal("squad"), ""); err != nil {
		t.Fatal(err)
	}
	if _, err := f.cases.Apply(ctx, kiosk.ID, cases.ActionClose, f.principal("squad"), "已处理"); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(181 * 24 * time.Hour)
	if n, err := f.st.ForgetPhones(ctx, f.clock.Now().Add(-180*24*time.Hour), 0); err != nil || n != 2 {
		t.Fatalf("ForgetPhones = %d, %v; want 2 (the case and the one merged into it)", n, err)
	}

	for _, user := range []string{"squad", "partner", "huangpu", "bureau"} {
		t.Run(user, func(t *testing.T) {
			c := f.login(user)
			for _, id := range []string{kiosk.ID, hotline.ID} {
				res := c.get("/cases/" + id)
				if user == "partner" && res.code == http.StatusNotFound {
					continue // a partner sees only the cases it filed
				}
				m := phoneCell.FindStringSubmatch(res.body)
				if res.code != http.StatusOK || m == nil {
					t.Fatalf("case page %s: %d, no phone cell: %.300s", id, res.code, res.body)
				}
				if m[1] != "" || digits.MatchString(res.body) {
					t.Errorf("case page %s shows a phone: cell %q, %v", id, m[1], digits.FindAllString(res.body, -1))
				}
			}
			inbox := c.get("/cases?state=closed")
			if inbox.code != http.StatusOK || digits.MatchString(inbox.body) {
				t.Errorf("inbox: %d, phones %v", inbox.code, digits.FindAllString(inbox.body, -1))
			}
		})
	}
	t.Run("complainants", func(t *testing.T) {
		res := f.login("squad").get("/cases/" + kiosk.ID)
		if !strings.Contains(res.body, "<li>") || strings.Count(res.body, " ·  · ") < 2 {
			t.Errorf("complainants list without two phoneless entries: %.2000s", res.body)
		}
	})
	t.Run("export", func(t *testing.T) {
		res := f.login("huangpu").get("/cases/export.csv")
		if res.code != http.StatusOK {
			t.Fatalf("export: %d %.300s", res.code, res.body)
		}
		rows, err := csv.NewReader(strings.NewReader(strings.TrimPrefix(res.body, "\ufeff"))).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		col := slices.Index(rows[0], "联系电话")
		if col < 0 || len(rows) != 3 {
			t.Fatalf("export: %d rows, phone column %d: %v", len(rows), col, rows)
		}
		for _, r := range rows[1:] {
			if r[col] != "" {
				t.Errorf("case %s exported phone %q, want none", r[0], r[col])
			}
		}
	})
}
