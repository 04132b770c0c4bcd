package deb

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
)

// packages are the .debs an amd64 build makes.
var packages = []string{"shequ-hub", "shequ-agent", "shequ-kiosk"}

// build runs build.sh for amd64 into a new temporary directory and returns
// it.
func build(t *testing.T) string {
	t.Helper()
	out := t.TempDir()
	cmd := exec.Command("./build.sh")
	cmd.Env = append(os.Environ(), "OUT="+out, "ARCHES=amd64", "KIOSK_ARCHES=amd64", "PACKAGES=hub agent kiosk")
	b, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build.sh: %v\n%s", err, b)
	}
	return out
}

// debs returns the .deb files in dir by package name; all of packages
// must be there.
func debs(t *testing.T, dir string) map[string]string {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*.deb"))
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, f := range files {
		name, _, _ := strings.Cut(filepath.Base(f), "_")
		m[name] = f
	}
	for _, p := range packages {
		if m[p] == "" {
			t.Fatalf("no %s package in %s (have %v)", p, dir, files)
		}
	}
	if len(m) != len(packages) {
		t.Fatalf("want the packages %v in %s, have %v", packages, dir, files)
	}
	return m
}

func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing: run packaging/dev/deps.sh (the packaging tests need it)", tool)
		}
	}
}

func sha(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// TestPackages builds the amd64 packages, checks them with lintian and
// dpkg-deb, builds them again and compares the bytes.
func TestPackages(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the packages twice (minutes): not with -short")
	}
	need(t, "go", "dpkg-deb", "dpkg-shlibdeps", "lintian", "gcc")
	first := build(t)
	built := debs(t, first)

	t.Run("lintian", func(t *testing.T) { checkLintian(t, built) })
	t.Run("contents", func(t *testing.T) { checkContents(t, built) })
	t.Run("reproducible", func(t *testing.T) {
		again := debs(t, build(t))
		for _, p := range packages {
			a, b := sha(t, built[p]), sha(t, again[p])
			if filepath.Base(built[p]) != filepath.Base(again[p]) || a != b {
				t.Errorf("%s: two builds differ: %s %s, %s %s (diffoscope shows how)",
					p, filepath.Base(built[p]), a, filepath.Base(again[p]), b)
			}
		}
	})
}

// checkLintian fails on every error or warning lintian reports that the
// package's overrides do not cover, and on every override without a
// comment.
func checkLintian(t *testing.T, built map[string]string) {
	var files []string
	for _, p := range packages {
		files = append(files, built[p])
	}
	// lintian exits non-zero on its own errors: the output decides.
	out, err := exec.Command("lintian", append([]string{"--no-tag-display-limit", "--fail-on", "none"}, files...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("lintian: %v\n%s", err, out)
	}
	var bad []string
	for _, l := range strings.Split(string(out), "\n") {
		if strings.HasPrefix(l, "E: ") || strings.HasPrefix(l, "W: ") {
			bad = append(bad, l)
		}
	}
	if len(bad) > 0 {
		t.Errorf("lintian (fix it, or override it in packaging/deb/PACKAGE.lintian-overrides with a comment saying why):\n%s",
			strings.Join(bad, "\n"))
	}
	for _, p := range packages {
		f, err := os.Open(p + ".lintian-overrides")
		if err != nil {
			t.Fatal(err)
		}
		commented := false
		s := bufio.NewScanner(f)
		for n := 1; s.Scan(); n++ {
			l := strings.TrimSpace(s.Text())
			switch {
			case l == "":
				commented = false
			case strings.HasPrefix(l, "#"):
				commented = true
			case !commented:
				t.Errorf("%s.lintian-overrides:%d: override %q has no comment above it saying why", p, n, l)
			}
		}
		f.Close()
	}
}

// entry is a line of dpkg-deb --contents.
type entry struct{ mode, owner, path, link string }

func contents(t *testing.T, deb string) map[string]entry {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--contents", deb).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --contents %s: %v", deb, err)
	}
	m := map[string]entry{}
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(l)
		if len(f) < 6 {
			t.Fatalf("dpkg-deb --contents: %q", l)
		}
		e := entry{mode: f[0], owner: f[1], path: strings.TrimPrefix(f[5], ".")}
		if len(f) == 8 && f[6] == "->" {
			e.link = f[7]
		}
		m[strings.TrimSuffix(e.path, "/")] = e
	}
	return m
}

