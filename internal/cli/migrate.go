package cli

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ode-xmpp/ode/internal/storage/postgres"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
)

// `ode migrate` copies a store from one backend to the other, table by
// table, keeping every key (account ids, offline message ids), so that
// what refers to a row still does. Each row is inserted with ON CONFLICT
// DO NOTHING: a second run copies only what the first did not, and the
// row counts of every table are compared at the end. Both schemas are
// brought up to date first, by the backends' own Open.

// kind is how a column's values are represented in each backend; rows are
// carried between them as Go values of the kind's type.
type kind int

const (
	kInt       kind = iota // int64 in both
	kText                  // string in both
	kBytes                 // []byte: BLOB, bytea
	kNullBytes             // []byte or nil: a BLOB or bytea that may be NULL
	kBool                  // bool: INTEGER 0/1 in SQLite, boolean
	kMillis                // time.Time: Unix milliseconds in SQLite, timestamptz
	kSeconds               // time.Time: Unix seconds in SQLite, timestamptz
	kGroups                // []string: a JSON array in SQLite, text[]
)

// column is one column of a table to copy; sqliteName is set when SQLite
// names it otherwise.
type column struct {
	name       string
	kind       kind
	sqliteName string
}

func (c column) nameIn(isSQLite bool) string {
	if isSQLite && c.sqliteName != "" {
		return c.sqliteName
	}
	return c.name
}

// table is one table to copy, with the columns of its key first.
type table struct {
	name string
	key  int // the first key columns are the primary key
	cols []column
}

// tables lists every table of the schema (but schema_migrations), in an
// order in which rows refer only to rows of tables copied before them.
// TestMigrateCoversSchema checks it against both backends' schemas.
var tables = []table{
	{"accounts", 1, []column{{"id", kInt, ""}, {"domain", kText, ""}, {"local", kText, ""}, {"created_at", kSeconds, ""}}},
	{"credentials", 2, []column{{"account_id", kInt, ""}, {"hash", kText, ""}, {"salt", kBytes, ""}, {"iterations", kInt, ""},
		{"stored_key", kBytes, ""}, {"server_key", kBytes, ""}}},
	{"roster_versions", 1, []column{{"account_id", kInt, ""}, {"version", kInt, ""}}},
	{"roster_items", 2, []column{{"account_id", kInt, ""}, {"contact", kText, ""}, {"name", kText, ""}, {"groups", kGroups, "groups_json"},
		{"subscription", kText, ""}, {"ask_out", kBool, ""}, {"pending_in", kBool, ""}, {"approved", kBool, ""}, {"version", kInt, ""}}},
	{"roster_tombstones", 2, []column{{"account_id", kInt, ""}, {"contact", kText, ""}, {"version", kInt, ""}}},
	{"pending_subscriptions", 1, []column{{"id", kInt, ""}, {"account_id", kInt, ""}, {"contact", kText, ""}, {"stanza", kBytes, ""}}},
	{"offline_messages", 1, []column{{"id", kInt, ""}, {"account_id", kInt, ""}, {"stanza", kBytes, ""}, {"stamp", kMillis, ""}}},
	{"xml_documents", 2, []column{{"account_id", kInt, ""}, {"doc_key", kText, ""}, {"doc", kBytes, ""}}},
	{"blocked_jids", 2, []column{{"account_id", kInt, ""}, {"jid", kText, ""}}},
	{"last_activity", 1, []column{{"account_id", kInt, ""}, {"at", kMillis, ""}, {"status", kText, ""}}},
	{"uploads", 1, []column{{"id", kText, ""}, {"account_id", kInt, ""}, {"filename", kText, ""}, {"content_type", kText, ""},
		{"size", kInt, ""}, {"created", kMillis, ""}, {"stored", kBool, ""}}},
	{"archive", 2, []column{{"account_id", kInt, ""}, {"id", kText, ""}, {"with_jid", kText, ""}, {"with_resource", kText, ""},
		{"stamp", kMillis, ""}, {"outgoing", kBool, ""}, {"stanza", kBytes, ""}}},
	{"push_registrations", 3, []column{{"account_id", kInt, ""}, {"service", kText, ""}, {"node", kText, ""},
		{"options", kNullBytes, ""}, {"created", kMillis, ""}}},
	{"pubsub_nodes", 2, []column{{"account_id", kInt, ""}, {"node", kText, ""}, {"config", kBytes, ""}, {"created", kMillis, ""}}},
	{"pubsub_items", 3, []column{{"account_id", kInt, ""}, {"node", kText, ""}, {"item_id", kText, ""}, {"seq", kInt, ""},
		{"publisher", kText, ""}, {"published", kMillis, ""}, {"payload", kNullBytes, ""}}},
	{"rooms", 1, []column{{"jid", kText, ""}, {"service", kText, ""}, {"config", kBytes, ""}, {"subject", kNullBytes, ""}, {"created", kMillis, ""}}},
	{"room_affiliations", 2, []column{{"room", kText, ""}, {"jid", kText, ""}, {"affiliation", kText, ""}}},
	{"room_archive", 2, []column{{"room", kText, ""}, {"id", kText, ""}, {"with_jid", kText, ""}, {"with_resource", kText, ""},
		{"stamp", kMillis, ""}, {"stanza", kBytes, ""}}},
	{"fast_tokens", 3, []column{{"account_id", kInt, ""}, {"client_id", kText, ""}, {"token_key", kBytes, ""},
		{"mechanism", kText, ""}, {"created", kMillis, ""}, {"expires", kMillis, ""}}},
}

