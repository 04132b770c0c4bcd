package agent_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"reflect"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/enrol"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

const claim = "123456789012"

func desiredDoc(t *testing.T, version int64) protocol.DesiredState {
	t.Helper()
	data, err := os.ReadFile("../protocol/testdata/desired.json")
	if err != nil {
		t.Fatal(err)
	}
	_, doc, err := protocol.DecodeDesired(data)
	if err != nil {
		t.Fatal(err)
	}
	doc.Kiosk, doc.Version = kiosk, version
	return doc
}

// TestHappyPathOverTLS: enrol a fresh agent with a claim code and the CA
// pin (as `agent enrol` does), receive a signed notice, submit feedback,
// all over TLS.
func TestHappyPathOverTLS(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	srv := hub.StartEnrol(t, hubtest.Claim{Code: claim, Kiosk: kiosk, Groups: groups, TicketFloor: 7})
	dir := t.TempDir()
	r, err := agent.Enrol(context.Background(), agent.EnrolConfig{DataDir: dir, HubURL: srv.URL, ClaimCode: "1234-5678-9012", CAPin: b.CA.Pin, HardwareID: "hw-1"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if r.Kiosk != kiosk {
		t.Fatalf("enrolled as %q", r.Kiosk)
	}
	a := newAgent(t, agent.Config{DataDir: dir})
	start(t, a)
	if st := a.Status(); !st.Enrolled || st.Kiosk != kiosk {
		t.Fatalf("status %+v", st)
	}
	hub.Presence(kiosk, wait)
	hub.Desired(kiosk, desiredDoc(t, 3))
	hubtest.Eventually(t, wait, "signed notice held", func() bool {
		n, err := a.Notices()
		return err == nil && n.Version == 3 && len(n.Notices) > 0
	})
	rc, err := a.SubmitFeedback(request(t))
	if err != nil {
		t.Fatal(err)
	}
	if want := store.Ticket(kiosk, rc.SubmittedAt, 7); rc.Ticket != want {
		t.Errorf("first ticket %s, want %s (the ticket floor)", rc.Ticket, want)
	}
	id, _ := hub.Feedback(kiosk, wait)
	hub.Ack(kiosk, id, protocol.AckStored, "")
	hubtest.Eventually(t, wait, "outbox empty", func() bool { return a.Status().OutboxDepth == 0 })
}

// TestNotEnrolledThenEnrol: an agent without identity serves status and
// notices, refuses feedback, does not connect; Enrol starts the link
// without a restart; a second Enrol is refused.
func TestNotEnrolledThenEnrol(t *testing.T) {
	b := hubtest.StartBroker(t)
	hub := hubtest.NewHub(t, b)
	srv := hub.StartEnrol(t, hubtest.Claim{Code: claim, Kiosk: kiosk, Groups: groups})
	a := newAgent(t, agent.Config{HubURL: srv.URL, CAPin: b.CA.Pin, HardwareID: "hw-1"})
	start(t, a)
	if st := a.Status(); st.Enrolled || st.Kiosk != "" || st.Connected {
		t.Fatalf("status before enrolment %+v", st)
	}
	if _, err := a.SubmitFeedback(request(t)); !errors.Is(err, agent.ErrNotEnrolled) {
		t.Fatalf("SubmitFeedback before enrolment = %v, want ErrNotEnrolled", err)
	}
	if n, err := a.Notices(); err != nil || len(n.Notices) != 0 || n.Version != 0 {
		t.Fatalf("notices before enrolment %+v, %v", n, err)
	}
	if b.Connected(kiosk) {
		t.Fatal("an agent that is not enrolled connected to the broker")
	}
	if err := a.Enrol(context.Background(), "000000000000"); !errors.Is(err, enrol.ErrRefused) {
		t.Fatalf("Enrol with a wrong code = %v, want ErrRefused", err)
	}
	if err := a.Enrol(context.Background(), claim); err != nil {
		t.Fatal(err)
	}
	if p := hub.Presence(kiosk, wait); p.State != protocol.Online {
		t.Fatalf("presence %+v", p)
	}
	if st := a.Status(); !st.Enrolled || st.Kiosk != kiosk {
		t.Fatalf("status after enrolment %+v", st)
	}
	if err := a.Enrol(context.Background(), claim); !errors.Is(err, agent.ErrAlreadyEnrolled) {
		t.Fatalf("second Enrol = %v, want ErrAlreadyEnrolled", err)
	}
}

// TestEnrolRefusedStoresOnlyTheKey: against a server with another CA than
// pinned, or with a malformed or oversized answer, enrolment is refused and
// the database holds the device key and nothing else from the hub.
func TestEnrolRefusedStoresOnlyTheKey(t *testing.T) {
	b := hubtest.StartBroker(t)
	other := hubtest.NewCA(t)
	tests := []struct {
		name string
		ca   *hubtest.CA
		body []byte
		want error
	}{
		{"server certificate from another CA than pinned", other, []byte(`{}`), enrol.ErrUntrusted},
		{"malformed answer", b.CA, []byte(`{"kiosk":`), enrol.ErrResponse},
		{"oversized answer", b.CA, bytes.Repeat([]byte(" "), protocol.MaxEnrolResponseSize+10), enrol.ErrResponse},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			srv := tc.ca.StartTLS(t, http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				if _, err := w.Write(tc.body); err != nil {
					t.Log(err)
				}
			}))
			dir := t.TempDir()
			_, err := agent.Enrol(context.Background(), agent.EnrolConfig{DataDir: dir, HubURL: srv.URL, ClaimCode: claim, CAPin: b.CA.Pin, HardwareID: "hw"}, slog.New(slog.DiscardHandler))
			if !errors.Is(err, tc.want) {
				t.Fatalf("Enrol = %v, want %v", err, tc.want)
			}
			st, err := store.Open(filepath.Join(dir, "agent.db"))
			if err != nil {
				t.Fatal(err)
			}
			defer st.Close()
			if ok, err := st.HasDeviceKey(); err != nil || !ok {
				t.Errorf("device key: %v, %v", ok, err)
			}
			if _, ok, err := st.Identity(); err != nil || ok {
				t.Errorf("identity stored: %v, %v", ok, err)
			}
		})
	}
}