func field(t *testing.T, deb, name string) string {
	t.Helper()
	out, err := exec.Command("dpkg-deb", "--field", deb, name).Output()
	if err != nil {
		t.Fatalf("dpkg-deb --field %s %s: %v", deb, name, err)
	}
	return strings.TrimSpace(string(out))
}

func control(t *testing.T, deb, file string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--control", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --control: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, file))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return string(b)
}

func extract(t *testing.T, deb, path string) []byte {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("dpkg-deb", "--extract", deb, dir).CombinedOutput(); err != nil {
		t.Fatalf("dpkg-deb --extract: %v\n%s", err, out)
	}
	b, err := os.ReadFile(filepath.Join(dir, path))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// checkContents checks what each package installs, its conffiles and its
// control fields.
func checkContents(t *testing.T, built map[string]string) {
	want := map[string]map[string]string{ // path -> mode
		"shequ-hub": {
			"/usr/bin/shequ-hub":                                  "-rwxr-xr-x",
			"/usr/sbin/shequ-hubctl":                              "-rwxr-xr-x",
			"/usr/libexec/shequ-hub/mosquitto-sync":               "-rwxr-xr-x",
			"/usr/lib/systemd/system/shequ-hub.service":           "-rw-r--r--",
			"/usr/lib/systemd/system/shequ-hub-mosquitto.service": "-rw-r--r--",
			"/usr/lib/systemd/system/shequ-hub-mosquitto.path":    "-rw-r--r--",
			"/usr/lib/sysusers.d/shequ-hub.conf":                  "-rw-r--r--",
			"/usr/lib/tmpfiles.d/shequ-hub.conf":                  "-rw-r--r--",
			"/etc/shequ/hub.env":                                  "-rw-r--r--",
			"/etc/shequ/org.json":                                 "-rw-r--r--",
			"/usr/share/man/man1/shequ-hub.1.gz":                  "-rw-r--r--",
			"/usr/share/man/man8/shequ-hubctl.8.gz":               "-rw-r--r--",
			"/usr/share/doc/shequ-hub/copyright":                  "-rw-r--r--",
		},
		"shequ-agent": {
			"/usr/bin/shequ-agent":                        "-rwxr-xr-x",
			"/usr/lib/systemd/system/shequ-agent.service": "-rw-r--r--",
			"/usr/lib/sysusers.d/shequ-agent.conf":        "-rw-r--r--",
			"/usr/lib/tmpfiles.d/shequ-agent.conf":        "-rw-r--r--",
			"/etc/shequ/agent.env":                        "-rw-r--r--",
			"/usr/share/man/man1/shequ-agent.1.gz":        "-rw-r--r--",
		},
		"shequ-kiosk": {
			"/usr/bin/shequ-kiosk":                              "-rwxr-xr-x",
			"/usr/lib/systemd/system/shequ-kiosk.service":       "-rw-r--r--",
			"/usr/lib/sysusers.d/shequ-kiosk.conf":              "-rw-r--r--",
			"/usr/lib/tmpfiles.d/shequ-kiosk.conf":              "-rw-r--r--",
			"/etc/shequ/kiosk.env":                              "-rw-r--r--",
			"/usr/libexec/shequ-kiosk/session":                  "-rwxr-xr-x",
			"/usr/share/icons/shequ-invisible/index.theme":      "-rw-r--r--",
			"/usr/share/icons/shequ-invisible/cursors/left_ptr": "-rw-r--r--",
			"/usr/share/man/man1/shequ-kiosk.1.gz":              "-rw-r--r--",
		},
	}
	conffiles := map[string][]string{
		"shequ-hub":   {"/etc/shequ/hub.env", "/etc/shequ/org.json"},
		"shequ-agent": {"/etc/shequ/agent.env"},
		"shequ-kiosk": {"/etc/shequ/kiosk.env"},
	}
	version := ""
	for _, p := range packages {
		deb := built[p]
		have := contents(t, deb)
		for path, mode := range want[p] {
			e, ok := have[path]
			switch {
			case !ok:
				t.Errorf("%s: no %s", p, path)
			case e.mode != mode || e.owner != "root/root":
				t.Errorf("%s: %s is %s %s, want %s root/root", p, path, e.mode, e.owner, mode)
			}
		}
		for path, e := range have {
			if e.owner != "root/root" {
				t.Errorf("%s: %s is owned by %s", p, path, e.owner)
			}
			if strings.HasPrefix(path, "/var/") || strings.HasPrefix(path, "/run/") {
				t.Errorf("%s: ships %s: the units and tmpfiles.d make their directories", p, path)
			}
		}
		got := strings.Fields(control(t, deb, "conffiles"))
		sort.Strings(got)
		if !slices.Equal(got, conffiles[p]) {
			t.Errorf("%s: conffiles %v, want %v", p, got, conffiles[p])
		}
		for _, s := range []string{"postinst", "prerm", "postrm"} {
			body := control(t, deb, s)
			if !strings.HasPrefix(body, "#!/bin/sh\n") {
				t.Errorf("%s: %s missing or not a sh script", p, s)
				continue
			}
			if out, err := exec.Command("sh", "-n", "-c", body).CombinedOutput(); err != nil {
				t.Errorf("%s: %s: sh -n: %v\n%s", p, s, err, out)
			}
		}
		v := field(t, deb, "Version")
		if version == "" {
			version = v
		} else if v != version {
			t.Errorf("%s: version %s, others %s", p, v, version)
		}
		if a := field(t, deb, "Architecture"); a != "amd64" {
			t.Errorf("%s: architecture %s", p, a)
		}
		// -X main.version reached the binary.
		bin := extract(t, deb, "usr/bin/"+p)
		if !bytes.Contains(bin, []byte(version)) {
			t.Errorf("%s: the binary does not contain its version %s (-ldflags -X main.version)", p, version)
		}
	}
	dep := field(t, built["shequ-kiosk"], "Depends")
	for _, d := range []string{"libc6", "cage", "xwayland", "ffmpeg", "libgl1", "seatd", fmt.Sprintf("shequ-agent (= %s)", version)} {
		if !strings.Contains(dep, d) {
			t.Errorf("shequ-kiosk: Depends %q lacks %s", dep, d)
		}
	}
	checkCursorTheme(t, built["shequ-kiosk"])
}

// checkCursorTheme reads the invisible cursor (Xcursor(3)): one image
// chunk, 1x1, its pixel fully transparent; every other name links to it.
func checkCursorTheme(t *testing.T, deb string) {
	have := contents(t, deb)
	const dir = "/usr/share/icons/shequ-invisible/cursors/"
	for _, name := range []string{"default", "pointer", "text", "xterm", "hand2", "crosshair", "sb_h_double_arrow", "sb_v_double_arrow"} {
		if e := have[dir+name]; e.link != "left_ptr" {
			t.Errorf("shequ-kiosk: %s%s is %+v, want a link to left_ptr", dir, name, e)
		}
	}
	b := extract(t, deb, strings.TrimPrefix(dir, "/")+"left_ptr")
	u32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	const image = 0xfffd0002
	switch {
	case len(b) != 68 || string(b[:4]) != "Xcur":
		t.Fatalf("left_ptr: not a 68-byte Xcursor file: %q", b)
	case u32(4) != 16 || u32(12) != 1:
		t.Errorf("left_ptr: header size %d, %d table entries", u32(4), u32(12))
	case u32(16) != image || u32(24) != 28:
		t.Errorf("left_ptr: table entry type %#x at %d", u32(16), u32(24))
	case u32(28) != 36 || u32(32) != image || u32(40) != 1:
		t.Errorf("left_ptr: chunk header size %d, type %#x, version %d", u32(28), u32(32), u32(40))
	case u32(44) != 1 || u32(48) != 1:
		t.Errorf("left_ptr: image %dx%d, want 1x1", u32(44), u32(48))
	case u32(64) != 0:
		t.Errorf("left_ptr: pixel %#08x, want 0 (transparent)", u32(64))
	}
}

// units are the systemd units of the packages and the highest exposure
// level "systemd-analyze security" may give each (lower is safer; the
// kiosk session needs the GPU and the seat's devices).
var units = map[string]float64{
	"shequ-hub.service":           1.5,
	"shequ-hub-mosquitto.service": 1.0,
	"shequ-hub-mosquitto.path":    0,
	"shequ-agent.service":         1.5,
	"shequ-kiosk.service":         2.5,
}

// TestUnits checks the units with systemd-analyze: verify (syntax, known
// settings) and security (the sandbox's exposure level).
func TestUnits(t *testing.T) {
	need(t, "systemd-analyze")
	var files []string
	for u := range units {
		files = append(files, "./"+u)
	}
	sort.Strings(files)
	cmd := exec.Command("systemd-analyze", append([]string{"verify", "--man=no"}, files...)...)
	// LC_ALL=C: the messages matched below are the untranslated ones
	// (make test runs with LANG=zh_CN.UTF-8).
	cmd.Env = append(os.Environ(), "SYSTEMD_LOG_LEVEL=notice", "LC_ALL=C")
	out, _ := cmd.CombinedOutput() // non-zero when a command is missing, below
	// The programs the units run need not be installed on this machine.
	missing := regexp.MustCompile(`: Command (/\S+) is not executable: No such file or directory$`)
	for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if m := missing.FindStringSubmatch(l); m != nil {
			if _, err := os.Stat(m[1]); os.IsNotExist(err) {
				continue
			}
		}
		if l != "" {
			t.Errorf("systemd-analyze verify: %s", l)
		}
	}
	level := regexp.MustCompile(`Overall exposure level for \S+: ([0-9.]+)`)
	for u, limit := range units {
		if !strings.HasSuffix(u, ".service") {
			continue
		}
		out, err := exec.Command("systemd-analyze", "security", "--offline=true", "--no-pager", "./"+u).CombinedOutput()
		m := level.FindSubmatch(out)
		if m == nil {
			t.Errorf("systemd-analyze security %s: %v\n%s", u, err, out)
			continue
		}
		var got float64
		fmt.Sscan(string(m[1]), &got)
		if got > limit {
			t.Errorf("systemd-analyze security %s: exposure %.1f, more than %.1f: the sandbox got weaker\n%s", u, got, limit, out)
		}
	}
}