// sequences are the tables whose integer id the database hands out; the
// destination's counter is moved past the source's, so that ids are not
// reused.
var sequences = []string{"accounts", "pending_subscriptions", "offline_messages"}

// migrateBatch is how many rows one INSERT carries.
const migrateBatch = 500

// sampleRows is how many rows at each end of every table are compared
// after the copy.
const sampleRows = 20

// endpoint is one side of a migration.
type endpoint interface {
	String() string
	isSQLite() bool
	// query runs a query on the source snapshot (or the destination)
	// and calls fn with each row scanned into dest.
	query(ctx context.Context, sql string, dest []any, fn func() error) error
	exec(ctx context.Context, sql string, args ...any) (int64, error)
	placeholder(n int) string
	// sequence returns the last id handed out for table's id column.
	sequence(ctx context.Context, table string) (int64, error)
	// setSequence makes the next id handed out for table above last.
	setSequence(ctx context.Context, table string, last int64) error
	Close() error
}

// openEndpoint opens "sqlite:PATH" or "postgres:DSN", bringing its schema
// up to date. A SQLite source must exist.
func openEndpoint(ctx context.Context, spec string, source bool) (endpoint, error) {
	driver, arg, ok := strings.Cut(spec, ":")
	if !ok || arg == "" {
		return nil, fmt.Errorf("%q: want sqlite:PATH or postgres:DSN", spec)
	}
	switch driver {
	case "sqlite":
		if _, err := os.Stat(arg); source && err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
		st, err := sqlite.Open(ctx, arg)
		if err != nil {
			return nil, err
		}
		if err := st.Close(); err != nil {
			return nil, err
		}
		return openSQLite(ctx, arg, source)
	case "postgres", "postgresql":
		if driver == "postgresql" || strings.HasPrefix(arg, "//") {
			arg = driver + ":" + arg // a URL: postgres://…
		}
		st, err := postgres.Open(ctx, arg, postgres.Options{MaxConns: 2, ConnectTimeout: postgres.DefaultConnectTimeout})
		if err != nil {
			return nil, err
		}
		return openPostgres(ctx, st, arg, source)
	}
	return nil, fmt.Errorf("%q: unknown driver %q; want sqlite:PATH or postgres:DSN", spec, driver)
}

// sqliteEnd is a SQLite file; as a source, its reads share one
// transaction.
type sqliteEnd struct {
	path string
	db   *sql.DB
	tx   *sql.Tx // source only
}

