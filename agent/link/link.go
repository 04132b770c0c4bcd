// Package link is the agent's MQTT session with the hub: it connects with a
// new session epoch and last will each time, publishes birth, heartbeat and
// the feedback outbox, and applies the desired state and acks the hub sends.
//
// # Sessions
//
// The link runs its own reconnect loop (paho's AutoReconnect is off) because
// every connection needs a new epoch, and the epoch is part of the last will,
// which is fixed when the connection is made. Delays between attempts grow
// exponentially from ReconnectMin to ReconnectMax with full jitter, so a
// fleet that lost its hub at once does not come back at once.
//
// Connections use CleanSession=true on purpose. Nothing the link needs lives
// in a broker session: the desired state is published retained, so it is
// delivered again on every subscribe, and every record not yet acknowledged
// stays in the outbox and is resent after each connect, so an ack lost while
// offline only causes a harmless duplicate. A clean session also keeps
// brokers from queueing messages for thousands of offline kiosks, and does
// not depend on broker persistence, which can lose queued messages.
//
// # Outbox pump
//
// After every connect the backlog is published in key (time) order at QoS 1
// with at most MaxInFlight records published and not yet acknowledged. A
// new record (Wake) or an ack fills free slots; a record not acknowledged
// ResendAfter after it was published is published again, unchanged, while
// connected. Only an application ack from the hub removes a record; a paho
// token completing is not proof of delivery.
//
// # Trust
//
// The link's identity comes from the store (agent/store.Identity, written
// at enrolment): kiosk id, groups, broker URL, MQTT credentials, the CA it
// pins and the hub key it trusts. It connects over TLS trusting only that
// CA, and subscribes to the downlink of its kiosk and of each of its groups.
//
// Every downlink message is verified with the trusted hub key before
// anything else is done with it (verify.go): an unsigned, tampered or
// wrongly keyed message, a desired version older than the one held, a key
// chain not rooted in the trusted key, or anything on an unexpected topic
// is never stored or shown; it is logged once, with the reason. A key chain
// that advances from the trusted key makes its newest key the trusted one
// (persisted) and the older keys are refused from then on. A desired
// document signed by a key the link does not know yet is kept in memory and
// checked again after a chain is adopted, since retained messages may
// arrive in any order.
//
// # Media
//
// Manifests (signed, verified like any downlink message) and chunks (not
// signed; the media cache checks them against their manifest) on the
// kiosk's own down/ topics go to Config.Media. RequestManifest and
// RequestChunks publish MediaRequests while connected. Outbox records are
// published on the channel of their type: feedback, plays or rating.
//
// # Cases
//
// The case board on the kiosk's own down/cases topic is verified like the
// desired state (and held in memory if signed by a key not known yet), and
// committed if its version is newer than the board held; the observer is
// told (CasesApplied) so the kiosk can refresh a case on screen.
//
// # Commands
//
// A remote command on the kiosk's own down/command topic is verified like
// any downlink message, and its signed body must name this kiosk and carry
// the envelope's id; it then goes to Config.Commands, which de-duplicates,
// checks the expiry and runs it (agent/commands.go). Results are outbox
// records, published on the result channel.
//
// The link publishes only to its own kiosk's up/ topics and never blocks in
// a paho handler: handlers hand messages over to the session goroutine.
package link

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/url"
	"slices"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

// Config configures a Link. Zero values mean the defaults. Who the link
// is and whom it trusts come from the store's identity.
type Config struct {
	BrokerURL         string        // override of the identity's broker URL (same CA and credentials)
	DataDir           string        // free disk space reported in heartbeats; default "."
	HeartbeatInterval time.Duration // default 30s
	MaxInFlight       int           // default 32
	ResendAfter       time.Duration // default 30s
	ReconnectMin      time.Duration // default 500ms
	ReconnectMax      time.Duration // default 60s
	ConnectTimeout    time.Duration // connect and subscribe; default 10s
	SoftwareVersion   string        // default "dev"
	StartedAt         time.Time     // for the heartbeat's uptime; default: when New is called
	// Media receives verified manifests and chunks; nil: they are dropped.
	Media MediaSink
	// MediaStatus reports the media cache for heartbeats; nil: none.
	MediaStatus func() (files []protocol.MediaStatus, bytes, quota int64)
	// Updates takes verified update offers and gives the update status
	// sent with each heartbeat; nil: offers are dropped, no status is sent.
	Updates Updates
	// Commands receives verified remote commands; nil: they are dropped
	// (logged), and the hub sees no result.
	Commands CommandSink
}

