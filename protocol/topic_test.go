package protocol_test

import (
	"errors"
	"testing"

	"github.com/shequ/shequ/protocol"
)

func TestTopicRoundTrip(t *testing.T) {
	cases := []struct {
		name   string
		topic  protocol.Topic
		wire   string
		qos    byte
		retain bool
	}{
		{"feedback", protocol.UpTopic("k-sangcheng-01", protocol.ChannelFeedback), "shequ/v3/up/k-sangcheng-01/feedback", 1, false},
		{"presence", protocol.UpTopic("k-sangcheng-01", protocol.ChannelPresence), "shequ/v3/up/k-sangcheng-01/presence", 1, false},
		{"heartbeat", protocol.UpTopic("k-sangcheng-01", protocol.ChannelHeartbeat), "shequ/v3/up/k-sangcheng-01/heartbeat", 0, false},
		{"desired", protocol.DownTopic("k-sangcheng-01", protocol.ChannelDesired), "shequ/v3/down/k-sangcheng-01/desired", 1, true},
		{"ack", protocol.DownTopic("k-sangcheng-01", protocol.ChannelAck), "shequ/v3/down/k-sangcheng-01/ack", 1, false},
		{"kiosk id with dots", protocol.DownTopic("pd.huamu.sc_01", protocol.ChannelAck), "shequ/v3/down/pd.huamu.sc_01/ack", 1, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if got := c.topic.String(); got != c.wire {
				t.Fatalf("String() = %q, want %q", got, c.wire)
			}
			parsed, err := protocol.ParseTopic(c.wire)
			if err != nil {
				t.Fatalf("ParseTopic(%q): %v", c.wire, err)
			}
			if parsed != c.topic {
				t.Fatalf("ParseTopic(%q) = %+v, want %+v", c.wire, parsed, c.topic)
			}
			if parsed.QoS() != c.qos || parsed.Retained() != c.retain {
				t.Errorf("QoS/retain = %d/%v, want %d/%v", parsed.QoS(), parsed.Retained(), c.qos, c.retain)
			}
		})
	}
}

func TestParseTopicRejects(t *testing.T) {
	cases := []struct{ name, topic string }{
		{"empty", ""},
		{"root only", "shequ/v3"},
		{"root with slash", "shequ/v3/"},
		{"other version", "shequ/v1/up/k1/feedback"},
		{"other root", "city/v1/up/k1/feedback"},
		{"leading slash", "/shequ/v3/up/k1/feedback"},
		{"trailing slash", "shequ/v3/up/k1/feedback/"},
		{"too few levels", "shequ/v3/up/feedback"},
		{"too many levels", "shequ/v3/up/k1/feedback/extra"},
		{"unknown direction", "shequ/v3/sideways/k1/feedback"},
		{"unknown channel", "shequ/v3/up/k1/photos"},
		{"uplink channel downward", "shequ/v3/down/k1/feedback"},
		{"downlink channel upward", "shequ/v3/up/k1/desired"},
		{"empty kiosk", "shequ/v3/up//feedback"},
		{"wildcard kiosk", "shequ/v3/up/+/feedback"},
		{"multi-level wildcard", "shequ/v3/up/#"},
		{"uppercase kiosk", "shequ/v3/up/K1/feedback"},
		{"chinese kiosk", "shequ/v3/up/桑城/feedback"},
		{"uppercase channel", "shequ/v3/up/k1/Feedback"},
		{"shared filter", protocol.SharedUpFilter("hub", protocol.ChannelFeedback)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if tp, err := protocol.ParseTopic(c.topic); !errors.Is(err, protocol.ErrTopic) {
				t.Fatalf("ParseTopic(%q) = %+v, %v; want ErrTopic", c.topic, tp, err)
			}
		})
	}
}

func TestFilters(t *testing.T) {
	if got, want := protocol.UpFilter(protocol.ChannelFeedback), "shequ/v3/up/+/feedback"; got != want {
		t.Errorf("UpFilter = %q, want %q", got, want)
	}
	if got, want := protocol.SharedUpFilter("hub", protocol.ChannelPresence), "$share/hub/shequ/v3/up/+/presence"; got != want {
		t.Errorf("SharedUpFilter = %q, want %q", got, want)
	}
}

func TestValidID(t *testing.T) {
	cases := []struct {
		id string
		ok bool
	}{
		{"k-sangcheng-01", true},
		{"huamu", true},
		{"a", true},
		{"0.9_z-", true},
		{string(make([]byte, 64)), false},
		{"", false},
		{"K1", false},
		{"k 1", false},
		{"k/1", false},
		{"k+1", false},
		{"k#", false},
		{"桑城", false},
	}
	for _, c := range cases {
		t.Run(c.id, func(t *testing.T) {
			err := protocol.ValidID(c.id)
			if c.ok && err != nil {
				t.Fatalf("ValidID(%q) = %v, want nil", c.id, err)
			}
			if !c.ok && !errors.Is(err, protocol.ErrInvalid) {
				t.Fatalf("ValidID(%q) = %v, want ErrInvalid", c.id, err)
			}
		})
	}
	long := make([]byte, 65)
	for i := range long {
		long[i] = 'a'
	}
	if err := protocol.ValidID(string(long[:64])); err != nil {
		t.Errorf("64-character id rejected: %v", err)
	}
	if err := protocol.ValidID(string(long)); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("65-character id: %v, want ErrInvalid", err)
	}
}
