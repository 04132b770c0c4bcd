package shequ_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/shequ/shequ"

// pkg is the part of `go list -json` output the rules look at.
type pkg struct {
	ImportPath string
	Name       string
	Doc        string
	Standard   bool
	GoFiles    []string
	CgoFiles   []string
	Imports    []string
	Deps       []string // transitive, without test-only imports
	Module     *struct{ Path string }
	Error      *struct{ Err string }
}

// rule forbids packages under a prefix of this module from depending,
// directly or transitively, on any path under one of the banned prefixes.
type rule struct {
	under  string   // path relative to the module, "" for the module root
	banned []string // import path prefixes
	why    string
}

var rules = []rule{
	{"agent", []string{"fyne.io/", module + "/hub", module + "/kiosk"}, "the agent runs headless and never depends on the UI or the hub"},
	{"kiosk", []string{"go.etcd.io/bbolt", "github.com/eclipse/paho.mqtt.golang", "github.com/mochi-mqtt/", module + "/hub", module + "/agent"}, "the kiosk UI talks to the agent only through the local API"},
	{"hub", []string{module + "/agent", module + "/kiosk", "fyne.io/"}, "the hub never depends on device code"},
}

var bannedElements = []string{"util", "utils", "common", "misc", "helpers"}

// within reports whether path is prefix or below it (path-element aware).
func within(path, prefix string) bool {
	return path == prefix || strings.HasPrefix(path, prefix+"/")
}

// check returns one line per violation of the repository's import rules.
// all holds every package `go list -deps` printed, ours and dependencies.
func check(all []pkg) []string {
	byPath := make(map[string]pkg, len(all))
	for _, p := range all {
		byPath[p.ImportPath] = p
	}
	var bad []string
	for _, p := range all {
		if !within(p.ImportPath, module) {
			continue
		}
		rel := strings.TrimPrefix(strings.TrimPrefix(p.ImportPath, module), "/")
		deps := append(slices.Clone(p.Imports), p.Deps...)

		if within(rel, "protocol") {
			for _, d := range deps {
				if within(d, "github.com/google/uuid") || within(d, module+"/protocol") {
					continue
				}
				if dp, ok := byPath[d]; ok && dp.Standard {
					continue
				}
				if !strings.Contains(strings.SplitN(d, "/", 2)[0], ".") && !within(d, module) {
					continue // standard library even when `go list` did not print it
				}
				bad = append(bad, fmt.Sprintf("%s imports %s: protocol may import only the standard library and github.com/google/uuid", p.ImportPath, d))
			}
		}
		for _, r := range rules {
			if !within(rel, r.under) {
				continue
			}
			for _, d := range deps {
				for _, b := range r.banned {
					if within(d, strings.TrimSuffix(b, "/")) || (strings.HasSuffix(b, "/") && strings.HasPrefix(d, b)) {
						bad = append(bad, fmt.Sprintf("%s depends on %s: %s", p.ImportPath, d, r.why))
					}
				}
			}
		}
		if rel != "cmd/kiosk" && slices.Contains(deps, "fyne.io/fyne/v2/app") {
			bad = append(bad, fmt.Sprintf("%s depends on fyne.io/fyne/v2/app: only cmd/kiosk may (it needs cgo and GL)", p.ImportPath))
		}
		for _, el := range strings.Split(rel, "/") {
			if slices.Contains(bannedElements, el) {
				bad = append(bad, fmt.Sprintf("%s: package path element %q names no purpose", p.ImportPath, el))
			}
		}
		if len(p.GoFiles)+len(p.CgoFiles) > 0 && strings.TrimSpace(p.Doc) == "" {
			bad = append(bad, fmt.Sprintf("%s has no package doc comment", p.ImportPath))
		}
	}
	slices.Sort(bad)
	return slices.Compact(bad)
}

func goCommand(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("go"); err == nil {
		return p
	}
	if root := os.Getenv("GOROOT"); root != "" {
		return filepath.Join(root, "bin", "go")
	}
	return "/usr/local/go/bin/go"
}

// listPackages runs `go list -e -deps -json ./...` in the repository root.
func listPackages(t *testing.T) []pkg {
	t.Helper()
	cmd := exec.Command(goCommand(t), "list", "-e", "-deps", "-json", "./...")
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, stderr.Bytes())
	}
	var all []pkg
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p pkg
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("decode go list output: %v", err)
		}
		all = append(all, p)
	}
	return all
}

