package interop_test

import (
	"net/netip"

	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// publishService puts a service of domain at addr (an IPv4 address and
// port) in the test's DNS server, as RFC 6120 §3.2 lookups find it:
// _service._tcp.domain SRV 0 0 port domain, and domain A address. service
// is "xmpp-server" (RFC 6120 §3.2) or "xmpps-server" (XEP-0368).
func publishService(dns *xmpptest.DNS, service, domain string, addr netip.AddrPort) {
	dns.AddSRV(service, domain, domain, addr.Port())
	dns.AddAddr(domain, addr.Addr())
}
