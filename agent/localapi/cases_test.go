package localapi_test

import (
	"crypto/ed25519"
	"errors"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

const ticket = "261126-K-SANGCHENG-01-0007"

func board(version int64, cases ...protocol.CaseStatus) protocol.CaseBoard {
	return protocol.CaseBoard{Kiosk: kiosk, Version: version, Cases: cases}
}

func answered(ticket string) protocol.CaseStatus {
	now := time.Now().UTC().Truncate(time.Second)
	return protocol.CaseStatus{Ticket: ticket, State: protocol.CaseAnswered, Category: protocol.CatFacade,
		Kind: protocol.KindComplaint, Answer: "已责令恢复原状", AnsweredAt: now, Rateable: true, Updated: now}
}

// TestCasesAndRating: the board the hub publishes is served by ticket and
// by query code, announced on the event stream; a rating is durable in
// the outbox (202), reaches the hub on the rating channel, and a second
// one is refused (409) until the hub's board says what became of it.
func TestCasesAndRating(t *testing.T) {
	_, hub := newHub(t)
	_, c, _ := startAgent(t, hub, "")
	lines, _ := sse(t, c)
	hub.Presence(kiosk, wait)

	if code, body := do(t, c, http.MethodGet, protocol.LocalCasePath("2611260007"), ""); code != http.StatusNotFound ||
		!strings.Contains(decode[protocol.ErrorResponse](t, body).Error, "未找到该查询码") {
		t.Fatalf("case before any board = %d %s, want 404", code, body)
	}
	received := protocol.CaseStatus{Ticket: "261126-K-SANGCHENG-01-0008", State: protocol.CaseReceived,
		Category: protocol.CatOther, Kind: protocol.KindHelp, Updated: time.Now().UTC()}
	hub.Cases(board(7, received, answered(ticket)))
	if ev := nextEvent(t, lines, protocol.EventCases); ev.Version != 7 {
		t.Fatalf("cases event version %d, want 7", ev.Version)
	}
	for _, key := range []string{"2611260007", ticket, strings.ToLower(ticket)} {
		code, body := do(t, c, http.MethodGet, protocol.LocalCasePath(key), "")
		got := decode[protocol.LocalCase](t, body)
		if code != http.StatusOK || got.Ticket != ticket || !got.Rateable || got.Answer != "已责令恢复原状" ||
			got.BoardVersion != 7 || got.BoardReceived.IsZero() {
			t.Fatalf("GET case %s = %d %+v", key, code, got)
		}
	}
	for _, tc := range []struct {
		name, method, path, body string
		code                     int
	}{
		{"unknown query code", http.MethodGet, protocol.LocalCasePath("2611260099"), "", http.StatusNotFound},
		{"key with a slash", http.MethodGet, protocol.LocalPathCases + "/26112/60007", "", http.StatusNotFound},
		{"rating path read", http.MethodGet, protocol.LocalRatingPath("2611260007"), "", http.StatusNotFound},
		{"bad rating", http.MethodPost, protocol.LocalRatingPath("2611260007"), `{"rating":"great"}`, http.StatusBadRequest},
		{"unknown field", http.MethodPost, protocol.LocalRatingPath("2611260007"), `{"rating":"satisfied","phone":"1"}`, http.StatusBadRequest},
		{"rate a received case", http.MethodPost, protocol.LocalRatingPath("2611260008"), `{"rating":"satisfied"}`, http.StatusConflict},
		{"rate an unknown case", http.MethodPost, protocol.LocalRatingPath("2611260099"), `{"rating":"satisfied"}`, http.StatusNotFound},
		{"post to a case", http.MethodPost, protocol.LocalCasePath("2611260007"), `{"rating":"satisfied"}`, http.StatusNotFound},
		{"delete a case", http.MethodDelete, protocol.LocalCasePath("2611260007"), "", http.StatusMethodNotAllowed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if code, body := do(t, c, tc.method, tc.path, tc.body); code != tc.code {
				t.Fatalf("%s %s = %d %s, want %d", tc.method, tc.path, code, body, tc.code)
			}
		})
	}

	code, body := do(t, c, http.MethodPost, protocol.LocalRatingPath("2611260007"), `{"rating":"basically_satisfied"}`)
	rc := decode[protocol.RatingReceipt](t, body)
	if code != http.StatusAccepted || rc.Ticket != ticket || rc.Rating != protocol.RatingBasicallySatisfied || rc.ID == "" {
		t.Fatalf("POST rating = %d %s", code, body)
	}
	if code, body := do(t, c, http.MethodPost, protocol.LocalRatingPath(ticket), `{"rating":"satisfied"}`); code != http.StatusConflict {
		t.Fatalf("second rating = %d %s, want 409", code, body)
	}
	code, body = do(t, c, http.MethodGet, protocol.LocalCasePath("2611260007"), "")
	if got := decode[protocol.LocalCase](t, body); code != 200 || got.Rateable || got.Rating != protocol.RatingBasicallySatisfied {
		t.Fatalf("case after rating = %d %+v, want rated here, not rateable", code, got)
	}
	id, r := hub.Rating(kiosk, wait)
	if id != rc.ID || r.Ticket != ticket || r.Rating != protocol.RatingBasicallySatisfied {
		t.Fatalf("hub got rating %s %+v, want %s", id, r, rc.ID)
	}
	hub.Ack(kiosk, id, protocol.AckStored, "")
	rated := answered(ticket)
	rated.State, rated.Rating, rated.Rateable = protocol.CaseRated, protocol.RatingBasicallySatisfied, false
	hub.Cases(board(8, received, rated))
	if ev := nextEvent(t, lines, protocol.EventCases); ev.Version != 8 {
		t.Fatalf("cases event version %d, want 8", ev.Version)
	}
	code, body = do(t, c, http.MethodGet, protocol.LocalCasePath("2611260007"), "")
	if got := decode[protocol.LocalCase](t, body); code != 200 || got.State != protocol.CaseRated || got.Rateable {
		t.Fatalf("case after the hub's board = %d %+v", code, got)
	}
}

