-- XEP-0163 personal eventing: each account's pubsub nodes, with their
-- configuration, and the items published to them. An item's seq orders
-- a node's items (a republished item becomes the newest).
CREATE TABLE pubsub_nodes (
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	node       TEXT    NOT NULL,
	config     BLOB    NOT NULL, -- the PEP module's node configuration (JSON)
	created    INTEGER NOT NULL, -- Unix milliseconds
	PRIMARY KEY (account_id, node)
) STRICT, WITHOUT ROWID;

CREATE TABLE pubsub_items (
	account_id INTEGER NOT NULL,
	node       TEXT    NOT NULL,
	item_id    TEXT    NOT NULL,
	seq        INTEGER NOT NULL, -- higher is newer, per node
	publisher  TEXT    NOT NULL,
	published  INTEGER NOT NULL, -- Unix milliseconds
	payload    BLOB,             -- the payload as XML, NULL for none
	PRIMARY KEY (account_id, node, item_id),
	FOREIGN KEY (account_id, node) REFERENCES pubsub_nodes (account_id, node) ON DELETE CASCADE
) STRICT, WITHOUT ROWID;

CREATE INDEX pubsub_items_by_seq ON pubsub_items (account_id, node, seq);
