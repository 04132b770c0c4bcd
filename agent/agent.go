// Package agent is the on-device agent: it keeps the kiosk's data in bbolt
// (agent/store) so the kiosk works offline, syncs with the hub over MQTT
// (agent/link), and serves the kiosk UI over a Unix socket (agent/localapi).
//
// The device's identity comes from enrolment (agent/enrol), stored in the
// database: an agent that is not enrolled serves the local API (its status
// says enrolled:false, feedback is refused with 503) and does not connect
// to any broker; enrolling through the local API (Agent.Enrol) or with
// `agent enrol` before the service starts gives it an identity, and the
// MQTT link starts at once.
//
// Media (agent/media): the files the held desired state's playlists need
// are fetched in the background, over the MQTT link or with HTTPS ranges
// (Config.MediaHTTP), into DataDir/media; the local API lists the
// playlists and the files held, and an EventNotices announces each file
// that becomes held. Play events the kiosk posts are counted per hour in
// the store; every finished hour becomes a PlayStats outbox record, sent
// and acknowledged like feedback.
//
// Check (health.go) is the agent's liveness check, which cmd/agent feeds
// the systemd watchdog with: the store answers, the local API answers on
// its socket, the link's goroutine makes progress. Offline or not enrolled
// is a normal state and passes.
//
// Remote commands (commands.go): a screenshot, a restart of the kiosk UI or
// of the agent itself, signed by the hub, run at most once and reported as
// outbox records.
//
// An Agent holds no global state, so many can run in one process (tests and
// fleet benchmarks do); with Config.Socket empty it starts no HTTP server.
package agent

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shequ/shequ/agent/enrol"
	"github.com/shequ/shequ/agent/link"
	"github.com/shequ/shequ/agent/localapi"
	"github.com/shequ/shequ/agent/media"
	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/agent/update"
	"github.com/shequ/shequ/protocol"
)

// Config configures an Agent. Zero values mean the defaults.
type Config struct {
	DataDir           string        // required; bbolt at DataDir/agent.db
	Socket            string        // local API Unix socket path; empty: no local API
	SocketGroup       string        // group the socket is chowned to (the kiosk UI's); empty: the agent's
	HubURL            string        // hub HTTPS base URL, for enrolment from the kiosk's setup screen (POST /v1/enrol)
	CAPin             string        // expected hex SHA-256 of the hub CA (DER) for enrolment; empty: trust on first use, logged as a warning
	BrokerURL         string        // optional override of the broker URL received at enrolment
	HeartbeatInterval time.Duration // default 30s
	MaxInFlight       int           // default 32
	ResendAfter       time.Duration // default 30s
	ReconnectMin      time.Duration // default 500ms
	ReconnectMax      time.Duration // default 60s
	SoftwareVersion   string        // default "dev"
	HardwareID        string        // optional override (default from DMI product UUID or /etc/machine-id)

	// Media cache (agent/media): files in DataDir/media, readable by SocketGroup.
	MediaQuota        int64         // default 2 GiB
	MinFreeDisk       int64         // default 512 MiB; negative: none
	MediaStagger      time.Duration // default 60s; negative: start at once
	MediaConcurrency  int           // files fetched at once; default 1
	MediaWindow       int           // chunk requests in flight per file; default 8
	MediaChunkTimeout time.Duration // default 15s
	MediaRetryMin     time.Duration // first retry of a failed file; default 5s
	// MediaHTTP is the hub's https base URL to fetch media from with HTTP
	// range requests (pinned CA, the device's MQTT credentials as basic
	// auth); empty: over MQTT.
	MediaHTTP string

	// UpdateEngine writes offered releases to the other root slot
	// (agent/update); default: RAUC, which reports "unsupported" on a
	// device not booted from the kiosk image's A/B slots.
	UpdateEngine update.Engine
	// UpdatePoll is how often the update manager looks at its offer; default 5s.
	UpdatePoll time.Duration
	// CommandReplyTimeout is how long the kiosk UI has to answer a remote
	// command (a screenshot, a restart of the UI); default 30s.
	CommandReplyTimeout time.Duration
}

