package e2e

import (
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/browser"
	"github.com/shequ/shequ/hub"
)

// releaseBundle makes a small signed release bundle with
// packaging/image/update-key.sh and bundle.sh, as a release is made
// (docs/updates.md), and returns the update CA and the bundle.
func releaseBundle(t *testing.T, version string) (ca, bundle string) {
	t.Helper()
	for _, tool := range []string{"rauc", "mksquashfs", "openssl", "mkfs.ext4"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Fatalf("%s is missing (packaging/dev/deps.sh installs it): %v", tool, err)
		}
	}
	dir := t.TempDir()
	image := filepath.Join(repoRoot(), "packaging/image")
	keys := filepath.Join(dir, "keys")
	run(t, filepath.Join(image, "update-key.sh"), keys)
	bundle = filepath.Join(dir, "release-"+version+".raucb")
	cmd := exec.Command(filepath.Join(image, "bundle.sh"), tinyRoot(t, dir), version, bundle)
	cmd.Env = append(os.Environ(), "COMP=lz4", "UPDATE_CERT="+filepath.Join(keys, "release.pem"), "UPDATE_KEY="+filepath.Join(keys, "release.key"))
	if b, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("bundle.sh: %v\n%s", err, b)
	}
	return filepath.Join(keys, "ca.pem"), bundle
}

// TestReleasesInBrowser: a district admin uploads a signed release bundle
// on the console's releases page (upload.js posts it to the hub, which
// checks it with RAUC against the update CA), starts a rollout of it in
// two stages, finds it listed, and halts it with a reason; the fleet page
// has the OS version and update columns.
func TestReleasesInBrowser(t *testing.T) {
	const version = "1.4.0"
	ca, bundle := releaseBundle(t, version)
	e := &env{t: t, cfg: hub.Config{
		DataDir: t.TempDir(), OrgFile: demoOrg, MQTTListen: freeAddr(t), HTTPListen: "127.0.0.1:0", UpdateCA: ca,
	}}
	e.start()
	t.Cleanup(e.stop)
	base := e.hub.HTTPURL()
	admin := e.api().addAccount("zhao.gl", "赵管理员", "district_admin", "huangpu")

	b := browser.Start(t, browser.WithCA(e.hub.CACertPEM()))
	tab := b.NewTab(t, browser.Desktop())
	login(t, tab, base, admin)
	if code := tab.ClickLoad(`header a[href="/releases"]`); code != http.StatusOK {
		t.Fatalf("the menu's link to /releases: %d", code)
	}
	wantLayout(t, tab)

	// 1. Upload: the file with notes, a progress bar, then the list.
	tab.SetFile(`#upload input[type="file"]`, bundle)
	tab.Fill(`#upload textarea[name="notes"]`, "修复打印机驱动")
	tab.Click("#upload-button")
	tab.WithTimeout(2*time.Minute).WaitText("#flash", "更新包已上传并通过校验")
	row := tab.Text(`#releases tr[data-version="` + version + `"]`)
	for _, want := range []string{version, "赵管理员 (zhao.gl)", "修复打印机驱动"} {
		if !strings.Contains(row, want) {
			t.Errorf("the release's row %q lacks %q", row, want)
		}
	}
	shot(t, tab, "console-releases.png")

	// 2. A rollout in two stages.
	tab.Select(`#rollout-form select[name="release"]`, version)
	tab.Fill(`#rollout-form textarea[name="stages"]`, "试点: k-sangcheng-01\n五里桥：wuliqiao")
	tab.Fill(`#rollout-form input[name="soak"]`, "0")
	if code := tab.Submit("#start"); code != http.StatusOK {
		t.Fatalf("starting the rollout: page answered %d", code)
	}
	tab.WaitText("#flash", "分批更新已开始")
	tab.WaitText("#state", "进行中")
	path := strings.TrimPrefix(tab.URL(), base)
	id, ok := strings.CutPrefix(strings.Split(path, "?")[0], "/releases/rollouts/")
	if !ok {
		t.Fatalf("starting the rollout landed on %s", path)
	}
	for stage, want := range map[string]string{"试点": "当前批次", "五里桥": "等待中"} {
		if got := tab.Text(`#stages tr[data-stage="` + stage + `"]`); !strings.Contains(got, want) {
			t.Errorf("stage %s: %q, want %q", stage, got, want)
		}
	}
	tab.WaitText(`#kiosks tr[data-kiosk="k-sangcheng-02"]`, "五里桥")
	if code := tab.Go(base + "/releases"); code != http.StatusOK {
		t.Fatalf("GET /releases: %d", code)
	}
	if got := tab.Text(`#rollouts tr[data-rollout="` + id + `"]`); !strings.Contains(got, version) || !strings.Contains(got, "进行中") ||
		!strings.Contains(got, "试点 (1/2)") {
		t.Errorf("the rollout's row %q, want the release, 进行中 and 试点 (1/2)", got)
	}

	// 3. Halt it with a reason.
	if code := tab.ClickLoad(`#rollouts a[href="/releases/rollouts/` + id + `"]`); code != http.StatusOK {
		t.Fatalf("open rollout %s: %d", id, code)
	}
	tab.Click("#open-halt")
	tab.Fill(`#form-halt input[name="reason"]`, "试点终端打印异常")
	if code := tab.Submit("#halt"); code != http.StatusOK {
		t.Fatalf("halt: page answered %d", code)
	}
	tab.WaitText("#flash", "分批更新已暂停")
	tab.WaitText("#state", "已暂停")
	tab.WaitText("#reason", "试点终端打印异常")
	tab.WaitVisible("#resume")
	shot(t, tab, "console-rollout.png")

	if code := tab.Go(base + "/fleet"); code != http.StatusOK {
		t.Fatalf("GET /fleet: %d", code)
	}
	tab.WaitText("#fleet thead", "系统版本")
	tab.WaitText("#fleet thead", "系统更新")

	// The bureau admin's menu, the longest (it has API tokens too), still
	// fits in one row with the new entry, in both languages.
	bureau := e.api().addAccount("qian.sj", "钱市局", "bureau_admin", "shanghai")
	city := b.NewTab(t, browser.Desktop())
	login(t, city, base, bureau)
	for _, lang := range []string{"zh", "en"} {
		if code := city.Go(base + "/lang?to=" + lang + "&back=/releases"); code != http.StatusOK {
			t.Fatalf("GET /releases (%s): %d", lang, code)
		}
		city.WaitVisible(`#rollouts tr[data-rollout="` + id + `"]`)
		wantLayout(t, city)
	}
}
