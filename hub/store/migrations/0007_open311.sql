-- Schema v7: API keys of partner systems that file and follow cases through
-- the Open311 GeoReport v2 server (hub/open311).
--
-- key_hash: SHA-256 of the key (32 random bytes, shown once at creation);
-- the key itself is never stored.
-- nodes: comma-separated org node ids the key may file and read cases in.
-- source: the case source its requests get.
-- revoked_at: NULL while the key works.
CREATE TABLE open311_keys (
	id         TEXT PRIMARY KEY,
	name       TEXT NOT NULL,
	key_hash   BLOB NOT NULL UNIQUE,
	nodes      TEXT NOT NULL,
	source     TEXT NOT NULL CHECK (source IN ('hotline', 'partner')),
	created_at INTEGER NOT NULL,
	revoked_at INTEGER
);

-- Cases a key filed have source_ref "<key id>/<ref>"; its requests list
-- them by reporting time.
CREATE INDEX cases_reported ON cases (source, reported_at, id);
