-- Schema v11: personal API tokens of staff accounts, which scripts present
-- to the JSON API (Authorization: Bearer shq_...) instead of the shared
-- admin token, so each API request is attributable to a person.

-- hash: hex SHA-256 of the whole token; the token itself is shown once
-- and never stored. The UNIQUE constraint is the index a check looks it
-- up by.
-- expires_at: Unix ns after which the token no longer works.
-- last_used: Unix ns of the last request with it (written at most once a
-- minute); NULL while never used.
-- revoked_at: Unix ns when it was revoked; NULL while not revoked.
CREATE TABLE api_tokens (
	id         TEXT PRIMARY KEY,
	account_id TEXT NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	name       TEXT NOT NULL,
	hash       TEXT NOT NULL UNIQUE,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	last_used  INTEGER,
	revoked_at INTEGER
);
CREATE INDEX api_tokens_account ON api_tokens (account_id, created_at);
