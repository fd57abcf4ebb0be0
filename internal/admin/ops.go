// Package admin is the server's administration: the operations on
// accounts, sessions, rooms and the server itself that the ode commands,
// the HTTPS admin API and the XEP-0133 ad-hoc commands share; the HTTP
// API that carries them (Handler), on a Unix control socket checked by
// peer credentials (Listen) and under /admin/ on the [http] listeners
// with a bearer token; and its client (Client).
package admin

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ode-xmpp/ode/internal/router"
	"github.com/ode-xmpp/ode/internal/session"
	"github.com/ode-xmpp/ode/internal/storage"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/sasl"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/stream"
	"github.com/ode-xmpp/ode/xmlstream"
)

// Errors of the operations, for callers to tell apart with errors.Is.
var (
	// ErrNotFound: no such account, session or room.
	ErrNotFound = errors.New("not found")
	// ErrExists: the account exists already.
	ErrExists = errors.New("already exists")
	// ErrInvalid: a malformed argument (JID, password).
	ErrInvalid = errors.New("invalid argument")
	// ErrUnsupported: the operation does not apply to this server (a
	// module turned off, a backend that cannot do it).
	ErrUnsupported = errors.New("not supported")
)

// Accounts are the account operations: on the store, and on the live
// sessions through the router when Router is set (nil when the server
// does not run: `ode user …` on the database).
type Accounts struct {
	Store   storage.Store
	Router  *router.Router
	Domains []string // the hosted domains
}

// ParseAccount parses an account's bare JID and checks that its domain
// is hosted.
func (a Accounts) ParseAccount(s string) (jid.JID, error) {
	u, err := jid.Parse(strings.TrimSpace(s))
	if err != nil {
		return jid.JID{}, fmt.Errorf("%w: JID %q: %v", ErrInvalid, s, err)
	}
	if u.Local() == "" || u.Resource() != "" {
		return jid.JID{}, fmt.Errorf("%w: %q is not an account: want a bare JID such as user@%s", ErrInvalid, s, first(a.Domains))
	}
	if !slices.Contains(a.Domains, u.DomainString()) {
		return jid.JID{}, fmt.Errorf("%w: domain %s is not served by this server (server.domains = %v)", ErrInvalid, u.DomainString(), a.Domains)
	}
	return u, nil
}

func first(list []string) string {
	if len(list) == 0 {
		return "example.org"
	}
	return list[0]
}

// NewCredentials derives the stored SCRAM verifiers for a password.
func NewCredentials(password string) ([]storage.Credential, error) {
	if password == "" {
		return nil, fmt.Errorf("%w: the password is empty", ErrInvalid)
	}
	cs, err := sasl.NewCredentials(password, 0)
	if err != nil {
		return nil, fmt.Errorf("%w: password: %v", ErrInvalid, err)
	}
	out := make([]storage.Credential, len(cs))
	for i, c := range cs {
		out[i] = storage.Credential{Hash: string(c.Hash), Salt: c.Salt, Iterations: c.Iterations, StoredKey: c.StoredKey, ServerKey: c.ServerKey}
	}
	return out, nil
}

// Add creates the account with the password.
func (a Accounts) Add(ctx context.Context, u jid.JID, password string) error {
	creds, err := NewCredentials(password)
	if err != nil {
		return err
	}
	if err := a.Store.CreateAccount(ctx, u.Local(), u.DomainString(), creds); err != nil {
		if errors.Is(err, storage.ErrExists) {
			return fmt.Errorf("account %s: %w", u, ErrExists)
		}
		return fmt.Errorf("create %s: %w", u, err)
	}
	return nil
}

// SetPassword changes the account's password. Sessions stay; FAST
// tokens (XEP-0484), which stand for the old password, are invalidated.
func (a Accounts) SetPassword(ctx context.Context, u jid.JID, password string) error {
	creds, err := NewCredentials(password)
	if err != nil {
		return err
	}
	if err := a.Store.SetCredentials(ctx, u.Local(), u.DomainString(), creds); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("account %s: %w", u, ErrNotFound)
		}
		return fmt.Errorf("set password of %s: %w", u, err)
	}
	if _, err := a.Store.DeleteFASTTokens(ctx, u.Local(), u.DomainString()); err != nil {
		return fmt.Errorf("invalidate the FAST tokens of %s: %w", u, err)
	}
	return nil
}

// Delete ends the account's sessions and deletes it with its data.
func (a Accounts) Delete(ctx context.Context, u jid.JID) error {
	if err := a.Store.DeleteAccount(ctx, u.Local(), u.DomainString()); err != nil {
		if errors.Is(err, storage.ErrNotFound) {
			return fmt.Errorf("account %s: %w", u, ErrNotFound)
		}
		return fmt.Errorf("delete %s: %w", u, err)
	}
	a.Kick(u, "the account was deleted")
	return nil
}

