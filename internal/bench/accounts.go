package bench

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ode-xmpp/ode/client"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
)

// Target is the server under load and how to log in to it.
type Target struct {
	// Addr is the client listener, host:port.
	Addr string
	// DirectTLS starts TLS at once (XEP-0368) instead of STARTTLS.
	DirectTLS bool
	// TLS is the client TLS configuration (ServerName defaults to each
	// account's domain).
	TLS *tls.Config
	// Mechanism forces a SASL mechanism (PLAIN, SCRAM-SHA-256, …); empty
	// picks the strongest the server offers.
	Mechanism string
	// PID is the server's process on this machine, whose CPU time and
	// memory are read from /proc; 0 when unknown.
	PID int
}

// config returns the client configuration for one account.
func (t Target) config(a Account) client.Config {
	return client.Config{JID: a.JID, Password: a.Password, Addr: t.Addr, DirectTLS: t.DirectTLS, TLS: t.TLS, Mechanism: t.Mechanism}
}

// sample reads the server's process, or returns false without one.
func (t Target) sample() (ProcSample, bool) {
	if t.PID == 0 {
		return ProcSample{}, false
	}
	s, err := ReadProc(t.PID)
	return s, err == nil
}

// Account is one account the load generator logs in as.
type Account struct {
	// JID is the account's bare JID.
	JID jid.JID
	// Password is its password.
	Password string
}

// ReadAccounts reads lines of "jid password" (the format of ode user
// import); blank lines and lines starting with # are skipped.
func ReadAccounts(r io.Reader) ([]Account, error) {
	var out []Account
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, password, ok := strings.Cut(line, " ")
		password = strings.TrimSpace(password)
		if !ok || password == "" {
			return nil, fmt.Errorf("bench: accounts line %d: want \"jid password\"", n)
		}
		j, err := jid.Parse(name)
		if err != nil || j.Local() == "" {
			return nil, fmt.Errorf("bench: accounts line %d: bad account JID %q", n, name)
		}
		out = append(out, Account{JID: j.Bare(), Password: password})
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("bench: read accounts: %w", err)
	}
	return out, nil
}

// Generate returns n accounts prefix1@domain … prefixN@domain, all with
// the same password.
func Generate(domain, prefix, password string, n int) ([]Account, error) {
	out := make([]Account, n)
	for i := range out {
		j, err := jid.New(fmt.Sprintf("%s%d", prefix, i+1), domain, "")
		if err != nil {
			return nil, fmt.Errorf("bench: account name: %w", err)
		}
		out[i] = Account{JID: j, Password: password}
	}
	return out, nil
}

// RegisterResult counts what in-band registration did.
type RegisterResult struct {
	// Created and Existed count the accounts made now and those whose
	// name was taken already (assumed to be ours from an earlier run).
	Created, Existed int
	// Elapsed is the wall time of the registrations.
	Elapsed time.Duration
}

// Register creates the accounts by in-band registration (XEP-0077),
// concurrency at a time. A conflict (the name is taken) counts as
// existing; any other refusal is an error.
func Register(ctx context.Context, t Target, accounts []Account, concurrency int) (RegisterResult, error) {
	start := time.Now()
	var created, existed atomic.Int64
	var mu sync.Mutex
	var errs []error
	each(len(accounts), concurrency, func(i int) {
		rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		err := client.Register(rctx, t.config(accounts[i]))
		var se *stanza.Error
		switch {
		case err == nil:
			created.Add(1)
		case errors.As(err, &se) && se.Condition == stanza.Conflict:
			existed.Add(1)
		default:
			mu.Lock()
			if len(errs) < 3 {
				errs = append(errs, fmt.Errorf("%s: %w", accounts[i].JID, err))
			}
			mu.Unlock()
		}
	})
	r := RegisterResult{Created: int(created.Load()), Existed: int(existed.Load()), Elapsed: time.Since(start)}
	if len(errs) > 0 {
		return r, fmt.Errorf("bench: register: %w", errors.Join(errs...))
	}
	return r, nil
}

// each calls fn(i) for i in [0, n), at most concurrency at a time.
func each(n, concurrency int, fn func(i int)) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range max(1, min(concurrency, n)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1)) - 1
				if i >= n {
					return
				}
				fn(i)
			}
		}()
	}
	wg.Wait()
}