// TestVersion checks version.sh's mapping from git describe to Debian
// versions, and that dpkg orders the results as releases go.
func TestVersion(t *testing.T) {
	need(t, "dpkg")
	for _, c := range []struct{ describe, want string }{
		{"v1.2.3", "1.2.3"},
		{"v1.2.3-rc.1", "1.2.3~rc.1"},
		{"v1.2.3-5-g1a2b3c4", "1.2.3+git272.20261203.g1a2b3c4"},
		{"v1.2.3-5-g1a2b3c4-dirty", "1.2.3+git272.20261203.g1a2b3c4.dirty"},
		{"1a2b3c4", "0.0.0~git272.20261203.g1a2b3c4"},
		{"1a2b3c4-dirty", "0.0.0~git272.20261203.g1a2b3c4.dirty"},
		{"v1.2.3-dirty", "1.2.3+git272.20261203.dirty"},
	} {
		out, err := exec.Command("./version.sh", c.describe, "272", "20261203").CombinedOutput()
		if got := strings.TrimSpace(string(out)); err != nil || got != c.want {
			t.Errorf("version.sh %s = %q (%v), want %q", c.describe, got, err, c.want)
		}
	}
	for _, bad := range []string{"release-1", "v1.2", ""} {
		if out, err := exec.Command("./version.sh", bad, "1", "20261203").CombinedOutput(); err == nil {
			t.Errorf("version.sh %q = %q, want an error", bad, out)
		}
	}
	ordered := []string{
		"0.0.0~git266.20261203.gffffff0",
		"0.0.0~git267.20261127.g0000000", // a later commit with an older date
		"0.0.0~git267.20261127.g0000000.dirty",
		"1.0.0~rc.1",
		"1.0.0~rc.1+git300.20270101.gabc1234",
		"1.0.0",
		"1.0.0+git301.20270102.gabc1235",
		"1.0.1",
	}
	for i := 1; i < len(ordered); i++ {
		if err := exec.Command("dpkg", "--compare-versions", ordered[i-1], "lt", ordered[i]).Run(); err != nil {
			t.Errorf("dpkg does not order %s before %s", ordered[i-1], ordered[i])
		}
	}
	// The checkout's own version is valid.
	if out, err := exec.Command("./version.sh").CombinedOutput(); err != nil ||
		!regexp.MustCompile(`^[0-9][A-Za-z0-9.+~]*\n$`).Match(out) {
		t.Errorf("version.sh: %q, %v", out, err)
	}
}