// Updates is the agent's update manager (agent/update). Offer is called
// from the session goroutine and must return quickly.
type Updates interface {
	Offer(o protocol.UpdateOffer)
	Status(epoch int64) protocol.UpdateStatus
}

// CommandSink takes the remote commands the hub sends, verified. Its
// method is called from the session goroutine and must not block.
type CommandSink interface {
	DeliverCommand(c protocol.Command)
}

// MediaSink takes the manifests (signed envelopes, verified) and chunks
// (not yet checked against their manifest) the hub sends. Its methods are
// called from the session goroutine and must not block.
type MediaSink interface {
	DeliverManifest(data []byte)
	DeliverChunk(c protocol.Chunk)
}

func (c *Config) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&c.HeartbeatInterval, 30*time.Second)
	def(&c.ResendAfter, 30*time.Second)
	def(&c.ReconnectMin, 500*time.Millisecond)
	def(&c.ReconnectMax, 60*time.Second)
	def(&c.ConnectTimeout, 10*time.Second)
	if c.ReconnectMax < c.ReconnectMin {
		c.ReconnectMax = c.ReconnectMin
	}
	if c.DataDir == "" {
		c.DataDir = "."
	}
	if c.MaxInFlight <= 0 {
		c.MaxInFlight = 32
	}
	if c.SoftwareVersion == "" {
		c.SoftwareVersion = "dev"
	}
	if c.StartedAt.IsZero() {
		c.StartedAt = time.Now()
	}
}

// Observer is told what the link did. Its methods are called from the
// link's session goroutine and must return quickly without blocking.
type Observer interface {
	// Connected reports a connection coming up or going down.
	Connected(up bool)
	// DesiredApplied reports a desired state committed to the store.
	DesiredApplied(doc protocol.DesiredState)
	// OutboxChanged reports records acknowledged or dead-lettered.
	OutboxChanged()
	// CasesApplied reports a case board committed to the store.
	CasesApplied(b protocol.CaseBoard)
}

// inboxCap bounds downlink messages received but not yet processed; beyond
// it messages are dropped (a retained desired state comes again on the next
// connect, an unacknowledged record is resent and acked again).
const inboxCap = 1024

// stableAfter is how long a connection must last for the backoff to start
// again from ReconnectMin.
const stableAfter = 30 * time.Second

// recentRefused is how many refused message ids are remembered, so that a
// retained message refused once is not logged again on every reconnect.
const recentRefused = 64

// inbound is one downlink message handed from paho to the session.
type inbound struct {
	topic   string
	payload []byte
}

// Link is the MQTT session. Create with New, run with Run.
type Link struct {
	cfg Config
	id  store.Identity
	tls *tls.Config // nil: plain TCP (development hub)
	st  *store.Store
	obs Observer
	log *slog.Logger

	topicFeedback, topicPresence, topicHeartbeat string
	topicMedia, topicPlays, topicRating          string
	topicUpdate, topicUpdateStatus               string
	topicResult                                  string
	filters                                      map[string]byte

	wake  chan struct{} // a new outbox record; capacity 1
	inbox chan inbound

	// Used by the session goroutine only.
	v       *verifier
	stashed map[string]inbound // by type: desired state or case board signed by an unknown key
	refused []string           // recently refused message ids, oldest first

	connected atomic.Bool
	epoch     atomic.Int64
	client    atomic.Pointer[paho.Client] // while connected

	born time.Time    // when New ran: the origin of turn, on the monotonic clock
	turn atomic.Int64 // time since born when Run's goroutine last came round a loop, ns
}

