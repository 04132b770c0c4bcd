package fleet

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/hub/access"
	"github.com/shequ/shequ/hub/broker"
	"github.com/shequ/shequ/hub/pki"
	"github.com/shequ/shequ/hub/signing"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

const waitFor = 10 * time.Second

type env struct {
	keys *signing.Keys
	tls  *tls.Config
}

func setup(t *testing.T, opts ...func(*Config)) (*Fleet, *store.SQLite, *broker.Broker, *env) {
	t.Helper()
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
	p, err := pki.Ensure(filepath.Join(dir, "tls"), nil, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	keys, err := signing.Open(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	table := access.NewTable()
	var accts []access.Account
	for _, a := range [][2]string{{access.HubUser, "hub-pw"}, {"k-a", "pw-k-a"}} {
		accts = append(accts, access.Account{Username: a[0], SHA256: access.HashSHA256(a[1]), Groups: []string{"city"}})
	}
	table.Set(accts)
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0", TLS: p.ServerTLS(), Access: table}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	cfg := Config{BrokerURL: b.URL(), TLS: p.ClientTLS(), Username: access.HubUser, Password: "hub-pw",
		Signer: keys, Store: st}
	for _, o := range opts {
		o(&cfg)
	}
	f, err := New(cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	sctx, cancel := context.WithTimeout(ctx, waitFor)
	defer cancel()
	if err := f.Start(sctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := f.Close(); err != nil {
			t.Error(err)
		}
	})
	return f, st, b, &env{keys: keys, tls: p.ClientTLS()}
}

// client connects as device k-a.
func client(t *testing.T, url string, e *env) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("k-a").SetUsername("k-a").SetPassword("pw-k-a").
		SetTLSConfig(e.tls).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

// verify checks a downlink message is signed by the hub's current key.
func verify(t *testing.T, e *env, payload []byte) {
	t.Helper()
	envl, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		t.Fatal(err)
	}
	pub, kid, _ := e.keys.Current()
	if envl.KID != kid {
		t.Errorf("kid %s, want %s", envl.KID, kid)
	}
	if err := protocol.VerifyEnvelope(envl, pub); err != nil {
		t.Errorf("%s does not verify with the hub's key: %v", envl.Type, err)
	}
}

func TestNewRequires(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no broker", Config{Store: &store.SQLite{}}},
		{"no store", Config{BrokerURL: "tcp://127.0.0.1:1"}},
		{"no signer", Config{BrokerURL: "tcp://127.0.0.1:1", Store: &store.SQLite{}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg, slog.New(slog.DiscardHandler)); err == nil {
				t.Error("New succeeded")
			}
		})
	}
}

// TestUplinkBodyMustMatchTopic checks a heartbeat whose body names another
// kiosk than its topic is dropped, while the next valid one is recorded.
func TestUplinkBodyMustMatchTopic(t *testing.T) {
	_, st, b, e := setup(t)
	c := client(t, b.URL(), e)
	hb := func(kiosk, version string) []byte {
		p, err := protocol.Encode(protocol.TypeHeartbeat, time.Now(), protocol.Heartbeat{Kiosk: kiosk, Epoch: 1, SoftwareVersion: version})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	top := protocol.UpTopic("k-a", protocol.ChannelHeartbeat).String()
	for _, p := range [][]byte{hb("k-b", "forged"), []byte("garbage"), hb("k-a", "1.0")} {
		if tok := c.Publish(top, 1, false, p); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
	}
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		k, err := st.Kiosk(context.Background(), "k-a")
		if err == nil && k.SoftwareVersion == "1.0" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("heartbeat of k-a not recorded: %+v %v", k, err)
		}
		<-tick.C
	}
	if _, err := st.Kiosk(context.Background(), "k-b"); err == nil {
		t.Error("forged heartbeat created kiosk k-b")
	}
}

func TestPublishDesiredRetained(t *testing.T) {
	f, _, b, e := setup(t)
	d := protocol.DesiredState{Kiosk: "k-a", Version: 5, Station: protocol.Station{Name: "工作室", Community: "m"},
		Notices: []protocol.Notice{}}
	if err := f.PublishDesired(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	got := make(chan protocol.DesiredState, 1)
	c := client(t, b.URL(), e)
	tok := c.Subscribe(protocol.DownTopic("k-a", protocol.ChannelDesired).String(), 1, func(_ paho.Client, m paho.Message) {
		verify(t, e, m.Payload())
		_, d, err := protocol.DecodeDesired(m.Payload())
		if err != nil || !m.Retained() {
			t.Errorf("desired: retained=%v err=%v", m.Retained(), err)
		}
		got <- d
	})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case g := <-got:
		if g.Version != 5 || g.Station.Name != "工作室" {
			t.Errorf("got %+v", g)
		}
	case <-time.After(waitFor):
		t.Fatal("no retained desired state")
	}
}

func TestPublishKeysSigned(t *testing.T) {
	f, _, b, e := setup(t)
	pub1, _, _ := e.keys.Current()
	if _, err := e.keys.Rotate(); err != nil {
		t.Fatal(err)
	}
	if err := f.PublishKeys(context.Background(), "city", e.keys.Chain()); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	c := client(t, b.URL(), e)
	tok := c.Subscribe(protocol.DownTopic("city", protocol.ChannelKeys).String(), 1, func(_ paho.Client, m paho.Message) {
		got <- m.Payload()
	})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case p := <-got:
		verify(t, e, p)
		_, chain, err := protocol.DecodeKeys(p)
		if err != nil {
			t.Fatal(err)
		}
		newest, serial, err := chain.Advance(pub1)
		if pub2, _, _ := e.keys.Current(); err != nil || serial != 2 || !newest.Equal(pub2) {
			t.Errorf("chain advances from the first key to serial %d, %v", serial, err)
		}
	case <-time.After(waitFor):
		t.Fatal("no retained key chain")
	}
}

