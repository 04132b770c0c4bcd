package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

const waitFor = 10 * time.Second

func demoTree(t *testing.T) *orgtree.Tree {
	t.Helper()
	tree, err := orgtree.Load(filepath.Join("..", "packaging", "demo", "org.json"))
	if err != nil {
		t.Fatal(err)
	}
	return tree
}

func startHub(t *testing.T, dataDir string, beforeAck func(string)) *Hub {
	t.Helper()
	return startHubLog(t, dataDir, beforeAck, slog.New(slog.DiscardHandler))
}

func startHubLog(t *testing.T, dataDir string, beforeAck func(string), log *slog.Logger) *Hub {
	t.Helper()
	h, err := New(Config{
		DataDir: dataDir, Org: demoTree(t), MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		BeforeAck: beforeAck,
	}, log)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitFor)
	defer cancel()
	if err := h.Start(ctx); err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Cleanup(func() {
		if err := h.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return h
}

// kiosk is a raw paho client playing an enrolled kiosk's agent.
type kiosk struct {
	id   string
	c    paho.Client
	acks chan protocol.Ack
}

func newKiosk(t *testing.T, h *Hub, id string) *kiosk {
	t.Helper()
	return newKioskOpts(t, h, id, h.BrokerURL(), nil)
}

// newKioskOpts enrols a device into the kiosk slot and connects it to url
// with its credentials; opts, if set, adjusts the client options.
func newKioskOpts(t *testing.T, h *Hub, id, url string, opts func(*paho.ClientOptions)) *kiosk {
	t.Helper()
	cred := enrolDevice(t, h, id)
	k := &kiosk{id: id, acks: make(chan protocol.Ack, 16)}
	o := deviceOptions(t, cred, url)
	if opts != nil {
		opts(o)
	}
	k.c = paho.NewClient(o)
	if tok := k.c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("kiosk connect: %v", tok.Error())
	}
	t.Cleanup(func() { k.c.Disconnect(100) })
	tok := k.c.Subscribe(protocol.DownTopic(id, protocol.ChannelAck).String(), 1, func(_ paho.Client, m paho.Message) {
		verifyDownlink(t, h, m.Payload())
		_, a, err := protocol.DecodeAck(m.Payload())
		if err != nil {
			t.Errorf("bad ack: %v", err)
			return
		}
		k.acks <- a
	})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("subscribe acks: %v", tok.Error())
	}
	return k
}

func (k *kiosk) publish(t *testing.T, channel string, payload []byte) {
	t.Helper()
	top := protocol.UpTopic(k.id, channel)
	if tok := k.c.Publish(top.String(), top.QoS(), false, payload); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("publish: %v", tok.Error())
	}
}

func (k *kiosk) ack(t *testing.T) protocol.Ack {
	t.Helper()
	select {
	case a := <-k.acks:
		return a
	case <-time.After(waitFor):
		t.Fatal("no ack")
		return protocol.Ack{}
	}
}