// New returns a link for the device enrolled in st, publishing its outbox.
// It fails with store.ErrNotEnrolled before enrolment.
func New(cfg Config, st *store.Store, obs Observer, log *slog.Logger) (*Link, error) {
	cfg.setDefaults()
	id, ok, err := st.Identity()
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	if !ok {
		return nil, fmt.Errorf("link: %w", store.ErrNotEnrolled)
	}
	if cfg.BrokerURL != "" {
		id.BrokerURL = cfg.BrokerURL
	}
	tc, err := TLSConfig(id.BrokerURL, id.CACert)
	if err != nil {
		return nil, err
	}
	key, err := id.TrustedKey()
	if err != nil {
		return nil, fmt.Errorf("link: %w", err)
	}
	k := id.Kiosk
	filters := map[string]byte{protocol.DownFilter(k): 1}
	for _, g := range id.Groups {
		filters[protocol.DownFilter(g)] = 1
	}
	if tc == nil {
		log.Warn("broker connection is plain TCP: development only; use an ssl:// broker in production", "broker", id.BrokerURL)
	}
	return &Link{
		cfg:               cfg,
		id:                id,
		tls:               tc,
		st:                st,
		obs:               obs,
		log:               log,
		topicFeedback:     protocol.UpTopic(k, protocol.ChannelFeedback).String(),
		topicPresence:     protocol.UpTopic(k, protocol.ChannelPresence).String(),
		topicHeartbeat:    protocol.UpTopic(k, protocol.ChannelHeartbeat).String(),
		topicMedia:        protocol.UpTopic(k, protocol.ChannelMedia).String(),
		topicPlays:        protocol.UpTopic(k, protocol.ChannelPlays).String(),
		topicRating:       protocol.UpTopic(k, protocol.ChannelRating).String(),
		topicUpdate:       protocol.UpTopic(k, protocol.ChannelUpdate).String(),
		topicUpdateStatus: protocol.UpTopic(k, protocol.ChannelUpdateStatus).String(),
		stashed:           map[string]inbound{},
		filters:           filters,
		wake:              make(chan struct{}, 1),
		inbox:             make(chan inbound, inboxCap),
		v:                 newVerifier(k, id.Groups, key, id.KeySerial),
		born:              time.Now(),
		topicResult:       protocol.UpTopic(k, protocol.ChannelResult).String(),
	}, nil
}

