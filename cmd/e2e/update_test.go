package e2e

import (
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/vm"
	"github.com/shequ/shequ/hub"
)

// bundleDiskSerial names the disk that carries the test's update bundles
// into the guest (/dev/disk/by-id/virtio-bundles).
const bundleDiskSerial = "bundles"

// envUpdateFull=1 makes TestKioskImageUpdate install releases, not only
// refuse bad bundles (make update-test): each install writes a 2 GiB slot,
// minutes under QEMU's emulator, too long for every CI run.
const envUpdateFull = "SHEQU_UPDATE_FULL"

// TestKioskImageUpdate updates a booted kiosk image the way the field
// does (docs/updates.md), under QEMU: RAUC refuses a bundle signed by
// another key, a tampered bundle and a downgrade, and the kiosk stays on
// its slot; a good release is written to the other slot, boots with
// systemd-boot's counted tries, passes the health gate and is marked good;
// a release whose kiosk UI crash-loops fails the gate and the kiosk is back
// on the good slot by itself. The data partition is the same throughout.
// CI runs the refusals; the releases need SHEQU_UPDATE_FULL=1.
func TestKioskImageUpdate(t *testing.T) {
	img := builtImage(t)
	full := os.Getenv(envUpdateFull) == "1"
	for _, tool := range []string{"rauc", "mksquashfs", "openssl", "debugfs", "mkfs.ext4", "sfdisk"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (packaging/dev/deps.sh installs it): %v", tool, err)
		}
	}
	log := testLogger(t)
	dir := t.TempDir()
	image := filepath.Join(repoRoot(), "packaging/image")
	version := imageVersion(t, img)

	// The deployment's update keys, and another deployment's.
	keys, other := filepath.Join(dir, "keys"), filepath.Join(dir, "other")
	run(t, filepath.Join(image, "update-key.sh"), keys)
	run(t, filepath.Join(image, "update-key.sh"), other)

	// The releases: good (the same root, a newer version), bad (its kiosk
	// UI exits at once), and three that must be refused.
	bundles := filepath.Join(dir, "bundles")
	if err := os.Mkdir(bundles, 0o755); err != nil {
		t.Fatal(err)
	}
	bundle := func(key, src, version, name string) string {
		out := filepath.Join(bundles, name)
		cmd := exec.Command(filepath.Join(image, "bundle.sh"), src, version, out)
		// lz4: several times faster to build than the default xz.
		cmd.Env = append(os.Environ(), "COMP=lz4", "UPDATE_CERT="+filepath.Join(key, "release.pem"), "UPDATE_KEY="+filepath.Join(key, "release.key"))
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("bundle.sh %s: %v\n%s", name, err, b)
		}
		return out
	}
	goodVersion, badVersion := version+"+up1", version+"+up2"
	if full {
		bundle(keys, img, goodVersion, "good.raucb")
		root := rootPartition(t, img, filepath.Join(dir, "root.ext4"))
		breakKiosk(t, root, dir)
		bundle(keys, root, badVersion, "bad.raucb")
	}
	tiny := tinyRoot(t, dir)
	bundle(other, tiny, version+"+up3", "wrong-key.raucb")
	bundle(keys, tiny, "0.0.0~git1.20000101.g0000000", "downgrade.raucb") // older than any build
	tampered := bundle(keys, tiny, version+"+up4", "tampered.raucb")
	flipByte(t, tampered, 8192) // inside the squashfs payload, which the signature covers through verity
	disk := filepath.Join(dir, "bundles.img")
	run(t, "mkfs.ext4", "-q", "-F", "-L", "bundles", "-d", bundles, disk, fmt.Sprintf("%dM", dirMiB(t, bundles)*11/10+16))

	kiosk := filepath.Join(dir, "kiosk.img")
	run(t, "cp", "--sparse=always", img, kiosk)
	netCfg := vm.NetConfig{Restrict: true}
	var e *env
	const kioskID = "k-sangcheng-01"
	if full {
		// The releases travel from a hub (docs/updates.md), which the
		// kiosk reaches at guestHubAddr and fetches bundles from with
		// HTTPS ranges; room on the data partition for a full bundle.
		httpAddr, mqttAddr := freeAddr(t), freeAddr(t)
		e = &env{t: t, cfg: hub.Config{
			DataDir: t.TempDir(), OrgFile: demoOrg, MQTTListen: mqttAddr, HTTPListen: httpAddr,
			Hostnames: []string{guestHubAddr}, PublicBrokerURL: fmt.Sprintf("ssl://%s:%d", guestHubAddr, guestMQTTPort),
			UpdateCA: filepath.Join(keys, "ca.pem"), ReconcileEvery: 5 * time.Second, MediaMaxUpload: 2 << 30,
		}}
		e.start()
		t.Cleanup(e.stop)
		hubURL := fmt.Sprintf("https://%s:%d", guestHubAddr, guestHTTPPort)
		run(t, filepath.Join(image, "configure.sh"), kiosk, hubURL, e.hub.CAPin(), filepath.Join(keys, "ca.pem"))
		site := run(t, filepath.Join(image, "site-env.sh"), hubURL, e.hub.CAPin()) +
			"SHEQU_AGENT_OPTS=-media-http " + hubURL + " -media-stagger -1s\n"
		siteFile := filepath.Join(dir, "site.env")
		if err := os.WriteFile(siteFile, []byte(site), 0o644); err != nil {
			t.Fatal(err)
		}
		espStart := strings.TrimSpace(run(t, "sh", "-c", `sfdisk -d "$1" | sed -n 's/.*start= *\([0-9]*\),.*name="shequ-esp".*/\1/p'`, "sh", kiosk))
		run(t, "mcopy", "-o", "-i", kiosk+"@@"+strconv.Itoa(atoi(t, espStart)*512), siteFile, "::/shequ/site.env")
		run(t, "truncate", "-s", "+3G", kiosk)
		netCfg.Services = []vm.Service{
			{GuestAddr: guestHubAddr, GuestPort: guestHTTPPort, HostPort: port(t, httpAddr)},
			{GuestAddr: guestHubAddr, GuestPort: guestMQTTPort, HostPort: port(t, mqttAddr)},
		}
	} else {
		run(t, filepath.Join(image, "configure.sh"), kiosk, "", "", filepath.Join(keys, "ca.pem"))
	}

	m, accel, slow := bootImage(t, vm.Config{
		Image: kiosk, Dir: filepath.Join(dir, "vm"), Log: log,
		Drives: []vm.Drive{{Path: disk, ReadOnly: true, Serial: bundleDiskSerial}},
		Net:    netCfg,
	}, "ls -l /boot/efi/loader/entries; rauc status 2>&1; journalctl -b --no-pager -o short-monotonic -u rauc -u shequ-health-gate -u shequ-kiosk -u shequ-agent | tail -n 120")
	ready := func(from int64, d time.Duration, what string) int64 {
		t.Helper()
		var end int64
		wait(t, d, what, func(ctx context.Context) error {
			var err error
			_, end, err = m.WaitSerialFrom(ctx, from, kioskReady)
			return err
		})
		return end
	}
	pos := ready(0, 4*time.Minute*slow, "the kiosk ready on slot A")
	booted := func() string {
		t.Helper()
		slot := regexp.MustCompile(`rauc\.slot=([AB])`).FindStringSubmatch(guest(t, m, "/bin/cat", "/proc/cmdline"))
		if slot == nil {
			t.Fatal("no rauc.slot= on the kernel command line")
		}
		return slot[1]
	}
	entries := func() string {
		t.Helper()
		return strings.Join(strings.Fields(guest(t, m, "/bin/ls", "/boot/efi/loader/entries")), " ")
	}
	if s := booted(); s != "A" {
		t.Fatalf("a new kiosk booted slot %s, want A", s)
	}
	// What the kiosk keeps across updates: the data partition.
	guest(t, m, "/bin/sh", "-c", "mkdir -p /run/bundles && mount -o ro /dev/disk/by-id/virtio-"+bundleDiskSerial+" /run/bundles && echo kept >/var/lib/shequ-agent/update-test && sync")
	install := func(name string) (string, int) {
		t.Helper()
		out, errOut, code, err := m.Exec(timeout(t, 15*time.Minute*slow), "/usr/bin/rauc", "install", "/run/bundles/"+name)
		if err != nil {
			t.Fatalf("rauc install %s: %v", name, err)
		}
		return string(out) + string(errOut), code
	}

	// 1. Refused before anything is written, or (the tampered payload)
	// while writing the slot RAUC marked bad first: the kiosk stays on A.
	for _, c := range []struct{ name, want, why string }{
		{"wrong-key.raucb", "signature verification failed", ""},
		{"downgrade.raucb", "Pre-install handler error", "not newer than slot A"},
		{"tampered.raucb", "", ""},
	} {
		out, code := install(c.name)
		if code == 0 || !strings.Contains(out, c.want) {
			t.Errorf("rauc install %s: exit %d, want a refusal saying %q:\n%s", c.name, code, c.want, tail(out, 2000))
		}
		if c.why != "" {
			if why := guestStatus(t, m, "/bin/cat", "/run/shequ-update/refusal"); !strings.Contains(why, c.why) {
				t.Errorf("rauc install %s: the refusal's reason %q, want %q", c.name, why, c.why)
			}
		}
		if e := entries(); strings.Contains(e, "shequ-b+") || strings.Contains(e, "shequ-b.conf") {
			t.Errorf("after refusing %s slot B is bootable: %s", c.name, e)
		}
	}

	if !full {
		t.Logf("installing releases, their reboots and the rollback: %s=1 (make update-test)", envUpdateFull)
		return
	}

	// 2. The kiosk is enrolled (as a technician's laptop would do it on
	// site, here through the guest agent) and online at the hub.
	code := strings.ReplaceAll(e.claim(kioskID), "-", "")
	guest(t, m, "/bin/systemctl", "stop", "shequ-agent.service")
	guest(t, m, "/usr/sbin/runuser", "-u", "_shequ-agent", "--", "/usr/bin/shequ-agent", "enrol", "-data", "/var/lib/shequ-agent",
		"-hub", fmt.Sprintf("https://%s:%d", guestHubAddr, guestHTTPPort), "-code", code, "-ca-pin", e.hub.CAPin())
	guest(t, m, "/bin/systemctl", "start", "shequ-agent.service")
	a := e.api()
	waitFor(t, 3*time.Minute*slow, "the kiosk online at the hub", func() (bool, error) {
		k, ok := a.kiosk(kioskID)
		return ok && k.Online, nil
	})

	// 3. A good release through the hub: fetched, written to B with
	// counted tries, the kiosk reboots by itself, passes the health gate,
	// and the rollout is done.
	view := func(id string) rolloutView {
		t.Helper()
		var v rolloutView
		a.do(http.MethodGet, "/api/v1/rollouts/"+id, nil, &v)
		return v
	}
	rollout := func(release string) string {
		t.Helper()
		var v rolloutView
		a.do(http.MethodPost, "/api/v1/rollouts", map[string]any{"release": release, "soak_seconds": -1,
			"stages": []map[string]any{{"name": "canary", "targets": []string{kioskID}}}}, &v)
		return v.ID
	}
	state := func(id string) string {
		v := view(id)
		if len(v.Kiosks) != 1 {
			return ""
		}
		return v.Kiosks[0].State
	}
	a.uploadRelease(filepath.Join(bundles, "good.raucb"))
	start := time.Now()
	good := rollout(goodVersion)
	waitFor(t, 20*time.Minute*slow, "the good release fetched", func() (bool, error) {
		s := state(good)
		return s == "installing" || s == "installed" || s == "booted" || s == "healthy", nil
	})
	t.Logf("rollout start to the bundle held by the kiosk (%d MB over HTTPS): %s (%s)", fileMB(t, filepath.Join(bundles, "good.raucb")),
		time.Since(start).Round(time.Second), accel)

	// A power cut while RAUC writes slot B: the kiosk comes back on A
	// (B was marked bad before the write began), and the agent, which
	// saved "installing", installs again.
	// RAUC 1.8's install is five steps of 20 %; the last, updating the
	// slots, reports 90 % while it copies the image (minutes here).
	waitFor(t, 10*time.Minute*slow, "RAUC writing slot B (90 %)", func() (bool, error) {
		v := view(good)
		return len(v.Kiosks) == 1 && v.Kiosks[0].State == "installing" && v.Kiosks[0].Percent >= 90, nil
	})
	if err := m.Reset(timeout(t, time.Minute)); err != nil {
		t.Fatalf("power cut (reset): %v", err)
	}
	pos = ready(pos, 6*time.Minute*slow, "the kiosk ready after the power cut")
	if s := booted(); s != "A" {
		t.Fatalf("after a power cut during the install the kiosk booted slot %s, want A", s)
	}
	if e := entries(); strings.Contains(e, "shequ-b.conf") || regexp.MustCompile(`shequ-b\+[1-9]`).MatchString(e) {
		t.Errorf("after a power cut during the install slot B is bootable: %s", e)
	}
	guest(t, m, "/usr/bin/test", "-s", "/var/lib/shequ-agent/update-test")
	start = time.Now()
	waitFor(t, 20*time.Minute*slow, "the good release installed", func() (bool, error) {
		s := state(good)
		return s == "installed" || s == "booted" || s == "healthy", nil
	})
	t.Logf("installing the good release again after the power cut (from the kiosk ready): %s (%s)", time.Since(start).Round(time.Second), accel)
	start = time.Now()
	pos = ready(pos, 8*time.Minute*slow, "the kiosk ready on slot B")
	waitFor(t, 6*time.Minute*slow, "the rollout of the good release done", func() (bool, error) {
		v := view(good)
		return v.State == "done" && len(v.Kiosks) == 1 && v.Kiosks[0].State == "healthy", nil
	})
	t.Logf("reboot to slot B healthy at the hub: %s (%s)", time.Since(start).Round(time.Second), accel)
	if s := booted(); s != "B" {
		t.Fatalf("after the good update the kiosk booted slot %s, want B", s)
	}
	if e := entries(); !strings.Contains(e, "shequ-b.conf") {
		t.Errorf("entries %s: want slot B's marked good", e)
	}
	if v := strings.TrimSpace(guest(t, m, "/bin/cat", "/boot/efi/shequ-b/version")); v != goodVersion {
		t.Errorf("slot B's version %q, want %q", v, goodVersion)
	}
	guest(t, m, "/usr/bin/test", "-s", "/var/lib/shequ-agent/update-test")

	// 4. A release whose UI crash-loops: written to A, fails the gate on
	// its first try, B boots again by itself, and the kiosk reports the
	// rollback with the gate's reason, which halts the rollout.
	a.uploadRelease(filepath.Join(bundles, "bad.raucb"))
	bad := rollout(badVersion)
	waitFor(t, 40*time.Minute*slow, "the bad release installed", func() (bool, error) {
		s := state(bad)
		return s == "installed" || s == "booted" || s == "rolled_back", nil
	})
	start = time.Now()
	ready(pos, 15*time.Minute*slow, "the kiosk back on a good slot after the bad release")
	waitFor(t, 6*time.Minute*slow, "the rollback reported and the rollout halted", func() (bool, error) {
		v := view(bad)
		return v.State == "halted" && len(v.Kiosks) == 1 && v.Kiosks[0].State == "rolled_back", nil
	})
	t.Logf("the bad release's reboot to the rollback reported at the hub: %s (%s)", time.Since(start).Round(time.Second), accel)
	if k := view(bad).Kiosks[0]; !strings.Contains(k.Reason, "crash loop") || k.Slot != "B" || k.Version != goodVersion {
		t.Errorf("the rolled-back kiosk: %+v; want back on B (%s), with the gate's crash loop as the reason", k, goodVersion)
	}
	if s := booted(); s != "B" {
		t.Fatalf("after the bad release the kiosk runs slot %s, want B", s)
	}
	if e := entries(); !regexp.MustCompile(`shequ-a\+0(-\d+)?\.conf`).MatchString(e) || !strings.Contains(e, "shequ-b.conf") {
		t.Errorf("entries %s: want slot A's with no tries left and slot B's good", e)
	}
	guest(t, m, "/usr/bin/test", "-s", "/var/lib/shequ-agent/update-test")
	waitFor(t, 3*time.Minute*slow, "the kiosk online again", func() (bool, error) {
		k, ok := a.kiosk(kioskID)
		return ok && k.Online, nil
	})
}

