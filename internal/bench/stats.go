package bench

import (
	"encoding/json"
	"slices"
	"sync"
	"time"
)

// Latency summarises a set of durations.
type Latency struct {
	// Count is how many were recorded.
	Count int `json:"count"`
	// P50, P90, P99 and Max are percentiles (nearest rank) and the maximum.
	P50 Duration `json:"p50"`
	P90 Duration `json:"p90"`
	P99 Duration `json:"p99"`
	Max Duration `json:"max"`
}

// Duration is a time.Duration that appears in JSON as milliseconds.
type Duration time.Duration

// MarshalJSON writes the duration as a number of milliseconds.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(float64(d) / float64(time.Millisecond))
}

// UnmarshalJSON reads a number of milliseconds.
func (d *Duration) UnmarshalJSON(b []byte) error {
	var ms float64
	if err := json.Unmarshal(b, &ms); err != nil {
		return err
	}
	*d = Duration(ms * float64(time.Millisecond))
	return nil
}

// String formats the duration rounded for a table.
func (d Duration) String() string {
	t := time.Duration(d)
	switch {
	case t >= time.Second:
		return t.Round(time.Millisecond).String()
	case t >= time.Millisecond:
		return t.Round(10 * time.Microsecond).String()
	}
	return t.Round(time.Microsecond).String()
}

// recorder collects durations from many goroutines.
type recorder struct {
	mu sync.Mutex
	d  []time.Duration
}

func (r *recorder) add(d time.Duration) {
	r.mu.Lock()
	r.d = append(r.d, d)
	r.mu.Unlock()
}

func (r *recorder) count() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.d)
}

// summary sorts what was recorded and returns its percentiles.
func (r *recorder) summary() Latency {
	r.mu.Lock()
	d := slices.Clone(r.d)
	r.mu.Unlock()
	return summarize(d)
}

func summarize(d []time.Duration) Latency {
	if len(d) == 0 {
		return Latency{}
	}
	slices.Sort(d)
	rank := func(p float64) Duration {
		i := int(p*float64(len(d))+0.999999) - 1
		return Duration(d[min(max(i, 0), len(d)-1)])
	}
	return Latency{Count: len(d), P50: rank(0.50), P90: rank(0.90), P99: rank(0.99), Max: Duration(d[len(d)-1])}
}
