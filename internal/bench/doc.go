// Package bench is ode's load generator (ode bench): it drives any XMPP
// server over TCP with STARTTLS or direct TLS (RFC 6120 §5, XEP-0368),
// logging in with SASL (SCRAM or PLAIN) through the client package, and
// measures three scenarios:
//
//   - Login: logins at an arrival rate or as fast as a concurrency
//     allows; logins/s, latency percentiles, server CPU per login.
//   - Chat: users online with presence, 1:1 chat messages at a Poisson
//     aggregate rate, each carrying its scheduled send time; delivered
//     rate, loss, p50/p90/p99/max latency, server CPU per message, and a
//     capacity search for the highest rate whose p99 stays under a limit
//     with nothing lost.
//   - Idle: sessions held; the server's resident memory per session.
//
// Accounts come from a file or are created by in-band registration
// (XEP-0077). The server's CPU time and memory are read from
// /proc/<pid>/stat and /proc/<pid>/status when it runs on the same
// machine; the generator reports its own CPU time, so that a run on
// shared cores can say what the server had. Every run is bounded in time
// and count.
package bench
