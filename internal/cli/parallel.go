package cli

import (
	"context"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/ode-xmpp/ode/internal/storage"
)

// parallel calls fn(i) for i in [0, n) on every core.
func parallel(n int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}

// createAccounts creates accounts in one transaction and returns how many
// were created and the addresses of those that already existed.
func createAccounts(ctx context.Context, store storage.Accounts, accounts []storage.NewAccount) (int, []string, error) {
	existed, err := store.CreateAccounts(ctx, accounts)
	if err != nil {
		return 0, nil, fmt.Errorf("create accounts: %w", err)
	}
	names := make([]string, len(existed))
	for i, x := range existed {
		names[i] = accounts[x].Local + "@" + accounts[x].Domain
	}
	return len(accounts) - len(existed), names, nil
}
