package mam

import (
	"testing"
	"time"
)

// TestIDBounds checks that the id bounds of a time range hold exactly the
// ids made in it, to the millisecond, even for ids made in the same
// millisecond as a bound.
func TestIDBounds(t *testing.T) {
	var g ids
	at := time.Date(2026, time.December, 2, 12, 0, 0, 0, time.UTC)
	var made []struct {
		id    string
		stamp time.Time
	}
	for i := range 300 {
		id, stamp := g.next(at.Add(time.Duration(i/3) * time.Millisecond)) // three per millisecond
		made = append(made, struct {
			id    string
			stamp time.Time
		}{id, stamp})
	}
	start, end := at.Add(10*time.Millisecond+500*time.Microsecond), at.Add(42*time.Millisecond)
	from, to := idBounds(start, end)
	for _, m := range made {
		inTime := m.stamp.UnixMilli() >= start.UnixMilli() && m.stamp.UnixMilli() <= end.UnixMilli()
		if inID := m.id >= from && m.id <= to; inID != inTime {
			t.Errorf("id %s stamped %s: in [%s, %s] = %t, in [%s, %s] = %t", m.id, m.stamp.Format(time.RFC3339Nano), from, to, inID,
				start.Format(time.RFC3339Nano), end.Format(time.RFC3339Nano), inTime)
		}
	}
	for _, tt := range []struct{ start, end time.Time }{
		{}, {time.Unix(-1, 0), time.Time{}}, {time.Time{}, time.UnixMilli(1 << 48)},
	} {
		if from, to := idBounds(tt.start, tt.end); from != "" || to != "" {
			t.Errorf("idBounds(%v, %v) = %q, %q; want no bounds", tt.start, tt.end, from, to)
		}
	}
}
