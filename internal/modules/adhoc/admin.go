package adhoc

import (
	"context"
	"errors"
	"strconv"
	"strings"

	"github.com/ode-xmpp/ode/internal/admin"
	"github.com/ode-xmpp/ode/jid"
	"github.com/ode-xmpp/ode/stanza"
	"github.com/ode-xmpp/ode/xmlstream"
)

// NSAdmin is the XEP-0133 namespace: the FORM_TYPE of its forms and the
// prefix of its command nodes.
const NSAdmin = "http://jabber.org/protocol/admin"

// maxItemsOptions are the choices of the max_items field (XEP-0133 §4.18).
var maxItemsOptions = options("25", "50", "75", "100", "150", "200", "none")

// adminCommands are the XEP-0133 commands, on the operations of package
// admin.
func adminCommands(m *Module) []Command {
	one := func(title, instructions string, fields ...Field) []func(context.Context, *Call) (Form, error) {
		return []func(context.Context, *Call) (Form, error){func(context.Context, *Call) (Form, error) {
			return Form{Title: title, Instructions: instructions, FormType: NSAdmin, Fields: fields}, nil
		}}
	}
	accountJID := Field{Var: "accountjid", Type: "jid-single", Label: "The Jabber ID of the account", Required: true}
	accountJIDs := Field{Var: "accountjids", Type: "jid-multi", Label: "The Jabber IDs of the accounts", Required: true}
	maxItems := Field{Var: "max_items", Type: "list-single", Label: "Maximum number of items to show", Options: maxItemsOptions, Values: []string{"25"}}
	return []Command{
		{
			Node: NSAdmin + "#add-user", Name: "Add User", Admin: true,
			Forms: one("Adding a User", "Fill out this form to add a user.", accountJID,
				Field{Var: "password", Type: "text-private", Label: "The password for this account", Required: true},
				Field{Var: "password-verify", Type: "text-private", Label: "Retype password", Required: true}),
			Run: m.addUser,
		},
		{
			Node: NSAdmin + "#delete-user", Name: "Delete User", Admin: true,
			Forms: one("Deleting a User", "Fill out this form to delete a user.", accountJIDs),
			Run:   m.deleteUsers,
		},
		{
			Node: NSAdmin + "#end-user-session", Name: "End User Session", Admin: true,
			Forms: one("Ending a User Session", "Fill out this form to end a user's session: a bare JID ends all of them, a full JID that one.", accountJIDs),
			Run:   m.endUserSessions,
		},
		{
			Node: NSAdmin + "#change-user-password", Name: "Change User Password", Admin: true,
			Forms: one("Changing a User Password", "Fill out this form to change a user's password.", accountJID,
				Field{Var: "password", Type: "text-private", Label: "The new password", Required: true}),
			Run: m.changePassword,
		},
		{
			Node: NSAdmin + "#get-user-roster", Name: "Get User Roster", Admin: true,
			Forms: one("Getting a User's Roster", "Fill out this form to get a user's roster.", accountJID),
			Run:   m.userRoster,
		},
		{
			Node: NSAdmin + "#get-registered-users-num", Name: "Get Number of Registered Users", Admin: true,
			Run: m.registeredNum,
		},
		{
			Node: NSAdmin + "#get-online-users-num", Name: "Get Number of Online Users", Admin: true,
			Run: m.onlineNum,
		},
		{
			Node: NSAdmin + "#get-registered-users-list", Name: "Get List of Registered Users", Admin: true,
			Forms: one("Requesting List of Registered Users", "How many users should be shown at most?", maxItems),
			Run:   m.registeredList,
		},
		{
			Node: NSAdmin + "#get-online-users-list", Name: "Get List of Online Users", Admin: true,
			Forms: one("Requesting List of Online Users", "How many users should be shown at most?", maxItems),
			Run:   m.onlineList,
		},
		{
			Node: NSAdmin + "#announce", Name: "Send Announcement to Online Users", Admin: true,
			Forms: one("Making an Announcement", "Fill out this form to make an announcement to all active users of this service.",
				Field{Var: "announcement", Type: "text-multi", Label: "Announcement", Required: true}),
			Run: m.announce,
		},
	}
}

func (m *Module) accounts() admin.Accounts {
	return admin.Accounts{Store: m.deps.Store, Router: m.r, Domains: m.r.Domains()}
}

// failure turns what an operation of package admin returned into an error
// note for the administrator, and keeps any other error.
func failure(err error) (Result, error) {
	for _, e := range []error{admin.ErrNotFound, admin.ErrExists, admin.ErrInvalid, admin.ErrUnsupported} {
		if errors.Is(err, e) {
			return errorNote("%v", err), nil
		}
	}
	return Result{}, err
}

func (m *Module) addUser(ctx context.Context, c *Call) (Result, error) {
	a := m.accounts()
	u, err := a.ParseAccount(c.Values.Get("accountjid"))
	if err != nil {
		return failure(err)
	}
	if c.Values.Get("password") != c.Values.Get("password-verify") {
		return errorNote("the passwords do not match"), nil
	}
	if err := a.Add(ctx, u, c.Values.Get("password")); err != nil {
		return failure(err)
	}
	return infoNote("added %s", u), nil
}

