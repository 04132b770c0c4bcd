package fleet

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/protocol"
)

func TestPublishCaseBoard(t *testing.T) {
	f, _, b, e := setup(t)
	now := time.Now().UTC().Truncate(time.Second)
	board := protocol.CaseBoard{Kiosk: "k-a", Version: 3, Cases: []protocol.CaseStatus{
		{Ticket: "261126-K-A-0002", State: protocol.CaseAnswered, Category: protocol.CatFacade, Kind: protocol.KindComplaint,
			Answer: "已责令整改", AnsweredAt: now, Rateable: true, Updated: now},
		{Ticket: "261126-K-A-0001", State: protocol.CaseReceived, Category: protocol.CatOther, Kind: protocol.KindHelp, Updated: now},
	}}
	if err := f.PublishCaseBoard(context.Background(), board); err != nil {
		t.Fatal(err)
	}
	bad := board
	bad.Version = 0
	if err := f.PublishCaseBoard(context.Background(), bad); !errors.Is(err, protocol.ErrInvalid) {
		t.Errorf("invalid board: %v, want ErrInvalid", err)
	}
	got := make(chan protocol.CaseBoard, 1)
	c := client(t, b.URL(), e)
	tok := c.Subscribe(protocol.DownTopic("k-a", protocol.ChannelCases).String(), 1, func(_ paho.Client, m paho.Message) {
		verify(t, e, m.Payload())
		_, cb, err := protocol.DecodeCaseBoard(m.Payload())
		if err != nil || !m.Retained() {
			t.Errorf("cases: retained=%v err=%v", m.Retained(), err)
		}
		got <- cb
	})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case g := <-got:
		if g.Version != 3 || len(g.Cases) != 2 || !g.Cases[0].Rateable || g.Cases[0].Answer != "已责令整改" {
			t.Errorf("got %+v", g)
		}
	case <-time.After(waitFor):
		t.Fatal("no retained case board")
	}
}

// TestPublishCaseBoardTooLarge: a board over the size limit loses its
// oldest entries and still goes out.
func TestPublishCaseBoardTooLarge(t *testing.T) {
	f, _, b, e := setup(t)
	now := time.Now().UTC()
	board := protocol.CaseBoard{Kiosk: "k-a", Version: 1}
	for i := range protocol.MaxBoardCases {
		board.Cases = append(board.Cases, protocol.CaseStatus{Ticket: fmt.Sprintf("261126-K-A-%04d", protocol.MaxBoardCases-i),
			State: protocol.CaseClosed, Category: protocol.CatOther, Kind: protocol.KindHelp,
			Answer: strings.Repeat("\u2028", protocol.MaxAnswer), Updated: now}) // 6 bytes each on the wire
	}
	if err := f.PublishCaseBoard(context.Background(), board); err != nil {
		t.Fatal(err)
	}
	got := make(chan protocol.CaseBoard, 1)
	c := client(t, b.URL(), e)
	if tok := c.Subscribe(protocol.DownTopic("k-a", protocol.ChannelCases).String(), 1, func(_ paho.Client, m paho.Message) {
		if _, cb, err := protocol.DecodeCaseBoard(m.Payload()); err == nil {
			got <- cb
		}
	}); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	select {
	case g := <-got:
		if len(g.Cases) == 0 || len(g.Cases) >= protocol.MaxBoardCases || g.Cases[0].Ticket != board.Cases[0].Ticket {
			t.Errorf("published %d cases starting %s; want the newest, fewer than %d", len(g.Cases), g.Cases[0].Ticket, protocol.MaxBoardCases)
		}
	case <-time.After(waitFor):
		t.Fatal("no case board")
	}
}

// TestRatingReceived checks each verdict of the callback becomes the right
// ack: stored, rejected with the reason, or none (the resend is then
// stored), and a rating naming another kiosk is rejected without a call.
func TestRatingReceived(t *testing.T) {
	type call struct {
		id string
		r  protocol.CaseRating
	}
	calls := make(chan call, 10)
	verdicts := make(chan error, 10)
	_, _, b, e := setup(t, func(c *Config) {
		c.RatingReceived = func(_ context.Context, id string, r protocol.CaseRating, _ time.Time) error {
			calls <- call{id, r}
			return <-verdicts
		}
	})
	c := client(t, b.URL(), e)
	acks := make(chan protocol.Ack, 10)
	if tok := c.Subscribe(protocol.DownTopic("k-a", protocol.ChannelAck).String(), 1, func(_ paho.Client, m paho.Message) {
		if _, a, err := protocol.DecodeAck(m.Payload()); err == nil {
			acks <- a
		}
	}); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatal(tok.Error())
	}
	send := func(r protocol.CaseRating) string {
		t.Helper()
		p, err := protocol.Encode(protocol.TypeRating, time.Now(), r)
		if err != nil {
			t.Fatal(err)
		}
		env, err := protocol.DecodeEnvelope(p)
		if err != nil {
			t.Fatal(err)
		}
		if tok := c.Publish(protocol.UpTopic("k-a", protocol.ChannelRating).String(), 1, false, p); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
			t.Fatal(tok.Error())
		}
		return env.ID
	}
	nextAck := func() protocol.Ack {
		t.Helper()
		select {
		case a := <-acks:
			return a
		case <-time.After(waitFor):
			t.Fatal("no ack")
		}
		return protocol.Ack{}
	}
	r := protocol.CaseRating{Kiosk: "k-a", Ticket: "261126-K-A-0002", Rating: protocol.RatingSatisfied, At: time.Now().UTC()}

	for _, tc := range []struct {
		name    string
		verdict error
		status  protocol.AckStatus
		reason  string
	}{
		{"accepted", nil, protocol.AckStored, ""},
		{"not rateable", fmt.Errorf("case 261126-K-A-0002 is closed: %w", ErrRejected), protocol.AckRejected, "is closed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			verdicts <- tc.verdict
			id := send(r)
			if got := <-calls; got.id != id || got.r != r {
				t.Errorf("callback got %+v, want record %s %+v", got, id, r)
			}
			a := nextAck()
			if a.Ref != id || a.Status != tc.status || !strings.Contains(a.Reason, tc.reason) {
				t.Errorf("ack %+v, want %s of %s with reason containing %q", a, tc.status, id, tc.reason)
			}
		})
	}
	t.Run("transient failure then resend", func(t *testing.T) {
		verdicts <- errors.New("database busy")
		verdicts <- nil
		p, err := protocol.Encode(protocol.TypeRating, time.Now(), r)
		if err != nil {
			t.Fatal(err)
		}
		env, err := protocol.DecodeEnvelope(p)
		if err != nil {
			t.Fatal(err)
		}
		for range 2 {
			if tok := c.Publish(protocol.UpTopic("k-a", protocol.ChannelRating).String(), 1, false, p); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
				t.Fatal(tok.Error())
			}
			<-calls
		}
		if a := nextAck(); a.Ref != env.ID || a.Status != protocol.AckStored {
			t.Errorf("first ack %+v, want stored for the resend of %s", a, env.ID)
		}
	})
	t.Run("another kiosk in the body", func(t *testing.T) {
		other := r
		other.Kiosk = "k-b"
		id := send(other)
		if a := nextAck(); a.Ref != id || a.Status != protocol.AckRejected {
			t.Errorf("ack %+v, want rejected for %s", a, id)
		}
		select {
		case got := <-calls:
			t.Errorf("callback called for a mismatched rating: %+v", got)
		default:
		}
	})
}
