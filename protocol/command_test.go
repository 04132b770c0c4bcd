package protocol_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/protocol"
)

var updateCommands = flag.Bool("update-commands", false, "rewrite the golden files of remote commands")

// tinyPNG is a 2×2 PNG, the screenshot of the golden files.
func tinyPNG(t *testing.T) []byte {
	t.Helper()
	img := image.NewRGBA(image.Rect(0, 0, 2, 2))
	img.Set(0, 0, color.RGBA{0xc8, 0x10, 0x2e, 0xff})
	img.Set(1, 1, color.RGBA{0xff, 0xff, 0xff, 0xff})
	var b bytes.Buffer
	if err := png.Encode(&b, img); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// commandGoldens returns the golden files of remote commands, by name.
func commandGoldens(t *testing.T) map[string][]byte {
	t.Helper()
	cmd := protocol.Command{ID: "019ac0f4-4000-7000-8000-000000000010", Kiosk: "k-sangcheng-01",
		Action: protocol.ActionScreenshot, By: "account:019ac0f4-0000-7000-8000-0000000000b7",
		Issued: fixedTime, Expires: fixedTime.Add(protocol.DefaultCommandTTL)}
	signed, err := protocol.EncodeSigned(cmd.ID, protocol.TypeCommand, fixedTime, cmd, testKey(1))
	if err != nil {
		t.Fatal(err)
	}
	var e protocol.Envelope
	if err := json.Unmarshal(signed, &e); err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{
		"command.json": fmt.Appendf(nil, "{\n  \"v\": %d,\n  \"id\": %q,\n  \"type\": %q,\n  \"ts\": %q,\n  \"body\": %s,\n  \"kid\": %q,\n  \"sig\": %q\n}\n",
			e.V, e.ID, e.Type, e.TS.UTC().Format(time.RFC3339Nano), e.Body, e.KID, e.Sig),
	}
	record := func(name, id string, r protocol.CommandResult) {
		b, err := protocol.EncodeID(id, protocol.TypeResult, r.At, r)
		if err != nil {
			t.Fatal(err)
		}
		var pretty bytes.Buffer
		if err := json.Indent(&pretty, b, "", "  "); err != nil {
			t.Fatal(err)
		}
		out[name] = append(pretty.Bytes(), '\n')
	}
	at := fixedTime.Add(3 * time.Second)
	record("result_refused.json", "019ac0f4-4000-7000-8000-000000000011", protocol.CommandResult{
		Kiosk: "k-sangcheng-01", Command: cmd.ID, Action: protocol.ActionScreenshot, Status: protocol.ResultRefused,
		Reason: "居民正在使用 / resident is using the kiosk", At: at})
	record("result_screenshot.json", "019ac0f4-4000-7000-8000-000000000012", protocol.CommandResult{
		Kiosk: "k-sangcheng-01", Command: cmd.ID, Action: protocol.ActionScreenshot, Status: protocol.ResultOK, At: at,
		Screenshot: &protocol.Screenshot{Type: protocol.ImagePNG, Width: 2, Height: 2, TakenAt: at, Data: tinyPNG(t)}})
	reply, err := json.MarshalIndent(protocol.LocalCommandReply{Action: protocol.ActionScreenshot, Status: protocol.ResultRefused,
		Reason: "居民正在使用 / resident is using the kiosk"}, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	out["local_command_reply.json"] = append(reply, '\n')
	return out
}

// TestCommandGoldenFiles checks the golden files of remote commands are
// what the encoders write; -update-commands rewrites them.
func TestCommandGoldenFiles(t *testing.T) {
	for name, want := range commandGoldens(t) {
		if *updateCommands {
			if err := os.WriteFile(filepath.Join("testdata", name), want, 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if got := readFile(t, name); !bytes.Equal(got, want) {
			t.Errorf("testdata/%s is not what the encoder writes (regenerate with -update-commands)\n got: %s\nwant: %s", name, got, want)
		}
	}
}

func TestCommandGoldenValues(t *testing.T) {
	e, c, err := protocol.DecodeCommand(readFile(t, "command.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyEnvelope(e, pub(testKey(1))); err != nil {
		t.Fatalf("command.json: %v", err)
	}
	if e.ID != c.ID || c.Action != protocol.ActionScreenshot || c.Expired(fixedTime.Add(time.Minute)) || !c.Expired(fixedTime.Add(2*time.Minute)) {
		t.Errorf("command.json decoded to %+v (envelope %s)", c, e.ID)
	}
	_, r, err := protocol.DecodeResult(readFile(t, "result_screenshot.json"))
	if err != nil {
		t.Fatal(err)
	}
	if r.Status != protocol.ResultOK || r.Screenshot == nil || r.Screenshot.Width != 2 || !bytes.Equal(r.Screenshot.Data, tinyPNG(t)) {
		t.Errorf("result_screenshot.json decoded to %+v", r)
	}
	for _, c := range []struct {
		ch     string
		dir    protocol.Direction
		retain bool
	}{{protocol.ChannelCommand, protocol.Down, false}, {protocol.ChannelResult, protocol.Up, false}} {
		tp, err := protocol.ParseTopic(protocol.Topic{Dir: c.dir, Kiosk: "k1", Channel: c.ch}.String())
		if err != nil || tp.QoS() != 1 || tp.Retained() != c.retain {
			t.Errorf("%s: %+v, %v; want QoS 1, retained %v", c.ch, tp, err, c.retain)
		}
	}
	if !protocol.IsDownlink(protocol.TypeCommand) || protocol.IsDownlink(protocol.TypeResult) {
		t.Error("commands must be signed downlink and results uplink")
	}
}

func TestCommandValidate(t *testing.T) {
	good := protocol.Command{ID: protocol.NewID(), Kiosk: "k1", Action: protocol.ActionRestartUI, By: "account:a",
		Issued: fixedTime, Expires: fixedTime.Add(time.Minute)}
	for name, f := range map[string]func(*protocol.Command){
		"id not a uuid":     func(c *protocol.Command) { c.ID = "cmd-1" },
		"unknown action":    func(c *protocol.Command) { c.Action = "reboot" },
		"no one asked":      func(c *protocol.Command) { c.By = "" },
		"expires at issued": func(c *protocol.Command) { c.Expires = c.Issued },
		"valid for a day":   func(c *protocol.Command) { c.Expires = c.Issued.Add(24 * time.Hour) },
		"no issued":         func(c *protocol.Command) { c.Issued = time.Time{} },
		"kiosk with slash":  func(c *protocol.Command) { c.Kiosk = "k1/x" },
	} {
		c := good
		f(&c)
		if err := c.Validate(); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	png := tinyPNG(t)
	shot := &protocol.Screenshot{Type: protocol.ImagePNG, Width: 2, Height: 2, TakenAt: fixedTime, Data: png}
	res := protocol.CommandResult{Kiosk: "k1", Command: good.ID, Action: protocol.ActionScreenshot, Status: protocol.ResultOK, At: fixedTime, Screenshot: shot}
	for name, f := range map[string]func(*protocol.CommandResult){
		"ok screenshot without image": func(r *protocol.CommandResult) { r.Screenshot = nil },
		"refusal with image":          func(r *protocol.CommandResult) { r.Status, r.Reason = protocol.ResultRefused, "busy" },
		"refusal without reason":      func(r *protocol.CommandResult) { r.Status, r.Screenshot = protocol.ResultRefused, nil },
		"restart with image":          func(r *protocol.CommandResult) { r.Action = protocol.ActionRestartUI },
		"jpeg type on png bytes":      func(r *protocol.CommandResult) { s := *shot; s.Type = protocol.ImageJPEG; r.Screenshot = &s },
		"gif":                         func(r *protocol.CommandResult) { s := *shot; s.Type = "image/gif"; r.Screenshot = &s },
		"image too large": func(r *protocol.CommandResult) {
			s := *shot
			s.Data = append(bytes.Clone(png), make([]byte, protocol.MaxScreenshotBytes)...)
			r.Screenshot = &s
		},
		"zero width": func(r *protocol.CommandResult) { s := *shot; s.Width = 0; r.Screenshot = &s },
		"long reason": func(r *protocol.CommandResult) {
			r.Status, r.Screenshot, r.Reason = protocol.ResultFailed, nil, strings.Repeat("长", 201)
		},
		"unknown status": func(r *protocol.CommandResult) { r.Status = "done" },
	} {
		r := res
		f(&r)
		if err := r.Validate(); !errors.Is(err, protocol.ErrInvalid) {
			t.Errorf("%s: Validate = %v, want ErrInvalid", name, err)
		}
	}
	if err := res.Validate(); err != nil {
		t.Fatal(err)
	}
	// The largest screenshot fits a result message even with the longest
	// reason-free envelope.
	big := *shot
	big.Data = append(bytes.Clone(png), make([]byte, protocol.MaxScreenshotBytes-len(png))...)
	res.Screenshot = &big
	if _, err := protocol.Encode(protocol.TypeResult, fixedTime, res); err != nil {
		t.Errorf("largest screenshot: %v", err)
	}
	body, err := json.Marshal(protocol.LocalCommandReply{Action: protocol.ActionScreenshot, Status: protocol.ResultOK, Screenshot: &big})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := protocol.DecodeLocalCommandReply(body); err != nil {
		t.Errorf("largest screenshot reply: %v", err)
	}
}
