// Package update installs the kiosk image releases the hub offers
// (docs/updates.md). The hub's signed offer names a release and its
// bundle; the manager has the media cache fetch the bundle (the same
// verified, resumable transfer as videos), has the engine (RAUC) write it
// to the other root slot, records "installed" and reboots. After the
// reboot it learns from the health gate's result whether the new slot was
// kept (healthy) or the kiosk is back on the previous one (rolled back,
// with the gate's reason). Each of these steps is saved together with its
// outbox record in one bbolt transaction, so the hub learns of every step
// exactly once, across reboots and power cuts. Refused bundles (signature,
// downgrade) and failed installs are reported the same way and not tried
// again until the hub makes a new offer.
package update

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/shequ/shequ/protocol"
)

// Slot is a root slot and the release it holds.
type Slot struct {
	Name    string `json:"name"`    // A or B
	Version string `json:"version"` // release
}

// ErrUnsupported means the device has no A/B update engine (a developer
// machine, or a kiosk installed from packages rather than the image).
var ErrUnsupported = errors.New("update: no A/B update engine on this device")

// RefusedError is a bundle the engine refused before writing anything.
type RefusedError struct{ Reason string }

func (e *RefusedError) Error() string { return "update: bundle refused: " + e.Reason }

// Engine writes bundles to the other slot and reboots into it.
type Engine interface {
	// Booted returns the booted slot; ErrUnsupported without an engine.
	Booted(ctx context.Context) (Slot, error)
	// Install writes the bundle to the other slot and makes it the next
	// boot's, with boot counting. A refused bundle is a *RefusedError.
	// allowDowngrade, if set, is the version of a downgrade the release
	// allows.
	Install(ctx context.Context, bundle, allowDowngrade string, progress func(percent int)) error
	// Reboot reboots the kiosk (soon, not necessarily before it returns).
	Reboot(ctx context.Context) error
}

// Store keeps the manager's state and queues its reports (agent/store).
type Store interface {
	UpdateState() ([]byte, error)
	SaveUpdate(state []byte, report *protocol.UpdateReport) error
}

// Media fetches the bundle (agent/media.Cache).
type Media interface {
	WantBundle(ref *protocol.MediaRef)
	Has(sha string) bool
	Path(sha string) string
	Percent(sha string) int
	Failure(sha string) string // why the last try to fetch it failed, or ""
}

// Gate is the health gate's verdict on one boot of a slot, written by
// shequ-agent health-gate (-result) for the agent to read.
type Gate struct {
	Slot   string    `json:"slot"`
	BootID string    `json:"boot_id"`
	Passed bool      `json:"passed"`
	Reason string    `json:"reason,omitempty"`
	At     time.Time `json:"at"`
}

// Config configures a Manager.
type Config struct {
	Kiosk  string // required
	Engine Engine // required
	Store  Store  // required
	Media  Media  // required
	// GateFile is where the health gate leaves its verdict; required.
	GateFile string
	// BootID returns this boot's id; default: /proc/sys/kernel/random/boot_id.
	BootID func() (string, error)
	// Queued is called after a report was queued in the outbox (the
	// link's Wake); nil: nothing.
	Queued func()
	Poll   time.Duration // default 5s
	Now    func() time.Time
}

// state is what the manager keeps in the store.
type state struct {
	Seq    int64                `json:"seq"`   // of the last offer taken
	Offer  protocol.UpdateOffer `json:"offer"` // the last offer taken
	Phase  protocol.UpdateState `json:"phase"` // with Offer.Release; "" before anything happened
	Reason string               `json:"reason,omitempty"`
	From   Slot                 `json:"from"`              // the slot that installed it
	BootID string               `json:"boot_id,omitempty"` // of the boot that installed it
	// InstalledAt is when the install finished: only a gate verdict after
	// it speaks of the new slot.
	InstalledAt time.Time `json:"installed_at,omitzero"`
	At          time.Time `json:"at"` // when Phase was set
}

