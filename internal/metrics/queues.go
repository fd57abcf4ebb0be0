package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Queue names a bounded queue whose overflow is counted.
type Queue uint8

// The queues.
const (
	// C2SQueue is a client session's outbound queue (c2s
	// outbound_queue_bytes): the session ends with policy-violation.
	C2SQueue Queue = iota
	// C2SUnacked is a stream-managed session's unacknowledged stanzas
	// (c2s max_unacked): the session ends with resource-constraint.
	C2SUnacked
	// C2SStalled is a client that did not read its stream for the write
	// timeout while its queue was half full: the stream is closed.
	C2SStalled
	// S2SQueue is the queue of one remote domain's outbound stream (s2s
	// queue_bytes): the stanza is bounced with resource-constraint.
	S2SQueue
	// ArchiveQueue is the message archive's writer queue: the sender
	// waits until the disk catches up.
	ArchiveQueue
	numQueues
)

var queueNames = [numQueues]string{"c2s", "c2s_unacked", "c2s_stalled", "s2s", "mam"}

var (
	overflowVec = counterVec("ode_queue_overflows_total",
		"Bounded queues found full: c2s (a session's outbound queue; the session ends), c2s_unacked (too many unacknowledged stanzas), c2s_stalled (a client not reading), s2s (a remote domain's queue; the stanza is bounced), mam (the archive writer; the sender waits).",
		"queue")
	overflows [numQueues]prometheus.Counter
)

func init() {
	for q, n := range queueNames {
		overflows[q] = overflowVec.WithLabelValues(n)
	}
}

// Overflow counts one overflow of q.
func Overflow(q Queue) { overflows[q%numQueues].Inc() }

// S2S stream directions and states.
type (
	// Direction is whether we opened a server stream (Out) or a peer did
	// (In).
	Direction uint8
	// S2SState is how far a server stream has come.
	S2SState uint8
)

// The directions.
const (
	In Direction = iota
	Out
	numDirections
)

// The states of a server stream.
const (
	// S2SNone is no stream: the state before the first and after the
	// last.
	S2SNone S2SState = iota
	// S2SConnecting is an outbound stream being set up (DNS, TCP, TLS,
	// authentication) or an inbound one whose peer has not
	// authenticated a domain yet.
	S2SConnecting
	// S2SEstablished is a stream that carries stanzas.
	S2SEstablished
	numS2SStates
)

var (
	s2sVec = gaugeVec("ode_s2s_streams",
		"Server-to-server streams, by direction (out: opened by us, in: by a peer) and state (connecting: being set up or not yet authenticated; established).",
		"direction", "state")
	s2sStreams [numDirections][numS2SStates]prometheus.Gauge

	s2sFailures = counter("ode_s2s_connect_failures_total",
		"Outbound server-to-server streams that could not be set up (their stanzas were bounced).")
)

func init() {
	for d, dn := range [numDirections]string{"in", "out"} {
		for s, sn := range [numS2SStates]string{"", "connecting", "established"} {
			if s != int(S2SNone) {
				s2sStreams[d][s] = s2sVec.WithLabelValues(dn, sn)
			}
		}
	}
}

// S2SStream moves one stream of direction d from state from to state to
// (S2SNone for a stream that starts or ends).
func S2SStream(d Direction, from, to S2SState) {
	if from == to {
		return
	}
	if g := s2sStreams[d%numDirections][from%numS2SStates]; g != nil {
		g.Dec()
	}
	if g := s2sStreams[d%numDirections][to%numS2SStates]; g != nil {
		g.Inc()
	}
}

// S2SConnectFailed counts an outbound stream that could not be set up.
func S2SConnectFailed() { s2sFailures.Inc() }

var (
	archiveRows = gauge("ode_mam_queue_rows",
		"Messages waiting in the archive writer's queue (XEP-0313) to be committed.")
	archiveBytes = gauge("ode_mam_queue_bytes",
		"Stanza bytes waiting in the archive writer's queue.")
	archiveBatches = counter("ode_mam_batches_total",
		"Transactions the archive writer committed (group commit).")
	archiveDropped = counter("ode_mam_dropped_total",
		"Archived messages dropped after the writer's retries failed.")
)

// ArchiveQueued counts a message of n bytes entering the archive
// writer's queue.
func ArchiveQueued(n int) {
	archiveRows.Inc()
	archiveBytes.Add(float64(n))
}

// ArchiveTaken counts rows messages of n bytes leaving the queue for a
// transaction.
func ArchiveTaken(rows, n int) {
	archiveRows.Sub(float64(rows))
	archiveBytes.Sub(float64(n))
}

// ArchiveWritten counts one committed transaction, or rows messages
// dropped when it failed for good.
func ArchiveWritten(ok bool, rows int) {
	if ok {
		archiveBatches.Inc()
		return
	}
	archiveDropped.Add(float64(rows))
}
