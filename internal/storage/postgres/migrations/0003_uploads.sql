-- XEP-0363 HTTP upload slots: granted (stored false), then filled by the
-- file's PUT (stored true). The files are on disk, named by id; the upload
-- module removes those whose row is gone (expired, or the account deleted).
CREATE TABLE uploads (
	id           text        COLLATE "C" PRIMARY KEY,
	account_id   bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	filename     text        NOT NULL,
	content_type text        NOT NULL, -- '' for none given
	size         bigint      NOT NULL CHECK (size >= 0),
	created      timestamptz NOT NULL,
	stored       boolean     NOT NULL
);

-- The per-account quota sums an account's recent slots.
CREATE INDEX uploads_by_account ON uploads (account_id, created);
CREATE INDEX uploads_by_created ON uploads (created);
