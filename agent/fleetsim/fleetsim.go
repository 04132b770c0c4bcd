// Package fleetsim runs a fleet of real agents in one process against one
// MQTT broker, for load tests and benchmarks of the hub.
//
// Each simulated kiosk is a complete agent.Agent with its own bbolt file
// under Config.Root and its own MQTT session; only the local API is left
// out. The fleet follows every agent through its event stream
// (Agent.Subscribe) and reads the agent's state back from its database
// (Agent.Notices, Agent.Status), so the Wait methods report what the agents
// have really stored, and nothing waits by sleeping.
//
// Agents enrol like real kiosks: for a data directory that holds no
// identity yet the fleet gets a one-time claim code for the kiosk's slot
// (Config.Claim, which the caller implements with the hub's staff API) and
// enrols it with the hub over HTTPS with the CA pinned (agent.Enrol, as
// `agent enrol` does) before the agent starts; the agent then connects to
// the broker over TLS with the credentials it received and verifies every
// signed downlink message. A data directory already enrolled (a reused
// Root) is not enrolled again. Enrolments run at most Config.EnrolConcurrency at a time;
// the hub rate-limits them per client address, so a hub serving a fleet
// needs a high enrolment limit (hub.Config.EnrolPerMinute, `hub serve
// -enrol-per-minute`).
//
// Per agent the fleet adds one goroutine and a small map of the notices the
// agent holds.
package fleetsim

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/shequ/shequ/agent"
	"github.com/shequ/shequ/agent/enrol"
	"github.com/shequ/shequ/protocol"
)

// DefaultStartConcurrency is how many agents start (open their database)
// at once when Config.StartConcurrency is zero.
const DefaultStartConcurrency = 32

// DefaultEnrolConcurrency is how many agents enrol at once when
// Config.EnrolConcurrency is zero.
const DefaultEnrolConcurrency = 8

// closeConcurrency is how many agents are closed at once.
const closeConcurrency = 64

// Config configures a fleet. Zero values mean the agents' defaults.
type Config struct {
	Root     string   // required; agent i keeps its bbolt file under Root/<kiosk id>/
	KioskIDs []string // required; unique, protocol.ValidID

	// HubURL is the hub's HTTPS base URL the agents enrol with; required
	// unless every agent's data directory is enrolled already.
	HubURL string
	// CAPin is the hex SHA-256 of the hub CA's certificate, checked in the
	// TLS handshake of each enrolment; empty: trust on first use (each agent
	// logs a warning).
	CAPin string
	// Claim returns a one-time claim code for the slot of kiosk (the hub's
	// POST /api/v1/claims with the admin token); required unless every
	// agent's data directory is enrolled already. It is called from
	// EnrolConcurrency goroutines at once.
	Claim func(ctx context.Context, kiosk string) (code string, err error)
	// EnrolConcurrency bounds the enrolments (claim and enrol) running at
	// once; default DefaultEnrolConcurrency.
	EnrolConcurrency int

	BrokerURL         string        // optional override of the broker URL the agents receive at enrolment
	HeartbeatInterval time.Duration // default: the agent's (30s)
	ReconnectMin      time.Duration // default: the agent's (500ms)
	ReconnectMax      time.Duration // default: the agent's (60s)
	MaxInFlight       int           // default: the agent's (32)
	ResendAfter       time.Duration // default: the agent's (30s)
	StartConcurrency  int           // agents starting at once; default DefaultStartConcurrency
	SoftwareVersion   string        // reported in heartbeats; default "fleetsim"
}

// Receipt is the receipt of one record submitted through the fleet, with the
// kiosk whose agent holds it.
type Receipt struct {
	Kiosk string `json:"kiosk"`
	protocol.FeedbackReceipt
}

// member is one simulated kiosk.
type member struct {
	id     string
	a      *agent.Agent
	events <-chan protocol.LocalEvent
	cancel func()

	// Guarded by Fleet.mu: the state last read back from the agent.
	connected bool
	depth     int
	version   int64
	held      map[string]struct{}
}

