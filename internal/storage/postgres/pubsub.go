package postgres

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage"
)

// CreatePubSubNode implements storage.PubSub in one transaction holding
// the account's row lock, so that the count of its nodes and the insert
// are atomic.
func (s *Store) CreatePubSubNode(ctx context.Context, local, domain string, n storage.PubSubNode, maxNodes int) error {
	if n.Node == "" {
		return fmt.Errorf("postgres: create pubsub node: %w: empty node", storage.ErrInvalid)
	}
	config := n.Config
	if config == nil {
		config = []byte{}
	}
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := accountID(ctx, tx, local, domain, true)
		if err != nil {
			return err
		}
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pubsub_nodes WHERE account_id = $1 AND node = $2)`,
			id, n.Node).Scan(&exists); err != nil {
			return err
		}
		if exists {
			return fmt.Errorf("node %s: %w", n.Node, storage.ErrExists)
		}
		if maxNodes > 0 {
			var count int
			if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM pubsub_nodes WHERE account_id = $1`, id).Scan(&count); err != nil {
				return err
			}
			if count >= maxNodes {
				return fmt.Errorf("%w: the account has %d nodes, the most allowed is %d", storage.ErrLimit, count, maxNodes)
			}
		}
		_, err = tx.Exec(ctx, `INSERT INTO pubsub_nodes (account_id, node, config, created) VALUES ($1, $2, $3, $4)`,
			id, n.Node, config, millis(n.Created))
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: create pubsub node: %w", err)
	}
	return nil
}

// nodeAccount returns the id of the account that has node, locking the
// node's row when lock is set (FOR NO KEY UPDATE: writers of one node
// take turns), or an error wrapping storage.ErrNotFound.
func nodeAccount(ctx context.Context, q querier, local, domain, node string, lock bool) (int64, error) {
	sql := `SELECT n.account_id FROM pubsub_nodes n JOIN accounts a ON a.id = n.account_id
		WHERE a.domain = $1 AND a.local = $2 AND n.node = $3`
	if lock {
		sql += ` FOR NO KEY UPDATE OF n`
	}
	var id int64
	err := q.QueryRow(ctx, sql, domain, local, node).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, fmt.Errorf("node %s of %s@%s: %w", node, local, domain, storage.ErrNotFound)
	}
	return id, err
}