// fileMB returns a file's size in MB.
func fileMB(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size() / 1e6
}

// atoi parses a decimal number a command printed.
func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

// imageVersion reads the version from the built image's file name
// (shequ-kiosk_VERSION_amd64.img, which shequ-kiosk.img links to).
func imageVersion(t *testing.T, img string) string {
	t.Helper()
	p, err := filepath.EvalSymlinks(img)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`^shequ-kiosk_(.+)_amd64\.img$`).FindStringSubmatch(filepath.Base(p))
	if m == nil {
		t.Fatalf("%s: not a shequ-kiosk_VERSION_amd64.img", p)
	}
	return m[1]
}

// rootPartition copies the image's shequ-root-a partition to out.
func rootPartition(t *testing.T, img, out string) string {
	t.Helper()
	dump := run(t, "sfdisk", "-d", img)
	m := regexp.MustCompile(`start=\s*(\d+), size=\s*(\d+),.*name="shequ-root-a"`).FindStringSubmatch(dump)
	if m == nil {
		t.Fatalf("%s has no shequ-root-a partition:\n%s", img, dump)
	}
	run(t, "dd", "if="+img, "of="+out, "bs=512", "skip="+m[1], "count="+m[2], "conv=sparse", "status=none")
	return out
}

// breakKiosk adds a drop-in to the root file system image that makes the
// kiosk UI exit at once: a release that boots but does not work.
func breakKiosk(t *testing.T, root, dir string) {
	t.Helper()
	dropIn := filepath.Join(dir, "broken.conf")
	if err := os.WriteFile(dropIn, []byte("[Service]\nExecStart=\nExecStart=/bin/false\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "debugfs", "-w", "-R", "mkdir /etc/systemd/system/shequ-kiosk.service.d", root)
	run(t, "debugfs", "-w", "-R", "write "+dropIn+" /etc/systemd/system/shequ-kiosk.service.d/broken.conf", root)
	if out := run(t, "debugfs", "-R", "cat /etc/systemd/system/shequ-kiosk.service.d/broken.conf", root); !strings.Contains(out, "/bin/false") {
		t.Fatalf("the broken drop-in is not in %s: %s", root, out)
	}
}

// tinyRoot makes a small ext4 image for bundles that must be refused
// before RAUC writes anything (or, tampered, while it does).
func tinyRoot(t *testing.T, dir string) string {
	t.Helper()
	content := filepath.Join(dir, "tiny")
	if err := os.MkdirAll(content, 0o755); err != nil {
		t.Fatal(err)
	}
	// Incompressible bytes, so the squashfs is larger than RAUC's minimum.
	run(t, "openssl", "rand", "-out", filepath.Join(content, "payload"), "1048576")
	out := filepath.Join(dir, "tiny.ext4")
	run(t, "mkfs.ext4", "-q", "-F", "-d", content, out, "8M")
	return out
}

// flipByte inverts the byte at offset of the file.
func flipByte(t *testing.T, path string, offset int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, offset); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0xFF
	if _, err := f.WriteAt(b, offset); err != nil {
		t.Fatal(err)
	}
}

// dirMiB is the apparent size of the files in dir, in MiB.
func dirMiB(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		n += info.Size()
	}
	return n>>20 + 1
}

// makeBundle makes a bundle of src signed with the release key in keys
// (packaging/image/bundle.sh, lz4: several times faster to build).
func makeBundle(t *testing.T, keys, src, version, out string) string {
	t.Helper()
	cmd := exec.Command(filepath.Join(repoRoot(), "packaging/image/bundle.sh"), src, version, out)
	cmd.Env = append(os.Environ(), "COMP=lz4", "UPDATE_CERT="+filepath.Join(keys, "release.pem"), "UPDATE_KEY="+filepath.Join(keys, "release.key"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bundle.sh %s: %v\n%s", out, err, b)
	}
	return out
}

// rolloutView is the part of the hub's rollout representation the tests read.
type rolloutView struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	Reason string `json:"reason"`
	Kiosks []struct {
		Kiosk   string `json:"kiosk"`
		Slot    string `json:"slot"`
		Version string `json:"version"`
		State   string `json:"state"`
		Percent int    `json:"percent"`
		Reason  string `json:"reason"`
	} `json:"kiosks"`
}

// uploadRelease posts a bundle to the hub as a release.
func (a api) uploadRelease(path string) {
	a.t.Helper()
	a.postFile(path, "/api/v1/releases", http.StatusCreated)
}
