// Package enrol lets new kiosks join the fleet: staff create one-time claim
// codes for a community (and optionally one kiosk slot of it, to replace a
// device); a device presents a code with its own public key and receives its
// identity, its MQTT credentials, the hub's signing key and the CA to pin.
// Staff list and revoke devices here too.
//
//	POST /api/v1/enrol                 protocol.EnrolRequest → 200 protocol.EnrolResponse   (open, rate limited)
//	POST /api/v1/claims                ClaimRequest → 201 ClaimCreated
//	GET  /api/v1/claims                → {"claims":[Claim]}
//	GET  /api/v1/devices               → {"devices":[Device],"pending":[Claim]}
//	POST /api/v1/devices/{id}/revoke   → 200 Device
//
// Claim codes are 12 digits, single use, expiring, and stored only as an
// HMAC under a hub secret: the code is shown once, when it is created.
// Passwords are 32 random bytes and stored only as hashes.
//
// Claims created and devices revoked are recorded in the audit log with the
// request's actor (Config.Audit), never with the code.
package enrol

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"slices"
	"strconv"
	"time"

	"github.com/shequ/shequ/hub/access"
	"github.com/shequ/shequ/hub/jsonhttp"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/ratelimit"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Store is what enrolment needs from the hub database.
type Store interface {
	CreateClaim(ctx context.Context, c store.Claim) error
	Claims(ctx context.Context) ([]store.Claim, error)
	Enrol(ctx context.Context, r store.EnrolRequest) (store.Device, []store.Device, error)
	Devices(ctx context.Context) ([]store.Device, error)
	RevokeDevice(ctx context.Context, id string, at time.Time) (d store.Device, revoked bool, err error)
	TicketFloor(ctx context.Context, kiosk string) (uint64, error)
	Kiosks(ctx context.Context) ([]store.KioskRecord, error)
}

var _ Store = (*store.SQLite)(nil)

// Keys is the hub's signing key, as handed to devices.
type Keys interface {
	Current() (pub ed25519.PublicKey, kid string, serial int64)
}

// Mux is where the service registers its handlers: Handle for staff
// endpoints (behind the admin token), HandlePublic for the enrolment
// endpoint.
type Mux interface {
	Handle(pattern string, h http.Handler)
	HandlePublic(pattern string, h http.Handler)
}

// Config configures the service. Every field but Now and Limiter is required.
type Config struct {
	Store     Store
	Tree      *orgtree.Tree
	Keys      Keys
	Secret    []byte // HMAC key for claim codes, at least 32 bytes
	CACertPEM []byte // handed to devices
	BrokerURL string // handed to devices
	// Limiter limits POST /api/v1/enrol by client IP; nil: no limit.
	Limiter *ratelimit.Limiter
	// AccessChanged is called after an enrolment or a revocation has been
	// committed and before the reply, with the devices whose access ended
	// (revoked, or replaced by the new device). It must update the broker's
	// accounts and disconnect those devices.
	AccessChanged func(ctx context.Context, ended []store.Device) error
	// Audit, if set, records a committed change in the hub's audit log:
	// claim.create of "claim:<id>" (after: the Claim, never its code) and
	// device.revoke of "device:<id>" (the Device before and after). Who
	// made it is jsonhttp.Actor(ctx), which the function resolves itself.
	// nil: no audit.
	Audit func(ctx context.Context, action, object string, before, after any)
	// Now returns the current time; default time.Now.
	Now func() time.Time
}

// Service serves enrolment, claims and devices.
type Service struct {
	cfg Config
	log *slog.Logger
}

// New checks cfg and returns the service.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.Store == nil || cfg.Tree == nil || cfg.Keys == nil || len(cfg.CACertPEM) == 0 ||
		cfg.BrokerURL == "" || cfg.AccessChanged == nil {
		return nil, errors.New("enrol: Store, Tree, Keys, CACertPEM, BrokerURL and AccessChanged are required")
	}
	if len(cfg.Secret) < 32 {
		return nil, errors.New("enrol: Secret must be at least 32 bytes")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: log}, nil
}

