package console

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"image"
	"image/png"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/shequ/shequ/hub/fleet"
	"github.com/shequ/shequ/protocol"
)

// TestRemoteCommands: a technician asks a kiosk for a screenshot from the
// fleet page (POST with the CSRF token); the hub publishes a signed
// command naming them; the kiosk's result shows on the kiosk page with the
// image; both are in the audit log.
func TestRemoteCommands(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	ctx := context.Background()
	const kiosk = "k-sangcheng-01"
	tech := f.login("tech")

	page := tech.get("/fleet")
	for _, want := range []string{`action="/fleet/` + kiosk + `/commands"`, `value="screenshot"`, `value="restart_ui"`, `value="restart_agent"`, "截屏 Screenshot"} {
		if !strings.Contains(page.body, want) {
			t.Fatalf("fleet page lacks %q", want)
		}
	}

	res := tech.submit("/fleet/"+kiosk+"/commands", url.Values{"action": {"screenshot"}, "back": {"fleet"}})
	if res.code != http.StatusSeeOther || res.header.Get("Location") != "/fleet?ok=cmd.sent" {
		t.Fatalf("send: %d %q %s", res.code, res.header.Get("Location"), errorText(res.body))
	}
	sent := f.published()
	if len(sent) != 1 {
		t.Fatalf("published %d commands, want 1", len(sent))
	}
	env, cmd, err := protocol.DecodeCommand(sent[0])
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyEnvelope(env, f.hubKey.Public().(ed25519.PublicKey)); err != nil {
		t.Fatalf("command not signed by the hub key: %v", err)
	}
	if cmd.ID != env.ID || cmd.Kiosk != kiosk || cmd.Action != protocol.ActionScreenshot || cmd.By != "account:"+f.accounts["tech"].ID ||
		cmd.Expires.Sub(cmd.Issued) != protocol.DefaultCommandTTL {
		t.Fatalf("command %+v", cmd)
	}
	kp := tech.get("/fleet/" + kiosk)
	if !strings.Contains(kp.body, `data-command="`+cmd.ID+`" data-status="sent"`) || !strings.Contains(kp.body, "运维 (tech)") {
		t.Fatalf("kiosk page does not list the sent command by its sender:\n%s", kp.body)
	}

	// The kiosk answers with a screenshot.
	img := image.NewRGBA(image.Rect(0, 0, 108, 192))
	var shot bytes.Buffer
	if err := png.Encode(&shot, img); err != nil {
		t.Fatal(err)
	}
	result := protocol.CommandResult{Kiosk: kiosk, Command: cmd.ID, Action: cmd.Action, Status: protocol.ResultOK, At: f.clock.Now(),
		Screenshot: &protocol.Screenshot{Type: protocol.ImagePNG, Width: 108, Height: 192, TakenAt: f.clock.Now(), Data: shot.Bytes()}}
	rid := protocol.NewID()
	if err := f.remote.ResultReceived(ctx, rid, result, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	if err := f.remote.ResultReceived(ctx, rid, result, f.clock.Now()); err != nil { // resent: a duplicate
		t.Fatal(err)
	}
	kp = tech.get("/fleet/" + kiosk)
	if !strings.Contains(kp.body, `data-status="ok"`) || !strings.Contains(kp.body, `<figure id="screenshot"><img src="/fleet/`+kiosk+`/screenshot?`) {
		t.Fatalf("kiosk page does not show the result and the screenshot:\n%s", kp.body)
	}
	img2 := tech.get("/fleet/" + kiosk + "/screenshot")
	if img2.code != http.StatusOK || img2.header.Get("Content-Type") != "image/png" || img2.body != shot.String() {
		t.Fatalf("screenshot: %d %s (%d bytes)", img2.code, img2.header.Get("Content-Type"), len(img2.body))
	}

	// Both ends are audited: who asked, which kiosk, which action, and the result, once.
	log, err := f.st.AuditLog(ctx, "kiosk:"+kiosk, 10)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, e := range log {
		actions = append(actions, e.Actor+" "+e.Action+" "+e.After)
	}
	want := []string{
		"account:" + f.accounts["tech"].ID + ` kiosk.command {"command":"` + cmd.ID + `","action":"screenshot"}`,
		"kiosk:" + kiosk + ` kiosk.command_result {"command":"` + cmd.ID + `","action":"screenshot","status":"ok"}`,
	}
	if len(actions) != 2 || !contains(actions, want[0]) || !contains(actions, want[1]) {
		t.Fatalf("audit log of the kiosk:\n%s\nwant:\n%s", strings.Join(actions, "\n"), strings.Join(want, "\n"))
	}
	audit := f.login("bureau").get("/audit")
	if !strings.Contains(audit.body, "远程操作终端") || !strings.Contains(audit.body, "终端答复远程操作") || !strings.Contains(audit.body, `href="/fleet/`+kiosk+`"`) {
		t.Fatalf("the audit page does not show the remote action:\n%s", audit.body)
	}

	// A refusal shows with its reason; a command not answered by its
	// expiry shows as unanswered.
	tech.submit("/fleet/"+kiosk+"/commands", url.Values{"action": {"screenshot"}})
	tech.submit("/fleet/"+kiosk+"/commands", url.Values{"action": {"restart_agent"}})
	sent = f.published()
	_, refused, err := protocol.DecodeCommand(sent[1])
	if err != nil {
		t.Fatal(err)
	}
	if err := f.remote.ResultReceived(ctx, protocol.NewID(), protocol.CommandResult{Kiosk: kiosk, Command: refused.ID, Action: refused.Action,
		Status: protocol.ResultRefused, Reason: "居民正在使用 / resident is using the kiosk", At: f.clock.Now()}, f.clock.Now()); err != nil {
		t.Fatal(err)
	}
	f.clock.Add(protocol.DefaultCommandTTL)
	kp = tech.get("/fleet/" + kiosk)
	if !strings.Contains(kp.body, "终端拒绝 · 居民正在使用 / resident is using the kiosk") || !strings.Contains(kp.body, `data-status="unanswered"`) {
		t.Fatalf("kiosk page does not show the refusal and the unanswered command:\n%s", kp.body)
	}

	// A result of a command never sent to this kiosk is rejected.
	other := result
	other.Kiosk = "k-ruiyi-01"
	if err := f.remote.ResultReceived(ctx, protocol.NewID(), other, f.clock.Now()); !errors.Is(err, fleet.ErrRejected) {
		t.Fatalf("result of another kiosk's command: %v, want fleet.ErrRejected", err)
	}
}

// TestRemoteCommandsPermissions: only the fleet roles, only on kiosks in
// their reach, only with the CSRF token, only known actions.
func TestRemoteCommandsPermissions(t *testing.T) {
	f := newFixture(t, false)
	f.standardAccounts()
	form := url.Values{"action": {"restart_ui"}}
	cases := []struct {
		name, user, kiosk string
		form              url.Values
		csrf              bool
		want              int
	}{
		{"district admin of the kiosk", "huangpu", "k-sangcheng-01", form, true, http.StatusSeeOther},
		{"bureau admin", "bureau", "k-hengfu-01", form, true, http.StatusSeeOther},
		{"district admin of another district", "xuhui", "k-sangcheng-01", form, true, http.StatusNotFound},
		{"squad leader", "squad", "k-sangcheng-01", form, true, http.StatusForbidden},
		{"officer", "officer-a", "k-sangcheng-01", form, true, http.StatusForbidden},
		{"partner", "partner", "k-sangcheng-01", form, true, http.StatusForbidden},
		{"no csrf token", "tech", "k-sangcheng-01", form, false, http.StatusForbidden},
		{"unknown kiosk", "tech", "k-nowhere", form, true, http.StatusNotFound},
		{"unknown action", "tech", "k-sangcheng-01", url.Values{"action": {"reboot"}}, true, http.StatusBadRequest},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := len(f.published())
			cl := f.login(c.user)
			var res response
			if c.csrf {
				res = cl.submit("/fleet/"+c.kiosk+"/commands", c.form)
			} else {
				res = cl.postForm("/fleet/"+c.kiosk+"/commands", c.form, f.srv.URL)
			}
			if res.code != c.want {
				t.Fatalf("%d, want %d: %s", res.code, c.want, errorText(res.body))
			}
			if sent := len(f.published()) - before; (c.want == http.StatusSeeOther) != (sent == 1) {
				t.Fatalf("%d commands published", sent)
			}
		})
	}
	if res := f.login("xuhui").get("/fleet/k-sangcheng-01/screenshot"); res.code != http.StatusNotFound {
		t.Errorf("screenshot of a kiosk out of reach: %d", res.code)
	}
	if res := f.login("tech").get("/fleet/k-sangcheng-01/screenshot"); res.code != http.StatusNotFound {
		t.Errorf("screenshot of a kiosk without one: %d", res.code)
	}

	// The broker unavailable: stored, audited, and the technician told.
	f.sentMu.Lock()
	f.publish = errors.New("not connected")
	f.sentMu.Unlock()
	if res := f.login("tech").submit("/fleet/k-ruiyi-01/commands", form); res.code != http.StatusServiceUnavailable || !strings.Contains(res.body, "命令未能发出") {
		t.Fatalf("unsent command: %d %s", res.code, errorText(res.body))
	}
}

