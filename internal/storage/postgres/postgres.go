// Package postgres is the PostgreSQL storage backend, for servers whose
// data outgrows one file or that several ode nodes share. It talks to the
// database through a pgx connection pool (github.com/jackc/pgx/v5).
//
// # Durability and sharing
//
// Every method runs in its own transaction and returns once PostgreSQL has
// committed it, so what the server acknowledged survives a crash of the
// process and, with the server's default synchronous_commit, of the
// machine. Any number of processes may use the same database at once (ode
// nodes, `ode user`, `ode migrate`): what must not interleave is
// serialised by the database itself, with row locks (the account's row for
// its offline messages and uploads, the roster version's row for its
// roster) and, for the total upload quota, a transaction-scoped advisory
// lock, never by a lock in this process.
//
// # Schema
//
// The schema is the embedded migrations/NNNN_name.sql files, applied in
// order by Open inside one transaction that holds an advisory lock, so
// that nodes starting at once migrate once, and recorded in the
// schema_migrations table. Open refuses a database whose schema is newer
// than this program's. The tables are created in the first schema of the
// connection's search_path. Text that is compared or sorted uses the "C"
// collation, so that order is byte order whatever the database's locale.
//
// # Limits
//
// Options.StatementTimeout becomes the sessions' statement_timeout, and
// every method also ends, with an error wrapping ctx.Err(), when its
// context does (pgx cancels the query on the server).
package postgres

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ode-xmpp/ode/internal/storage"
)

// Options are the pool's settings; zero fields keep the defaults.
type Options struct {
	// MaxConns is the most connections the pool opens (default: 4 per
	// CPU, at least 8, as pgxpool does).
	MaxConns int32
	// StatementTimeout aborts a statement that runs longer (the
	// server's statement_timeout); 0 means none.
	StatementTimeout time.Duration
	// ConnectTimeout bounds opening one connection (default: the DSN's
	// connect_timeout, else DefaultConnectTimeout).
	ConnectTimeout time.Duration
}

// DefaultConnectTimeout is the ConnectTimeout used when Options has none.
const DefaultConnectTimeout = 10 * time.Second

// Store is a storage.Store backed by a PostgreSQL database. Its methods are
// safe for concurrent use, also with other processes using the database.
type Store struct {
	pool *pgxpool.Pool
}

var _ storage.Store = (*Store)(nil)

// Open connects to the database at dsn (a URL such as
// postgres://ode@db.example.org/ode, or key=value pairs, as libpq takes;
// PGPASSWORD and ~/.pgpass are honoured) and brings its schema up to date.
// It returns an error wrapping ErrSchemaTooNew if the database was written
// by a newer version of ode. Errors never show the DSN's password.
func Open(ctx context.Context, dsn string, opts Options) (*Store, error) {
	cfg, err := PoolConfig(dsn, opts)
	if err != nil {
		return nil, err
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres: open: %w", err)
	}
	if err := pool.Ping(ctx); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: connect to %s: %w", Redact(dsn), err)
	}
	if err := migrate(ctx, pool, migrations); err != nil {
		pool.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &Store{pool: pool}, nil
}

// PoolConfig parses dsn and applies opts, as Open does.
func PoolConfig(dsn string, opts Options) (*pgxpool.Config, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		// pgx's parse errors leave the password out.
		return nil, fmt.Errorf("postgres: dsn: %w", err)
	}
	if opts.MaxConns > 0 {
		cfg.MaxConns = opts.MaxConns
	}
	switch {
	case opts.ConnectTimeout > 0:
		cfg.ConnConfig.ConnectTimeout = opts.ConnectTimeout
	case cfg.ConnConfig.ConnectTimeout <= 0: // none in the DSN either
		cfg.ConnConfig.ConnectTimeout = DefaultConnectTimeout
	}
	if opts.StatementTimeout > 0 {
		cfg.ConnConfig.RuntimeParams["statement_timeout"] = fmt.Sprint(opts.StatementTimeout.Milliseconds())
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "ode"
	}
	return cfg, nil
}

// Close closes the pool's connections, waiting for those in use to be
// released. No method may be called after Close.
func (s *Store) Close() error {
	s.pool.Close()
	return nil
}

// Pool returns the store's connection pool, for tools that read or write
// the tables directly (ode migrate).
func (s *Store) Pool() *pgxpool.Pool { return s.pool }

// retries is how often write retries a transaction that PostgreSQL aborted
// for a deadlock or a serialisation failure, or whose connection had died
// (a restart of the server ends every connection of the pool).
const retries = 3

// write runs fn in a read-write transaction and commits it if fn returns
// nil, retrying it when PostgreSQL detected a deadlock or the connection
// turned out to be dead.
func (s *Store) write(ctx context.Context, fn func(tx pgx.Tx) error) error {
	var err error
	for range retries {
		committing := false // an error of COMMIT itself leaves the outcome unknown: never retried
		err = pgx.BeginFunc(ctx, s.pool, func(tx pgx.Tx) error {
			err := fn(tx)
			committing = err == nil
			return err
		})
		if committing || !retryable(err) {
			break
		}
	}
	return doneErr(ctx, err)
}

// read runs fn in a read-only transaction with one snapshot for all its
// queries.
func (s *Store) read(ctx context.Context, fn func(tx pgx.Tx) error) error {
	err := pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, fn)
	return doneErr(ctx, err)
}

// retryable reports whether a transaction that failed with err did not
// commit and may run again: a deadlock or serialisation failure (40P01,
// 40001), or a connection the server ended (57P01 admin_shutdown, 57P02
// crash_shutdown: the transaction was rolled back) or that failed before
// anything was sent.
func retryable(err error) bool {
	if err == nil {
		return false
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case "40P01", "40001", "57P01", "57P02":
			return true
		}
		return false
	}
	return pgconn.SafeToRetry(err)
}

// doneErr makes sure that an error caused by the end of ctx wraps
// ctx.Err(): a query the server cancelled reports its own error.
func doneErr(ctx context.Context, err error) error {
	if err != nil && ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%w: %w", ctx.Err(), err)
	}
	return err
}

// isUnique reports whether err is a unique violation.
func isUnique(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "23505"
}

// querier is what a pool and a transaction have in common.
type querier interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// accountID returns the id of the account local@domain, or an error
// wrapping storage.ErrNotFound if there is none. With lock it locks the
// account's row (FOR NO KEY UPDATE: rows referring to it may still be
// inserted) until the transaction ends, serialising what must not
// interleave for one account.
func accountID(ctx context.Context, q querier, local, domain string, lock bool) (int64, error) {
	id, ok, err := lookupAccount(ctx, q, local, domain, lock)
	if err == nil && !ok {
		err = fmt.Errorf("account %s@%s: %w", local, domain, storage.ErrNotFound)
	}
	return id, err
}

// lookupAccount returns the id of the account local@domain, with ok false
// if there is none; lock is as for accountID.
func lookupAccount(ctx context.Context, q querier, local, domain string, lock bool) (id int64, ok bool, err error) {
	sql := `SELECT id FROM accounts WHERE domain = $1 AND local = $2`
	if lock {
		sql += ` FOR NO KEY UPDATE`
	}
	err = q.QueryRow(ctx, sql, domain, local).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// millis truncates t to the millisecond, the precision the storage
// package promises, so that what is read back equals what was written.
func millis(t time.Time) time.Time { return time.UnixMilli(t.UnixMilli()).UTC() }
