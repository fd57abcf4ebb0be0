package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/ode-xmpp/ode/internal/storage"
)

// CreatePubSubNode implements storage.PubSub in one write transaction:
// the count of the account's nodes and the insert.
func (s *Store) CreatePubSubNode(ctx context.Context, local, domain string, n storage.PubSubNode, maxNodes int) error {
	if n.Node == "" {
		return fmt.Errorf("sqlite: create pubsub node: %w: empty node", storage.ErrInvalid)
	}
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := accountID(ctx, tx, local, domain)
		if err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRowContext(ctx, `SELECT EXISTS (SELECT 1 FROM pubsub_nodes WHERE account_id = ? AND node = ?)`,
			id, n.Node).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("node %s: %w", n.Node, storage.ErrExists)
		}
		if maxNodes > 0 {
			var count int
			if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM pubsub_nodes WHERE account_id = ?`, id).Scan(&count); err != nil {
				return err
			}
			if count >= maxNodes {
				return fmt.Errorf("%w: the account has %d nodes, the most allowed is %d", storage.ErrLimit, count, maxNodes)
			}
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO pubsub_nodes (account_id, node, config, created) VALUES (?, ?, ?, ?)`,
			id, n.Node, nonNil(n.Config), toMillis(n.Created))
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: create pubsub node: %w", err)
	}
	return nil
}

// nodeAccount returns the id of the account that has node, or an error
// wrapping storage.ErrNotFound.
func nodeAccount(ctx context.Context, tx *sql.Tx, local, domain, node string) (int64, error) {
	var id int64
	err := tx.QueryRowContext(ctx, `SELECT n.account_id FROM pubsub_nodes n JOIN accounts a ON a.id = n.account_id
		WHERE a.domain = ? AND a.local = ? AND n.node = ?`, domain, local, node).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, fmt.Errorf("node %s of %s@%s: %w", node, local, domain, storage.ErrNotFound)
	}
	return id, err
}

// ConfigurePubSubNode implements storage.PubSub.
func (s *Store) ConfigurePubSubNode(ctx context.Context, local, domain, node string, config []byte, maxItems int) ([]string, error) {
	var removed []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := nodeAccount(ctx, tx, local, domain, node)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `UPDATE pubsub_nodes SET config = ? WHERE account_id = ? AND node = ?`,
			nonNil(config), id, node); err != nil {
			return err
		}
		removed, err = trimItems(ctx, tx, id, node, maxItems)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: configure pubsub node: %w", err)
	}
	return removed, nil
}

// trimItems removes the node's oldest items past max (max > 0) and
// returns their ids.
func trimItems(ctx context.Context, tx *sql.Tx, account int64, node string, max int) ([]string, error) {
	if max <= 0 {
		return nil, nil
	}
	rows, err := tx.QueryContext(ctx, `SELECT item_id FROM pubsub_items WHERE account_id = ? AND node = ?
		ORDER BY seq DESC LIMIT -1 OFFSET ?`, account, node, max)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, err
		}
		ids = append(ids, id)
	}
	if err := errors.Join(rows.Err(), rows.Close()); err != nil {
		return nil, err
	}
	for _, id := range ids {
		if _, err := tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE account_id = ? AND node = ? AND item_id = ?`,
			account, node, id); err != nil {
			return nil, err
		}
	}
	return ids, nil
}

// DeletePubSubNode implements storage.PubSub; the items go by ON DELETE
// CASCADE.
func (s *Store) DeletePubSubNode(ctx context.Context, local, domain, node string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := nodeAccount(ctx, tx, local, domain, node)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM pubsub_nodes WHERE account_id = ? AND node = ?`, id, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete pubsub node: %w", err)
	}
	return nil
}

