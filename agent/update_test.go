package agent_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/internal/hubtest"
	"github.com/shequ/shequ/agent/update"
	"github.com/shequ/shequ/hub"
	"github.com/shequ/shequ/protocol"
)

// engine stands in for RAUC and the reboot, the one part of an update
// that needs the kiosk image (tested under QEMU in cmd/e2e): it records
// what it was asked to install and which slot "boots".
type engine struct {
	mu        sync.Mutex
	booted    update.Slot
	installed []byte // the bundle's bytes, as the engine read them
	allow     string
	refuse    string // non-empty: refuse every bundle with this reason
	reboots   int
}

func (e *engine) Booted(context.Context) (update.Slot, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.booted, nil
}

func (e *engine) Install(_ context.Context, bundle, allow string, progress func(int)) error {
	b, err := os.ReadFile(bundle)
	if err != nil {
		return err
	}
	progress(50)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.refuse != "" {
		return &update.RefusedError{Reason: e.refuse}
	}
	e.installed, e.allow = b, allow
	return nil
}

func (e *engine) Reboot(context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.reboots++
	return nil
}

func (e *engine) state() (installed []byte, reboots int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.installed, e.reboots
}

func sh(t *testing.T, env []string, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = append(append(os.Environ(), env...), "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s\n(run packaging/dev/deps.sh for rauc, squashfs-tools, e2fsprogs and openssl)", name, err, out)
	}
}

// updateKeys makes an update CA and a release key (packaging/image/update-key.sh).
func updateKeys(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	sh(t, nil, "../packaging/image/update-key.sh", dir)
	return dir
}

// updateBundle makes a signed bundle of a small root file system with
// packaging/image/bundle.sh, as a release is made.
func updateBundle(t *testing.T, keys, version string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.ext4")
	if err := os.WriteFile(root, make([]byte, 4<<20), 0o644); err != nil {
		t.Fatal(err)
	}
	sh(t, nil, "mkfs.ext4", "-q", "-F", root)
	bundle := filepath.Join(dir, "release.raucb")
	sh(t, []string{"UPDATE_CERT=" + filepath.Join(keys, "release.pem"), "UPDATE_KEY=" + filepath.Join(keys, "release.key"), "COMP=lz4"},
		"../packaging/image/bundle.sh", root, version, bundle)
	return bundle
}

