-- XEP-0313 message archives: one row per message in each archive that
-- keeps it (a message between two local accounts is in both). The
-- archive is ordered by id, which the mam module makes sortable by time.
CREATE TABLE archive (
	account_id    bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	id            text        COLLATE "C" NOT NULL, -- the archive id and XEP-0359 stanza-id
	with_jid      text        COLLATE "C" NOT NULL, -- the other party's bare JID
	with_resource text        COLLATE "C" NOT NULL, -- '' for none
	stamp         timestamptz NOT NULL,
	outgoing      boolean     NOT NULL,
	stanza        bytea       NOT NULL,
	-- Pages of an archive, in order (the latest 50: a backward scan).
	PRIMARY KEY (account_id, id)
);

-- Pages of one conversation; time ranges (and the retention sweep, per
-- account).
CREATE INDEX archive_by_with ON archive (account_id, with_jid, id);
CREATE INDEX archive_by_stamp ON archive (account_id, stamp);