// Manager installs offered releases. Create with New, run with Run.
type Manager struct {
	cfg Config
	log *slog.Logger

	kick chan struct{}

	mu      sync.Mutex
	st      state
	booted  *Slot // nil until known
	noA_B   bool  // the engine said ErrUnsupported
	percent int
	dlErr   string // why fetching the bundle last failed (retried)
	bootErr string
}

// New loads the manager's state.
func New(cfg Config, log *slog.Logger) (*Manager, error) {
	if cfg.Kiosk == "" || cfg.Engine == nil || cfg.Store == nil || cfg.Media == nil || cfg.GateFile == "" {
		return nil, errors.New("update: Kiosk, Engine, Store, Media and GateFile are required")
	}
	if cfg.BootID == nil {
		cfg.BootID = func() (string, error) {
			b, err := os.ReadFile("/proc/sys/kernel/random/boot_id")
			return strings.TrimSpace(string(b)), err
		}
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 5 * time.Second
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	m := &Manager{cfg: cfg, log: log, kick: make(chan struct{}, 1)}
	b, err := cfg.Store.UpdateState()
	if err != nil {
		return nil, err
	}
	if b != nil {
		if err := json.Unmarshal(b, &m.st); err != nil {
			return nil, fmt.Errorf("update: stored state: %w", err)
		}
	}
	return m, nil
}

// Offer takes a verified offer from the hub. One whose seq is not above
// the last taken is ignored (a replay, or the retained offer again after a
// reconnect). A new release starts over; the same release with a new seq
// retries a failed download or install.
func (m *Manager) Offer(o protocol.UpdateOffer) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o.Seq <= m.st.Seq {
		if o.Seq < m.st.Seq {
			m.log.Warn("update offer older than the last one taken: ignored", "seq", o.Seq, "held", m.st.Seq)
		}
		return
	}
	st := m.st
	st.Seq = o.Seq
	if o.Release != st.Offer.Release || o.Rollout != st.Offer.Rollout {
		st.Phase, st.Reason, st.From, st.BootID, st.InstalledAt = "", "", Slot{}, "", time.Time{}
	} else if st.Phase == protocol.UpdateFailed {
		st.Phase, st.Reason = "", ""
	}
	st.Offer = o
	if err := m.saveLocked(st, nil); err != nil {
		m.log.Error("update offer not saved", "err", err)
		return
	}
	m.log.Info("update offer taken", "rollout", o.Rollout, "release", o.Release, "seq", o.Seq)
	select {
	case m.kick <- struct{}{}:
	default:
	}
}

// saveLocked stores st (and queues report) and only then makes it the
// manager's state.
func (m *Manager) saveLocked(st state, report *protocol.UpdateReport) error {
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("update: encode state: %w", err)
	}
	if err := m.cfg.Store.SaveUpdate(b, report); err != nil {
		return err
	}
	m.st = st
	if report != nil && m.cfg.Queued != nil {
		m.cfg.Queued()
	}
	return nil
}

// Status is the live status for the hub, sent with each heartbeat.
func (m *Manager) Status(epoch int64) protocol.UpdateStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	u := protocol.UpdateStatus{Kiosk: m.cfg.Kiosk, Epoch: epoch, Release: m.st.Offer.Release, State: protocol.UpdateIdle}
	switch {
	case m.noA_B:
		u.State, u.Release = protocol.UpdateUnsupported, ""
		return u
	case m.booted == nil:
		u.Reason = truncate(m.bootErr, protocol.MaxReason)
		return u
	}
	u.Slot, u.Version = m.booted.Name, m.booted.Version
	if protocol.ValidRelease(u.Version) != nil {
		u.Version = ""
	}
	if m.st.Phase != "" {
		u.State = m.st.Phase
	}
	if u.State == protocol.UpdateDownloading || u.State == protocol.UpdateInstalling {
		u.Percent = m.percent
	}
	if u.State.Bad() {
		u.Reason = truncate(m.st.Reason, protocol.MaxReason)
	}
	if u.State == protocol.UpdateDownloading && m.dlErr != "" {
		u.Reason = truncate("fetching the bundle: "+m.dlErr+" (retrying)", protocol.MaxReason)
	}
	return u
}

