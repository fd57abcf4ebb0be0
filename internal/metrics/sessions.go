package metrics

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Transport is what carries a client stream.
type Transport uint8

// The client transports.
const (
	// TCP is a stream on the c2s listener that starts in the clear and
	// upgrades with STARTTLS (RFC 6120 §5).
	TCP Transport = iota
	// TLS is a stream on a direct TLS listener (XEP-0368).
	TLS
	// WebSocket is XMPP over WebSocket (RFC 7395).
	WebSocket
	// BOSH is XMPP over BOSH (XEP-0206).
	BOSH
	numTransports
)

var transportNames = [numTransports]string{"tcp", "tls", "websocket", "bosh"}

// String returns the transport's label value.
func (t Transport) String() string {
	if t < numTransports {
		return transportNames[t]
	}
	return "unknown"
}

// TransportOf returns the transport of a stream whose carrier calls
// itself kind ("websocket", "bosh"; "" for TCP), on a direct TLS listener
// or not.
func TransportOf(kind string, directTLS bool) Transport {
	switch {
	case kind == "websocket":
		return WebSocket
	case kind == "bosh":
		return BOSH
	case directTLS:
		return TLS
	}
	return TCP
}

var (
	connVec = gaugeVec("ode_c2s_connections",
		"Open client connections, authenticated or not, by transport.", "transport")
	sessionVec = gaugeVec("ode_c2s_sessions",
		"Client connections carrying a bound session (resource), by transport.", "transport")
	conns, sessions [numTransports]prometheus.Gauge

	detached = gauge("ode_c2s_sessions_detached",
		"Sessions whose connection was lost, waiting for a stream management resumption (XEP-0198).")
	resumed = counter("ode_c2s_resumptions_total",
		"Sessions resumed on a new connection (XEP-0198).")
)

func init() {
	for t, n := range transportNames {
		conns[t] = connVec.WithLabelValues(n)
		sessions[t] = sessionVec.WithLabelValues(n)
	}
}

// ConnOpened counts a client connection opened on t; ConnClosed when it
// ends.
func ConnOpened(t Transport) { conns[t%numTransports].Inc() }

// ConnClosed counts the end of a connection ConnOpened counted.
func ConnClosed(t Transport) { conns[t%numTransports].Dec() }

// SessionBound counts a connection on t that bound (or resumed) a
// session; SessionUnbound when that connection ends.
func SessionBound(t Transport) { sessions[t%numTransports].Inc() }

// SessionUnbound counts the end of a connection SessionBound counted.
func SessionUnbound(t Transport) { sessions[t%numTransports].Dec() }

// Detached counts a session that lost its connection and waits for a
// resumption; Undetached when it is resumed or ends.
func Detached() { detached.Inc() }

// Undetached counts a detached session that was resumed or ended.
func Undetached() { detached.Dec() }

// Resumed counts a session resumed on a new connection.
func Resumed() { resumed.Inc() }

// Profile is the SASL profile of a login.
type Profile uint8

// The SASL profiles.
const (
	// SASL is RFC 6120 §6.
	SASL Profile = iota
	// SASL2 is XEP-0388 (with FAST tokens, XEP-0484, as its HT-*
	// mechanisms).
	SASL2
)

func (p Profile) String() string {
	if p == SASL2 {
		return "sasl2"
	}
	return "sasl"
}

var (
	logins = counterVec("ode_c2s_logins_total",
		"Successful client authentications, by SASL profile and mechanism (HT-* mechanisms are FAST token logins).",
		"profile", "mechanism")
	loginFailures = counterVec("ode_c2s_login_failures_total",
		"Failed client authentication attempts, by SASL profile, mechanism and the SASL condition sent.",
		"profile", "mechanism", "reason")
)

// knownMechanisms are the mechanism label values; a client's other
// names count as "other", so that no client can grow the series.
var knownMechanisms = map[string]bool{
	"PLAIN": true, "EXTERNAL": true, "ANONYMOUS": true,
	"SCRAM-SHA-1": true, "SCRAM-SHA-1-PLUS": true,
	"SCRAM-SHA-256": true, "SCRAM-SHA-256-PLUS": true,
	"SCRAM-SHA-512": true, "SCRAM-SHA-512-PLUS": true,
	"HT-SHA-256-NONE": true, "HT-SHA-256-UNIQ": true, "HT-SHA-256-EXPR": true, "HT-SHA-256-ENDP": true,
}

// knownReasons are the reason label values: RFC 6120 §6.5's conditions.
var knownReasons = map[string]bool{
	"aborted": true, "account-disabled": true, "credentials-expired": true,
	"encryption-required": true, "incorrect-encoding": true, "invalid-authzid": true,
	"invalid-mechanism": true, "malformed-request": true, "mechanism-too-weak": true,
	"not-authorized": true, "temporary-auth-failure": true,
}

func mechanismLabel(m string) string {
	switch {
	case m == "":
		return "none"
	case knownMechanisms[m]:
		return m
	}
	return "other"
}

// Login counts a successful authentication with mechanism mech. (A
// login is rare next to stanzas: the label lookup is acceptable here.)
func Login(p Profile, mech string) {
	logins.WithLabelValues(p.String(), mechanismLabel(mech)).Inc()
}

// LoginFailed counts a failed attempt with mechanism mech ("" when the
// client named none) that was answered with the SASL condition reason.
func LoginFailed(p Profile, mech, reason string) {
	if !knownReasons[reason] {
		reason = "other"
	}
	loginFailures.WithLabelValues(p.String(), mechanismLabel(mech), reason).Inc()
}
