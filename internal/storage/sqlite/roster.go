package sqlite

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ode-xmpp/ode/internal/storage"
)

// A roster's version is its row in roster_versions, incremented by every
// PutRosterItem and DeleteRosterItem. Each item keeps the version of its
// last change, and a removed item leaves a row in roster_tombstones with the
// version of its removal until the contact is added again. The changes after
// version v are then the items and tombstones whose version is above v: all
// removals are kept, so RosterChanges can answer for any v up to the current
// version.

const (
	rosterItemColumns   = `contact, name, groups_json, subscription, ask_out, pending_in, approved, version`
	upsertRosterItemSQL = `INSERT INTO roster_items (account_id, ` + rosterItemColumns + `)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (account_id, contact) DO UPDATE SET
			name = excluded.name, groups_json = excluded.groups_json,
			subscription = excluded.subscription, ask_out = excluded.ask_out,
			pending_in = excluded.pending_in, approved = excluded.approved,
			version = excluded.version`
	// rosterChangesSQL lists the items and tombstones changed after a
	// version, by version (parameters: account, version, account, version);
	// its last column tells a tombstone.
	rosterChangesSQL = `SELECT ` + rosterItemColumns + `, 0 FROM roster_items
			WHERE account_id = ? AND version > ?
		UNION ALL
		SELECT contact, '', '[]', '', 0, 0, 0, version, 1 FROM roster_tombstones
			WHERE account_id = ? AND version > ?
		ORDER BY version`
)

// Roster implements storage.Rosters.
func (s *Store) Roster(ctx context.Context, local, domain string) ([]storage.RosterItem, int64, error) {
	var (
		items   []storage.RosterItem
		version int64
	)
	err := s.read(ctx, func(tx *sql.Tx) error {
		id, ok, err := lookupAccount(ctx, tx, local, domain)
		if err != nil || !ok {
			return err
		}
		if version, err = rosterVersion(ctx, tx, id); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT `+rosterItemColumns+` FROM roster_items
			WHERE account_id = ? ORDER BY contact`, id)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			item, err := scanRosterItem(rows.Scan)
			if err != nil {
				return err
			}
			items = append(items, item)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, 0, fmt.Errorf("sqlite: roster: %w", err)
	}
	return items, version, nil
}

// RosterItem implements storage.Rosters.
func (s *Store) RosterItem(ctx context.Context, local, domain, contact string) (storage.RosterItem, error) {
	row := s.r.QueryRowContext(ctx, `SELECT `+rosterItemColumns+` FROM roster_items
		WHERE account_id = (SELECT id FROM accounts WHERE domain = ? AND local = ?) AND contact = ?`,
		domain, local, contact)
	item, err := scanRosterItem(row.Scan)
	if errors.Is(err, sql.ErrNoRows) {
		err = fmt.Errorf("roster item %s: %w", contact, storage.ErrNotFound)
	}
	if err != nil {
		return storage.RosterItem{}, fmt.Errorf("sqlite: roster item: %w", err)
	}
	return item, nil
}

// PutRosterItem implements storage.Rosters. Groups are stored as a JSON
// array; an item read back has nil Groups when it has none.
func (s *Store) PutRosterItem(ctx context.Context, local, domain string, item storage.RosterItem, maxItems int) (int64, error) {
	if err := storage.CheckRosterItem(item); err != nil {
		return 0, fmt.Errorf("sqlite: put roster item: %w", err)
	}
	groups := item.Groups
	if groups == nil {
		groups = []string{}
	}
	groupsJSON, err := json.Marshal(groups)
	if err != nil {
		return 0, fmt.Errorf("sqlite: put roster item: %w", err)
	}
	var version int64
	err = s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		if maxItems > 0 {
			if err := checkRosterLimit(ctx, tx, id, item.Contact, maxItems); err != nil {
				return err
			}
		}
		if version, err = nextRosterVersion(ctx, tx, id); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, upsertRosterItemSQL, id, item.Contact, item.Name, string(groupsJSON),
			string(item.Subscription), item.AskOut, item.PendingIn, item.Approved, version); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM roster_tombstones WHERE account_id = ? AND contact = ?`, id, item.Contact)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: put roster item: %w", err)
	}
	return version, nil
}

