-- XEP-0163 personal eventing: each account's pubsub nodes, with their
-- configuration, and the items published to them. An item's seq orders
-- a node's items (a republished item becomes the newest).
CREATE TABLE pubsub_nodes (
	account_id bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	node       text        COLLATE "C" NOT NULL,
	config     bytea       NOT NULL, -- the PEP module's node configuration (JSON)
	created    timestamptz NOT NULL,
	PRIMARY KEY (account_id, node)
);

CREATE TABLE pubsub_items (
	account_id bigint      NOT NULL,
	node       text        COLLATE "C" NOT NULL,
	item_id    text        COLLATE "C" NOT NULL,
	seq        bigint      NOT NULL, -- higher is newer, per node
	publisher  text        COLLATE "C" NOT NULL,
	published  timestamptz NOT NULL,
	payload    bytea,                -- the payload as XML, NULL for none
	PRIMARY KEY (account_id, node, item_id),
	FOREIGN KEY (account_id, node) REFERENCES pubsub_nodes (account_id, node) ON DELETE CASCADE
);

CREATE INDEX pubsub_items_by_seq ON pubsub_items (account_id, node, seq);