// TestCheckinCode: the code is the hub's check-in URL for this kiosk and
// the current slot, signed with the device key, and verifies as the hub
// would verify it.
func TestCheckinCode(t *testing.T) {
	_, hub := newHub(t)
	dir := t.TempDir()
	hub.EnrolDir(t, dir, kiosk, groups...)
	st, err := store.Open(filepath.Join(dir, "agent.db"))
	if err != nil {
		t.Fatal(err)
	}
	key, err := st.DeviceKey()
	if err != nil {
		t.Fatal(err)
	}
	if err := st.Close(); err != nil {
		t.Fatal(err)
	}
	_, c, _ := startAgentIn(t, dir, agent.Config{BrokerURL: nowhere, HubURL: "https://hub.shequ.example"})
	before := time.Now()
	code, body := do(t, c, http.MethodGet, protocol.LocalPathCheckinCode, "")
	cc := decode[protocol.CheckinCode](t, body)
	if code != http.StatusOK || !strings.HasPrefix(cc.URL, "https://hub.shequ.example/m/checkin?") {
		t.Fatalf("GET checkin-code = %d %s", code, body)
	}
	if !cc.Expires.After(before) || cc.Expires.Sub(before) > protocol.CheckinPeriod {
		t.Errorf("expires %v, want within a period after %v", cc.Expires, before)
	}
	u, err := url.Parse(cc.URL)
	if err != nil {
		t.Fatal(err)
	}
	k, slot, sig, err := protocol.ParseCheckin(u.Query())
	if err != nil || k != kiosk {
		t.Fatalf("ParseCheckin = %q, %v", k, err)
	}
	pub := key.Public().(ed25519.PublicKey)
	if err := protocol.VerifyCheckin(pub, k, slot, sig, time.Now()); err != nil {
		t.Fatalf("VerifyCheckin: %v", err)
	}
	if err := protocol.VerifyCheckin(pub, k, slot, sig, time.Now().Add(4*time.Minute)); !errors.Is(err, protocol.ErrExpired) {
		t.Fatalf("VerifyCheckin four minutes later: %v, want ErrExpired", err)
	}
}

// TestCheckinCodeNeedsHubURL: without a hub URL there is no code to show.
func TestCheckinCodeNeedsHubURL(t *testing.T) {
	_, hub := newHub(t)
	_, c, _ := startAgent(t, hub, nowhere)
	if code, body := do(t, c, http.MethodGet, protocol.LocalPathCheckinCode, ""); code != http.StatusServiceUnavailable {
		t.Fatalf("GET checkin-code = %d %s, want 503", code, body)
	}
}
