package s2s

import (
	"context"
	"errors"
	"net"
	"slices"
	"testing"
)

// fakeSRV answers SRV lookups from a table keyed by "service name".
type fakeSRV map[string][]*net.SRV

func (f fakeSRV) LookupSRV(_ context.Context, service, proto, name string) (string, []*net.SRV, error) {
	if recs, ok := f[service+" "+name]; ok {
		return "", recs, nil
	}
	return "", nil, &net.DNSError{Err: "no such host", Name: name, IsNotFound: true}
}

func TestTargets(t *testing.T) {
	res := fakeSRV{
		"xmpps-server both.example": {{Target: "tls.both.example.", Port: 5270, Priority: 10}},
		"xmpp-server both.example": {
			{Target: "a.both.example.", Port: 5269, Priority: 5},
			{Target: "b.both.example.", Port: 5269, Priority: 20},
		},
		"xmpp-server plain.example": {{Target: "xmpp.plain.example.", Port: 15269, Priority: 0}},
		"xmpp-server none.example":  {{Target: ".", Port: 0}},
	}
	m := New(Config{Resolver: res, Hosts: map[string]string{"override.example": "127.0.0.1:5999"}})
	defer m.Shutdown(context.Background())
	tests := []struct {
		domain string
		want   []target
		err    error
	}{
		{"both.example", []target{{"a.both.example:5269", false}, {"tls.both.example:5270", true}, {"b.both.example:5269", false}}, nil},
		{"plain.example", []target{{"xmpp.plain.example:15269", false}}, nil},
		{"nosrv.example", []target{{"nosrv.example:5269", false}}, nil},
		{"override.example", []target{{"127.0.0.1:5999", false}}, nil},
		{"none.example", nil, errNoService},
	}
	for _, tt := range tests {
		got, err := m.targets(context.Background(), tt.domain)
		if !errors.Is(err, tt.err) || !slices.Equal(got, tt.want) {
			t.Errorf("targets(%s) = %v, %v; want %v, %v", tt.domain, got, err, tt.want, tt.err)
		}
	}
}

func TestDialbackKey(t *testing.T) {
	m := New(Config{Secret: []byte("s3cr3tf0rd14lb4ck")})
	defer m.Shutdown(context.Background())
	k := m.dialbackKey("example.net", "example.com", "D60000229F")
	// HMAC-SHA256(SHA256(secret), "example.net example.com D60000229F"),
	// computed independently.
	if want := "def16e8c8c17c286b594ce50756aa418adabafc6db68cac50e7de1a6a022dbbc"; k != want {
		t.Errorf("key = %s, want %s", k, want)
	}
	for _, other := range []string{
		m.dialbackKey("example.com", "example.net", "D60000229F"),
		m.dialbackKey("example.net", "example.com", "D60000229G"),
		New(Config{Secret: []byte("another")}).dialbackKey("example.net", "example.com", "D60000229F"),
	} {
		if other == k {
			t.Errorf("different inputs gave the same key %s", k)
		}
	}
}
