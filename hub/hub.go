// Package hub is the Shequ hub service: it wires the database, the org
// tree, the embedded MQTT broker (or an external one), the fleet MQTT client
// and the HTTP API together, and keeps every kiosk's desired state published.
//
// Desired state: for each kiosk the hub builds a document of the live
// notices aimed at it or any node above it, plus its community's
// workstation (package desired). The document's content hash is stored with
// a version from a hub-wide sequence; a changed document gets a new, higher
// version and is published retained. The hub republishes every kiosk's
// document from the database at start and after every reconnection to the
// broker, and re-checks all kiosks periodically so expired notices drop out.
//
// Media (package media, playlists, report): staff upload images and videos
// (POST /api/v1/media); videos are transcoded to the kiosk profile by a
// queue that survives restarts. Playlists of ready files go into the
// desired state of the kiosks they target, with the MediaRef of every file
// they need; a kiosk fetches a file it references as signed manifest plus
// chunks over MQTT or with Range over HTTPS (device Basic auth), and
// reports media states in heartbeats and proof of play as acknowledged
// records. Every published document's items are recorded (deliveries) for
// the delivery reports.
//
// Security (see docs/security.md): at first start the hub creates under
// DataDir its CA and server certificate (tls/), its ed25519 signing key chain
// (keys/), the staff API's admin token (admin.token), its own MQTT password
// (hub-mqtt.secret) and the HMAC key of claim codes (claim.secret). The
// embedded broker and the HTTP API speak TLS unless Config.PlainTCP; the
// broker refuses anonymous clients and confines each enrolled device to its
// own topics; every downlink message is signed. With an external mosquitto
// the hub keeps DataDir/mosquitto/{passwd,acl} up to date and calls
// Config.BrokerReload after every change.
//
// Health (health.go): Check is the hub's liveness check, which cmd/hub
// feeds the systemd watchdog with (a stuck database or main loop, or a
// broker cut off for longer than Config.BrokerGrace); Health reports every
// check, also a full disk, as the body of the public GET /healthz.
package hub

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/shequ/shequ/hub/access"
	"github.com/shequ/shequ/hub/accounts"
	"github.com/shequ/shequ/hub/api"
	"github.com/shequ/shequ/hub/broker"
	"github.com/shequ/shequ/hub/cases"
	"github.com/shequ/shequ/hub/console"
	"github.com/shequ/shequ/hub/desired"
	"github.com/shequ/shequ/hub/enrol"
	"github.com/shequ/shequ/hub/fleet"
	"github.com/shequ/shequ/hub/media"
	"github.com/shequ/shequ/hub/open311"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/playlists"
	"github.com/shequ/shequ/hub/ratelimit"
	"github.com/shequ/shequ/hub/releases"
	"github.com/shequ/shequ/hub/remote"
	"github.com/shequ/shequ/hub/report"
	"github.com/shequ/shequ/hub/resident"
	"github.com/shequ/shequ/hub/signing"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Store is everything the hub needs from its database.
type Store interface {
	api.Store
	media.Store
	playlists.Store
	report.Store
	releases.Store
	LivePlaylists(ctx context.Context, now time.Time) ([]store.PlaylistRecord, error)
	RecordDelivery(ctx context.Context, kiosk string, version int64, refs []store.DeliveryRef, t time.Time) error
	fleet.Store
	cases.Store
	enrol.Store
	console.Store
	remote.Store
	EnsureKiosks(ctx context.Context, ids []string) error
	FeedbackWithoutCase(ctx context.Context, limit int) ([]store.FeedbackRecord, error)
	KioskCases(ctx context.Context, kiosk string, limit int) ([]store.CaseRecord, error)
	LatestAnswer(ctx context.Context, caseID string) (store.Answer, error)
	NextBoardVersion(ctx context.Context, kiosk string, now time.Time) (int64, error)
	KioskRatingOutcome(ctx context.Context, recordID string) (string, bool, error)
	RecordKioskRating(ctx context.Context, recordID, kiosk, ticket, rating, outcome string, at time.Time) error
	EnrolledDevice(ctx context.Context, kiosk string) (store.Device, error)
	LiveNotices(ctx context.Context, now time.Time) ([]protocol.Notice, error)
	SetDesired(ctx context.Context, kiosk, hash string) (version int64, changed bool, err error)
	ForgetPhones(ctx context.Context, closedBefore time.Time, limit int) (int, error)
	// SchemaVersion is the health check's query.
	SchemaVersion(ctx context.Context) (int, error)
	Close() error
}

var _ Store = (*store.SQLite)(nil)

