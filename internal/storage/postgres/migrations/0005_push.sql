-- XEP-0357 push registrations: per account, one row per app server node
-- (a device), with the publish-options form sent with each notification.
CREATE TABLE push_registrations (
	account_id bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	service    text        COLLATE "C" NOT NULL, -- the app server's JID
	node       text        COLLATE "C" NOT NULL,
	options    bytea,                            -- publish-options <x/> as XML, NULL for none
	created    timestamptz NOT NULL,
	PRIMARY KEY (account_id, service, node)
);