// TestRemoteCommandsAPI: the same actions through the JSON API.
func TestRemoteCommandsAPI(t *testing.T) {
	f := newFixture(t, false)
	call := func(method, path, body string) (int, []byte) {
		req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("Authorization", "Bearer admin-token-0123456789")
		res, err := f.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var b bytes.Buffer
		if _, err := b.ReadFrom(res.Body); err != nil {
			t.Fatal(err)
		}
		return res.StatusCode, b.Bytes()
	}
	code, body := call(http.MethodPost, "/api/v1/kiosks/k-ruiyi-01/commands", `{"action":"restart_agent"}`)
	if code != http.StatusAccepted {
		t.Fatalf("POST: %d %s", code, body)
	}
	var c struct{ ID, Action, Status, RequestedBy string }
	if err := json.Unmarshal(body, &c); err != nil {
		t.Fatal(err)
	}
	if c.Action != "restart_agent" || c.Status != "sent" {
		t.Fatalf("command %s", body)
	}
	for _, bad := range []struct {
		path, body string
		want       int
	}{
		{"/api/v1/kiosks/k-ruiyi-01/commands", `{"action":"reboot"}`, http.StatusBadRequest},
		{"/api/v1/kiosks/k-ruiyi-01/commands", `{"action":"screenshot","x":1}`, http.StatusBadRequest},
		{"/api/v1/kiosks/k-nowhere/commands", `{"action":"screenshot"}`, http.StatusNotFound},
	} {
		if code, body := call(http.MethodPost, bad.path, bad.body); code != bad.want {
			t.Errorf("POST %s %s: %d %s, want %d", bad.path, bad.body, code, body, bad.want)
		}
	}
	code, body = call(http.MethodGet, "/api/v1/kiosks/k-ruiyi-01/commands", "")
	if code != http.StatusOK || !strings.Contains(string(body), c.ID) || !strings.Contains(string(body), `"requested_by":"admin-token"`) {
		t.Fatalf("GET: %d %s", code, body)
	}
	if code, _ := call(http.MethodGet, "/api/v1/kiosks/k-ruiyi-01/screenshot", ""); code != http.StatusNotFound {
		t.Fatalf("screenshot before any: %d", code)
	}
	if len(f.published()) != 1 {
		t.Fatalf("published %d", len(f.published()))
	}
}
