package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/shequ/shequ/protocol"
)

// ErrExists means a row with that key is there already.
var ErrExists = errors.New("store: already exists")

// ReleaseRecord is one uploaded kiosk image release.
type ReleaseRecord struct {
	Version    string
	SHA256     string
	Size       int64
	Compatible string
	Build      string
	Notes      string
	UploadedBy string
	UploadedAt time.Time
}

// Ref is the bundle as a media reference for offers.
func (r ReleaseRecord) Ref() protocol.MediaRef {
	return protocol.MediaRef{SHA256: r.SHA256, Kind: protocol.MediaBundle, Size: r.Size}
}

// Rollout states.
const (
	RolloutRunning   = "running"
	RolloutHalted    = "halted"
	RolloutDone      = "done"
	RolloutCancelled = "cancelled"
)

// Stage is one step of a rollout: the kiosks under Targets (org-tree node
// or kiosk ids) not reached by an earlier stage.
type Stage struct {
	Name    string   `json:"name"`
	Targets []string `json:"targets"`
}

// RolloutRecord is a release offered to the org tree stage by stage.
type RolloutRecord struct {
	ID                string
	Release           string
	Stages            []Stage
	Stage             int // index of the current stage
	State             string
	Reason            string
	MaxBadPercent     int
	MinHealthyPercent int
	Soak              time.Duration
	AllowDowngrade    bool
	CreatedBy         string
	CreatedAt         time.Time
	StageStartedAt    time.Time
	StageHealthyAt    time.Time // zero until the current stage is healthy enough
	UpdatedAt         time.Time
}

// KioskUpdate is what the hub knows of one kiosk's updates.
type KioskUpdate struct {
	Kiosk    string
	Epoch    int64
	Slot     string
	Version  string // release of the booted slot
	Release  string // release offered, as the kiosk reports it
	State    protocol.UpdateState
	Percent  int
	Reason   string
	StatusAt time.Time // zero: the kiosk never sent an update status

	ReportRollout string
	ReportRelease string
	ReportState   protocol.UpdateState
	ReportReason  string
	ReportAt      time.Time

	OfferSeq     int64
	OfferRollout string
	OfferRelease string
}

// Supported reports whether the kiosk's agent takes updates: it sent an
// update status that is not "unsupported".
func (k KioskUpdate) Supported() bool {
	return !k.StatusAt.IsZero() && k.State != protocol.UpdateUnsupported
}

// InsertRelease stores a release; ErrExists if its version is there.
func (s *SQLite) InsertRelease(ctx context.Context, r ReleaseRecord) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO releases
		(version, sha256, size, compatible, build, notes, uploaded_by, uploaded_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
		r.Version, r.SHA256, r.Size, r.Compatible, r.Build, r.Notes, r.UploadedBy, r.UploadedAt.UnixNano())
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return fmt.Errorf("store: release %s: %w", r.Version, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: insert release %s: %w", r.Version, err)
	}
	return nil
}

const releaseCols = `version, sha256, size, compatible, build, notes, uploaded_by, uploaded_at`

func scanRelease(sc scanner) (ReleaseRecord, error) {
	var r ReleaseRecord
	var at int64
	err := sc.Scan(&r.Version, &r.SHA256, &r.Size, &r.Compatible, &r.Build, &r.Notes, &r.UploadedBy, &at)
	r.UploadedAt = time.Unix(0, at).UTC()
	return r, err
}

// Release returns one release, or ErrNotFound.
func (s *SQLite) Release(ctx context.Context, version string) (ReleaseRecord, error) {
	return queryOne(ctx, s.db, "release "+version, scanRelease, `SELECT `+releaseCols+` FROM releases WHERE version = ?`, version)
}

// Releases returns every release, newest upload first.
func (s *SQLite) Releases(ctx context.Context) ([]ReleaseRecord, error) {
	return queryAll(ctx, s.db, "list releases", scanRelease, `SELECT `+releaseCols+` FROM releases ORDER BY uploaded_at DESC, version`)
}

