package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/storage/postgres"
)

// checkStorage connects to a PostgreSQL store and reports on it to w,
// changing nothing; a SQLite store needs no check (the server creates the
// file).
func checkStorage(ctx context.Context, cfg config.Config, w io.Writer) error {
	if cfg.Storage.Driver != "postgres" {
		return nil
	}
	p := cfg.Storage.Postgres
	ctx, cancel := context.WithTimeout(ctx, time.Duration(p.ConnectTimeout)+5*time.Second)
	defer cancel()
	info, err := postgres.Check(ctx, p.DSN, postgres.Options{ConnectTimeout: time.Duration(p.ConnectTimeout)})
	if err != nil {
		return fmt.Errorf("storage.postgres: %w", err)
	}
	schema := fmt.Sprintf("schema version %d of %d; the server migrates it at start", info.Applied, info.Known)
	if info.Applied == info.Known {
		schema = fmt.Sprintf("schema version %d, up to date", info.Applied)
	}
	fmt.Fprintf(w, "storage: postgres %s as %s, database %s, schema %s: %s\n", postgres.Redact(p.DSN), info.User, info.Database, info.Schema, schema)
	fmt.Fprintf(w, "storage: %s\n", info.Server)
	return nil
}

// signalContext returns a context that ends on SIGINT or SIGTERM.
func signalContext() (context.Context, context.CancelFunc) {
	return signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
}