// Fleet is a running fleet of agents.
type Fleet struct {
	cfg     Config
	log     *slog.Logger
	members []*member
	wg      sync.WaitGroup // watchers
	// enrolled is how many agents Start enrolled.
	enrolled int

	mu        sync.Mutex
	changed   chan struct{} // closed and replaced whenever any member's state is read back
	connected int           // members connected
	busy      int           // members whose outbox is not empty
	synced    int           // members holding a desired state
	holders   map[string]int
	complete  map[string]time.Time // notice id → when the last member was seen holding it

	closeOnce sync.Once
	closeErr  error
}

// Start creates one agent per kiosk id, enrols those whose data directory
// is not enrolled yet (at most cfg.EnrolConcurrency at a time), starts them
// all (at most cfg.StartConcurrency at a time), and returns once every agent
// has started (opened its database and begun connecting). ctx bounds the
// start only; the agents run until Close. On error the agents started are
// closed.
func Start(ctx context.Context, cfg Config, log *slog.Logger) (*Fleet, error) {
	if cfg.Root == "" {
		return nil, errors.New("fleetsim: Root is required")
	}
	if len(cfg.KioskIDs) == 0 {
		return nil, errors.New("fleetsim: no kiosk ids")
	}
	if cfg.StartConcurrency <= 0 {
		cfg.StartConcurrency = DefaultStartConcurrency
	}
	if cfg.EnrolConcurrency <= 0 {
		cfg.EnrolConcurrency = DefaultEnrolConcurrency
	}
	if cfg.SoftwareVersion == "" {
		cfg.SoftwareVersion = "fleetsim"
	}
	f := &Fleet{
		cfg:      cfg,
		log:      log,
		changed:  make(chan struct{}),
		holders:  make(map[string]int),
		complete: make(map[string]time.Time),
	}
	seen := make(map[string]bool, len(cfg.KioskIDs))
	for _, id := range cfg.KioskIDs {
		if seen[id] {
			return nil, fmt.Errorf("fleetsim: kiosk id %q given twice", id)
		}
		seen[id] = true
		if err := protocol.ValidID(id); err != nil {
			return nil, fmt.Errorf("fleetsim: kiosk id: %w", err)
		}
		a, err := agent.New(agent.Config{
			DataDir:           filepath.Join(cfg.Root, id),
			HubURL:            cfg.HubURL,
			CAPin:             cfg.CAPin,
			HardwareID:        hardwareID(id),
			BrokerURL:         cfg.BrokerURL,
			HeartbeatInterval: cfg.HeartbeatInterval,
			MaxInFlight:       cfg.MaxInFlight,
			ResendAfter:       cfg.ResendAfter,
			ReconnectMin:      cfg.ReconnectMin,
			ReconnectMax:      cfg.ReconnectMax,
			SoftwareVersion:   cfg.SoftwareVersion,
		}, log)
		if err != nil {
			return nil, fmt.Errorf("fleetsim: %w", err)
		}
		f.members = append(f.members, &member{id: id, a: a, held: make(map[string]struct{})})
	}

	if err := f.enrol(ctx); err != nil {
		return nil, errors.Join(err, f.Close())
	}
	// The agents outlive ctx: Close stops them.
	runCtx := context.WithoutCancel(ctx)
	err := f.each(ctx, f.members, cfg.StartConcurrency, func(m *member) error {
		m.events, m.cancel = m.a.Subscribe()
		if err := m.a.Start(runCtx); err != nil {
			m.cancel()
			m.cancel = nil
			return fmt.Errorf("fleetsim: start %s: %w", m.id, err)
		}
		f.wg.Add(1)
		go f.watch(m)
		return nil
	})
	if err != nil {
		return nil, errors.Join(err, f.Close())
	}
	log.Info("fleet started", "agents", len(f.members), "hub", cfg.HubURL)
	return f, nil
}