// Defaults for zero Config fields.
const (
	DefaultMQTTListen     = broker.DefaultListen
	DefaultHTTPListen     = "127.0.0.1:8080"
	DefaultClientID       = fleet.DefaultClientID
	DefaultOfflineAfter   = 90 * time.Second
	DefaultReconcileEvery = time.Minute
	DefaultEnrolPerMinute = 10
	// DefaultLoginPerMinute limits console login attempts per client IP
	// (the global limit is ten times that); lockout per account is in
	// hub/accounts.
	DefaultLoginPerMinute = 20
	// DefaultPhoneRetention is how long residents' phone numbers are kept
	// after their case closed.
	DefaultPhoneRetention = 180 * 24 * time.Hour
	// DefaultMinFreeDisk is the free space in DataDir's file system below
	// which the disk health check fails.
	DefaultMinFreeDisk = 256 << 20
	// DefaultBrokerGrace is how long the hub may be cut off from the
	// broker before Check fails.
	DefaultBrokerGrace = 5 * time.Minute
	enrolBurst         = 5
	// retentionEvery is how often the tick forgets phone numbers.
	retentionEvery = time.Hour
)

// Config configures the hub. Zero values mean the defaults.
type Config struct {
	DataDir      string        // required; SQLite at DataDir/hub.db
	OrgFile      string        // org tree JSON file (ignored when Org is set)
	Org          *orgtree.Tree // the org tree; loaded from OrgFile when nil
	MQTTListen   string        // embedded broker address; default "127.0.0.1:8883"; "127.0.0.1:0" picks a free port
	BrokerURL    string        // external broker, e.g. "tcp://127.0.0.1:1884"; when set, no embedded broker runs
	HTTPListen   string        // default "127.0.0.1:8080"; "127.0.0.1:0" picks a free port
	ClientID     string        // hub's MQTT client id; default "shequ-hub"
	OfflineAfter time.Duration // default 90s
	// ReconcileEvery is how often every kiosk's document is rebuilt (so
	// expired notices drop out) and republished if it changed; default 1m.
	ReconcileEvery time.Duration
	// BeforeAck is a fault-injection hook for tests: called after the
	// feedback commit, before the ack is published; nil in production.
	BeforeAck func(recordID string)
	// Now returns the current time; default time.Now.
	Now func() time.Time

	// PlainTCP serves plain MQTT and HTTP instead of TLS: development only
	// (logged as a warning). Authentication and ACLs stay on.
	PlainTCP bool
	// Hostnames are extra names (DNS or IP) for the server certificate.
	Hostnames []string
	// PublicBrokerURL is the broker URL handed to devices at enrolment;
	// default: the embedded broker's URL, or BrokerURL when external.
	PublicBrokerURL string
	// EnrolPerMinute limits enrolment attempts per client IP, in bursts of
	// max(5, EnrolPerMinute/2); default 10. The global limit is ten times that.
	EnrolPerMinute int
	// BrokerReload is called after the mosquitto password and ACL files
	// changed (external broker only), e.g. to send mosquitto SIGHUP.
	BrokerReload func() error

	// MediaMaxUpload bounds one media upload (bytes); default 500 MiB.
	MediaMaxUpload int64
	// MediaBitrate is the kiosk video bitrate (bits/s); default 4 Mb/s.
	MediaBitrate int
	// MediaAudio keeps the audio of videos (AAC); by default it is dropped.
	MediaAudio bool
	// ChunkSize is the chunk size of media manifests; default 256 KiB.
	ChunkSize int
	// MediaSends bounds the chunk messages the hub publishes at once, over
	// all kiosks; default 4.
	MediaSends int

	// UpdateCA is the update CA certificate (PEM) that release bundles
	// must be signed under (docs/updates.md); without it, release uploads
	// are refused.
	UpdateCA string
	// Rauc is the rauc binary that checks bundles; default "rauc" on PATH.
	Rauc string

	// Require2FA lists the staff roles that must have two-step
	// verification in the console (accounts.Config.Require2FA); none by
	// default.
	Require2FA []accounts.Role

	// PhoneRetention is how long after its case closed a resident's phone
	// number is kept (in the case, its complainants and the kiosk feedback
	// records); the hub forgets older ones once an hour. Default 180 days
	// (DefaultPhoneRetention); negative: kept forever.
	PhoneRetention time.Duration

	// Version is the hub's software version (cmd/hub's, set at build
	// time), logged at start and reported by /healthz; default "dev".
	Version string
	// MinFreeDisk is the free space, in bytes, the disk health check wants
	// in DataDir's file system (for the hub's user); default 256 MiB
	// (DefaultMinFreeDisk); negative: not checked.
	MinFreeDisk int64
	// BrokerGrace is how long the hub's MQTT client may be cut off from
	// the broker before Check fails (/healthz reports it at once); default
	// 5 minutes (DefaultBrokerGrace); negative: never.
	BrokerGrace time.Duration
}

