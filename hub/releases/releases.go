// Package releases is the hub's side of kiosk image updates: releases
// (signed RAUC bundles, checked against the update CA when uploaded and
// kept in the media store by hash), rollouts that offer a release to the
// org tree stage by stage, and the controller that moves a rollout on when
// a stage is healthy and halts it when too many of a stage's kiosks refuse,
// fail or roll back the release (docs/updates.md).
//
// A kiosk is offered a release through a signed, retained UpdateOffer on
// its down/{kiosk}/release topic, and only once its agent has sent an
// update status (older agents do not know the channel). The bundle then
// travels like any media file, which the media sender serves to the
// kiosks it is offered to (Offered).
package releases

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/shequ/shequ/hub/media"
	"github.com/shequ/shequ/hub/orgtree"
	"github.com/shequ/shequ/hub/store"
	"github.com/shequ/shequ/protocol"
)

// Store is what the service needs from the hub database.
type Store interface {
	InsertRelease(ctx context.Context, r store.ReleaseRecord) error
	Release(ctx context.Context, version string) (store.ReleaseRecord, error)
	Releases(ctx context.Context) ([]store.ReleaseRecord, error)
	CreateRollout(ctx context.Context, r store.RolloutRecord) error
	SaveRollout(ctx context.Context, r store.RolloutRecord) error
	Rollout(ctx context.Context, id string) (store.RolloutRecord, error)
	Rollouts(ctx context.Context) ([]store.RolloutRecord, error)
	ApplyUpdateStatus(ctx context.Context, u protocol.UpdateStatus, at time.Time) (bool, error)
	InsertUpdateReport(ctx context.Context, id string, r protocol.UpdateReport, at time.Time) (bool, error)
	UpdateReports(ctx context.Context, rollout string) ([]protocol.UpdateReport, error)
	SetOffer(ctx context.Context, kiosk string, seq int64, rollout, release string) error
	KioskUpdates(ctx context.Context) (map[string]store.KioskUpdate, error)
}

var _ Store = (*store.SQLite)(nil)

// Inspector checks a bundle's signature and reads its manifest (RAUC).
type Inspector interface {
	Inspect(ctx context.Context, path string) (Info, error)
}

// Publisher publishes offers (hub/fleet).
type Publisher interface {
	PublishOffer(ctx context.Context, o protocol.UpdateOffer) error
}

// Defaults.
const (
	DefaultCompatible        = "shequ-kiosk-amd64"
	DefaultMaxUpload         = 2 << 30
	DefaultMaxBadPercent     = 10
	DefaultMinHealthyPercent = 90
	DefaultSoak              = 30 * time.Minute
	MaxStages                = 10
	MaxNotes                 = 2000
)

// Errors a caller caused; the HTTP layers answer 400, 404 or 409.
var (
	ErrBadRequest = errors.New("releases: bad request")
	ErrNotFound   = errors.New("releases: not found")
	ErrConflict   = errors.New("releases: conflict")
)

// Config configures the service.
type Config struct {
	Store      Store         // required
	Files      *media.Files  // required: bundles are kept with the media
	Tree       *orgtree.Tree // required
	Inspector  Inspector     // required
	Compatible string        // the RAUC compatible of kiosk images; default DefaultCompatible
	MaxUpload  int64         // default DefaultMaxUpload (protocol.MaxMediaSize at most)
	// Audit records changes (release.upload, rollout.start, rollout.halt,
	// rollout.resume, rollout.cancel, rollout.stage, rollout.done).
	Audit func(ctx context.Context, action, object string, before, after any)
	// Changed is called after a change that needs a Step (a new rollout,
	// a report); the hub's loop runs it. nil: call Step yourself.
	Changed func()
	Now     func() time.Time
}

// Service keeps releases and drives rollouts.
type Service struct {
	cfg Config
	log *slog.Logger

	step sync.Mutex // one Step at a time

	mu      sync.RWMutex
	offered map[string]string // kiosk → bundle sha it is offered
}

