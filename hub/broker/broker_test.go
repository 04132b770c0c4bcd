package broker

import (
	"log/slog"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"
)

func connect(t *testing.T, url, id string) paho.Client {
	t.Helper()
	c := paho.NewClient(paho.NewClientOptions().AddBroker(url).SetClientID(id).SetAutoReconnect(false))
	if tok := c.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect %s: %v", id, tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	return c
}

func TestBrokerRoundTrip(t *testing.T) {
	b, err := Start(Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := b.Close(); err != nil {
			t.Error(err)
		}
	}()
	if strings.HasSuffix(b.Addr(), ":0") || !strings.HasPrefix(b.URL(), "tcp://127.0.0.1:") {
		t.Fatalf("Addr %q URL %q: want the actual port", b.Addr(), b.URL())
	}
	tests := []struct {
		name    string
		topic   string
		filter  string
		retain  bool
		payload string
	}{
		{"plain", "a/b", "a/b", false, "one"},
		{"shared subscription", "shequ/v1/up/k1/feedback", "$share/g/shequ/v1/up/+/feedback", false, "two"},
		{"retained before subscribe", "r/x", "r/x", true, "three"},
	}
	pub := connect(t, b.URL(), "pub")
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			sub := connect(t, b.URL(), "sub-"+strings.ReplaceAll(tc.name, " ", "-"))
			got := make(chan string, 1)
			subscribe := func() {
				tok := sub.Subscribe(tc.filter, 1, func(_ paho.Client, m paho.Message) {
					select {
					case got <- string(m.Payload()):
					default:
					}
				})
				if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
					t.Fatalf("subscribe: %v", tok.Error())
				}
			}
			if !tc.retain {
				subscribe()
			}
			if tok := pub.Publish(tc.topic, 1, tc.retain, tc.payload); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
				t.Fatalf("publish: %v", tok.Error())
			}
			if tc.retain {
				subscribe()
			}
			select {
			case p := <-got:
				if p != tc.payload {
					t.Errorf("got %q, want %q", p, tc.payload)
				}
			case <-time.After(5 * time.Second):
				t.Fatal("no message within 5s")
			}
		})
	}
}

func TestBrokerListenError(t *testing.T) {
	b, err := Start(Config{Listen: "127.0.0.1:0"}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if b2, err := Start(Config{Listen: b.Addr()}, slog.New(slog.DiscardHandler)); err == nil {
		b2.Close()
		t.Fatalf("second broker on %s started", b.Addr())
	}
}
