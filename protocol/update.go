package protocol

import (
	"fmt"
	"regexp"
	"time"
)

// Software updates of the kiosk image (docs/updates.md).
//
// A release is a signed RAUC bundle of the kiosk image, uploaded at the hub.
// A rollout offers it to kiosks in stages: the hub publishes a signed,
// retained UpdateOffer to each kiosk of a stage that has started, naming the
// bundle as a media file of kind "bundle", so it travels through the same
// verified, resumable transfer as every media file (HTTPS range or MQTT
// chunks). The agent installs it into the other root slot and reboots; the
// new slot is kept only when its health gate passes. Each step that matters
// is an outbox record (UpdateReport); the live state, download progress
// included, goes out with every heartbeat as an UpdateStatus.
//
//	shequ/v3/down/{kiosk}/release        hub → agent  QoS 1, retained  UpdateOffer (signed)
//	shequ/v3/up/{kiosk}/update           agent → hub  QoS 1            UpdateReport (an outbox record, acknowledged)
//	shequ/v3/up/{kiosk}/update_status    agent → hub  QoS 0            UpdateStatus
//
// These are channels of their own, so no existing message changed: an agent
// without update support drops the offer as a topic it does not know.

// MediaBundle is the media kind of an update bundle: it is never played.
const MediaBundle MediaKind = "bundle"

// UpdateState is where a kiosk is with its update.
type UpdateState string

// Update states. Idle: on the offered release, or none offered. The last
// five are reported as records; the others only in heartbeats.
const (
	UpdateIdle        UpdateState = "idle"
	UpdateUnsupported UpdateState = "unsupported" // no A/B update engine on this device
	UpdateDownloading UpdateState = "downloading" // the bundle is being fetched (Percent)
	UpdateInstalling  UpdateState = "installing"  // writing the other slot (Percent)
	UpdateInstalled   UpdateState = "installed"   // written; rebooting into it
	UpdateBooted      UpdateState = "booted"      // running the new slot, its health gate not passed yet
	UpdateHealthy     UpdateState = "healthy"     // the new slot passed its health gate and is kept
	UpdateRefused     UpdateState = "refused"     // the bundle was refused (signature, downgrade, compatibility)
	UpdateFailed      UpdateState = "failed"      // the download or the install failed
	UpdateRolledBack  UpdateState = "rolled_back" // the new slot failed its gate; back on the previous one
)

// UpdateStates lists every update state.
var UpdateStates = []UpdateState{UpdateIdle, UpdateUnsupported, UpdateDownloading, UpdateInstalling,
	UpdateInstalled, UpdateBooted, UpdateHealthy, UpdateRefused, UpdateFailed, UpdateRolledBack}

// Bad reports whether a state counts against a rollout stage.
func (s UpdateState) Bad() bool {
	return s == UpdateRefused || s == UpdateFailed || s == UpdateRolledBack
}

// Limits of update messages (whole envelopes).
const (
	MaxUpdateSize       = 2 << 10
	MaxUpdateOfferSize  = 2 << 10
	MaxUpdateStatusSize = 2 << 10
)

// Slots of the kiosk image's A/B layout.
var Slots = []string{"A", "B"}

// releaseRE is a Debian version, as packaging/image/bundle.sh requires.
var releaseRE = regexp.MustCompile(`^[0-9][A-Za-z0-9.+~-]*$`)

// ValidRelease checks a release version.
func ValidRelease(s string) error {
	if len(s) > MaxVersionText || !releaseRE.MatchString(s) {
		return fmt.Errorf("%w: release %q is not a Debian version of at most %d characters", ErrInvalid, s, MaxVersionText)
	}
	return nil
}

// UpdateOffer is the release a kiosk should run. Seq grows with every offer
// the hub makes to the kiosk (it is the offer's time in nanoseconds), so an
// older offer replayed by someone with access to the broker is ignored. An
// offer with no Release withdraws the previous one (a rollout halted before
// it reached the kiosk): the kiosk stays on what it runs.
type UpdateOffer struct {
	Kiosk   string    `json:"kiosk"`
	Seq     int64     `json:"seq"`
	Rollout string    `json:"rollout,omitempty"` // id of the rollout that offers it
	Release string    `json:"release,omitempty"` // the bundle's version
	Bundle  *MediaRef `json:"bundle,omitempty"`  // kind "bundle"
	// AllowDowngrade lets the kiosk install a release older than the one
	// it runs (a release made to undo a bad one).
	AllowDowngrade bool `json:"allow_downgrade,omitempty"`
}

