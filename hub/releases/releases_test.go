package releases_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/shequ/shequ/hub/media"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/releases"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// keys makes an update CA and release key with packaging/image/update-key.sh.
func keys(t *testing.T) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "keys")
	run(t, "", "../../packaging/image/update-key.sh", dir)
	return dir
}

// bundle makes a signed bundle of a small ext4 root with
// packaging/image/bundle.sh, as a release is made.
func bundle(t *testing.T, keyDir, version string) string {
	t.Helper()
	dir := t.TempDir()
	root := filepath.Join(dir, "root.ext4")
	if err := os.WriteFile(root, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(root, 4<<20); err != nil {
		t.Fatal(err)
	}
	run(t, "", "mkfs.ext4", "-q", "-F", root)
	out := filepath.Join(dir, "release-"+version+".raucb")
	run(t, "UPDATE_CERT="+filepath.Join(keyDir, "release.pem")+"\x00UPDATE_KEY="+filepath.Join(keyDir, "release.key")+"\x00COMP=lz4",
		"../../packaging/image/bundle.sh", root, version, out)
	return out
}

func run(t *testing.T, env, name string, args ...string) {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Env = os.Environ()
	if env != "" {
		cmd.Env = append(cmd.Env, strings.Split(env, "\x00")...)
	}
	cmd.Env = append(cmd.Env, "PATH="+os.Getenv("PATH")+":/usr/sbin:/sbin")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("%s %v: %v\n%s\n(run packaging/dev/deps.sh for rauc, squashfs-tools, e2fsprogs and openssl)", name, args, err, out)
	}
}

type fixture struct {
	svc   *releases.Service
	st    *store.SQLite
	files *media.Files
	pub   *publisher
	now   time.Time
	mu    sync.Mutex
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	f.now = f.now.Add(d)
	f.mu.Unlock()
}

type publisher struct {
	mu     sync.Mutex
	offers map[string]protocol.UpdateOffer
	n      int
}

