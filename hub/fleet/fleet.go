// Package fleet is the hub's MQTT side: a paho client that takes in the
// kiosks' uplink (feedback, presence, heartbeat, media requests, proof of
// play, ratings) through shared subscriptions, stores it, acknowledges
// feedback, play and rating records once they are durable, hands media
// requests to the media sender, and publishes each kiosk's desired state and
// case board retained. Every message it publishes (desired, cases, ack,
// keys) is signed with the hub's current key
// (protocol.EncodeSigned).
//
// Messages are never processed in paho's handler: it hands each message to
// one of a fixed set of workers, chosen by kiosk, so one kiosk's messages are
// handled in order while different kiosks proceed in parallel.
package fleet

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"errors"
	"fmt"
	"hash/fnv"
	"log/slog"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	paho "github.com/eclipse/paho.mqtt.golang"

	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Store is what the fleet needs from the hub database.
type Store interface {
	// InsertFeedback stores a record exactly once by id; when it returns nil
	// the record is durable. An error wrapping store.ErrTicketConflict means
	// another record holds the record's ticket.
	InsertFeedback(ctx context.Context, id string, f protocol.Feedback, receivedAt time.Time) (duplicate bool, err error)
	ApplyPresence(ctx context.Context, p protocol.Presence, at time.Time) (applied bool, err error)
	ApplyHeartbeat(ctx context.Context, h protocol.Heartbeat, at time.Time) (applied bool, err error)
	// InsertPlays stores a proof-of-play record exactly once by id; when it
	// returns nil the record is durable.
	InsertPlays(ctx context.Context, id string, p protocol.PlayStats, receivedAt time.Time) (duplicate bool, err error)
}

// MediaHandler takes a kiosk's media request; it must not block for long
// (it queues the work).
type MediaHandler interface {
	HandleRequest(kiosk string, req protocol.MediaRequest)
}

var _ Store = (*store.SQLite)(nil)

// UpdateHandler takes what kiosks say about their software updates.
type UpdateHandler interface {
	// UpdateStatus records a live status; it must not block for long.
	UpdateStatus(ctx context.Context, u protocol.UpdateStatus, at time.Time) error
	// UpdateReport stores an update record exactly once by id; when it
	// returns nil the record is durable.
	UpdateReport(ctx context.Context, id string, r protocol.UpdateReport, at time.Time) (duplicate bool, err error)
}

// ErrRejected, wrapped in the error of a callback such as
// Config.RatingReceived, means the hub will never accept the record: it is
// acknowledged "rejected" with the error's text as the reason, and the
// agent stops resending it. Any other error means a transient failure: no
// ack, so the agent resends.
var ErrRejected = errors.New("fleet: record rejected")

// Defaults for zero Config fields.
const (
	DefaultClientID = "shequ-hub"
	DefaultGroup    = "shequ-hub"
	DefaultWorkers  = 4
	// QueueSize is how many messages may wait per worker. When a queue is
	// full, the delivering goroutine waits for room: back-pressure that
	// reaches the broker (which holds further messages for the hub once
	// the hub's in-flight window is used up), instead of dropping messages
	// and leaving agents to resend them after ResendAfter.
	QueueSize = 256
	// publishTimeout bounds waiting for the broker to take a publish.
	publishTimeout = 10 * time.Second
)

// Signer gives the key downlink messages are signed with; it may change
// (rotation), so it is asked for every message.
type Signer interface {
	Signer() ed25519.PrivateKey
}