// New checks cfg and returns a service.
func New(cfg Config, log *slog.Logger) (*Service, error) {
	if cfg.Store == nil || cfg.Files == nil || cfg.Tree == nil || cfg.Inspector == nil {
		return nil, errors.New("releases: Store, Files, Tree and Inspector are required")
	}
	if cfg.Compatible == "" {
		cfg.Compatible = DefaultCompatible
	}
	if cfg.MaxUpload <= 0 {
		cfg.MaxUpload = DefaultMaxUpload
	}
	cfg.MaxUpload = min(cfg.MaxUpload, protocol.MaxMediaSize)
	if cfg.Audit == nil {
		cfg.Audit = func(context.Context, string, string, any, any) {}
	}
	if cfg.Changed == nil {
		cfg.Changed = func() {}
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	return &Service{cfg: cfg, log: log, offered: map[string]string{}}, nil
}

// MaxUpload is the largest bundle accepted, in bytes.
func (s *Service) MaxUpload() int64 { return s.cfg.MaxUpload }

// Offered reports whether the kiosk is offered the bundle: only then is it
// served to the kiosk.
func (s *Service) Offered(kiosk, sha string) bool {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return sha != "" && s.offered[kiosk] == sha
}

// UploadAudit is what the audit log records of an upload.
type UploadAudit struct {
	Version string `json:"version"`
	SHA256  string `json:"sha256"`
	Size    int64  `json:"size"`
	Build   string `json:"build,omitempty"`
}

// Upload stores a bundle as a release after checking it as a kiosk would:
// signed by the update CA, verity format, compatible with kiosk images,
// with a Debian version not taken yet. Nothing is kept of a refused
// bundle.
func (s *Service) Upload(ctx context.Context, r io.Reader, notes, actor string) (store.ReleaseRecord, error) {
	if len([]rune(notes)) > MaxNotes {
		return store.ReleaseRecord{}, fmt.Errorf("%w: notes longer than %d characters", ErrBadRequest, MaxNotes)
	}
	t, err := s.cfg.Files.Write(r, s.cfg.MaxUpload)
	if errors.Is(err, media.ErrTooLarge) {
		return store.ReleaseRecord{}, fmt.Errorf("%w: bundle larger than %d bytes", ErrBadRequest, s.cfg.MaxUpload)
	}
	if err != nil {
		return store.ReleaseRecord{}, fmt.Errorf("releases: upload: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			if err := os.Remove(t.Path); err != nil && !errors.Is(err, os.ErrNotExist) {
				s.log.Warn("removing a refused upload failed", "path", t.Path, "err", err)
			}
		}
	}()
	info, err := s.cfg.Inspector.Inspect(ctx, t.Path)
	if errors.Is(err, ErrRefused) {
		return store.ReleaseRecord{}, fmt.Errorf("%w: %w", ErrBadRequest, err)
	}
	if err != nil {
		return store.ReleaseRecord{}, err
	}
	if info.Compatible != s.cfg.Compatible {
		return store.ReleaseRecord{}, fmt.Errorf("%w: bundle is for %q, kiosks are %q", ErrBadRequest, info.Compatible, s.cfg.Compatible)
	}
	if err := protocol.ValidRelease(info.Version); err != nil {
		return store.ReleaseRecord{}, fmt.Errorf("%w: bundle version: %w", ErrBadRequest, err)
	}
	if _, err := s.cfg.Store.Release(ctx, info.Version); err == nil {
		return store.ReleaseRecord{}, fmt.Errorf("%w: release %s exists already", ErrConflict, info.Version)
	}
	if err := s.cfg.Files.Commit(t); err != nil {
		return store.ReleaseRecord{}, fmt.Errorf("releases: upload: %w", err)
	}
	keep = true
	rec := store.ReleaseRecord{Version: info.Version, SHA256: t.SHA256, Size: t.Size, Compatible: info.Compatible,
		Build: info.Build, Notes: notes, UploadedBy: actor, UploadedAt: s.cfg.Now().UTC()}
	if err := s.cfg.Store.InsertRelease(ctx, rec); errors.Is(err, store.ErrExists) {
		return store.ReleaseRecord{}, fmt.Errorf("%w: release %s exists already", ErrConflict, info.Version)
	} else if err != nil {
		return store.ReleaseRecord{}, err
	}
	s.cfg.Audit(ctx, "release.upload", "release:"+rec.Version, nil,
		UploadAudit{Version: rec.Version, SHA256: rec.SHA256, Size: rec.Size, Build: rec.Build})
	s.log.Info("release uploaded", "version", rec.Version, "sha256", rec.SHA256, "size", rec.Size, "by", actor)
	return rec, nil
}

