// Package agent is the on-device agent: it keeps the kiosk's data in bbolt
// (agent/store) so the kiosk works offline, syncs with the hub over MQTT
// (agent/link), and serves the kiosk UI over a Unix socket (agent/localapi).
//
// An Agent holds no global state, so many can run in one process (tests and
// fleet benchmarks do); with Config.Socket empty it starts no HTTP server.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/shequ/shequ/agent/link"
	"github.com/shequ/shequ/agent/localapi"
	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

// Config configures an Agent. Zero values mean the defaults.
type Config struct {
	KioskID           string        // required, protocol.ValidID
	DataDir           string        // required; bbolt at DataDir/agent.db
	BrokerURL         string        // default "tcp://127.0.0.1:1883"
	Socket            string        // local API Unix socket path; empty: no local API
	HeartbeatInterval time.Duration // default 30s
	MaxInFlight       int           // default 32
	ResendAfter       time.Duration // default 30s
	ReconnectMin      time.Duration // default 500ms
	ReconnectMax      time.Duration // default 60s
	SoftwareVersion   string        // default "dev"
}

// Errors.
var (
	// ErrNotStarted means the agent was used before Start or after Close.
	ErrNotStarted = errors.New("agent: not started")
)

// eventBuffer is the events held per subscriber before they are coalesced.
const eventBuffer = 16

// Agent is the on-device agent.
type Agent struct {
	cfg Config
	log *slog.Logger

	mu        sync.Mutex
	st        *store.Store
	link      *link.Link
	api       *localapi.Server
	stop      context.CancelFunc
	linkDone  chan error
	startedAt time.Time
	version   int64     // content version held
	lastSync  time.Time // when it was applied
	subs      map[chan protocol.LocalEvent]struct{}
}

// New validates cfg and returns an agent; Start starts it.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if err := protocol.ValidID(cfg.KioskID); err != nil {
		return nil, fmt.Errorf("agent: kiosk id: %w", err)
	}
	if cfg.DataDir == "" {
		return nil, errors.New("agent: data dir is required")
	}
	if cfg.SoftwareVersion == "" {
		cfg.SoftwareVersion = "dev"
	}
	return &Agent{
		cfg:  cfg,
		log:  log.With("kiosk", cfg.KioskID),
		subs: make(map[chan protocol.LocalEvent]struct{}),
	}, nil
}

// Start opens the database, starts the local API (if configured) and the
// MQTT link, and returns at once. It works with no broker reachable: the
// link keeps trying until ctx is done or Close is called.
func (a *Agent) Start(ctx context.Context) error {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.st != nil {
		return errors.New("agent: already started")
	}
	if err := os.MkdirAll(a.cfg.DataDir, 0o750); err != nil {
		return fmt.Errorf("agent: data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(a.cfg.DataDir, "agent.db"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	doc, at, ok, err := st.Desired()
	if err != nil {
		return errors.Join(fmt.Errorf("agent: %w", err), st.Close())
	}
	if ok {
		a.version, a.lastSync = doc.Version, at
	}
	a.startedAt = time.Now()
	l, err := link.New(link.Config{
		KioskID:           a.cfg.KioskID,
		BrokerURL:         a.cfg.BrokerURL,
		DataDir:           a.cfg.DataDir,
		HeartbeatInterval: a.cfg.HeartbeatInterval,
		MaxInFlight:       a.cfg.MaxInFlight,
		ResendAfter:       a.cfg.ResendAfter,
		ReconnectMin:      a.cfg.ReconnectMin,
		ReconnectMax:      a.cfg.ReconnectMax,
		SoftwareVersion:   a.cfg.SoftwareVersion,
		StartedAt:         a.startedAt,
	}, st, observer{a}, a.log)
	if err != nil {
		return errors.Join(fmt.Errorf("agent: %w", err), st.Close())
	}
	var api *localapi.Server
	if a.cfg.Socket != "" {
		api = localapi.New(localapi.Config{Socket: a.cfg.Socket}, a, a.log)
		if err := api.Start(); err != nil {
			return errors.Join(fmt.Errorf("agent: %w", err), st.Close())
		}
	}
	lctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- l.Run(lctx) }()
	a.st, a.link, a.api, a.stop, a.linkDone = st, l, api, stop, done
	a.log.Info("agent started", "data", a.cfg.DataDir, "socket", a.cfg.Socket, "content_version", a.version)
	return nil
}

// Close stops the link (saying offline to the hub if connected) and the
// local API, ends all event subscriptions and closes the database.
func (a *Agent) Close() error {
	a.mu.Lock()
	st, api, stop, done := a.st, a.api, a.stop, a.linkDone
	a.st, a.link, a.api, a.stop, a.linkDone = nil, nil, nil, nil, nil
	a.mu.Unlock()
	if st == nil {
		return nil
	}
	var errs []error
	if api != nil {
		errs = append(errs, api.Close())
	}
	stop()
	if err := <-done; err != nil {
		errs = append(errs, fmt.Errorf("agent: link: %w", err))
	}
	a.mu.Lock()
	for ch := range a.subs {
		delete(a.subs, ch)
		close(ch)
	}
	a.mu.Unlock()
	errs = append(errs, st.Close())
	err := errors.Join(errs...)
	a.log.Info("agent stopped", "err", err)
	return err
}

// Run starts the agent, waits for ctx to be done, and closes it.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	return a.Close()
}