// Config configures the fleet client.
type Config struct {
	BrokerURL string // e.g. "ssl://127.0.0.1:8883"; required
	// TLS is the client TLS configuration for ssl:// brokers (RootCAs: the
	// hub CA, or the external broker's CA).
	TLS      *tls.Config
	Username string // the hub's broker account
	Password string
	Signer   Signer // required
	ClientID string // default DefaultClientID
	Group    string // shared-subscription group; default DefaultGroup
	Workers  int    // default DefaultWorkers
	Store    Store  // required
	// Media takes media requests; without it they are dropped.
	Media MediaHandler
	// OnConnect, if set, runs in its own goroutine after every reconnection
	// to the broker, once subscribed (not after the first connection, which
	// Start waits for).
	OnConnect func()
	// FeedbackStored, if set, is called once a feedback record is durable,
	// also when it was stored before (so work that failed then is retried
	// when the kiosk resends); the hub creates the record's case with it.
	// An error withholds the ack, so the kiosk resends the record.
	FeedbackStored func(ctx context.Context, id string, fb protocol.Feedback, receivedAt time.Time) error
	// RatingReceived is called for each valid rating record (its body names
	// the kiosk of its topic), also when the kiosk resends one: it must be
	// idempotent by record id. nil: the record is durable, ack "stored".
	// An error wrapping ErrRejected (e.g. the case is not rateable): ack
	// "rejected" with the error as the reason. Any other error: no ack,
	// the kiosk resends. Without it, rating records are not acknowledged.
	RatingReceived func(ctx context.Context, id string, r protocol.CaseRating, at time.Time) error
	// Updates takes kiosks' update statuses and update records (hub/releases).
	// Without it, update records are not acknowledged and statuses dropped.
	Updates UpdateHandler
	// ResultReceived is called for each valid result of a remote command
	// (its body names the kiosk of its topic), also when the kiosk resends
	// one: it must be idempotent by record id. Errors are answered as for
	// RatingReceived. Without it, results are not acknowledged.
	ResultReceived func(ctx context.Context, id string, r protocol.CommandResult, at time.Time) error
	// BeforeAck, if set, is called after a feedback record is committed
	// and before its ack is published (fault injection for tests).
	BeforeAck func(recordID string)
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Fleet is the hub's MQTT client.
type Fleet struct {
	cfg    Config
	log    *slog.Logger
	client paho.Client
	queues []chan paho.Message

	ready     chan error
	readyOnce sync.Once

	connMu    sync.Mutex
	up        bool      // connected and subscribed
	upChanged time.Time // when up last changed (New, before the first connection)

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// New checks cfg and returns an unstarted Fleet.
func New(cfg Config, log *slog.Logger) (*Fleet, error) {
	if cfg.BrokerURL == "" {
		return nil, errors.New("fleet: BrokerURL is required")
	}
	if cfg.Store == nil || cfg.Signer == nil {
		return nil, errors.New("fleet: Store and Signer are required")
	}
	if cfg.ClientID == "" {
		cfg.ClientID = DefaultClientID
	}
	if cfg.Group == "" {
		cfg.Group = DefaultGroup
	}
	if cfg.Workers <= 0 {
		cfg.Workers = DefaultWorkers
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	f := &Fleet{cfg: cfg, log: log, ready: make(chan error, 1), upChanged: time.Now()}
	f.ctx, f.cancel = context.WithCancel(context.Background())
	for range cfg.Workers {
		f.queues = append(f.queues, make(chan paho.Message, QueueSize))
	}
	opts := paho.NewClientOptions().
		AddBroker(cfg.BrokerURL).
		SetClientID(cfg.ClientID).
		SetCleanSession(false).
		SetAutoReconnect(true).
		// The broker may come up after the hub (an external mosquitto
		// started alongside it): keep trying the first connection too,
		// within Start's context.
		SetConnectRetry(true).
		SetConnectRetryInterval(500 * time.Millisecond).
		SetMaxReconnectInterval(10 * time.Second).
		SetKeepAlive(30 * time.Second).
		SetConnectTimeout(10 * time.Second).
		SetOnConnectHandler(f.onConnect).
		SetConnectionLostHandler(func(_ paho.Client, err error) {
			f.setUp(false)
			f.log.Warn("lost connection to MQTT broker; reconnecting", "broker", cfg.BrokerURL, "err", err)
		}).
		// Handlers run in their own goroutines, so route may wait for room
		// in a worker queue without stalling paho's network loop (which
		// must keep reading the PUBACKs the workers' publishes wait for).
		SetOrderMatters(false).
		SetDefaultPublishHandler(f.route)
	if cfg.TLS != nil {
		opts.SetTLSConfig(cfg.TLS)
	}
	if cfg.Username != "" {
		opts.SetUsername(cfg.Username).SetPassword(cfg.Password)
	}
	f.client = paho.NewClient(opts)
	return f, nil
}

// Start starts the workers, connects to the broker and returns once the
// uplink subscriptions are in place.
func (f *Fleet) Start(ctx context.Context) error {
	for _, q := range f.queues {
		f.wg.Add(1)
		go f.work(q)
	}
	if err := wait(ctx, f.client.Connect()); err != nil {
		return fmt.Errorf("fleet: connect to %s: %w", f.cfg.BrokerURL, err)
	}
	select {
	case err := <-f.ready:
		return err
	case <-ctx.Done():
		return fmt.Errorf("fleet: waiting for subscriptions: %w", ctx.Err())
	}
}

// Close disconnects from the broker and stops the workers. Messages still
// queued are not acknowledged and will be resent by their agents.
func (f *Fleet) Close() error {
	f.client.Disconnect(250)
	f.cancel()
	f.wg.Wait()
	return nil
}

// Connection reports whether the fleet is connected to the broker with
// its uplink subscriptions in place, and since when that is so (real
// time, not Config.Now): for the hub's health check. Before the first
// connection it reports false since New.
func (f *Fleet) Connection() (up bool, since time.Time) {
	f.connMu.Lock()
	defer f.connMu.Unlock()
	return f.up, f.upChanged
}

func (f *Fleet) setUp(up bool) {
	f.connMu.Lock()
	defer f.connMu.Unlock()
	if f.up != up {
		f.up, f.upChanged = up, time.Now()
	}
}

// onConnect (re)subscribes after every connect; paho runs it in its own
// goroutine.
func (f *Fleet) onConnect(c paho.Client) {
	filters := map[string]byte{
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelFeedback):  protocol.UpTopic("+", protocol.ChannelFeedback).QoS(),
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelPresence):  protocol.UpTopic("+", protocol.ChannelPresence).QoS(),
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelHeartbeat): protocol.UpTopic("+", protocol.ChannelHeartbeat).QoS(),
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelMedia):     protocol.UpTopic("+", protocol.ChannelMedia).QoS(),
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelPlays):     protocol.UpTopic("+", protocol.ChannelPlays).QoS(),
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelRating):    protocol.UpTopic("+", protocol.ChannelRating).QoS(),
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelUpdate):    protocol.UpTopic("+", protocol.ChannelUpdate).QoS(),
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelUpdateStatus): protocol.UpTopic("+",
			protocol.ChannelUpdateStatus).QoS(),
		protocol.SharedUpFilter(f.cfg.Group, protocol.ChannelResult): protocol.UpTopic("+", protocol.ChannelResult).QoS(),
	}
	tok := c.SubscribeMultiple(filters, f.route)
	err := wait(f.ctx, tok)
	if st, ok := tok.(*paho.SubscribeToken); ok && err == nil {
		for filter, code := range st.Result() {
			if code >= 0x80 {
				err = errors.Join(err, fmt.Errorf("broker refused %s", filter))
			}
		}
	}
	if err != nil {
		err = fmt.Errorf("fleet: subscribe: %w", err)
		f.log.Error("subscribing to kiosk uplink failed", "err", err)
	} else {
		f.setUp(true)
		f.log.Info("connected to MQTT broker", "broker", f.cfg.BrokerURL, "client_id", f.cfg.ClientID)
	}
	first := false
	f.readyOnce.Do(func() {
		first = true
		f.ready <- err
	})
	if err == nil && !first && f.cfg.OnConnect != nil {
		go f.cfg.OnConnect()
	}
}

