package open311

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/xml"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/santhosh-tekuri/jsonschema/v6"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
)

const adminToken = "test-admin-token-0123456789"

type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) Add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

// monday 09:00 in Shanghai.
var monday = time.Date(2026, 11, 2, 9, 0, 0, 0, shanghai)

// actor is a staff Scope over the org tree: it sees its node and below.
type actor struct {
	id, role, node string
	tree           *orgtree.Tree
}

func (a actor) ID() string   { return a.id }
func (a actor) Role() string { return a.role }
func (a actor) CanSee(node string) bool {
	for n := a.tree.Node(node); n != nil; n = n.Parent() {
		if n.ID == a.node {
			return true
		}
	}
	return false
}

type fixture struct {
	t     *testing.T
	srv   *Server
	cases *cases.Service
	st    *store.SQLite
	tree  *orgtree.Tree
	clock *clock
	ts    *httptest.Server
}

func newFixture(t *testing.T, cfg Config) *fixture {
	t.Helper()
	tree, err := orgtree.Load(filepath.Join("..", "..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := store.Open(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := st.Close(); err != nil {
			t.Error(err)
		}
	})
	clk := &clock{t: monday}
	cs, err := cases.New(cases.Config{Store: st, Tree: tree, Now: clk.Now})
	if err != nil {
		t.Fatal(err)
	}
	cfg.Cases, cfg.Store, cfg.Tree, cfg.Now = cs, st, tree, clk.Now
	cfg.Log = slog.New(slog.DiscardHandler)
	srv, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	a, err := api.New(api.Config{Store: st, Tree: tree, AdminToken: adminToken, Now: clk.Now}, cfg.Log)
	if err != nil {
		t.Fatal(err)
	}
	srv.Register(a)
	srv.RegisterAdmin(a)
	ts := httptest.NewServer(a)
	t.Cleanup(ts.Close)
	return &fixture{t: t, srv: srv, cases: cs, st: st, tree: tree, clock: clk, ts: ts}
}

// reply is an HTTP reply read whole.
type reply struct {
	code   int
	header http.Header
	body   []byte
}

func (f *fixture) do(method, path string, query url.Values, form url.Values, header http.Header) reply {
	f.t.Helper()
	u := f.ts.URL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, u, body)
	if err != nil {
		f.t.Fatal(err)
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded; charset=utf-8")
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		f.t.Fatal(err)
	}
	return reply{code: resp.StatusCode, header: resp.Header, body: b}
}

// addKey issues a key through the admin endpoint and returns the reply.
func (f *fixture) addKey(name, source string, nodes ...string) KeyCreated {
	f.t.Helper()
	b, err := json.Marshal(KeyRequest{Name: name, Nodes: nodes, Source: source})
	if err != nil {
		f.t.Fatal(err)
	}
	req, err := http.NewRequest(http.MethodPost, f.ts.URL+"/api/v1/open311/keys", bytes.NewReader(b))
	if err != nil {
		f.t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := f.ts.Client().Do(req)
	if err != nil {
		f.t.Fatal(err)
	}
	defer resp.Body.Close()
	var kc KeyCreated
	if resp.StatusCode != http.StatusCreated {
		f.t.Fatalf("add key: %s", resp.Status)
	}
	if err := json.NewDecoder(resp.Body).Decode(&kc); err != nil {
		f.t.Fatal(err)
	}
	return kc
}

var (
	schemaOnce sync.Once
	schemas    map[string]*jsonschema.Schema
	schemaErr  error
)

// schema returns a compiled schema of testdata/schemas.
func schema(t *testing.T, name string) *jsonschema.Schema {
	t.Helper()
	schemaOnce.Do(func() {
		schemas = map[string]*jsonschema.Schema{}
		files, err := filepath.Glob(filepath.Join("testdata", "schemas", "*.json"))
		if err != nil || len(files) == 0 {
			schemaErr = errors.Join(err, errors.New("no schemas in testdata/schemas"))
			return
		}
		c := jsonschema.NewCompiler()
		c.AssertFormat()
		for _, f := range files {
			s, err := c.Compile(f)
			if err != nil {
				schemaErr = err
				return
			}
			schemas[strings.TrimSuffix(filepath.Base(f), ".json")] = s
		}
	})
	if schemaErr != nil {
		t.Fatal(schemaErr)
	}
	s, ok := schemas[name]
	if !ok {
		t.Fatalf("no schema %s", name)
	}
	return s
}

// validJSON checks a JSON reply against a schema.
func validJSON(t *testing.T, name string, r reply) {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(r.body))
	if err != nil {
		t.Fatalf("reply is not JSON: %v\n%s", err, r.body)
	}
	if err := schema(t, name).Validate(v); err != nil {
		t.Errorf("reply does not match schema %s: %v\n%s", name, err, r.body)
	}
}

// xmlPaths returns the distinct element paths of an XML document
// ("services/service/service_code"), checking the declaration and that
// no element carries a namespace.
func xmlPaths(t *testing.T, r reply) []string {
	t.Helper()
	if ct := r.header.Get("Content-Type"); ct != "text/xml; charset=utf-8" {
		t.Errorf("Content-Type %q", ct)
	}
	if !bytes.HasPrefix(r.body, []byte(`<?xml version="1.0" encoding="UTF-8"?>`)) {
		t.Errorf("no XML declaration with UTF-8: %.60s", r.body)
	}
	d := xml.NewDecoder(bytes.NewReader(r.body))
	var (
		stack []string
		seen  = map[string]bool{}
	)
	for {
		tok, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("bad XML: %v\n%s", err, r.body)
		}
		switch e := tok.(type) {
		case xml.StartElement:
			if e.Name.Space != "" || len(e.Attr) > 0 {
				t.Errorf("element %v has a namespace or attributes", e.Name)
			}
			stack = append(stack, e.Name.Local)
			seen[strings.Join(stack, "/")] = true
		case xml.EndElement:
			stack = stack[:len(stack)-1]
		}
	}
	out := make([]string, 0, len(seen))
	for p := range seen {
		out = append(out, p)
	}
	slices.Sort(out)
	return out
}

// checkXML checks that an XML reply has only the allowed element paths
// (allowed is "root" then child paths relative to each item) and that it
// decodes into v.
func checkXML(t *testing.T, r reply, allowed []string, v any) {
	t.Helper()
	for _, p := range xmlPaths(t, r) {
		if !slices.Contains(allowed, p) {
			t.Errorf("unexpected XML element %s\n%s", p, r.body)
		}
	}
	if v != nil {
		if err := xml.Unmarshal(r.body, v); err != nil {
			t.Errorf("XML does not decode: %v", err)
		}
	}
}

// under prefixes every name with root/.
func under(root string, names ...string) []string {
	out := []string{root}
	for _, n := range names {
		out = append(out, root+"/"+n)
	}
	return out
}
