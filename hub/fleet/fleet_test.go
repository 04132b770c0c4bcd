package fleet

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/hub/broker"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

const waitFor = 10 * time.Second

func setup(t *testing.T) (*Fleet, *store.SQLite, *broker.Broker) {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	b, err := broker.Start(broker.Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	})
	f, err := New(Config{BrokerURL: b.URL(), Store: st}, slog.New(slog.DiscardHandler))
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
	return f, st, b
}

func client(t *testing.T, url string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID("test-" + protocol.NewID()[:8]).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestNewRequires(t *testing.T) {
	tests := []struct {
		name string
		cfg  Config
	}{
		{"no broker", Config{Store: &store.SQLite{}}},
		{"no store", Config{BrokerURL: "tcp://127.0.0.1:1"}},
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
	_, st, b := setup(t)
	c := client(t, b.URL())
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
	f, _, b := setup(t)
	d := protocol.DesiredState{Kiosk: "k-a", Version: 5, Station: protocol.Station{Name: "工作室", Community: "m"},
		Notices: []protocol.Notice{}}
	if err := f.PublishDesired(context.Background(), d); err != nil {
		t.Fatal(err)
	}
	got := make(chan protocol.DesiredState, 1)
	c := client(t, b.URL())
	tok := c.Subscribe(protocol.DownTopic("k-a", protocol.ChannelDesired).String(), 1, func(_ paho.Client, m paho.Message) {
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