// route hands a message to its kiosk's worker, waiting while the worker's
// queue is full (paho calls it in its own goroutine; see SetOrderMatters).
func (f *Fleet) route(_ paho.Client, m paho.Message) {
	t, err := protocol.ParseTopic(m.Topic())
	if err != nil || t.Dir != protocol.Up {
		f.log.Warn("dropping message on unexpected topic", "topic", m.Topic(), "err", err)
		return
	}
	h := fnv.New32a()
	h.Write([]byte(t.Kiosk)) // hash.Hash.Write never fails
	q := f.queues[int(h.Sum32()%uint32(len(f.queues)))]
	select {
	case q <- m:
	case <-f.ctx.Done():
		// Shutting down: not acknowledged, so its sender will resend it.
	}
}

func (f *Fleet) work(q chan paho.Message) {
	defer f.wg.Done()
	for {
		select {
		case <-f.ctx.Done():
			return
		case m := <-q:
			f.handle(f.ctx, m)
		}
	}
}

func (f *Fleet) handle(ctx context.Context, m paho.Message) {
	t, err := protocol.ParseTopic(m.Topic())
	if err != nil {
		f.log.Warn("dropping message on unexpected topic", "topic", m.Topic(), "err", err)
		return
	}
	switch t.Channel {
	case protocol.ChannelFeedback:
		f.feedback(ctx, t, m.Payload())
	case protocol.ChannelPresence:
		f.presence(ctx, t, m.Payload())
	case protocol.ChannelHeartbeat:
		f.heartbeat(ctx, t, m.Payload())
	case protocol.ChannelMedia:
		f.mediaRequest(t, m.Payload())
	case protocol.ChannelPlays:
		f.plays(ctx, t, m.Payload())
	case protocol.ChannelRating:
		f.rating(ctx, t, m.Payload())
	case protocol.ChannelUpdate:
		f.updateReport(ctx, t, m.Payload())
	case protocol.ChannelUpdateStatus:
		f.updateStatus(ctx, t, m.Payload())
	case protocol.ChannelResult:
		f.result(ctx, t, m.Payload())
	default:
		f.log.Warn("dropping message on unexpected channel", "topic", m.Topic())
	}
}

