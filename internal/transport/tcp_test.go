package transport_test

import (
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/transport"
	"github.com/ode-xmpp/ode/internal/xmpptest"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

const header = `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0' xml:lang='de'>`

// pair returns both ends of a loopback TCP connection, the server's as a
// transport.
func pair(t *testing.T) (*transport.TCP, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	srv, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	_ = client.SetDeadline(time.Now().Add(10 * time.Second))
	_ = srv.SetDeadline(time.Now().Add(10 * time.Second))
	tr := transport.NewTCP(srv, transport.Options{MaxElementBytes: 1 << 16, WriteTimeout: 5 * time.Second})
	t.Cleanup(func() { tr.Kill(); client.Close() })
	return tr, client
}

func certs(t *testing.T) (server, client *tls.Config) {
	t.Helper()
	ca, err := xmpptest.NewCA()
	if err != nil {
		t.Fatal(err)
	}
	cert, key, err := ca.Issue("example.org")
	if err != nil {
		t.Fatal(err)
	}
	kp, err := tls.X509KeyPair(cert, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{kp}, MinVersion: tls.VersionTLS12},
		&tls.Config{RootCAs: ca.Pool, ServerName: "example.org", MinVersion: tls.VersionTLS12}
}

func write(t *testing.T, c net.Conn, s string) {
	t.Helper()
	if _, err := c.Write([]byte(s)); err != nil {
		t.Fatal(err)
	}
}

// readString reads from c until it has n bytes.
func readString(t *testing.T, c net.Conn, n int) string {
	t.Helper()
	b := make([]byte, n)
	if _, err := io.ReadFull(c, b); err != nil {
		t.Fatalf("read %d bytes: %v (got %q)", n, err, b)
	}
	return string(b)
}

func TestTCPStream(t *testing.T) {
	tr, client := pair(t)
	write(t, client, header+`<message to='a@example.org'><body>hi</body></message>  `)
	open, err := tr.ReadOpen()
	if err != nil {
		t.Fatal(err)
	}
	want := stream.Header{To: "example.org", Version: "1.0", Lang: "de"}
	if open.Header != want || open.ContentNS != "jabber:client" {
		t.Errorf("open: %+v", open)
	}
	e, err := tr.Next()
	if err != nil || e.Name.Local != "message" || e.Child("", "body").Text() != "hi" {
		t.Fatalf("next: %v %v", e, err)
	}
	if tr.TLS() != nil {
		t.Error("TLS state before TLS")
	}
	if tr.RemoteAddr().String() != client.LocalAddr().String() {
		t.Errorf("remote %s, want %s", tr.RemoteAddr(), client.LocalAddr())
	}

	out := tr.AppendOpen(nil, stream.Header{From: "example.org", ID: "s1", Version: "1.0"})
	out = append(out, "<stream:features/>"...)
	out = tr.AppendClose(out)
	if err := tr.Write(out); err != nil {
		t.Fatal(err)
	}
	wantOut := `<?xml version='1.0'?><stream:stream xmlns='jabber:client' xmlns:stream='http://etherx.jabber.org/streams' from='example.org' id='s1' version='1.0'><stream:features/></stream:stream>`
	if got := readString(t, client, len(wantOut)); got != wantOut {
		t.Errorf("wrote %s\nwant  %s", got, wantOut)
	}

	// A restart reads a new header on the same connection.
	tr.Restart()
	write(t, client, header+`</stream:stream>`)
	if _, err := tr.ReadOpen(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); !errors.Is(err, xmlstream.ErrStreamEnd) {
		t.Fatalf("after </stream:stream>: %v", err)
	}
	tr.Close()
	if n, err := client.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("after Close: read %d, %v", n, err)
	}
}

func TestTCPOpenErrors(t *testing.T) {
	for _, tc := range []struct {
		name, header string
		ns           string
		cond         stream.Condition
	}{
		{"server namespace", `<stream:stream xmlns='jabber:server' xmlns:stream='http://etherx.jabber.org/streams' to='example.org' version='1.0'>`, "jabber:server", ""},
		{"stream namespace", `<stream:stream xmlns='jabber:client' xmlns:stream='urn:example' to='example.org'>`, "", stream.InvalidNamespace},
		{"not xml", "GET / HTTP/1.1\r\n\r\n", "", stream.NotWellFormed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tr, client := pair(t)
			write(t, client, tc.header)
			open, err := tr.ReadOpen()
			if tc.cond == "" {
				if err != nil || open.ContentNS != tc.ns {
					t.Fatalf("got %+v, %v", open, err)
				}
				return
			}
			if se := stream.FromReadError(err); se == nil || se.Condition != tc.cond {
				t.Fatalf("got %v, want %s", err, tc.cond)
			}
		})
	}
}

