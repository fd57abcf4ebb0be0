-- The archive without its per-account time index and its foreign key, as
-- SQLite's 0010 (docs/performance.md):
-- - archive_by_stamp (account_id, stamp) put every row into one of as
--   many index leaves as there are accounts; the global archive_by_time
--   (stamp) is appended to at its end and serves the retention sweep. A
--   time range of one account goes through the primary key with the id
--   bounds the mam module derives from its ULIDs (ArchiveQuery.StartID
--   and EndID).
-- - REFERENCES accounts made PostgreSQL check and lock the account row
--   once per inserted row (a quarter of the insert's CPU). AppendArchive
--   takes a KEY SHARE lock on each account of a batch once instead, and
--   the trigger below removes an account's archive with the account, as
--   ON DELETE CASCADE did: a deletion waits for the batches that locked
--   the account, and its trigger's statement (a new snapshot, read
--   committed) sees their rows.
DROP INDEX archive_by_stamp;
CREATE INDEX archive_by_time ON archive (stamp);

ALTER TABLE archive DROP CONSTRAINT archive_account_id_fkey;

CREATE FUNCTION archive_of_deleted_account() RETURNS trigger
	LANGUAGE plpgsql SET search_path FROM CURRENT AS $$
BEGIN
	DELETE FROM archive WHERE account_id = OLD.id;
	RETURN NULL;
END;
$$;

CREATE TRIGGER archive_of_deleted_account AFTER DELETE ON accounts
	FOR EACH ROW EXECUTE FUNCTION archive_of_deleted_account();