func (f *Fleet) feedback(ctx context.Context, t protocol.Topic, payload []byte) {
	env, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		f.log.Warn("dropping feedback without a valid envelope", "kiosk", t.Kiosk, "err", err)
		return
	}
	log := f.log.With("kiosk", t.Kiosk, "record", env.ID)
	_, fb, err := protocol.DecodeFeedback(payload)
	if err == nil && fb.Kiosk != t.Kiosk {
		err = fmt.Errorf("kiosk %q in the body does not match kiosk %q of the topic", fb.Kiosk, t.Kiosk)
	}
	if err != nil {
		log.Warn("rejecting feedback", "err", err)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckRejected, Reason: reason(err)})
		return
	}
	received := f.cfg.Now()
	dup, err := f.cfg.Store.InsertFeedback(ctx, env.ID, fb, received)
	if errors.Is(err, store.ErrTicketConflict) {
		// Two records with one ticket: a device that lost its database and
		// was not re-enrolled, say. A resident's record is never refused for
		// that: it is stored under its ticket with a suffix from its own id.
		issued := fb.Ticket
		fb.Ticket = disambiguate(fb.Ticket, env.ID)
		log.Warn("ticket already held by another record; storing under a suffixed ticket",
			"issued_ticket", issued, "stored_ticket", fb.Ticket, "err", err)
		dup, err = f.cfg.Store.InsertFeedback(ctx, env.ID, fb, received)
	}
	if err != nil {
		log.Error("storing feedback failed; not acknowledging, the kiosk will resend", "err", err)
		return
	}
	if f.cfg.FeedbackStored != nil {
		if err := f.cfg.FeedbackStored(ctx, env.ID, fb, received); err != nil {
			log.Error("handling stored feedback failed; not acknowledging, the kiosk will resend", "err", err)
			return
		}
	}
	if f.cfg.BeforeAck != nil {
		f.cfg.BeforeAck(env.ID)
	}
	status := protocol.AckStored
	if dup {
		status = protocol.AckDuplicate
	}
	log.Info("feedback stored", "ticket", fb.Ticket, "status", status)
	f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: status})
}

// disambiguate makes a ticket unique by appending the last four hex digits
// of the record id, shortening the ticket if it would exceed the limit.
func disambiguate(ticket, id string) string {
	suffix := "-" + strings.ToUpper(id[len(id)-4:])
	if len(ticket)+len(suffix) > protocol.MaxTicket {
		ticket = ticket[:protocol.MaxTicket-len(suffix)]
	}
	return ticket + suffix
}

// reason shortens an error to fit an ack.
func reason(err error) string {
	s := err.Error()
	if utf8.RuneCountInString(s) <= protocol.MaxReason {
		return s
	}
	return string([]rune(s)[:protocol.MaxReason-1]) + "…"
}

func (f *Fleet) ack(ctx context.Context, kiosk string, a protocol.Ack) {
	payload, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeAck, f.cfg.Now(), a, f.cfg.Signer.Signer())
	if err != nil {
		f.log.Error("encoding ack failed", "kiosk", kiosk, "record", a.Ref, "err", err)
		return
	}
	t := protocol.DownTopic(kiosk, protocol.ChannelAck)
	if err := f.publish(ctx, t, payload); err != nil {
		f.log.Warn("publishing ack failed; the kiosk will resend and get a duplicate ack",
			"kiosk", kiosk, "record", a.Ref, "err", err)
	}
}