// GateFile is where shequ-agent health-gate leaves its verdict, in the
// agent's data directory.
const GateFile = "update-gate.json"

// EnrolConfig configures Enrol.
type EnrolConfig struct {
	DataDir         string       // required; bbolt at DataDir/agent.db (the agent service must not be running)
	HubURL          string       // required: https://host:port
	ClaimCode       string       // required: 12 digits, e.g. 1234-5678-9012
	CAPin           string       // hex SHA-256 of the hub CA; empty: trust on first use (warned)
	HardwareID      string       // optional override
	SoftwareVersion string       // default "dev"
	HTTPClient      *http.Client // optional; see enrol.Config
}

// Errors. The local API also maps the errors of agent/enrol.
var (
	// ErrNotStarted means the agent was used before Start or after Close.
	ErrNotStarted = errors.New("agent: not started")
	// ErrNotEnrolled, ErrAlreadyEnrolled and ErrNoHub are the local API's.
	ErrNotEnrolled     = localapi.ErrNotEnrolled
	ErrAlreadyEnrolled = localapi.ErrAlreadyEnrolled
	ErrNoHub           = localapi.ErrNoHub
)

// Enrol enrols the device whose data is in cfg.DataDir with the hub, for
// `agent enrol`: it opens the database, enrols (agent/enrol) and closes
// it. The response holds the MQTT password: never log or print it.
func Enrol(ctx context.Context, cfg EnrolConfig, log *slog.Logger) (protocol.EnrolResponse, error) {
	if cfg.DataDir == "" {
		return protocol.EnrolResponse{}, errors.New("agent: data dir is required")
	}
	if err := os.MkdirAll(cfg.DataDir, 0o750); err != nil {
		return protocol.EnrolResponse{}, fmt.Errorf("agent: data dir: %w", err)
	}
	st, err := store.Open(filepath.Join(cfg.DataDir, "agent.db"))
	if err != nil {
		return protocol.EnrolResponse{}, fmt.Errorf("agent: %w (is the agent service running?)", err)
	}
	r, err := enrol.Enrol(ctx, st, enrol.Config{
		HubURL: cfg.HubURL, ClaimCode: cfg.ClaimCode, CAPin: cfg.CAPin, HardwareID: cfg.HardwareID,
		SoftwareVersion: cfg.SoftwareVersion, HTTPClient: cfg.HTTPClient,
	}, log)
	if cerr := st.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return r, err
}

// ReadIdentity reads the identity of the device whose data is in dataDir,
// for technicians (`agent status`); ok is false before enrolment. The agent
// service must not be running (bbolt locks the file).
func ReadIdentity(dataDir string) (id store.Identity, ok bool, err error) {
	path := filepath.Join(dataDir, "agent.db")
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		return id, false, nil // a device that never ran
	}
	st, err := store.Open(path)
	if err != nil {
		return id, false, fmt.Errorf("agent: %w (is the agent service running?)", err)
	}
	id, ok, err = st.Identity()
	if cerr := st.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	return id, ok, err
}

// eventBuffer is the events held per subscriber before they are coalesced.
const eventBuffer = 16

// Agent is the on-device agent.
type Agent struct {
	cfg Config
	log *slog.Logger

	enrolling sync.Mutex // one enrolment at a time

	mu        sync.Mutex
	st        *store.Store
	kiosk     string // from the identity; empty before enrolment
	link      *link.Link
	cache     *media.Cache
	bg        sync.WaitGroup // the cache's downloader and the plays flusher
	bgErr     chan error     // their errors, buffered
	api       *localapi.Server
	ctx       context.Context // the agent's lifetime, from Start to Close
	stop      context.CancelFunc
	linkDone  chan error
	startedAt time.Time
	version   int64     // content version held
	lastSync  time.Time // when it was applied
	subs      map[chan protocol.LocalEvent]struct{}

	// Remote commands (commands.go).
	cmdMu       sync.Mutex
	running     int                       // commands running
	pending     map[string]pendingCommand // by command id: waiting for the kiosk UI
	restart     chan struct{}             // closed when the hub asked for a restart
	restartOnce sync.Once
}

