// Package sqlite is the embedded storage backend: one SQLite file, opened
// with modernc.org/sqlite (pure Go, no cgo).
//
// # Durability and sharing
//
// The database runs in WAL mode with synchronous=FULL: a write has been
// fsynced to the write-ahead log when its method returns, so what the server
// acknowledged survives a crash of the process (kill -9) and of the machine
// (power loss, on a disk that honours fsync), and the file is never left corrupt. It costs one fsync per
// transaction, which is why imports go through CreateAccounts, one
// transaction for any number of accounts.
//
// Several processes may open the same file at once, such as the server and
// `ode user add`: SQLite admits one writer at a time, and a writer that finds
// the database locked waits up to five seconds before failing. Within one
// Store, writes go through a single connection (so they queue in Go, not in
// SQLite) and reads through a small pool of read-only connections, which WAL
// lets run alongside the writer.
//
// # Schema
//
// The schema is the embedded migrations/NNNN_name.sql files, applied in order
// by Open inside one transaction and recorded in the schema_migrations table.
// Open refuses a database whose schema is newer than this program's. A new
// aggregate is a new migration file plus a file of methods on Store.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"time"

	_ "modernc.org/sqlite" // registers the "sqlite" database/sql driver

	"github.com/ode-xmpp/ode/internal/storage"
)

// busyTimeout is how long a write waits for another process's write
// transaction to finish before failing with SQLITE_BUSY.
const busyTimeout = 5 * time.Second

// readers is the size of the pool of read-only connections.
const readers = 4

// Store is a storage.Store backed by one SQLite file. Its methods are safe
// for concurrent use, also with other processes using the same file.
type Store struct {
	w *sql.DB // one connection: every write transaction
	r *sql.DB // read-only connections

	stmts map[string]*sql.Stmt // the writer's hot statements, prepared at open; read-only after
	reads map[string]*sql.Stmt // the readers' hot statements (readQueries), prepared at open; read-only after
}

var _ storage.Store = (*Store)(nil)

// Open opens the SQLite database at path, creating the file (readable by its
// owner only) if it does not exist, and brings its schema up to date. The
// directory must exist. It returns an error wrapping ErrSchemaTooNew if the
// database was written by a newer version of ode.
func Open(ctx context.Context, path string) (*Store, error) {
	s, err := open(ctx, path)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return s, nil
}

func open(ctx context.Context, path string) (*Store, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	// SQLite creates files with the mode of an existing database file, so
	// creating it here keeps the credentials and the -wal and -shm files
	// private to the owner.
	f, err := os.OpenFile(abs, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := f.Close(); err != nil {
		return nil, err
	}

	busy := strconv.FormatInt(busyTimeout.Milliseconds(), 10)
	w, err := openDB(ctx, abs, 1, url.Values{
		"_busy_timeout": {busy},
		"_journal_mode": {"WAL"},
		"_synchronous":  {"FULL"},
		"_foreign_keys": {"1"},
		"_txlock":       {"immediate"}, // take the write lock at BEGIN, so busy_timeout applies
		// The writer's page cache: 64 MiB (the default is 2 MiB), so
		// that the index pages a busy archive writes to stay in memory;
		// statement journals (an INSERT that may fail midway keeps one)
		// in memory rather than in a temporary file.
		"_pragma": {"cache_size(-65536)", "temp_store(memory)"},
	})
	if err != nil {
		return nil, err
	}
	if err := migrate(ctx, w, migrations); err != nil {
		return nil, errors.Join(err, w.Close())
	}
	r, err := openDB(ctx, abs, readers, url.Values{
		"_busy_timeout": {busy},
		"_query_only":   {"1"},
	})
	if err != nil {
		return nil, errors.Join(err, w.Close())
	}
	s := &Store{w: w, r: r}
	if err := s.prepare(ctx); err != nil {
		return nil, errors.Join(err, s.Close())
	}
	return s, nil
}

// openDB opens a pool of at most n connections to the file at abs, each set
// up by the driver's DSN parameters params, and checks that it works.
func openDB(ctx context.Context, abs string, n int, params url.Values) (*sql.DB, error) {
	dsn := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(n)
	db.SetMaxIdleConns(n)
	if err := db.PingContext(ctx); err != nil {
		return nil, errors.Join(err, db.Close())
	}
	return db, nil
}

// Close closes the database. Calls in progress finish first.
func (s *Store) Close() error {
	var errs []error
	for _, st := range s.stmts {
		errs = append(errs, st.Close())
	}
	for _, st := range s.reads {
		errs = append(errs, st.Close())
	}
	return errors.Join(append(errs, s.r.Close(), s.w.Close())...)
}

// stmt returns query, prepared on the writer when the store was opened,
// for tx: statements run for every message (the archive's inserts) are
// parsed once, not per transaction.
func (s *Store) stmt(ctx context.Context, tx *sql.Tx, query string) (*sql.Stmt, error) {
	st, ok := s.stmts[query]
	if !ok {
		return nil, fmt.Errorf("sqlite: statement not prepared: %.40s", query)
	}
	return tx.StmtContext(ctx, st), nil
}

// prepare prepares the writer's hot statements (hotQueries).
func (s *Store) prepare(ctx context.Context) error {
	s.stmts = make(map[string]*sql.Stmt)
	for _, q := range hotQueries() {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		s.stmts[q] = st
	}
	s.reads = make(map[string]*sql.Stmt)
	for _, q := range readQueries {
		st, err := s.r.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare: %w", err)
		}
		s.reads[q] = st
	}
	return nil
}