func TestTCPStartTLS(t *testing.T) {
	srvTLS, cliTLS := certs(t)
	tr, client := pair(t)
	write(t, client, header+`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`)
	if _, err := tr.ReadOpen(); err != nil {
		t.Fatal(err)
	}
	if e, err := tr.Next(); err != nil || e.Name.Local != "starttls" {
		t.Fatalf("next: %v %v", e, err)
	}
	proceed := `<proceed xmlns='urn:ietf:params:xml:ns:xmpp-tls'/>`
	done := make(chan error, 1)
	go func() {
		if got := readString(t, client, len(proceed)); got != proceed {
			done <- errors.New("got " + got)
			return
		}
		tc := tls.Client(client, cliTLS)
		if err := tc.Handshake(); err != nil {
			done <- err
			return
		}
		_, err := tc.Write([]byte(header + `<presence/>`))
		done <- err
	}()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	if err := tr.StartTLS(ctx, srvTLS, []byte(proceed)); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	st := tr.TLS()
	if st == nil || !st.HandshakeComplete || st.ServerName != "example.org" {
		t.Fatalf("TLS state %+v", st)
	}
	// The stream restarted over TLS.
	if _, err := tr.ReadOpen(); err != nil {
		t.Fatal(err)
	}
	if e, err := tr.Next(); err != nil || e.Name.Local != "presence" {
		t.Fatalf("next over TLS: %v %v", e, err)
	}
	if err := tr.StartTLS(ctx, srvTLS, nil); err == nil {
		t.Error("a second StartTLS succeeded")
	}
}

func TestTCPDirectTLS(t *testing.T) {
	srvTLS, cliTLS := certs(t)
	srvTLS.NextProtos = []string{"xmpp-client"}
	cliTLS.NextProtos = []string{"xmpp-client"}
	tr, client := pair(t)
	done := make(chan error, 1)
	go func() {
		tc := tls.Client(client, cliTLS)
		_, err := tc.Write([]byte(header))
		done <- err
	}()
	if err := tr.StartTLS(t.Context(), srvTLS, nil); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if st := tr.TLS(); st == nil || st.NegotiatedProtocol != "xmpp-client" {
		t.Fatalf("TLS state %+v", st)
	}
	if _, err := tr.ReadOpen(); err != nil {
		t.Fatal(err)
	}
}

// TestTCPStartTLSPipelined: data after <starttls/> is refused before
// anything is written (RFC 6120 §5.4.3.3).
func TestTCPStartTLSPipelined(t *testing.T) {
	srvTLS, _ := certs(t)
	tr, client := pair(t)
	write(t, client, header+`<starttls xmlns='urn:ietf:params:xml:ns:xmpp-tls'/><message/>`)
	if _, err := tr.ReadOpen(); err != nil {
		t.Fatal(err)
	}
	if _, err := tr.Next(); err != nil {
		t.Fatal(err)
	}
	if err := tr.StartTLS(t.Context(), srvTLS, []byte("<proceed/>")); !errors.Is(err, transport.ErrPipelined) {
		t.Fatalf("got %v, want ErrPipelined", err)
	}
	if tr.TLS() != nil {
		t.Error("TLS on")
	}
	_ = client.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	if n, err := client.Read(make([]byte, 16)); n != 0 || !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Errorf("read %d bytes, %v: something was written", n, err)
	}
}

// TestTCPHandshakeTimeout: a client that never does the handshake is
// dropped when ctx ends.
func TestTCPHandshakeTimeout(t *testing.T) {
	srvTLS, _ := certs(t)
	tr, _ := pair(t)
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	err := tr.StartTLS(ctx, srvTLS, nil)
	if err == nil || !strings.Contains(err.Error(), "tls handshake") {
		t.Fatalf("got %v", err)
	}
}

// TestTCPKill: Kill ends a Write blocked on a client that does not read.
func TestTCPKill(t *testing.T) {
	tr, _ := pair(t)
	done := make(chan error, 1)
	go func() {
		big := make([]byte, 1<<20)
		for {
			if err := tr.Write(big); err != nil {
				done <- err
				return
			}
		}
	}()
	select {
	case err := <-done:
		t.Fatalf("write failed before Kill: %v", err)
	case <-time.After(200 * time.Millisecond):
	}
	tr.Kill()
	select {
	case err := <-done:
		if !errors.Is(err, net.ErrClosed) {
			t.Errorf("write after Kill: %v", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Write still blocked after Kill")
	}
}

// TestTCPReadDeadline: the auth timeout is a read deadline.
func TestTCPReadDeadline(t *testing.T) {
	tr, _ := pair(t)
	_ = tr.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	_, err := tr.ReadOpen()
	if se := stream.FromReadError(err); se == nil || se.Condition != stream.ConnectionTimeout {
		t.Fatalf("got %v, want connection-timeout", err)
	}
}