// New validates cfg and returns an agent; Start starts it.
func New(cfg Config, log *slog.Logger) (*Agent, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("agent: data dir is required")
	}
	if cfg.MediaHTTP != "" {
		if u, err := url.Parse(cfg.MediaHTTP); err != nil || u.Scheme != "https" || u.Host == "" {
			return nil, fmt.Errorf("agent: media URL %q must be https://host:port: the device's credentials travel with every request", cfg.MediaHTTP)
		}
	}
	if cfg.SoftwareVersion == "" {
		cfg.SoftwareVersion = "dev"
	}
	if cfg.CommandReplyTimeout <= 0 {
		cfg.CommandReplyTimeout = DefaultCommandReplyTimeout
	}
	if cfg.CAPin != "" {
		if _, err := enrol.ParsePin(cfg.CAPin); err != nil {
			return nil, fmt.Errorf("agent: %w", err)
		}
	}
	return &Agent{
		cfg:     cfg,
		log:     log,
		subs:    make(map[chan protocol.LocalEvent]struct{}),
		pending: make(map[string]pendingCommand),
		restart: make(chan struct{}),
	}, nil
}

// Start opens the database, starts the local API (if configured) and, if
// the device is enrolled, the MQTT link, and returns at once. It works
// with no broker reachable: the link keeps trying until ctx is done or
// Close is called.
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
	id, enrolled, err := st.Identity()
	if err != nil {
		return errors.Join(fmt.Errorf("agent: %w", err), st.Close())
	}
	cache, err := media.Open(media.Config{
		Dir: a.cfg.DataDir, Group: a.cfg.SocketGroup, Kiosk: id.Kiosk,
		Quota: a.cfg.MediaQuota, MinFreeDisk: a.cfg.MinFreeDisk, Stagger: a.cfg.MediaStagger,
		Concurrency: a.cfg.MediaConcurrency, Window: a.cfg.MediaWindow,
		ChunkTimeout: a.cfg.MediaChunkTimeout, RetryMin: a.cfg.MediaRetryMin,
		Verify: func(data []byte) (protocol.Manifest, error) { return verifyManifest(st, data) },
		OnHeld: func(string) { a.broadcast(protocol.LocalEvent{Type: protocol.EventNotices, Version: a.heldVersion()}) },
	}, a.log.With("part", "media"))
	if err != nil {
		return errors.Join(fmt.Errorf("agent: %w", err), st.Close())
	}
	if ok {
		cache.Want(doc)
	}
	a.startedAt = time.Now()
	a.st, a.cache = st, cache
	a.bgErr = make(chan error, 2)
	a.ctx, a.stop = context.WithCancel(ctx)
	if enrolled {
		if err := a.startLinkLocked(id); err != nil {
			a.stop()
			a.st, a.cache = nil, nil
			return errors.Join(err, cache.Close(), st.Close())
		}
	} else {
		a.log.Warn("not enrolled: no hub connection until enrolment (agent enrol, or the kiosk's setup screen)")
	}
	if a.cfg.Socket != "" {
		api := localapi.New(localapi.Config{Socket: a.cfg.Socket, SocketGroup: a.cfg.SocketGroup}, a, a.log)
		if err := api.Start(); err != nil {
			a.stop()
			var errs []error
			if a.linkDone != nil {
				errs = append(errs, <-a.linkDone)
			}
			a.bg.Wait()
			a.st, a.link, a.linkDone, a.cache = nil, nil, nil, nil
			return errors.Join(append(errs, fmt.Errorf("agent: %w", err), cache.Close(), st.Close())...)
		}
		a.api = api
	}
	a.log.Info("agent started", "version", a.cfg.SoftwareVersion, "data", a.cfg.DataDir, "socket", a.cfg.Socket, "enrolled", enrolled, "kiosk", a.kiosk, "content_version", a.version)
	return nil
}

