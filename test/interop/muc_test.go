package interop_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/ode-xmpp/ode/internal/modules/muc"
	"github.com/ode-xmpp/ode/internal/xmpptest"
)

// mucPresence is a MUC presence a client of slixmpp_muc.py got: the
// occupant's nick, the type ("available" for none), the muc#user item
// (the real JID as the name of the client it is, "" when not shown) and
// the status codes.
type mucPresence struct {
	Nick        string `json:"nick"`
	Type        string `json:"type"`
	Affiliation string `json:"affiliation"`
	Role        string `json:"role"`
	JID         string `json:"jid"`
	Codes       []int  `json:"codes"`
	ItemNick    string `json:"item_nick"`
	Reason      string `json:"reason"`
	Actor       string `json:"actor"`
	Destroy     *struct {
		JID    string `json:"jid"`
		Reason string `json:"reason"`
	} `json:"destroy"`
	Hats []string `json:"hats"` // XEP-0317: "uri=title"
}

// String is the presence in one line, as the tests compare them:
// "nick type affiliation/role", then what else it has.
func (p mucPresence) String() string {
	s := fmt.Sprintf("%s %s %s/%s", p.Nick, p.Type, p.Affiliation, p.Role)
	if p.JID != "" {
		s += " jid=" + p.JID
	}
	if len(p.Codes) > 0 {
		codes := make([]string, len(p.Codes))
		for i, c := range p.Codes {
			codes[i] = strconv.Itoa(c)
		}
		s += " codes=" + strings.Join(codes, ",")
	}
	for _, kv := range [][2]string{{"nick", p.ItemNick}, {"reason", p.Reason}, {"actor", p.Actor}} {
		if kv[1] != "" {
			s += " " + kv[0] + "=" + kv[1]
		}
	}
	if p.Destroy != nil {
		s += fmt.Sprintf(" destroy=%s:%s", p.Destroy.JID, p.Destroy.Reason)
	}
	if len(p.Hats) > 0 {
		s += " hats=" + strings.Join(p.Hats, ",")
	}
	return s
}

// mucMessage is a message a client got ('to' as the client's name).
type mucMessage struct {
	From      string `json:"from"`
	To        string `json:"to"`
	Type      string `json:"type"`
	ID        string `json:"id"`
	Body      string `json:"body"`
	Subject   string `json:"subject"`
	MUCUser   bool   `json:"muc_user"`
	DelayFrom string `json:"delay_from"`
}

// mucJoin is what join_muc_wait returned, or the error condition.
type mucJoin struct {
	Error     string        `json:"error"`
	Self      mucPresence   `json:"self"`
	Subject   mucMessage    `json:"subject"`
	Occupants []mucPresence `json:"occupants"`
	History   []mucMessage  `json:"history"`
}

type mucDiscoItem struct {
	JID  string `json:"jid"`
	Node string `json:"node"`
	Name string `json:"name"`
}

// mucResult is what slixmpp_muc.py prints; the per-client maps are keyed
// by "alice", "bob" and "carol".
type mucResult struct {
	Version    string             `json:"version"`
	Module     string             `json:"module"`
	Events     []string           `json:"events"`
	Error      string             `json:"error"`
	Step       string             `json:"step"`
	JIDs       map[string]string  `json:"jids"`
	Room       string             `json:"room"`
	Joins      map[string]mucJoin `json:"joins"`
	ConfigForm struct {
		Type string   `json:"type"`
		Vars []string `json:"vars"`
	} `json:"config_form"`
	Presences map[string][]mucPresence `json:"presences"`
	Groupchat map[string][]mucMessage  `json:"groupchat"`
	History   map[string][]mucMessage  `json:"history"`
	Subjects  map[string][]mucMessage  `json:"subjects"`
	Private   map[string][]mucMessage  `json:"private"`
	Invites   map[string][]struct {
		From       string `json:"from"`
		InviteFrom string `json:"invite_from"`
		Reason     string `json:"reason"`
	} `json:"invites"`
	// Rosters are the plugin's get_roster at two moments: "all_in"
	// (everyone entered) and "before_destroy".
	Rosters   map[string]map[string][]string `json:"rosters"`
	DiscoInfo struct {
		Identities [][]string        `json:"identities"`
		Features   []string          `json:"features"`
		RoomInfo   map[string]string `json:"roominfo"`
	} `json:"disco_info"`
	DiscoItems      []mucDiscoItem    `json:"disco_items"`
	DiscoItemsAfter []mucDiscoItem    `json:"disco_items_after"`
	NewNick         string            `json:"new_nick"`
	IQs             map[string]string `json:"iqs"`
	// HatCommands are the command nodes the owner found on the room,
	// HatStatus how don ended (XEP-0317).
	HatCommands []string `json:"hat_commands"`
	HatStatus   string   `json:"hat_status"`
}