// enrol enrols every agent whose data directory has no identity yet, at
// most cfg.EnrolConcurrency at a time, and checks that every agent is
// enrolled as its own kiosk. The agents are not started yet.
func (f *Fleet) enrol(ctx context.Context) error {
	var (
		mu   sync.Mutex
		todo []*member
	)
	err := f.each(ctx, f.members, f.cfg.EnrolConcurrency, func(m *member) error {
		id, ok, err := agent.ReadIdentity(f.dataDir(m))
		switch {
		case err != nil:
			return fmt.Errorf("fleetsim: %s: %w", m.id, err)
		case !ok:
			mu.Lock()
			todo = append(todo, m)
			mu.Unlock()
		case id.Kiosk != m.id:
			return fmt.Errorf("fleetsim: the data directory of %s is enrolled as kiosk %s", m.id, id.Kiosk)
		}
		return nil
	})
	if err != nil || len(todo) == 0 {
		return err
	}
	if f.cfg.HubURL == "" || f.cfg.Claim == nil {
		return fmt.Errorf("fleetsim: %d agents are not enrolled and HubURL or Claim is not set to enrol them", len(todo))
	}
	t0 := time.Now()
	err = f.each(ctx, todo, f.cfg.EnrolConcurrency, func(m *member) error {
		code, err := f.cfg.Claim(ctx, m.id)
		if err != nil {
			return fmt.Errorf("fleetsim: claim code for %s: %w", m.id, err)
		}
		resp, err := agent.Enrol(ctx, agent.EnrolConfig{
			DataDir: f.dataDir(m), HubURL: f.cfg.HubURL, ClaimCode: code, CAPin: f.cfg.CAPin,
			HardwareID: hardwareID(m.id), SoftwareVersion: f.cfg.SoftwareVersion,
		}, f.log)
		if err != nil {
			if errors.Is(err, enrol.ErrRefused) && strings.Contains(err.Error(), "429") {
				return fmt.Errorf("fleetsim: enrol %s: %w (the hub limits enrolments per client address: "+
					"start it with a higher limit, e.g. hub serve -enrol-per-minute %d)", m.id, err, 2*len(f.members))
			}
			return fmt.Errorf("fleetsim: enrol %s: %w", m.id, err)
		}
		if resp.Kiosk != m.id {
			return fmt.Errorf("fleetsim: %s enrolled into the slot of kiosk %q", m.id, resp.Kiosk)
		}
		return nil
	})
	if err != nil {
		return err
	}
	f.enrolled = len(todo)
	f.log.Info("fleet enrolled", "agents", len(todo), "took", time.Since(t0))
	return nil
}

// dataDir is where a member keeps its bbolt file.
func (f *Fleet) dataDir(m *member) string { return filepath.Join(f.cfg.Root, m.id) }

// hardwareID is the hardware id a simulated kiosk enrols with.
func hardwareID(kiosk string) string { return "fleetsim-" + kiosk }

// Enrolled returns how many agents Start enrolled; the others' data
// directories were enrolled already.
func (f *Fleet) Enrolled() int { return f.enrolled }

// each runs fn for every member of ms with at most n at once. It stops
// handing out members at the first error or when ctx is done, and returns
// the errors.
func (f *Fleet) each(ctx context.Context, ms []*member, n int, fn func(*member) error) error {
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	work := make(chan *member)
	for range min(n, len(ms)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for m := range work {
				if err := fn(m); err != nil {
					mu.Lock()
					errs = append(errs, err)
					mu.Unlock()
				}
			}
		}()
	}
feed:
	for _, m := range ms {
		mu.Lock()
		failed := len(errs) > 0
		mu.Unlock()
		if failed {
			break
		}
		select {
		case work <- m:
		case <-ctx.Done():
			mu.Lock()
			errs = append(errs, fmt.Errorf("fleetsim: %w", ctx.Err()))
			mu.Unlock()
			break feed
		}
	}
	close(work)
	wg.Wait()
	return errors.Join(errs...)
}

// Len returns the number of agents.
func (f *Fleet) Len() int { return len(f.members) }

// KioskIDs returns the kiosk ids of the fleet in start order.
func (f *Fleet) KioskIDs() []string {
	ids := make([]string, len(f.members))
	for i, m := range f.members {
		ids[i] = m.id
	}
	return ids
}

// watch reads a member's state back after each of its events until its
// stream ends (Close).
func (f *Fleet) watch(m *member) {
	defer f.wg.Done()
	f.refresh(m, true, true)
	for ev := range m.events {
		notices, status := false, false
		mark := func(ev protocol.LocalEvent) {
			switch ev.Type {
			case protocol.EventNotices:
				notices = true
			case protocol.EventStatus:
				status = true
			default:
				notices, status = true, true
			}
		}
		mark(ev)
	drain: // fold a burst of events into one read
		for {
			select {
			case ev, ok := <-m.events:
				if !ok {
					break drain
				}
				mark(ev)
			default:
				break drain
			}
		}
		f.refresh(m, notices, status)
	}
}

