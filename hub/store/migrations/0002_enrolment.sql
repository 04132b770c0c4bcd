-- Schema v2: device enrolment. Claim codes are stored only as an HMAC of the
-- code; device MQTT passwords only as hashes.

CREATE TABLE claims (
	id         TEXT PRIMARY KEY,     -- public id, for listings
	code_hash  TEXT NOT NULL UNIQUE, -- hex HMAC-SHA256 of the normalised code under the hub's claim secret
	community  TEXT NOT NULL,
	kiosk      TEXT NOT NULL,        -- '' : the first kiosk of the community without an enrolled device
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	used_at    INTEGER,
	device     TEXT NOT NULL DEFAULT '' -- the device that used it
);

CREATE TABLE devices (
	id               TEXT PRIMARY KEY,
	kiosk            TEXT NOT NULL,
	community        TEXT NOT NULL,
	status           TEXT NOT NULL CHECK (status IN ('enrolled', 'revoked', 'replaced')),
	public_key       TEXT NOT NULL, -- base64 ed25519
	key_id           TEXT NOT NULL,
	hardware_id      TEXT NOT NULL,
	software_version TEXT NOT NULL,
	mqtt_sha256      TEXT NOT NULL, -- hex SHA-256 of the MQTT password
	mqtt_mosquitto   TEXT NOT NULL, -- the same password, mosquitto $7$ form
	claim            TEXT NOT NULL, -- claims.id
	enrolled_at      INTEGER NOT NULL,
	revoked_at       INTEGER        -- revoked or replaced at
);
-- At most one enrolled device per kiosk slot.
CREATE UNIQUE INDEX devices_enrolled_kiosk ON devices (kiosk) WHERE status = 'enrolled';
CREATE INDEX devices_kiosk ON devices (kiosk, enrolled_at);