func encode(t *testing.T, id, typ string, body any) []byte {
	t.Helper()
	b, err := protocol.EncodeID(id, typ, time.Now(), body)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// call makes a staff API request with the admin token and returns the
// status and body.
func call(t *testing.T, h *Hub, method, path, body string) (int, []byte) {
	t.Helper()
	req, err := http.NewRequest(method, h.HTTPURL()+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+h.AdminToken())
	resp, err := h.HTTPClient().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, b
}

func getJSON[T any](t *testing.T, h *Hub, path string) T {
	t.Helper()
	code, b := call(t, h, "GET", path, "")
	var v T
	if code != http.StatusOK {
		t.Fatalf("GET %s: %d %s", path, code, b)
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatalf("GET %s: %v", path, err)
	}
	return v
}

type feedbackList struct{ Feedback []api.Feedback }

func TestFeedbackAcks(t *testing.T) {
	dir := t.TempDir()
	var (
		mu           sync.Mutex
		hookSawStore []bool
		hubPtr       *Hub
	)
	h := startHub(t, dir, func(id string) {
		// The record must be committed before the ack goes out.
		list := getJSON[feedbackList](t, hubPtr, "/api/v1/feedback")
		found := slices.ContainsFunc(list.Feedback, func(f api.Feedback) bool { return f.ID == id })
		mu.Lock()
		defer mu.Unlock()
		hookSawStore = append(hookSawStore, found)
	})
	hubPtr = h
	k := newKiosk(t, h, "k-sangcheng-01")

	fb := protocol.Feedback{Ticket: "SC01-0001", Kiosk: k.id, Kind: protocol.KindComplaint,
		Category: protocol.CatIllegalConstruction, Where: protocol.Where{Building: "12号", Room: "401"},
		Description: "楼顶违建", SubmittedAt: time.Now().UTC()}
	wrongKiosk := fb
	wrongKiosk.Kiosk, wrongKiosk.Ticket = "k-ruiyi-01", "SC01-0002"
	badBody := fb
	badBody.Category, badBody.Ticket = "parking", "SC01-0003"
	ticketClash := fb // another record with the first record's ticket: stored under a suffixed ticket

	id := protocol.NewID()
	tests := []struct {
		name       string
		payload    []byte
		wantStatus protocol.AckStatus
		wantRef    string
		wantReason string
	}{
		{"stored", encode(t, id, protocol.TypeFeedback, fb), protocol.AckStored, id, ""},
		{"duplicate", encode(t, id, protocol.TypeFeedback, fb), protocol.AckDuplicate, id, ""},
		{"invalid body", encode(t, "01900000-0000-7000-8000-000000000003", protocol.TypeFeedback, badBody),
			protocol.AckRejected, "01900000-0000-7000-8000-000000000003", "category"},
		{"kiosk mismatch", encode(t, "01900000-0000-7000-8000-000000000004", protocol.TypeFeedback, wrongKiosk),
			protocol.AckRejected, "01900000-0000-7000-8000-000000000004", "does not match"},
		{"ticket clash", encode(t, "01900000-0000-7000-8000-000000000005", protocol.TypeFeedback, ticketClash),
			protocol.AckStored, "01900000-0000-7000-8000-000000000005", ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k.publish(t, protocol.ChannelFeedback, tc.payload)
			a := k.ack(t)
			if a.Ref != tc.wantRef || a.Status != tc.wantStatus || !strings.Contains(a.Reason, tc.wantReason) {
				t.Errorf("ack = %+v, want ref %s status %s reason ~%q", a, tc.wantRef, tc.wantStatus, tc.wantReason)
			}
		})
	}

	t.Run("garbage is dropped without an ack", func(t *testing.T) {
		k.publish(t, protocol.ChannelFeedback, []byte("not json"))
		k.publish(t, protocol.ChannelFeedback, []byte(`{"v":1,"id":"x","type":"feedback"}`))
		next := fb
		next.Ticket = "SC01-0006"
		id2 := protocol.NewID()
		k.publish(t, protocol.ChannelFeedback, encode(t, id2, protocol.TypeFeedback, next))
		// One kiosk's messages are handled in order: the next ack is for id2.
		if a := k.ack(t); a.Ref != id2 || a.Status != protocol.AckStored {
			t.Errorf("ack after garbage = %+v, want stored %s", a, id2)
		}
	})

	list := getJSON[feedbackList](t, h, "/api/v1/feedback")
	tickets := map[string]string{}
	for _, f := range list.Feedback {
		tickets[f.ID] = f.Ticket
	}
	want := map[string]string{id: "SC01-0001", "01900000-0000-7000-8000-000000000005": "SC01-0001-0005"}
	for wid, wt := range want {
		if tickets[wid] != wt {
			t.Errorf("record %s stored with ticket %q, want %q", wid, tickets[wid], wt)
		}
	}
	if len(tickets) != 3 {
		t.Errorf("stored feedback %v, want 3 records", tickets)
	}
	// Every stored record became a case, once, in its kiosk's community.
	cs, err := h.store.(*store.SQLite).ListCases(context.Background(), store.CaseFilter{Community: "sangcheng"})
	if err != nil {
		t.Fatal(err)
	}
	caseTickets := map[string]bool{}
	for _, c := range cs {
		caseTickets[c.Ticket] = true
	}
	for _, tk := range tickets {
		if !caseTickets[tk] {
			t.Errorf("no case for stored feedback with ticket %s (cases: %v)", tk, caseTickets)
		}
	}
	if len(cs) != len(tickets) {
		t.Errorf("%d cases for %d stored records", len(cs), len(tickets))
	}
	mu.Lock()
	defer mu.Unlock()
	if len(hookSawStore) != 4 || slices.Contains(hookSawStore, false) {
		t.Errorf("BeforeAck saw the record committed: %v, want 4 × true", hookSawStore)
	}
}

