-- Schema v6: what officers record on cases (work notes and photos), their
-- check-ins at community workstations, ratings residents send from kiosks,
-- and the version of each kiosk's case board.

-- Inbox filter by source; a kiosk's recent cases for its case board.
CREATE INDEX cases_source ON cases (source, state, created_at, id);
CREATE INDEX cases_kiosk ON cases (kiosk, updated_at) WHERE kiosk != '';

-- A work record (线上工作记录): an officer's note on a case, with photos.
CREATE TABLE case_work (
	id      TEXT PRIMARY KEY,
	case_id TEXT NOT NULL REFERENCES cases (id),
	at      INTEGER NOT NULL,
	actor   TEXT NOT NULL,
	note    TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_work_case ON case_work (case_id, at);

-- Photos are stored re-encoded (resized, metadata stripped) in the row.
CREATE TABLE case_photos (
	work_id TEXT NOT NULL REFERENCES case_work (id),
	case_id TEXT NOT NULL REFERENCES cases (id),
	sha256  TEXT NOT NULL,
	width   INTEGER NOT NULL,
	height  INTEGER NOT NULL,
	jpeg    BLOB NOT NULL,
	PRIMARY KEY (case_id, sha256, work_id)
);

-- An officer's visit or patrol at a workstation, proven by the kiosk's
-- signed, rotating check-in code (slot: the code's minute).
CREATE TABLE checkins (
	id        TEXT PRIMARY KEY,
	officer   TEXT NOT NULL,
	kiosk     TEXT NOT NULL,
	community TEXT NOT NULL,
	slot      INTEGER NOT NULL,
	at        INTEGER NOT NULL,
	kind      TEXT NOT NULL CHECK (kind IN ('visit', 'patrol')),
	note      TEXT NOT NULL DEFAULT '',
	UNIQUE (officer, kiosk, slot)
);
CREATE INDEX checkins_community ON checkins (community, at);
CREATE INDEX checkins_officer ON checkins (officer, at);

-- Ratings from kiosks, by the id of the kiosk's record (idempotency).
-- outcome: 'applied' or the reason it was refused.
CREATE TABLE kiosk_ratings (
	record_id TEXT PRIMARY KEY,
	kiosk     TEXT NOT NULL,
	ticket    TEXT NOT NULL,
	rating    TEXT NOT NULL,
	at        INTEGER NOT NULL,
	outcome   TEXT NOT NULL
);

-- The last version of each kiosk's case board.
CREATE TABLE case_boards (
	kiosk   TEXT PRIMARY KEY,
	version INTEGER NOT NULL
);
