-- XEP-0363 HTTP upload slots: granted (stored = 0), then filled by the
-- file's PUT (stored = 1). The files are on disk, named by id; the upload
-- module removes those whose row is gone (expired, or the account deleted).
CREATE TABLE uploads (
	id           TEXT    PRIMARY KEY,
	account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	filename     TEXT    NOT NULL,
	content_type TEXT    NOT NULL, -- '' for none given
	size         INTEGER NOT NULL CHECK (size >= 0),
	created      INTEGER NOT NULL, -- Unix milliseconds
	stored       INTEGER NOT NULL CHECK (stored IN (0, 1))
) STRICT, WITHOUT ROWID;

-- The per-account quota sums an account's recent slots.
CREATE INDEX uploads_by_account ON uploads (account_id, created);
CREATE INDEX uploads_by_created ON uploads (created);
