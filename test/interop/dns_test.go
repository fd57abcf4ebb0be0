package interop_test

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// testDNS is an authoritative DNS server on a UDP loopback port for the
// test's domains, so that a peer finds ode through the ordinary RFC 6120
// §3.2 lookup (an _xmpp-server._tcp SRV record, then the target's A
// record) without real DNS. It answers SRV and A records from its table,
// NODATA for other types of a known name, and NXDOMAIN for the rest.
type testDNS struct {
	Addr netip.AddrPort
	conn *net.UDPConn
	done chan struct{}

	mu      sync.Mutex
	srv     map[string]*net.SRV // "_service._proto.domain." -> target
	a       map[string]netip.Addr
	queries []string
}

// startDNS starts the server; it stops when the test ends, and lists the
// questions it was asked if the test failed or ODE_TEST_LOG is set.
func startDNS(t *testing.T) *testDNS {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("dns: %v", err)
	}
	d := &testDNS{
		Addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(),
		conn: conn,
		done: make(chan struct{}),
		srv:  map[string]*net.SRV{},
		a:    map[string]netip.Addr{},
	}
	go d.serve()
	t.Cleanup(func() {
		conn.Close()
		<-d.done
		if t.Failed() || os.Getenv("ODE_TEST_LOG") != "" {
			t.Logf("DNS questions to %s:\n  %s", d.Addr, strings.Join(d.Queries(), "\n  "))
		}
	})
	return d
}

// AddSRV publishes a service of domain at addr (an IPv4 address and port):
// _service._tcp.domain SRV 0 0 port domain, and domain A address. service
// is "xmpp-server" (RFC 6120 §3.2) or "xmpps-server" (XEP-0368).
func (d *testDNS) AddSRV(service, domain string, addr netip.AddrPort) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := strings.ToLower(domain) + "."
	d.srv["_"+service+"._tcp."+name] = &net.SRV{Target: name, Port: addr.Port()}
	d.a[name] = addr.Addr()
}

// Queries lists the questions asked so far, as "TYPE name -> answer".
func (d *testDNS) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.queries...)
}

func (d *testDNS) serve() {
	defer close(d.done)
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFromUDPAddrPort(buf)
		if errors.Is(err, net.ErrClosed) {
			return
		}
		if err != nil {
			continue
		}
		if reply, err := d.answer(buf[:n]); err == nil {
			d.conn.WriteToUDPAddrPort(reply, from)
		}
	}
}

func (d *testDNS) answer(query []byte) ([]byte, error) {
	var p dnsmessage.Parser
	h, err := p.Start(query)
	if err != nil {
		return nil, err
	}
	q, err := p.Question()
	if err != nil {
		return nil, err
	}
	name := strings.ToLower(q.Name.String())
	rh := dnsmessage.ResourceHeader{Name: q.Name, Class: dnsmessage.ClassINET, TTL: 60}
	var answers []dnsmessage.Resource
	rcode := dnsmessage.RCodeSuccess

	d.mu.Lock()
	srv, a := d.srv[name], d.a[name]
	switch {
	case q.Type == dnsmessage.TypeSRV && srv != nil:
		target, err := dnsmessage.NewName(srv.Target)
		if err != nil {
			d.mu.Unlock()
			return nil, err
		}
		rh.Type = dnsmessage.TypeSRV
		answers = append(answers, dnsmessage.Resource{Header: rh,
			Body: &dnsmessage.SRVResource{Priority: srv.Priority, Weight: srv.Weight, Port: srv.Port, Target: target}})
	case q.Type == dnsmessage.TypeA && a.Is4():
		rh.Type = dnsmessage.TypeA
		answers = append(answers, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AResource{A: a.As4()}})
	case srv == nil && !a.IsValid():
		rcode = dnsmessage.RCodeNameError
	}
	result := "NODATA"
	switch {
	case rcode == dnsmessage.RCodeNameError:
		result = "NXDOMAIN"
	case srv != nil && q.Type == dnsmessage.TypeSRV:
		result = fmt.Sprintf("%d %d %d %s", srv.Priority, srv.Weight, srv.Port, srv.Target)
	case len(answers) > 0:
		result = a.String()
	}
	d.queries = append(d.queries, fmt.Sprintf("%s %s -> %s", strings.TrimPrefix(q.Type.String(), "Type"), name, result))
	d.mu.Unlock()

	msg := dnsmessage.Message{
		Header: dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: true,
			RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode},
		Questions: []dnsmessage.Question{q},
		Answers:   answers,
	}
	return msg.Pack()
}