// TestInjectedContentNeverShown: content that is not the hub's, or replays
// an older state, never reaches Notices(); it is logged, the outbox is
// intact, and the agent keeps working.
func TestInjectedContentNeverShown(t *testing.T) {
	desiredTopic := protocol.DownTopic(kiosk, protocol.ChannelDesired).String()
	keysTopic := protocol.DownTopic(groups[0], protocol.ChannelKeys).String()
	tests := []struct {
		name   string
		inject func(t *testing.T, b *hubtest.Broker, hub *hubtest.Hub)
	}{
		{"notice signed by another key", func(t *testing.T, b *hubtest.Broker, _ *hubtest.Hub) {
			b.Inject(t, desiredTopic, hubtest.Sign(t, protocol.TypeDesired, desiredDoc(t, 99), hubtest.NewKey(t)), true)
		}},
		{"unsigned notice", func(t *testing.T, b *hubtest.Broker, _ *hubtest.Hub) {
			b.Inject(t, desiredTopic, hubtest.Sign(t, protocol.TypeDesired, desiredDoc(t, 99), nil), true)
		}},
		{"tampered signature", func(t *testing.T, b *hubtest.Broker, hub *hubtest.Hub) {
			data := hubtest.Sign(t, protocol.TypeDesired, desiredDoc(t, 99), hub.Key())
			var env protocol.Envelope
			if err := json.Unmarshal(data, &env); err != nil {
				t.Fatal(err)
			}
			doc := desiredDoc(t, 99)
			doc.Notices[0].Title = "假通知"
			body, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			env.Body = body
			out, err := json.Marshal(env)
			if err != nil {
				t.Fatal(err)
			}
			b.Inject(t, desiredTopic, out, true)
		}},
		{"replayed older version", func(t *testing.T, b *hubtest.Broker, hub *hubtest.Hub) {
			b.Inject(t, desiredTopic, hubtest.Sign(t, protocol.TypeDesired, desiredDoc(t, 2), hub.Key()), true)
		}},
		{"key chain not rooted in the trusted key", func(t *testing.T, b *hubtest.Broker, _ *hubtest.Hub) {
			k1, k2 := hubtest.NewKey(t), hubtest.NewKey(t)
			pub := func(k []byte) []byte { return k[32:] }
			chain := protocol.KeyChain{Links: []protocol.KeyLink{
				{Serial: 1, Key: protocol.EncodeKey(pub(k1)), KID: protocol.KeyID(pub(k1))},
				protocol.NewKeyLink(2, pub(k2), k1),
			}}
			b.Inject(t, keysTopic, hubtest.Sign(t, protocol.TypeKeys, chain, k2), true)
			b.Inject(t, desiredTopic, hubtest.Sign(t, protocol.TypeDesired, desiredDoc(t, 99), k2), true)
		}},
		{"oversized payload", func(t *testing.T, b *hubtest.Broker, _ *hubtest.Hub) {
			b.Inject(t, desiredTopic, bytes.Repeat([]byte("{"), protocol.MaxDesiredSize+1), false)
		}},
		{"malformed payload", func(t *testing.T, b *hubtest.Broker, _ *hubtest.Hub) {
			b.Inject(t, desiredTopic, []byte("\x00\xff not json"), false)
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			b := hubtest.StartBroker(t)
			hub := hubtest.NewHub(t, b)
			logs := hubtest.NewLogs(t)
			a, err := agent.New(agent.Config{DataDir: enrolledDir(t, hub), ResendAfter: time.Hour, ReconnectMin: 10 * time.Millisecond, ReconnectMax: 50 * time.Millisecond}, logs.Logger())
			if err != nil {
				t.Fatal(err)
			}
			start(t, a)
			hub.Presence(kiosk, wait)
			hub.Desired(kiosk, desiredDoc(t, 5))
			hubtest.Eventually(t, wait, "version 5 held", func() bool { return a.Status().ContentVersion == 5 })
			if _, err := a.SubmitFeedback(request(t)); err != nil {
				t.Fatal(err)
			}
			before, err := a.Notices()
			if err != nil {
				t.Fatal(err)
			}

			tc.inject(t, b, hub)
			logs.WaitFor(slog.LevelWarn, "", 1, wait)

			after, err := a.Notices()
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(before, after) {
				t.Fatalf("notices changed by the attack:\nbefore %+v\nafter  %+v", before, after)
			}
			if st := a.Status(); st.OutboxDepth != 1 || st.ContentVersion != 5 {
				t.Fatalf("status after the attack %+v", st)
			}
			for _, r := range logs.Records(slog.LevelWarn, "") {
				if r.Attrs["reason"] == "" {
					t.Errorf("warning without a reason: %v", r)
				}
			}
			hub.Desired(kiosk, desiredDoc(t, 6))
			hubtest.Eventually(t, wait, "agent still applies the hub's updates", func() bool { return a.Status().ContentVersion == 6 })
		})
	}
}