// Hub is the hub service.
type Hub struct {
	cfg Config
	log *slog.Logger

	store    Store
	broker   *broker.Broker
	fleet    *fleet.Fleet
	http     *http.Server
	httpAddr string
	httpDone chan error

	// desiredMu serialises rebuilding and publishing desired state, so
	// documents are published in version order.
	desiredMu sync.Mutex
	published map[string]int64 // kiosk → version last published successfully

	filesMu sync.RWMutex
	files   map[string]map[string]bool     // kiosk → media files its desired state references
	wanted  map[string][]protocol.MediaRef // kiosk → the same, in the document's order

	cancel   context.CancelFunc
	wg       sync.WaitGroup
	reconnCh chan struct{}

	media    *media.Library
	sender   *media.Sender
	releases *releases.Service
	relCh    chan struct{} // a rollout or a kiosk's update changed: step the rollouts

	sec         *secrets
	keys        *signing.Keys
	table       *access.Table
	accessMu    sync.Mutex // serialises updates of the broker's accounts
	accessStale bool       // the last update of the broker's accounts failed; retried on every tick

	cases      *cases.Service
	audit      func(ctx context.Context, action, object string, before, after any) // accounts.AuditChange
	boardMu    sync.Mutex
	boardDirty map[string]bool // kiosks whose case board must be published again
	boardCh    chan struct{}

	lastRetention time.Time // when phones were last forgotten (the loop's goroutine only)

	// Health (health.go).
	epoch    time.Time               // when New ran: the origin of loopTurn, on the monotonic clock
	loopTurn atomic.Int64            // time since epoch at the loop's last sign of progress, ns
	running  atomic.Pointer[checked] // what the checks look at; set when Start completed, cleared by Close
}

