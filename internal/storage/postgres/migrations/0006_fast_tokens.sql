-- XEP-0484 FAST tokens: per account and client (the SASL2 user-agent id),
-- the token's HMAC key (SHA-256 of the token, never the token), the HT
-- mechanism it is bound to and its validity.
CREATE TABLE fast_tokens (
	account_id bigint      NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	client_id  text        COLLATE "C" NOT NULL,
	token_key  bytea       NOT NULL,
	mechanism  text        COLLATE "C" NOT NULL,
	created    timestamptz NOT NULL,
	expires    timestamptz NOT NULL,
	PRIMARY KEY (account_id, client_id, token_key)
);
