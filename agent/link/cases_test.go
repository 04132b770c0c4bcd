package link_test

import (
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/agent/link"
	"github.com/shequ/shequ/protocol"
)

const caseTicket = "261126-K-SANGCHENG-01-0007"

func caseBoard(kiosk string, version int64, rateable bool) protocol.CaseBoard {
	now := time.Now().UTC().Truncate(time.Second)
	c := protocol.CaseStatus{Ticket: caseTicket, State: protocol.CaseInProgress, Category: protocol.CatFacade,
		Kind: protocol.KindComplaint, Updated: now}
	if rateable {
		c.State, c.Answer, c.AnsweredAt, c.Rateable = protocol.CaseAnswered, "已责令恢复原状", now, true
	}
	return protocol.CaseBoard{Kiosk: kiosk, Version: version, Cases: []protocol.CaseStatus{c}}
}

func (f *fixture) boardVersion(t *testing.T) int64 {
	t.Helper()
	b, _, _, err := f.st.CaseBoard()
	if err != nil {
		t.Fatal(err)
	}
	return b.Version
}

// TestCaseBoard: a signed board is stored and reported; an older one, one
// for another kiosk, and one signed by a stranger are not; a board signed
// by the hub's next key waits for the key chain.
func TestCaseBoard(t *testing.T) {
	f := start(t, link.Config{})
	f.hub.Presence(kiosk, wait)
	f.hub.Cases(caseBoard(kiosk, 3, false))
	hubtest.Eventually(t, wait, "board 3 held", func() bool { return f.boardVersion(t) == 3 })

	f.hub.Cases(caseBoard(kiosk, 2, true)) // older: ignored
	wrong := caseBoard("k-other", 9, true)
	f.hub.PublishSigned(protocol.DownTopic(kiosk, protocol.ChannelCases), protocol.TypeCases, wrong, f.hub.Key())
	f.hub.PublishSigned(protocol.DownTopic(kiosk, protocol.ChannelCases), protocol.TypeCases, caseBoard(kiosk, 10, true), hubtest.NewKey(t))
	f.hub.PublishSigned(protocol.DownTopic(kiosk, protocol.ChannelCases), protocol.TypeCases, caseBoard(kiosk, 11, true), nil)
	f.logs.WaitFor(slog.LevelWarn, "downlink message refused", 2, wait) // another kiosk's, unsigned
	f.logs.WaitFor(slog.LevelWarn, "unknown key", 1, wait)              // held until a chain names its key
	f.hub.Cases(caseBoard(kiosk, 4, true))
	hubtest.Eventually(t, wait, "board 4 held and reported", func() bool {
		got := f.obs.boardVersions()
		return f.boardVersion(t) == 4 && len(got) > 0 && got[len(got)-1] == 4
	})
	if got := f.obs.boardVersions(); !slices.Equal(got, []int64{3, 4}) {
		t.Fatalf("boards applied %v, want [3 4]", got)
	}

	f.hub.Rotate()
	f.hub.Cases(caseBoard(kiosk, 5, true)) // signed by the next key, before its chain
	f.logs.WaitFor(slog.LevelWarn, "unknown key", 2, wait)
	if v := f.boardVersion(t); v != 4 {
		t.Fatalf("board signed by a key not yet adopted applied: version %d", v)
	}
	f.hub.PublishKeys(groups[0])
	hubtest.Eventually(t, wait, "board 5 applied after adoption", func() bool { return f.boardVersion(t) == 5 })
}

// TestRatingRecord: a rating goes out on the rating channel as an outbox
// record and leaves the outbox on the hub's ack.
func TestRatingRecord(t *testing.T) {
	f := start(t, link.Config{})
	f.hub.Presence(kiosk, wait)
	f.hub.Cases(caseBoard(kiosk, 1, true))
	hubtest.Eventually(t, wait, "board held", func() bool { return f.boardVersion(t) == 1 })
	rc, err := f.st.AddRating(kiosk, "2611260007", protocol.RatingSatisfied, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	f.link.Wake()
	id, r := f.hub.Rating(kiosk, wait)
	if id != rc.ID || r.Ticket != caseTicket || r.Rating != protocol.RatingSatisfied || r.Kiosk != kiosk {
		t.Fatalf("rating %s %+v, want record %s", id, r, rc.ID)
	}
	f.hub.Ack(kiosk, id, protocol.AckStored, "")
	hubtest.Eventually(t, wait, "outbox empty after the ack", func() bool { return f.depth(t) == 0 })
}
