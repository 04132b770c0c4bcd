package store

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

func TestCommandsAndScreenshots(t *testing.T) {
	s, _ := openTemp(t)
	ctx := context.Background()
	t0 := time.Date(2026, 11, 28, 9, 0, 0, 0, time.UTC)
	cmd := func(action protocol.Action, at time.Time) CommandRecord {
		c := CommandRecord{ID: protocol.NewID(), Kiosk: "k1", Action: string(action), RequestedBy: "account:a",
			RequestedAt: at, ExpiresAt: at.Add(2 * time.Minute)}
		if err := s.InsertCommand(ctx, c); err != nil {
			t.Fatal(err)
		}
		return c
	}
	shot1, restart, shot2 := cmd(protocol.ActionScreenshot, t0), cmd(protocol.ActionRestartUI, t0.Add(time.Minute)), cmd(protocol.ActionScreenshot, t0.Add(2*time.Minute))
	if _, err := s.Screenshot(ctx, "k1"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Screenshot before any = %v, want ErrNotFound", err)
	}
	png := func(n byte) []byte { return append([]byte("\x89PNG\r\n\x1a\n"), n) }
	ok := func(c CommandRecord, data []byte) protocol.CommandResult {
		return protocol.CommandResult{Kiosk: "k1", Command: c.ID, Action: protocol.Action(c.Action), Status: protocol.ResultOK, At: t0,
			Screenshot: &protocol.Screenshot{Type: protocol.ImagePNG, Width: 1, Height: 1, TakenAt: t0, Data: data}}
	}
	rid := protocol.NewID()
	got, dup, err := s.FinishCommand(ctx, rid, ok(shot1, png(1)), t0.Add(time.Second))
	if err != nil || dup || got.Status != "ok" {
		t.Fatalf("FinishCommand = %+v, %v, %v", got, dup, err)
	}
	if _, dup, err := s.FinishCommand(ctx, rid, ok(shot1, png(9)), t0.Add(time.Hour)); err != nil || !dup {
		t.Fatalf("resent result: dup %v, %v", dup, err)
	}
	refused := protocol.CommandResult{Kiosk: "k1", Command: restart.ID, Action: protocol.ActionRestartUI, Status: protocol.ResultFailed, Reason: "界面未响应", At: t0}
	if _, _, err := s.FinishCommand(ctx, protocol.NewID(), refused, t0.Add(2*time.Second)); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]protocol.CommandResult{
		"unknown command":  ok(CommandRecord{ID: protocol.NewID(), Kiosk: "k1", Action: "screenshot"}, png(1)),
		"another kiosk's":  func() protocol.CommandResult { r := ok(shot2, png(1)); r.Kiosk = "k2"; return r }(),
		"another action's": {Kiosk: "k1", Command: shot2.ID, Action: protocol.ActionRestartAgent, Status: protocol.ResultOK, At: t0},
	} {
		if _, _, err := s.FinishCommand(ctx, protocol.NewID(), r, t0); !errors.Is(err, ErrNotFound) {
			t.Errorf("%s: FinishCommand = %v, want ErrNotFound", name, err)
		}
	}
	sh, err := s.Screenshot(ctx, "k1")
	if err != nil || sh.Command != shot1.ID || !bytes.Equal(sh.Data, png(1)) || !sh.ReceivedAt.Equal(t0.Add(time.Second)) {
		t.Fatalf("Screenshot = %+v, %v", sh, err)
	}
	if _, _, err := s.FinishCommand(ctx, protocol.NewID(), ok(shot2, png(2)), t0.Add(3*time.Second)); err != nil {
		t.Fatal(err)
	}
	if sh, err := s.Screenshot(ctx, "k1"); err != nil || sh.Command != shot2.ID || !bytes.Equal(sh.Data, png(2)) {
		t.Fatalf("the newer screenshot did not replace the older: %+v, %v", sh, err)
	}
	list, err := s.KioskCommands(ctx, "k1", 10)
	if err != nil || len(list) != 3 || list[0].ID != shot2.ID || list[1].Status != "failed" || list[1].Reason != "界面未响应" || list[2].Status != "ok" {
		t.Fatalf("KioskCommands = %+v, %v", list, err)
	}
	// The database refuses an image over the limit whatever the caller.
	big := ok(cmd(protocol.ActionScreenshot, t0.Add(3*time.Minute)), append(png(3), make([]byte, protocol.MaxScreenshotBytes)...))
	if _, _, err := s.FinishCommand(ctx, protocol.NewID(), big, t0); err == nil {
		t.Error("an oversized screenshot was stored")
	}
}
