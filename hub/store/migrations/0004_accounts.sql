-- Schema v4: staff accounts scoped by the org tree, their login sessions,
-- failed logins (for lockout), and the audit log of every change.

-- role and node: the account's role and the org node it acts within (squad
-- leaders and officers hold a street node, standing for their squad).
-- password: a PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash).
-- locked_until: Unix ns until which logins are refused; NULL when not locked.
CREATE TABLE accounts (
	id           TEXT PRIMARY KEY,
	username     TEXT NOT NULL UNIQUE,
	display_name TEXT NOT NULL DEFAULT '',
	role         TEXT NOT NULL CHECK (role IN ('bureau_admin', 'district_admin', 'squad_leader', 'officer', 'partner', 'technician')),
	node         TEXT NOT NULL,
	password     TEXT NOT NULL,
	locked_until INTEGER,
	created_at   INTEGER NOT NULL,
	updated_at   INTEGER NOT NULL
);
CREATE INDEX accounts_node ON accounts (node, role);

-- One row per failed login of a known account; counted over a window.
CREATE TABLE login_failures (
	account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	at         INTEGER NOT NULL
);
CREATE INDEX login_failures_account ON login_failures (account_id, at);

-- id_hash: hex SHA-256 of the session id; the id itself is only in the cookie.
CREATE TABLE sessions (
	id_hash    TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	created_at INTEGER NOT NULL,
	last_seen  INTEGER NOT NULL
);
CREATE INDEX sessions_account ON sessions (account_id);

-- before/after: JSON of the object before and after the change, '' for none.
CREATE TABLE audit_log (
	seq    INTEGER PRIMARY KEY AUTOINCREMENT,
	at     INTEGER NOT NULL,
	actor  TEXT NOT NULL,
	action TEXT NOT NULL,
	object TEXT NOT NULL,
	before TEXT NOT NULL DEFAULT '',
	after  TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_object ON audit_log (object, seq);
CREATE INDEX audit_log_at ON audit_log (at);
