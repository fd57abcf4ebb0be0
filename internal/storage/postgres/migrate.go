package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// ErrSchemaTooNew means the database was written by a newer version of ode,
// whose schema this program does not know.
var ErrSchemaTooNew = errors.New("database schema is newer than this program")

//go:embed migrations/*.sql
var migrationFiles embed.FS

// migrations is the embedded schema, checked when the package loads.
var migrations = mustLoadMigrations(migrationFiles)

// migrationLock is the key of the advisory lock held while migrating: the
// first bytes of "ode-migr" as an integer, unlikely to be another
// application's.
const migrationLock int64 = 0x6f64652d6d696772

// migration is one step of the schema: migrations/NNNN_name.sql.
type migration struct {
	version int
	name    string
	sql     string
}

func mustLoadMigrations(fsys fs.FS) []migration {
	ms, err := loadMigrations(fsys)
	if err != nil {
		panic("postgres: embedded migrations: " + err.Error())
	}
	return ms
}

// loadMigrations reads migrations/*.sql from fsys, in order. Their versions
// must run 1, 2, 3, … without gaps.
func loadMigrations(fsys fs.FS) ([]migration, error) {
	names, err := fs.Glob(fsys, "migrations/*.sql") // sorted
	if err != nil {
		return nil, err
	}
	ms := make([]migration, 0, len(names))
	for i, name := range names {
		base := path.Base(name)
		num, _, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 {
			return nil, fmt.Errorf("%s: want a name starting %04d_", name, i+1)
		}
		text, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, err
		}
		ms = append(ms, migration{version: v, name: base, sql: string(text)})
	}
	return ms, nil
}

// migrate applies the migrations the database has not seen, all in one
// transaction, so a failed migration leaves the schema as it was. The
// transaction first takes an advisory lock: another process migrating the
// same database at the same time waits for it, then finds nothing to do.
// The statement timeout does not apply to migrations.
func migrate(ctx context.Context, pool *pgxpool.Pool, ms []migration) error {
	err := pgx.BeginFunc(ctx, pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `SET LOCAL statement_timeout = 0`); err != nil {
			return err
		}
		if _, err := tx.Exec(ctx, `SELECT pg_advisory_xact_lock($1)`, migrationLock); err != nil {
			return fmt.Errorf("lock: %w", err)
		}
		if _, err := tx.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
			version    integer     PRIMARY KEY,
			applied_at timestamptz NOT NULL DEFAULT now()
		)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(ms) {
			return fmt.Errorf("%w: database at version %d, this program knows up to %d", ErrSchemaTooNew, current, len(ms))
		}
		for _, m := range ms[current:] {
			if _, err := tx.Exec(ctx, m.sql); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
			if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (version) VALUES ($1)`, m.version); err != nil {
				return fmt.Errorf("%s: %w", m.name, err)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("migrate: %w", doneErr(ctx, err))
	}
	return nil
}

// SchemaVersion returns the highest migration applied to the database and
// the highest this program knows.
func (s *Store) SchemaVersion(ctx context.Context) (applied, known int, err error) {
	err = s.pool.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&applied)
	if err != nil {
		return 0, 0, fmt.Errorf("postgres: schema version: %w", err)
	}
	return applied, len(migrations), nil
}

// Info is what Check reports about a database.
type Info struct {
	// Server is the server's version string (SELECT version()).
	Server string
	// User and Database are the role and database connected to.
	User, Database string
	// Schema is the first schema of the search_path, where ode's
	// tables are.
	Schema string
	// Applied is the highest migration applied (0: none, a new
	// database), Known the highest this program knows.
	Applied, Known int
}

// Check connects to the database at dsn and reports on it, changing
// nothing: `ode check` uses it. It returns an error wrapping
// ErrSchemaTooNew if the database was written by a newer version of ode.
func Check(ctx context.Context, dsn string, opts Options) (Info, error) {
	cfg, err := PoolConfig(dsn, opts)
	if err != nil {
		return Info{}, err
	}
	conn, err := pgx.ConnectConfig(ctx, cfg.ConnConfig)
	if err != nil {
		return Info{}, fmt.Errorf("postgres: connect to %s: %w", Redact(dsn), err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	info := Info{Known: len(migrations)}
	var schema *string
	if err := conn.QueryRow(ctx, `SELECT version(), current_user, current_database(), current_schema()`).
		Scan(&info.Server, &info.User, &info.Database, &schema); err != nil {
		return Info{}, fmt.Errorf("postgres: %w", err)
	}
	if schema == nil {
		return info, fmt.Errorf("postgres: no schema of the search_path exists in database %s", info.Database)
	}
	info.Schema = *schema
	var exists bool
	if err := conn.QueryRow(ctx, `SELECT to_regclass('schema_migrations') IS NOT NULL`).Scan(&exists); err != nil {
		return Info{}, fmt.Errorf("postgres: %w", err)
	}
	if exists {
		if err := conn.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&info.Applied); err != nil {
			return Info{}, fmt.Errorf("postgres: schema version: %w", err)
		}
	}
	if info.Applied > info.Known {
		return info, fmt.Errorf("postgres: %w: database at version %d, this program knows up to %d", ErrSchemaTooNew, info.Applied, info.Known)
	}
	return info, nil
}