func TestImportRules(t *testing.T) {
	all := listPackages(t)
	var ours []string
	for _, p := range all {
		if within(p.ImportPath, module) {
			ours = append(ours, p.ImportPath)
		}
	}
	if !slices.Contains(ours, module+"/protocol") {
		t.Fatalf("go list did not report %s/protocol; got %v", module, ours)
	}
	t.Logf("checked %d packages of %s", len(ours), module)
	for _, v := range check(all) {
		t.Error(v)
	}
}

// TestCheck runs the checker on made-up package graphs, so a checker that
// stopped reporting violations would fail here.
func TestCheck(t *testing.T) {
	std := func(path string) pkg { return pkg{ImportPath: path, Standard: true} }
	ext := func(path string) pkg { return pkg{ImportPath: path} }
	our := func(rel string, deps ...string) pkg {
		return pkg{ImportPath: module + "/" + rel, Doc: "Package x does y.", GoFiles: []string{"x.go"}, Deps: deps}
	}
	base := []pkg{std("fmt"), std("encoding/json"), ext("github.com/google/uuid"), ext("go.etcd.io/bbolt"), ext("fyne.io/fyne/v2/app")}
	cases := []struct {
		name string
		pkgs []pkg
		want string // substring of the single expected violation; "" for none
	}{
		{"clean tree", []pkg{
			our("protocol", "fmt", "encoding/json", "github.com/google/uuid"),
			our("agent/store", "go.etcd.io/bbolt", module+"/protocol"),
			our("kiosk/ui", "fyne.io/fyne/v2", module+"/protocol"),
			our("cmd/kiosk", "fyne.io/fyne/v2/app", module+"/kiosk/ui"),
			our("hub/api", module+"/protocol", "fmt"),
		}, ""},
		{"protocol imports bbolt", []pkg{our("protocol", "fmt", "go.etcd.io/bbolt")}, "protocol may import only"},
		{"protocol imports our hub", []pkg{our("protocol", module+"/hub/store")}, "protocol may import only"},
		{"agent imports fyne", []pkg{our("agent/link", "fyne.io/fyne/v2")}, "agent runs headless"},
		{"agent imports hub", []pkg{our("agent", module+"/hub/orgtree")}, "agent runs headless"},
		{"kiosk imports bbolt", []pkg{our("kiosk/screen", "go.etcd.io/bbolt")}, "kiosk UI talks"},
		{"kiosk imports paho", []pkg{our("kiosk/agentclient", "github.com/eclipse/paho.mqtt.golang/packets")}, "kiosk UI talks"},
		{"kiosk imports mochi", []pkg{our("kiosk", "github.com/mochi-mqtt/server/v2")}, "kiosk UI talks"},
		{"kiosk imports agent", []pkg{our("kiosk/ui", module+"/agent/localapi")}, "kiosk UI talks"},
		{"hub imports agent", []pkg{our("hub/fleet", module+"/agent/store")}, "hub never depends"},
		{"hub imports kiosk", []pkg{our("hub", module+"/kiosk/i18n")}, "hub never depends"},
		{"app outside cmd/kiosk", []pkg{our("kiosk/ui", "fyne.io/fyne/v2/app")}, "only cmd/kiosk may"},
		{"app in another command", []pkg{our("cmd/shot", "fyne.io/fyne/v2/app")}, "only cmd/kiosk may"},
		{"util package", []pkg{our("hub/util")}, `"util"`},
		{"common package", []pkg{our("common/log")}, `"common"`},
		{"no doc comment", []pkg{{ImportPath: module + "/hub/store", GoFiles: []string{"store.go"}}}, "no package doc comment"},
		{"prefix is path-element aware", []pkg{our("agentx", "fyne.io/fyne/v2"), our("hubble", module+"/agent")}, ""},
		{"test-only directory needs no doc", []pkg{{ImportPath: module + "/e2e"}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got := check(append(slices.Clone(base), c.pkgs...))
			switch {
			case c.want == "" && len(got) != 0:
				t.Fatalf("violations %q, want none", got)
			case c.want != "" && (len(got) != 1 || !strings.Contains(got[0], c.want)):
				t.Fatalf("violations %q, want exactly one containing %q", got, c.want)
			}
		})
	}
}