// startLinkLocked starts the MQTT link for identity id; a.mu is held.
func (a *Agent) startLinkLocked(id store.Identity) error {
	engine := a.cfg.UpdateEngine
	if engine == nil {
		r := update.RAUC{}
		if a.cfg.Socket != "" {
			r.AgentRunDir = filepath.Dir(a.cfg.Socket)
		}
		engine = r
	}
	var wake atomic.Pointer[link.Link]
	upd, err := update.New(update.Config{Kiosk: id.Kiosk, Engine: engine, Store: a.st, Media: a.cache,
		GateFile: filepath.Join(a.cfg.DataDir, GateFile), Poll: a.cfg.UpdatePoll,
		Queued: func() {
			if l := wake.Load(); l != nil {
				l.Wake()
			}
		}}, a.log.With("part", "update"))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	l, err := link.New(link.Config{
		BrokerURL:         a.cfg.BrokerURL,
		DataDir:           a.cfg.DataDir,
		HeartbeatInterval: a.cfg.HeartbeatInterval,
		MaxInFlight:       a.cfg.MaxInFlight,
		ResendAfter:       a.cfg.ResendAfter,
		ReconnectMin:      a.cfg.ReconnectMin,
		ReconnectMax:      a.cfg.ReconnectMax,
		SoftwareVersion:   a.cfg.SoftwareVersion,
		StartedAt:         a.startedAt,
		Media:             a.cache,
		MediaStatus:       a.cache.Status,
		Updates:           upd,
		Commands:          a,
	}, a.st, observer{a}, a.log.With("kiosk", id.Kiosk))
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	wake.Store(l)
	var req media.Requester = l
	if a.cfg.MediaHTTP != "" {
		h, err := media.NewHTTP(a.ctx, media.HTTPConfig{
			BaseURL: a.cfg.MediaHTTP, CACert: id.CACert, Username: id.MQTTUsername, Password: id.MQTTPassword,
		}, a.cache)
		if err != nil {
			return fmt.Errorf("agent: %w", err)
		}
		req = h
	}
	done := make(chan error, 1)
	ctx, st, cache := a.ctx, a.st, a.cache
	go func() { done <- l.Run(ctx) }()
	a.kiosk, a.link, a.linkDone = id.Kiosk, l, done
	a.flushOnce(st, id.Kiosk, l)
	a.bg.Add(3)
	go func() {
		defer a.bg.Done()
		if err := upd.Run(ctx); err != nil {
			a.log.Error("update manager stopped", "err", err)
		}
	}()
	go func() {
		defer a.bg.Done()
		if err := cache.Run(ctx, req); err != nil {
			a.log.Error("media downloader stopped", "err", err)
			a.bgErr <- fmt.Errorf("agent: media: %w", err)
		}
	}()
	go func() {
		defer a.bg.Done()
		a.flushPlays(ctx, st, id.Kiosk, l)
	}()
	return nil
}

// verifyManifest checks a signed manifest envelope with the hub key the
// device trusts now.
func verifyManifest(st *store.Store, data []byte) (protocol.Manifest, error) {
	id, ok, err := st.Identity()
	if err != nil {
		return protocol.Manifest{}, err
	}
	if !ok {
		return protocol.Manifest{}, store.ErrNotEnrolled
	}
	key, err := id.TrustedKey()
	if err != nil {
		return protocol.Manifest{}, err
	}
	env, m, err := protocol.DecodeManifest(data)
	if err != nil {
		return m, err
	}
	if err := protocol.VerifyEnvelope(env, key); err != nil {
		return m, err
	}
	return m, nil
}

// flushPlays turns the play counts of every finished hour into outbox
// records at the start of every hour until ctx is done (startLinkLocked
// flushes once at start).
func (a *Agent) flushPlays(ctx context.Context, st *store.Store, kiosk string, l *link.Link) {
	for {
		now := time.Now()
		t := time.NewTimer(now.Truncate(time.Hour).Add(time.Hour + time.Second).Sub(now))
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		if a.flushOnce(st, kiosk, l) > 0 {
			a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
		}
	}
}

// flushOnce queues the finished hours' play counts and wakes the link; it
// may run with a.mu held.
func (a *Agent) flushOnce(st *store.Store, kiosk string, l *link.Link) int {
	n, err := st.FlushPlays(kiosk, time.Now())
	switch {
	case err != nil:
		a.log.Error("play counts not flushed", "err", err)
	case n > 0:
		a.log.Info("play stats queued", "records", n)
		l.Wake()
	}
	return n
}