// Validate checks an update offer.
func (u UpdateOffer) Validate() error {
	if err := id("kiosk", u.Kiosk); err != nil {
		return err
	}
	if u.Seq <= 0 {
		return fmt.Errorf("%w: update seq must be positive, got %d", ErrInvalid, u.Seq)
	}
	if u.Release == "" {
		if u.Rollout != "" || u.Bundle != nil || u.AllowDowngrade {
			return fmt.Errorf("%w: a withdrawal (no release) carries no rollout, bundle or downgrade", ErrInvalid)
		}
		return nil
	}
	if err := firstErr(id("rollout", u.Rollout), ValidRelease(u.Release)); err != nil {
		return err
	}
	if u.Bundle == nil {
		return fmt.Errorf("%w: update bundle is required", ErrInvalid)
	}
	if u.Bundle.Kind != MediaBundle {
		return fmt.Errorf("%w: update bundle kind %q, want %q", ErrInvalid, u.Bundle.Kind, MediaBundle)
	}
	if err := ValidSHA256(u.Bundle.SHA256); err != nil {
		return err
	}
	if u.Bundle.Size <= 0 || u.Bundle.Size > MaxMediaSize {
		return fmt.Errorf("%w: bundle size %d out of 1..%d", ErrInvalid, u.Bundle.Size, int64(MaxMediaSize))
	}
	return nil
}

// UpdateStatus is a kiosk's live update state, sent with every heartbeat.
type UpdateStatus struct {
	Kiosk   string      `json:"kiosk"`
	Epoch   int64       `json:"epoch"`             // as in the heartbeat
	Slot    string      `json:"slot,omitempty"`    // booted slot, A or B; empty when unsupported
	Version string      `json:"version,omitempty"` // release of the booted slot
	Release string      `json:"release,omitempty"` // the release offered, if any
	State   UpdateState `json:"state"`
	Percent int         `json:"percent,omitempty"` // of the download or install
	Reason  string      `json:"reason,omitempty"`  // why refused, failed or rolled back
}

// Validate checks an update status.
func (u UpdateStatus) Validate() error {
	if u.Epoch <= 0 {
		return fmt.Errorf("%w: epoch must be positive, got %d", ErrInvalid, u.Epoch)
	}
	if err := firstErr(id("kiosk", u.Kiosk), slot(u.Slot), oneOf("update state", u.State, UpdateStates),
		text("update reason", u.Reason, false, MaxReason)); err != nil {
		return err
	}
	if u.Version != "" {
		if err := ValidRelease(u.Version); err != nil {
			return err
		}
	}
	if u.Release != "" {
		if err := ValidRelease(u.Release); err != nil {
			return err
		}
	}
	if u.Percent < 0 || u.Percent > 100 {
		return fmt.Errorf("%w: update percent %d out of 0..100", ErrInvalid, u.Percent)
	}
	return nil
}

func slot(s string) error {
	if s == "" {
		return nil
	}
	return oneOf("slot", s, Slots)
}

// UpdateReport is one step of a kiosk's update that the hub must learn of,
// sent through the outbox: installed, healthy, refused, failed or rolled
// back.
type UpdateReport struct {
	Kiosk   string      `json:"kiosk"`
	Rollout string      `json:"rollout"`
	Release string      `json:"release"`
	State   UpdateState `json:"state"`
	Slot    string      `json:"slot,omitempty"`    // the slot the kiosk runs after this step
	Version string      `json:"version,omitempty"` // the release of that slot
	Reason  string      `json:"reason,omitempty"`
	At      time.Time   `json:"at"`
}

// ReportedUpdateStates are the states an UpdateReport may carry.
var ReportedUpdateStates = []UpdateState{UpdateInstalled, UpdateHealthy, UpdateRefused, UpdateFailed, UpdateRolledBack}

// Validate checks an update report.
func (r UpdateReport) Validate() error {
	if err := firstErr(id("kiosk", r.Kiosk), id("rollout", r.Rollout), ValidRelease(r.Release),
		oneOf("update state", r.State, ReportedUpdateStates), slot(r.Slot),
		text("update reason", r.Reason, false, MaxReason)); err != nil {
		return err
	}
	if r.Version != "" {
		if err := ValidRelease(r.Version); err != nil {
			return err
		}
	}
	if r.State.Bad() && r.Reason == "" {
		return fmt.Errorf("%w: a %s update report needs a reason", ErrInvalid, r.State)
	}
	if r.At.IsZero() {
		return fmt.Errorf("%w: update report at is required", ErrInvalid)
	}
	return nil
}

// DecodeUpdateOffer decodes an update offer; check its signature with
// VerifyEnvelope.
func DecodeUpdateOffer(data []byte) (Envelope, UpdateOffer, error) {
	return decodeAs[UpdateOffer](data, TypeUpdateOffer)
}

// DecodeUpdateStatus decodes an update status.
func DecodeUpdateStatus(data []byte) (Envelope, UpdateStatus, error) {
	return decodeAs[UpdateStatus](data, TypeUpdateStatus)
}

// DecodeUpdate decodes an update record.
func DecodeUpdate(data []byte) (Envelope, UpdateReport, error) {
	return decodeAs[UpdateReport](data, TypeUpdate)
}