// PubSubNode implements storage.PubSub.
func (s *Store) PubSubNode(ctx context.Context, local, domain, node string) (storage.PubSubNode, error) {
	n := storage.PubSubNode{Node: node}
	var created int64
	err := s.read(ctx, func(tx *sql.Tx) error {
		err := tx.QueryRowContext(ctx, `SELECT n.config, n.created FROM pubsub_nodes n JOIN accounts a ON a.id = n.account_id
			WHERE a.domain = ? AND a.local = ? AND n.node = ?`, domain, local, node).Scan(&n.Config, &created)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("node %s of %s@%s: %w", node, local, domain, storage.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return storage.PubSubNode{}, fmt.Errorf("sqlite: pubsub node: %w", err)
	}
	n.Created = fromMillis(created)
	return n, nil
}

// PubSubNodes implements storage.PubSub.
func (s *Store) PubSubNodes(ctx context.Context, local, domain string) ([]storage.PubSubNode, error) {
	var out []storage.PubSubNode
	err := s.read(ctx, func(tx *sql.Tx) error {
		out = nil
		rows, err := tx.QueryContext(ctx, `SELECT n.node, n.config, n.created FROM pubsub_nodes n JOIN accounts a ON a.id = n.account_id
			WHERE a.domain = ? AND a.local = ? ORDER BY n.node`, domain, local)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var n storage.PubSubNode
			var created int64
			if err := rows.Scan(&n.Node, &n.Config, &created); err != nil {
				return err
			}
			n.Created = fromMillis(created)
			out = append(out, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: pubsub nodes: %w", err)
	}
	return out, nil
}

// PublishPubSubItem implements storage.PubSub in one write transaction:
// the upsert with the node's next seq and the trim past maxItems.
func (s *Store) PublishPubSubItem(ctx context.Context, local, domain, node string, it storage.PubSubItem, maxItems int) ([]string, error) {
	if it.ID == "" {
		return nil, fmt.Errorf("sqlite: publish pubsub item: %w: empty item id", storage.ErrInvalid)
	}
	var removed []string
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := nodeAccount(ctx, tx, local, domain, node)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO pubsub_items (account_id, node, item_id, seq, publisher, published, payload)
			VALUES (?, ?, ?, (SELECT COALESCE(MAX(seq), 0) + 1 FROM pubsub_items WHERE account_id = ? AND node = ?), ?, ?, ?)
			ON CONFLICT (account_id, node, item_id) DO UPDATE SET seq = excluded.seq, publisher = excluded.publisher,
				published = excluded.published, payload = excluded.payload`,
			id, node, it.ID, id, node, it.Publisher, toMillis(it.Published), it.Payload); err != nil {
			return err
		}
		removed, err = trimItems(ctx, tx, id, node, maxItems)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: publish pubsub item: %w", err)
	}
	return removed, nil
}

// DeletePubSubItem implements storage.PubSub.
func (s *Store) DeletePubSubItem(ctx context.Context, local, domain, node, itemID string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := nodeAccount(ctx, tx, local, domain, node)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE account_id = ? AND node = ? AND item_id = ?`, id, node, itemID)
		if err != nil {
			return err
		}
		if n, err := res.RowsAffected(); err != nil || n == 0 {
			if err == nil {
				err = fmt.Errorf("item %s: %w", itemID, storage.ErrNotFound)
			}
			return err
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("sqlite: delete pubsub item: %w", err)
	}
	return nil
}

// PurgePubSubNode implements storage.PubSub.
func (s *Store) PurgePubSubNode(ctx context.Context, local, domain, node string) error {
	err := s.write(ctx, func(tx *sql.Tx) error {
		id, err := nodeAccount(ctx, tx, local, domain, node)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `DELETE FROM pubsub_items WHERE account_id = ? AND node = ?`, id, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("sqlite: purge pubsub node: %w", err)
	}
	return nil
}

// PubSubItems implements storage.PubSub in one read transaction.
func (s *Store) PubSubItems(ctx context.Context, local, domain, node string, ids []string, max int) ([]storage.PubSubItem, error) {
	var out []storage.PubSubItem
	err := s.read(ctx, func(tx *sql.Tx) error {
		out = nil
		id, err := nodeAccount(ctx, tx, local, domain, node)
		if err != nil {
			return err
		}
		q := `SELECT item_id, publisher, published, payload FROM pubsub_items WHERE account_id = ? AND node = ?`
		args := []any{id, node}
		if len(ids) > 0 {
			q += ` AND item_id IN (?` + strings.Repeat(", ?", len(ids)-1) + `)`
			for _, i := range ids {
				args = append(args, i)
			}
		}
		q += ` ORDER BY seq DESC`
		if max > 0 {
			q += ` LIMIT ?`
			args = append(args, max)
		}
		rows, err := tx.QueryContext(ctx, q, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var it storage.PubSubItem
			var published int64
			if err := rows.Scan(&it.ID, &it.Publisher, &published, &it.Payload); err != nil {
				return err
			}
			it.Published = fromMillis(published)
			out = append(out, it)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("sqlite: pubsub items: %w", err)
	}
	return out, nil
}