// List returns the accounts of domain (every domain when empty) as bare
// JIDs, by domain and then localpart.
func (a Accounts) List(ctx context.Context, domain string) ([]string, error) {
	names, err := a.Store.ListAccounts(ctx, domain)
	if err != nil {
		return nil, fmt.Errorf("list accounts: %w", err)
	}
	if domain != "" {
		for i, n := range names {
			names[i] = n + "@" + domain
		}
	}
	return names, nil
}

// Count returns the number of registered accounts of domain (every hosted
// domain when empty).
func (a Accounts) Count(ctx context.Context, domain string) (int, error) {
	list, err := a.List(ctx, domain)
	return len(list), err
}

// kickCondition is the stream error that ends a session an administrator
// ended (RFC 6120 §4.9.3.14: the entity violated a local policy).
const kickCondition = stream.PolicyViolation

// Kick ends every session of the account u, with text as the stream
// error's text, and returns how many ended. A session ended so is not
// resumable (XEP-0198). Without a router (the server does not run) it
// ends none.
func (a Accounts) Kick(u jid.JID, text string) int {
	if a.Router == nil {
		return 0
	}
	ss := a.Router.Sessions(u.Bare())
	for _, s := range ss {
		s.Close(&stream.Error{Condition: kickCondition, Text: text})
	}
	return len(ss)
}

// Logout logs the account out everywhere: its sessions end and its FAST
// tokens (XEP-0484) are invalidated, so that every client must log in
// with the password again.
func (a Accounts) Logout(ctx context.Context, u jid.JID) (sessions, tokens int, err error) {
	ok, err := a.Store.AccountExists(ctx, u.Local(), u.DomainString())
	if err != nil {
		return 0, 0, fmt.Errorf("log out %s: %w", u, err)
	}
	if !ok {
		return 0, 0, fmt.Errorf("account %s: %w", u, ErrNotFound)
	}
	tokens, err = a.Store.DeleteFASTTokens(ctx, u.Local(), u.DomainString())
	if err != nil {
		return 0, 0, fmt.Errorf("log out %s: %w", u, err)
	}
	return a.Kick(u, "logged out by the administrator"), tokens, nil
}

// Session is what administrators see of one session.
type Session struct {
	JID       string    `json:"jid"`
	Transport string    `json:"transport,omitempty"`
	Remote    string    `json:"remote,omitempty"`
	Client    string    `json:"client,omitempty"`
	Since     time.Time `json:"since"`
	Available bool      `json:"available"`
	Priority  int       `json:"priority"`
	Detached  bool      `json:"detached,omitempty"` // waiting for a resumption (XEP-0198)
}

// Sessions returns the bound sessions (those of the account u only, when
// it is not zero), sorted by JID.
func Sessions(r *router.Router, u jid.JID) []Session {
	var out []Session
	add := func(s router.Session) {
		prio, avail := s.Presence()
		x := Session{JID: s.JID().String(), Available: avail, Priority: prio, Detached: s.Detached()}
		if is, ok := s.(interface{ Info() session.Info }); ok {
			i := is.Info()
			x.Transport, x.Remote, x.Client, x.Since = i.Transport, i.Remote, i.Client, i.Since
		}
		out = append(out, x)
	}
	if u.IsZero() {
		r.Each(add)
	} else {
		for _, s := range r.Sessions(u) {
			add(s)
		}
	}
	slices.SortFunc(out, func(a, b Session) int { return strings.Compare(a.JID, b.JID) })
	return out
}

// KickSession ends the session bound to the full JID full.
func KickSession(r *router.Router, full jid.JID, text string) error {
	s := r.Session(full)
	if s == nil || full.Resource() == "" {
		return fmt.Errorf("session %s: %w", full, ErrNotFound)
	}
	s.Close(&stream.Error{Condition: kickCondition, Text: text})
	return nil
}

// OnlineUsers returns the bare JIDs with at least one session, sorted.
func OnlineUsers(r *router.Router) []string {
	seen := make(map[string]bool)
	r.Each(func(s router.Session) { seen[s.JID().Bare().String()] = true })
	out := make([]string, 0, len(seen))
	for u := range seen {
		out = append(out, u)
	}
	slices.Sort(out)
	return out
}

// Announce sends a headline message (RFC 6121 §5.2.2) from the domain of
// each session to every available session of the hosted domains (only
// domain's, when set), and returns how many it went to.
func Announce(ctx context.Context, r *router.Router, domain, subject, body string) int {
	var targets []jid.JID
	r.Each(func(s router.Session) {
		if _, ok := s.Presence(); ok && (domain == "" || s.JID().DomainString() == domain) {
			targets = append(targets, s.JID())
		}
	})
	for _, to := range targets {
		m := stanza.NewMessage(stanza.NSClient, stanza.MessageHeadline, to.String(), to.DomainString(), "")
		if subject != "" {
			m.Append(xmlstream.NewElement(stanza.NSClient, "subject").AppendText(subject))
		}
		m.Append(xmlstream.NewElement(stanza.NSClient, "body").AppendText(body))
		r.Route(ctx, m)
	}
	return len(targets)
}
