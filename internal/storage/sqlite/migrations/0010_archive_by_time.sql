-- The archive without its per-account time index and its per-row foreign
-- key, which made the mam writer's inserts slow (docs/performance.md):
-- - archive_by_stamp (account_id, stamp) put every row into one of as
--   many index leaves as there are accounts; archive_by_time (stamp) is
--   appended to at its end, and serves the retention sweep. A time range
--   of one account is found through archive_by_id instead: the mam
--   module's ids are ULIDs, which sort by time (ArchiveQuery.StartID and
--   EndID).
-- - REFERENCES accounts made SQLite check every row against accounts and
--   keep a statement journal for every INSERT (a foreign-key failure
--   aborts the statement, OR IGNORE or not). AppendArchive looks the
--   account up in its own transaction, and the trigger below removes an
--   account's archive with the account, as ON DELETE CASCADE did.
-- The table is rebuilt (https://sqlite.org/lang_altertable.html#otheralter):
-- nothing references it.
CREATE TABLE archive_new (
	account_id    INTEGER NOT NULL, -- accounts (id); see archive_of_deleted_account
	id            TEXT    NOT NULL, -- the archive id and XEP-0359 stanza-id
	with_jid      TEXT    NOT NULL, -- the other party's bare JID
	with_resource TEXT    NOT NULL, -- '' for none
	stamp         INTEGER NOT NULL, -- Unix milliseconds
	outgoing      INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
	stanza        BLOB    NOT NULL
) STRICT;

INSERT INTO archive_new (account_id, id, with_jid, with_resource, stamp, outgoing, stanza)
	SELECT account_id, id, with_jid, with_resource, stamp, outgoing, stanza FROM archive ORDER BY rowid;
DROP TABLE archive;
ALTER TABLE archive_new RENAME TO archive;

-- Pages of an archive, in order (and time ranges, by id); pages of one
-- conversation; the retention sweep.
CREATE UNIQUE INDEX archive_by_id ON archive (account_id, id);
CREATE INDEX archive_by_with ON archive (account_id, with_jid, id);
CREATE INDEX archive_by_time ON archive (stamp);

CREATE TRIGGER archive_of_deleted_account AFTER DELETE ON accounts BEGIN
	DELETE FROM archive WHERE account_id = OLD.id;
END;