// TestUpdateWithRealHub: a release uploaded at a real hub is rolled out to
// a real agent, which fetches the bundle over HTTPS ranges, installs it,
// reports "installed", "reboots" into the new slot, passes its health gate
// and reports "healthy"; the rollout is then done. A second release that
// the engine refuses is reported refused with the reason and halts its
// rollout.
func TestUpdateWithRealHub(t *testing.T) {
	keys := updateKeys(t)
	ca, bundle := filepath.Join(keys, "ca.pem"), updateBundle(t, keys, "1.4.0")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	h, _ := realHub(t, ctx, hub.Config{UpdateCA: ca, ReconcileEvery: 200 * time.Millisecond})
	call := func(method, path string, body []byte, want int) []byte {
		t.Helper()
		return hubCall(t, ctx, h, method, path, body, want)
	}
	data, err := os.ReadFile(bundle)
	if err != nil {
		t.Fatal(err)
	}
	call(http.MethodPost, "/api/v1/releases", data, http.StatusCreated)
	kiosk, dir := enrolled(t, ctx, h)
	eng := &engine{booted: update.Slot{Name: "A", Version: "1.3.2"}}
	cfg := agent.Config{DataDir: dir, MediaStagger: -1, MinFreeDisk: -1, MediaHTTP: h.HTTPURL(), UpdateEngine: eng,
		UpdatePoll: 50 * time.Millisecond, HeartbeatInterval: 100 * time.Millisecond}
	a := newAgent(t, cfg)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}

	type rollout struct {
		ID     string
		State  string
		Reason string
		Kiosks []struct {
			Kiosk, State, Reason, Version, Slot string
		}
	}
	get := func(id string) rollout {
		var r rollout
		if err := json.Unmarshal(call(http.MethodGet, "/api/v1/rollouts/"+id, nil, http.StatusOK), &r); err != nil {
			t.Fatal(err)
		}
		return r
	}
	var r rollout
	if err := json.Unmarshal(call(http.MethodPost, "/api/v1/rollouts",
		[]byte(`{"release":"1.4.0","soak_seconds":-1,"stages":[{"name":"canary","targets":["`+kiosk+`"]}]}`), http.StatusCreated), &r); err != nil {
		t.Fatal(err)
	}
	hubtest.Eventually(t, time.Minute, "bundle installed and a reboot asked for", func() bool {
		_, n := eng.state()
		return n > 0
	})
	got, _ := eng.state()
	sum := sha256.Sum256(data)
	if g := sha256.Sum256(got); g != sum {
		t.Fatalf("the engine installed a file with SHA-256 %s; the release is %s", hex.EncodeToString(g[:]), hex.EncodeToString(sum[:]))
	}
	hubtest.Eventually(t, time.Minute, "hub shows the kiosk installed", func() bool {
		k := get(r.ID).Kiosks
		return len(k) == 1 && k[0].State == string(protocol.UpdateInstalled)
	})

	// The reboot: a new agent process on slot B, whose health gate passes.
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	eng.mu.Lock()
	eng.booted = update.Slot{Name: "B", Version: "1.4.0"}
	eng.mu.Unlock()
	a = newAgent(t, cfg)
	if err := a.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	hubtest.Eventually(t, time.Minute, "hub shows the kiosk checking its new slot", func() bool {
		k := get(r.ID).Kiosks
		return len(k) == 1 && k[0].State == string(protocol.UpdateBooted) && k[0].Slot == "B" && k[0].Version == "1.4.0"
	})
	if err := update.WriteGate(filepath.Join(dir, agent.GateFile), update.Gate{Slot: "B", Passed: true, At: time.Now()}); err != nil {
		t.Fatal(err)
	}
	hubtest.Eventually(t, time.Minute, "rollout done with the kiosk healthy", func() bool {
		r := get(r.ID)
		return r.State == "done" && len(r.Kiosks) == 1 && r.Kiosks[0].State == string(protocol.UpdateHealthy)
	})
	hubtest.Eventually(t, time.Minute, "bundle removed from the media cache", func() bool { return !a.Media().Has(hex.EncodeToString(sum[:])) })
	hubtest.Eventually(t, time.Minute, "every update record acknowledged", func() bool { return a.Status().OutboxDepth == 0 })

	// A release the engine refuses (as RAUC refuses a downgrade): reported
	// with its reason, and the rollout halts.
	bundle2 := updateBundle(t, keys, "1.5.0")
	data2, err := os.ReadFile(bundle2)
	if err != nil {
		t.Fatal(err)
	}
	call(http.MethodPost, "/api/v1/releases", data2, http.StatusCreated)
	eng.mu.Lock()
	eng.refuse = "refusing bundle version 1.5.0: not newer than slot B's 1.5.0"
	eng.mu.Unlock()
	var r2 rollout
	if err := json.Unmarshal(call(http.MethodPost, "/api/v1/rollouts",
		[]byte(`{"release":"1.5.0","soak_seconds":-1,"stages":[{"name":"canary","targets":["`+kiosk+`"]}]}`), http.StatusCreated), &r2); err != nil {
		t.Fatal(err)
	}
	hubtest.Eventually(t, time.Minute, "second rollout halted by the refusal", func() bool {
		r := get(r2.ID)
		return r.State == "halted" && len(r.Kiosks) == 1 && r.Kiosks[0].State == string(protocol.UpdateRefused) &&
			strings.Contains(r.Kiosks[0].Reason, "not newer than")
	})
	// The halt withdraws 1.5.0, and the done rollout offers 1.4.0 again,
	// which the kiosk runs: it says healthy again, and the halted rollout
	// still shows what the kiosk did with its release.
	hubtest.Eventually(t, time.Minute, "every update record acknowledged after the halt", func() bool { return a.Status().OutboxDepth == 0 })
	if r := get(r2.ID); r.State != "halted" || r.Kiosks[0].State != string(protocol.UpdateRefused) {
		t.Errorf("halted rollout after the kiosk's next report: %s, kiosk %+v; want halted, refused", r.State, r.Kiosks[0])
	}
}
