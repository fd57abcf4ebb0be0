package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// A roster's version is its row in roster_versions, incremented by every
// PutRosterItem and DeleteRosterItem before anything else, so that the
// row's lock serialises the changes to one roster (also across processes).
// Each item keeps the version of its last change, and a removed item
// leaves a row in roster_tombstones with the version of its removal until
// the contact is added again. The changes after version v are then the
// items and tombstones whose version is above v.

const (
	rosterItemColumns   = `contact, name, groups, subscription, ask_out, pending_in, approved, version`
	upsertRosterItemSQL = `INSERT INTO roster_items (account_id, ` + rosterItemColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)
		ON CONFLICT (account_id, contact) DO UPDATE SET
			name = excluded.name, groups = excluded.groups,
			subscription = excluded.subscription, ask_out = excluded.ask_out,
			pending_in = excluded.pending_in, approved = excluded.approved,
			version = excluded.version`
	// rosterChangesSQL lists the items and tombstones changed after a
	// version, by version; its last column tells a tombstone.
	rosterChangesSQL = `SELECT ` + rosterItemColumns + `, false FROM roster_items
			WHERE account_id = $1 AND version > $2
		UNION ALL
		SELECT contact, '', '{}', '', false, false, false, version, true FROM roster_tombstones
			WHERE account_id = $1 AND version > $2
		ORDER BY version`
)

// Roster implements storage.Rosters.
func (s *Store) Roster(ctx context.Context, local, domain string) ([]storage.RosterItem, int64, error) {
	var (
		items   []storage.RosterItem
		version int64
	)
	err := s.read(ctx, func(tx pgx.Tx) error {
		id, ok, err := lookupAccount(ctx, tx, local, domain, false)
		if err != nil || !ok {
			return err
		}
		if version, err = rosterVersion(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT `+rosterItemColumns+` FROM roster_items
			WHERE account_id = $1 ORDER BY contact`, id)
		if err != nil {
			return err
		}
		items, err = pgx.CollectRows(rows, scanRosterItem)
		return err
	})
	if err != nil {
		return nil, 0, fmt.Errorf("postgres: roster: %w", err)
	}
	return items, version, nil
}

// RosterItem implements storage.Rosters.
func (s *Store) RosterItem(ctx context.Context, local, domain, contact string) (storage.RosterItem, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+rosterItemColumns+` FROM roster_items
		WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2) AND contact = $3`,
		domain, local, contact)
	var item storage.RosterItem
	if err == nil {
		item, err = pgx.CollectExactlyOneRow(rows, scanRosterItem)
	}
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("roster item %s: %w", contact, storage.ErrNotFound)
	}
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("postgres: roster item: %w", doneErr(ctx, err))
	}
	return item, nil
}

