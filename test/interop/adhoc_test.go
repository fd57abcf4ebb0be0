package interop_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ode-xmpp/ode/internal/config"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

type adhocResult struct {
	Version      string   `json:"version"`
	Events       []string `json:"events"`
	Error        string   `json:"error"`
	AdminNodes   []string `json:"admin_nodes"`
	UserNodes    []string `json:"user_nodes"`
	UserError    string   `json:"user_error"`
	CancelStatus string   `json:"cancel_status"`
	FormFields   []string `json:"form_fields"`
	FormType     string   `json:"form_type"`
	AddStatus    string   `json:"add_status"`
	AddNote      string   `json:"add_note"`
	NewLogin     bool     `json:"new_login"`
	OnlineNum    string   `json:"online_num"`
}

// TestSlixmppAdhoc: an administrator drives the XEP-0133 commands with
// slixmpp's xep_0050 plugin (slixmpp_adhoc.py), 1.8.3 and 1.10.0: the
// command list (empty for a user who is not an administrator, whose
// add-user is forbidden), add-user canceled at its form, then add-user
// completed, after which the new account logs in, and a command without
// a form.
func TestSlixmppAdhoc(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			srv := xmpptest.Start(t, func(c *config.Config) {
				c.Server.Admins = []string{"admin@" + c.Server.Domains[0]}
			})
			const password, newPassword = "adhoc pass", "new user's pass"
			admin := srv.AddUser(t, "admin", password)
			user := srv.AddUser(t, "user", password)
			newJID := "newcomer@" + srv.Domain
			host, port, _ := strings.Cut(srv.Addr, ":")
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Second)
			defer cancel()
			cmd := peer.command(ctx, t, "slixmpp_adhoc.py", host, port, srv.CAFile, admin.String(), user.String(), password, newJID, newPassword)
			var res adhocResult
			peer.scenario(t, cmd, &res)
			const ns = "http://jabber.org/protocol/admin#"
			for _, n := range []string{"add-user", "delete-user", "end-user-session", "change-user-password", "get-online-users-list"} {
				if !slices.Contains(res.AdminNodes, ns+n) {
					t.Errorf("the administrator's commands lack %s: %q", n, res.AdminNodes)
				}
			}
			if len(res.UserNodes) != 0 || res.UserError != "forbidden" {
				t.Errorf("the user sees %q and gets %q for add-user, want none and forbidden", res.UserNodes, res.UserError)
			}
			if res.CancelStatus != "canceled" {
				t.Errorf("cancel: status %q", res.CancelStatus)
			}
			if res.FormType != "http://jabber.org/protocol/admin" || !slices.Equal(res.FormFields, []string{"FORM_TYPE", "accountjid", "password", "password-verify"}) {
				t.Errorf("add-user form: FORM_TYPE %q, fields %q", res.FormType, res.FormFields)
			}
			if res.AddStatus != "completed" || !strings.HasPrefix(res.AddNote, "info: ") {
				t.Errorf("add-user: status %q, note %q", res.AddStatus, res.AddNote)
			}
			if !res.NewLogin {
				t.Error("the new user did not log in")
			}
			if ok, err := srv.Store().AccountExists(t.Context(), "newcomer", srv.Domain); err != nil || !ok {
				t.Errorf("newcomer in the store: %v %v", ok, err)
			}
			if res.OnlineNum != "3" {
				t.Errorf("online users: %q, want 3", res.OnlineNum)
			}
		})
	}
}