// ConfigurePubSubNode implements storage.PubSub.
func (s *Store) ConfigurePubSubNode(ctx context.Context, local, domain, node string, config []byte, maxItems int) ([]string, error) {
	if config == nil {
		config = []byte{}
	}
	var removed []string
	err := s.write(ctx, func(tx pgx.Tx) error {
		removed = nil
		id, err := nodeAccount(ctx, tx, local, domain, node, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `UPDATE pubsub_nodes SET config = $1 WHERE account_id = $2 AND node = $3`, config, id, node); err != nil {
			return err
		}
		removed, err = trimItems(ctx, tx, id, node, maxItems)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: configure pubsub node: %w", err)
	}
	return removed, nil
}

// trimItems removes the node's oldest items past max (max > 0) and
// returns their ids.
func trimItems(ctx context.Context, tx pgx.Tx, account int64, node string, max int) ([]string, error) {
	if max <= 0 {
		return nil, nil
	}
	rows, err := tx.Query(ctx, `DELETE FROM pubsub_items WHERE account_id = $1 AND node = $2 AND item_id IN (
		SELECT item_id FROM pubsub_items WHERE account_id = $1 AND node = $2 ORDER BY seq DESC OFFSET $3)
		RETURNING item_id`, account, node, max)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// DeletePubSubNode implements storage.PubSub; the items go by ON DELETE
// CASCADE.
func (s *Store) DeletePubSubNode(ctx context.Context, local, domain, node string) error {
	tag, err := s.pool.Exec(ctx, `DELETE FROM pubsub_nodes
		WHERE account_id = (SELECT id FROM accounts WHERE domain = $1 AND local = $2) AND node = $3`, domain, local, node)
	if err == nil && tag.RowsAffected() == 0 {
		err = fmt.Errorf("node %s of %s@%s: %w", node, local, domain, storage.ErrNotFound)
	}
	if err != nil {
		return fmt.Errorf("postgres: delete pubsub node: %w", doneErr(ctx, err))
	}
	return nil
}

// PubSubNode implements storage.PubSub.
func (s *Store) PubSubNode(ctx context.Context, local, domain, node string) (storage.PubSubNode, error) {
	n := storage.PubSubNode{Node: node}
	err := s.pool.QueryRow(ctx, `SELECT n.config, n.created FROM pubsub_nodes n JOIN accounts a ON a.id = n.account_id
		WHERE a.domain = $1 AND a.local = $2 AND n.node = $3`, domain, local, node).Scan(&n.Config, &n.Created)
	if errors.Is(err, pgx.ErrNoRows) {
		err = fmt.Errorf("node %s of %s@%s: %w", node, local, domain, storage.ErrNotFound)
	}
	if err != nil {
		return storage.PubSubNode{}, fmt.Errorf("postgres: pubsub node: %w", doneErr(ctx, err))
	}
	n.Created = n.Created.UTC()
	return n, nil
}

// PubSubNodes implements storage.PubSub.
func (s *Store) PubSubNodes(ctx context.Context, local, domain string) ([]storage.PubSubNode, error) {
	rows, err := s.pool.Query(ctx, `SELECT n.node, n.config, n.created FROM pubsub_nodes n JOIN accounts a ON a.id = n.account_id
		WHERE a.domain = $1 AND a.local = $2 ORDER BY n.node`, domain, local)
	if err != nil {
		return nil, fmt.Errorf("postgres: pubsub nodes: %w", doneErr(ctx, err))
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.PubSubNode, error) {
		var n storage.PubSubNode
		err := row.Scan(&n.Node, &n.Config, &n.Created)
		n.Created = n.Created.UTC()
		return n, err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pubsub nodes: %w", doneErr(ctx, err))
	}
	return out, nil
}

// PublishPubSubItem implements storage.PubSub in one transaction holding
// the node's row lock: the upsert with the node's next seq and the trim
// past maxItems.
func (s *Store) PublishPubSubItem(ctx context.Context, local, domain, node string, it storage.PubSubItem, maxItems int) ([]string, error) {
	if it.ID == "" {
		return nil, fmt.Errorf("postgres: publish pubsub item: %w: empty item id", storage.ErrInvalid)
	}
	var removed []string
	err := s.write(ctx, func(tx pgx.Tx) error {
		removed = nil
		id, err := nodeAccount(ctx, tx, local, domain, node, true)
		if err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `INSERT INTO pubsub_items (account_id, node, item_id, seq, publisher, published, payload)
			VALUES ($1, $2, $3, (SELECT COALESCE(MAX(seq), 0) + 1 FROM pubsub_items WHERE account_id = $1 AND node = $2), $4, $5, $6)
			ON CONFLICT (account_id, node, item_id) DO UPDATE SET seq = excluded.seq, publisher = excluded.publisher,
				published = excluded.published, payload = excluded.payload`,
			id, node, it.ID, it.Publisher, millis(it.Published), it.Payload); err != nil {
			return err
		}
		removed, err = trimItems(ctx, tx, id, node, maxItems)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: publish pubsub item: %w", err)
	}
	return removed, nil
}

// DeletePubSubItem implements storage.PubSub.
func (s *Store) DeletePubSubItem(ctx context.Context, local, domain, node, itemID string) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := nodeAccount(ctx, tx, local, domain, node, true)
		if err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM pubsub_items WHERE account_id = $1 AND node = $2 AND item_id = $3`, id, node, itemID)
		if err == nil && tag.RowsAffected() == 0 {
			err = fmt.Errorf("item %s: %w", itemID, storage.ErrNotFound)
		}
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: delete pubsub item: %w", err)
	}
	return nil
}

// PurgePubSubNode implements storage.PubSub.
func (s *Store) PurgePubSubNode(ctx context.Context, local, domain, node string) error {
	err := s.write(ctx, func(tx pgx.Tx) error {
		id, err := nodeAccount(ctx, tx, local, domain, node, true)
		if err != nil {
			return err
		}
		_, err = tx.Exec(ctx, `DELETE FROM pubsub_items WHERE account_id = $1 AND node = $2`, id, node)
		return err
	})
	if err != nil {
		return fmt.Errorf("postgres: purge pubsub node: %w", err)
	}
	return nil
}

// PubSubItems implements storage.PubSub in one read transaction.
func (s *Store) PubSubItems(ctx context.Context, local, domain, node string, ids []string, max int) ([]storage.PubSubItem, error) {
	var out []storage.PubSubItem
	err := s.read(ctx, func(tx pgx.Tx) error {
		id, err := nodeAccount(ctx, tx, local, domain, node, false)
		if err != nil {
			return err
		}
		q := `SELECT item_id, publisher, published, payload FROM pubsub_items WHERE account_id = $1 AND node = $2`
		args := []any{id, node}
		if len(ids) > 0 {
			q += ` AND item_id = ANY($3)`
			args = append(args, ids)
		}
		q += ` ORDER BY seq DESC`
		if max > 0 {
			q += fmt.Sprintf(` LIMIT $%d`, len(args)+1)
			args = append(args, max)
		}
		rows, err := tx.Query(ctx, q, args...)
		if err != nil {
			return err
		}
		out, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (storage.PubSubItem, error) {
			var it storage.PubSubItem
			err := row.Scan(&it.ID, &it.Publisher, &it.Published, &it.Payload)
			it.Published = it.Published.UTC()
			return it, err
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("postgres: pubsub items: %w", err)
	}
	return out, nil
}