// Run works on the offer until ctx ends.
func (m *Manager) Run(ctx context.Context) error {
	t := time.NewTicker(m.cfg.Poll)
	defer t.Stop()
	for {
		m.step(ctx)
		select {
		case <-ctx.Done():
			return nil
		case <-m.kick:
		case <-t.C:
		}
	}
}

// step does the next thing the offer needs.
func (m *Manager) step(ctx context.Context) {
	if !m.knowBooted(ctx) {
		m.cfg.Media.WantBundle(nil)
		return
	}
	m.mu.Lock()
	st, booted := m.st, *m.booted
	m.mu.Unlock()
	o := st.Offer
	if o.Release == "" || o.Bundle == nil {
		m.cfg.Media.WantBundle(nil)
		return
	}
	report := func(s protocol.UpdateState, reason string) *protocol.UpdateReport {
		return &protocol.UpdateReport{Kiosk: m.cfg.Kiosk, Rollout: o.Rollout, Release: o.Release, State: s,
			Slot: booted.Name, Version: validOrEmpty(booted.Version), Reason: truncate(reason, protocol.MaxReason), At: m.cfg.Now().UTC()}
	}
	if booted.Version == o.Release {
		m.cfg.Media.WantBundle(nil)
		switch st.Phase {
		case protocol.UpdateHealthy:
			return
		case protocol.UpdateInstalled, protocol.UpdateBooted:
			g, ok := m.gate()
			if !ok || g.Slot != booted.Name || !g.At.After(st.InstalledAt) || !g.Passed {
				if st.Phase != protocol.UpdateBooted {
					m.set(ctx, st, protocol.UpdateBooted, "", nil)
				}
				return
			}
		}
		m.set(ctx, st, protocol.UpdateHealthy, "", report(protocol.UpdateHealthy, ""))
		return
	}
	switch st.Phase {
	case protocol.UpdateRefused, protocol.UpdateFailed, protocol.UpdateRolledBack:
		m.cfg.Media.WantBundle(nil)
		return
	case protocol.UpdateInstalled, protocol.UpdateBooted:
		id, err := m.cfg.BootID()
		if err == nil && id == st.BootID {
			// Installed this boot: the reboot is still to come.
			if err := m.cfg.Engine.Reboot(ctx); err != nil {
				m.log.Error("update: asking for a reboot failed", "err", err)
			}
			return
		}
		reason := "the new slot did not come up: its boot tries ran out (kernel, root file system or boot failure)"
		if g, ok := m.gate(); ok && g.Slot != booted.Name && g.At.After(st.InstalledAt) && !g.Passed {
			reason = "health gate: " + g.Reason
		}
		m.cfg.Media.WantBundle(nil)
		m.set(ctx, st, protocol.UpdateRolledBack, reason, report(protocol.UpdateRolledBack, reason))
		m.log.Warn("update rolled back", "release", o.Release, "slot", booted.Name, "reason", reason)
		return
	}
	m.cfg.Media.WantBundle(o.Bundle)
	if !m.cfg.Media.Has(o.Bundle.SHA256) {
		m.mu.Lock()
		m.percent = m.cfg.Media.Percent(o.Bundle.SHA256)
		m.dlErr = m.cfg.Media.Failure(o.Bundle.SHA256)
		m.mu.Unlock()
		if st.Phase != protocol.UpdateDownloading {
			m.set(ctx, st, protocol.UpdateDownloading, "", nil)
		}
		return
	}
	m.install(ctx, st, booted, report)
}

