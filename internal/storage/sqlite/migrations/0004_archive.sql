-- XEP-0313 message archives: one row per message in each archive that
-- keeps it (a message between two local accounts is in both). The
-- archive is ordered by id, which the mam module makes sortable by time.
CREATE TABLE archive (
	account_id    INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	id            TEXT    NOT NULL, -- the archive id and XEP-0359 stanza-id
	with_jid      TEXT    NOT NULL, -- the other party's bare JID
	with_resource TEXT    NOT NULL, -- '' for none
	stamp         INTEGER NOT NULL, -- Unix milliseconds
	outgoing      INTEGER NOT NULL CHECK (outgoing IN (0, 1)),
	stanza        BLOB    NOT NULL
) STRICT;

-- Pages of an archive, in order; pages of one conversation; time ranges
-- (and the retention sweep, per account).
CREATE UNIQUE INDEX archive_by_id ON archive (account_id, id);
CREATE INDEX archive_by_with ON archive (account_id, with_jid, id);
CREATE INDEX archive_by_stamp ON archive (account_id, stamp);