func (f *Fleet) presence(ctx context.Context, t protocol.Topic, payload []byte) {
	_, p, err := protocol.DecodePresence(payload)
	if err == nil && p.Kiosk != t.Kiosk {
		err = fmt.Errorf("kiosk %q in the body does not match kiosk %q of the topic", p.Kiosk, t.Kiosk)
	}
	if err != nil {
		f.log.Warn("dropping presence", "kiosk", t.Kiosk, "err", err)
		return
	}
	applied, err := f.cfg.Store.ApplyPresence(ctx, p, f.cfg.Now())
	if err != nil && ctx.Err() != nil {
		f.log.Debug("presence not recorded: shutting down", "kiosk", t.Kiosk)
		return
	}
	if err != nil {
		f.log.Error("recording presence failed", "kiosk", t.Kiosk, "err", err)
		return
	}
	if applied {
		f.log.Info("kiosk presence", "kiosk", p.Kiosk, "state", p.State, "epoch", p.Epoch)
	} else {
		f.log.Info("ignoring stale presence", "kiosk", p.Kiosk, "state", p.State, "epoch", p.Epoch)
	}
}

func (f *Fleet) heartbeat(ctx context.Context, t protocol.Topic, payload []byte) {
	_, h, err := protocol.DecodeHeartbeat(payload)
	if err == nil && h.Kiosk != t.Kiosk {
		err = fmt.Errorf("kiosk %q in the body does not match kiosk %q of the topic", h.Kiosk, t.Kiosk)
	}
	if err != nil {
		f.log.Warn("dropping heartbeat", "kiosk", t.Kiosk, "err", err)
		return
	}
	applied, err := f.cfg.Store.ApplyHeartbeat(ctx, h, f.cfg.Now())
	if err != nil {
		f.log.Error("recording heartbeat failed", "kiosk", t.Kiosk, "err", err)
		return
	}
	if !applied {
		f.log.Debug("ignoring heartbeat of an old session", "kiosk", h.Kiosk, "epoch", h.Epoch)
	}
}

func (f *Fleet) mediaRequest(t protocol.Topic, payload []byte) {
	_, req, err := protocol.DecodeMediaRequest(payload)
	if err != nil {
		f.log.Warn("dropping media request", "kiosk", t.Kiosk, "err", err)
		return
	}
	if f.cfg.Media == nil {
		f.log.Warn("dropping media request: no media sender", "kiosk", t.Kiosk)
		return
	}
	f.cfg.Media.HandleRequest(t.Kiosk, req)
}

// plays stores a proof-of-play record once and acknowledges it, like feedback.
func (f *Fleet) plays(ctx context.Context, t protocol.Topic, payload []byte) {
	env, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		f.log.Warn("dropping play stats without a valid envelope", "kiosk", t.Kiosk, "err", err)
		return
	}
	log := f.log.With("kiosk", t.Kiosk, "record", env.ID)
	_, p, err := protocol.DecodePlays(payload)
	if err == nil && p.Kiosk != t.Kiosk {
		err = fmt.Errorf("kiosk %q in the body does not match kiosk %q of the topic", p.Kiosk, t.Kiosk)
	}
	if err != nil {
		log.Warn("rejecting play stats", "err", err)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckRejected, Reason: reason(err)})
		return
	}
	dup, err := f.cfg.Store.InsertPlays(ctx, env.ID, p, f.cfg.Now())
	if err != nil {
		log.Error("storing play stats failed; not acknowledging, the kiosk will resend", "err", err)
		return
	}
	status := protocol.AckStored
	if dup {
		status = protocol.AckDuplicate
	}
	log.Info("play stats stored", "hour", p.Hour, "items", len(p.Items), "status", status)
	f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: status})
}

// rating hands a rating record to Config.RatingReceived and acknowledges it
// as the callback says.
func (f *Fleet) rating(ctx context.Context, t protocol.Topic, payload []byte) {
	env, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		f.log.Warn("dropping rating without a valid envelope", "kiosk", t.Kiosk, "err", err)
		return
	}
	log := f.log.With("kiosk", t.Kiosk, "record", env.ID)
	_, r, err := protocol.DecodeRating(payload)
	if err == nil && r.Kiosk != t.Kiosk {
		err = fmt.Errorf("kiosk %q in the body does not match kiosk %q of the topic", r.Kiosk, t.Kiosk)
	}
	if err != nil {
		log.Warn("rejecting rating", "err", err)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckRejected, Reason: reason(err)})
		return
	}
	if f.cfg.RatingReceived == nil {
		log.Warn("not acknowledging rating: this hub takes no ratings; the kiosk will resend", "ticket", r.Ticket)
		return
	}
	err = f.cfg.RatingReceived(ctx, env.ID, r, f.cfg.Now())
	switch {
	case errors.Is(err, ErrRejected):
		log.Warn("rating rejected", "ticket", r.Ticket, "rating", r.Rating, "err", err)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckRejected, Reason: reason(err)})
	case err != nil:
		log.Error("handling rating failed; not acknowledging, the kiosk will resend", "ticket", r.Ticket, "err", err)
	default:
		log.Info("rating stored", "ticket", r.Ticket, "rating", r.Rating)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckStored})
	}
}

