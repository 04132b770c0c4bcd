package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/shequ/shequ/cmd/internal/xtest"
	"github.com/shequ/shequ/protocol"
)

// benchWindow is how long CPU and memory are measured.
const benchWindow = 10 * time.Second

// clockTick is the kernel's USER_HZ: /proc/<pid>/stat counts CPU time in
// these (100 on every Linux we ship).
const clockTick = 10 * time.Millisecond

// procCPU returns the user+system CPU time of pid from /proc/<pid>/stat.
func procCPU(pid int) (time.Duration, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, err
	}
	// The command name (field 2) may contain spaces: fields count from ')'.
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	if len(f) < 13 {
		return 0, fmt.Errorf("/proc/%d/stat: %d fields", pid, len(f))
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64) // field 14 utime
	st, err2 := strconv.ParseInt(f[12], 10, 64) // field 15 stime
	if err1 != nil || err2 != nil {
		return 0, fmt.Errorf("/proc/%d/stat: bad times", pid)
	}
	return time.Duration(ut+st) * clockTick, nil
}

// procRSS returns VmRSS of pid in bytes from /proc/<pid>/status.
func procRSS(pid int) (int64, error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(data), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no VmRSS", pid)
}

// tree returns pid and all its descendants.
func tree(pid int) []int {
	children := map[int][]int{}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return []int{pid}
	}
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
		if err != nil {
			continue
		}
		s := string(data)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) < 2 {
			continue
		}
		if pp, err := strconv.Atoi(f[1]); err == nil {
			children[pp] = append(children[pp], p)
		}
	}
	out := []int{pid}
	for i := 0; i < len(out); i++ {
		out = append(out, children[out[i]]...)
	}
	return out
}

// usage is what a process tree used over the window.
type usage struct {
	CPU      float64 // share of one core, process tree
	ChildCPU float64 // of which the children (the kiosk's ffmpeg)
	XCPU     float64 // share of one core used by the X server meanwhile
	RSS      int64   // peak total VmRSS of the tree, bytes
	RSS0     int64   // total VmRSS at the first sample
	Children int     // processes in the tree at the end
}

// measure samples the tree of pid and the X server xpid over benchWindow.
func measure(b *testing.B, pid, xpid int) usage {
	b.Helper()
	start := map[int]time.Duration{}
	for _, p := range tree(pid) {
		if c, err := procCPU(p); err == nil {
			start[p] = c
		}
	}
	x0, err := procCPU(xpid)
	if err != nil {
		b.Fatalf("X server CPU: %v", err)
	}
	t0 := time.Now()
	var peak, rss0 int64
	var pids []int
	for time.Since(t0) < benchWindow {
		<-time.After(500 * time.Millisecond) // a sampling interval, not a wait for a condition
		pids = tree(pid)
		var rss int64
		for _, p := range pids {
			if r, err := procRSS(p); err == nil {
				rss += r
			}
		}
		peak = max(peak, rss)
		if rss0 == 0 {
			rss0 = rss
		}
	}
	elapsed := time.Since(t0)
	var used, children time.Duration
	for _, p := range pids {
		if c, err := procCPU(p); err == nil {
			used += c - start[p]
			if p != pid {
				children += c - start[p]
			}
		}
	}
	x1, err := procCPU(xpid)
	if err != nil {
		b.Fatalf("X server CPU: %v", err)
	}
	return usage{
		CPU:      float64(used) / float64(elapsed),
		ChildCPU: float64(children) / float64(elapsed),
		XCPU:     float64(x1-x0) / float64(elapsed),
		RSS:      peak,
		RSS0:     rss0,
		Children: len(pids) - 1,
	}
}

// xServerPID finds the X server serving disp when the benchmark did not
// start it ($SHEQU_XTEST_DISPLAY): $XVFB_PID (exported by
// packaging/dev/xvfb.sh), or the Xvfb started with disp on its command line.
func xServerPID(b *testing.B, disp string) int {
	b.Helper()
	if s := os.Getenv("XVFB_PID"); s != "" {
		pid, err := strconv.Atoi(s)
		if err != nil {
			b.Fatalf("XVFB_PID %q: %v", s, err)
		}
		return pid
	}
	out, err := exec.Command("pgrep", "-f", "Xvfb "+disp+"( |$)").Output()
	if err != nil {
		b.Fatalf("find Xvfb for %s: %v", disp, err)
	}
	pid, err := strconv.Atoi(strings.Fields(string(out))[0])
	if err != nil {
		b.Fatal(err)
	}
	return pid
}