func (p *publisher) PublishOffer(_ context.Context, o protocol.UpdateOffer) error {
	if err := o.Validate(); err != nil {
		return err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if prev, ok := p.offers[o.Kiosk]; ok && o.Seq <= prev.Seq {
		return errors.New("offer seq did not grow")
	}
	p.offers[o.Kiosk] = o
	p.n++
	return nil
}

func (p *publisher) offer(kiosk string) (protocol.UpdateOffer, bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	o, ok := p.offers[kiosk]
	return o, ok
}

func newFixture(t *testing.T, ca string) *fixture {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	st, err := store.Open(ctx, filepath.Join(dir, "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	files, err := media.NewFiles(filepath.Join(dir, "media"))
	if err != nil {
		t.Fatal(err)
	}
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	f := &fixture{st: st, files: files, pub: &publisher{offers: map[string]protocol.UpdateOffer{}},
		now: time.Date(2026, 12, 3, 9, 0, 0, 0, time.UTC)}
	f.svc, err = releases.New(releases.Config{Store: st, Files: files, Tree: tree, Inspector: releases.RAUC{Keyring: ca},
		Now: f.clock}, slog.New(slog.NewTextHandler(io.Discard, nil)))
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func upload(t *testing.T, f *fixture, path string) (store.ReleaseRecord, error) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return f.svc.Upload(context.Background(), bytes.NewReader(b), "winter release", "account:a1")
}

// TestUpload: a bundle signed under the update CA becomes a release kept
// by hash; one signed under another CA, a file that is no bundle, and a
// version uploaded twice are refused, and nothing of them is kept.
func TestUpload(t *testing.T) {
	k := keys(t)
	f := newFixture(t, filepath.Join(k, "ca.pem"))
	good := bundle(t, k, "1.4.0")
	rec, err := upload(t, f, good)
	if err != nil {
		t.Fatalf("upload of a good bundle: %v", err)
	}
	info, _ := os.Stat(good)
	if rec.Version != "1.4.0" || rec.Compatible != releases.DefaultCompatible || rec.Size != info.Size() || !f.files.Has(rec.SHA256) {
		t.Errorf("release = %+v; want version 1.4.0, kiosk compatible, %d bytes, in the media store", rec, info.Size())
	}
	if _, err := upload(t, f, good); !errors.Is(err, releases.ErrConflict) {
		t.Errorf("second upload of 1.4.0 = %v; want ErrConflict", err)
	}
	other := keys(t)
	if _, err := upload(t, f, bundle(t, other, "1.5.0")); !errors.Is(err, releases.ErrBadRequest) ||
		!strings.Contains(err.Error(), "signature verification failed") {
		t.Errorf("upload signed under another CA = %v; want ErrBadRequest naming the signature", err)
	}
	junk := filepath.Join(t.TempDir(), "junk.raucb")
	if err := os.WriteFile(junk, bytes.Repeat([]byte("not a bundle "), 1000), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := upload(t, f, junk); !errors.Is(err, releases.ErrBadRequest) {
		t.Errorf("upload of a file that is no bundle = %v; want ErrBadRequest", err)
	}
	rs, err := f.svc.Releases(context.Background())
	if err != nil || len(rs) != 1 {
		t.Errorf("releases = %+v, %v; want only 1.4.0", rs, err)
	}
	tmp, err := os.ReadDir(filepath.Join(f.files.Dir, "tmp"))
	if err != nil || len(tmp) != 0 {
		t.Errorf("media tmp holds %d files after refused uploads (%v); want none", len(tmp), err)
	}
}

func status(t *testing.T, f *fixture, kiosk, version string, state protocol.UpdateState, release, reason string) {
	t.Helper()
	u := protocol.UpdateStatus{Kiosk: kiosk, Epoch: 1, Slot: "A", Version: version, Release: release, State: state, Reason: reason}
	if err := u.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := f.svc.UpdateStatus(context.Background(), u, f.clock()); err != nil {
		t.Fatal(err)
	}
}

func step(t *testing.T, f *fixture) {
	t.Helper()
	if err := f.svc.Step(context.Background(), f.pub, false); err != nil {
		t.Fatal(err)
	}
}

func view(t *testing.T, f *fixture, id string) releases.RolloutView {
	t.Helper()
	v, err := f.svc.View(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestRolloutStages walks a rollout over the demo tree: a canary kiosk,
// then the rest of its community, then the street. Only kiosks whose
// agents report update statuses are offered the release; a stage moves on
// once healthy for the soak time; a rollback in a stage past the limit
// halts the rollout, withdraws the offer from kiosks not yet on the
// release, and leaves it with those that are.
func TestRolloutStages(t *testing.T) {
	k := keys(t)
	f := newFixture(t, filepath.Join(k, "ca.pem"))
	ctx := context.Background()
	rel, err := upload(t, f, bundle(t, k, "1.4.0"))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.svc.Start(ctx, releases.RolloutRequest{Release: "1.4.0", Stages: []store.Stage{{Name: "canary", Targets: []string{"nowhere"}}}}, "a"); !errors.Is(err, releases.ErrBadRequest) {
		t.Errorf("rollout to an unknown node = %v; want ErrBadRequest", err)
	}
	ro, err := f.svc.Start(ctx, releases.RolloutRequest{Release: "1.4.0", SoakSeconds: 600, Stages: []store.Stage{
		{Name: "canary", Targets: []string{"k-sangcheng-01"}},
		{Name: "桑城", Targets: []string{"sangcheng"}},
		{Name: "五里桥", Targets: []string{"wuliqiao"}},
	}}, "account:a1")
	if err != nil {
		t.Fatal(err)
	}
	step(t, f)
	if _, ok := f.pub.offer("k-sangcheng-01"); ok {
		t.Fatal("a kiosk that never sent an update status was offered the release")
	}
	for _, id := range []string{"k-sangcheng-01", "k-sangcheng-02", "k-ruiyi-01"} {
		status(t, f, id, "1.3.2", protocol.UpdateIdle, "", "")
	}
	step(t, f)
	o, ok := f.pub.offer("k-sangcheng-01")
	if !ok || o.Release != "1.4.0" || o.Rollout != ro.ID || o.Bundle.SHA256 != rel.SHA256 || !f.svc.Offered("k-sangcheng-01", rel.SHA256) {
		t.Fatalf("canary offer = %+v, %v; want 1.4.0 of %s with the bundle, served to it", o, ok, ro.ID)
	}
	if _, ok := f.pub.offer("k-sangcheng-02"); ok || f.svc.Offered("k-sangcheng-02", rel.SHA256) {
		t.Fatal("a kiosk of the second stage was offered the release during the canary stage")
	}
	published := f.pub.n
	step(t, f)
	if f.pub.n != published {
		t.Errorf("a step with nothing changed published %d offers", f.pub.n-published)
	}

	// The canary installs and passes its gate: the stage is healthy, and
	// moves on after the soak.
	status(t, f, "k-sangcheng-01", "1.4.0", protocol.UpdateHealthy, "1.4.0", "")
	step(t, f)
	if v := view(t, f, ro.ID); v.Stage != 0 || v.Stages[0].Healthy != 1 {
		t.Fatalf("before the soak: stage %d, counts %+v; want still the canary, 1 healthy", v.Stage, v.Stages[0].Counts)
	}
	f.advance(10 * time.Minute)
	step(t, f)
	if v := view(t, f, ro.ID); v.Stage != 1 || v.State != store.RolloutRunning {
		t.Fatalf("after the soak: %s at stage %d; want running at stage 1", v.State, v.Stage)
	}
	if o, ok := f.pub.offer("k-sangcheng-02"); !ok || o.Release != "1.4.0" {
		t.Fatalf("second stage offer = %+v, %v; want 1.4.0", o, ok)
	}
	if _, ok := f.pub.offer("k-ruiyi-01"); ok {
		t.Fatal("the third stage was offered the release during the second")
	}

	// The second stage's kiosk rolls back: 1 of 1 is over the 10% limit.
	dup, err := f.svc.UpdateReport(ctx, protocol.NewID(), protocol.UpdateReport{Kiosk: "k-sangcheng-02", Rollout: ro.ID,
		Release: "1.4.0", State: protocol.UpdateRolledBack, Slot: "A", Version: "1.3.2",
		Reason: "health gate: shequ-kiosk.service restarted 3 times (crash loop)", At: f.clock()}, f.clock())
	if err != nil || dup {
		t.Fatal(dup, err)
	}
	step(t, f)
	v := view(t, f, ro.ID)
	if v.State != store.RolloutHalted || !strings.Contains(v.Reason, "1 of 1") || v.Stages[1].Bad != 1 {
		t.Fatalf("after a rollback: %s (%q), stage counts %+v; want halted naming 1 of 1", v.State, v.Reason, v.Stages[1].Counts)
	}
	if o, _ := f.pub.offer("k-sangcheng-02"); o.Release != "" {
		t.Errorf("the rolled-back kiosk is still offered %q; want the offer withdrawn", o.Release)
	}
	if o, _ := f.pub.offer("k-sangcheng-01"); o.Release != "1.4.0" {
		t.Errorf("the canary, which runs 1.4.0, is offered %q; want 1.4.0 kept", o.Release)
	}
	for _, kv := range v.Kiosks {
		if kv.Kiosk == "k-sangcheng-02" && (kv.State != protocol.UpdateRolledBack || !strings.Contains(kv.Reason, "crash loop")) {
			t.Errorf("kiosk view = %+v; want rolled back with the gate's reason", kv)
		}
	}
	if _, err := f.svc.SetState(ctx, ro.ID, store.RolloutHalted, "again"); !errors.Is(err, releases.ErrConflict) {
		t.Errorf("halting a halted rollout = %v; want ErrConflict", err)
	}
	if _, err := f.svc.SetState(ctx, ro.ID, store.RolloutCancelled, "bad release"); err != nil {
		t.Fatal(err)
	}
	if rs, _ := f.st.Rollout(ctx, ro.ID); rs.State != store.RolloutCancelled || rs.Reason != "bad release" {
		t.Errorf("after cancel: %+v", rs)
	}
}