// desiredWatcher subscribes to a kiosk's desired topic and collects documents.
type desiredWatcher struct {
	docs chan protocol.DesiredState
}

// watchDesired watches with the hub's own credentials (any client id).
func watchDesired(t *testing.T, h *Hub, kioskID string) *desiredWatcher {
	t.Helper()
	w := &desiredWatcher{docs: make(chan protocol.DesiredState, 16)}
	c := paho.NewClient(hubClientOptions(t, h).SetClientID("watch-" + protocol.NewID()[24:]))
	if tok := c.Connect(); !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("watcher connect: %v", tok.Error())
	}
	t.Cleanup(func() { c.Disconnect(100) })
	tok := c.Subscribe(protocol.DownTopic(kioskID, protocol.ChannelDesired).String(), 1, func(_ paho.Client, m paho.Message) {
		verifyDownlink(t, h, m.Payload())
		_, d, err := protocol.DecodeDesired(m.Payload())
		if err != nil {
			t.Errorf("bad desired state: %v", err)
			return
		}
		w.docs <- d
	})
	if !tok.WaitTimeout(waitFor) || tok.Error() != nil {
		t.Fatalf("watcher subscribe: %v", tok.Error())
	}
	return w
}

// next waits for a document satisfying cond, skipping others.
func (w *desiredWatcher) next(t *testing.T, what string, cond func(protocol.DesiredState) bool) protocol.DesiredState {
	t.Helper()
	deadline := time.After(waitFor)
	for {
		select {
		case d := <-w.docs:
			if cond(d) {
				return d
			}
		case <-deadline:
			t.Fatalf("no desired state %s within %v", what, waitFor)
			return protocol.DesiredState{}
		}
	}
}

func noticeIDs(d protocol.DesiredState) []string {
	var ids []string
	for _, n := range d.Notices {
		ids = append(ids, n.ID)
	}
	return ids
}