// TLSConfig returns the TLS configuration for a broker URL: for ssl://,
// tls://, mqtts:// or tcps:// it trusts only the CA in caPEM and checks the
// URL's host; for tcp:// or mqtt:// (a development hub) it returns nil.
func TLSConfig(brokerURL, caPEM string) (*tls.Config, error) {
	u, err := url.Parse(brokerURL)
	if err != nil || u.Hostname() == "" {
		return nil, fmt.Errorf("link: broker url %q: want ssl://host:port", brokerURL)
	}
	switch u.Scheme {
	case "tcp", "mqtt":
		return nil, nil
	case "ssl", "tls", "mqtts", "tcps":
	default:
		return nil, fmt.Errorf("link: broker url %q: unknown scheme %q", brokerURL, u.Scheme)
	}
	ca, err := protocol.ParseCACert([]byte(caPEM))
	if err != nil {
		return nil, fmt.Errorf("link: pinned CA: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(ca)
	return &tls.Config{RootCAs: pool, ServerName: u.Hostname(), MinVersion: tls.VersionTLS12}, nil
}

// Connected reports whether the link is connected now.
func (l *Link) Connected() bool { return l.connected.Load() }

// Epoch returns the epoch of the current (or last) connection; 0 before the
// first.
func (l *Link) Epoch() int64 { return l.epoch.Load() }

// Check fails when Run's goroutine has not come round one of its loops
// (between connection attempts, or each wake-up of a session: a record,
// a downlink message, the resend and heartbeat timers) for longer than it
// ever should: twice its longest wait (the reconnect backoff, or the
// session's timers) plus a connection attempt's timeouts and a minute
// (3½ minutes with the defaults). Being offline is no failure. It is the
// agent's liveness check for the systemd watchdog.
func (l *Link) Check() error {
	idle := time.Since(l.born) - time.Duration(l.turn.Load())
	if limit := l.cfg.stallAfter(); idle > limit {
		return fmt.Errorf("link: no progress for %v (limit %v)", idle.Round(time.Second), limit)
	}
	return nil
}

// stallAfter is how long Run's goroutine may go without coming round a
// loop: see Check.
func (c *Config) stallAfter() time.Duration {
	wait := max(c.ReconnectMax, min(c.HeartbeatInterval, max(c.ResendAfter/4, 10*time.Millisecond)))
	return 2*wait + 3*(c.ConnectTimeout+time.Second) + time.Minute
}

// turned records that Run's goroutine made progress.
func (l *Link) turned() { l.turn.Store(int64(time.Since(l.born))) }

// Wake tells the link a record was added to the outbox. It never blocks.
func (l *Link) Wake() { signal(l.wake) }

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Run connects and reconnects until ctx is done, then publishes an offline
// presence, disconnects and returns nil.
func (l *Link) Run(ctx context.Context) error {
	attempt := 0
	for {
		l.turned()
		upFor, err := l.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if upFor >= stableAfter {
			attempt = 0
		}
		d := backoff(attempt, l.cfg.ReconnectMin, l.cfg.ReconnectMax)
		attempt++
		l.log.Warn("mqtt session ended", "err", err, "up_for", upFor, "retry_in", d)
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// backoff returns a delay drawn uniformly from [lo, min(hi, lo·2^attempt)].
func backoff(attempt int, lo, hi time.Duration) time.Duration {
	ceil := hi
	if attempt < 32 {
		if c := lo << attempt; c > 0 && c < hi {
			ceil = c
		}
	}
	if ceil <= lo {
		return lo
	}
	return lo + rand.N(ceil-lo+1)
}

// presence encodes a presence message of this kiosk.
func (l *Link) presence(state protocol.PresenceState, epoch int64) ([]byte, error) {
	return protocol.Encode(protocol.TypePresence, time.Now(), protocol.Presence{Kiosk: l.id.Kiosk, State: state, Epoch: epoch})
}

// session makes one connection and serves it until it is lost or ctx is
// done. It reports how long the connection was up (0 if it never was).
func (l *Link) session(ctx context.Context) (time.Duration, error) {
	epoch, err := l.st.NextEpoch(time.Now())
	if err != nil {
		return 0, err
	}
	will, err := l.presence(protocol.Offline, epoch)
	if err != nil {
		return 0, err
	}
	lost := make(chan error, 1)
	opts := paho.NewClientOptions().
		AddBroker(l.id.BrokerURL).
		SetClientID(l.id.MQTTUsername).
		SetUsername(l.id.MQTTUsername).
		SetPassword(l.id.MQTTPassword).
		SetCleanSession(true).
		SetAutoReconnect(false).
		SetConnectRetry(false).
		SetConnectTimeout(l.cfg.ConnectTimeout).
		SetWriteTimeout(l.cfg.ConnectTimeout).
		SetKeepAlive(30*time.Second).
		SetPingTimeout(10*time.Second).
		SetBinaryWill(l.topicPresence, will, 1, false).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			select {
			case lost <- err:
			default:
			}
		})
	if l.tls != nil {
		opts.SetTLSConfig(l.tls)
	}
	c := paho.NewClient(opts)
	if err := l.await(ctx, c.Connect(), "connect"); err != nil {
		c.Disconnect(0)
		return 0, fmt.Errorf("link: connect to %s: %w", l.id.BrokerURL, err)
	}
	l.turned()
	upAt := time.Now()
	upFor := func() time.Duration { return time.Since(upAt) }
	l.epoch.Store(epoch)

	sub := c.SubscribeMultiple(l.filters, l.onMessage)
	if err := l.await(ctx, sub, "subscribe"); err != nil {
		c.Disconnect(0)
		return upFor(), fmt.Errorf("link: subscribe: %w", err)
	}
	for topic, code := range sub.(*paho.SubscribeToken).Result() {
		if code > 2 {
			c.Disconnect(0)
			return upFor(), fmt.Errorf("link: subscribe %s: refused with code %#x", topic, code)
		}
	}
	birth, err := l.presence(protocol.Online, epoch)
	if err != nil {
		c.Disconnect(0)
		return upFor(), err
	}
	if err := l.send(c, l.topicPresence, 1, birth); err != nil {
		c.Disconnect(0)
		return upFor(), fmt.Errorf("link: birth: %w", err)
	}
	l.log.Info("mqtt connected", "broker", l.id.BrokerURL, "epoch", epoch)

	l.client.Store(&c)
	l.connected.Store(true)
	l.obs.Connected(true)
	defer func() {
		l.client.Store(nil)
		l.connected.Store(false)
		l.obs.Connected(false)
	}()

	err = l.serve(ctx, c, epoch, lost)
	if ctx.Err() != nil {
		// A clean DISCONNECT drops the will, so say offline ourselves.
		if bye, perr := l.presence(protocol.Offline, epoch); perr == nil {
			if tok := c.Publish(l.topicPresence, 1, false, bye); !tok.WaitTimeout(time.Second) || tok.Error() != nil {
				l.log.Warn("offline presence not confirmed", "err", tok.Error())
			}
		}
		c.Disconnect(250)
		return upFor(), nil
	}
	c.Disconnect(0)
	return upFor(), err
}

// await waits for a token, giving up when ctx is done or after the connect
// timeout.
func (l *Link) await(ctx context.Context, tok paho.Token, what string) error {
	t := time.NewTimer(l.cfg.ConnectTimeout + time.Second)
	defer t.Stop()
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return fmt.Errorf("%s timed out after %v", what, l.cfg.ConnectTimeout)
	}
}

// onMessage runs in paho's goroutine: hand over, never block.
func (l *Link) onMessage(_ paho.Client, m paho.Message) {
	select {
	case l.inbox <- inbound{topic: m.Topic(), payload: m.Payload()}:
	default:
		l.log.Warn("downlink message dropped: too many pending", "topic", m.Topic())
	}
}

// sent is a record published and not yet acknowledged.
type sent struct {
	data []byte
	at   time.Time
}

// pump publishes the outbox within the in-flight bound.
type pump struct {
	l        *Link
	c        paho.Client
	inflight map[string]*sent
	cursor   string // last key considered in this pass over the outbox
}

// serve runs one connected session until the connection is lost or ctx is
// done.
func (l *Link) serve(ctx context.Context, c paho.Client, epoch int64, lost <-chan error) error {
	p := &pump{l: l, c: c, inflight: make(map[string]*sent)}
	if err := p.fill(); err != nil {
		return err
	}
	l.heartbeat(c, epoch)
	hb := time.NewTicker(l.cfg.HeartbeatInterval)
	defer hb.Stop()
	resend := time.NewTicker(max(l.cfg.ResendAfter/4, 10*time.Millisecond))
	defer resend.Stop()
	for {
		l.turned()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case err := <-lost:
			return fmt.Errorf("link: connection lost: %w", err)
		case <-l.wake:
			p.cursor = "" // a record may sort before the cursor if the clock went back
			if err := p.fill(); err != nil {
				return err
			}
		case in := <-l.inbox:
			if err := l.handle(in, p); err != nil {
				return err
			}
		case <-resend.C:
			if err := p.resend(); err != nil {
				return err
			}
		case <-hb.C:
			l.heartbeat(c, epoch)
		}
	}
}

