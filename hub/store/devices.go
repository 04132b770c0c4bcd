package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Enrolment errors (wrapped).
var (
	// ErrClaimUnknown means no claim code matches.
	ErrClaimUnknown = errors.New("store: unknown claim code")
	// ErrClaimUsed means the claim code was used already.
	ErrClaimUsed = errors.New("store: claim code already used")
	// ErrClaimExpired means the claim code expired.
	ErrClaimExpired = errors.New("store: claim code expired")
	// ErrNoSlot means every kiosk of the claim's community has an enrolled device.
	ErrNoSlot = errors.New("store: no free kiosk slot in the community")
)

// Device statuses.
const (
	DeviceEnrolled = "enrolled"
	DeviceRevoked  = "revoked"
	DeviceReplaced = "replaced"
)

// Claim is a stored claim code (its hash only).
type Claim struct {
	ID        string
	CodeHash  string
	Community string
	Kiosk     string // empty: any free kiosk of the community
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero while unused
	Device    string    // the device that used it
}

// Device is an enrolled (or formerly enrolled) device.
type Device struct {
	ID              string
	Kiosk           string
	Community       string
	Status          string
	PublicKey       string
	KeyID           string
	HardwareID      string
	SoftwareVersion string
	MQTTSHA256      string
	MQTTMosquitto   string
	Claim           string
	EnrolledAt      time.Time
	RevokedAt       time.Time // revoked or replaced at; zero while enrolled
}

// CreateClaim stores a new claim code.
func (s *SQLite) CreateClaim(ctx context.Context, c Claim) error {
	if _, err := s.db.ExecContext(ctx, `INSERT INTO claims (id, code_hash, community, kiosk, created_at, expires_at)
		VALUES (?, ?, ?, ?, ?, ?)`, c.ID, c.CodeHash, c.Community, c.Kiosk, nanos(c.CreatedAt), nanos(c.ExpiresAt)); err != nil {
		return fmt.Errorf("store: create claim: %w", err)
	}
	return nil
}

const claimCols = `id, code_hash, community, kiosk, created_at, expires_at, used_at, device`

func scanClaim(sc scanner) (Claim, error) {
	var (
		c                  Claim
		created, exp, used sql.NullInt64
	)
	err := sc.Scan(&c.ID, &c.CodeHash, &c.Community, &c.Kiosk, &created, &exp, &used, &c.Device)
	c.CreatedAt, c.ExpiresAt, c.UsedAt = fromNanos(created), fromNanos(exp), fromNanos(used)
	return c, err
}

// Claims returns every claim, newest first.
func (s *SQLite) Claims(ctx context.Context) ([]Claim, error) {
	return queryAll(ctx, s.db, "list claims", scanClaim, `SELECT `+claimCols+` FROM claims ORDER BY created_at DESC, id`)
}

// EnrolRequest is what Enrol needs.
type EnrolRequest struct {
	CodeHash string
	Now      time.Time
	// Device is the new device; Enrol sets its Kiosk, Community, Claim,
	// Status and EnrolledAt.
	Device Device
	// Slots returns the kiosks of a community in order.
	Slots func(community string) []string
}