func TestAckSigned(t *testing.T) {
	_, _, b, e := setup(t)
	c := client(t, b.URL(), e)
	acks := make(chan []byte, 1)
	if tok := c.Subscribe(protocol.DownTopic("k-a", protocol.ChannelAck).String(), 1, func(_ paho.Client, m paho.Message) {
		acks <- m.Payload()
	}); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	fb := protocol.Feedback{Ticket: "261126-K-A-0001", Kiosk: "k-a", Kind: protocol.KindHelp, Category: protocol.CatOther,
		SubmittedAt: time.Now().UTC()}
	p, err := protocol.Encode(protocol.TypeFeedback, time.Now(), fb)
	if err != nil {
		t.Fatal(err)
	}
	top := protocol.UpTopic("k-a", protocol.ChannelFeedback)
	if tok := c.Publish(top.String(), 1, false, p); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case a := <-acks:
		verify(t, e, a)
	case <-time.After(waitFor):
		t.Fatal("no ack")
	}
}

func TestDisambiguate(t *testing.T) {
	id := "019ac0f4-3b2e-7a41-9c5d-2e8f6a1b3c4d"
	long := strings.Repeat("A", protocol.MaxTicket)
	for _, tc := range []struct{ name, ticket, want string }{
		{"short", "261126-K-01-0007", "261126-K-01-0007-3C4D"},
		{"at the limit", long, long[:protocol.MaxTicket-5] + "-3C4D"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := disambiguate(tc.ticket, id)
			if got != tc.want {
				t.Fatalf("disambiguate(%q) = %q, want %q", tc.ticket, got, tc.want)
			}
			if err := protocol.ValidTicket(got); err != nil {
				t.Fatalf("disambiguated ticket is invalid: %v", err)
			}
		})
	}
}

// TestFeedbackStoredHook checks the hook runs after the record is stored
// and that its failure withholds the ack: the first ack the kiosk sees is
// the duplicate ack of its resend, after the hook succeeded.
func TestFeedbackStoredHook(t *testing.T) {
	type call struct {
		id     string
		ticket string
		stored bool
	}
	calls := make(chan call, 2)
	var st *store.SQLite
	fail := true
	_, st, b, e := setup(t, func(c *Config) {
		c.FeedbackStored = func(ctx context.Context, id string, fb protocol.Feedback, _ time.Time) error {
			recs, err := st.Feedback(ctx, fb.Kiosk, 10)
			calls <- call{id: id, ticket: fb.Ticket, stored: err == nil && len(recs) == 1 && recs[0].ID == id}
			if fail {
				fail = false
				return errors.New("case store unavailable")
			}
			return nil
		}
	})
	c := client(t, b.URL(), e)
	acks := make(chan protocol.Ack, 2)
	if tok := c.Subscribe(protocol.DownTopic("k-a", protocol.ChannelAck).String(), 1, func(_ paho.Client, m paho.Message) {
		if _, a, err := protocol.DecodeAck(m.Payload()); err == nil {
			acks <- a
		}
	}); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	fb := protocol.Feedback{Ticket: "261126-K-A-0002", Kiosk: "k-a", Kind: protocol.KindComplaint, Category: protocol.CatFacade,
		SubmittedAt: time.Now().UTC()}
	p, err := protocol.Encode(protocol.TypeFeedback, time.Now(), fb)
	if err != nil {
		t.Fatal(err)
	}
	envl, err := protocol.DecodeEnvelope(p)
	if err != nil {
		t.Fatal(err)
	}
	top := protocol.UpTopic("k-a", protocol.ChannelFeedback)
	for i := range 2 {
		if tok := c.Publish(top.String(), 1, false, p); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		select {
		case got := <-calls:
			if got.id != envl.ID || got.ticket != fb.Ticket || !got.stored {
				t.Errorf("hook call %d: %+v, want record %s already stored", i, got, envl.ID)
			}
		case <-time.After(waitFor):
			t.Fatalf("hook not called for send %d", i)
		}
	}
	select {
	case a := <-acks:
		if a.Ref != envl.ID || a.Status != protocol.AckDuplicate {
			t.Errorf("first ack %+v, want the resend's duplicate ack of %s", a, envl.ID)
		}
	case <-time.After(waitFor):
		t.Fatal("no ack")
	}
}

// TestConnection: the fleet reports itself connected once Start returned,
// and notices when the broker cuts it off (it reconnects by itself, so
// the test waits for the state to have changed since).
func TestConnection(t *testing.T) {
	before := time.Now()
	f, _, b, _ := setup(t)
	up, since := f.Connection()
	if !up || since.Before(before) {
		t.Fatalf("Connection after Start = %v since %v, want up since Start", up, since)
	}
	if !b.Disconnect(DefaultClientID) {
		t.Fatal("the broker does not know the fleet's client")
	}
	deadline := time.Now().Add(waitFor)
	for {
		if _, s := f.Connection(); s.After(since) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the fleet did not notice it was cut off")
		}
		<-time.After(5 * time.Millisecond)
	}
}