// install writes the held bundle to the other slot and reboots.
func (m *Manager) install(ctx context.Context, st state, booted Slot, report func(protocol.UpdateState, string) *protocol.UpdateReport) {
	o := st.Offer
	m.mu.Lock()
	m.percent = 0
	m.mu.Unlock()
	if !m.set(ctx, st, protocol.UpdateInstalling, "", nil) {
		return
	}
	allow := ""
	if o.AllowDowngrade {
		allow = o.Release
	}
	m.log.Info("installing update", "release", o.Release, "from", booted.Name)
	err := m.cfg.Engine.Install(ctx, m.cfg.Media.Path(o.Bundle.SHA256), allow, func(p int) {
		m.mu.Lock()
		m.percent = p
		m.mu.Unlock()
	})
	m.mu.Lock()
	st = m.st
	m.mu.Unlock()
	var refused *RefusedError
	switch {
	case ctx.Err() != nil:
		return // stopping: installing is tried again at the next start
	case errors.As(err, &refused):
		m.log.Warn("update refused", "release", o.Release, "reason", refused.Reason)
		m.set(ctx, st, protocol.UpdateRefused, refused.Reason, report(protocol.UpdateRefused, refused.Reason))
		m.cfg.Media.WantBundle(nil)
		return
	case err != nil:
		m.log.Error("update failed", "release", o.Release, "err", err)
		m.set(ctx, st, protocol.UpdateFailed, err.Error(), report(protocol.UpdateFailed, err.Error()))
		m.cfg.Media.WantBundle(nil)
		return
	}
	id, err := m.cfg.BootID()
	if err != nil {
		m.log.Error("update: boot id unknown", "err", err)
	}
	st.From, st.BootID, st.InstalledAt = booted, id, m.cfg.Now().UTC()
	if !m.set(ctx, st, protocol.UpdateInstalled, "", report(protocol.UpdateInstalled, "")) {
		return
	}
	m.log.Info("update installed; rebooting into it", "release", o.Release)
	if err := m.cfg.Engine.Reboot(ctx); err != nil {
		m.log.Error("update: asking for a reboot failed", "err", err)
	}
}

// set saves a new phase with its report; it reports whether it did.
func (m *Manager) set(_ context.Context, st state, phase protocol.UpdateState, reason string, report *protocol.UpdateReport) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.st.Seq != st.Seq {
		return false // a new offer came meanwhile
	}
	st.Phase, st.Reason, st.At = phase, reason, m.cfg.Now().UTC()
	if err := m.saveLocked(st, report); err != nil {
		m.log.Error("update state not saved", "phase", phase, "err", err)
		return false
	}
	return true
}

// knowBooted asks the engine which slot booted, once.
func (m *Manager) knowBooted(ctx context.Context) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.booted != nil {
		return true
	}
	if m.noA_B {
		return false
	}
	s, err := m.cfg.Engine.Booted(ctx)
	switch {
	case errors.Is(err, ErrUnsupported):
		m.noA_B = true
		m.log.Info("no A/B update engine on this device: updates off", "reason", err)
		return false
	case err != nil:
		if m.bootErr != err.Error() {
			m.log.Warn("update: booted slot unknown; trying again", "err", err)
		}
		m.bootErr = err.Error()
		return false
	}
	m.booted = &s
	return true
}

// gate reads the health gate's last verdict.
func (m *Manager) gate() (Gate, bool) {
	b, err := os.ReadFile(m.cfg.GateFile)
	if err != nil {
		return Gate{}, false
	}
	var g Gate
	if len(b) > 16<<10 || json.Unmarshal(b, &g) != nil {
		m.log.Warn("update: unreadable health gate verdict", "file", m.cfg.GateFile)
		return Gate{}, false
	}
	return g, true
}

// WriteGate writes a health gate verdict durably (shequ-agent health-gate).
func WriteGate(path string, g Gate) error {
	b, err := json.Marshal(g)
	if err != nil {
		return fmt.Errorf("update: gate verdict: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return fmt.Errorf("update: gate verdict: %w", err)
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		return fmt.Errorf("update: gate verdict: %w", err)
	}
	return nil
}

func validOrEmpty(v string) string {
	if protocol.ValidRelease(v) != nil {
		return ""
	}
	return v
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
