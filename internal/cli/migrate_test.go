package cli

import (
	"database/sql"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/postgres"
	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
	"github.com/ode-xmpp/ode/internal/storage/sqlite"
	"github.com/ode-xmpp/ode/internal/storage/storagetest"
)

func openSQLiteStore(t *testing.T, path string) *sqlite.Store {
	t.Helper()
	s, err := sqlite.Open(t.Context(), path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func openPostgresStore(t *testing.T, dsn string) *postgres.Store {
	t.Helper()
	s, err := postgres.Open(t.Context(), dsn, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

var newRows = regexp.MustCompile(`(?m)^(\w+) +(\d+) rows, +(\d+) new$`)

// migrate runs ode migrate and returns the tables' new rows.
func migrate(t *testing.T, from, to string) map[string]string {
	t.Helper()
	st, out, errs := run(t, "", "migrate", "--from", from, "--to", to)
	if st != 0 || !strings.Contains(out, "done in") {
		t.Fatalf("migrate %s → %s: status %d\n%s%s", from, to, st, out, errs)
	}
	added := map[string]string{}
	for _, m := range newRows.FindAllStringSubmatch(out, -1) {
		added[m[1]] = m[3]
	}
	if len(added) != len(tables) {
		t.Errorf("migrate reported %d tables, want %d:\n%s", len(added), len(tables), out)
	}
	return added
}

// TestMigrateRoundTrip copies a populated SQLite store to PostgreSQL,
// again (nothing new), and back to a new SQLite file, comparing every
// copy with the original through the storage interfaces.
func TestMigrateRoundTrip(t *testing.T) {
	dir := t.TempDir()
	first := filepath.Join(dir, "first.db")
	src := openSQLiteStore(t, first)
	f := storagetest.Populate(t, src)
	dsn := pgtest.Shared(t).Schema(t)

	added := migrate(t, "sqlite:"+first, "postgres:"+dsn)
	if added["archive"] != "1210" || added["accounts"] != "1205" {
		t.Errorf("first copy: new rows %v", added)
	}
	pg := openPostgresStore(t, dsn)
	storagetest.WantSame(t, src, pg, f)

	for table, n := range migrate(t, "sqlite:"+first, "postgres:"+dsn) {
		if n != "0" {
			t.Errorf("second copy: %s rows of %s again", n, table)
		}
	}

	second := filepath.Join(dir, "second.db")
	migrate(t, "postgres:"+dsn, "sqlite:"+second)
	back := openSQLiteStore(t, second)
	storagetest.WantSame(t, src, back, f)

	// The copies hand out ids after the original's, deleted ones included.
	m := storage.OfflineMessage{Stanza: []byte("<message/>"), Stamp: time.Now()}
	for _, s := range []storage.Store{src, pg, back} {
		if err := s.StoreOffline(t.Context(), "carol", "example.org", m, 0); err != nil {
			t.Fatal(err)
		}
	}
	ids := map[string]int64{}
	for name, s := range map[string]storage.Store{"original": src, "postgres": pg, "sqlite": back} {
		ms, err := s.OfflineMessages(t.Context(), "carol", "example.org")
		if err != nil || len(ms) != 1 {
			t.Fatalf("%s: carol's offline messages %v, %v", name, ms, err)
		}
		ids[name] = ms[0].ID
	}
	if ids["postgres"] < ids["original"] || ids["sqlite"] < ids["original"] {
		t.Errorf("a new offline message has id %v; the copies' must not be below the original's", ids)
	}
}

// TestMigrateRefusesOtherAccounts checks that a destination holding other
// accounts under the source's ids is left alone.
func TestMigrateRefusesOtherAccounts(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	src := openSQLiteStore(t, path)
	if err := src.CreateAccount(t.Context(), "alice", "example.org", nil); err != nil {
		t.Fatal(err)
	}
	dsn := pgtest.Shared(t).Schema(t)
	dst := openPostgresStore(t, dsn)
	if err := dst.CreateAccount(t.Context(), "zed", "example.org", nil); err != nil {
		t.Fatal(err)
	}
	st, out, errs := run(t, "", "migrate", "--from", "sqlite:"+path, "--to", "postgres:"+dsn)
	if st != 1 || !strings.Contains(errs, "copy into an empty database") {
		t.Errorf("migrate into another server's database: status %d\n%s%s", st, out, errs)
	}
	if ok, err := dst.AccountExists(t.Context(), "alice", "example.org"); err != nil || ok {
		t.Errorf("alice was copied: %v, %v", ok, err)
	}
}

func TestMigrateUsage(t *testing.T) {
	for _, args := range [][]string{
		{"migrate"},
		{"migrate", "--from", "sqlite:/nonexistent/ode.db"},
		{"migrate", "--from", "mysql:x", "--to", "sqlite:/tmp/x.db"},
		{"migrate", "--from", "sqlite:" + filepath.Join(t.TempDir(), "missing.db"), "--to", "sqlite:x.db"},
	} {
		if st, _, errs := run(t, "", args...); st == 0 || !strings.Contains(errs, "ode: ") {
			t.Errorf("%v: status %d, %q", args, st, errs)
		}
	}
}

// TestMigrateCoversSchema checks that ode migrate copies every table and
// column of both backends' schemas.
func TestMigrateCoversSchema(t *testing.T) {
	want := map[string][]string{}
	wantSQLite := map[string][]string{}
	for _, tb := range tables {
		for _, c := range tb.cols {
			want[tb.name] = append(want[tb.name], c.nameIn(false))
			wantSQLite[tb.name] = append(wantSQLite[tb.name], c.nameIn(true))
		}
	}
	path := filepath.Join(t.TempDir(), "ode.db")
	openSQLiteStore(t, path)
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	got := map[string][]string{}
	rows, err := db.QueryContext(t.Context(), `SELECT m.name, p.name FROM sqlite_master m, pragma_table_info(m.name) p
		WHERE m.type = 'table' AND m.name NOT IN ('schema_migrations', 'sqlite_sequence') ORDER BY m.name, p.cid`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var tb, col string
		if err := rows.Scan(&tb, &col); err != nil {
			t.Fatal(err)
		}
		got[tb] = append(got[tb], col)
	}
	rows.Close()
	compareSchema(t, "sqlite", wantSQLite, got)

	pg := openPostgresStore(t, pgtest.Shared(t).Schema(t))
	got = map[string][]string{}
	prows, err := pg.Pool().Query(t.Context(), `SELECT table_name::text, column_name::text FROM information_schema.columns
		WHERE table_schema = current_schema() AND table_name <> 'schema_migrations' ORDER BY table_name, ordinal_position`)
	if err != nil {
		t.Fatal(err)
	}
	for prows.Next() {
		var tb, col string
		if err := prows.Scan(&tb, &col); err != nil {
			t.Fatal(err)
		}
		got[tb] = append(got[tb], col)
	}
	prows.Close()
	compareSchema(t, "postgres", want, got)
}

func compareSchema(t *testing.T, backend string, want, got map[string][]string) {
	t.Helper()
	for tb, cols := range got {
		w, ok := want[tb]
		if !ok {
			t.Errorf("%s: ode migrate does not copy table %s", backend, tb)
			continue
		}
		slices.Sort(cols)
		w = slices.Sorted(slices.Values(w))
		if !slices.Equal(cols, w) {
			t.Errorf("%s: table %s has columns %v, ode migrate copies %v", backend, tb, cols, w)
		}
	}
	for tb := range want {
		if _, ok := got[tb]; !ok {
			t.Errorf("%s: ode migrate copies table %s, which the schema lacks", backend, tb)
		}
	}
}

// TestCheckPostgres checks that ode check connects to the configured
// database and reports on it, and fails when it cannot connect.
func TestCheckPostgres(t *testing.T) {
	c := pgtest.Shared(t)
	good := testConfig(t, fmt.Sprintf("[storage]\ndriver = \"postgres\"\n[storage.postgres]\ndsn = %q\n", c.Schema(t)))
	st, out, errs := run(t, "", "check", "-skip", offline, "-c", good)
	if st != 0 || !strings.Contains(out, "storage: postgres") || !strings.Contains(out, "schema version 0 of") || !strings.Contains(out, "configuration ok") {
		t.Errorf("check: status %d\n%s%s", st, out, errs)
	}
	bad := testConfig(t, "[storage]\ndriver = \"postgres\"\n[storage.postgres]\ndsn = \"postgres://ode:s3cret@127.0.0.1:1/ode\"\nconnect_timeout = \"2s\"\n")
	st, out, errs = run(t, "", "check", "-skip", offline, "-c", bad)
	if st != 1 || !strings.Contains(errs, "storage.postgres") || strings.Contains(errs+out, "s3cret") {
		t.Errorf("check with no server: status %d\n%s%s", st, out, errs)
	}
}

// TestUserOnPostgres manages accounts with ode user on a PostgreSQL store.
func TestUserOnPostgres(t *testing.T) {
	cfg := testConfig(t, fmt.Sprintf("[storage]\ndriver = \"postgres\"\n[storage.postgres]\ndsn = %q\n", pgtest.Shared(t).Schema(t)))
	for _, c := range []struct {
		stdin string
		args  []string
		want  string
	}{
		{"", []string{"user", "add", "alice@example.org", "-c", cfg, "--password", "wonderland"}, "created alice@example.org"},
		{"bob@example.org secret\ncarol@example.net s3\n", []string{"user", "import", "-c", cfg}, "imported 2 accounts"},
		{"", []string{"user", "list", "-c", cfg}, "carol@example.net\nalice@example.org\nbob@example.org\n"},
		{"", []string{"user", "del", "bob@example.org", "-c", cfg}, "deleted bob@example.org"},
		{"", []string{"user", "list", "example.org", "-c", cfg}, "alice@example.org\n"},
	} {
		if st, out, errs := run(t, c.stdin, c.args...); st != 0 || !strings.Contains(out, c.want) {
			t.Errorf("%v: status %d, %q %q; want %q", c.args, st, out, errs, c.want)
		}
	}
}
