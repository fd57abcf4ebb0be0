package bench

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/xmlstream"
)

// loginTimeout bounds one login (connect, TLS, SASL, bind, presence).
const loginTimeout = 30 * time.Second

// login connects as a, binds a resource the server chooses and, with
// presence, sends initial presence and waits for the server to reflect it
// (RFC 6121 §4.2.2), so that messages to the bare JID reach the session.
func login(ctx context.Context, t Target, a Account, presence bool) (*client.Client, error) {
	return loginWith(ctx, t.config(a), presence)
}

// loginWith is login with the client configuration cfg.
func loginWith(ctx context.Context, cfg client.Config, presence bool) (*client.Client, error) {
	ctx, cancel := context.WithTimeout(ctx, loginTimeout)
	defer cancel()
	c, err := client.Dial(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("log in as %s: %w", cfg.JID, err)
	}
	if presence {
		if err := c.SendRaw([]byte("<presence/>")); err != nil {
			c.Close()
			return nil, fmt.Errorf("%s: initial presence: %w", cfg.JID, err)
		}
		for {
			e, err := c.Recv(ctx)
			if err != nil {
				c.Close()
				return nil, fmt.Errorf("%s: wait for own presence: %w", cfg.JID, err)
			}
			if e.Name.Local == "presence" && e.Attribute("type") == "" && fromSelf(e, c) {
				break
			}
		}
	}
	return c, nil
}

// fromSelf reports whether stanza e comes from c's own full JID.
func fromSelf(e *xmlstream.Element, c *client.Client) bool {
	return e.Attribute("from") == c.JID().String()
}

// online logs every account in, concurrency at a time, and returns the
// clients in the accounts' order. On an error it closes those it opened.
func online(ctx context.Context, t Target, accounts []Account, concurrency int, presence bool) ([]*client.Client, error) {
	cs := make([]*client.Client, len(accounts))
	var mu sync.Mutex
	var first error
	each(len(accounts), concurrency, func(i int) {
		mu.Lock()
		failed := first != nil
		mu.Unlock()
		if failed || ctx.Err() != nil {
			return
		}
		c, err := login(ctx, t, accounts[i], presence)
		if err != nil {
			mu.Lock()
			if first == nil {
				first = err
			}
			mu.Unlock()
			return
		}
		cs[i] = c
	})
	if first == nil && ctx.Err() != nil {
		first = fmt.Errorf("log in: %w", ctx.Err())
	}
	if first != nil {
		closeAll(cs)
		return nil, first
	}
	return cs, nil
}

// closeAll ends the streams of the clients, many at a time.
func closeAll(cs []*client.Client) {
	each(len(cs), 256, func(i int) {
		if cs[i] != nil {
			_ = cs[i].Close()
		}
	})
}

// errClosed is why a scenario stops when the server ended a session.
var errClosed = errors.New("the server closed a session")