// FlushPlays queues the play counts of every hour that ended by now, as
// the hourly flush does, and wakes the link. For tests and technicians.
func (a *Agent) FlushPlays(now time.Time) (int, error) {
	st, l, kiosk := a.parts()
	if st == nil {
		return 0, ErrNotStarted
	}
	if kiosk == "" {
		return 0, ErrNotEnrolled
	}
	n, err := st.FlushPlays(kiosk, now)
	if err != nil {
		return 0, fmt.Errorf("agent: %w", err)
	}
	if n > 0 {
		l.Wake()
	}
	return n, nil
}

// Play counts a play event of the kiosk (proof of play) and remembers the
// file on screen, which is never removed.
func (a *Agent) Play(e protocol.PlayEvent) error {
	st, _, kiosk := a.parts()
	if st == nil {
		return ErrNotStarted
	}
	if kiosk == "" {
		return ErrNotEnrolled
	}
	if err := st.AddPlay(e); err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if e.Media != "" {
		a.mu.Lock()
		c := a.cache
		a.mu.Unlock()
		if c != nil {
			c.Played(e.Media, e.At)
		}
	}
	return nil
}

// MediaError records the kiosk's report that it cannot play a held file;
// the file is reported failed in heartbeats from then on, so staff see it.
func (a *Agent) MediaError(e protocol.MediaError) error {
	a.mu.Lock()
	c := a.cache
	a.mu.Unlock()
	if c == nil {
		return ErrNotEnrolled
	}
	if !c.Unplayable(e.SHA256, e.Reason) {
		return fmt.Errorf("agent: %w: media %s is not held", protocol.ErrInvalid, e.SHA256)
	}
	a.log.Warn("the kiosk cannot play a held media file", "sha256", e.SHA256, "reason", e.Reason)
	return nil
}

// Media returns the media cache (nil when not started): its progress and
// files, for tests and technicians.
func (a *Agent) Media() *media.Cache {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.cache
}

func (a *Agent) heldVersion() int64 {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.version
}

// Enrol enrols the device with the hub of Config.HubURL using a claim code
// typed on the kiosk's setup screen, then starts the MQTT link. It fails
// with ErrAlreadyEnrolled if the device is enrolled, ErrNoHub if no hub URL
// is configured, and with the errors of agent/enrol.
func (a *Agent) Enrol(ctx context.Context, claimCode string) error {
	a.enrolling.Lock()
	defer a.enrolling.Unlock()
	a.mu.Lock()
	st, kiosk := a.st, a.kiosk
	a.mu.Unlock()
	switch {
	case st == nil:
		return ErrNotStarted
	case kiosk != "":
		return fmt.Errorf("%w as kiosk %s", ErrAlreadyEnrolled, kiosk)
	case a.cfg.HubURL == "":
		return ErrNoHub
	}
	if _, err := enrol.Enrol(ctx, st, enrol.Config{
		HubURL: a.cfg.HubURL, ClaimCode: claimCode, CAPin: a.cfg.CAPin,
		HardwareID: a.cfg.HardwareID, SoftwareVersion: a.cfg.SoftwareVersion,
	}, a.log); err != nil {
		a.log.Warn("enrolment failed", "err", err)
		return err
	}
	id, ok, err := st.Identity()
	if err != nil {
		return fmt.Errorf("agent: %w", err)
	}
	if !ok {
		return fmt.Errorf("agent: enrolment stored no identity: %w", ErrNotEnrolled)
	}
	a.mu.Lock()
	if a.st == nil { // closed meanwhile
		a.mu.Unlock()
		return ErrNotStarted
	}
	a.version, a.lastSync = 0, time.Time{}
	err = a.startLinkLocked(id)
	a.mu.Unlock()
	if err != nil {
		return err
	}
	a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
	a.broadcast(protocol.LocalEvent{Type: protocol.EventNotices})
	return nil
}