func openSQLite(ctx context.Context, path string, source bool) (*sqliteEnd, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	params := url.Values{"_busy_timeout": {"5000"}, "_foreign_keys": {"1"}, "_synchronous": {"FULL"}}
	dsn := (&url.URL{Scheme: "file", Path: filepath.ToSlash(abs), RawQuery: params.Encode()}).String()
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	e := &sqliteEnd{path: path, db: db}
	if source {
		if e.tx, err = db.BeginTx(ctx, &sql.TxOptions{ReadOnly: true}); err != nil {
			db.Close()
			return nil, fmt.Errorf("sqlite: %w", err)
		}
	}
	return e, nil
}

func (e *sqliteEnd) String() string         { return "sqlite:" + e.path }
func (e *sqliteEnd) isSQLite() bool         { return true }
func (e *sqliteEnd) placeholder(int) string { return "?" }
func (e *sqliteEnd) Close() error           { return errors.Join(e.rollback(), e.db.Close()) }
func (e *sqliteEnd) rollback() error {
	if e.tx == nil {
		return nil
	}
	return e.tx.Rollback()
}

func (e *sqliteEnd) query(ctx context.Context, q string, dest []any, fn func() error) error {
	var rows *sql.Rows
	var err error
	if e.tx != nil {
		rows, err = e.tx.QueryContext(ctx, q)
	} else {
		rows, err = e.db.QueryContext(ctx, q)
	}
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		if err := rows.Scan(dest...); err != nil {
			return err
		}
		if err := fn(); err != nil {
			return err
		}
	}
	return rows.Err()
}