// RolloutRequest starts a rollout. Zero percentages and soak take the
// defaults; a negative soak means none.
type RolloutRequest struct {
	Release           string        `json:"release"`
	Stages            []store.Stage `json:"stages"`
	MaxBadPercent     int           `json:"max_bad_percent,omitempty"`
	MinHealthyPercent int           `json:"min_healthy_percent,omitempty"`
	SoakSeconds       int64         `json:"soak_seconds,omitempty"`
	AllowDowngrade    bool          `json:"allow_downgrade,omitempty"`
}

// Start creates a running rollout of a release; its first stage is offered
// the release at the next Step.
func (s *Service) Start(ctx context.Context, req RolloutRequest, actor string) (store.RolloutRecord, error) {
	if _, err := s.cfg.Store.Release(ctx, req.Release); errors.Is(err, store.ErrNotFound) {
		return store.RolloutRecord{}, fmt.Errorf("%w: no release %q", ErrBadRequest, req.Release)
	} else if err != nil {
		return store.RolloutRecord{}, err
	}
	if len(req.Stages) == 0 || len(req.Stages) > MaxStages {
		return store.RolloutRecord{}, fmt.Errorf("%w: a rollout has 1 to %d stages", ErrBadRequest, MaxStages)
	}
	for i, st := range req.Stages {
		if st.Name == "" || len([]rune(st.Name)) > 64 {
			return store.RolloutRecord{}, fmt.Errorf("%w: stage %d: a name of 1 to 64 characters is required", ErrBadRequest, i+1)
		}
		if len(st.Targets) == 0 {
			return store.RolloutRecord{}, fmt.Errorf("%w: stage %q names no targets", ErrBadRequest, st.Name)
		}
		if _, err := s.resolve(st.Targets); err != nil {
			return store.RolloutRecord{}, fmt.Errorf("%w: stage %q: %w", ErrBadRequest, st.Name, err)
		}
	}
	pct := func(v, def int) (int, error) {
		if v == 0 {
			return def, nil
		}
		if v < 0 || v > 100 {
			return 0, fmt.Errorf("%w: percentage %d out of 0..100", ErrBadRequest, v)
		}
		return v, nil
	}
	maxBad, err := pct(req.MaxBadPercent, DefaultMaxBadPercent)
	if err != nil {
		return store.RolloutRecord{}, err
	}
	minHealthy, err := pct(req.MinHealthyPercent, DefaultMinHealthyPercent)
	if err != nil {
		return store.RolloutRecord{}, err
	}
	soak := time.Duration(req.SoakSeconds) * time.Second
	switch {
	case req.SoakSeconds == 0:
		soak = DefaultSoak
	case req.SoakSeconds < 0:
		soak = 0
	}
	now := s.cfg.Now().UTC()
	r := store.RolloutRecord{
		ID: "r-" + now.Format("20060102-150405.000"), Release: req.Release, Stages: req.Stages, State: store.RolloutRunning,
		MaxBadPercent: maxBad, MinHealthyPercent: minHealthy, Soak: soak, AllowDowngrade: req.AllowDowngrade,
		CreatedBy: actor, CreatedAt: now, StageStartedAt: now, UpdatedAt: now,
	}
	if err := s.cfg.Store.CreateRollout(ctx, r); errors.Is(err, store.ErrExists) {
		return store.RolloutRecord{}, fmt.Errorf("%w: a rollout started this millisecond; try again", ErrConflict)
	} else if err != nil {
		return store.RolloutRecord{}, err
	}
	s.cfg.Audit(ctx, "rollout.start", "rollout:"+r.ID, nil, req)
	s.log.Info("rollout started", "rollout", r.ID, "release", r.Release, "stages", len(r.Stages), "by", actor)
	s.cfg.Changed()
	return r, nil
}

