-- What an IM server keeps per account: rosters with versions (RFC 6121 §2),
-- pending subscription requests (§3.1.3), offline messages (§8.5.2.2.1),
-- per-user XML documents (XEP-0054, XEP-0049), block lists (XEP-0191) and
-- last activity (XEP-0012). Every table refers to accounts (id) ON DELETE
-- CASCADE. Times are Unix milliseconds.

-- The current roster version of an account; no row means version 0. Every
-- change to the roster increments it.
CREATE TABLE roster_versions (
	account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	version    INTEGER NOT NULL
) STRICT;

CREATE TABLE roster_items (
	account_id   INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	contact      TEXT    NOT NULL, -- bare JID
	name         TEXT    NOT NULL, -- '' for none
	groups_json  TEXT    NOT NULL CHECK (json_valid(groups_json)), -- JSON array of strings, in order
	subscription TEXT    NOT NULL CHECK (subscription IN ('none', 'to', 'from', 'both')),
	ask_out      INTEGER NOT NULL CHECK (ask_out IN (0, 1)),
	pending_in   INTEGER NOT NULL CHECK (pending_in IN (0, 1)),
	approved     INTEGER NOT NULL CHECK (approved IN (0, 1)),
	version      INTEGER NOT NULL, -- roster version of the last change
	PRIMARY KEY (account_id, contact)
) STRICT, WITHOUT ROWID;

CREATE INDEX roster_items_by_version ON roster_items (account_id, version);

-- Removed roster items, so that RosterChanges can report removals. A contact
-- is either in roster_items or here, never both; all removals are kept.
CREATE TABLE roster_tombstones (
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	contact    TEXT    NOT NULL,
	version    INTEGER NOT NULL, -- roster version of the removal
	PRIMARY KEY (account_id, contact)
) STRICT, WITHOUT ROWID;

CREATE INDEX roster_tombstones_by_version ON roster_tombstones (account_id, version);

-- Inbound subscription requests not yet answered; id orders them.
CREATE TABLE pending_subscriptions (
	id         INTEGER PRIMARY KEY,
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	contact    TEXT    NOT NULL, -- bare JID of the requester
	stanza     BLOB    NOT NULL, -- the presence as received
	UNIQUE (account_id, contact)
) STRICT;

-- AUTOINCREMENT: an id is never reused, even after every message is deleted.
CREATE TABLE offline_messages (
	id         INTEGER PRIMARY KEY AUTOINCREMENT,
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	stanza     BLOB    NOT NULL,
	stamp      INTEGER NOT NULL -- Unix milliseconds
) STRICT;

CREATE INDEX offline_messages_by_account ON offline_messages (account_id, id);

-- vcard-temp, private XML storage ("private:" + namespace + " " + name).
CREATE TABLE xml_documents (
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	doc_key    TEXT    NOT NULL,
	doc        BLOB    NOT NULL,
	PRIMARY KEY (account_id, doc_key)
) STRICT, WITHOUT ROWID;

CREATE TABLE blocked_jids (
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	jid        TEXT    NOT NULL, -- domain, bare or full JID
	PRIMARY KEY (account_id, jid)
) STRICT, WITHOUT ROWID;

CREATE TABLE last_activity (
	account_id INTEGER PRIMARY KEY REFERENCES accounts (id) ON DELETE CASCADE,
	at         INTEGER NOT NULL, -- Unix milliseconds
	status     TEXT    NOT NULL
) STRICT;
