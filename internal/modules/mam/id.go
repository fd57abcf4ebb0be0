package mam

import (
	"crypto/rand"
	"encoding/binary"
	"sync"
	"time"
)

// ids makes archive ids: ULIDs (26 characters of Crockford's base32: 48
// bits of Unix milliseconds, then 80 bits that start random), increasing
// within one process even when the clock stands still or steps back, so
// that the archive's id order is the order messages arrived in.
type ids struct {
	mu sync.Mutex
	ms uint64 // of the last id
	hi uint16 // the 80 low bits of the last id
	lo uint64
}

// next returns a new id and the time it stands for (now, or the last
// id's time if the clock went back).
func (g *ids) next(now time.Time) (string, time.Time) {
	ms := uint64(now.UnixMilli())
	var b [10]byte
	rand.Read(b[:])
	g.mu.Lock()
	if ms > g.ms {
		g.ms = ms
		g.hi, g.lo = binary.BigEndian.Uint16(b[:2])>>1, binary.BigEndian.Uint64(b[2:]) // top bit clear: room to count up
	} else {
		// Same millisecond: count up by a random step, so that the next
		// id is not the last one plus one.
		step := uint64(binary.BigEndian.Uint32(b[:4])) + 1
		lo := g.lo + step
		if lo < g.lo {
			g.hi++
		}
		g.lo = lo
	}
	ms, hi, lo := g.ms, g.hi, g.lo
	g.mu.Unlock()
	return encodeULID(ms, hi, lo), time.UnixMilli(int64(ms)).UTC()
}

const crockford = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"

// encodeULID writes the 128 bits ms(48) hi(16) lo(64) as 26 base32
// digits (the first holds 3 bits).
func encodeULID(ms uint64, hi uint16, lo uint64) string {
	// The value as two words: top = ms<<16 | hi (64 bits), lo.
	top := ms<<16 | uint64(hi)
	var out [26]byte
	for i := 25; i >= 0; i-- {
		out[i] = crockford[lo&31]
		lo = lo>>5 | top<<59
		top >>= 5
	}
	return string(out[:])
}

// idBounds returns the ids that bound the messages stamped in [start,
// end] (storage.ArchiveQuery.StartID and EndID): an id of ids.next holds
// its message's stamp, to the millisecond. An end that is zero, or a time
// an id cannot hold, gets "" (no bound).
func idBounds(start, end time.Time) (from, to string) {
	const most = 1<<48 - 1 // the milliseconds an id holds
	if ms := start.UnixMilli(); !start.IsZero() && ms >= 0 && ms <= most {
		from = encodeULID(uint64(ms), 0, 0)
	}
	if ms := end.UnixMilli(); !end.IsZero() && ms >= 0 && ms <= most {
		to = encodeULID(uint64(ms), 1<<16-1, 1<<64-1)
	}
	return from, to
}
