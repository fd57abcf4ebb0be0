-- XEP-0357 push registrations: per account, one row per app server node
-- (a device), with the publish-options form sent with each notification.
CREATE TABLE push_registrations (
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	service    TEXT    NOT NULL, -- the app server's JID
	node       TEXT    NOT NULL,
	options    BLOB,             -- publish-options <x/> as XML, NULL for none
	created    INTEGER NOT NULL, -- Unix milliseconds
	PRIMARY KEY (account_id, service, node)
) STRICT, WITHOUT ROWID;