// Register adds the service's handlers to m.
func (s *Service) Register(m Mux) {
	m.HandlePublic("POST "+protocol.HubPathEnrol, http.HandlerFunc(s.enrol))
	m.Handle("POST /api/v1/claims", http.HandlerFunc(s.createClaim))
	m.Handle("GET /api/v1/claims", http.HandlerFunc(s.listClaims))
	m.Handle("GET /api/v1/devices", http.HandlerFunc(s.listDevices))
	m.Handle("POST /api/v1/devices/{id}/revoke", http.HandlerFunc(s.revoke))
}

// Claim is a claim code as listed (never the code itself).
type Claim struct {
	ID        string    `json:"id"`
	Community string    `json:"community"`
	Kiosk     string    `json:"kiosk,omitempty"`
	Status    string    `json:"status"` // pending, used or expired
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at"`
	UsedAt    time.Time `json:"used_at,omitzero"`
	Device    string    `json:"device,omitempty"`
}

// ClaimCreated is the reply of POST /api/v1/claims: the only time the code
// is shown.
type ClaimCreated struct {
	ID        string    `json:"id"`
	Code      string    `json:"code"` // "1234-5678-9012"
	ExpiresAt time.Time `json:"expires_at"`
	Community string    `json:"community"`
	Kiosk     string    `json:"kiosk,omitempty"`
}

// Device is a device as listed.
type Device struct {
	ID              string    `json:"id"`
	Kiosk           string    `json:"kiosk"`
	Community       string    `json:"community"`
	Status          string    `json:"status"` // enrolled, revoked or replaced
	HardwareID      string    `json:"hardware_id"`
	KeyID           string    `json:"key_id"`
	SoftwareVersion string    `json:"software_version"`
	EnrolledAt      time.Time `json:"enrolled_at"`
	RevokedAt       time.Time `json:"revoked_at,omitzero"`
	LastSeen        time.Time `json:"last_seen,omitzero"`
}

// Claim statuses.
const (
	ClaimPending = "pending"
	ClaimUsed    = "used"
	ClaimExpired = "expired"
)

func claimView(c store.Claim, now time.Time) Claim {
	st := ClaimPending
	switch {
	case !c.UsedAt.IsZero():
		st = ClaimUsed
	case !now.Before(c.ExpiresAt):
		st = ClaimExpired
	}
	return Claim{ID: c.ID, Community: c.Community, Kiosk: c.Kiosk, Status: st, CreatedAt: c.CreatedAt,
		ExpiresAt: c.ExpiresAt, UsedAt: c.UsedAt, Device: c.Device}
}

func deviceView(d store.Device, lastSeen time.Time) Device {
	return Device{ID: d.ID, Kiosk: d.Kiosk, Community: d.Community, Status: d.Status, HardwareID: d.HardwareID,
		KeyID: d.KeyID, SoftwareVersion: d.SoftwareVersion, EnrolledAt: d.EnrolledAt, RevokedAt: d.RevokedAt,
		LastSeen: lastSeen}
}

// slots returns the kiosks of a community in org-file order.
func (s *Service) slots(community string) []string {
	n := s.cfg.Tree.Node(community)
	if n == nil || n.Level != protocol.LevelCommunity {
		return nil
	}
	var out []string
	for _, c := range n.Children {
		out = append(out, c.ID)
	}
	return out
}

func (s *Service) createClaim(w http.ResponseWriter, r *http.Request) {
	body, code, err := jsonhttp.ReadBody(r, MaxClaimRequestSize)
	if err != nil {
		s.error(w, code, err)
		return
	}
	req, ttl, err := DecodeClaimRequest(body)
	if err != nil {
		s.error(w, http.StatusBadRequest, err)
		return
	}
	if n := s.cfg.Tree.Node(req.Community); n == nil || n.Level != protocol.LevelCommunity {
		s.error(w, http.StatusBadRequest, fmt.Errorf("community %q is not a community of the org tree", req.Community))
		return
	}
	if req.Kiosk != "" && !slices.Contains(s.slots(req.Community), req.Kiosk) {
		s.error(w, http.StatusBadRequest, fmt.Errorf("kiosk %q is not a kiosk of community %q", req.Kiosk, req.Community))
		return
	}
	plain, err := NewCode()
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	now := s.cfg.Now().UTC()
	c := store.Claim{ID: protocol.NewID(), CodeHash: HashCode(s.cfg.Secret, plain), Community: req.Community,
		Kiosk: req.Kiosk, CreatedAt: now, ExpiresAt: now.Add(ttl)}
	if err := s.cfg.Store.CreateClaim(r.Context(), c); err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	s.log.Info("claim code created", "claim", c.ID, "community", c.Community, "kiosk", c.Kiosk, "expires_at", c.ExpiresAt)
	s.audit(r.Context(), "claim.create", "claim:"+c.ID, nil, claimView(c, now))
	s.json(w, http.StatusCreated, ClaimCreated{ID: c.ID, Code: FormatCode(plain), ExpiresAt: c.ExpiresAt,
		Community: c.Community, Kiosk: c.Kiosk})
}