// refresh reads the member's status and/or notices from its agent and
// updates the fleet's tallies.
func (f *Fleet) refresh(m *member, notices, status bool) {
	var (
		st   protocol.AgentStatus
		held map[string]struct{}
		ver  int64
	)
	if status {
		st = m.a.Status()
	}
	if notices {
		ln, err := m.a.Notices()
		switch {
		case errors.Is(err, agent.ErrNotStarted):
			notices = false // closing
		case err != nil:
			f.log.Error("fleetsim: reading notices back", "kiosk", m.id, "err", err)
			notices = false
		default:
			ver = ln.Version
			held = make(map[string]struct{}, len(ln.Notices))
			for _, n := range ln.Notices {
				held[n.ID] = struct{}{}
			}
		}
	}
	now := time.Now()
	f.mu.Lock()
	defer f.mu.Unlock()
	if status {
		f.connected += boolDelta(m.connected, st.Connected)
		f.busy += boolDelta(m.depth > 0, st.OutboxDepth > 0)
		m.connected, m.depth = st.Connected, st.OutboxDepth
	}
	if notices {
		f.synced += boolDelta(m.version > 0, ver > 0)
		m.version = ver
		for id := range m.held {
			if _, ok := held[id]; !ok {
				f.holders[id]--
				delete(f.complete, id)
				if f.holders[id] == 0 {
					delete(f.holders, id)
				}
			}
		}
		for id := range held {
			if _, ok := m.held[id]; !ok {
				f.holders[id]++
				if f.holders[id] == len(f.members) {
					f.complete[id] = now
				}
			}
		}
		m.held = held
	}
	close(f.changed)
	f.changed = make(chan struct{})
}

func boolDelta(was, is bool) int {
	switch {
	case is && !was:
		return 1
	case was && !is:
		return -1
	}
	return 0
}

// wait returns when cond, evaluated under f.mu after each change, holds;
// or fails with ctx's error and what describe says about the shortfall.
func (f *Fleet) wait(ctx context.Context, what string, cond func() bool, describe func() string) error {
	for {
		f.mu.Lock()
		ok := cond()
		ch := f.changed
		f.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			f.mu.Lock()
			d := describe()
			f.mu.Unlock()
			return fmt.Errorf("fleetsim: waiting for %s: %w (%s)", what, ctx.Err(), d)
		}
	}
}

// WaitConnected returns when every agent is connected to the broker.
func (f *Fleet) WaitConnected(ctx context.Context) error {
	return f.wait(ctx, "every agent to connect",
		func() bool { return f.connected == len(f.members) },
		func() string { return fmt.Sprintf("%d of %d connected", f.connected, len(f.members)) })
}

// WaitSynced returns when every agent holds a desired-state document in
// its database (the hub publishes one for every kiosk it knows).
func (f *Fleet) WaitSynced(ctx context.Context) error {
	return f.wait(ctx, "every agent to hold a desired state",
		func() bool { return f.synced == len(f.members) },
		func() string { return fmt.Sprintf("%d of %d hold one", f.synced, len(f.members)) })
}

// WaitNotice returns when every agent holds the notice in its database, and
// how long after since the last of them was seen holding it. Pass the time
// the notice was sent (before the request that created it).
func (f *Fleet) WaitNotice(ctx context.Context, noticeID string, since time.Time) (time.Duration, error) {
	var at time.Time
	err := f.wait(ctx, "notice "+noticeID+" on every agent",
		func() bool {
			var ok bool
			at, ok = f.complete[noticeID]
			return ok
		},
		func() string { return fmt.Sprintf("%d of %d hold it", f.holders[noticeID], len(f.members)) })
	if err != nil {
		return 0, err
	}
	return at.Sub(since), nil
}