func (e *sqliteEnd) exec(ctx context.Context, q string, args ...any) (int64, error) {
	res, err := e.db.ExecContext(ctx, q, args...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

func (e *sqliteEnd) sequence(ctx context.Context, table string) (int64, error) {
	var n int64
	err := e.query(ctx, fmt.Sprintf(`SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = '%[1]s'), 0),
		COALESCE((SELECT MAX(id) FROM %[1]s), 0))`, table), []any{&n}, func() error { return nil })
	return n, err
}

// setSequence raises the AUTOINCREMENT counter, or for a table without
// one relies on SQLite's next rowid being above the largest.
func (e *sqliteEnd) setSequence(ctx context.Context, table string, last int64) error {
	var has int
	if err := e.query(ctx, `SELECT COUNT(*) FROM sqlite_master WHERE name = 'sqlite_sequence'`, []any{&has}, func() error { return nil }); err != nil || has == 0 {
		return err
	}
	if _, err := e.exec(ctx, `UPDATE sqlite_sequence SET seq = MAX(seq, ?) WHERE name = ?`, last, table); err != nil {
		return err
	}
	_, err := e.exec(ctx, `INSERT INTO sqlite_sequence (name, seq) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = ?)
		AND EXISTS (SELECT 1 FROM sqlite_master WHERE name = ? AND sql LIKE '%AUTOINCREMENT%')`, table, last, table, table)
	return err
}

// pgEnd is a PostgreSQL database; as a source, its reads share one
// repeatable-read transaction.
type pgEnd struct {
	dsn string
	st  *postgres.Store
	tx  pgx.Tx // source only
}

func openPostgres(ctx context.Context, st *postgres.Store, dsn string, source bool) (*pgEnd, error) {
	e := &pgEnd{dsn: dsn, st: st}
	if source {
		tx, err := st.Pool().BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
		if err != nil {
			st.Close()
			return nil, fmt.Errorf("postgres: %w", err)
		}
		e.tx = tx
	}
	return e, nil
}

func (e *pgEnd) String() string           { return "postgres:" + postgres.Redact(e.dsn) }
func (e *pgEnd) isSQLite() bool           { return false }
func (e *pgEnd) placeholder(n int) string { return fmt.Sprintf("$%d", n) }

func (e *pgEnd) Close() error {
	if e.tx != nil {
		_ = e.tx.Rollback(context.Background()) // read only: nothing to keep
	}
	return e.st.Close()
}

func (e *pgEnd) query(ctx context.Context, q string, dest []any, fn func() error) error {
	var rows pgx.Rows
	var err error
	if e.tx != nil {
		rows, err = e.tx.Query(ctx, q)
	} else {
		rows, err = e.st.Pool().Query(ctx, q)
	}
	if err != nil {
		return err
	}
	_, err = pgx.ForEachRow(rows, dest, fn)
	return err
}

func (e *pgEnd) exec(ctx context.Context, q string, args ...any) (int64, error) {
	tag, err := e.st.Pool().Exec(ctx, q, args...)
	return tag.RowsAffected(), err
}

func (e *pgEnd) sequence(ctx context.Context, table string) (int64, error) {
	var n int64
	err := e.query(ctx, fmt.Sprintf(`SELECT GREATEST(COALESCE(pg_sequence_last_value(pg_get_serial_sequence('%[1]s', 'id')::regclass), 0),
		COALESCE((SELECT MAX(id) FROM %[1]s), 0))`, table), []any{&n}, func() error { return nil })
	return n, err
}

func (e *pgEnd) setSequence(ctx context.Context, table string, last int64) error {
	if last < 1 {
		return nil
	}
	_, err := e.exec(ctx, fmt.Sprintf(`SELECT setval(pg_get_serial_sequence('%[1]s', 'id'),
		GREATEST($1::bigint, COALESCE(pg_sequence_last_value(pg_get_serial_sequence('%[1]s', 'id')::regclass), 0)))`, table), last)
	return err
}

// migration is one run of ode migrate.
type migration struct {
	src, dst endpoint
	report   func(format string, args ...any)
}

// run copies every table, then compares the counts and samples.
func (m *migration) run(ctx context.Context) error {
	if err := m.checkAccounts(ctx); err != nil {
		return err
	}
	for _, t := range tables {
		n, added, err := m.copyTable(ctx, t)
		if err != nil {
			return fmt.Errorf("%s: %w", t.name, err)
		}
		m.report("%-22s %8d rows, %8d new", t.name, n, added)
	}
	for _, t := range sequences {
		last, err := m.src.sequence(ctx, t)
		if err != nil {
			return fmt.Errorf("%s: id sequence: %w", t, err)
		}
		if err := m.dst.setSequence(ctx, t, last); err != nil {
			return fmt.Errorf("%s: id sequence: %w", t, err)
		}
	}
	return m.verify(ctx)
}

// checkAccounts refuses a destination whose accounts are not a part of the
// source's with the same ids: rows copied with the source's account ids
// would belong to other accounts.
func (m *migration) checkAccounts(ctx context.Context) error {
	type acct struct{ domain, local string }
	dst := make(map[int64]acct)
	byName := make(map[acct]int64)
	var (
		id            int64
		domain, local string
	)
	err := m.dst.query(ctx, `SELECT id, domain, local FROM accounts`, []any{&id, &domain, &local}, func() error {
		dst[id] = acct{domain, local}
		byName[acct{domain, local}] = id
		return nil
	})
	if err != nil || len(dst) == 0 {
		return err
	}
	return m.src.query(ctx, `SELECT id, domain, local FROM accounts`, []any{&id, &domain, &local}, func() error {
		a := acct{domain, local}
		if d, ok := dst[id]; ok && d != a {
			return fmt.Errorf("the destination's account %d is %s@%s, the source's %s@%s: copy into an empty database", id, d.local, d.domain, local, domain)
		}
		if other, ok := byName[a]; ok && other != id {
			return fmt.Errorf("the destination has %s@%s as account %d, the source as %d: copy into an empty database", local, domain, other, id)
		}
		return nil
	})
}

// selectSQL returns the query of t's rows on e, in key order; limit > 0
// keeps that many from the start (desc: from the end).
func selectSQL(e endpoint, t table, limit int, desc bool) string {
	cols := make([]string, len(t.cols))
	for i, c := range t.cols {
		cols[i] = c.nameIn(e.isSQLite())
	}
	order := make([]string, t.key)
	for i := range order {
		order[i] = cols[i]
		if desc {
			order[i] += " DESC"
		}
	}
	q := "SELECT " + strings.Join(cols, ", ") + " FROM " + t.name + " ORDER BY " + strings.Join(order, ", ")
	if limit > 0 {
		q += fmt.Sprintf(" LIMIT %d", limit)
	}
	return q
}

// scanDest returns pointers to scan one row of t from e into, and a
// function that turns them into the row's Go values.
func scanDest(e endpoint, t table) ([]any, func() []any) {
	dest := make([]any, len(t.cols))
	for i, c := range t.cols {
		switch {
		case c.kind == kInt, e.isSQLite() && (c.kind == kMillis || c.kind == kSeconds):
			dest[i] = new(int64)
		case c.kind == kText, e.isSQLite() && c.kind == kGroups:
			dest[i] = new(string)
		case c.kind == kBytes, c.kind == kNullBytes:
			dest[i] = new([]byte)
		case c.kind == kBool:
			dest[i] = new(bool)
		case c.kind == kMillis, c.kind == kSeconds:
			dest[i] = new(time.Time)
		case c.kind == kGroups:
			dest[i] = new([]string)
		}
	}
	return dest, func() []any {
		row := make([]any, len(t.cols))
		for i, c := range t.cols {
			v := reflect.ValueOf(dest[i]).Elem().Interface()
			switch {
			case c.kind == kMillis && e.isSQLite():
				v = time.UnixMilli(v.(int64)).UTC()
			case c.kind == kSeconds && e.isSQLite():
				v = time.Unix(v.(int64), 0).UTC()
			case c.kind == kMillis:
				v = time.UnixMilli(v.(time.Time).UnixMilli()).UTC()
			case c.kind == kSeconds:
				v = time.Unix(v.(time.Time).Unix(), 0).UTC()
			case c.kind == kGroups && e.isSQLite():
				var gs []string
				_ = json.Unmarshal([]byte(v.(string)), &gs) // the backend wrote it
				v = gs
			case c.kind == kBytes:
				v = append([]byte{}, v.([]byte)...) // not NULL; and a copy: the scan buffer is reused
			case c.kind == kNullBytes:
				if b := v.([]byte); b != nil {
					v = append([]byte{}, b...)
				} else {
					v = nil
				}
			}
			if gs, ok := v.([]string); ok {
				if gs == nil {
					gs = []string{}
				}
				v = append([]string{}, gs...)
			}
			row[i] = v
		}
		return row
	}
}

// arg converts a row's value of column c for e.
func arg(e endpoint, c column, v any) any {
	if !e.isSQLite() {
		if v == nil {
			return []byte(nil)
		}
		return v
	}
	switch c.kind {
	case kMillis:
		return v.(time.Time).UnixMilli()
	case kSeconds:
		return v.(time.Time).Unix()
	case kGroups:
		b, _ := json.Marshal(v.([]string))
		return string(b)
	}
	return v
}

// copyTable copies t's rows in batches and returns how many the source
// has and how many were new in the destination.
func (m *migration) copyTable(ctx context.Context, t table) (n, added int64, err error) {
	cols := make([]string, len(t.cols))
	for i, c := range t.cols {
		cols[i] = c.nameIn(m.dst.isSQLite())
	}
	var batch [][]any
	flush := func() error {
		if len(batch) == 0 {
			return nil
		}
		var sb strings.Builder
		sb.WriteString("INSERT INTO " + t.name + " (" + strings.Join(cols, ", ") + ") VALUES ")
		args := make([]any, 0, len(batch)*len(t.cols))
		for i, row := range batch {
			if i > 0 {
				sb.WriteString(", ")
			}
			sb.WriteString("(")
			for j, c := range t.cols {
				if j > 0 {
					sb.WriteString(", ")
				}
				args = append(args, arg(m.dst, c, row[j]))
				sb.WriteString(m.dst.placeholder(len(args)))
			}
			sb.WriteString(")")
		}
		sb.WriteString(" ON CONFLICT DO NOTHING")
		k, err := m.dst.exec(ctx, sb.String(), args...)
		added += k
		batch = batch[:0]
		return err
	}
	dest, values := scanDest(m.src, t)
	err = m.src.query(ctx, selectSQL(m.src, t, 0, false), dest, func() error {
		n++
		batch = append(batch, values())
		if len(batch) == migrateBatch {
			return flush()
		}
		return nil
	})
	if err == nil {
		err = flush()
	}
	return n, added, err
}

// verify compares the row counts of every table, and the first and last
// rows of each.
func (m *migration) verify(ctx context.Context) error {
	var problems []string
	for _, t := range tables {
		var a, b int64
		if err := m.src.query(ctx, "SELECT COUNT(*) FROM "+t.name, []any{&a}, func() error { return nil }); err != nil {
			return fmt.Errorf("%s: count: %w", t.name, err)
		}
		if err := m.dst.query(ctx, "SELECT COUNT(*) FROM "+t.name, []any{&b}, func() error { return nil }); err != nil {
			return fmt.Errorf("%s: count: %w", t.name, err)
		}
		if a != b {
			problems = append(problems, fmt.Sprintf("%s: %d rows in the source, %d in the destination", t.name, a, b))
			continue
		}
		for _, desc := range []bool{false, true} {
			sa, err := sample(ctx, m.src, t, desc)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			sb, err := sample(ctx, m.dst, t, desc)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if !reflect.DeepEqual(sa, sb) {
				problems = append(problems, fmt.Sprintf("%s: the rows at the %s differ", t.name, map[bool]string{false: "start", true: "end"}[desc]))
			}
		}
	}
	if len(problems) > 0 {
		return errors.New("verify: " + strings.Join(problems, "; "))
	}
	return nil
}

func sample(ctx context.Context, e endpoint, t table, desc bool) ([][]any, error) {
	dest, values := scanDest(e, t)
	var rows [][]any
	err := e.query(ctx, selectSQL(e, t, sampleRows, desc), dest, func() error {
		rows = append(rows, values())
		return nil
	})
	return rows, err
}

const migrateSynopsis = "ode migrate --from sqlite:PATH|postgres:DSN --to sqlite:PATH|postgres:DSN"

// migrateCmd is `ode migrate`.
func (e env) migrateCmd(args []string) int {
	fs, _ := e.newFlags("migrate", migrateSynopsis)
	from := fs.String("from", "", "the store to copy: sqlite:PATH or postgres:DSN")
	to := fs.String("to", "", "the store to copy into (created or brought up to date): sqlite:PATH or postgres:DSN")
	pos, err := parse(fs, args)
	if err != nil {
		return flagStatus(err)
	}
	if len(pos) != 0 || *from == "" || *to == "" {
		return e.errorf("usage: %s", migrateSynopsis)
	}
	ctx, stop := signalContext()
	defer stop()
	start := time.Now()
	src, err := openEndpoint(ctx, *from, true)
	if err != nil {
		return e.errorf("migrate: --from: %v", err)
	}
	defer src.Close()
	dst, err := openEndpoint(ctx, *to, false)
	if err != nil {
		return e.errorf("migrate: --to: %v", err)
	}
	defer dst.Close()
	fmt.Fprintf(e.stdout, "copying %s to %s\n", src, dst)
	m := &migration{src: src, dst: dst, report: func(format string, args ...any) {
		fmt.Fprintf(e.stdout, format+"\n", args...)
	}}
	if err := m.run(ctx); err != nil {
		return e.errorf("migrate: %v", err)
	}
	fmt.Fprintf(e.stdout, "done in %v: every table has as many rows in both, and the first and last %d of each are the same\n",
		time.Since(start).Round(time.Millisecond), sampleRows)
	return 0
}