func (s *Service) listClaims(w http.ResponseWriter, r *http.Request) {
	cs, err := s.cfg.Store.Claims(r.Context())
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	now := s.cfg.Now()
	out := []Claim{}
	for _, c := range cs {
		out = append(out, claimView(c, now))
	}
	s.json(w, http.StatusOK, struct {
		Claims []Claim `json:"claims"`
	}{out})
}

func (s *Service) listDevices(w http.ResponseWriter, r *http.Request) {
	ds, err := s.cfg.Store.Devices(r.Context())
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	cs, err := s.cfg.Store.Claims(r.Context())
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	ks, err := s.cfg.Store.Kiosks(r.Context())
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	seen := map[string]time.Time{}
	for _, k := range ks {
		seen[k.ID] = k.LastSeen
	}
	now := s.cfg.Now()
	out := struct {
		Devices []Device `json:"devices"`
		Pending []Claim  `json:"pending"`
	}{Devices: []Device{}, Pending: []Claim{}}
	for _, d := range ds {
		var last time.Time
		if d.Status == store.DeviceEnrolled {
			last = seen[d.Kiosk]
		}
		out.Devices = append(out.Devices, deviceView(d, last))
	}
	for _, c := range cs {
		if v := claimView(c, now); v.Status == ClaimPending {
			out.Pending = append(out.Pending, v)
		}
	}
	s.json(w, http.StatusOK, out)
}

func (s *Service) revoke(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	d, revoked, err := s.cfg.Store.RevokeDevice(r.Context(), id, s.cfg.Now().UTC())
	if errors.Is(err, store.ErrNotFound) {
		s.error(w, http.StatusNotFound, fmt.Errorf("no device %q", id))
		return
	}
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	if !revoked {
		// Already revoked or replaced: its access ended then. Touching the
		// broker now would cut off the device that fills the slot today.
		s.json(w, http.StatusOK, deviceView(d, time.Time{}))
		return
	}
	s.log.Info("device revoked", "device", d.ID, "kiosk", d.Kiosk, "status", d.Status)
	before := d
	before.Status, before.RevokedAt = store.DeviceEnrolled, time.Time{} // revoked is set only for an enrolled device
	s.audit(r.Context(), "device.revoke", "device:"+d.ID, deviceView(before, time.Time{}), deviceView(d, time.Time{}))
	if err := s.cfg.AccessChanged(r.Context(), []store.Device{d}); err != nil {
		s.error(w, http.StatusInternalServerError, fmt.Errorf("device %s revoked, but updating the broker failed: %w", d.ID, err))
		return
	}
	s.json(w, http.StatusOK, deviceView(d, time.Time{}))
}

// Refusals of POST /api/v1/enrol, in words a technician can act on.
var (
	msgUnknown = "claim code not recognised: check the digits or ask for a new code (认领码无效)"
	msgUsed    = "claim code already used: ask for a new code (认领码已使用)"
	msgExpired = "claim code expired: ask for a new code (认领码已过期)"
	msgNoSlot  = "every kiosk of this community already has an enrolled device: ask for a code for the kiosk to replace (该社区没有空闲终端位)"
)

