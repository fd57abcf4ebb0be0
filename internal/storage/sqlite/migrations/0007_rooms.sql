-- XEP-0045 persistent rooms, per service (the domain of the room's JID),
-- with their affiliations. Rooms belong to no account.
CREATE TABLE rooms (
	jid     TEXT    PRIMARY KEY, -- room@service
	service TEXT    NOT NULL,
	config  BLOB    NOT NULL,    -- the MUC module's settings (JSON)
	subject BLOB,                -- the last subject message as XML, NULL for none
	created INTEGER NOT NULL     -- Unix milliseconds
) STRICT, WITHOUT ROWID;

CREATE INDEX rooms_by_service ON rooms (service, jid);

CREATE TABLE room_affiliations (
	room        TEXT NOT NULL REFERENCES rooms (jid) ON DELETE CASCADE,
	jid         TEXT NOT NULL, -- a bare JID
	affiliation TEXT NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
	PRIMARY KEY (room, jid)
) STRICT, WITHOUT ROWID;
