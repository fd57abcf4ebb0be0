package pgtest_test

import (
	"testing"

	"github.com/jackc/pgx/v5"
	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
)

func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{}, func() int {
		code := m.Run()
		if err := goleak.Find(); err != nil && code == 0 {
			println("goleak:", err.Error())
			code = 1
		}
		return code
	})
}

// TestSchema connects to a schema of the shared cluster, creates a table
// there and checks that another schema does not see it.
func TestSchema(t *testing.T) {
	c := pgtest.Shared(t)
	ctx := t.Context()
	a, b := c.Schema(t), c.Schema(t)
	ca, err := pgx.Connect(ctx, a)
	if err != nil {
		t.Fatal(err)
	}
	defer ca.Close(ctx)
	if _, err := ca.Exec(ctx, `CREATE TABLE x (n int)`); err != nil {
		t.Fatal(err)
	}
	cb, err := pgx.Connect(ctx, b)
	if err != nil {
		t.Fatal(err)
	}
	defer cb.Close(ctx)
	var n int
	if err := cb.QueryRow(ctx, `SELECT count(*) FROM pg_tables WHERE tablename = 'x' AND schemaname = current_schema()`).Scan(&n); err != nil || n != 0 {
		t.Errorf("other schema sees table x: %d, %v", n, err)
	}
	if err := ca.QueryRow(ctx, `SELECT count(*) FROM x`).Scan(&n); err != nil {
		t.Errorf("own schema: %v", err)
	}
}

// TestDatabase creates a database and connects to it.
func TestDatabase(t *testing.T) {
	c := pgtest.Shared(t)
	conn, err := pgx.Connect(t.Context(), c.Database(t))
	if err != nil {
		t.Fatal(err)
	}
	conn.Close(t.Context())
}
