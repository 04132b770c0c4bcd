-- Schema v1 of the hub database. Times are INTEGER Unix nanoseconds (UTC);
-- NULL means "not set".

CREATE TABLE notices (
	id           TEXT PRIMARY KEY,
	title        TEXT NOT NULL,
	body         TEXT NOT NULL,
	category     TEXT NOT NULL,
	priority     TEXT NOT NULL,
	valid_from   INTEGER NOT NULL,
	valid_until  INTEGER,
	targets      TEXT NOT NULL, -- JSON array of protocol.Target
	created_at   INTEGER NOT NULL,
	withdrawn_at INTEGER
);
CREATE INDEX notices_live ON notices (withdrawn_at, valid_until);

CREATE TABLE feedback (
	id           TEXT PRIMARY KEY, -- envelope id of the record
	ticket       TEXT NOT NULL UNIQUE,
	kiosk        TEXT NOT NULL,
	kind         TEXT NOT NULL,
	category     TEXT NOT NULL,
	building     TEXT NOT NULL,
	unit         TEXT NOT NULL,
	room         TEXT NOT NULL,
	description  TEXT NOT NULL,
	phone        TEXT NOT NULL,
	submitted_at INTEGER NOT NULL,
	received_at  INTEGER NOT NULL
);
CREATE INDEX feedback_received ON feedback (received_at);
CREATE INDEX feedback_kiosk_received ON feedback (kiosk, received_at);

CREATE TABLE kiosks (
	id               TEXT PRIMARY KEY,
	online           INTEGER NOT NULL DEFAULT 0,
	last_seen        INTEGER,
	epoch            INTEGER NOT NULL DEFAULT 0,
	software_version TEXT NOT NULL DEFAULT '',
	uptime           INTEGER NOT NULL DEFAULT 0, -- seconds
	outbox_depth     INTEGER NOT NULL DEFAULT 0,
	content_version  INTEGER NOT NULL DEFAULT 0,
	free_disk        INTEGER NOT NULL DEFAULT 0, -- bytes
	desired_version  INTEGER NOT NULL DEFAULT 0,
	desired_hash     TEXT NOT NULL DEFAULT ''
);

-- One hub-wide sequence for desired versions, so a kiosk's version only ever
-- grows, across restarts and even if its row is removed and added again.
CREATE TABLE desired_seq (
	id    INTEGER PRIMARY KEY CHECK (id = 1),
	value INTEGER NOT NULL
);
INSERT INTO desired_seq (id, value) VALUES (1, 0);