func (a *Agent) parts() (*store.Store, *link.Link) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st, a.link
}

// SubmitFeedback stores a resident's feedback in the outbox and returns the
// receipt once it is durable; the link then delivers it. It works offline.
func (a *Agent) SubmitFeedback(req protocol.FeedbackRequest) (protocol.FeedbackReceipt, error) {
	st, l := a.parts()
	if st == nil {
		return protocol.FeedbackReceipt{}, ErrNotStarted
	}
	rc, err := st.AddFeedback(a.cfg.KioskID, req, time.Now())
	if err != nil {
		return rc, fmt.Errorf("agent: %w", err)
	}
	a.log.Info("feedback stored", "id", rc.ID, "ticket", rc.Ticket)
	l.Wake()
	a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
	return rc, nil
}

// Notices returns the station and the notices held whose ValidUntil has
// not passed, including those scheduled to start later (the kiosk decides
// when to show them).
func (a *Agent) Notices() (protocol.LocalNotices, error) {
	st, _ := a.parts()
	if st == nil {
		return protocol.LocalNotices{}, ErrNotStarted
	}
	doc, _, _, err := st.Desired()
	if err != nil {
		return protocol.LocalNotices{}, fmt.Errorf("agent: %w", err)
	}
	return Unexpired(a.cfg.KioskID, doc, time.Now()), nil
}

// Unexpired is the LocalNotices for a desired-state document at now: every
// notice whose ValidUntil is unset or after now.
func Unexpired(kiosk string, doc protocol.DesiredState, now time.Time) protocol.LocalNotices {
	out := protocol.LocalNotices{Kiosk: kiosk, Version: doc.Version, Station: doc.Station, Notices: []protocol.Notice{}}
	for _, n := range doc.Notices {
		if n.ValidUntil.IsZero() || now.Before(n.ValidUntil) {
			out.Notices = append(out.Notices, n)
		}
	}
	return out
}

// Status reports the agent's state.
func (a *Agent) Status() protocol.AgentStatus {
	st, l := a.parts()
	a.mu.Lock()
	s := protocol.AgentStatus{
		Kiosk:           a.cfg.KioskID,
		SoftwareVersion: a.cfg.SoftwareVersion,
		ContentVersion:  a.version,
		LastSync:        a.lastSync,
		StartedAt:       a.startedAt,
	}
	a.mu.Unlock()
	if l != nil {
		s.Connected = l.Connected()
	}
	if st != nil {
		d, err := st.OutboxDepth()
		if err != nil {
			a.log.Error("status: outbox depth", "err", err)
		}
		s.OutboxDepth = d
	}
	return s
}

// Subscribe returns a stream of local events and a function that ends it.
// A subscriber that falls behind never blocks the agent: when its buffer is
// full, what it holds is replaced by one notices and one status event,
// which tell it to refetch both. The stream is closed by cancel or Close.
func (a *Agent) Subscribe() (<-chan protocol.LocalEvent, func()) {
	ch := make(chan protocol.LocalEvent, eventBuffer)
	a.mu.Lock()
	a.subs[ch] = struct{}{}
	a.mu.Unlock()
	var once sync.Once
	return ch, func() {
		once.Do(func() {
			a.mu.Lock()
			defer a.mu.Unlock()
			if _, ok := a.subs[ch]; ok {
				delete(a.subs, ch)
				close(ch)
			}
		})
	}
}

func (a *Agent) broadcast(ev protocol.LocalEvent) {
	a.mu.Lock()
	defer a.mu.Unlock()
	for ch := range a.subs {
		select {
		case ch <- ev:
			continue
		default:
		}
		for len(ch) > 0 { // coalesce: drop what is held ...
			select {
			case <-ch:
			default:
			}
		}
		// ... and leave room-safe refetch hints (the buffer is now empty
		// apart from anything the reader took meanwhile).
		for _, e := range []protocol.LocalEvent{{Type: protocol.EventNotices, Version: a.version}, {Type: protocol.EventStatus}} {
			select {
			case ch <- e:
			default:
			}
		}
	}
}

// observer turns link reports into local events.
type observer struct{ a *Agent }

var _ link.Observer = observer{}

func (o observer) Connected(up bool) {
	o.a.log.Info("hub connection", "up", up)
	o.a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
}

func (o observer) DesiredApplied(doc protocol.DesiredState) {
	o.a.mu.Lock()
	o.a.version, o.a.lastSync = doc.Version, time.Now()
	o.a.mu.Unlock()
	o.a.broadcast(protocol.LocalEvent{Type: protocol.EventNotices, Version: doc.Version})
}

func (o observer) OutboxChanged() {
	o.a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
}

var _ localapi.Backend = (*Agent)(nil)
