-- XEP-0484 FAST tokens: per account and client (the SASL2 user-agent id),
-- the token's HMAC key (SHA-256 of the token, never the token), the HT
-- mechanism it is bound to and its validity.
CREATE TABLE fast_tokens (
	account_id INTEGER NOT NULL REFERENCES accounts (id) ON DELETE CASCADE,
	client_id  TEXT    NOT NULL,
	token_key  BLOB    NOT NULL,
	mechanism  TEXT    NOT NULL,
	created    INTEGER NOT NULL, -- Unix milliseconds
	expires    INTEGER NOT NULL, -- Unix milliseconds
	PRIMARY KEY (account_id, client_id, token_key)
) STRICT, WITHOUT ROWID;