// BenchmarkAttractVideoCPU plays a 720p25 file in the kiosk's attract loop
// under Xvfb, then the same file with mpv in the same Xvfb, and reports the
// CPU (share of one core, the kiosk's ffmpeg included) and peak memory of
// each, the X server's CPU meanwhile, and the ratios. Run it with
// packaging/dev/kiosk-video-bench.sh (or -bench AttractVideoCPU -benchtime 1x).
func BenchmarkAttractVideoCPU(b *testing.B) {
	dir := b.TempDir()
	bin := filepath.Join(dir, "kiosk")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		b.Fatalf("build kiosk: %v\n%s", err, out)
	}
	clip := filepath.Join(dir, "720p25.mp4")
	if out, err := exec.Command("ffmpeg", "-nostdin", "-v", "error", "-f", "lavfi", "-i", "testsrc=size=1280x720:rate=25",
		"-t", "40", "-pix_fmt", "yuv420p", "-c:v", "libx264", "-b:v", "4M", "-movflags", "+faststart", clip).CombinedOutput(); err != nil {
		b.Fatalf("generate video: %v\n%s", err, out)
	}
	data, err := os.ReadFile(clip)
	if err != nil {
		b.Fatal(err)
	}
	sum := sha256.Sum256(data)
	sha := hex.EncodeToString(sum[:])
	agent := &fakeAgent{content: protocol.LocalNotices{
		Kiosk: "k-bench", Version: 1,
		Station: protocol.Station{Name: "基准测试", Community: "c1"},
		Playlists: []protocol.Playlist{{ID: "pl-bench", Name: "720p", ValidFrom: time.Now().Add(-time.Hour),
			Targets: []protocol.Target{{Level: protocol.LevelCommunity, ID: "c1"}},
			Items:   []protocol.PlaylistItem{{Kind: protocol.ItemVideo, Media: sha}}}},
		Media: []protocol.LocalMedia{{SHA256: sha, Kind: protocol.MediaVideo, Path: clip}},
	}}
	socket := serveAgent(b, agent)
	disp, xpid := xtest.Server(b)
	if xpid == 0 {
		xpid = xServerPID(b, disp)
	}
	env := append(os.Environ(), "DISPLAY="+disp, "LANG=zh_CN.UTF-8", "LIBGL_ALWAYS_SOFTWARE=1", "FYNE_SCALE=1")

	run := func(name string, args ...string) usage {
		cmd := exec.Command(args[0], args[1:]...)
		cmd.Env = env
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		if err := cmd.Start(); err != nil {
			b.Fatalf("start %s: %v", name, err)
		}
		defer func() {
			if err := cmd.Process.Kill(); err != nil {
				b.Logf("kill %s: %v", name, err)
			}
			if err := cmd.Wait(); err != nil && cmd.ProcessState.ExitCode() != -1 {
				b.Logf("%s exited: %v\n%s", name, err, out.String())
			}
		}()
		// Warm up: wait for the video on screen, then 2 s more.
		waitFor(b, 60*time.Second, name+" playing", func() (bool, error) {
			if cmd.ProcessState != nil {
				return false, fmt.Errorf("%s exited: %s", name, out.String())
			}
			img, _ := xtest.Screenshot(b, disp)
			got := testsrcColours(img, img.Rect, 2000)
			return len(got) >= 4, fmt.Errorf("colours %v", got)
		})
		<-time.After(2 * time.Second)
		u := measure(b, cmd.Process.Pid, xpid)
		b.Logf("%s: %.1f%% of a core (children %.1f%%; X server %.1f%%), RSS %.1f MiB at start, peak %.1f MiB, %d child processes",
			name, 100*u.CPU, 100*u.ChildCPU, 100*u.XCPU, float64(u.RSS0)/(1<<20), float64(u.RSS)/(1<<20), u.Children)
		return u
	}
	for i := 0; i < b.N; i++ {
		k := run("kiosk", bin, "-socket", socket, "-windowed", "-size", "1080x1920", "-attract", "1s")
		m := run("mpv", "mpv", "--no-config", "--no-audio", "--vo=x11", "--loop=inf", "--really-quiet",
			"--geometry=1080x608+0+0", "--no-border", clip)
		b.ReportMetric(100*k.CPU, "kiosk-cpu%")
		b.ReportMetric(100*k.ChildCPU, "kiosk-ffmpeg-cpu%")
		b.ReportMetric(100*k.XCPU, "kiosk-xvfb-cpu%")
		b.ReportMetric(float64(k.RSS)/(1<<20), "kiosk-MiB")
		b.ReportMetric(100*m.CPU, "mpv-cpu%")
		b.ReportMetric(100*m.XCPU, "mpv-xvfb-cpu%")
		b.ReportMetric(float64(m.RSS)/(1<<20), "mpv-MiB")
		b.ReportMetric(k.CPU/m.CPU, "cpu-ratio")
		b.ReportMetric((k.CPU+k.XCPU)/(m.CPU+m.XCPU), "cpu+x-ratio")
		b.ReportMetric(float64(k.RSS)/float64(m.RSS), "mem-ratio")
	}
}
