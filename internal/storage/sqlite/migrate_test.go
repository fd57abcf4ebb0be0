package sqlite

import (
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"testing"
	"testing/fstest"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
)

func TestLoadMigrations(t *testing.T) {
	if len(migrations) == 0 {
		t.Fatal("no embedded migrations")
	}
	tests := []struct {
		name  string
		files []string
		ok    bool
	}{
		{"in order", []string{"0001_a.sql", "0002_b.sql", "0003_c.sql"}, true},
		{"gap", []string{"0001_a.sql", "0003_c.sql"}, false},
		{"duplicate", []string{"0001_a.sql", "0001_b.sql"}, false},
		{"no number", []string{"accounts.sql"}, false},
		{"starts at 0", []string{"0000_a.sql"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			fsys := fstest.MapFS{}
			for _, f := range tt.files {
				fsys["migrations/"+f] = &fstest.MapFile{Data: []byte("SELECT 1;")}
			}
			ms, err := loadMigrations(fsys)
			if (err == nil) != tt.ok {
				t.Fatalf("loadMigrations(%v) = %v, %v", tt.files, ms, err)
			}
		})
	}
}

// TestMigrateAtomic checks that a failing migration leaves the schema as it
// was, and that a later run applies what is missing.
func TestMigrateAtomic(t *testing.T) {
	db, err := sql.Open("sqlite", filepath.Join(t.TempDir(), "m.db")+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	ctx := t.Context()

	load := func(files map[string]string) []migration {
		fsys := fstest.MapFS{}
		for name, text := range files {
			fsys["migrations/"+name] = &fstest.MapFile{Data: []byte(text)}
		}
		ms, err := loadMigrations(fsys)
		if err != nil {
			t.Fatal(err)
		}
		return ms
	}
	one := map[string]string{"0001_t.sql": "CREATE TABLE t (x INTEGER);"}
	if err := migrate(ctx, db, load(one)); err != nil {
		t.Fatalf("migrate 1: %v", err)
	}
	bad := map[string]string{
		"0001_t.sql":   one["0001_t.sql"],
		"0002_u.sql":   "CREATE TABLE u (y INTEGER);",
		"0003_bad.sql": "CREATE TABLE v (z INTEGER); THIS IS NOT SQL;",
	}
	if err := migrate(ctx, db, load(bad)); err == nil {
		t.Fatal("a failing migration succeeded")
	}
	var version int
	if err := db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != 1 {
		t.Errorf("version after a failed migration = %d, %v; want 1", version, err)
	}
	var n int
	if err := db.QueryRowContext(ctx, `SELECT COUNT(*) FROM sqlite_schema WHERE name IN ('u', 'v')`).Scan(&n); err != nil || n != 0 {
		t.Errorf("%d tables of the failed migrations remain (%v)", n, err)
	}

	bad["0003_bad.sql"] = "CREATE TABLE v (z INTEGER);"
	if err := migrate(ctx, db, load(bad)); err != nil {
		t.Fatalf("migrate 3: %v", err)
	}
	if err := migrate(ctx, db, load(one)); !errors.Is(err, ErrSchemaTooNew) {
		t.Errorf("migrate with fewer migrations = %v, want ErrSchemaTooNew", err)
	}
}

// TestPragmas checks the settings each connection gets.
func TestPragmas(t *testing.T) {
	s, err := Open(t.Context(), filepath.Join(t.TempDir(), "ode.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	tests := []struct {
		db     *sql.DB
		pragma string
		want   string
	}{
		{s.w, "journal_mode", "wal"},
		{s.w, "synchronous", "2"}, // FULL
		{s.w, "foreign_keys", "1"},
		{s.w, "busy_timeout", "5000"},
		{s.w, "query_only", "0"},
		{s.r, "journal_mode", "wal"},
		{s.r, "busy_timeout", "5000"},
		{s.r, "query_only", "1"},
	}
	for _, tt := range tests {
		var got string
		if err := tt.db.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
			t.Fatal(err)
		}
		if got != tt.want {
			pool := "writer"
			if tt.db == s.r {
				pool = "reader"
			}
			t.Errorf("%s: PRAGMA %s = %s, want %s", pool, tt.pragma, got, tt.want)
		}
	}
}

// TestMigrateFrom1 opens a database of schema version 1 that holds an
// account, as the first release wrote it, and uses the IM tables added since.
func TestMigrateFrom1(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	db, err := sql.Open("sqlite", path+"?_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := migrate(ctx, db, migrations[:1]); err != nil {
		t.Fatal(err)
	}
	if _, err := db.ExecContext(ctx, `INSERT INTO accounts (domain, local) VALUES ('example.org', 'alice')`); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var version int
	if err := s.r.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&version); err != nil || version != len(migrations) {
		t.Errorf("schema version = %d, %v; want %d", version, err, len(migrations))
	}
	item := storage.RosterItem{Contact: "juliet@example.com", Subscription: storage.SubBoth}
	if _, err := s.PutRosterItem(ctx, "alice", "example.org", item, 0); err != nil {
		t.Errorf("PutRosterItem after migrating: %v", err)
	}
	if err := s.StoreOffline(ctx, "alice", "example.org", storage.OfflineMessage{Stanza: []byte("<message/>")}, 0); err != nil {
		t.Errorf("StoreOffline after migrating: %v", err)
	}
}

