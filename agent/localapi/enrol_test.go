package localapi_test

import (
	"net/http"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/protocol"
)

func TestSocketGroup(t *testing.T) {
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	g, err := user.LookupGroupId(u.Gid)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	_, c, sock := startAgentIn(t, dir, agent.Config{SocketGroup: g.Name})
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 || strconv.Itoa(int(fi.Sys().(*syscall.Stat_t).Gid)) != g.Gid {
		t.Fatalf("socket mode %v gid %d, want 0660 and group %s (%s)", fi.Mode().Perm(), fi.Sys().(*syscall.Stat_t).Gid, g.Name, g.Gid)
	}
	if code, _ := do(t, c, http.MethodGet, protocol.LocalPathStatus, ""); code != http.StatusOK {
		t.Fatalf("status = %d", code)
	}

	a, err := agent.New(agent.Config{DataDir: t.TempDir(), Socket: filepath.Join(t.TempDir(), "x.sock"), SocketGroup: "no-such-group-shequ"}, hubtest.NewLogs(t).Logger())
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Start(t.Context()); err == nil || !strings.Contains(err.Error(), "no-such-group-shequ") {
		t.Errorf("Start with an unknown socket group = %v, want an error naming it", err)
		if err == nil {
			a.Close()
		}
	}
}

// TestEnrolThroughLocalAPI: a fresh agent serves its local API, says it is
// not enrolled, refuses feedback with 503 and does not connect; a wrong
// code is refused with the hub's reason; the right one enrols it, and the
// link comes up without a restart.
func TestEnrolThroughLocalAPI(t *testing.T) {
	b, hub := newHub(t)
	const code = "123456789012"
	srv := hub.StartEnrol(t, hubtest.Claim{Code: code, Kiosk: kiosk, Groups: groups})
	a, c, _ := startAgentIn(t, t.TempDir(), agent.Config{HubURL: srv.URL, CAPin: b.CA.Pin, HardwareID: "hw-test"})

	_, body := do(t, c, http.MethodGet, protocol.LocalPathStatus, "")
	if st := decode[protocol.AgentStatus](t, body); st.Enrolled || st.Kiosk != "" || st.Connected {
		t.Fatalf("status before enrolment %+v", st)
	}
	good, err := os.ReadFile("../../protocol/testdata/feedback_request.json")
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		name, method, path, body string
		code                     int
		mention                  string
	}{
		{"feedback before enrolment", "POST", protocol.LocalPathFeedback, string(good), 503, "not enrolled"},
		{"notices before enrolment", "GET", protocol.LocalPathNotices, "", 200, ""},
		{"malformed code", "POST", protocol.LocalPathEnrol, `{"claim_code":"12ab"}`, 400, "12"},
		{"unknown field", "POST", protocol.LocalPathEnrol, `{"claim_code":"123456789012","hub":"https://evil"}`, 400, "hub"},
		{"too large", "POST", protocol.LocalPathEnrol, `{"claim_code":"` + strings.Repeat("1", 5000) + `"}`, 413, "larger"},
		{"wrong code", "POST", protocol.LocalPathEnrol, `{"claim_code":"9999-9999-9999"}`, 403, "claim code"},
		{"right code", "POST", protocol.LocalPathEnrol, `{"claim_code":"1234-5678-9012"}`, 200, ""},
		{"again", "POST", protocol.LocalPathEnrol, `{"claim_code":"1234-5678-9012"}`, 409, "already enrolled"},
		{"feedback after enrolment", "POST", protocol.LocalPathFeedback, string(good), 201, ""},
	}
	for _, s := range steps {
		code, body := do(t, c, s.method, s.path, s.body)
		if code != s.code {
			t.Fatalf("%s: %s %s = %d %s, want %d", s.name, s.method, s.path, code, body, s.code)
		}
		if s.mention != "" {
			if e := decode[protocol.ErrorResponse](t, body); !strings.Contains(e.Error, s.mention) {
				t.Fatalf("%s: error %q does not mention %q", s.name, e.Error, s.mention)
			}
		}
		if s.name == "right code" {
			if st := decode[protocol.AgentStatus](t, body); !st.Enrolled || st.Kiosk != kiosk {
				t.Fatalf("status after enrolment %+v", st)
			}
		}
	}
	if p := hub.Presence(kiosk, wait); p.State != protocol.Online {
		t.Fatalf("presence after enrolment %+v", p)
	}
	id, fb := hub.Feedback(kiosk, wait)
	if fb.Kiosk != kiosk {
		t.Fatalf("feedback %s from %q", id, fb.Kiosk)
	}
	hubtest.Eventually(t, wait, "connected", func() bool { return a.Status().Connected })
}

func TestEnrolWithoutHubURL(t *testing.T) {
	_, c, _ := startAgentIn(t, t.TempDir(), agent.Config{})
	code, body := do(t, c, http.MethodPost, protocol.LocalPathEnrol, `{"claim_code":"123456789012"}`)
	if e := decode[protocol.ErrorResponse](t, body); code != 503 || !strings.Contains(e.Error, "hub") {
		t.Fatalf("enrol without a hub URL = %d %q, want 503", code, e.Error)
	}
}