// SetState halts (running → halted), resumes (halted → running) or
// cancels (running or halted → cancelled) a rollout.
func (s *Service) SetState(ctx context.Context, id, state, reason string) (store.RolloutRecord, error) {
	s.step.Lock()
	defer s.step.Unlock()
	r, err := s.cfg.Store.Rollout(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return r, fmt.Errorf("%w: no rollout %q", ErrNotFound, id)
	}
	if err != nil {
		return r, err
	}
	before := r
	ok := false
	switch state {
	case store.RolloutHalted:
		ok = r.State == store.RolloutRunning
	case store.RolloutRunning:
		ok = r.State == store.RolloutHalted
		r.StageHealthyAt = time.Time{}
	case store.RolloutCancelled:
		ok = r.State == store.RolloutRunning || r.State == store.RolloutHalted
	}
	if !ok {
		return r, fmt.Errorf("%w: rollout %s is %s; it cannot become %s", ErrConflict, id, r.State, state)
	}
	r.State, r.Reason, r.UpdatedAt = state, reason, s.cfg.Now().UTC()
	if err := s.cfg.Store.SaveRollout(ctx, r); err != nil {
		return r, err
	}
	action := map[string]string{store.RolloutHalted: "rollout.halt", store.RolloutRunning: "rollout.resume",
		store.RolloutCancelled: "rollout.cancel"}[state]
	s.cfg.Audit(ctx, action, "rollout:"+id, stateAudit{before.State, before.Reason}, stateAudit{r.State, r.Reason})
	s.log.Info("rollout "+state, "rollout", id, "reason", reason)
	s.cfg.Changed()
	return r, nil
}