// readQueries are the statements Open prepares on the readers: those of
// every login, which SQLite would otherwise parse each time (a parse
// costs more than the lookup). database/sql prepares each on a reader
// connection when it first runs there and keeps it.
var readQueries = []string{fastTokensSQL}

// readStmt returns query, prepared on the readers when the store was
// opened.
func (s *Store) readStmt(query string) (*sql.Stmt, error) {
	st, ok := s.reads[query]
	if !ok {
		return nil, fmt.Errorf("sqlite: statement not prepared: %.40s", query)
	}
	return st, nil
}

// write runs fn in a write transaction and commits it if fn returns nil.
// fn must not call other methods of s: the writer has one connection.
func (s *Store) write(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		return errors.Join(err, ignoreDone(tx.Rollback()))
	}
	return tx.Commit()
}

// read runs fn in a read-only transaction on the reader pool, so that all
// its queries see one snapshot of the database.
func (s *Store) read(ctx context.Context, fn func(tx *sql.Tx) error) error {
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return err
	}
	defer tx.Rollback() // nothing to commit
	return fn(tx)
}

// accountID returns the id of the account local@domain, or an error
// wrapping storage.ErrNotFound if there is none.
func accountID(ctx context.Context, tx *sql.Tx, local, domain string) (int64, error) {
	id, ok, err := lookupAccount(ctx, tx, local, domain)
	if err == nil && !ok {
		err = fmt.Errorf("account %s@%s: %w", local, domain, storage.ErrNotFound)
	}
	return id, err
}

// lookupAccount returns the id of the account local@domain, with ok false
// if there is none.
func lookupAccount(ctx context.Context, tx *sql.Tx, local, domain string) (id int64, ok bool, err error) {
	return scanAccount(tx.QueryRowContext(ctx, lookupAccountSQL, domain, local))
}

// lookupAccountSQL finds an account's id by domain and local part.
const lookupAccountSQL = `SELECT id FROM accounts WHERE domain = ? AND local = ?`

// scanAccount reads the row of lookupAccountSQL.
func scanAccount(row *sql.Row) (id int64, ok bool, err error) {
	err = row.Scan(&id)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, false, nil
	}
	return id, err == nil, err
}

// toMillis and fromMillis convert the times stored as Unix milliseconds.
func toMillis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// ignoreDone drops the error of a rollback that database/sql already did
// because the context ended.
func ignoreDone(err error) error {
	if errors.Is(err, sql.ErrTxDone) {
		return nil
	}
	return err
}
