package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/coder/websocket"
)

// dialAllWS opens n sessions over WebSocket: <open/>, SASL PLAIN, a new
// <open/>, bind (and stream management with -sm); each is left idle.
func dialAllWS(addr, caFile string, n int) ([]*websocket.Conn, error) {
	pem, err := os.ReadFile(caFile)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	hc := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool, ServerName: "localhost"}}}
	out := make([]*websocket.Conn, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	sem := make(chan struct{}, 64)
	for i := range n {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			out[i], errs[i] = wsSession(ctx, hc, "wss://"+addr+"/xmpp-websocket", "r"+strconv.Itoa(i))
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			return out, fmt.Errorf("session %d: %w", i, err)
		}
	}
	return out, nil
}

func wsSession(ctx context.Context, hc *http.Client, url, res string) (*websocket.Conn, error) {
	c, _, err := websocket.Dial(ctx, url, &websocket.DialOptions{Subprotocols: []string{"xmpp"}, HTTPClient: hc})
	if err != nil {
		return nil, err
	}
	send := func(s string) error { return c.Write(ctx, websocket.MessageText, []byte(s)) }
	until := func(want string) error {
		for {
			_, b, err := c.Read(ctx)
			if err != nil {
				return err
			}
			if strings.Contains(string(b), "<failure") || strings.Contains(string(b), "error") {
				return fmt.Errorf("got %s", b)
			}
			if strings.Contains(string(b), want) {
				return nil
			}
		}
	}
	open := "<open xmlns='urn:ietf:params:xml:ns:xmpp-framing' to='localhost' version='1.0'/>"
	steps := []struct{ send, want string }{
		{open, "</stream:features>"},
		{"<auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' mechanism='PLAIN'>" + base64.StdEncoding.EncodeToString([]byte("\x00load\x00pw")) + "</auth>", "<success"},
		{open, "</stream:features>"},
		{"<iq xmlns='jabber:client' type='set' id='b'><bind xmlns='urn:ietf:params:xml:ns:xmpp-bind'><resource>" + res + "</resource></bind></iq>", "</bind>"},
	}
	if enableSM {
		steps = append(steps, struct{ send, want string }{"<enable xmlns='urn:xmpp:sm:3' resume='true'/>", "<enabled"})
	}
	for _, s := range steps {
		if err := send(s.send); err != nil {
			c.CloseNow()
			return nil, err
		}
		if err := until(s.want); err != nil {
			c.CloseNow()
			return nil, err
		}
	}
	// Keep reading (pings, pushes) so the connection stays healthy.
	go func() {
		for {
			if _, _, err := c.Read(context.Background()); err != nil {
				return
			}
		}
	}()
	return c, nil
}