// TestMigrateArchiveByTime fills an archive at schema version 9 (its
// per-account time index and foreign key), opens it with this version
// (the table rebuilt, archive_by_time) and checks that every row is still
// there and queried alike, new rows go in, and deleting an account still
// deletes its archive.
func TestMigrateArchiveByTime(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ode.db")
	db, err := sql.Open("sqlite", path+"?_txlock=immediate&_foreign_keys=1")
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	if err := migrate(ctx, db, migrations[:9]); err != nil {
		t.Fatal(err)
	}
	for _, local := range []string{"alice", "bob"} {
		if _, err := db.ExecContext(ctx, `INSERT INTO accounts (domain, local) VALUES ('example.org', ?)`, local); err != nil {
			t.Fatal(err)
		}
	}
	base := time.Date(2026, time.March, 1, 12, 0, 0, 0, time.UTC)
	for i := range 20 {
		account := 1 + i%2
		if _, err := db.ExecContext(ctx, `INSERT INTO archive (account_id, id, with_jid, with_resource, stamp, outgoing, stanza)
			VALUES (?, ?, 'carol@example.com', 'pc', ?, ?, ?)`,
			account, fmt.Sprintf("m%02d", i), base.Add(time.Duration(i)*time.Minute).UnixMilli(), i%3 == 0, fmt.Appendf(nil, "<message><body>%d</body></message>", i)); err != nil {
			t.Fatal(err)
		}
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	s, err := Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var indexes []string
	rows, err := s.r.QueryContext(ctx, `SELECT name FROM sqlite_schema WHERE tbl_name = 'archive' AND type IN ('index', 'trigger') ORDER BY name`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			t.Fatal(err)
		}
		indexes = append(indexes, name)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if want := []string{"archive_by_id", "archive_by_time", "archive_by_with"}; !slices.Equal(indexes, want) {
		t.Errorf("archive's indexes = %q, want %q", indexes, want)
	}

	page, err := s.QueryArchive(ctx, "alice", "example.org", storage.ArchiveQuery{
		Start: base.Add(4 * time.Minute), End: base.Add(12 * time.Minute), Max: 50})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, m := range page.Messages {
		got = append(got, m.ID+" "+string(m.Stanza))
		if m.With != "carol@example.com" || m.WithResource != "pc" || m.Outgoing != (m.ID == "m06" || m.ID == "m12") {
			t.Errorf("migrated row %+v", m)
		}
	}
	want := []string{"m04 <message><body>4</body></message>", "m06 <message><body>6</body></message>",
		"m08 <message><body>8</body></message>", "m10 <message><body>10</body></message>", "m12 <message><body>12</body></message>"}
	if !slices.Equal(got, want) || !page.Complete {
		t.Errorf("alice's archive from 12:04 to 12:12 after migrating = %q (complete %t), want %q", got, page.Complete, want)
	}
	if n, err := s.AppendArchive(ctx, []storage.ArchivedMessage{{Local: "alice", Domain: "example.org", ID: "m20",
		With: "carol@example.com", Stamp: base.Add(20 * time.Minute), Stanza: []byte("<message/>")}}); n != 1 || err != nil {
		t.Errorf("AppendArchive after migrating = %d, %v", n, err)
	}
	if err := s.DeleteAccount(ctx, "alice", "example.org"); err != nil {
		t.Fatal(err)
	}
	var left, bobs int
	if err := s.r.QueryRowContext(ctx, `SELECT COUNT(*), COUNT(*) FILTER (WHERE account_id = 2) FROM archive`).Scan(&left, &bobs); err != nil {
		t.Fatal(err)
	}
	if left != 10 || bobs != 10 {
		t.Errorf("after deleting alice the archive holds %d rows, %d of them bob's; want bob's 10", left, bobs)
	}
}
