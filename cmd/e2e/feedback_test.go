package e2e

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/shequ/shequ/kiosk/agentclient"
	"github.com/shequ/shequ/protocol"
)

// TestFeedbackWhileHubDown: feedback submitted on the kiosk while the hub is
// down gets a receipt at once, and is stored exactly once after the hub comes
// back (and stays once across a further hub restart).
func TestFeedbackWhileHubDown(t *testing.T) {
	for _, b := range brokers {
		t.Run(b, func(t *testing.T) {
			e := newEnv(t, b, nil)
			socket, agentDir := filepath.Join(t.TempDir(), "agent.sock"), t.TempDir()
			e.enrol(demoKiosk, agentDir)
			ag := e.startAgent(agentDir, socket)
			waitFor(t, 15*time.Second, "agent to connect", func() (bool, error) { return ag.Status().Connected, nil })

			e.stop()
			if b == "mochi" { // the embedded broker went down with the hub
				waitFor(t, 15*time.Second, "agent to notice the broker is gone", func() (bool, error) { return !ag.Status().Connected, nil })
			}

			// The kiosk submits through the local API, as cmd/kiosk does.
			client := agentclient.New(socket)
			const n = 20
			receipts := map[string]protocol.FeedbackReceipt{}
			for i := range n {
				ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
				r, err := client.SubmitFeedback(ctx, sampleFeedback(string(rune('0'+i%10))+"01"))
				cancel()
				if err != nil {
					t.Fatalf("submit %d while hub is down: %v", i, err)
				}
				if r.Ticket == "" || r.ID == "" {
					t.Fatalf("receipt %d lacks ticket or id: %+v", i, r)
				}
				receipts[r.ID] = r
			}
			if len(receipts) != n {
				t.Fatalf("got %d distinct receipts, want %d", len(receipts), n)
			}
			if got := ag.Status().OutboxDepth; got != n {
				t.Fatalf("outbox depth while hub down = %d, want %d", got, n)
			}

			e.start()
			waitFor(t, 30*time.Second, "outbox to drain", func() (bool, error) { return ag.Status().OutboxDepth == 0, nil })
			assertFeedbackOnce(t, e.api().feedback(), receipts)

			// A further restart must not duplicate anything.
			e.stop()
			e.start()
			assertFeedbackOnce(t, e.api().feedback(), receipts)
		})
	}
}

// assertFeedbackOnce checks that the hub holds exactly the records of receipts.
func assertFeedbackOnce(t *testing.T, rows []feedbackRow, receipts map[string]protocol.FeedbackReceipt) {
	t.Helper()
	seen := map[string]int{}
	for _, r := range rows {
		seen[r.ID]++
		want, ok := receipts[r.ID]
		if !ok {
			t.Errorf("hub holds unexpected record %s (%s)", r.ID, r.Ticket)
			continue
		}
		if r.Ticket != want.Ticket {
			t.Errorf("record %s has ticket %s at the hub, receipt said %s", r.ID, r.Ticket, want.Ticket)
		}
	}
	for id, r := range receipts {
		if seen[id] != 1 {
			t.Errorf("record %s (ticket %s) stored %d times, want exactly once", id, r.Ticket, seen[id])
		}
	}
	if len(rows) != len(receipts) {
		t.Errorf("hub holds %d records, want %d", len(rows), len(receipts))
	}
}