func post(t *testing.T, h *Hub, path, body string, want int) api.Notice {
	t.Helper()
	code, b := call(t, h, "POST", path, body)
	if code != want {
		t.Fatalf("POST %s: %d %s", path, code, b)
	}
	var n api.Notice
	if err := json.Unmarshal(b, &n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestDesiredState(t *testing.T) {
	dir := t.TempDir()
	h := startHub(t, dir, nil)

	// At start every kiosk has a document with its station and no notices.
	first := watchDesired(t, h, "k-sangcheng-01").next(t, "at start", func(d protocol.DesiredState) bool { return true })
	if first.Station.Name != "桑城社区城管执法工作室" || len(first.Notices) != 0 || first.Version <= 0 {
		t.Fatalf("initial document = %+v", first)
	}

	req := func(title, level, id string) string {
		return fmt.Sprintf(`{"title":%q,"body":"正文","category":"event","priority":"normal","targets":[{"level":%q,"id":%q}]}`,
			title, level, id)
	}
	n1 := post(t, h, "/api/v1/notices", req("开放日", "community", "sangcheng"), http.StatusCreated)
	// A client subscribing after the notice was created gets it retained.
	d1 := watchDesired(t, h, "k-sangcheng-01").next(t, "with the notice", func(d protocol.DesiredState) bool {
		return slices.Contains(noticeIDs(d), n1.ID)
	})
	if d1.Version <= first.Version {
		t.Errorf("version %d after create, want > %d", d1.Version, first.Version)
	}
	ruiyi := watchDesired(t, h, "k-ruiyi-01").next(t, "for ruiyi", func(protocol.DesiredState) bool { return true })
	if len(ruiyi.Notices) != 0 {
		t.Errorf("k-ruiyi-01 got notices %v aimed at another community", noticeIDs(ruiyi))
	}

	n2 := post(t, h, "/api/v1/notices", req("专项行动", "district", "huangpu"), http.StatusCreated)
	post(t, h, "/api/v1/notices/"+n1.ID+"/withdraw", "", http.StatusOK)
	d2 := watchDesired(t, h, "k-sangcheng-01").next(t, "after withdraw", func(d protocol.DesiredState) bool {
		return !slices.Contains(noticeIDs(d), n1.ID)
	})
	if !slices.Equal(noticeIDs(d2), []string{n2.ID}) || d2.Version <= d1.Version {
		t.Errorf("after withdraw: notices %v version %d, want [%s] and > %d", noticeIDs(d2), d2.Version, n2.ID, d1.Version)
	}

	// A new hub on the same data dir, with a fresh embedded broker that has
	// no retained messages, republishes from the database.
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	h2 := startHub(t, dir, nil)
	d3 := watchDesired(t, h2, "k-sangcheng-01").next(t, "after restart", func(protocol.DesiredState) bool { return true })
	if !slices.Equal(noticeIDs(d3), []string{n2.ID}) || d3.Version != d2.Version {
		t.Errorf("after restart: notices %v version %d, want [%s] and version %d unchanged", noticeIDs(d3), d3.Version, n2.ID, d2.Version)
	}
	r2 := watchDesired(t, h2, "k-ruiyi-01").next(t, "ruiyi after restart", func(protocol.DesiredState) bool { return true })
	if !slices.Equal(noticeIDs(r2), []string{n2.ID}) {
		t.Errorf("k-ruiyi-01 after restart: %v, want [%s]", noticeIDs(r2), n2.ID)
	}
}

func TestExpiredNoticeIsPruned(t *testing.T) {
	dir := t.TempDir()
	var (
		mu  sync.Mutex
		now = time.Now()
	)
	clock := func() time.Time {
		mu.Lock()
		defer mu.Unlock()
		return now
	}
	h, err := New(Config{DataDir: dir, Org: demoTree(t), MQTTListen: "127.0.0.1:0", HTTPListen: "127.0.0.1:0",
		ReconcileEvery: 20 * time.Millisecond, Now: clock}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	until := now.Add(time.Hour).UTC().Format(time.RFC3339)
	n := post(t, h, "/api/v1/notices", `{"title":"限时","category":"event","priority":"urgent","valid_until":"`+until+`",
		"targets":[{"level":"kiosk","id":"k-ruiyi-01"}]}`, http.StatusCreated)
	w := watchDesired(t, h, "k-ruiyi-01")
	with := w.next(t, "with the notice", func(d protocol.DesiredState) bool { return slices.Contains(noticeIDs(d), n.ID) })
	mu.Lock()
	now = now.Add(2 * time.Hour)
	mu.Unlock()
	without := w.next(t, "after expiry", func(d protocol.DesiredState) bool { return len(d.Notices) == 0 })
	if without.Version <= with.Version {
		t.Errorf("version after expiry %d, want > %d", without.Version, with.Version)
	}
}

type kioskList struct{ Kiosks []api.Kiosk }

func kioskStatus(t *testing.T, h *Hub, id string) api.Kiosk {
	t.Helper()
	for _, k := range getJSON[kioskList](t, h, "/api/v1/kiosks").Kiosks {
		if k.ID == id {
			return k
		}
	}
	t.Fatalf("kiosk %s not listed", id)
	return api.Kiosk{}
}

// waitKiosk polls the API until cond holds for the kiosk.
func waitKiosk(t *testing.T, h *Hub, id, what string, cond func(api.Kiosk) bool) api.Kiosk {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for {
		k := kioskStatus(t, h, id)
		if cond(k) {
			return k
		}
		if time.Now().After(deadline) {
			t.Fatalf("kiosk %s never %s; last %+v", id, what, k)
		}
		<-tick.C
	}
}

// logBuffer collects a text log so a test can wait for the hub to have
// handled a message that changes nothing else it could observe.
type logBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// waitLine waits for a log line containing all the parts.
func (l *logBuffer) waitLine(t *testing.T, parts ...string) {
	t.Helper()
	deadline := time.Now().Add(waitFor)
	tick := time.NewTicker(5 * time.Millisecond)
	defer tick.Stop()
	for {
		l.mu.Lock()
		lines := strings.Split(l.b.String(), "\n")
		l.mu.Unlock()
		for _, line := range lines {
			if !slices.ContainsFunc(parts, func(p string) bool { return !strings.Contains(line, p) }) {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("no log line with %q", parts)
		}
		<-tick.C
	}
}

func TestPresenceEpoch(t *testing.T) {
	logs := new(logBuffer)
	h := startHubLog(t, t.TempDir(), nil, slog.New(slog.NewTextHandler(logs, nil)))
	k := newKiosk(t, h, "k-sangcheng-02")
	steps := []struct {
		name       string
		state      protocol.PresenceState
		epoch      int64
		wantLog    string
		wantOnline bool
		wantEpoch  int64
	}{
		{"birth", protocol.Online, 1000, "kiosk presence", true, 1000},
		{"new session", protocol.Online, 2000, "kiosk presence", true, 2000},
		{"late will of the old session", protocol.Offline, 1000, "ignoring stale presence", true, 2000},
		{"will of the current session", protocol.Offline, 2000, "kiosk presence", false, 2000},
		{"repeated birth of the ended session", protocol.Online, 2000, "ignoring stale presence", false, 2000},
		{"next session", protocol.Online, 3000, "kiosk presence", true, 3000},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			k.publish(t, protocol.ChannelPresence, encode(t, protocol.NewID(), protocol.TypePresence,
				protocol.Presence{Kiosk: k.id, State: st.state, Epoch: st.epoch}))
			logs.waitLine(t, st.wantLog, "kiosk="+k.id, fmt.Sprintf("state=%s epoch=%d", st.state, st.epoch))
			got := kioskStatus(t, h, k.id)
			if got.Online != st.wantOnline || got.Epoch != st.wantEpoch {
				t.Errorf("online=%v epoch=%d, want %v %d", got.Online, got.Epoch, st.wantOnline, st.wantEpoch)
			}
		})
	}
	t.Run("heartbeat", func(t *testing.T) {
		k.publish(t, protocol.ChannelHeartbeat, encode(t, protocol.NewID(), protocol.TypeHeartbeat, protocol.Heartbeat{
			Kiosk: k.id, Epoch: 3000, SoftwareVersion: "0.1.0", UptimeSeconds: 5, OutboxDepth: 2,
			ContentVersion: 4, FreeDiskBytes: 1 << 30}))
		got := waitKiosk(t, h, k.id, "reporting health", func(a api.Kiosk) bool { return a.SoftwareVersion == "0.1.0" })
		if !got.Online || got.UptimeSeconds != 5 || got.OutboxDepth != 2 || got.ContentVersion != 4 ||
			got.FreeDiskBytes != 1<<30 || got.LastSeen.IsZero() {
			t.Errorf("after heartbeat: %+v", got)
		}
	})
}

// cutProxy forwards TCP connections to target until cut, then drops them
// without an MQTT DISCONNECT, as a power cut or a pulled cable would.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				return
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go io.Copy(up, c)
			go io.Copy(c, up)
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

func TestRealLastWill(t *testing.T) {
	h := startHub(t, t.TempDir(), nil)
	const id = "k-ruiyi-01"
	will, err := protocol.Encode(protocol.TypePresence, time.Now(), protocol.Presence{Kiosk: id, State: protocol.Offline, Epoch: 7})
	if err != nil {
		t.Fatal(err)
	}
	proxy := newCutProxy(t, strings.TrimPrefix(h.BrokerURL(), "ssl://"))
	top := protocol.UpTopic(id, protocol.ChannelPresence)
	k := newKioskOpts(t, h, id, "ssl://"+proxy.ln.Addr().String(), func(o *paho.ClientOptions) {
		o.SetBinaryWill(top.String(), will, 1, false)
	})
	birth := encode(t, protocol.NewID(), protocol.TypePresence, protocol.Presence{Kiosk: id, State: protocol.Online, Epoch: 7})
	k.publish(t, protocol.ChannelPresence, birth)
	waitKiosk(t, h, id, "online", func(k api.Kiosk) bool { return k.Online && k.Epoch == 7 })
	proxy.cut()
	waitKiosk(t, h, id, "offline", func(k api.Kiosk) bool { return !k.Online && k.Epoch == 7 })
}