type stateAudit struct {
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// UpdateStatus records a kiosk's live status (fleet.UpdateHandler).
func (s *Service) UpdateStatus(ctx context.Context, u protocol.UpdateStatus, at time.Time) error {
	applied, err := s.cfg.Store.ApplyUpdateStatus(ctx, u, at)
	if err != nil {
		return err
	}
	if applied && (u.State.Bad() || u.State == protocol.UpdateHealthy) {
		s.cfg.Changed()
	}
	return nil
}

// UpdateReport stores an update record (fleet.UpdateHandler).
func (s *Service) UpdateReport(ctx context.Context, id string, r protocol.UpdateReport, at time.Time) (bool, error) {
	dup, err := s.cfg.Store.InsertUpdateReport(ctx, id, r, at)
	if err == nil && !dup {
		s.cfg.Changed()
	}
	return dup, err
}

// resolve returns the sorted kiosk ids under node or kiosk ids.
func (s *Service) resolve(ids []string) ([]string, error) {
	var targets []protocol.Target
	for _, id := range ids {
		n := s.cfg.Tree.Node(id)
		if n == nil {
			return nil, fmt.Errorf("no org-tree node or kiosk %q", id)
		}
		targets = append(targets, protocol.Target{Level: n.Level, ID: id})
	}
	return s.cfg.Tree.Resolve(targets)
}

// members returns the kiosks of each stage: those its targets reach and no
// earlier stage does.
func (s *Service) members(r store.RolloutRecord) [][]string {
	seen := map[string]bool{}
	out := make([][]string, len(r.Stages))
	for i, st := range r.Stages {
		ks, err := s.resolve(st.Targets)
		if err != nil {
			// The org tree changed under the rollout: that target reaches nobody.
			s.log.Warn("a rollout stage names a node no longer in the org tree", "rollout", r.ID, "stage", st.Name, "err", err)
		}
		for _, k := range ks {
			if !seen[k] {
				seen[k] = true
				out[i] = append(out[i], k)
			}
		}
	}
	return out
}

// Counts summarise a stage.
type Counts struct {
	Kiosks  int `json:"kiosks"`
	Healthy int `json:"healthy"` // running the release, gate passed
	Bad     int `json:"bad"`     // refused, failed or rolled back
	Busy    int `json:"busy"`    // downloading, installing, installed or booted
}

// lastReports returns each kiosk's last update record of a rollout: what
// the kiosk did with this rollout's release, even after a later offer
// (a halted rollout's kiosks are offered the release before again).
func (s *Service) lastReports(ctx context.Context, rollout string) (map[string]protocol.UpdateReport, error) {
	rs, err := s.cfg.Store.UpdateReports(ctx, rollout)
	if err != nil {
		return nil, err
	}
	out := make(map[string]protocol.UpdateReport, len(rs))
	for _, r := range rs {
		out[r.Kiosk] = r // oldest first: the last one wins
	}
	return out, nil
}

// count summarises one stage of a rollout.
func count(kiosks []string, kus map[string]store.KioskUpdate, reports map[string]protocol.UpdateReport, r store.RolloutRecord) Counts {
	c := Counts{Kiosks: len(kiosks)}
	for _, k := range kiosks {
		switch u := kus[k]; {
		case reports[k].State.Bad() || (u.Release == r.Release && u.State.Bad()):
			c.Bad++
		case u.Version == r.Release && (u.State == protocol.UpdateHealthy || u.State == protocol.UpdateIdle):
			c.Healthy++
		case u.Release == r.Release && u.State != protocol.UpdateIdle:
			c.Busy++
		}
	}
	return c
}

// Step moves running rollouts on or halts them, then publishes to every
// kiosk whose offer changed (all supported kiosks when force is set: after
// the broker lost its retained messages).
func (s *Service) Step(ctx context.Context, pub Publisher, force bool) error {
	s.step.Lock()
	defer s.step.Unlock()
	rollouts, err := s.cfg.Store.Rollouts(ctx)
	if err != nil {
		return err
	}
	kus, err := s.cfg.Store.KioskUpdates(ctx)
	if err != nil {
		return err
	}
	now := s.cfg.Now().UTC()
	var errs []error
	members := map[string][][]string{}
	for i := range rollouts {
		r := &rollouts[i]
		members[r.ID] = s.members(*r)
		if r.State != store.RolloutRunning {
			continue
		}
		reports, err := s.lastReports(ctx, r.ID)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if changed := s.advance(ctx, r, members[r.ID], kus, reports, now); changed {
			if err := s.cfg.Store.SaveRollout(ctx, *r); err != nil {
				errs = append(errs, err)
			}
		}
	}
	// Oldest rollout first, so a newer one overrides an older for a kiosk both reach.
	slices.SortStableFunc(rollouts, func(a, b store.RolloutRecord) int { return a.CreatedAt.Compare(b.CreatedAt) })
	releases := map[string]store.ReleaseRecord{}
	for _, k := range s.cfg.Tree.Kiosks() {
		u := kus[k.ID]
		var offer *store.RolloutRecord
		for i := range rollouts {
			r := &rollouts[i]
			if !reached(members[r.ID], r, k.ID) {
				continue
			}
			switch r.State {
			case store.RolloutRunning, store.RolloutDone:
				offer = r
			case store.RolloutHalted, store.RolloutCancelled:
				// A kiosk that runs the release keeps it offered; the others
				// are not started (a download under way stops).
				if u.Version == r.Release {
					offer = r
				}
			}
		}
		o := protocol.UpdateOffer{Kiosk: k.ID}
		if offer != nil {
			rel, ok := releases[offer.Release]
			if !ok {
				if rel, err = s.cfg.Store.Release(ctx, offer.Release); err != nil {
					errs = append(errs, err)
					continue
				}
				releases[offer.Release] = rel
			}
			ref := rel.Ref()
			o.Rollout, o.Release, o.Bundle, o.AllowDowngrade = offer.ID, rel.Version, &ref, offer.AllowDowngrade
		}
		s.mu.Lock()
		if o.Bundle != nil && u.Supported() {
			s.offered[k.ID] = o.Bundle.SHA256
		} else {
			delete(s.offered, k.ID)
		}
		s.mu.Unlock()
		if !u.Supported() {
			continue
		}
		if !force && u.OfferRollout == o.Rollout && u.OfferRelease == o.Release && (u.OfferSeq > 0 || o.Release == "") {
			continue
		}
		o.Seq = max(now.UnixNano(), u.OfferSeq+1)
		if err := pub.PublishOffer(ctx, o); err != nil {
			errs = append(errs, err)
			continue
		}
		if err := s.cfg.Store.SetOffer(ctx, k.ID, o.Seq, o.Rollout, o.Release); err != nil {
			errs = append(errs, err)
			continue
		}
		s.log.Info("update offer published", "kiosk", k.ID, "rollout", o.Rollout, "release", cmp.Or(o.Release, "(withdrawn)"))
	}
	return errors.Join(errs...)
}

// reached reports whether a rollout's stages up to its current one (all of
// them once done) include the kiosk.
func reached(members [][]string, r *store.RolloutRecord, kiosk string) bool {
	last := r.Stage
	if r.State == store.RolloutDone {
		last = len(members) - 1
	}
	for i := 0; i <= last && i < len(members); i++ {
		if slices.Contains(members[i], kiosk) {
			return true
		}
	}
	return false
}

// advance halts a running rollout whose current stage has too many bad
// kiosks, or moves it to its next stage (or done) once the stage has been
// healthy enough for the soak time. It reports whether r changed.
func (s *Service) advance(ctx context.Context, r *store.RolloutRecord, members [][]string, kus map[string]store.KioskUpdate,
	reports map[string]protocol.UpdateReport, now time.Time) bool {
	if r.Stage >= len(members) {
		return false
	}
	st := r.Stages[r.Stage]
	c := count(members[r.Stage], kus, reports, *r)
	ctx = context.WithoutCancel(ctx)
	if c.Kiosks > 0 && c.Bad*100 > r.MaxBadPercent*c.Kiosks {
		before := stateAudit{r.State, r.Reason}
		r.State = store.RolloutHalted
		r.Reason = fmt.Sprintf("stage %q: %d of %d kiosks refused, failed or rolled back the release (limit %d%%)",
			st.Name, c.Bad, c.Kiosks, r.MaxBadPercent)
		r.UpdatedAt = now
		s.cfg.Audit(ctx, "rollout.halt", "rollout:"+r.ID, before, stateAudit{r.State, r.Reason})
		s.log.Warn("rollout halted", "rollout", r.ID, "reason", r.Reason)
		return true
	}
	if c.Healthy*100 < r.MinHealthyPercent*c.Kiosks {
		if !r.StageHealthyAt.IsZero() {
			r.StageHealthyAt, r.UpdatedAt = time.Time{}, now
			return true
		}
		return false
	}
	if r.StageHealthyAt.IsZero() {
		r.StageHealthyAt, r.UpdatedAt = now, now
		if r.Soak > 0 {
			return true
		}
	}
	if now.Sub(r.StageHealthyAt) < r.Soak {
		return false
	}
	done := struct {
		Stage   string `json:"stage"`
		Healthy int    `json:"healthy"`
		Kiosks  int    `json:"kiosks"`
	}{st.Name, c.Healthy, c.Kiosks}
	if r.Stage == len(r.Stages)-1 {
		r.State, r.UpdatedAt = store.RolloutDone, now
		s.cfg.Audit(ctx, "rollout.done", "rollout:"+r.ID, nil, done)
		s.log.Info("rollout done", "rollout", r.ID, "release", r.Release)
		return true
	}
	r.Stage++
	r.StageStartedAt, r.StageHealthyAt, r.UpdatedAt = now, time.Time{}, now
	s.cfg.Audit(ctx, "rollout.stage", "rollout:"+r.ID, done, struct {
		Stage string `json:"stage"`
	}{r.Stages[r.Stage].Name})
	s.log.Info("rollout moved to its next stage", "rollout", r.ID, "stage", r.Stages[r.Stage].Name)
	return true
}

// StageView is one stage of a rollout as the console and API show it.
type StageView struct {
	Name    string   `json:"name"`
	Targets []string `json:"targets"`
	State   string   `json:"state"` // done, current, waiting
	Counts
}

// KioskView is one kiosk's update as the console and API show it.
type KioskView struct {
	Kiosk    string               `json:"kiosk"`
	Stage    string               `json:"stage,omitempty"`
	Slot     string               `json:"slot,omitempty"`
	Version  string               `json:"version,omitempty"`
	State    protocol.UpdateState `json:"state,omitempty"`
	Percent  int                  `json:"percent,omitempty"`
	Reason   string               `json:"reason,omitempty"`
	StatusAt time.Time            `json:"status_at,omitzero"`
}

// RolloutView is a rollout with its progress.
type RolloutView struct {
	ID                string      `json:"id"`
	Release           string      `json:"release"`
	State             string      `json:"state"`
	Reason            string      `json:"reason,omitempty"`
	Stage             int         `json:"stage"`
	Stages            []StageView `json:"stages"`
	MaxBadPercent     int         `json:"max_bad_percent"`
	MinHealthyPercent int         `json:"min_healthy_percent"`
	SoakSeconds       int64       `json:"soak_seconds"`
	AllowDowngrade    bool        `json:"allow_downgrade,omitempty"`
	CreatedBy         string      `json:"created_by"`
	CreatedAt         time.Time   `json:"created_at"`
	UpdatedAt         time.Time   `json:"updated_at"`
	Kiosks            []KioskView `json:"kiosks"`
}

// View returns a rollout with the progress of each stage and kiosk.
func (s *Service) View(ctx context.Context, id string) (RolloutView, error) {
	r, err := s.cfg.Store.Rollout(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return RolloutView{}, fmt.Errorf("%w: no rollout %q", ErrNotFound, id)
	}
	if err != nil {
		return RolloutView{}, err
	}
	kus, err := s.cfg.Store.KioskUpdates(ctx)
	if err != nil {
		return RolloutView{}, err
	}
	reports, err := s.lastReports(ctx, r.ID)
	if err != nil {
		return RolloutView{}, err
	}
	return s.view(r, kus, reports), nil
}

// Views returns every rollout, newest first, with its progress.
func (s *Service) Views(ctx context.Context) ([]RolloutView, error) {
	rs, err := s.cfg.Store.Rollouts(ctx)
	if err != nil {
		return nil, err
	}
	kus, err := s.cfg.Store.KioskUpdates(ctx)
	if err != nil {
		return nil, err
	}
	out := make([]RolloutView, len(rs))
	for i, r := range rs {
		reports, err := s.lastReports(ctx, r.ID)
		if err != nil {
			return nil, err
		}
		out[i] = s.view(r, kus, reports)
	}
	return out, nil
}

func (s *Service) view(r store.RolloutRecord, kus map[string]store.KioskUpdate, reports map[string]protocol.UpdateReport) RolloutView {
	v := RolloutView{ID: r.ID, Release: r.Release, State: r.State, Reason: r.Reason, Stage: r.Stage,
		MaxBadPercent: r.MaxBadPercent, MinHealthyPercent: r.MinHealthyPercent, SoakSeconds: int64(r.Soak / time.Second),
		AllowDowngrade: r.AllowDowngrade, CreatedBy: r.CreatedBy, CreatedAt: r.CreatedAt, UpdatedAt: r.UpdatedAt,
		Kiosks: []KioskView{}}
	for i, ks := range s.members(r) {
		st := StageView{Name: r.Stages[i].Name, Targets: r.Stages[i].Targets, Counts: count(ks, kus, reports, r)}
		switch {
		case r.State == store.RolloutDone || i < r.Stage:
			st.State = "done"
		case i == r.Stage:
			st.State = "current"
		default:
			st.State = "waiting"
		}
		v.Stages = append(v.Stages, st)
		for _, k := range ks {
			u := kus[k]
			kv := KioskView{Kiosk: k, Stage: st.Name, Slot: u.Slot, Version: u.Version, State: u.State, Percent: u.Percent,
				Reason: u.Reason, StatusAt: u.StatusAt}
			if rep, ok := reports[k]; ok && rep.State.Bad() {
				kv.State, kv.Reason = rep.State, rep.Reason
			}
			v.Kiosks = append(v.Kiosks, kv)
		}
	}
	return v
}

// Releases lists the uploaded releases, newest first.
func (s *Service) Releases(ctx context.Context) ([]store.ReleaseRecord, error) {
	return s.cfg.Store.Releases(ctx)
}

// KioskUpdates returns what the hub knows of every kiosk's updates.
func (s *Service) KioskUpdates(ctx context.Context) (map[string]store.KioskUpdate, error) {
	return s.cfg.Store.KioskUpdates(ctx)
}