// TestSlixmppMUC: three slixmpp clients (Debian 12's 1.8.3 and
// bookworm-backports' 1.10.0) use a room of the XEP-0045 service with
// slixmpp's xep_0045 plugin (slixmpp_muc.py has the scenario): alice
// creates room@conference.localhost, which stays locked (bob is refused)
// until she submits the configuration form with a name; bob enters, alice
// sets the subject, invites carol, who enters and gets it; bob looks the
// room and the service up with disco; everyone's groupchat messages reach
// everyone once, in one order; bob writes to carol privately; alice makes
// bob a member, bob becomes robert; alice kicks carol, who comes back
// with some history, bans her, and carol is refused; alice destroys the
// room. Every client's MUC presences are compared, in order, with what
// the service must send: the items (real JIDs to the moderator only),
// 110 on one's own, 201, 303, 307, 301, the destroy element.
func TestSlixmppMUC(t *testing.T) {
	for _, peer := range []slixmppPeer{slixmppDebian, slixmppBackports} {
		t.Run(peer.version, func(t *testing.T) {
			peer.need(t)
			runMUC(t, peer)
		})
	}
}

func runMUC(t *testing.T, peer slixmppPeer) {
	began := time.Now()
	t.Setenv("ODE_TEST_LOG", "1")
	logs := &serverLog{TB: t}
	srv := xmpptest.Start(logs, nil)
	defer func() {
		if t.Failed() {
			t.Logf("server log:\n%s", strings.Join(logs.lines(), "\n"))
		}
	}()
	const password = "muc pass"
	host, port, _ := strings.Cut(srv.Addr, ":")
	args := []string{"slixmpp_muc.py", host, port, srv.CAFile, "conference." + srv.Domain}
	for _, u := range []string{"alice", "bob", "carol"} {
		args = append(args, srv.AddUser(t, u, password).String())
	}
	ctx, cancel := context.WithTimeout(t.Context(), 90*time.Second)
	defer cancel()
	out, err := peer.command(ctx, t, append(args, password)...).Output()
	var res mucResult
	if jerr := json.Unmarshal(lastLine(out), &res); jerr != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("slixmpp script: %v / %v\nstdout: %s\nstderr: %s", err, jerr, out, stderr)
	}
	t.Logf("slixmpp %s (%s) events:\n  %s", res.Version, res.Module, strings.Join(res.Events, "\n  "))
	if err != nil || res.Error != "" {
		t.Fatalf("slixmpp scenario stopped: %s (exit: %v)", res.Error, err)
	}
	if res.Version != peer.version {
		t.Errorf("the script loaded slixmpp %s from %s, want %s", res.Version, res.Module, peer.version)
	}
	room := "room@conference." + srv.Domain
	if res.Room != room {
		t.Fatalf("the script used the room %q, want %s", res.Room, room)
	}
	checkMUCPresences(t, res)
	checkMUCJoins(t, res, room)
	checkMUCMessages(t, res, room)
	checkMUCDisco(t, res, room)
	for _, iq := range []string{"get_room_config", "set_room_config", "set_affiliation member", "set_role none", "set_affiliation outcast", "destroy"} {
		if got := res.IQs[iq]; got != "result" {
			t.Errorf("%s answered %q, want a result", iq, got)
		}
	}
	if want := []string{"urn:xmpp:hats:commands:doff", "urn:xmpp:hats:commands:don"}; !slices.Equal(slices.Sorted(slices.Values(res.HatCommands)), want) || res.HatStatus != "completed" {
		t.Errorf("hats: the owner found the commands %v (want %v), don ended %q (want completed)", res.HatCommands, want, res.HatStatus)
	}
	if res.NewNick != "robert" {
		t.Errorf("bob's nick change gave %q, want robert", res.NewNick)
	}
	for _, r := range logs.records() {
		if r["level"] == "ERROR" || r["level"] == "WARN" {
			t.Errorf("server: %s", r["line"])
		}
	}
	t.Logf("slixmpp %s: %v", peer.version, time.Since(began).Round(time.Millisecond))
}

