package store

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/url"
	"time"

	bolt "go.etcd.io/bbolt"

	"github.com/shequ/shequ/protocol"
)

// maxIdentitySize bounds a stored identity: an enrolment response plus the
// hub URL and a time.
const maxIdentitySize = protocol.MaxEnrolResponseSize + 4<<10

// Identity is what enrolment gave the device: who it is, where and how it
// connects, and which hub key and CA it trusts. The device's private key is
// kept apart (DeviceKey) and never leaves the store except to sign.
type Identity struct {
	Kiosk        string    `json:"kiosk"`
	Groups       []string  `json:"groups"` // org-tree ancestors, root first
	HubURL       string    `json:"hub_url"`
	BrokerURL    string    `json:"broker_url"`
	MQTTUsername string    `json:"mqtt_username"`
	MQTTPassword string    `json:"mqtt_password"`
	CACert       string    `json:"ca_cert"` // PEM; empty only with a tcp:// broker
	HubKey       string    `json:"hub_key"` // protocol.EncodeKey of the trusted hub key
	HubKID       string    `json:"hub_kid"`
	KeySerial    int64     `json:"key_serial"`
	EnrolledAt   time.Time `json:"enrolled_at"`
}

// IdentityFrom turns an accepted enrolment response into an identity.
func IdentityFrom(r protocol.EnrolResponse, hubURL string, now time.Time) Identity {
	return Identity{
		Kiosk:        r.Kiosk,
		Groups:       append([]string(nil), r.Groups...),
		HubURL:       hubURL,
		BrokerURL:    r.BrokerURL,
		MQTTUsername: r.MQTTUsername,
		MQTTPassword: r.MQTTPassword,
		CACert:       r.CACert,
		HubKey:       r.HubKey,
		HubKID:       r.HubKID,
		KeySerial:    r.KeySerial,
		EnrolledAt:   now.UTC(),
	}
}

// Validate checks an identity with the rules of the enrolment response it
// came from.
func (id Identity) Validate() error {
	r := protocol.EnrolResponse{
		Kiosk: id.Kiosk, Groups: id.Groups, BrokerURL: id.BrokerURL,
		MQTTUsername: id.MQTTUsername, MQTTPassword: id.MQTTPassword,
		HubKey: id.HubKey, HubKID: id.HubKID, KeySerial: id.KeySerial, CACert: id.CACert,
	}
	if err := r.Validate(); err != nil {
		return err
	}
	if id.HubURL != "" {
		if u, err := url.Parse(id.HubURL); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			return fmt.Errorf("%w: hub url %q", protocol.ErrInvalid, id.HubURL)
		}
	}
	return nil
}

// TrustedKey returns the hub signing key the device trusts.
func (id Identity) TrustedKey() (ed25519.PublicKey, error) {
	k, err := protocol.DecodeKey(id.HubKey)
	if err != nil {
		return nil, fmt.Errorf("store: trusted hub key: %w", err)
	}
	return k, nil
}

// String describes the identity for logs, without the MQTT password.
func (id Identity) String() string {
	return fmt.Sprintf("kiosk %s (groups %v) broker %s hub key %s serial %d", id.Kiosk, id.Groups, id.BrokerURL, id.HubKID, id.KeySerial)
}

// LogValue keeps the password out of structured logs.
func (id Identity) LogValue() slog.Value { return slog.StringValue(id.String()) }

// DeviceKey returns the device's ed25519 private key, generating it with
// crypto/rand and storing it first if the device has none. The key is
// durable before it is returned, so an enrolment retried after a failure
// sends the same public key.
func (s *Store) DeviceKey() (ed25519.PrivateKey, error) {
	var key ed25519.PrivateKey
	err := s.db.Update(func(tx *bolt.Tx) error {
		var err error
		key, err = getOrMakeKey(tx.Bucket(bucketIdentity), keyDeviceKey)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: device key: %w", err)
	}
	return key, nil
}

// EnrolmentKey returns the key to enrol with. A device that was never
// enrolled uses its device key (DeviceKey). An enrolled device enrolling
// again (after a revocation, or into another slot) gets a fresh key, kept
// apart until SaveIdentity adopts it, so a possibly compromised key never
// comes back and a failed re-enrolment leaves the current identity intact.
// Either key is durable before it is returned, so a retry sends the same
// public key.
func (s *Store) EnrolmentKey() (ed25519.PrivateKey, error) {
	var key ed25519.PrivateKey
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdentity)
		slot := keyDeviceKey
		if b.Get(keyIdentity) != nil {
			slot = keyNextKey
		}
		var err error
		key, err = getOrMakeKey(b, slot)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("store: enrolment key: %w", err)
	}
	return key, nil
}