// updateStatus records a kiosk's live update status.
func (f *Fleet) updateStatus(ctx context.Context, t protocol.Topic, payload []byte) {
	_, u, err := protocol.DecodeUpdateStatus(payload)
	if err == nil && u.Kiosk != t.Kiosk {
		err = fmt.Errorf("kiosk %q in the body does not match kiosk %q of the topic", u.Kiosk, t.Kiosk)
	}
	if err != nil {
		f.log.Warn("dropping update status", "kiosk", t.Kiosk, "err", err)
		return
	}
	if f.cfg.Updates == nil {
		return
	}
	if err := f.cfg.Updates.UpdateStatus(ctx, u, f.cfg.Now()); err != nil {
		f.log.Error("recording update status failed", "kiosk", t.Kiosk, "err", err)
	}
}

// updateReport stores an update record once and acknowledges it, like
// feedback.
func (f *Fleet) updateReport(ctx context.Context, t protocol.Topic, payload []byte) {
	env, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		f.log.Warn("dropping update record without a valid envelope", "kiosk", t.Kiosk, "err", err)
		return
	}
	log := f.log.With("kiosk", t.Kiosk, "record", env.ID)
	_, r, err := protocol.DecodeUpdate(payload)
	if err == nil && r.Kiosk != t.Kiosk {
		err = fmt.Errorf("kiosk %q in the body does not match kiosk %q of the topic", r.Kiosk, t.Kiosk)
	}
	if err != nil {
		log.Warn("rejecting update record", "err", err)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckRejected, Reason: reason(err)})
		return
	}
	if f.cfg.Updates == nil {
		log.Warn("not acknowledging update record: this hub takes no update records; the kiosk will resend")
		return
	}
	dup, err := f.cfg.Updates.UpdateReport(ctx, env.ID, r, f.cfg.Now())
	if err != nil {
		log.Error("storing update record failed; not acknowledging, the kiosk will resend", "err", err)
		return
	}
	status := protocol.AckStored
	if dup {
		status = protocol.AckDuplicate
	}
	log.Info("update record stored", "rollout", r.Rollout, "release", r.Release, "state", r.State, "reason", r.Reason, "status", status)
	f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: status})
}

// result hands a command's result to Config.ResultReceived and
// acknowledges it as the callback says, like a rating.
func (f *Fleet) result(ctx context.Context, t protocol.Topic, payload []byte) {
	env, err := protocol.DecodeEnvelope(payload)
	if err != nil {
		f.log.Warn("dropping command result without a valid envelope", "kiosk", t.Kiosk, "err", err)
		return
	}
	log := f.log.With("kiosk", t.Kiosk, "record", env.ID)
	_, r, err := protocol.DecodeResult(payload)
	if err == nil && r.Kiosk != t.Kiosk {
		err = fmt.Errorf("kiosk %q in the body does not match kiosk %q of the topic", r.Kiosk, t.Kiosk)
	}
	if err != nil {
		log.Warn("rejecting command result", "err", err)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckRejected, Reason: reason(err)})
		return
	}
	if f.cfg.ResultReceived == nil {
		log.Warn("not acknowledging command result: this hub sends no commands; the kiosk will resend", "command", r.Command)
		return
	}
	err = f.cfg.ResultReceived(ctx, env.ID, r, f.cfg.Now())
	switch {
	case errors.Is(err, ErrRejected):
		log.Warn("command result rejected", "command", r.Command, "err", err)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckRejected, Reason: reason(err)})
	case err != nil:
		log.Error("handling command result failed; not acknowledging, the kiosk will resend", "command", r.Command, "err", err)
	default:
		log.Info("command result stored", "command", r.Command, "action", r.Action, "status", r.Status)
		f.ack(ctx, t.Kiosk, protocol.Ack{Ref: env.ID, Status: protocol.AckStored})
	}
}