// PutRosterItem implements storage.Rosters. An item read back has nil
// Groups when it has none.
func (s *Store) PutRosterItem(ctx context.Context, local, domain string, item storage.RosterItem, maxItems int) (int64, error) {
	if err := storage.CheckRosterItem(item); err != nil {
		return 0, fmt.Errorf("postgres: put roster item: %w", err)
	}
	groups := item.Groups
	if groups == nil {
		groups = []string{}
	}
	var version int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, false)
		if err != nil {
			return err
		}
		if version, err = nextRosterVersion(ctx, tx, id); err != nil {
			return err
		}
		if maxItems > 0 {
			if err := checkRosterLimit(ctx, tx, id, item.Contact, maxItems); err != nil {
				return err
			}
		}
		if _, err := tx.Exec(ctx, upsertRosterItemSQL, id, item.Contact, item.Name, groups,
			string(item.Subscription), item.AskOut, item.PendingIn, item.Approved, version); err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM roster_tombstones WHERE account_id = $1 AND contact = $2`, id, item.Contact)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: put roster item: %w", err)
	}
	return version, nil
}

// checkRosterLimit returns an error wrapping storage.ErrLimit if contact is
// not in the roster and the roster holds maxItems items or more. The
// caller holds the roster's lock.
func checkRosterLimit(ctx context.Context, tx pgx.Tx, id int64, contact string, maxItems int) error {
	var exists bool
	var n int
	err := tx.QueryRow(ctx, `SELECT
		EXISTS (SELECT 1 FROM roster_items WHERE account_id = $1 AND contact = $2),
		(SELECT COUNT(*) FROM roster_items WHERE account_id = $1)`, id, contact).Scan(&exists, &n)
	if err != nil {
		return err
	}
	if !exists && n >= maxItems {
		return fmt.Errorf("%w: roster holds %d items, the most allowed is %d", storage.ErrLimit, n, maxItems)
	}
	return nil
}

// DeleteRosterItem implements storage.Rosters.
func (s *Store) DeleteRosterItem(ctx context.Context, local, domain, contact string) (int64, error) {
	var version int64
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, false)
		if err != nil {
			return err
		}
		if version, err = nextRosterVersion(ctx, tx, id); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM roster_items WHERE account_id = $1 AND contact = $2`, id, contact)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return fmt.Errorf("roster item %s: %w", contact, storage.ErrNotFound) // rolls the version back
		}
		_, err = tx.Exec(ctx, `INSERT INTO roster_tombstones (account_id, contact, version) VALUES ($1, $2, $3)`,
			id, contact, version)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("postgres: delete roster item: %w", err)
	}
	return version, nil
}

// RosterChanges implements storage.Rosters. Removals are never forgotten, so
// ok is false only when since is negative or newer than the current version.
func (s *Store) RosterChanges(ctx context.Context, local, domain string, since int64) (changes []storage.RosterChange, current int64, ok bool, err error) {
	err = s.read(ctx, func(tx pgx.Tx) error {
		id, found, err := lookupAccount(ctx, tx, local, domain, false)
		if err != nil || !found {
			ok = since == 0
			return err
		}
		if current, err = rosterVersion(ctx, tx, id); err != nil {
			return err
		}
		if since < 0 || since > current {
			return nil
		}
		ok = true
		rows, err := tx.Query(ctx, rosterChangesSQL, id, since)
		if err != nil {
			return err
		}
		changes, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.RosterChange, error) {
			var removed bool
			item, err := scanRosterItemWith(row, &removed)
			return storage.RosterChange{Item: item, Removed: removed}, err
		})
		return err
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("postgres: roster changes: %w", err)
	}
	return changes, current, ok, nil
}

// rosterVersion returns the current version of the account's roster.
func rosterVersion(ctx context.Context, tx pgx.Tx, id int64) (int64, error) {
	var v int64
	err := tx.QueryRow(ctx, `SELECT COALESCE((SELECT version FROM roster_versions WHERE account_id = $1), 0)`,
		id).Scan(&v)
	return v, err
}

// nextRosterVersion increments the version of the account's roster,
// locking its row until the transaction ends, and returns it.
func nextRosterVersion(ctx context.Context, tx pgx.Tx, id int64) (int64, error) {
	var v int64
	err := tx.QueryRow(ctx, `INSERT INTO roster_versions AS r (account_id, version) VALUES ($1, 1)
		ON CONFLICT (account_id) DO UPDATE SET version = r.version + 1 RETURNING version`, id).Scan(&v)
	return v, err
}

// scanRosterItem reads the rosterItemColumns of a row.
func scanRosterItem(row pgx.CollectableRow) (storage.RosterItem, error) {
	return scanRosterItemWith(row)
}

// scanRosterItemWith reads the rosterItemColumns of a row, then extra.
func scanRosterItemWith(row pgx.CollectableRow, extra ...any) (storage.RosterItem, error) {
	var (
		item storage.RosterItem
		sub  string
	)
	dest := append([]any{&item.Contact, &item.Name, &item.Groups, &sub, &item.AskOut, &item.PendingIn, &item.Approved, &item.Version}, extra...)
	if err := row.Scan(dest...); err != nil {
		return storage.RosterItem{}, err
	}
	item.Subscription = storage.Subscription(sub)
	if len(item.Groups) == 0 {
		item.Groups = nil
	}
	return item, nil
}
