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
// The link publishes only to its own kiosk's up/ topics and never blocks in
// a paho handler: handlers decode and hand over to the session goroutine.
package link

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/agent/store"
	"github.com/shequ/shequ/protocol"
)

// Config configures a Link. Zero values mean the defaults.
type Config struct {
	KioskID           string        // required, protocol.ValidID; also the MQTT client id
	BrokerURL         string        // default "tcp://127.0.0.1:1883"
	DataDir           string        // free disk space reported in heartbeats; default "."
	HeartbeatInterval time.Duration // default 30s
	MaxInFlight       int           // default 32
	ResendAfter       time.Duration // default 30s
	ReconnectMin      time.Duration // default 500ms
	ReconnectMax      time.Duration // default 60s
	ConnectTimeout    time.Duration // connect and subscribe; default 10s
	SoftwareVersion   string        // default "dev"
	StartedAt         time.Time     // for the heartbeat's uptime; default: when New is called
}

func (c *Config) setDefaults() error {
	if err := protocol.ValidID(c.KioskID); err != nil {
		return fmt.Errorf("link: kiosk id: %w", err)
	}
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
	if c.BrokerURL == "" {
		c.BrokerURL = "tcp://127.0.0.1:1883"
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
	return nil
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
}

// maxPendingAcks bounds acks received but not yet processed; beyond it acks
// are dropped (the record is resent later and acked again).
const maxPendingAcks = 4096

// stableAfter is how long a connection must last for the backoff to start
// again from ReconnectMin.
const stableAfter = 30 * time.Second

// Link is the MQTT session. Create with New, run with Run.
type Link struct {
	cfg Config
	st  *store.Store
	obs Observer
	log *slog.Logger

	topicFeedback, topicPresence, topicHeartbeat string
	topicDesired, topicAck                       string

	wake  chan struct{} // a new outbox record; capacity 1
	inbox chan struct{} // pendingAcks or pendingDesired filled; capacity 1

	mu             sync.Mutex
	pendingAcks    []protocol.Ack
	pendingDesired *protocol.DesiredState

	connected atomic.Bool
	epoch     atomic.Int64
}

// New returns a link for the kiosk, publishing the outbox of st.
func New(cfg Config, st *store.Store, obs Observer, log *slog.Logger) (*Link, error) {
	if err := cfg.setDefaults(); err != nil {
		return nil, err
	}
	k := cfg.KioskID
	return &Link{
		cfg:            cfg,
		st:             st,
		obs:            obs,
		log:            log,
		topicFeedback:  protocol.UpTopic(k, protocol.ChannelFeedback).String(),
		topicPresence:  protocol.UpTopic(k, protocol.ChannelPresence).String(),
		topicHeartbeat: protocol.UpTopic(k, protocol.ChannelHeartbeat).String(),
		topicDesired:   protocol.DownTopic(k, protocol.ChannelDesired).String(),
		topicAck:       protocol.DownTopic(k, protocol.ChannelAck).String(),
		wake:           make(chan struct{}, 1),
		inbox:          make(chan struct{}, 1),
	}, nil
}

// Connected reports whether the link is connected now.
func (l *Link) Connected() bool { return l.connected.Load() }

// Epoch returns the epoch of the current (or last) connection; 0 before the
// first.
func (l *Link) Epoch() int64 { return l.epoch.Load() }

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
	return protocol.Encode(protocol.TypePresence, time.Now(), protocol.Presence{Kiosk: l.cfg.KioskID, State: state, Epoch: epoch})
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
		AddBroker(l.cfg.BrokerURL).
		SetClientID(l.cfg.KioskID).
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
	c := paho.NewClient(opts)
	if err := l.await(ctx, c.Connect(), "connect"); err != nil {
		c.Disconnect(0)
		return 0, fmt.Errorf("link: connect to %s: %w", l.cfg.BrokerURL, err)
	}
	upAt := time.Now()
	upFor := func() time.Duration { return time.Since(upAt) }
	l.epoch.Store(epoch)

	sub := c.SubscribeMultiple(map[string]byte{l.topicDesired: 1, l.topicAck: 1}, l.onMessage)
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
	l.log.Info("mqtt connected", "broker", l.cfg.BrokerURL, "epoch", epoch)

	l.connected.Store(true)
	l.obs.Connected(true)
	defer func() {
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

// onMessage runs in paho's goroutine: decode, queue, signal, never block.
func (l *Link) onMessage(_ paho.Client, m paho.Message) {
	switch m.Topic() {
	case l.topicDesired:
		_, doc, err := protocol.DecodeDesired(m.Payload())
		if err != nil {
			l.log.Warn("desired state refused", "err", err)
			return
		}
		if doc.Kiosk != l.cfg.KioskID {
			l.log.Warn("desired state for another kiosk ignored", "for", doc.Kiosk, "version", doc.Version)
			return
		}
		l.mu.Lock()
		if l.pendingDesired == nil || doc.Version > l.pendingDesired.Version {
			l.pendingDesired = &doc
		}
		l.mu.Unlock()
	case l.topicAck:
		_, ack, err := protocol.DecodeAck(m.Payload())
		if err != nil {
			l.log.Warn("ack refused", "err", err)
			return
		}
		l.mu.Lock()
		full := len(l.pendingAcks) >= maxPendingAcks
		if !full {
			l.pendingAcks = append(l.pendingAcks, ack)
		}
		l.mu.Unlock()
		if full {
			l.log.Warn("ack dropped: too many pending", "ref", ack.Ref)
			return
		}
	default:
		l.log.Warn("message on unexpected topic", "topic", m.Topic())
		return
	}
	signal(l.inbox)
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
		case <-l.inbox:
			l.applyDesired()
			if err := p.settle(); err != nil {
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
	if err := p.l.send(p.c, p.l.topicFeedback, 1, data); err != nil {
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

// settle applies pending acks to the store and refills freed slots.
func (p *pump) settle() error {
	l := p.l
	l.mu.Lock()
	acks := l.pendingAcks
	l.pendingAcks = nil
	l.mu.Unlock()
	if len(acks) == 0 {
		return nil
	}
	var done []string
	changed := false
	for _, a := range acks {
		delete(p.inflight, a.Ref)
		switch a.Status {
		case protocol.AckStored, protocol.AckDuplicate:
			done = append(done, a.Ref)
		case protocol.AckRejected:
			moved, err := l.st.DeadLetter(a.Ref, a.Reason, time.Now())
			if err != nil {
				return err
			}
			if moved {
				l.log.Error("hub rejected record; moved to dead letters", "id", a.Ref, "reason", a.Reason)
				changed = true
			}
		}
	}
	n, err := l.st.Ack(done...)
	if err != nil {
		return err
	}
	if changed || n > 0 {
		l.obs.OutboxChanged()
	}
	return p.fill()
}

// applyDesired commits a pending desired state, if any.
func (l *Link) applyDesired() {
	l.mu.Lock()
	doc := l.pendingDesired
	l.pendingDesired = nil
	l.mu.Unlock()
	if doc == nil {
		return
	}
	applied, err := l.st.ApplyDesired(*doc, time.Now())
	switch {
	case err != nil:
		l.log.Error("desired state not applied", "version", doc.Version, "err", err)
	case applied:
		l.log.Info("desired state applied", "version", doc.Version, "notices", len(doc.Notices))
		l.obs.DesiredApplied(*doc)
	default:
		l.log.Debug("desired state not newer than held; ignored", "version", doc.Version)
	}
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
	return protocol.Heartbeat{
		Kiosk:           l.cfg.KioskID,
		Epoch:           epoch,
		SoftwareVersion: l.cfg.SoftwareVersion,
		UptimeSeconds:   int64(time.Since(l.cfg.StartedAt) / time.Second),
		OutboxDepth:     depth,
		ContentVersion:  version,
		FreeDiskBytes:   free,
	}, nil
}
