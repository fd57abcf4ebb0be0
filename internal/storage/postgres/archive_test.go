package postgres_test

import (
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/internal/storage/postgres"
	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
)

// TestArchiveAccountDeletedWhileAppending deletes accounts while batches
// of their messages are being appended, from other connections: the
// archive has no foreign key, so AppendArchive's lock on each account and
// the deletion trigger must between them leave no row of a deleted
// account, whichever commits first. Each round counts the rows whose
// account is gone.
func TestArchiveAccountDeletedWhileAppending(t *testing.T) {
	s := open(t, pgtest.Shared(t).Schema(t), postgres.Options{})
	ctx := t.Context()
	const rounds, accounts, batches = 20, 8, 6
	for round := range rounds {
		for a := range accounts {
			if err := s.CreateAccount(ctx, fmt.Sprintf("u%d", a), "example.org", nil); err != nil {
				t.Fatal(err)
			}
		}
		var wg sync.WaitGroup
		errs := make(chan error, batches+accounts)
		for w := range batches {
			wg.Go(func() {
				batch := make([]storage.ArchivedMessage, 0, 64*accounts)
				for i := range 64 * accounts {
					batch = append(batch, storage.ArchivedMessage{
						Local: fmt.Sprintf("u%d", i%accounts), Domain: "example.org",
						ID: fmt.Sprintf("%03d-%d-%05d", round, w, i), With: "peer@example.com",
						Stamp: time.Now(), Stanza: []byte(`<message><body>hi</body></message>`),
					})
				}
				if _, err := s.AppendArchive(ctx, batch); err != nil {
					errs <- err
				}
			})
		}
		for a := range accounts {
			wg.Go(func() {
				if err := s.DeleteAccount(ctx, fmt.Sprintf("u%d", a), "example.org"); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		var orphans int
		if err := s.Pool().QueryRow(ctx, `SELECT count(*) FROM archive
			WHERE NOT EXISTS (SELECT 1 FROM accounts a WHERE a.id = archive.account_id)`).Scan(&orphans); err != nil {
			t.Fatal(err)
		}
		if orphans != 0 {
			t.Fatalf("round %d: %d archived rows of deleted accounts", round, orphans)
		}
	}
}
