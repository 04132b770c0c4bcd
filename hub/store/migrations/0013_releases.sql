-- Schema v13: kiosk image releases and their staged rollouts
-- (hub/releases, docs/updates.md).
-- releases: one signed RAUC bundle each, stored in the media store by hash.
CREATE TABLE releases (
	version     TEXT PRIMARY KEY,         -- the bundle's version (Debian ordering)
	sha256      TEXT NOT NULL,            -- the bundle file in the media store
	size        INTEGER NOT NULL,
	compatible  TEXT NOT NULL,            -- RAUC compatible string
	build       TEXT NOT NULL DEFAULT '',
	notes       TEXT NOT NULL DEFAULT '',
	uploaded_by TEXT NOT NULL,
	uploaded_at INTEGER NOT NULL          -- Unix ns
);
-- rollouts: a release offered to the org tree stage by stage.
CREATE TABLE rollouts (
	id                  TEXT PRIMARY KEY,
	release             TEXT NOT NULL REFERENCES releases (version),
	stages              TEXT NOT NULL,    -- JSON [{"name":…,"targets":[node or kiosk ids]}]
	stage               INTEGER NOT NULL DEFAULT 0, -- index of the current stage
	state               TEXT NOT NULL,    -- running, halted, done, cancelled
	reason              TEXT NOT NULL DEFAULT '', -- why halted or cancelled
	max_bad_percent     INTEGER NOT NULL, -- halt when refused+failed+rolled back exceed this share of a stage
	min_healthy_percent INTEGER NOT NULL, -- move on when this share of a stage is healthy on the release
	soak_seconds        INTEGER NOT NULL, -- and has stayed so this long
	allow_downgrade     INTEGER NOT NULL DEFAULT 0,
	created_by          TEXT NOT NULL,
	created_at          INTEGER NOT NULL,
	stage_started_at    INTEGER NOT NULL,
	stage_healthy_at    INTEGER,          -- when the current stage first reached min_healthy_percent
	updated_at          INTEGER NOT NULL
);
CREATE INDEX rollouts_state ON rollouts (state);
-- kiosk_updates: per kiosk, the live update status (update_status
-- messages), the last update report (outbox records) and the offer the hub
-- last published to it.
CREATE TABLE kiosk_updates (
	kiosk         TEXT PRIMARY KEY,
	epoch         INTEGER NOT NULL DEFAULT 0,
	slot          TEXT NOT NULL DEFAULT '',
	version       TEXT NOT NULL DEFAULT '',
	release       TEXT NOT NULL DEFAULT '',
	state         TEXT NOT NULL DEFAULT '',
	percent       INTEGER NOT NULL DEFAULT 0,
	reason        TEXT NOT NULL DEFAULT '',
	status_at     INTEGER,
	report_rollout TEXT NOT NULL DEFAULT '',
	report_release TEXT NOT NULL DEFAULT '',
	report_state  TEXT NOT NULL DEFAULT '',
	report_reason TEXT NOT NULL DEFAULT '',
	report_at     INTEGER,
	offer_seq     INTEGER NOT NULL DEFAULT 0,
	offer_rollout TEXT NOT NULL DEFAULT '',
	offer_release TEXT NOT NULL DEFAULT ''
);
-- update_reports: every update record received, once by its id.
CREATE TABLE update_reports (
	id          TEXT PRIMARY KEY,
	kiosk       TEXT NOT NULL,
	rollout     TEXT NOT NULL,
	release     TEXT NOT NULL,
	state       TEXT NOT NULL,
	slot        TEXT NOT NULL DEFAULT '',
	version     TEXT NOT NULL DEFAULT '',
	reason      TEXT NOT NULL DEFAULT '',
	at          INTEGER NOT NULL,
	received_at INTEGER NOT NULL
);
CREATE INDEX update_reports_rollout ON update_reports (rollout, kiosk, at);
