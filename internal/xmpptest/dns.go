package xmpptest

import (
	"context"
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

// DNS is an authoritative DNS server on a UDP loopback port for a test's
// names: SRV, A and AAAA records from its table, NODATA for other types
// of a known name and NXDOMAIN for the rest. A test points a resolver at
// it (Resolver) to check what ode makes of a set of records without real
// DNS.
type DNS struct {
	Addr netip.AddrPort
	conn *net.UDPConn
	done chan struct{}

	mu      sync.Mutex
	srv     map[string][]*net.SRV // "_service._proto.name." → records
	addrs   map[string][]netip.Addr
	queries []string
}

// StartDNS starts the server; it stops when the test ends, and lists the
// questions it was asked if the test failed or ODE_TEST_LOG is set.
func StartDNS(t testing.TB) *DNS {
	t.Helper()
	conn, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("xmpptest: dns: %v", err)
	}
	d := &DNS{Addr: conn.LocalAddr().(*net.UDPAddr).AddrPort(), conn: conn, done: make(chan struct{}),
		srv: map[string][]*net.SRV{}, addrs: map[string][]netip.Addr{}}
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

func fqdn(name string) string { return strings.TrimSuffix(strings.ToLower(name), ".") + "." }

// AddAddr publishes A (IPv4) and AAAA (IPv6) records for name.
func (d *DNS) AddAddr(name string, addrs ...netip.Addr) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.addrs[fqdn(name)] = append(d.addrs[fqdn(name)], addrs...)
}

// AddSRV publishes _service._tcp.domain SRV 0 0 port target.
func (d *DNS) AddSRV(service, domain, target string, port uint16) {
	d.mu.Lock()
	defer d.mu.Unlock()
	name := "_" + service + "._tcp." + fqdn(domain)
	d.srv[name] = append(d.srv[name], &net.SRV{Target: fqdn(target), Port: port})
}

// Resolver returns a resolver that asks this server only.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.Addr.String())
	}}
}

// Queries lists the questions asked so far, as "TYPE name -> answer".
func (d *DNS) Queries() []string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return append([]string(nil), d.queries...)
}

func (d *DNS) serve() {
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
			_, _ = d.conn.WriteToUDPAddrPort(reply, from)
		}
	}
}

func (d *DNS) answer(query []byte) ([]byte, error) {
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
	rh := dnsmessage.ResourceHeader{Name: q.Name, Type: q.Type, Class: dnsmessage.ClassINET, TTL: 60}
	var answers []dnsmessage.Resource
	var said []string
	rcode := dnsmessage.RCodeSuccess

	d.mu.Lock()
	srvs, addrs := d.srv[name], d.addrs[name]
	switch q.Type {
	case dnsmessage.TypeSRV:
		for _, s := range srvs {
			target, err := dnsmessage.NewName(s.Target)
			if err != nil {
				d.mu.Unlock()
				return nil, err
			}
			answers = append(answers, dnsmessage.Resource{Header: rh,
				Body: &dnsmessage.SRVResource{Priority: s.Priority, Weight: s.Weight, Port: s.Port, Target: target}})
			said = append(said, fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, s.Target))
		}
	case dnsmessage.TypeA, dnsmessage.TypeAAAA:
		for _, a := range addrs {
			switch {
			case q.Type == dnsmessage.TypeA && a.Is4():
				answers = append(answers, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AResource{A: a.As4()}})
			case q.Type == dnsmessage.TypeAAAA && a.Is6():
				answers = append(answers, dnsmessage.Resource{Header: rh, Body: &dnsmessage.AAAAResource{AAAA: a.As16()}})
			default:
				continue
			}
			said = append(said, a.String())
		}
	}
	if srvs == nil && addrs == nil && !d.hasChildren(name) {
		rcode = dnsmessage.RCodeNameError
		said = []string{"NXDOMAIN"}
	} else if len(answers) == 0 {
		said = []string{"NODATA"}
	}
	d.queries = append(d.queries, fmt.Sprintf("%s %s -> %s", strings.TrimPrefix(q.Type.String(), "Type"), name, strings.Join(said, ", ")))
	d.mu.Unlock()

	msg := dnsmessage.Message{
		Header: dnsmessage.Header{ID: h.ID, Response: true, OpCode: h.OpCode, Authoritative: true,
			RecursionDesired: h.RecursionDesired, RecursionAvailable: true, RCode: rcode},
		Questions: []dnsmessage.Question{q},
		Answers:   answers,
	}
	return msg.Pack()
}

// hasChildren reports whether a name below name has records (then name
// exists, with no data of its own); called with d.mu held.
func (d *DNS) hasChildren(name string) bool {
	for n := range d.addrs {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	for n := range d.srv {
		if strings.HasSuffix(n, "."+name) {
			return true
		}
	}
	return false
}
