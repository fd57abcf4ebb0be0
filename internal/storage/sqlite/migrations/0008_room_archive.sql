-- XEP-0313 archives of stored MUC rooms: one row per groupchat message,
-- gone with the room. with_resource is the sender's nick.
CREATE TABLE room_archive (
	room          TEXT    NOT NULL REFERENCES rooms (jid) ON DELETE CASCADE,
	id            TEXT    NOT NULL, -- the archive id and the room's XEP-0359 stanza-id
	with_jid      TEXT    NOT NULL, -- the room's bare JID
	with_resource TEXT    NOT NULL, -- the sender's nick
	stamp         INTEGER NOT NULL, -- Unix milliseconds
	stanza        BLOB    NOT NULL,
	PRIMARY KEY (room, id)
) STRICT;

CREATE INDEX room_archive_by_nick ON room_archive (room, with_resource, id);
CREATE INDEX room_archive_by_stamp ON room_archive (room, stamp);
