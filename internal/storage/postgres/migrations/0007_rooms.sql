-- XEP-0045 persistent rooms, per service (the domain of the room's JID),
-- with their affiliations. Rooms belong to no account.
CREATE TABLE rooms (
	jid     text        COLLATE "C" PRIMARY KEY, -- room@service
	service text        COLLATE "C" NOT NULL,
	config  bytea       NOT NULL,                -- the MUC module's settings (JSON)
	subject bytea,                               -- the last subject message as XML, NULL for none
	created timestamptz NOT NULL
);

CREATE INDEX rooms_by_service ON rooms (service, jid);

CREATE TABLE room_affiliations (
	room        text COLLATE "C" NOT NULL REFERENCES rooms (jid) ON DELETE CASCADE,
	jid         text COLLATE "C" NOT NULL, -- a bare JID
	affiliation text NOT NULL CHECK (affiliation IN ('owner', 'admin', 'member', 'outcast')),
	PRIMARY KEY (room, jid)
);
