package metrics

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// kind is a stanza's kind, an index into the pre-resolved series.
type kind uint8

const (
	kindMessage kind = iota
	kindPresence
	kindIQ
	numKinds
)

var kindNames = [numKinds]string{"message", "presence", "iq"}

// kindOf returns the kind of a stanza named local; false for anything
// else (stream management, CSI and other nonzas are not stanzas).
func kindOf(local string) (kind, bool) {
	switch local {
	case "message":
		return kindMessage, true
	case "presence":
		return kindPresence, true
	case "iq":
		return kindIQ, true
	}
	return 0, false
}

// Where a stanza was counted: the stream it came in on or went out to.
const (
	streamC2S = iota
	streamS2S
	numStreams
)

const (
	dirIn = iota
	dirOut
	numDirs
)

var (
	stanzaVec = counterVec("ode_stanzas_total",
		"Stanzas received (direction=in) from clients (stream=c2s) or servers (stream=s2s), and queued for them (direction=out), by kind.",
		"stream", "direction", "kind")
	stanzas [numStreams][numDirs][numKinds]prometheus.Counter

	routeVec = histogramVec("ode_route_duration_seconds",
		"Time to handle a stanza a client or server sent (checks, hooks, storage, routing, queueing), by kind; one stanza in "+sampleEveryText+" of each stream is timed.",
		latencyBuckets, "stream", "kind")
	route [numStreams][numKinds]prometheus.Observer
)

func init() {
	for s, sn := range [numStreams]string{"c2s", "s2s"} {
		for k, kn := range kindNames {
			for d, dn := range [numDirs]string{"in", "out"} {
				stanzas[s][d][k] = stanzaVec.WithLabelValues(sn, dn, kn)
			}
			route[s][k] = routeVec.WithLabelValues(sn, kn)
		}
	}
}

func count(stream, dir int, local string) {
	if k, ok := kindOf(local); ok {
		stanzas[stream][dir][k].Inc()
	}
}

// C2SIn counts a stanza received from a client; local is the element's
// name ("message", "presence", "iq"; other names are not counted).
func C2SIn(local string) { count(streamC2S, dirIn, local) }

// C2SOut counts a stanza accepted into a client session's queue.
func C2SOut(local string) { count(streamC2S, dirOut, local) }

// S2SIn counts a stanza received from another server.
func S2SIn(local string) { count(streamS2S, dirIn, local) }

// S2SOut counts a stanza queued for another server.
func S2SOut(local string) { count(streamS2S, dirOut, local) }

// sampleEvery is how many stanzas of a stream go by for each one timed:
// reading the clock twice per stanza would cost more than the rest of the
// accounting together.
const (
	sampleEvery     = 64
	sampleEveryText = "64"
)

// RouteTimer times the handling of a sample of one stream's stanzas. Its
// zero value is ready; it belongs to the stream's reader goroutine.
type RouteTimer struct {
	n     uint32
	start time.Time
}

// Start begins handling a stanza; it reads the clock for one stanza in
// sampleEvery (the first one included).
func (t *RouteTimer) Start() {
	if t.n%sampleEvery == 0 {
		t.start = time.Now()
	}
	t.n++
}

// C2SDone ends the handling of a client's stanza named local, started
// with Start.
func (t *RouteTimer) C2SDone(local string) { t.done(streamC2S, local) }

// S2SDone ends the handling of a server's stanza named local.
func (t *RouteTimer) S2SDone(local string) { t.done(streamS2S, local) }

func (t *RouteTimer) done(stream int, local string) {
	if t.start.IsZero() {
		return
	}
	if k, ok := kindOf(local); ok {
		route[stream][k].Observe(time.Since(t.start).Seconds())
	}
	t.start = time.Time{}
}