// fill publishes records after the cursor until MaxInFlight are in flight
// or the outbox is exhausted.
func (p *pump) fill() error {
	max := p.l.cfg.MaxInFlight
	for len(p.inflight) < max {
		recs, err := p.l.st.Outbox(p.cursor, max)
		if err != nil {
			return err
		}
		if len(recs) == 0 {
			return nil
		}
		for _, r := range recs {
			if len(p.inflight) >= max {
				return nil
			}
			p.cursor = r.ID
			if p.inflight[r.ID] != nil {
				continue
			}
			if err := p.publish(r.ID, r.Data); err != nil {
				return err
			}
			p.inflight[r.ID] = &sent{data: r.Data, at: time.Now()}
		}
	}
	return nil
}

// publish sends one record at QoS 1 without waiting for the PUBACK, which
// proves nothing; only an early failure (not connected) ends the session.
func (p *pump) publish(id string, data []byte) error {
	topic := p.l.topicFeedback
	if env, err := protocol.DecodeEnvelope(data); err == nil {
		switch env.Type {
		case protocol.TypePlays:
			topic = p.l.topicPlays
		case protocol.TypeRating:
			topic = p.l.topicRating
		case protocol.TypeUpdate:
			topic = p.l.topicUpdate
		case protocol.TypeResult:
			topic = p.l.topicResult
		}
	}
	if err := p.l.send(p.c, topic, 1, data); err != nil {
		return fmt.Errorf("link: publish %s: %w", id, err)
	}
	return nil
}

