-- Schema v3: media files and their transcode jobs, playlists, media status
-- reported by kiosks, proof of play, and what each kiosk was sent.

-- One row per upload. sha256/size are the kiosk file's (the original itself
-- for images, the transcoded file for videos) once status is 'ready'.
CREATE TABLE media (
	id          TEXT PRIMARY KEY,
	filename    TEXT NOT NULL DEFAULT '',
	orig_sha256 TEXT NOT NULL,
	orig_size   INTEGER NOT NULL,
	kind        TEXT NOT NULL CHECK (kind IN ('image', 'video')),
	format      TEXT NOT NULL DEFAULT '',
	status      TEXT NOT NULL CHECK (status IN ('queued', 'transcoding', 'ready', 'failed')),
	percent     INTEGER NOT NULL DEFAULT 0,
	reason      TEXT NOT NULL DEFAULT '',
	sha256      TEXT NOT NULL DEFAULT '',
	size        INTEGER NOT NULL DEFAULT 0,
	duration_ms INTEGER NOT NULL DEFAULT 0,
	width       INTEGER NOT NULL DEFAULT 0,
	height      INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL
);
CREATE INDEX media_sha256 ON media (sha256);
CREATE INDEX media_jobs ON media (status, created_at);

CREATE TABLE playlists (
	id           TEXT PRIMARY KEY,
	name         TEXT NOT NULL,
	items        TEXT NOT NULL, -- JSON []protocol.PlaylistItem (media by kiosk-file sha256)
	valid_from   INTEGER NOT NULL,
	valid_until  INTEGER,
	targets      TEXT NOT NULL, -- JSON []protocol.Target
	created_at   INTEGER NOT NULL,
	withdrawn_at INTEGER
);

ALTER TABLE kiosks ADD COLUMN media TEXT NOT NULL DEFAULT '[]'; -- JSON []protocol.MediaStatus of the last heartbeat
ALTER TABLE kiosks ADD COLUMN cache_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE kiosks ADD COLUMN cache_quota INTEGER NOT NULL DEFAULT 0;

-- Proof-of-play records, stored exactly once by envelope id.
CREATE TABLE play_records (
	id          TEXT PRIMARY KEY,
	kiosk       TEXT NOT NULL,
	hour        INTEGER NOT NULL,
	received_at INTEGER NOT NULL
);
CREATE TABLE plays (
	record TEXT NOT NULL REFERENCES play_records (id),
	kiosk  TEXT NOT NULL,
	hour   INTEGER NOT NULL,
	kind   TEXT NOT NULL,
	media  TEXT NOT NULL DEFAULT '',
	notice TEXT NOT NULL DEFAULT '',
	count  INTEGER NOT NULL,
	last   INTEGER NOT NULL
);
CREATE INDEX plays_media ON plays (media) WHERE media != '';
CREATE INDEX plays_notice ON plays (notice) WHERE notice != '';

-- The first desired version published to a kiosk that contained an item
-- (a notice id or a media sha256).
CREATE TABLE deliveries (
	kiosk        TEXT NOT NULL,
	kind         TEXT NOT NULL CHECK (kind IN ('notice', 'media')),
	ref          TEXT NOT NULL,
	version      INTEGER NOT NULL,
	published_at INTEGER NOT NULL,
	PRIMARY KEY (kiosk, kind, ref)
);
