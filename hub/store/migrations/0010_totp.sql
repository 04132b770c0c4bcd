-- Schema v10: two-step verification (两步验证) of staff accounts with
-- time-based one-time codes (RFC 6238), and their single-use recovery codes.

-- secret: the TOTP secret sealed by hub/accounts (AES-GCM under a key
-- derived from the console secret); never stored in the clear.
-- enabled_at: Unix ns when the account confirmed it with a code; NULL while
-- the secret is only offered on the enrolment page (not yet in force).
-- last_step: the last 30-second step whose code was accepted, so no code
-- is accepted twice.
CREATE TABLE totp (
	account_id TEXT PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	secret     BLOB NOT NULL,
	enabled_at INTEGER,
	last_step  INTEGER NOT NULL DEFAULT 0,
	created_at INTEGER NOT NULL
);

-- code_hash: hex SHA-256 of the account id and the normalised code.
-- used_at: Unix ns when the code was used; NULL while unused.
CREATE TABLE totp_recovery (
	account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	code_hash  TEXT NOT NULL,
	used_at    INTEGER,
	PRIMARY KEY (account_id, code_hash)
) WITHOUT ROWID;