// send publishes without waiting for the broker; it returns an error only
// if paho failed the publish at once (for example, not connected).
func (l *Link) send(c paho.Client, topic string, qos byte, data []byte) error {
	tok := c.Publish(topic, qos, false, data)
	select {
	case <-tok.Done():
		return tok.Error()
	default:
		return nil
	}
}

// resend republishes records in flight for longer than ResendAfter.
func (p *pump) resend() error {
	now := time.Now()
	var due []string
	for id, s := range p.inflight {
		if now.Sub(s.at) >= p.l.cfg.ResendAfter {
			due = append(due, id)
		}
	}
	slices.Sort(due)
	for _, id := range due {
		p.l.log.Debug("resending unacknowledged record", "id", id)
		if err := p.publish(id, p.inflight[id].data); err != nil {
			return err
		}
		p.inflight[id].at = now
	}
	return nil
}

// settle applies an ack to the store and refills a freed slot.
func (p *pump) settle(a protocol.Ack) error {
	l := p.l
	delete(p.inflight, a.Ref)
	switch a.Status {
	case protocol.AckStored, protocol.AckDuplicate:
		n, err := l.st.Ack(a.Ref)
		if err != nil {
			return err
		}
		if n > 0 {
			l.obs.OutboxChanged()
		}
	case protocol.AckRejected:
		moved, err := l.st.DeadLetter(a.Ref, a.Reason, time.Now())
		if err != nil {
			return err
		}
		if moved {
			l.log.Error("hub rejected record; moved to dead letters", "id", a.Ref, "reason", a.Reason)
			l.obs.OutboxChanged()
		}
	}
	return p.fill()
}

// handle verifies one downlink message and, only if it passes, acts on it.
// Only a store failure ends the session.
func (l *Link) handle(in inbound, p *pump) error {
	m, err := l.v.check(in.topic, in.payload)
	if errors.Is(err, errUnknownKey) {
		if l.firstRefusal(m.env.ID) {
			l.log.Warn(m.typ+" signed by an unknown key: held in memory until a key chain names it", "topic", in.topic, "id", m.env.ID, "reason", err)
		}
		l.stashed[m.typ] = in
		return nil
	}
	if err != nil {
		if l.firstRefusal(m.env.ID) {
			l.log.Warn("downlink message refused", "topic", in.topic, "type", m.env.Type, "id", m.env.ID, "reason", err)
		}
		return nil
	}
	switch m.typ {
	case protocol.TypeAck:
		return p.settle(m.ack)
	case protocol.TypeDesired:
		return l.applyDesired(m)
	case protocol.TypeCases:
		return l.applyCases(m)
	case protocol.TypeKeys:
		return l.adoptKeys(m, p)
	case protocol.TypeManifest:
		if l.cfg.Media != nil {
			l.cfg.Media.DeliverManifest(in.payload)
		}
	case protocol.TypeChunk:
		if l.cfg.Media != nil {
			l.cfg.Media.DeliverChunk(m.chk)
		}
	case protocol.TypeUpdateOffer:
		if l.cfg.Updates != nil {
			l.cfg.Updates.Offer(m.off)
		}
	case protocol.TypeCommand:
		if l.cfg.Commands == nil {
			l.log.Warn("remote command dropped: this link runs no commands", "id", m.cmd.ID, "action", m.cmd.Action)
			return nil
		}
		l.cfg.Commands.DeliverCommand(m.cmd)
	}
	return nil
}

