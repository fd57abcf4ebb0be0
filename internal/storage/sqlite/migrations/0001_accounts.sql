-- Accounts and their SCRAM credentials (RFC 5802, RFC 7677); never passwords.
-- Tables added later that belong to an account refer to accounts (id)
-- ON DELETE CASCADE, so deleting an account deletes everything it owns.

CREATE TABLE accounts (
	id         INTEGER PRIMARY KEY,
	domain     TEXT    NOT NULL,
	local      TEXT    NOT NULL,
	created_at INTEGER NOT NULL DEFAULT (unixepoch()), -- Unix seconds
	UNIQUE (domain, local)
) STRICT;

CREATE TABLE credentials (
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	hash       TEXT    NOT NULL, -- "SHA-1", "SHA-256", "SHA-512"
	salt       BLOB    NOT NULL,
	iterations INTEGER NOT NULL,
	stored_key BLOB    NOT NULL,
	server_key BLOB    NOT NULL,
	PRIMARY KEY (account_id, hash)
) STRICT, WITHOUT ROWID;