// New checks cfg, loads the org tree and returns an unstarted hub.
func New(cfg Config, log *slog.Logger) (*Hub, error) {
	if cfg.DataDir == "" {
		return nil, errors.New("hub: DataDir is required")
	}
	if cfg.Org == nil {
		t, err := loadOrg(cfg.OrgFile)
		if err != nil {
			return nil, err
		}
		cfg.Org = t
	}
	if cfg.MQTTListen == "" {
		cfg.MQTTListen = DefaultMQTTListen
	}
	if cfg.HTTPListen == "" {
		cfg.HTTPListen = DefaultHTTPListen
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.OfflineAfter <= 0 {
		cfg.OfflineAfter = DefaultOfflineAfter
	}
	if cfg.ReconcileEvery <= 0 {
		cfg.ReconcileEvery = DefaultReconcileEvery
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.EnrolPerMinute <= 0 {
		cfg.EnrolPerMinute = DefaultEnrolPerMinute
	}
	if cfg.PhoneRetention == 0 {
		cfg.PhoneRetention = DefaultPhoneRetention
	}
	if cfg.Version == "" {
		cfg.Version = "dev"
	}
	if cfg.MinFreeDisk == 0 {
		cfg.MinFreeDisk = DefaultMinFreeDisk
	}
	if cfg.BrokerGrace == 0 {
		cfg.BrokerGrace = DefaultBrokerGrace
	}
	return &Hub{cfg: cfg, log: log, epoch: time.Now(), published: make(map[string]int64), reconnCh: make(chan struct{}, 1),
		relCh: make(chan struct{}, 1),
		table: access.NewTable(), files: make(map[string]map[string]bool),
		wanted: make(map[string][]protocol.MediaRef), boardDirty: make(map[string]bool), boardCh: make(chan struct{}, 1)}, nil
}

// Start opens and migrates the store, starts the broker (unless external),
// the HTTP API and the MQTT client, and publishes every kiosk's desired
// state from the database. It returns when all are up. On error, what was
// started is closed again.
func (h *Hub) Start(ctx context.Context) (err error) {
	defer func() {
		if err != nil {
			err = errors.Join(err, h.Close())
		}
	}()
	h.log.Info("hub starting", "version", h.cfg.Version, "data", h.cfg.DataDir)
	if h.cfg.PlainTCP {
		h.log.Warn("PLAIN TCP: MQTT and HTTP are not encrypted; use only for development")
	}
	sec, err := prepare(h.cfg, h.cfg.Now())
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.sec = sec
	if sec.pki.CreatedCA() {
		h.log.Info("created the hub CA", "dir", sec.pki.Dir, "ca_pin", sec.pki.Pin())
	} else if sec.pki.Renewed() {
		h.log.Info("issued a new server certificate", "not_after", sec.pki.Server.Leaf.NotAfter)
	}
	keys, err := signing.Open(filepath.Join(h.cfg.DataDir, "keys"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.keys = keys
	st, err := store.OpenWith(ctx, filepath.Join(h.cfg.DataDir, DBFile), store.Options{Logger: h.log})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.store = st
	var ids []string
	for _, k := range h.cfg.Org.Kiosks() {
		ids = append(ids, k.ID)
	}
	if err := h.store.EnsureKiosks(ctx, ids); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := h.refreshAccess(ctx, nil); err != nil {
		return fmt.Errorf("hub: %w", err)
	}

	brokerURL := h.cfg.BrokerURL
	if brokerURL == "" {
		var serverTLS *tls.Config
		if !h.cfg.PlainTCP {
			serverTLS = sec.pki.ServerTLS()
		}
		b, err := broker.Start(broker.Config{Listen: h.cfg.MQTTListen, TLS: serverTLS, Access: h.table}, h.log)
		if err != nil {
			return fmt.Errorf("hub: %w", err)
		}
		h.broker = b
		brokerURL = b.URL()
		h.log.Info("embedded MQTT broker listening", "url", brokerURL)
	}
	publicBroker := h.cfg.PublicBrokerURL
	if publicBroker == "" {
		if h.broker != nil && h.broker.Unspecified() {
			return fmt.Errorf("hub: the broker listens on every interface (%s): set PublicBrokerURL (-public-broker) to the address kiosks reach it at", h.cfg.MQTTListen)
		}
		publicBroker = brokerURL
	}

	cs, err := cases.New(cases.Config{Store: h.store, Tree: h.cfg.Org, Now: h.cfg.Now, Changed: h.caseChanged})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.cases = cs
	acc, err := accounts.New(accounts.Config{Store: st, Tree: h.cfg.Org, Secret: []byte(sec.console),
		Log: h.log.With("component", "accounts"), Now: h.cfg.Now, Require2FA: h.cfg.Require2FA,
		Limiter: ratelimit.New(DefaultLoginPerMinute, DefaultLoginPerMinute, 10*DefaultLoginPerMinute, 10*DefaultLoginPerMinute, h.cfg.Now)})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.audit = acc.AuditChange
	// The API takes the admin token and bureau admins' personal tokens.
	a, err := api.New(api.Config{
		Store: h.store, Tree: h.cfg.Org, OfflineAfter: h.cfg.OfflineAfter, AdminToken: sec.adminToken,
		Tokens: acc.APITokenChecker(api.ErrTokenRefused), TokenPrefix: accounts.APITokenPrefix,
		NoticeChanged: h.noticeChanged, Audit: h.audit, Now: h.cfg.Now, Health: h.Health,
	}, h.log.With("component", "api"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	burst := max(enrolBurst, h.cfg.EnrolPerMinute/2)
	en, err := enrol.New(enrol.Config{
		Store: h.store, Tree: h.cfg.Org, Keys: keys, Secret: []byte(sec.claimSecret), CACertPEM: sec.pki.CAPEM,
		BrokerURL: publicBroker, AccessChanged: h.refreshAccess, Audit: h.audit, Now: h.cfg.Now,
		Limiter: ratelimit.New(h.cfg.EnrolPerMinute, burst, 10*h.cfg.EnrolPerMinute, 10*burst, h.cfg.Now),
	}, h.log.With("component", "enrol"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	en.Register(a)
	lib, err := media.New(media.Config{
		Dir: filepath.Join(h.cfg.DataDir, "media"), Store: h.store, MaxUpload: h.cfg.MediaMaxUpload,
		Bitrate: h.cfg.MediaBitrate, Audio: h.cfg.MediaAudio, ChunkSize: h.cfg.ChunkSize, Audit: h.audit, Now: h.cfg.Now,
	}, h.log.With("component", "media"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.media = lib
	lib.Register(a)
	sender, err := media.NewSender(media.SenderConfig{
		Files: lib.Files(), ChunkSize: lib.ChunkSize(), Signer: keys, References: h.References,
		Sends: h.cfg.MediaSends, Now: h.cfg.Now,
	}, h.log.With("component", "media-send"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.sender = sender
	sender.RegisterHTTP(a, media.HTTPConfig{Authenticate: h.authenticateDevice})
	rel, err := releases.New(releases.Config{
		Store: h.store, Files: lib.Files(), Tree: h.cfg.Org, Inspector: releases.RAUC{Binary: h.cfg.Rauc, Keyring: h.cfg.UpdateCA},
		Audit: h.audit, Changed: h.releasesChanged, Now: h.cfg.Now,
	}, h.log.With("component", "releases"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.releases = rel
	rel.Register(a)
	pl, err := playlists.New(playlists.Config{Store: h.store, Tree: h.cfg.Org, Changed: h.playlistChanged, Audit: h.audit,
		Now: h.cfg.Now},
		h.log.With("component", "playlists"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	pl.Register(a)
	rep, err := report.New(report.Config{Store: h.store, Tree: h.cfg.Org, Wanted: h.Wanted}, h.log.With("component", "report"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	rep.Register(a)
	a.Handle("POST /api/v1/keys/rotate", http.HandlerFunc(h.rotateHandler))
	// Commands go out through the fleet client, which starts after the
	// HTTP server: until then a command is stored and reported not sent.
	var fleetUp atomic.Pointer[fleet.Fleet]
	rs, err := remote.New(remote.Config{Store: h.store, Tree: h.cfg.Org, Signer: keys, Audit: h.audit, Now: h.cfg.Now,
		Publish: func(ctx context.Context, t protocol.Topic, payload []byte) error {
			fl := fleetUp.Load()
			if fl == nil {
				return errors.New("hub: not connected to the broker yet")
			}
			return fl.Publish(ctx, t, payload)
		}}, h.log.With("component", "remote"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	rs.Register(a)
	con, err := console.New(console.Config{
		Accounts: acc, Cases: cs, Store: h.store, Tree: h.cfg.Org, Notices: a, Reports: rep,
		Upload: lib.UploadHandler(), MaxUpload: lib.MaxUpload(), Releases: rel, DeviceKey: h.deviceKey, Photo: normalizePhoto,
		Remote: rs, Now: h.cfg.Now, Log: h.log.With("component", "console"),
	})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	con.Register(a)
	acc.RegisterAdmin(a)
	o3, err := open311.New(open311.Config{Cases: cs, Store: st, Tree: h.cfg.Org, Now: h.cfg.Now,
		Log: h.log.With("component", "open311"), BaseURL: h.HTTPURL, Audit: h.audit})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	o3.Register(a)
	o3.RegisterAdmin(a)
	res, err := resident.New(resident.Config{Cases: cs, Store: st, Tree: h.cfg.Org, Secret: []byte(sec.resident),
		Photo: normalizePhoto, Now: h.cfg.Now, Log: h.log.With("component", "resident")})
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	res.Register(a)
	ln, err := net.Listen("tcp", h.cfg.HTTPListen)
	if err != nil {
		return fmt.Errorf("hub: HTTP listen: %w", err)
	}
	h.httpAddr = ln.Addr().String()
	h.http = api.NewServer(a, h.log)
	if !h.cfg.PlainTCP {
		ln = tls.NewListener(ln, sec.pki.ServerTLS())
	}
	h.httpDone = make(chan error, 1)
	go func() { h.httpDone <- h.http.Serve(ln) }()
	h.log.Info("HTTP API listening", "url", h.HTTPURL())

	fcfg := fleet.Config{
		BrokerURL: brokerURL, ClientID: h.cfg.ClientID, Store: h.store, Signer: keys,
		Username: access.HubUser, Password: sec.hubMQTT,
		OnConnect: h.reconnected, BeforeAck: h.cfg.BeforeAck, Now: h.cfg.Now, Media: sender, Updates: rel,
		FeedbackStored: func(ctx context.Context, id string, fb protocol.Feedback, at time.Time) error {
			return h.feedbackStored(ctx, cs, id, fb, at)
		},
		RatingReceived: func(ctx context.Context, id string, r protocol.CaseRating, at time.Time) error {
			return h.kioskRating(ctx, cs, id, r, at)
		},
		ResultReceived: rs.ResultReceived,
	}
	if !h.cfg.PlainTCP {
		fcfg.TLS = sec.pki.ClientTLS()
	}
	fl, err := fleet.New(fcfg, h.log.With("component", "fleet"))
	if err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	h.fleet = fl
	fleetUp.Store(fl)
	sender.Start(fl)
	if err := fl.Start(ctx); err != nil {
		return fmt.Errorf("hub: %w", err)
	}
	if err := h.fleet.PublishKeys(ctx, h.cfg.Org.Root().ID, keys.Chain()); err != nil {
		return fmt.Errorf("hub: publish key chain: %w", err)
	}
	if err := h.reconcile(ctx, ids, true, nil); err != nil {
		return fmt.Errorf("hub: publish desired state: %w", err)
	}

	if n, err := h.backfillCases(ctx, cs); err != nil {
		h.log.Error("some stored feedback has no case", "created", n, "err", err)
	} else if n > 0 {
		h.log.Info("created the cases of stored feedback", "cases", n)
	}
	h.publishAllBoards()

	loopCtx, cancel := context.WithCancel(context.Background())
	h.cancel = cancel
	h.turned()
	h.wg.Add(2)
	go h.loop(loopCtx)
	go h.boardLoop(loopCtx)
	h.media.Start()
	h.running.Store(&checked{store: h.store, fleet: h.fleet})
	return nil
}

// HTTPURL returns the API's base URL, e.g. "https://127.0.0.1:8443"
// (http:// with PlainTCP).
func (h *Hub) HTTPURL() string {
	if h.cfg.PlainTCP {
		return "http://" + h.httpAddr
	}
	return "https://" + h.httpAddr
}

// CACertPEM returns the hub CA certificate (PEM).
func (h *Hub) CACertPEM() []byte { return h.sec.pki.CAPEM }

// CAPin returns the hex SHA-256 of the hub CA certificate's DER.
func (h *Hub) CAPin() string { return h.sec.pki.Pin() }

// AdminToken returns the staff API's bearer token.
func (h *Hub) AdminToken() string { return h.sec.adminToken }

// HTTPClient returns a client that trusts only the hub CA.
func (h *Hub) HTTPClient() *http.Client {
	return &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{TLSClientConfig: h.sec.pki.ClientTLS()}}
}

// BrokerURL returns the URL of the broker in use, embedded or external:
// ssl://… (tcp:// with PlainTCP).
func (h *Hub) BrokerURL() string {
	if h.broker != nil {
		return h.broker.URL()
	}
	return h.cfg.BrokerURL
}

// Close stops everything and closes the database. It is safe to call on a
// hub that started only partly.
func (h *Hub) Close() error {
	h.running.Store(nil)
	var errs []error
	if h.cancel != nil {
		h.cancel()
		h.wg.Wait()
		h.cancel = nil
	}
	if h.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if err := h.http.Shutdown(ctx); errors.Is(err, context.DeadlineExceeded) {
			// Requests still running after 5 s, or connections a client
			// opened and never used (net/http waits for those too): cut them.
			h.log.Warn("HTTP connections still open at shutdown; closing them")
			if err := h.http.Close(); err != nil {
				errs = append(errs, fmt.Errorf("hub: HTTP close: %w", err))
			}
		} else if err != nil {
			errs = append(errs, fmt.Errorf("hub: HTTP shutdown: %w", err))
		}
		cancel()
		if err := <-h.httpDone; err != nil && !errors.Is(err, http.ErrServerClosed) {
			errs = append(errs, fmt.Errorf("hub: HTTP serve: %w", err))
		}
		h.http = nil
	}
	if h.media != nil {
		errs = append(errs, h.media.Close())
		h.media = nil
	}
	if h.sender != nil {
		errs = append(errs, h.sender.Close())
		h.sender = nil
	}
	if h.fleet != nil {
		errs = append(errs, h.fleet.Close())
		h.fleet = nil
	}
	if h.broker != nil {
		errs = append(errs, h.broker.Close())
		h.broker = nil
	}
	if h.store != nil {
		errs = append(errs, h.store.Close())
		h.store = nil
	}
	return errors.Join(errs...)
}

// Run starts the hub, waits for ctx to end, and closes it.
func (h *Hub) Run(ctx context.Context) error {
	if err := h.Start(ctx); err != nil {
		return err
	}
	<-ctx.Done()
	h.log.Info("shutting down")
	return h.Close()
}

// reconnected is called by the fleet after it reconnected to the broker,
// which may have lost its retained messages: republish everything.
func (h *Hub) reconnected() {
	select {
	case h.reconnCh <- struct{}{}:
	default: // a republish is already pending
	}
}

func (h *Hub) loop(ctx context.Context) {
	defer h.wg.Done()
	tick := time.NewTicker(h.cfg.ReconcileEvery)
	defer tick.Stop()
	for {
		force := false
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-h.reconnCh:
			force = true
		case <-h.relCh:
			h.turned()
			if err := h.releases.Step(ctx, h.fleet, false); err != nil {
				h.log.Error("stepping rollouts failed; retrying on the next tick", "err", err)
			}
			continue
		}
		h.turned()
		if force {
			if err := h.fleet.PublishKeys(ctx, h.cfg.Org.Root().ID, h.keys.Chain()); err != nil {
				h.log.Error("republishing the key chain failed", "err", err)
			}
		}
		if err := h.reconcile(ctx, h.kioskIDs(), force, h.turned); err != nil {
			h.log.Error("republishing desired state failed; retrying on the next tick", "err", err)
		}
		if force {
			h.publishAllBoards()
		}
		if err := h.releases.Step(ctx, h.fleet, force); err != nil {
			h.log.Error("stepping rollouts failed; retrying on the next tick", "err", err)
		}
		h.escalate(ctx, h.cases)
		h.retainPhones(ctx)
		h.accessMu.Lock()
		stale := h.accessStale
		h.accessMu.Unlock()
		if stale {
			if err := h.refreshAccess(ctx, nil); err != nil {
				h.log.Error("updating the broker's accounts failed again; retrying on the next tick", "err", err)
			}
		}
	}
}

// retainPhones forgets, at most once per retentionEvery, the phone
// numbers of cases closed more than PhoneRetention ago, in batches until
// none is left, and logs and audits how many cases it cleared. A failed
// run is retried on the next tick.
func (h *Hub) retainPhones(ctx context.Context) {
	now := h.cfg.Now()
	if h.cfg.PhoneRetention < 0 || (!h.lastRetention.IsZero() && now.Sub(h.lastRetention) < retentionEvery) {
		return
	}
	cutoff := now.Add(-h.cfg.PhoneRetention).UTC()
	total := 0
	var err error
	for ctx.Err() == nil {
		h.turned() // a first run may clear a large backlog, batch by batch
		var n int
		n, err = h.store.ForgetPhones(ctx, cutoff, 0)
		total += n
		if err != nil || n == 0 {
			break
		}
	}
	if total > 0 {
		h.log.Info("forgot residents' phone numbers of closed cases", "cases", total, "closed_before", cutoff)
		h.audit(ctx, "retention.phones", "cases", nil, phoneRetention{Cases: total, ClosedBefore: cutoff})
	}
	switch {
	case ctx.Err() != nil:
	case err != nil:
		h.log.Error("forgetting phone numbers of closed cases failed; retrying on the next tick", "err", err)
	default:
		h.lastRetention = now
	}
}

// phoneRetention is the audit record of one retainPhones run.
type phoneRetention struct {
	Cases        int       `json:"cases"`
	ClosedBefore time.Time `json:"closed_before"`
}

func (h *Hub) kioskIDs() []string {
	var ids []string
	for _, k := range h.cfg.Org.Kiosks() {
		ids = append(ids, k.ID)
	}
	return ids
}

// noticeChanged rebuilds and publishes the documents of the kiosks a
// created or withdrawn notice reaches.
func (h *Hub) noticeChanged(ctx context.Context, n protocol.Notice) {
	ids, err := h.cfg.Org.Resolve(n.Targets)
	if err != nil {
		h.log.Error("resolving notice targets", "notice", n.ID, "err", err)
		return
	}
	if err := h.reconcile(ctx, ids, false, nil); err != nil {
		h.log.Error("publishing desired state after a notice change failed; the periodic check retries",
			"notice", n.ID, "err", err)
	}
}

// authenticateDevice checks a device's MQTT credentials (HTTP Basic auth
// of the media endpoints) and returns its kiosk id.
func (h *Hub) authenticateDevice(username, password string) (string, bool) {
	if username == access.HubUser {
		return "", false
	}
	return username, h.table.Authenticate(username, username, []byte(password), "") == nil
}

// playlistChanged rebuilds and publishes the documents of the kiosks a
// created or withdrawn playlist reaches.
func (h *Hub) playlistChanged(ctx context.Context, p protocol.Playlist) {
	ids, err := h.cfg.Org.Resolve(p.Targets)
	if err != nil {
		h.log.Error("resolving playlist targets", "playlist", p.ID, "err", err)
		return
	}
	if err := h.reconcile(ctx, ids, false, nil); err != nil {
		h.log.Error("publishing desired state after a playlist change failed; the periodic check retries",
			"playlist", p.ID, "err", err)
	}
}

// References reports whether the kiosk's desired state references the
// media file, or the file is the bundle of a release offered to it: only
// such files are served to it.
func (h *Hub) References(kiosk, sha string) bool {
	h.filesMu.RLock()
	ok := h.files[kiosk][sha]
	h.filesMu.RUnlock()
	return ok || (h.releases != nil && h.releases.Offered(kiosk, sha))
}

// releasesChanged asks the loop to step the rollouts soon.
func (h *Hub) releasesChanged() {
	select {
	case h.relCh <- struct{}{}:
	default: // a step is already pending
	}
}

// Wanted returns the media files of the kiosk's desired state.
func (h *Hub) Wanted(kiosk string) []protocol.MediaRef {
	h.filesMu.RLock()
	defer h.filesMu.RUnlock()
	return slices.Clone(h.wanted[kiosk])
}

// livePlaylists returns the live playlists and the references of the files
// they play.
func (h *Hub) livePlaylists(ctx context.Context, now time.Time) ([]protocol.Playlist, map[string]protocol.MediaRef, error) {
	recs, err := h.store.LivePlaylists(ctx, now)
	if err != nil {
		return nil, nil, err
	}
	refs := map[string]protocol.MediaRef{}
	out := make([]protocol.Playlist, len(recs))
	for i, r := range recs {
		out[i] = r.Playlist
		for _, it := range r.Items {
			if it.Media == "" {
				continue
			}
			if _, ok := refs[it.Media]; ok {
				continue
			}
			m, err := h.store.ReadyMedia(ctx, it.Media)
			if errors.Is(err, store.ErrNotFound) {
				continue // the playlist is dropped from documents
			}
			if err != nil {
				return nil, nil, err
			}
			refs[it.Media] = m.Ref()
		}
	}
	return out, refs, nil
}

// deliveryRefs lists the items of a document for the delivery report.
func deliveryRefs(doc desired.Doc) []store.DeliveryRef {
	var out []store.DeliveryRef
	for _, n := range doc.Notices {
		out = append(out, store.DeliveryRef{Kind: store.RefNotice, Ref: n.ID})
	}
	for _, m := range doc.Media {
		out = append(out, store.DeliveryRef{Kind: store.RefMedia, Ref: m.SHA256})
	}
	return out
}

// reconcile rebuilds the documents of the kiosks, bumps the version of those
// whose content changed, and publishes those that changed, that were never
// published successfully, or all of them when force is set. turned, if
// set, is called for each kiosk: the loop's progress, as with the broker
// down every publish may wait for its timeout.
func (h *Hub) reconcile(ctx context.Context, kiosks []string, force bool, turned func()) error {
	h.desiredMu.Lock()
	defer h.desiredMu.Unlock()
	now := h.cfg.Now()
	live, err := h.store.LiveNotices(ctx, now)
	if err != nil {
		return err
	}
	lists, refs, err := h.livePlaylists(ctx, now)
	if err != nil {
		return err
	}
	var errs []error
	for _, k := range kiosks {
		if turned != nil {
			turned()
		}
		doc := desired.Build(h.cfg.Org, k, live, now)
		doc.AddPlaylists(h.cfg.Org, lists, refs, now)
		if len(doc.Dropped) > 0 {
			h.log.Warn("notices or playlists left out of a kiosk's desired state (too many, too large or files not ready)",
				"kiosk", k, "dropped", doc.Dropped)
		}
		h.filesMu.Lock()
		h.files[k] = doc.Files()
		h.wanted[k] = doc.Media
		h.filesMu.Unlock()
		hash, err := doc.Hash()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		version, changed, err := h.store.SetDesired(ctx, k, hash)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if !force && !changed && h.published[k] == version {
			continue
		}
		if err := h.fleet.PublishDesired(ctx, doc.State(version)); err != nil {
			delete(h.published, k)
			errs = append(errs, err)
			continue
		}
		h.published[k] = version
		if err := h.store.RecordDelivery(ctx, k, version, deliveryRefs(doc), h.cfg.Now()); err != nil {
			errs = append(errs, err)
		}
		h.log.Info("desired state published", "kiosk", k, "version", version, "notices", len(doc.Notices),
			"playlists", len(doc.Playlists), "media", len(doc.Media))
	}
	return errors.Join(errs...)
}

// feedbackStored creates the case of a stored feedback record (idempotent,
// so a resend after a failure creates it once). A record the case service
// refuses (its kiosk is no longer in the org tree) keeps its feedback row,
// is logged and acknowledged: resending would never help.
func (h *Hub) feedbackStored(ctx context.Context, cs *cases.Service, id string, fb protocol.Feedback, at time.Time) error {
	_, _, err := cs.FromFeedback(ctx, id, fb, at)
	if errors.Is(err, cases.ErrInvalid) {
		h.log.Error("feedback stored without a case", "record", id, "kiosk", fb.Kiosk, "err", err)
		return nil
	}
	return err
}