// Enrol checks the claim code, picks the kiosk slot (the claim's kiosk, or
// the first kiosk of its community without an enrolled device), stores the
// device, marks any device enrolled in that slot before as replaced and the
// claim as used, all in one transaction. It returns the new device and the
// replaced ones. On error nothing changes.
func (s *SQLite) Enrol(ctx context.Context, r EnrolRequest) (dev Device, replaced []Device, err error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return dev, nil, fmt.Errorf("store: enrol: begin: %w", err)
	}
	defer rollback(tx, &err)
	c, err := scanClaim(tx.QueryRowContext(ctx, `SELECT `+claimCols+` FROM claims WHERE code_hash = ?`, r.CodeHash))
	switch {
	case errors.Is(err, sql.ErrNoRows):
		return dev, nil, ErrClaimUnknown
	case err != nil:
		return dev, nil, fmt.Errorf("store: enrol: claim: %w", err)
	case !c.UsedAt.IsZero():
		return dev, nil, ErrClaimUsed
	case !r.Now.Before(c.ExpiresAt):
		return dev, nil, ErrClaimExpired
	}
	kiosk := c.Kiosk
	if kiosk == "" {
		taken := map[string]bool{}
		rows, err := tx.QueryContext(ctx, `SELECT kiosk FROM devices WHERE status = 'enrolled' AND community = ?`, c.Community)
		if err != nil {
			return dev, nil, fmt.Errorf("store: enrol: slots: %w", err)
		}
		for rows.Next() {
			var k string
			if err := rows.Scan(&k); err != nil {
				return dev, nil, errors.Join(fmt.Errorf("store: enrol: slots: %w", err), rows.Close())
			}
			taken[k] = true
		}
		if err := errors.Join(rows.Err(), rows.Close()); err != nil {
			return dev, nil, fmt.Errorf("store: enrol: slots: %w", err)
		}
		for _, k := range r.Slots(c.Community) {
			if !taken[k] {
				kiosk = k
				break
			}
		}
		if kiosk == "" {
			return dev, nil, ErrNoSlot
		}
	}
	rows, err := tx.QueryContext(ctx, `SELECT `+deviceCols+` FROM devices WHERE status = 'enrolled' AND kiosk = ?`, kiosk)
	if err != nil {
		return dev, nil, fmt.Errorf("store: enrol: previous device: %w", err)
	}
	for rows.Next() {
		d, err := scanDevice(rows)
		if err != nil {
			return dev, nil, errors.Join(fmt.Errorf("store: enrol: previous device: %w", err), rows.Close())
		}
		d.Status, d.RevokedAt = DeviceReplaced, r.Now.UTC()
		replaced = append(replaced, d)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return dev, nil, fmt.Errorf("store: enrol: previous device: %w", err)
	}
	if _, err := tx.ExecContext(ctx, `UPDATE devices SET status = 'replaced', revoked_at = ? WHERE status = 'enrolled' AND kiosk = ?`,
		nanos(r.Now), kiosk); err != nil {
		return dev, nil, fmt.Errorf("store: enrol: replace: %w", err)
	}
	dev = r.Device
	dev.Kiosk, dev.Community, dev.Claim, dev.Status, dev.EnrolledAt = kiosk, c.Community, c.ID, DeviceEnrolled, r.Now.UTC()
	if _, err := tx.ExecContext(ctx, `INSERT INTO devices (`+deviceCols+`) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
		dev.ID, dev.Kiosk, dev.Community, dev.Status, dev.PublicKey, dev.KeyID, dev.HardwareID, dev.SoftwareVersion,
		dev.MQTTSHA256, dev.MQTTMosquitto, dev.Claim, nanos(dev.EnrolledAt)); err != nil {
		return dev, nil, fmt.Errorf("store: enrol: insert device: %w", err)
	}
	res, err := tx.ExecContext(ctx, `UPDATE claims SET used_at = ?, device = ? WHERE id = ? AND used_at IS NULL`,
		nanos(r.Now), dev.ID, c.ID)
	if err != nil {
		return dev, nil, fmt.Errorf("store: enrol: use claim: %w", err)
	}
	if n, err := res.RowsAffected(); err != nil || n != 1 {
		return dev, nil, errors.Join(ErrClaimUsed, err)
	}
	if err := tx.Commit(); err != nil {
		return dev, nil, fmt.Errorf("store: enrol: commit: %w", err)
	}
	return dev, replaced, nil
}

const deviceCols = `id, kiosk, community, status, public_key, key_id, hardware_id, software_version,
	mqtt_sha256, mqtt_mosquitto, claim, enrolled_at, revoked_at`

func scanDevice(sc scanner) (Device, error) {
	var (
		d                 Device
		enrolled, revoked sql.NullInt64
	)
	err := sc.Scan(&d.ID, &d.Kiosk, &d.Community, &d.Status, &d.PublicKey, &d.KeyID, &d.HardwareID, &d.SoftwareVersion,
		&d.MQTTSHA256, &d.MQTTMosquitto, &d.Claim, &enrolled, &revoked)
	d.EnrolledAt, d.RevokedAt = fromNanos(enrolled), fromNanos(revoked)
	return d, err
}

// Devices returns every device, oldest enrolment first.
func (s *SQLite) Devices(ctx context.Context) ([]Device, error) {
	return queryAll(ctx, s.db, "list devices", scanDevice, `SELECT `+deviceCols+` FROM devices ORDER BY enrolled_at, id`)
}

// Device returns one device, or ErrNotFound.
func (s *SQLite) Device(ctx context.Context, id string) (Device, error) {
	return queryOne(ctx, s.db, "device "+id, scanDevice, `SELECT `+deviceCols+` FROM devices WHERE id = ?`, id)
}

// RevokeDevice marks an enrolled device revoked at t and returns it, with
// revoked true. A device already revoked or replaced is returned as it is,
// with revoked false: nothing changed, so nobody must be disconnected.
func (s *SQLite) RevokeDevice(ctx context.Context, id string, t time.Time) (d Device, revoked bool, err error) {
	res, err := s.db.ExecContext(ctx, `UPDATE devices SET status = 'revoked', revoked_at = ? WHERE id = ? AND status = 'enrolled'`,
		nanos(t), id)
	if err != nil {
		return Device{}, false, fmt.Errorf("store: revoke device %s: %w", id, err)
	}
	n, err := res.RowsAffected()
	if err != nil {
		return Device{}, false, fmt.Errorf("store: revoke device %s: %w", id, err)
	}
	d, err = s.Device(ctx, id)
	return d, n == 1, err
}

// TicketFloor returns 1 + the highest ticket sequence stored for a kiosk:
// the sequence is the last dash-separated part of a ticket
// (YYMMDD-KIOSKCODE-SEQ). Tickets without a numeric last part are ignored.
func (s *SQLite) TicketFloor(ctx context.Context, kiosk string) (uint64, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT ticket FROM feedback WHERE kiosk = ?`, kiosk)
	if err != nil {
		return 0, fmt.Errorf("store: ticket floor of %s: %w", kiosk, err)
	}
	defer rows.Close()
	var high uint64
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			return 0, fmt.Errorf("store: ticket floor of %s: %w", kiosk, err)
		}
		if i := strings.LastIndexByte(t, '-'); i >= 0 {
			if n, err := strconv.ParseUint(t[i+1:], 10, 64); err == nil && n > high {
				high = n
			}
		}
	}
	if err := rows.Err(); err != nil {
		return 0, fmt.Errorf("store: ticket floor of %s: %w", kiosk, err)
	}
	if high == ^uint64(0) {
		return high, nil
	}
	return high + 1, nil
}

// EnrolledDevice returns the enrolled (active) device of a kiosk.
func (s *SQLite) EnrolledDevice(ctx context.Context, kiosk string) (Device, error) {
	return queryOne(ctx, s.db, "enrolled device of "+kiosk, scanDevice,
		`SELECT `+deviceCols+` FROM devices WHERE kiosk = ? AND status = 'enrolled' ORDER BY enrolled_at DESC LIMIT 1`, kiosk)
}