// ErrNotConnected means a request was not sent because the link is down.
var ErrNotConnected = errors.New("link: not connected")

// RequestManifest asks the hub for a media file's manifest.
func (l *Link) RequestManifest(sha string) error {
	return l.requestMedia(protocol.MediaRequest{SHA256: sha, Manifest: true})
}

// RequestChunks asks the hub for chunks of a media file (at most
// protocol.MaxRequestChunks per message; more are split).
func (l *Link) RequestChunks(sha string, idx []int) error {
	for len(idx) > 0 {
		n := min(len(idx), protocol.MaxRequestChunks)
		if err := l.requestMedia(protocol.MediaRequest{SHA256: sha, Chunks: idx[:n]}); err != nil {
			return err
		}
		idx = idx[n:]
	}
	return nil
}

func (l *Link) requestMedia(r protocol.MediaRequest) error {
	c := l.client.Load()
	if c == nil {
		return ErrNotConnected
	}
	if err := r.Validate(); err != nil {
		return fmt.Errorf("link: media request: %w", err)
	}
	data, err := protocol.Encode(protocol.TypeMedia, time.Now(), r)
	if err != nil {
		return fmt.Errorf("link: media request: %w", err)
	}
	if err := l.send(*c, l.topicMedia, 1, data); err != nil {
		return fmt.Errorf("link: media request: %w", err)
	}
	return nil
}

// firstRefusal remembers a refused message id and reports whether it is
// new, so each message is logged once (retained ones come back on every
// connect).
func (l *Link) firstRefusal(id string) bool {
	if id == "" {
		return true
	}
	if slices.Contains(l.refused, id) {
		return false
	}
	if len(l.refused) >= recentRefused {
		l.refused = l.refused[1:]
	}
	l.refused = append(l.refused, id)
	return true
}

// applyDesired commits a verified desired state unless it is older than
// (refused as a replay) or the same as (already held) the version held.
func (l *Link) applyDesired(m message) error {
	doc := m.doc
	held, err := l.st.DesiredVersion()
	if err != nil {
		return err
	}
	switch {
	case doc.Version < held:
		if l.firstRefusal(m.env.ID) {
			l.log.Warn("downlink message refused", "topic", protocol.DownTopic(l.id.Kiosk, protocol.ChannelDesired).String(), "type", m.env.Type, "id", m.env.ID,
				"reason", fmt.Sprintf("desired version %d is older than the version held, %d (replay)", doc.Version, held))
		}
		return nil
	case doc.Version == held:
		l.log.Debug("desired state already held", "version", doc.Version)
		return nil
	}
	applied, err := l.st.ApplyDesired(doc, time.Now())
	switch {
	case err != nil:
		l.log.Error("desired state not applied", "version", doc.Version, "err", err)
	case applied:
		l.log.Info("desired state applied", "version", doc.Version, "notices", len(doc.Notices), "kid", m.env.KID)
		l.obs.DesiredApplied(doc)
	}
	return nil
}