// WaitDrained returns when every agent's outbox is empty: every record
// submitted has been stored by the hub and acknowledged (or rejected and
// dead-lettered, which the caller finds missing at the hub). The fleet's
// tallies say when to look; the outbox of every agent is then read once
// more from its database, so a tally not yet updated after a Submit cannot
// end the wait early.
func (f *Fleet) WaitDrained(ctx context.Context) error {
	for {
		f.mu.Lock()
		idle := f.busy == 0
		ch := f.changed
		f.mu.Unlock()
		if idle {
			left, depth := 0, 0
			for _, m := range f.members {
				if d := m.a.Status().OutboxDepth; d > 0 {
					left++
					depth += d
				}
			}
			if left == 0 {
				return nil
			}
			f.log.Debug("fleetsim: outboxes not yet drained", "agents", left, "records", depth)
		}
		select {
		case <-ch:
		case <-ctx.Done():
			left, depth := 0, 0
			for _, m := range f.members {
				if d := m.a.Status().OutboxDepth; d > 0 {
					left++
					depth += d
				}
			}
			return fmt.Errorf("fleetsim: waiting for every outbox to drain: %w (%d records left on %d agents)",
				ctx.Err(), depth, left)
		}
	}
}

// Submit has every agent store perAgent feedback records, with at most
// concurrency submissions (each a bbolt transaction) at once, agents taking
// turns. It returns once every record is durable in its agent's outbox,
// with the receipts; on error it returns the receipts of the records
// stored so far.
func (f *Fleet) Submit(ctx context.Context, perAgent, concurrency int) ([]Receipt, error) {
	if perAgent < 0 {
		return nil, fmt.Errorf("fleetsim: submit: %d records per agent", perAgent)
	}
	if concurrency <= 0 {
		concurrency = 1
	}
	type job struct {
		m   *member
		seq int
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	jobs := make(chan job)
	var (
		mu       sync.Mutex
		receipts = make([]Receipt, 0, perAgent*len(f.members))
		errs     []error
		wg       sync.WaitGroup
	)
	for range concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range jobs {
				rc, err := j.m.a.SubmitFeedback(Request(j.seq))
				mu.Lock()
				if err != nil {
					errs = append(errs, fmt.Errorf("fleetsim: submit to %s: %w", j.m.id, err))
					cancel()
				} else {
					receipts = append(receipts, Receipt{Kiosk: j.m.id, FeedbackReceipt: rc})
				}
				mu.Unlock()
			}
		}()
	}
	seq := 0
feed:
	for range perAgent {
		for _, m := range f.members {
			select {
			case jobs <- job{m, seq}:
				seq++
			case <-ctx.Done():
				break feed
			}
		}
	}
	close(jobs)
	wg.Wait()
	if len(errs) == 0 && ctx.Err() != nil {
		errs = append(errs, fmt.Errorf("fleetsim: submit: %w", ctx.Err()))
	}
	return receipts, errors.Join(errs...)
}

// Request returns the seq-th simulated feedback request; requests vary in
// kind, category, place and whether a phone number is left.
func Request(seq int) protocol.FeedbackRequest {
	r := protocol.FeedbackRequest{
		Kind:     protocol.FeedbackKinds[seq%len(protocol.FeedbackKinds)],
		Category: protocol.FeedbackCategories[seq%len(protocol.FeedbackCategories)],
		Where: protocol.Where{
			Building: fmt.Sprintf("%d号", seq%60+1),
			Unit:     fmt.Sprintf("%d单元", seq%4+1),
			Room:     fmt.Sprintf("%d室", 100*(seq%18+1)+seq%4+1),
		},
		Description: fmt.Sprintf("压力测试记录 %d：楼道堆物，影响通行。", seq),
	}
	if seq%3 == 0 {
		r.Phone = fmt.Sprintf("138%08d", seq%100000000)
	}
	return r
}

// Close stops every agent (each says offline to the hub), at most 64 at a
// time, and waits for the fleet's goroutines. It is safe to call twice.
func (f *Fleet) Close() error {
	f.closeOnce.Do(func() {
		var (
			mu   sync.Mutex
			errs []error
		)
		err := f.each(context.Background(), f.members, closeConcurrency, func(m *member) error {
			if err := m.a.Close(); err != nil {
				mu.Lock()
				errs = append(errs, fmt.Errorf("fleetsim: close %s: %w", m.id, err))
				mu.Unlock()
			}
			if m.cancel != nil {
				m.cancel() // ends the event stream of an agent that never started
			}
			return nil
		})
		f.wg.Wait()
		f.closeErr = errors.Join(append(errs, err)...)
		f.log.Info("fleet stopped", "agents", len(f.members), "err", f.closeErr)
	})
	return f.closeErr
}