// Close stops the link (saying offline to the hub if connected) and the
// local API, ends all event subscriptions and closes the database.
func (a *Agent) Close() error {
	a.mu.Lock()
	st, api, stop, done, cache := a.st, a.api, a.stop, a.linkDone, a.cache
	a.st, a.link, a.api, a.stop, a.linkDone, a.kiosk = nil, nil, nil, nil, nil, ""
	a.mu.Unlock()
	if st == nil {
		return nil
	}
	var errs []error
	if api != nil {
		errs = append(errs, api.Close())
	}
	stop()
	if done != nil {
		if err := <-done; err != nil {
			errs = append(errs, fmt.Errorf("agent: link: %w", err))
		}
	}
	a.bg.Wait()
	for len(a.bgErr) > 0 {
		errs = append(errs, <-a.bgErr)
	}
	errs = append(errs, cache.Close())
	a.mu.Lock()
	a.cache = nil
	a.mu.Unlock()
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

// Run starts the agent, waits for ctx to be done, and closes it. After the
// hub asked for a restart (RestartRequested) it closes the agent and
// returns ErrRestartRequested.
func (a *Agent) Run(ctx context.Context) error {
	if err := a.Start(ctx); err != nil {
		return err
	}
	select {
	case <-ctx.Done():
		return a.Close()
	case <-a.restart:
		return errors.Join(ErrRestartRequested, a.Close())
	}
}

func (a *Agent) parts() (*store.Store, *link.Link, string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.st, a.link, a.kiosk
}

// SubmitFeedback stores a resident's feedback in the outbox and returns the
// receipt once it is durable; the link then delivers it. It works offline.
func (a *Agent) SubmitFeedback(req protocol.FeedbackRequest) (protocol.FeedbackReceipt, error) {
	st, l, kiosk := a.parts()
	if st == nil {
		return protocol.FeedbackReceipt{}, ErrNotStarted
	}
	if kiosk == "" {
		return protocol.FeedbackReceipt{}, ErrNotEnrolled
	}
	rc, err := st.AddFeedback(kiosk, req, time.Now())
	if err != nil {
		return rc, fmt.Errorf("agent: %w", err)
	}
	a.log.Info("feedback stored", "id", rc.ID, "ticket", rc.Ticket)
	l.Wake()
	a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
	return rc, nil
}

// Case looks a case of this kiosk up by ticket or query code in the case
// board held (localapi.ErrNoCase if it has none such).
func (a *Agent) Case(ticketOrCode string) (protocol.LocalCase, error) {
	st, _, kiosk := a.parts()
	if st == nil {
		return protocol.LocalCase{}, ErrNotStarted
	}
	if kiosk == "" {
		return protocol.LocalCase{}, ErrNotEnrolled
	}
	c, err := st.Case(ticketOrCode)
	if errors.Is(err, store.ErrNoCase) {
		return c, fmt.Errorf("agent: %w: %w", localapi.ErrNoCase, err)
	}
	if err != nil {
		return c, fmt.Errorf("agent: %w", err)
	}
	return c, nil
}

// Rate stores a resident's rating of a case in the outbox and returns the
// receipt once it is durable; the link then delivers it. The case must be
// rateable per the board held and not rated here already
// (localapi.ErrNotRateable).
func (a *Agent) Rate(ticketOrCode string, r protocol.Rating) (protocol.RatingReceipt, error) {
	st, l, kiosk := a.parts()
	if st == nil {
		return protocol.RatingReceipt{}, ErrNotStarted
	}
	if kiosk == "" {
		return protocol.RatingReceipt{}, ErrNotEnrolled
	}
	rc, err := st.AddRating(kiosk, ticketOrCode, r, time.Now())
	switch {
	case errors.Is(err, store.ErrNoCase):
		return rc, fmt.Errorf("agent: %w: %w", localapi.ErrNoCase, err)
	case errors.Is(err, store.ErrNotRateable):
		return rc, fmt.Errorf("agent: %w: %w", localapi.ErrNotRateable, err)
	case err != nil:
		return rc, fmt.Errorf("agent: %w", err)
	}
	a.log.Info("rating stored", "id", rc.ID, "ticket", rc.Ticket, "rating", rc.Rating)
	l.Wake()
	a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
	return rc, nil
}

// CheckinCode returns the check-in code of the current slot: the hub's
// check-in URL signed with the device key. The hub URL is the one the
// device enrolled with (else Config.HubURL).
func (a *Agent) CheckinCode() (protocol.CheckinCode, error) {
	st, _, kiosk := a.parts()
	if st == nil {
		return protocol.CheckinCode{}, ErrNotStarted
	}
	if kiosk == "" {
		return protocol.CheckinCode{}, ErrNotEnrolled
	}
	id, _, err := st.Identity()
	if err != nil {
		return protocol.CheckinCode{}, fmt.Errorf("agent: check-in code: %w", err)
	}
	hub := id.HubURL
	if hub == "" {
		hub = a.cfg.HubURL
	}
	if hub == "" {
		return protocol.CheckinCode{}, ErrNoHub
	}
	key, err := st.DeviceKey()
	if err != nil {
		return protocol.CheckinCode{}, fmt.Errorf("agent: check-in code: %w", err)
	}
	slot := protocol.CheckinSlot(time.Now())
	return protocol.CheckinCode{
		URL:     protocol.CheckinURL(hub, kiosk, slot, protocol.SignCheckin(key, kiosk, slot)),
		Expires: protocol.CheckinSlotEnd(slot),
	}, nil
}

// Notices returns the station and the notices held whose ValidUntil has
// not passed, including those scheduled to start later (the kiosk decides
// when to show them).
func (a *Agent) Notices() (protocol.LocalNotices, error) {
	st, _, kiosk := a.parts()
	if st == nil {
		return protocol.LocalNotices{}, ErrNotStarted
	}
	if kiosk == "" {
		return Unexpired("", protocol.DesiredState{}, time.Now()), nil
	}
	doc, _, _, err := st.Desired()
	if err != nil {
		return protocol.LocalNotices{}, fmt.Errorf("agent: %w", err)
	}
	out := Unexpired(kiosk, doc, time.Now())
	if c := a.Media(); c != nil {
		out.Media = c.Held()
	}
	return out, nil
}

// Unexpired is the LocalNotices for a desired-state document at now: every
// notice and playlist whose ValidUntil is unset or after now (active and
// scheduled), in the document's order. Media is left to the caller.
func Unexpired(kiosk string, doc protocol.DesiredState, now time.Time) protocol.LocalNotices {
	out := protocol.LocalNotices{Kiosk: kiosk, Version: doc.Version, Station: doc.Station, Notices: []protocol.Notice{}}
	for _, n := range doc.Notices {
		if n.ValidUntil.IsZero() || now.Before(n.ValidUntil) {
			out.Notices = append(out.Notices, n)
		}
	}
	for _, p := range doc.Playlists {
		if p.ValidUntil.IsZero() || now.Before(p.ValidUntil) {
			out.Playlists = append(out.Playlists, p)
		}
	}
	return out
}

// Status reports the agent's state.
func (a *Agent) Status() protocol.AgentStatus {
	st, l, kiosk := a.parts()
	a.mu.Lock()
	s := protocol.AgentStatus{
		Enrolled:        kiosk != "",
		Kiosk:           kiosk,
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
		for _, e := range []protocol.LocalEvent{{Type: protocol.EventNotices, Version: a.version}, {Type: protocol.EventStatus}, {Type: protocol.EventCases}} {
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
	if c := o.a.Media(); c != nil {
		if up {
			c.Kick()
		} else {
			c.Disconnected()
		}
	}
	o.a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
}

func (o observer) DesiredApplied(doc protocol.DesiredState) {
	o.a.mu.Lock()
	o.a.version, o.a.lastSync = doc.Version, time.Now()
	c := o.a.cache
	o.a.mu.Unlock()
	if c != nil {
		c.Want(doc)
	}
	o.a.broadcast(protocol.LocalEvent{Type: protocol.EventNotices, Version: doc.Version})
}

func (o observer) CasesApplied(b protocol.CaseBoard) {
	o.a.broadcast(protocol.LocalEvent{Type: protocol.EventCases, Version: b.Version})
}

func (o observer) OutboxChanged() {
	o.a.broadcast(protocol.LocalEvent{Type: protocol.EventStatus})
}

var _ localapi.Backend = (*Agent)(nil)
