package cli

import (
	"fmt"
	"os"
	"testing"

	"go.uber.org/goleak"

	"github.com/ode-xmpp/ode/internal/storage/postgres/pgtest"
)

// TestMain starts a PostgreSQL server for the tests of ode migrate and
// ode check, and fails the package's tests if they leave goroutines
// behind.
func TestMain(m *testing.M) {
	pgtest.Main(m, pgtest.Options{}, func() int {
		code := m.Run()
		if err := goleak.Find(); err != nil && code == 0 {
			fmt.Fprintln(os.Stderr, "goleak:", err)
			code = 1
		}
		return code
	})
}