func (m *Module) deleteUsers(ctx context.Context, c *Call) (Result, error) {
	a := m.accounts()
	var done []string
	for _, s := range c.Values["accountjids"] {
		u, err := a.ParseAccount(s)
		if err == nil {
			err = a.Delete(ctx, u)
		}
		if err != nil {
			return partial(done, "deleted", err)
		}
		done = append(done, u.String())
	}
	return infoNote("deleted %s", strings.Join(done, ", ")), nil
}

// partial reports a failure after some of a list were done.
func partial(done []string, verb string, err error) (Result, error) {
	res, err := failure(err)
	if err == nil && len(done) > 0 {
		res.Note = verb + " " + strings.Join(done, ", ") + "; then: " + res.Note
	}
	return res, err
}

func (m *Module) endUserSessions(_ context.Context, c *Call) (Result, error) {
	a := m.accounts()
	n := 0
	for _, s := range c.Values["accountjids"] {
		j, err := jid.Parse(strings.TrimSpace(s))
		if err != nil {
			return errorNote("JID %q: %v", s, err), nil
		}
		if j.Resource() != "" {
			if err := admin.KickSession(m.r, j, "ended by the administrator"); err != nil {
				return failure(err)
			}
			n++
			continue
		}
		u, err := a.ParseAccount(s)
		if err != nil {
			return failure(err)
		}
		n += a.Kick(u, "ended by the administrator")
	}
	return infoNote("ended %d sessions", n), nil
}

func (m *Module) changePassword(ctx context.Context, c *Call) (Result, error) {
	a := m.accounts()
	u, err := a.ParseAccount(c.Values.Get("accountjid"))
	if err == nil {
		err = a.SetPassword(ctx, u, c.Values.Get("password"))
	}
	if err != nil {
		return failure(err)
	}
	return infoNote("changed the password of %s", u), nil
}

func (m *Module) userRoster(ctx context.Context, c *Call) (Result, error) {
	a := m.accounts()
	u, err := a.ParseAccount(c.Values.Get("accountjid"))
	if err != nil {
		return failure(err)
	}
	ok, err := m.deps.Store.AccountExists(ctx, u.Local(), u.DomainString())
	if err != nil {
		return Result{}, err
	}
	if !ok {
		return failure(errors.Join(admin.ErrNotFound, errors.New("account "+u.String())))
	}
	items, _, err := m.deps.Store.Roster(ctx, u.Local(), u.DomainString())
	if err != nil {
		return Result{}, err
	}
	q := xmlstream.NewElement(stanza.NSRoster, "query")
	for _, it := range items {
		e := xmlstream.NewElement(stanza.NSRoster, "item").SetAttr("jid", it.Contact).SetAttr("subscription", string(it.Subscription))
		if it.Name != "" {
			e.SetAttr("name", it.Name)
		}
		for _, g := range it.Groups {
			e.Append(xmlstream.NewElement(stanza.NSRoster, "group").AppendText(g))
		}
		q.Append(e)
	}
	return Result{Form: &Form{FormType: NSAdmin, Fields: []Field{{Var: "accountjid", Type: "jid-single", Values: []string{u.String()}}},
		Extra: []*xmlstream.Element{q}}}, nil
}

func (m *Module) registeredNum(ctx context.Context, c *Call) (Result, error) {
	n, err := m.accounts().Count(ctx, c.Domain.String())
	if err != nil {
		return Result{}, err
	}
	return Result{Form: &Form{FormType: NSAdmin, Fields: []Field{
		{Var: "registeredusersnum", Label: "The number of registered users", Values: []string{strconv.Itoa(n)}}}}}, nil
}

// online returns the bare JIDs of the domain with a session.
func (m *Module) online(domain jid.JID) []string {
	var out []string
	for _, u := range admin.OnlineUsers(m.r) {
		if strings.HasSuffix(u, "@"+domain.String()) {
			out = append(out, u)
		}
	}
	return out
}

func (m *Module) onlineNum(_ context.Context, c *Call) (Result, error) {
	return Result{Form: &Form{FormType: NSAdmin, Fields: []Field{
		{Var: "onlineusersnum", Label: "The number of online users", Values: []string{strconv.Itoa(len(m.online(c.Domain)))}}}}}, nil
}

// limit cuts list to the max_items chosen ("none": all of it).
func limit(list []string, v Values) []string {
	if n, err := strconv.Atoi(v.Get("max_items")); err == nil && n >= 0 && n < len(list) {
		return list[:n]
	}
	return list
}

func (m *Module) registeredList(ctx context.Context, c *Call) (Result, error) {
	list, err := m.accounts().List(ctx, c.Domain.String())
	if err != nil {
		return Result{}, err
	}
	return Result{Form: &Form{FormType: NSAdmin, Fields: []Field{
		{Var: "registereduserjids", Type: "jid-multi", Label: "The list of all users", Values: limit(list, c.Values)}}}}, nil
}

func (m *Module) onlineList(_ context.Context, c *Call) (Result, error) {
	return Result{Form: &Form{FormType: NSAdmin, Fields: []Field{
		{Var: "onlineuserjids", Type: "jid-multi", Label: "The list of all online users", Values: limit(m.online(c.Domain), c.Values)}}}}, nil
}

func (m *Module) announce(ctx context.Context, c *Call) (Result, error) {
	body := strings.Join(c.Values["announcement"], "\n")
	n := admin.Announce(ctx, m.r, c.Domain.String(), "", body)
	return infoNote("sent the announcement to %d sessions", n), nil
}