// lastLine is the last non-empty line of out: the script's JSON.
func lastLine(out []byte) []byte {
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	return []byte(lines[len(lines)-1])
}

// checkMUCPresences compares every client's MUC presences, in the order
// they came, with what the room must have sent. Alice is a moderator and
// sees real JIDs; the room is semi-anonymous, so bob and carol see only
// their own.
func checkMUCPresences(t *testing.T, res mucResult) {
	t.Helper()
	const (
		kick = "codes=307 reason=No cake actor=alice"
		ban  = "codes=301 reason=Still no cake actor=alice"
		gone = "destroy=lounge@conference.localhost:Tea is over"
		hat  = " hats=urn:example:hats#host=Host" // given by alice with the don command
	)
	want := map[string][]string{
		"alice": {
			"alice available owner/moderator jid=alice codes=110,201",
			"bob available none/participant jid=bob",
			"carol available none/participant jid=carol",
			"bob available none/participant jid=bob" + hat,
			"bob available member/participant jid=bob" + hat,
			"bob unavailable member/participant jid=bob codes=303 nick=robert" + hat,
			"robert available member/participant jid=bob" + hat,
			"carol unavailable none/none jid=carol " + kick,
			"carol available none/participant jid=carol",
			"carol unavailable outcast/none jid=carol " + ban,
			"alice unavailable none/none codes=110 " + gone,
		},
		"bob": {
			"alice available owner/moderator",
			"bob available none/participant jid=bob codes=110",
			"carol available none/participant",
			"bob available none/participant jid=bob codes=110" + hat,
			"bob available member/participant jid=bob codes=110" + hat,
			"bob unavailable member/participant jid=bob codes=110,303 nick=robert" + hat,
			"robert available member/participant jid=bob codes=110" + hat,
			"carol unavailable none/none " + kick,
			"carol available none/participant",
			"carol unavailable outcast/none " + ban,
			"robert unavailable none/none codes=110 " + gone,
		},
		"carol": {
			"alice available owner/moderator",
			"bob available none/participant",
			"carol available none/participant jid=carol codes=110",
			"bob available none/participant" + hat,
			"bob available member/participant" + hat,
			"bob unavailable member/participant codes=303 nick=robert" + hat,
			"robert available member/participant" + hat,
			"carol unavailable none/none jid=carol codes=110,307 reason=No cake actor=alice",
			"alice available owner/moderator",
			"robert available member/participant" + hat,
			"carol available none/participant jid=carol codes=110",
			"carol unavailable outcast/none jid=carol codes=110,301 reason=Still no cake actor=alice",
		},
	}
	for _, name := range []string{"alice", "bob", "carol"} {
		var got []string
		for _, p := range res.Presences[name] {
			got = append(got, p.String())
		}
		if diff := cmp.Diff(want[name], got); diff != "" {
			t.Errorf("%s's MUC presences (-want +got):\n%s", name, diff)
		}
	}
	wantRosters := map[string]map[string][]string{
		"all_in":         {"alice": {"alice", "bob", "carol"}, "bob": {"alice", "bob", "carol"}, "carol": {"alice", "bob", "carol"}},
		"before_destroy": {"alice": {"alice", "robert"}, "bob": {"alice", "robert"}},
	}
	if diff := cmp.Diff(wantRosters, res.Rosters); diff != "" {
		t.Errorf("the plugin's rosters of the room (-want +got):\n%s", diff)
	}
}

