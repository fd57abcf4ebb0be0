package blocking

import (
	"testing"
	"time"
)

// SetCacheTTL makes the modules created until t ends keep block lists for
// d instead of CacheTTL.
func SetCacheTTL(t testing.TB, d time.Duration) {
	old := cacheTTL
	cacheTTL = d
	t.Cleanup(func() { cacheTTL = old })
}