// PublishOffer publishes a kiosk's update offer, signed and retained at
// QoS 1 on down/{kiosk}/release, and waits until the broker has taken it.
func (f *Fleet) PublishOffer(ctx context.Context, o protocol.UpdateOffer) error {
	payload, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeUpdateOffer, f.cfg.Now(), o, f.cfg.Signer.Signer())
	if err != nil {
		return fmt.Errorf("fleet: update offer to %s: %w", o.Kiosk, err)
	}
	if err := f.publish(ctx, protocol.DownTopic(o.Kiosk, protocol.ChannelRelease), payload); err != nil {
		return fmt.Errorf("fleet: update offer to %s: %w", o.Kiosk, err)
	}
	return nil
}

// PublishCaseBoard publishes a kiosk's case board, signed and retained at
// QoS 1 on down/{kiosk}/cases, and waits until the broker has taken it. A
// board too large for one message loses its oldest entries (the last ones)
// until it fits; the kiosk then cannot look those up.
func (f *Fleet) PublishCaseBoard(ctx context.Context, b protocol.CaseBoard) error {
	if err := b.Validate(); err != nil {
		return fmt.Errorf("fleet: case board of %s: %w", b.Kiosk, err)
	}
	id, all := protocol.NewID(), len(b.Cases)
	for {
		payload, err := protocol.EncodeSigned(id, protocol.TypeCases, f.cfg.Now(), b, f.cfg.Signer.Signer())
		if errors.Is(err, protocol.ErrTooLarge) && len(b.Cases) > 0 {
			b.Cases = b.Cases[:len(b.Cases)*9/10]
			continue
		}
		if err != nil {
			return fmt.Errorf("fleet: case board of %s: %w", b.Kiosk, err)
		}
		if len(b.Cases) < all {
			f.log.Warn("case board too large; published without its oldest cases", "kiosk", b.Kiosk,
				"version", b.Version, "cases", all, "published", len(b.Cases))
		}
		if err := f.publish(ctx, protocol.DownTopic(b.Kiosk, protocol.ChannelCases), payload); err != nil {
			return fmt.Errorf("fleet: case board of %s: %w", b.Kiosk, err)
		}
		return nil
	}
}

// Publish publishes a payload on a topic (QoS and retention from the topic)
// and waits until the broker has taken it.
func (f *Fleet) Publish(ctx context.Context, t protocol.Topic, payload []byte) error {
	return f.publish(ctx, t, payload)
}

// PublishDesired publishes a kiosk's desired state, retained at QoS 1, and
// waits until the broker has taken it.
func (f *Fleet) PublishDesired(ctx context.Context, d protocol.DesiredState) error {
	payload, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeDesired, f.cfg.Now(), d, f.cfg.Signer.Signer())
	if err != nil {
		return fmt.Errorf("fleet: desired state of %s: %w", d.Kiosk, err)
	}
	if err := f.publish(ctx, protocol.DownTopic(d.Kiosk, protocol.ChannelDesired), payload); err != nil {
		return fmt.Errorf("fleet: desired state of %s: %w", d.Kiosk, err)
	}
	return nil
}

// PublishKeys publishes the hub's key chain, signed by its newest key,
// retained at QoS 1 on the org tree root's downlink topic, and waits until
// the broker has taken it.
func (f *Fleet) PublishKeys(ctx context.Context, root string, chain protocol.KeyChain) error {
	payload, err := protocol.EncodeSigned(protocol.NewID(), protocol.TypeKeys, f.cfg.Now(), chain, f.cfg.Signer.Signer())
	if err != nil {
		return fmt.Errorf("fleet: key chain: %w", err)
	}
	if err := f.publish(ctx, protocol.DownTopic(root, protocol.ChannelKeys), payload); err != nil {
		return fmt.Errorf("fleet: key chain: %w", err)
	}
	return nil
}

func (f *Fleet) publish(ctx context.Context, t protocol.Topic, payload []byte) error {
	ctx, cancel := context.WithTimeout(ctx, publishTimeout)
	defer cancel()
	if err := wait(ctx, f.client.Publish(t.String(), t.QoS(), t.Retained(), payload)); err != nil {
		return fmt.Errorf("publish %s: %w", t, err)
	}
	return nil
}

// wait waits for a paho token or the context, whichever ends first.
func wait(ctx context.Context, tok paho.Token) error {
	select {
	case <-tok.Done():
		return tok.Error()
	case <-ctx.Done():
		return ctx.Err()
	}
}