// checkMUCJoins checks what each entry returned: the refusals, the
// occupants, the subject and the history.
func checkMUCJoins(t *testing.T, res mucResult, room string) {
	t.Helper()
	for key, cond := range map[string]string{"bob_locked": "item-not-found", "carol_banned": "forbidden"} {
		if got := res.Joins[key].Error; got != cond {
			t.Errorf("entry %s: error %q, want %s", key, got, cond)
		}
	}
	history := res.Groupchat["alice"]
	if len(history) > 3 {
		history = history[len(history)-3:]
	}
	for _, c := range []struct {
		key, self, subjectFrom, subject string
		occupants                       []string // nicks, in order
		history                         []mucMessage
	}{
		{"alice", "alice available owner/moderator jid=alice codes=110,201", room, "", []string{"alice"}, nil},
		{"bob", "bob available none/participant jid=bob codes=110", room, "", []string{"alice", "bob"}, nil},
		{"carol", "carol available none/participant jid=carol codes=110", room + "/alice", "Tea at four", []string{"alice", "bob", "carol"}, nil},
		{"carol_again", "carol available none/participant jid=carol codes=110", room + "/alice", "Tea at four", []string{"alice", "robert", "carol"}, history},
	} {
		j, ok := res.Joins[c.key]
		if !ok || j.Error != "" {
			t.Errorf("entry %s: %+v", c.key, j)
			continue
		}
		if got := j.Self.String(); got != c.self {
			t.Errorf("entry %s: self-presence %q, want %q", c.key, got, c.self)
		}
		var nicks []string
		for _, o := range j.Occupants {
			nicks = append(nicks, o.Nick)
		}
		if !slices.Equal(nicks, c.occupants) {
			t.Errorf("entry %s: occupants %q, want %q", c.key, nicks, c.occupants)
		}
		if j.Subject.From != c.subjectFrom || j.Subject.Subject != c.subject || j.Subject.Body != "" {
			t.Errorf("entry %s: subject %+v, want %q from %s", c.key, j.Subject, c.subject, c.subjectFrom)
		}
		if len(j.History) != len(c.history) {
			t.Errorf("entry %s: %d history messages, want %d: %+v", c.key, len(j.History), len(c.history), j.History)
			continue
		}
		for i, h := range j.History {
			w := c.history[i]
			if h.From != w.From || h.ID != w.ID || h.Body != w.Body || h.Type != "groupchat" || h.DelayFrom != room {
				t.Errorf("entry %s: history %d = %+v, want %q from %s (id %s) with a delay from %s", c.key, i, h, w.Body, w.From, w.ID, room)
			}
		}
	}
	if f := res.ConfigForm; f.Type != "form" || !slices.Contains(f.Vars, "FORM_TYPE") ||
		!slices.Contains(f.Vars, "muc#roomconfig_roomname") || !slices.Contains(f.Vars, "muc#roomconfig_membersonly") {
		t.Errorf("configuration form of type %q with %q, want a form with FORM_TYPE, roomname and membersonly", f.Type, f.Vars)
	}
}

