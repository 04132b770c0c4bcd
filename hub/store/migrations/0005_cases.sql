-- Schema v5: cases (工单). One case per feedback record whatever its source;
-- its complainants (every record merged into it), and its timeline of
-- transitions. The states and the transition rules live in hub/cases.

-- source_ref: the feedback record id for kiosk cases, the caller's reference
-- for other sources; (source, source_ref) makes creation idempotent.
-- community/street/district: the case's community and its ancestors, copied
-- from the org tree so an inbox can be filtered by any of them with an index.
-- due_at: deadline, set at first dispatch and again when a rating reopens it.
-- escalate_at: when overdue escalation next raises supervision_level
-- ('' → street → district → city); NULL once at city or not dispatched.
-- merged_into: the case this one was merged into ('' if none).
CREATE TABLE cases (
	id                TEXT PRIMARY KEY,
	ticket            TEXT NOT NULL UNIQUE,
	source            TEXT NOT NULL CHECK (source IN ('kiosk', 'qrcode', 'patrol', 'partner', 'hotline')),
	source_ref        TEXT NOT NULL,
	kiosk             TEXT NOT NULL DEFAULT '',
	community         TEXT NOT NULL,
	street            TEXT NOT NULL,
	district          TEXT NOT NULL,
	kind              TEXT NOT NULL,
	category          TEXT NOT NULL,
	building          TEXT NOT NULL DEFAULT '',
	unit              TEXT NOT NULL DEFAULT '',
	room              TEXT NOT NULL DEFAULT '',
	description       TEXT NOT NULL DEFAULT '',
	phone             TEXT NOT NULL DEFAULT '',
	state             TEXT NOT NULL CHECK (state IN ('received', 'dispatched', 'in_progress', 'answered', 'rated', 'closed', 'returned')),
	assignee          TEXT NOT NULL DEFAULT '',
	return_reason     TEXT NOT NULL DEFAULT '',
	supervised        INTEGER NOT NULL DEFAULT 0,
	supervision_level TEXT NOT NULL DEFAULT '',
	rating            TEXT NOT NULL DEFAULT '',
	merged_into       TEXT NOT NULL DEFAULT '',
	reported_at       INTEGER NOT NULL,
	created_at        INTEGER NOT NULL,
	updated_at        INTEGER NOT NULL,
	dispatched_at     INTEGER,
	due_at            INTEGER,
	escalate_at       INTEGER,
	closed_at         INTEGER,
	UNIQUE (source, source_ref)
);
-- Inbox listings: newest first within a filter.
CREATE INDEX cases_state ON cases (state, created_at, id);
CREATE INDEX cases_category ON cases (category, state, created_at, id);
CREATE INDEX cases_community ON cases (community, state, created_at, id);
CREATE INDEX cases_street ON cases (street, state, created_at, id);
CREATE INDEX cases_district ON cases (district, state, created_at, id);
CREATE INDEX cases_assignee ON cases (assignee, state, created_at, id) WHERE assignee != '';
CREATE INDEX cases_created ON cases (created_at, id);
-- Overdue and due-soon lists, escalation.
CREATE INDEX cases_due ON cases (due_at, id) WHERE state IN ('received', 'dispatched', 'in_progress', 'returned');
CREATE INDEX cases_escalate ON cases (escalate_at) WHERE escalate_at IS NOT NULL;
-- Merge candidates (并单): same community, category and building.
CREATE INDEX cases_merge ON cases (community, category, building, created_at);

-- Every complainant of a case: its own record, and those of merged cases.
CREATE TABLE case_complainants (
	case_id    TEXT NOT NULL REFERENCES cases (id),
	source     TEXT NOT NULL,
	source_ref TEXT NOT NULL,
	phone      TEXT NOT NULL DEFAULT '',
	added_at   INTEGER NOT NULL,
	PRIMARY KEY (case_id, source, source_ref)
);

-- The timeline: every transition with who, when, from, to and the note.
CREATE TABLE case_events (
	seq        INTEGER PRIMARY KEY AUTOINCREMENT,
	case_id    TEXT NOT NULL REFERENCES cases (id),
	at         INTEGER NOT NULL,
	actor      TEXT NOT NULL,
	role       TEXT NOT NULL,
	action     TEXT NOT NULL,
	from_state TEXT NOT NULL,
	to_state   TEXT NOT NULL,
	note       TEXT NOT NULL DEFAULT ''
);
CREATE INDEX case_events_case ON case_events (case_id, seq);
