-- Schema v14: remote commands to kiosks (screenshot, restart of the UI or
-- the agent) and the latest screenshot of each kiosk. IF NOT EXISTS: the
-- tests that take a database back to an older schema drop only the tables
-- of the migrations they replay.

-- commands: one row per command sent. status is 'sent' until the kiosk's
-- result arrives, then 'ok', 'refused' or 'failed' with the kiosk's reason.
-- result_id is the record id of that result, so a resent result is known
-- as a duplicate. Times are Unix ns; finished_at is NULL while sent.
CREATE TABLE IF NOT EXISTS commands (
	id           TEXT PRIMARY KEY,
	kiosk        TEXT NOT NULL,
	action       TEXT NOT NULL,
	requested_by TEXT NOT NULL,
	requested_at INTEGER NOT NULL,
	expires_at   INTEGER NOT NULL,
	status       TEXT NOT NULL DEFAULT 'sent',
	reason       TEXT NOT NULL DEFAULT '',
	result_id    TEXT UNIQUE,
	finished_at  INTEGER
);
CREATE INDEX IF NOT EXISTS commands_kiosk ON commands (kiosk, requested_at);

-- kiosk_screenshots: the latest screenshot of each kiosk (one row a kiosk,
-- replaced by the next), at most protocol.MaxScreenshotBytes of image.
CREATE TABLE IF NOT EXISTS kiosk_screenshots (
	kiosk        TEXT PRIMARY KEY,
	command      TEXT NOT NULL,
	content_type TEXT NOT NULL,
	width        INTEGER NOT NULL,
	height       INTEGER NOT NULL,
	taken_at     INTEGER NOT NULL,
	received_at  INTEGER NOT NULL,
	data         BLOB NOT NULL CHECK (length(data) <= 1048576)
);