// checkMUCMessages checks the groupchat messages (all fifteen, once, in
// one order for all, each sender's in its order, with its id), the
// subject, the private message and the invitation.
func checkMUCMessages(t *testing.T, res mucResult, room string) {
	t.Helper()
	names := []string{"alice", "bob", "carol"}
	var order []string
	for i, name := range names {
		var got []string
		for _, m := range res.Groupchat[name] {
			sender, n, _ := strings.Cut(m.Body, " ")
			if m.Type != "groupchat" || m.From != room+"/"+sender || m.ID != "gc-"+sender+"-"+n || m.To != name {
				t.Errorf("%s got %+v, want a groupchat message from %s/%s with the id gc-%s-%s", name, m, room, sender, sender, n)
			}
			got = append(got, m.Body)
		}
		if i == 0 {
			order = got
		} else if !slices.Equal(got, order) {
			t.Errorf("%s got the groupchat messages in the order\n  %q\nalice in\n  %q", name, got, order)
		}
	}
	counts := make(map[string]int)
	for _, b := range order {
		counts[b]++
	}
	for _, sender := range names {
		last := 0
		for i := 1; i <= 5; i++ {
			body := fmt.Sprintf("%s %d", sender, i)
			if counts[body] != 1 {
				t.Errorf("%q came %d times, want once", body, counts[body])
			}
			at := slices.Index(order, body)
			if at < last {
				t.Errorf("%q came before %s's earlier message: %q", body, sender, order)
			}
			last = at
		}
	}
	if len(order) != 15 {
		t.Errorf("%d groupchat messages, want 15: %q", len(order), order)
	}
	// Delayed messages: only the history of carol's second entry.
	if len(res.History["alice"])+len(res.History["bob"]) != 0 {
		t.Errorf("delayed messages at alice %+v and bob %+v, want none", res.History["alice"], res.History["bob"])
	}
	if diff := cmp.Diff(res.Joins["carol_again"].History, res.History["carol"]); diff != "" {
		t.Errorf("carol's delayed messages are not the history of her second entry (-entry +all):\n%s", diff)
	}

	// The subject: the empty one of each entry before alice set it, then
	// hers to those in the room, and hers to carol's two entries.
	empty := mucMessage{From: room, Type: "groupchat"}
	set := mucMessage{From: room + "/alice", Type: "groupchat", Subject: "Tea at four"}
	wantSubjects := map[string][]mucMessage{"alice": {empty, set}, "bob": {empty, set}, "carol": {set, set}}
	for _, name := range names {
		var got []mucMessage
		for _, s := range res.Subjects[name] {
			got = append(got, mucMessage{From: s.From, Type: s.Type, Subject: s.Subject, Body: s.Body})
		}
		if diff := cmp.Diff(wantSubjects[name], got); diff != "" {
			t.Errorf("%s's subjects (-want +got):\n%s", name, diff)
		}
	}

	// bob → carol through the room.
	if p := res.Private["carol"]; len(p) != 1 || p[0].From != room+"/bob" || p[0].Type != "chat" || p[0].Body != "psst" || !p[0].MUCUser {
		t.Errorf("carol's private messages: %+v, want one chat message psst from %s/bob with the muc#user <x/>", p, room)
	}
	if len(res.Private["alice"])+len(res.Private["bob"]) != 0 {
		t.Errorf("private messages at alice %+v and bob %+v, want none", res.Private["alice"], res.Private["bob"])
	}
	if inv := res.Invites["carol"]; len(inv) != 1 || inv[0].From != room || inv[0].InviteFrom != "alice" || inv[0].Reason != "Tea?" {
		t.Errorf("carol's invitations: %+v, want one from %s, by alice, reason Tea?", inv, room)
	}
	if len(res.Invites["alice"])+len(res.Invites["bob"]) != 0 {
		t.Errorf("invitations at alice %+v and bob %+v, want none", res.Invites["alice"], res.Invites["bob"])
	}
}

// checkMUCDisco checks the room's disco#info and the service's
// disco#items before and after the room was destroyed.
func checkMUCDisco(t *testing.T, res mucResult, room string) {
	t.Helper()
	info := res.DiscoInfo
	if diff := cmp.Diff([][]string{{"conference", "text", "Tea party"}}, info.Identities); diff != "" {
		t.Errorf("the room's identities (-want +got):\n%s", diff)
	}
	for _, f := range []string{muc.NS, "muc_public", "muc_open", "muc_temporary", "muc_unmoderated", "muc_semianonymous", "muc_unsecured"} {
		if !slices.Contains(info.Features, f) {
			t.Errorf("the room's disco#info lacks %s: %q", f, info.Features)
		}
	}
	for _, f := range []string{"muc_membersonly", "muc_hidden", "muc_persistent", "muc_moderated", "muc_nonanonymous", "muc_passwordprotected"} {
		if slices.Contains(info.Features, f) {
			t.Errorf("the room's disco#info lists %s: %q", f, info.Features)
		}
	}
	for k, v := range map[string]string{"FORM_TYPE": muc.NSRoomInfo, "muc#roominfo_occupants": "3", "muc#roominfo_subject": "Tea at four"} {
		if got, ok := info.RoomInfo[k]; !ok || got != v {
			t.Errorf("the room's muc#roominfo %s = %q, want %q (form: %q)", k, got, v, info.RoomInfo)
		}
	}
	if diff := cmp.Diff([]mucDiscoItem{{JID: room, Name: "Tea party"}}, res.DiscoItems); diff != "" {
		t.Errorf("the service's disco#items (-want +got):\n%s", diff)
	}
	if len(res.DiscoItemsAfter) != 0 {
		t.Errorf("the service's disco#items after the room was destroyed: %+v, want none", res.DiscoItemsAfter)
	}
}