// adoptKeys trusts the newest key of a verified chain, persists it, and
// checks a held desired state again.
func (l *Link) adoptKeys(m message, p *pump) error {
	if m.ser <= l.v.serial {
		if !m.next.Equal(l.v.key) {
			l.log.Warn("downlink message refused", "type", m.env.Type, "id", m.env.ID,
				"reason", fmt.Sprintf("key chain ends at serial %d, not after the trusted serial %d", m.ser, l.v.serial))
		}
		return nil
	}
	id, err := l.st.AdoptHubKey(m.next, m.ser)
	if err != nil {
		return err
	}
	l.id.HubKey, l.id.HubKID, l.id.KeySerial = id.HubKey, id.HubKID, id.KeySerial
	old := l.v.kid
	l.v.adopt(m)
	l.log.Info("hub signing key adopted", "kid", l.v.kid, "serial", l.v.serial, "replaces", old)
	stashed := l.stashed
	l.stashed = map[string]inbound{}
	for _, typ := range []string{protocol.TypeDesired, protocol.TypeCases, protocol.TypeUpdateOffer} {
		if in, ok := stashed[typ]; ok {
			if err := l.handle(in, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyCases commits a verified case board unless it is not newer than the
// board held.
func (l *Link) applyCases(m message) error {
	applied, err := l.st.ApplyCaseBoard(m.brd, time.Now())
	switch {
	case err != nil:
		if !errors.Is(err, protocol.ErrInvalid) {
			return err
		}
		l.log.Error("case board not applied", "version", m.brd.Version, "err", err)
	case applied:
		l.log.Info("case board applied", "version", m.brd.Version, "cases", len(m.brd.Cases), "kid", m.env.KID)
		l.obs.CasesApplied(m.brd)
	default:
		l.log.Debug("case board not newer than the one held", "version", m.brd.Version)
	}
	return nil
}

// heartbeat publishes a heartbeat at QoS 0; a lost one is not resent.
func (l *Link) heartbeat(c paho.Client, epoch int64) {
	hb, err := l.Heartbeat(epoch)
	if err != nil {
		l.log.Warn("heartbeat not built", "err", err)
		return
	}
	data, err := protocol.Encode(protocol.TypeHeartbeat, time.Now(), hb)
	if err != nil {
		l.log.Warn("heartbeat not encoded", "err", err)
		return
	}
	if err := l.send(c, l.topicHeartbeat, 0, data); err != nil {
		l.log.Warn("heartbeat not sent", "err", err)
	}
	if l.cfg.Updates == nil {
		return
	}
	u := l.cfg.Updates.Status(epoch)
	if err := u.Validate(); err != nil {
		l.log.Warn("update status not valid", "err", err)
		return
	}
	if data, err = protocol.Encode(protocol.TypeUpdateStatus, time.Now(), u); err != nil {
		l.log.Warn("update status not encoded", "err", err)
		return
	}
	if err := l.send(c, l.topicUpdateStatus, 0, data); err != nil {
		l.log.Warn("update status not sent", "err", err)
	}
}

// Heartbeat builds the heartbeat the link would send now for epoch.
func (l *Link) Heartbeat(epoch int64) (protocol.Heartbeat, error) {
	depth, err := l.st.OutboxDepth()
	if err != nil {
		return protocol.Heartbeat{}, err
	}
	version, err := l.st.DesiredVersion()
	if err != nil {
		return protocol.Heartbeat{}, err
	}
	var fs syscall.Statfs_t
	var free int64
	if err := syscall.Statfs(l.cfg.DataDir, &fs); err != nil {
		l.log.Warn("free disk unknown", "dir", l.cfg.DataDir, "err", err)
	} else {
		free = int64(fs.Bavail) * int64(fs.Bsize)
	}
	var media []protocol.MediaStatus
	var cacheBytes, cacheQuota int64
	if l.cfg.MediaStatus != nil {
		media, cacheBytes, cacheQuota = l.cfg.MediaStatus()
		if len(media) > protocol.MaxMedia {
			media = media[:protocol.MaxMedia]
		}
	}
	return protocol.Heartbeat{
		Media:           media,
		CacheBytes:      cacheBytes,
		CacheQuota:      cacheQuota,
		Kiosk:           l.id.Kiosk,
		Epoch:           epoch,
		SoftwareVersion: l.cfg.SoftwareVersion,
		UptimeSeconds:   int64(time.Since(l.cfg.StartedAt) / time.Second),
		OutboxDepth:     depth,
		ContentVersion:  version,
		FreeDiskBytes:   free,
	}, nil
}