// CreateRollout stores a new rollout; ErrExists if its id is taken.
func (s *SQLite) CreateRollout(ctx context.Context, r RolloutRecord) error {
	stages, err := json.Marshal(r.Stages)
	if err != nil {
		return fmt.Errorf("store: rollout %s: stages: %w", r.ID, err)
	}
	_, err = s.db.ExecContext(ctx, `INSERT INTO rollouts
		(id, release, stages, stage, state, reason, max_bad_percent, min_healthy_percent, soak_seconds, allow_downgrade,
		 created_by, created_at, stage_started_at, stage_healthy_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		r.ID, r.Release, string(stages), r.Stage, r.State, r.Reason, r.MaxBadPercent, r.MinHealthyPercent,
		int64(r.Soak/time.Second), r.AllowDowngrade, r.CreatedBy, r.CreatedAt.UnixNano(), r.StageStartedAt.UnixNano(),
		nanos(r.StageHealthyAt), r.UpdatedAt.UnixNano())
	if err != nil && strings.Contains(err.Error(), "UNIQUE") {
		return fmt.Errorf("store: rollout %s: %w", r.ID, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("store: create rollout %s: %w", r.ID, err)
	}
	return nil
}

// SaveRollout writes a rollout's progress: stage, state, reason and times.
func (s *SQLite) SaveRollout(ctx context.Context, r RolloutRecord) error {
	res, err := s.db.ExecContext(ctx, `UPDATE rollouts SET stage = ?, state = ?, reason = ?, stage_started_at = ?,
		stage_healthy_at = ?, updated_at = ? WHERE id = ?`,
		r.Stage, r.State, r.Reason, r.StageStartedAt.UnixNano(), nanos(r.StageHealthyAt), r.UpdatedAt.UnixNano(), r.ID)
	if err != nil {
		return fmt.Errorf("store: save rollout %s: %w", r.ID, err)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("store: save rollout %s: %w", r.ID, errors.Join(err, ErrNotFound))
	}
	return nil
}

const rolloutCols = `id, release, stages, stage, state, reason, max_bad_percent, min_healthy_percent, soak_seconds,
	allow_downgrade, created_by, created_at, stage_started_at, stage_healthy_at, updated_at`

func scanRollout(sc scanner) (RolloutRecord, error) {
	var (
		r                               RolloutRecord
		stages                          string
		soak, created, started, updated int64
		healthy                         sql.NullInt64
	)
	err := sc.Scan(&r.ID, &r.Release, &stages, &r.Stage, &r.State, &r.Reason, &r.MaxBadPercent, &r.MinHealthyPercent,
		&soak, &r.AllowDowngrade, &r.CreatedBy, &created, &started, &healthy, &updated)
	if err != nil {
		return r, err
	}
	if err := json.Unmarshal([]byte(stages), &r.Stages); err != nil {
		return r, fmt.Errorf("rollout %s: stages: %w", r.ID, err)
	}
	r.Soak = time.Duration(soak) * time.Second
	r.CreatedAt, r.StageStartedAt, r.UpdatedAt = time.Unix(0, created).UTC(), time.Unix(0, started).UTC(), time.Unix(0, updated).UTC()
	r.StageHealthyAt = fromNanos(healthy)
	return r, nil
}

// Rollout returns one rollout, or ErrNotFound.
func (s *SQLite) Rollout(ctx context.Context, id string) (RolloutRecord, error) {
	return queryOne(ctx, s.db, "rollout "+id, scanRollout, `SELECT `+rolloutCols+` FROM rollouts WHERE id = ?`, id)
}

// Rollouts returns every rollout, newest first.
func (s *SQLite) Rollouts(ctx context.Context) ([]RolloutRecord, error) {
	return queryAll(ctx, s.db, "list rollouts", scanRollout, `SELECT `+rolloutCols+` FROM rollouts ORDER BY created_at DESC, id`)
}

// ApplyUpdateStatus records a kiosk's live update status; one of an older
// epoch than the last applied is ignored. It reports whether it applied.
func (s *SQLite) ApplyUpdateStatus(ctx context.Context, u protocol.UpdateStatus, at time.Time) (bool, error) {
	res, err := s.db.ExecContext(ctx, `INSERT INTO kiosk_updates (kiosk, epoch, slot, version, release, state, percent, reason, status_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)
		ON CONFLICT (kiosk) DO UPDATE SET epoch = ?2, slot = ?3, version = ?4, release = ?5, state = ?6, percent = ?7,
			reason = ?8, status_at = ?9
		WHERE ?2 >= kiosk_updates.epoch`,
		u.Kiosk, u.Epoch, u.Slot, u.Version, u.Release, string(u.State), u.Percent, u.Reason, at.UnixNano())
	if err != nil {
		return false, fmt.Errorf("store: update status of %s: %w", u.Kiosk, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return false, fmt.Errorf("store: update status of %s: %w", u.Kiosk, err)
	}
	return n > 0, nil
}

// InsertUpdateReport stores an update record once by id and makes it the
// kiosk's last report unless a later one is there. duplicate reports that
// the id was stored before.
func (s *SQLite) InsertUpdateReport(ctx context.Context, id string, r protocol.UpdateReport, receivedAt time.Time) (duplicate bool, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return false, fmt.Errorf("store: update report %s: begin: %w", id, err)
	}
	defer rollback(tx, &err)
	res, err := tx.ExecContext(ctx, `INSERT INTO update_reports (id, kiosk, rollout, release, state, slot, version, reason, at, received_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (id) DO NOTHING`,
		id, r.Kiosk, r.Rollout, r.Release, string(r.State), r.Slot, r.Version, r.Reason, r.At.UnixNano(), receivedAt.UnixNano())
	if err != nil {
		return false, fmt.Errorf("store: update report %s: %w", id, err)
	}
	if n, err := res.RowsAffected(); err != nil {
		return false, fmt.Errorf("store: update report %s: %w", id, err)
	} else if n == 0 {
		return true, nil
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO kiosk_updates (kiosk, report_rollout, report_release, report_state, report_reason, report_at)
		VALUES (?1, ?2, ?3, ?4, ?5, ?6)
		ON CONFLICT (kiosk) DO UPDATE SET report_rollout = ?2, report_release = ?3, report_state = ?4, report_reason = ?5, report_at = ?6
		WHERE kiosk_updates.report_at IS NULL OR ?6 >= kiosk_updates.report_at`,
		r.Kiosk, r.Rollout, r.Release, string(r.State), r.Reason, r.At.UnixNano()); err != nil {
		return false, fmt.Errorf("store: update report %s: last report: %w", id, err)
	}
	if err := tx.Commit(); err != nil {
		return false, fmt.Errorf("store: update report %s: commit: %w", id, err)
	}
	return false, nil
}

// UpdateReports returns the update records of a rollout, oldest first.
func (s *SQLite) UpdateReports(ctx context.Context, rollout string) ([]protocol.UpdateReport, error) {
	return queryAll(ctx, s.db, "list update reports", func(sc scanner) (protocol.UpdateReport, error) {
		var r protocol.UpdateReport
		var at int64
		err := sc.Scan(&r.Kiosk, &r.Rollout, &r.Release, &r.State, &r.Slot, &r.Version, &r.Reason, &at)
		r.At = time.Unix(0, at).UTC()
		return r, err
	}, `SELECT kiosk, rollout, release, state, slot, version, reason, at FROM update_reports WHERE rollout = ? ORDER BY at, id`, rollout)
}

// SetOffer records the offer last published to a kiosk.
func (s *SQLite) SetOffer(ctx context.Context, kiosk string, seq int64, rollout, release string) error {
	_, err := s.db.ExecContext(ctx, `INSERT INTO kiosk_updates (kiosk, offer_seq, offer_rollout, offer_release) VALUES (?1, ?2, ?3, ?4)
		ON CONFLICT (kiosk) DO UPDATE SET offer_seq = ?2, offer_rollout = ?3, offer_release = ?4`, kiosk, seq, rollout, release)
	if err != nil {
		return fmt.Errorf("store: offer to %s: %w", kiosk, err)
	}
	return nil
}

const kioskUpdateCols = `kiosk, epoch, slot, version, release, state, percent, reason, status_at,
	report_rollout, report_release, report_state, report_reason, report_at, offer_seq, offer_rollout, offer_release`

func scanKioskUpdate(sc scanner) (KioskUpdate, error) {
	var (
		k                  KioskUpdate
		statusAt, reportAt sql.NullInt64
	)
	err := sc.Scan(&k.Kiosk, &k.Epoch, &k.Slot, &k.Version, &k.Release, &k.State, &k.Percent, &k.Reason, &statusAt,
		&k.ReportRollout, &k.ReportRelease, &k.ReportState, &k.ReportReason, &reportAt, &k.OfferSeq, &k.OfferRollout, &k.OfferRelease)
	k.StatusAt, k.ReportAt = fromNanos(statusAt), fromNanos(reportAt)
	return k, err
}

// KioskUpdates returns what the hub knows of every kiosk's updates, by
// kiosk id (kiosks that never sent anything about updates are absent).
func (s *SQLite) KioskUpdates(ctx context.Context) (map[string]KioskUpdate, error) {
	all, err := queryAll(ctx, s.db, "list kiosk updates", scanKioskUpdate, `SELECT `+kioskUpdateCols+` FROM kiosk_updates`)
	if err != nil {
		return nil, err
	}
	out := make(map[string]KioskUpdate, len(all))
	for _, k := range all {
		out[k.Kiosk] = k
	}
	return out, nil
}