func (s *Service) enrol(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Limiter != nil {
		ip, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			ip = r.RemoteAddr
		}
		if ok, retry := s.cfg.Limiter.Allow(ip); !ok {
			secs := int(retry/time.Second) + 1
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			s.log.Warn("enrolment rate limited", "client", ip, "retry_after_s", secs)
			s.error(w, http.StatusTooManyRequests, fmt.Errorf("too many enrolment attempts; retry in %d s", secs))
			return
		}
	}
	body, code, err := jsonhttp.ReadBody(r, protocol.MaxEnrolRequestSize)
	if err != nil {
		s.error(w, code, err)
		return
	}
	req, err := protocol.DecodeEnrolRequest(body)
	if err != nil {
		s.error(w, http.StatusBadRequest, err)
		return
	}
	pub, err := protocol.DecodeKey(req.PublicKey)
	if err != nil {
		s.error(w, http.StatusBadRequest, err)
		return
	}
	password, err := access.NewPassword()
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	mosq, err := access.HashMosquitto(password)
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	now := s.cfg.Now().UTC()
	dev, replaced, err := s.cfg.Store.Enrol(r.Context(), store.EnrolRequest{
		CodeHash: HashCode(s.cfg.Secret, req.ClaimCode), Now: now, Slots: s.slots,
		Device: store.Device{ID: protocol.NewID(), PublicKey: req.PublicKey, KeyID: protocol.KeyID(pub),
			HardwareID: req.HardwareID, SoftwareVersion: req.SoftwareVersion,
			MQTTSHA256: access.HashSHA256(password), MQTTMosquitto: mosq},
	})
	var msg string
	switch {
	case errors.Is(err, store.ErrClaimUnknown):
		msg = msgUnknown
	case errors.Is(err, store.ErrClaimUsed):
		msg = msgUsed
	case errors.Is(err, store.ErrClaimExpired):
		msg = msgExpired
	case errors.Is(err, store.ErrNoSlot):
		s.log.Warn("enrolment refused", "hardware_id", req.HardwareID, "reason", "no free slot")
		s.error(w, http.StatusConflict, errors.New(msgNoSlot))
		return
	case err != nil:
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	if msg != "" {
		s.log.Warn("enrolment refused", "hardware_id", req.HardwareID, "reason", msg)
		s.error(w, http.StatusForbidden, errors.New(msg))
		return
	}
	log := s.log.With("device", dev.ID, "kiosk", dev.Kiosk, "hardware_id", dev.HardwareID, "key_id", dev.KeyID)
	for _, old := range replaced {
		log.Info("device replaced", "replaced_device", old.ID, "replaced_hardware_id", old.HardwareID)
	}
	if err := s.cfg.AccessChanged(r.Context(), replaced); err != nil {
		// The enrolment is committed and the code used: answering 500 now
		// would strand the device without its credentials. The hub retries
		// the broker update until it succeeds; the device's connection
		// attempts are refused until then and it keeps retrying.
		log.Error("enrolled, but updating the broker failed; the hub retries it", "err", err)
	}
	floor, err := s.cfg.Store.TicketFloor(r.Context(), dev.Kiosk)
	if err != nil {
		s.error(w, http.StatusInternalServerError, err)
		return
	}
	hubKey, kid, serial := s.cfg.Keys.Current()
	var groups []string
	for _, t := range s.cfg.Tree.Ancestors(dev.Kiosk) {
		if t.ID != dev.Kiosk {
			groups = append(groups, t.ID)
		}
	}
	resp := protocol.EnrolResponse{
		Kiosk: dev.Kiosk, Groups: groups, BrokerURL: s.cfg.BrokerURL,
		MQTTUsername: dev.Kiosk, MQTTPassword: password,
		HubKey: protocol.EncodeKey(hubKey), HubKID: kid, KeySerial: serial,
		CACert: string(s.cfg.CACertPEM), TicketFloor: floor,
	}
	if err := resp.Validate(); err != nil {
		s.error(w, http.StatusInternalServerError, fmt.Errorf("enrolment response: %w", err))
		return
	}
	log.Info("device enrolled", "ticket_floor", floor)
	s.json(w, http.StatusOK, resp)
}

// audit records a change through Config.Audit, if set.
func (s *Service) audit(ctx context.Context, action, object string, before, after any) {
	if s.cfg.Audit != nil {
		s.cfg.Audit(ctx, action, object, before, after)
	}
}

func (s *Service) error(w http.ResponseWriter, code int, err error) {
	jsonhttp.Error(w, s.log, code, err)
}

func (s *Service) json(w http.ResponseWriter, code int, v any) { jsonhttp.Write(w, s.log, code, v) }