// getOrMakeKey returns the key stored under name, generating and storing
// one first if there is none.
func getOrMakeKey(b *bolt.Bucket, name []byte) (ed25519.PrivateKey, error) {
	if seed := b.Get(name); seed != nil {
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("%w: %s is %d bytes", ErrCorrupt, name, len(seed))
		}
		return ed25519.NewKeyFromSeed(seed), nil
	}
	seed := make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("generate %s: %w", name, err)
	}
	if err := b.Put(name, seed); err != nil {
		return nil, fmt.Errorf("put %s: %w", name, err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// HasDeviceKey reports whether a device key is stored.
func (s *Store) HasDeviceKey() (bool, error) {
	var ok bool
	err := s.db.View(func(tx *bolt.Tx) error {
		ok = tx.Bucket(bucketIdentity).Get(keyDeviceKey) != nil
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("store: device key: %w", err)
	}
	return ok, nil
}

// Identity returns the device's identity; ok is false before enrolment.
func (s *Store) Identity() (id Identity, ok bool, err error) {
	err = s.db.View(func(tx *bolt.Tx) error {
		v := tx.Bucket(bucketIdentity).Get(keyIdentity)
		if v == nil {
			return nil
		}
		if id, err = decodeIdentity(v); err != nil {
			return err
		}
		ok = true
		return nil
	})
	if err != nil {
		return Identity{}, false, fmt.Errorf("store: read identity: %w", err)
	}
	return id, ok, nil
}

func decodeIdentity(v []byte) (Identity, error) {
	var id Identity
	if len(v) > maxIdentitySize {
		return id, fmt.Errorf("%w: identity is %d bytes, limit %d", ErrCorrupt, len(v), maxIdentitySize)
	}
	d := json.NewDecoder(bytes.NewReader(v))
	d.DisallowUnknownFields()
	if err := d.Decode(&id); err != nil {
		return id, fmt.Errorf("%w: identity: %v", ErrCorrupt, err)
	}
	if d.More() {
		return id, fmt.Errorf("%w: identity: trailing data", ErrCorrupt)
	}
	if err := id.Validate(); err != nil {
		return id, fmt.Errorf("%w: identity: %v", ErrCorrupt, err)
	}
	return id, nil
}

// SaveIdentity stores the identity from an enrolment, in one transaction
// with its consequences: the ticket sequence is raised so the next ticket
// is at least ticketFloor (a replaced device never reuses a ticket number
// of its slot), and any desired state held is dropped, since it was
// accepted under the trust of an earlier enrolment. The device key must
// already exist.
func (s *Store) SaveIdentity(id Identity, ticketFloor uint64) error {
	if err := id.Validate(); err != nil {
		return fmt.Errorf("store: save identity: %w", err)
	}
	data, err := json.Marshal(id)
	if err != nil {
		return fmt.Errorf("store: save identity: encode: %w", err)
	}
	err = s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdentity)
		if b.Get(keyDeviceKey) == nil {
			return fmt.Errorf("%w: no device key", ErrNotEnrolled)
		}
		if next := b.Get(keyNextKey); next != nil { // a re-enrolment: its key is the device key now
			if err := b.Put(keyDeviceKey, append([]byte(nil), next...)); err != nil {
				return fmt.Errorf("adopt new device key: %w", err)
			}
			if err := b.Delete(keyNextKey); err != nil {
				return fmt.Errorf("delete next key: %w", err)
			}
		}
		if err := b.Put(keyIdentity, data); err != nil {
			return fmt.Errorf("put identity: %w", err)
		}
		meta := tx.Bucket(bucketMeta)
		if ticketFloor > 0 && getU64(meta.Get(keyTicketSeq)) < ticketFloor-1 {
			if err := meta.Put(keyTicketSeq, u64(ticketFloor-1)); err != nil {
				return fmt.Errorf("put ticket sequence: %w", err)
			}
		}
		st := tx.Bucket(bucketState)
		for _, k := range [][]byte{keyDesired, keyVersion, keyAppliedAt} {
			if err := st.Delete(k); err != nil {
				return fmt.Errorf("delete %s: %w", k, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store: save identity: %w", err)
	}
	return nil
}

// AdoptHubKey makes key, with its serial in the hub's key chain, the only
// hub key the device trusts. The caller has checked the chain from the
// trusted key to key (protocol.KeyChain.Advance); a serial not greater than
// the trusted key's is refused with ErrStaleKey.
func (s *Store) AdoptHubKey(key ed25519.PublicKey, serial int64) (Identity, error) {
	var id Identity
	err := s.db.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketIdentity)
		v := b.Get(keyIdentity)
		if v == nil {
			return ErrNotEnrolled
		}
		var err error
		if id, err = decodeIdentity(v); err != nil {
			return err
		}
		if serial <= id.KeySerial {
			return fmt.Errorf("%w: serial %d, trusted %d", ErrStaleKey, serial, id.KeySerial)
		}
		id.HubKey, id.HubKID, id.KeySerial = protocol.EncodeKey(key), protocol.KeyID(key), serial
		if err := id.Validate(); err != nil {
			return err
		}
		data, err := json.Marshal(id)
		if err != nil {
			return fmt.Errorf("encode identity: %w", err)
		}
		return b.Put(keyIdentity, data)
	})
	if err != nil {
		return Identity{}, fmt.Errorf("store: adopt hub key: %w", err)
	}
	return id, nil
}