// checkRosterLimit returns an error wrapping storage.ErrLimit if contact is
// not in the roster and the roster holds maxItems items or more.
func checkRosterLimit(ctx context.Context, tx *sql.Tx, id int64, contact string, maxItems int) error {
	var exists bool
	var n int
	err := tx.QueryRowContext(ctx, `SELECT
		EXISTS (SELECT 1 FROM roster_items WHERE account_id = ? AND contact = ?),
		(SELECT COUNT(*) FROM roster_items WHERE account_id = ?)`, id, contact, id).Scan(&exists, &n)
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
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM roster_items WHERE account_id = ? AND contact = ?`, id, contact)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("roster item %s: %w", contact, storage.ErrNotFound)
		}
		if version, err = nextRosterVersion(ctx, tx, id); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO roster_tombstones (account_id, contact, version) VALUES (?, ?, ?)`,
			id, contact, version)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("sqlite: delete roster item: %w", err)
	}
	return version, nil
}

// RosterChanges implements storage.Rosters. Removals are never forgotten, so
// ok is false only when since is negative or newer than the current version.
func (s *Store) RosterChanges(ctx context.Context, local, domain string, since int64) (changes []storage.RosterChange, current int64, ok bool, err error) {
	err = s.read(ctx, func(tx *sql.Tx) error {
		id, found, err := lookupAccount(ctx, tx, local, domain)
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
		changes, err = rosterChanges(ctx, tx, id, since)
		return err
	})
	if err != nil {
		return nil, 0, false, fmt.Errorf("sqlite: roster changes: %w", err)
	}
	return changes, current, ok, nil
}

func rosterChanges(ctx context.Context, tx *sql.Tx, id, since int64) ([]storage.RosterChange, error) {
	rows, err := tx.QueryContext(ctx, rosterChangesSQL, id, since, id, since)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var changes []storage.RosterChange
	for rows.Next() {
		var removed bool
		item, err := scanRosterItem(func(dest ...any) error {
			return rows.Scan(append(dest, &removed)...)
		})
		if err != nil {
			return nil, err
		}
		changes = append(changes, storage.RosterChange{Item: item, Removed: removed})
	}
	return changes, rows.Err()
}

// rosterVersion returns the current version of the account's roster.
func rosterVersion(ctx context.Context, tx *sql.Tx, id int64) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `SELECT COALESCE((SELECT version FROM roster_versions WHERE account_id = ?), 0)`,
		id).Scan(&v)
	return v, err
}

// nextRosterVersion increments the version of the account's roster and
// returns it.
func nextRosterVersion(ctx context.Context, tx *sql.Tx, id int64) (int64, error) {
	var v int64
	err := tx.QueryRowContext(ctx, `INSERT INTO roster_versions (account_id, version) VALUES (?, 1)
		ON CONFLICT (account_id) DO UPDATE SET version = version + 1 RETURNING version`, id).Scan(&v)
	return v, err
}

// scanRosterItem reads the rosterItemColumns of a row with scan.
func scanRosterItem(scan func(dest ...any) error) (storage.RosterItem, error) {
	var (
		item        storage.RosterItem
		groups, sub string
	)
	err := scan(&item.Contact, &item.Name, &groups, &sub, &item.AskOut, &item.PendingIn, &item.Approved, &item.Version)
	if err != nil {
		return storage.RosterItem{}, err
	}
	item.Subscription = storage.Subscription(sub)
	if err := json.Unmarshal([]byte(groups), &item.Groups); err != nil {
		return storage.RosterItem{}, fmt.Errorf("roster item %s: groups: %w", item.Contact, err)
	}
	if len(item.Groups) == 0 {
		item.Groups = nil
	}
	return item, nil
}
