package upload

import (
	"testing"
	"time"
)

// TestPutDeadline: a PUT may take a minute plus its size at 16 KiB/s, at
// most an hour, so a trickling client is cut off.
func TestPutDeadline(t *testing.T) {
	for _, tc := range []struct {
		size int64
		want time.Duration
	}{
		{0, time.Minute},
		{16 << 10, time.Minute + time.Second},
		{10 << 20, time.Minute + 640*time.Second},
		{1 << 40, time.Hour},
	} {
		if got := putDeadline(tc.size); got != tc.want {
			t.Errorf("putDeadline(%d) = %s, want %s", tc.size, got, tc.want)
		}
	}
}
