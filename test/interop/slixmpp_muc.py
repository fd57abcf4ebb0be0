#!/usr/bin/python3
"""Three slixmpp clients chat in a room of the server's multi-user chat
service (XEP-0045) with slixmpp's xep_0045 plugin, and look at it with
xep_0030.

Usage: slixmpp_muc.py HOST PORT CAFILE SERVICE JID_ALICE JID_BOB JID_CAROL PASSWORD

Alice, bob and carol log in (slixmpp's default negotiation over STARTTLS,
trusting CAFILE, each with PASSWORD) and send initial presence. The room is
room@SERVICE. Then:

  1. Alice enters it (join_muc_wait, which sends the MUC <x/>): she creates
     it, locked. Bob's entry is refused (item-not-found). Alice gets the
     configuration form (get_room_config), sets a name and members-only
     off and submits it (set_room_config): the room is open.
  2. Bob enters. Alice sets the subject (set_subject); alice and bob get it.
  3. Alice invites carol (invite, a mediated invitation); carol gets it
     and enters, and gets the subject with her entry. Alice finds the
     room's XEP-0317 commands (disco#items of the commands node) and runs
     urn:xmpp:hats:commands:don (xep_0050) to give bob a hat: everyone
     sees it in bob's presence from then on.
  4. Bob asks for the disco#info of the room and the disco#items of the
     service.
  5. All three send five groupchat messages each, without waiting: each
     must get the fifteen once, in one order for all.
  6. Bob sends carol a private message (room/carol, type chat).
  7. Alice makes bob a member (set_affiliation); bob changes his nick to
     robert (set_self_nick in 1.10).
  8. Alice kicks carol (set_role none); carol enters again, asking for the
     last 3 messages of the history; alice bans her (set_affiliation
     outcast); carol's next entry is refused (forbidden).
  9. Alice destroys the room (destroy, with a reason and an alternate
     venue); alice and robert get the destroy presence; the service's
     disco#items no longer lists the room.

Every step waits for what it causes to reach every client concerned. Each
client records every MUC presence the plugin reports (groupchat_presence),
every groupchat message (groupchat_message), subject (groupchat_subject),
invitation (groupchat_invite) and private message, in order. The last line
of stdout is one JSON object with all of it; muc_test.go checks it. The
exit status is 0 unless a step failed ("error").

Differences between slixmpp 1.8.3 and 1.10.0 the script works around:
  - 1.8.3's join_muc_wait prints (print(delay)) every groupchat message
    that comes while it waits for an entry to finish, that is the history,
    on stdout: the script writes its JSON to the original stdout and points
    sys.stdout at stderr.
  - 1.8.3 has no set_self_nick (1.9.0): the script sends the presence to
    room/newnick itself and waits for the self-presence with 110 and 303.
  - 1.8.3's muc stanza has no 'item_nick' interface: the item's nick is
    read as ['muc']['item']['nick'], which both have.
  - 1.10.0's join_muc_wait never returns unless the entry has a 'from'
    (it compares the empty 'from' of a client's presence, which as a JID
    is true, with the 'to' of what comes back): the script sets it to the
    client's full JID, in both versions.
  - connect() takes (host, port) in 1.8 and host, port in 1.10.
Both versions have join_muc_wait (1.8.0), which the script uses rather than
the deprecated join_muc, whose maxhistory="0" asks for maxchars=9.

MUC_DEBUG=1 in the environment logs slixmpp's debug output to stderr.
"""
import asyncio
import logging
import os
import sys

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError, IqTimeout, PresenceError

import harness
from harness import StepTimeout, connect

HOST, PORT, CAFILE, SERVICE, JID_ALICE, JID_BOB, JID_CAROL, PASSWORD = sys.argv[1:9]
ROOM = JID("room@" + SERVICE)
ALT_ROOM = "lounge@" + SERVICE
NS_USER = "http://jabber.org/protocol/muc#user"
NS_DELAY = "urn:xmpp:delay"
NS_DATA = "jabber:x:data"
STEP_TIMEOUT = 10
TOTAL_TIMEOUT = 60
PER_CLIENT = 5  # groupchat messages each client sends

# slixmpp 1.8.3 prints to stdout while joining (see above).
OUT = sys.stdout
sys.stdout = sys.stderr

logging.basicConfig(level=logging.DEBUG if os.environ.get("MUC_DEBUG") else logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
    version=slixmpp.__version__,
    module=slixmpp.__file__,
    jids={},
    room=str(ROOM),
    joins={},          # name -> what join_muc_wait returned, or the error
    config_form={},    # the form alice got: type and vars
    presences={"alice": [], "bob": [], "carol": []},
    groupchat={"alice": [], "bob": [], "carol": []},
    history={"alice": [], "bob": [], "carol": []},  # delayed groupchat messages
    subjects={"alice": [], "bob": [], "carol": []},
    private={"alice": [], "bob": [], "carol": []},
    invites={"alice": [], "bob": [], "carol": []},
    rosters={},        # when -> name -> get_roster()
    disco_info={},
    disco_items=[],
    disco_items_after=[],
    new_nick="",
    hat_commands=[],   # the command nodes alice (owner) finds on the room
    hat_status="",     # how don ended
    iqs={},            # name of an IQ -> "result" or the error condition
)
result, log, step, until = run.result, run.log, run.step, run.until


def name_of(jid):
    """The client's name for one of the clients' full JIDs, else the JID."""
    for name, full in result["jids"].items():
        if full == str(jid):
            return name
    return str(jid)


def describe_presence(pr):
    """A MUC presence: the occupant's nick, type, the item and the codes."""
    muc = pr["muc"]
    item = pr.xml.find("{%s}x/{%s}item" % (NS_USER, NS_USER))
    d = {
        "nick": pr["from"].resource,
        "type": pr["type"] if pr["type"] in ("unavailable", "error") else "available",
        "affiliation": muc["affiliation"],
        "role": muc["role"],
        "jid": name_of(muc["jid"]) if item is not None and item.get("jid") else "",
        "codes": sorted(muc["status_codes"]),
        "item_nick": muc["item"]["nick"] if item is not None else "",
        "reason": "",
        "actor": "",
        "destroy": None,
        "hats": [h.get("uri", "") + "=" + h.get("title", "")
                 for h in pr.xml.findall("{urn:xmpp:hats:0}hats/{urn:xmpp:hats:0}hat")],
    }
    if item is not None:
        d["reason"] = item.findtext("{%s}reason" % NS_USER) or ""
        actor = item.find("{%s}actor" % NS_USER)
        if actor is not None:
            d["actor"] = actor.get("nick", "")
    destroy = pr.xml.find("{%s}x/{%s}destroy" % (NS_USER, NS_USER))
    if destroy is not None:
        d["destroy"] = {"jid": destroy.get("jid", ""), "reason": destroy.findtext("{%s}reason" % NS_USER) or ""}
    return d


def describe_message(msg):
    delay = msg.xml.find("{%s}delay" % NS_DELAY)
    return {
        "from": str(msg["from"]),
        "to": name_of(msg["to"]),
        "type": msg["type"],
        "id": msg["id"],
        "body": msg["body"],
        "subject": msg["subject"],
        "muc_user": msg.xml.find("{%s}x" % NS_USER) is not None,
        "delay_from": delay.get("from", "") if delay is not None else "",
    }


class Client(harness.Client):
    def __init__(self, jid, name):
        super().__init__(run, jid, PASSWORD, name, CAFILE, plugins=("xep_0030", "xep_0004", "xep_0045", "xep_0050"))
        self.add_event_handler("groupchat_presence", self.on_presence)
        self.add_event_handler("groupchat_message", self.on_groupchat)
        self.add_event_handler("groupchat_subject", self.on_subject)
        self.add_event_handler("groupchat_invite", self.on_invite)
        self.add_event_handler("message", self.on_message)

    @property
    def muc(self):
        return self["xep_0045"]

    async def starting(self):
        result["jids"][self.name] = self.boundjid.full

    def on_presence(self, pr):
        d = describe_presence(pr)
        log("%s: presence %s" % (self.name, d))
        result["presences"][self.name].append(d)

    def on_groupchat(self, msg):
        d = describe_message(msg)
        if d["delay_from"]:
            result["history"][self.name].append(d)
        else:
            result["groupchat"][self.name].append(d)

    def on_subject(self, msg):
        d = describe_message(msg)
        log("%s: subject from %s: %r" % (self.name, d["from"], d["subject"]))
        result["subjects"][self.name].append(d)

    def on_invite(self, msg):
        inv = msg.xml.find("{%s}x/{%s}invite" % (NS_USER, NS_USER))
        d = {"from": str(msg["from"]), "invite_from": name_of(inv.get("from", "")) if inv is not None else "",
             "reason": (inv.findtext("{%s}reason" % NS_USER) or "") if inv is not None else ""}
        log("%s: invitation %s" % (self.name, d))
        result["invites"][self.name].append(d)

    def on_message(self, msg):
        # Private messages through the room (§7.5); invitations and
        # groupchat messages have their own events.
        if msg["type"] == "chat" and msg["from"].bare == ROOM.bare:
            d = describe_message(msg)
            log("%s: private message %s" % (self.name, d))
            result["private"][self.name].append(d)

    async def join(self, nick, key, **history):
        """Enters the room as nick; records the outcome under key."""
        result["step"] = "%s enters as %s" % (self.name, nick)
        try:
            # The entry carries our full JID as 'from': slixmpp 1.10.0's
            # join_muc_wait waits only for stanzas to the presence's
            # 'from' when it has one, and takes an empty 'from' (a JID
            # that is true) for one, so that without it the wait never
            # ends. 1.8.3 does not look at it.
            pres, subject, occupants, hist = await self.muc.join_muc_wait(
                ROOM, nick, presence_options={"pfrom": self.boundjid}, timeout=STEP_TIMEOUT, **history)
        except PresenceError as e:
            log("%s: entry refused: %s" % (self.name, e.condition))
            result["joins"][key] = {"error": e.condition}
            return False
        except asyncio.TimeoutError:
            raise StepTimeout("%s: no answer to the entry as %s" % (self.name, nick)) from None
        result["joins"][key] = {
            "self": describe_presence(pres),
            "subject": describe_message(subject),
            "occupants": [describe_presence(p) for p in occupants],
            "history": [describe_message(m) for m in hist],
        }
        log("%s: entered as %s" % (self.name, pres["from"].resource))
        return True

    async def iq(self, what, aw):
        """Awaits an IQ of the plugin; records "result" or the condition."""
        result["step"] = what
        try:
            r = await aw
            result["iqs"][what] = "result"
            return r
        except IqError as e:
            result["iqs"][what] = e.iq["error"]["condition"] or "error"
            raise RuntimeError("%s: %s" % (what, result["iqs"][what])) from None
        except IqTimeout:
            raise StepTimeout("no answer to %s" % what) from None

    async def change_nick(self, nick):
        if hasattr(self.muc, "set_self_nick"):  # slixmpp 1.9.0 and later
            return await asyncio.wait_for(self.muc.set_self_nick(ROOM, nick, timeout=STEP_TIMEOUT), STEP_TIMEOUT)
        # slixmpp 1.8.3: what set_self_nick does.
        done = asyncio.get_event_loop().create_future()

        def self_presence(pr):
            codes = pr["muc"]["status_codes"]
            if 110 in codes and 303 in codes and not done.done():
                done.set_result(pr["muc"]["item"]["nick"])

        event = "muc::%s::self-presence" % ROOM
        self.add_event_handler(event, self_presence)
        try:
            self.send_presence(pto="%s/%s" % (ROOM, nick))
            return await asyncio.wait_for(done, STEP_TIMEOUT)
        finally:
            self.del_event_handler(event, self_presence)


def seen(name, nick, typ="available", code=None):
    """Whether the client got a presence of nick of the type (and code)."""
    return any(p["nick"] == nick and p["type"] == typ and (code is None or code in p["codes"])
               for p in result["presences"][name])


def count(name, nick, typ):
    return sum(1 for p in result["presences"][name] if p["nick"] == nick and p["type"] == typ)


async def disco_items(client):
    items = await client.iq("disco#items of " + SERVICE, client["xep_0030"].get_items(
        jid=SERVICE, local=False, timeout=STEP_TIMEOUT))
    return [{"jid": str(j), "node": n or "", "name": nm or ""} for j, n, nm in items["disco_items"]["items"]]


async def scenario():
    alice, bob, carol = Client(JID_ALICE, "alice"), Client(JID_BOB, "bob"), Client(JID_CAROL, "carol")
    clients = (alice, bob, carol)
    for c in clients:
        connect(c, HOST, PORT)
    result["step"] = "logins"
    await asyncio.wait_for(asyncio.gather(*(c.ready for c in clients)), STEP_TIMEOUT)

    # 1. Alice creates the room; it is locked until she configures it.
    if not await alice.join("alice", "alice"):
        raise RuntimeError("alice could not create the room: %s" % result["joins"]["alice"])
    await bob.join("bob", "bob_locked")
    form = await alice.iq("get_room_config", alice.muc.get_room_config(ROOM, timeout=STEP_TIMEOUT))
    result["config_form"] = {"type": form["type"], "vars": sorted(form.get_fields().keys())}
    fields = form.get_fields()
    fields["muc#roomconfig_roomname"]["value"] = "Tea party"
    fields["muc#roomconfig_membersonly"]["value"] = False
    await alice.iq("set_room_config", alice.muc.set_room_config(ROOM, form, timeout=STEP_TIMEOUT))

    # 2. Bob enters; alice sets the subject.
    if not await bob.join("bob", "bob"):
        raise RuntimeError("bob could not enter the configured room: %s" % result["joins"]["bob"])
    await until("bob's presence at alice", lambda: seen("alice", "bob"))
    alice.muc.set_subject(ROOM, "Tea at four")
    await until("the subject at alice and bob", lambda: all(
        any(s["subject"] == "Tea at four" for s in result["subjects"][n]) for n in ("alice", "bob")))

    # 3. The invitation; carol enters and gets the subject.
    alice.muc.invite(ROOM, carol.boundjid.bare, reason="Tea?")
    await until("carol's invitation", lambda: result["invites"]["carol"])
    if not await carol.join("carol", "carol"):
        raise RuntimeError("carol could not enter: %s" % result["joins"]["carol"])
    await until("carol's presence at alice and bob", lambda: seen("alice", "carol") and seen("bob", "carol"))
    result["rosters"]["all_in"] = {c.name: sorted(c.muc.get_roster(ROOM)) for c in clients}

    # 3b. Alice gives bob a hat with XEP-0317's ad-hoc command on the room.
    items = await alice.iq("the room's commands", alice["xep_0030"].get_items(
        jid=ROOM, node="http://jabber.org/protocol/commands", local=False, timeout=STEP_TIMEOUT))
    result["hat_commands"] = [i[1] for i in items["disco_items"]["items"]]
    iq, _ = await step("don", alice.run_command(ROOM, "urn:xmpp:hats:commands:don", "urn:xmpp:hats:commands", lambda form: {
        "accountjid": JID(JID_BOB).bare, "hat": "urn:example:hats#host", "hat_title": "Host"}))
    result["hat_status"] = iq["command"]["status"] if iq["type"] == "result" else "error: " + iq["error"]["condition"]
    await until("bob's hat at carol", lambda: any(
        p["nick"] == "bob" and p["hats"] == ["urn:example:hats#host=Host"] for p in result["presences"]["carol"]))

    # 4. Discovery.
    info = await bob.iq("disco#info of the room", bob["xep_0030"].get_info(
        jid=ROOM, local=False, cached=False, timeout=STEP_TIMEOUT))
    roominfo = {}
    x = info.xml.find("{http://jabber.org/protocol/disco#info}query/{%s}x" % NS_DATA)
    if x is not None:
        for f in x.findall("{%s}field" % NS_DATA):
            roominfo[f.get("var")] = f.findtext("{%s}value" % NS_DATA) or ""
    result["disco_info"] = {
        "identities": [[i[0], i[1], i[3] or ""] for i in info["disco_info"]["identities"]],
        "features": sorted(info["disco_info"]["features"]),
        "roominfo": roominfo,
    }
    result["disco_items"] = await disco_items(bob)

    # 5. Groupchat: fifteen messages sent at once from three connections.
    for i in range(1, PER_CLIENT + 1):
        for c in clients:
            m = c.make_message(mto=ROOM, mbody="%s %d" % (c.name, i), mtype="groupchat")
            m["id"] = "gc-%s-%d" % (c.name, i)
            m.send()
    await until("every groupchat message at every client", lambda: all(
        len(result["groupchat"][c.name]) >= PER_CLIENT * len(clients) for c in clients))

    # 6. A private message from bob to carol.
    bob.send_message(mto="%s/carol" % ROOM, mbody="psst", mtype="chat")
    await until("bob's private message at carol", lambda: result["private"]["carol"])

    # 7. Bob becomes a member, then robert.
    await alice.iq("set_affiliation member", alice.muc.set_affiliation(
        ROOM, "member", jid=bob.boundjid.bare, timeout=STEP_TIMEOUT))
    await until("bob's membership at everyone", lambda: all(
        any(p["nick"] == "bob" and p["affiliation"] == "member" for p in result["presences"][c.name]) for c in clients))
    result["step"] = "bob's nick change"
    try:
        result["new_nick"] = await bob.change_nick("robert")
    except asyncio.TimeoutError:
        raise StepTimeout("bob's nick change") from None
    await until("robert's presence at everyone", lambda: all(seen(c.name, "robert") for c in clients))

    # 8. Kick, entry, ban, refused entry.
    await alice.iq("set_role none", alice.muc.set_role(ROOM, "carol", "none", reason="No cake", timeout=STEP_TIMEOUT))
    await until("the kick at everyone", lambda: all(seen(c.name, "carol", "unavailable", 307) for c in clients))
    if not await carol.join("carol", "carol_again", maxstanzas=3):
        raise RuntimeError("carol could not enter after the kick: %s" % result["joins"]["carol_again"])
    await until("carol's second entry at alice and robert", lambda: count("alice", "carol", "available") == 2 and
                count("bob", "carol", "available") == 2)
    await alice.iq("set_affiliation outcast", alice.muc.set_affiliation(
        ROOM, "outcast", jid=carol.boundjid.bare, reason="Still no cake", timeout=STEP_TIMEOUT))
    await until("the ban at everyone", lambda: all(seen(c.name, "carol", "unavailable", 301) for c in clients))
    await carol.join("carol", "carol_banned")
    result["rosters"]["before_destroy"] = {c.name: sorted(c.muc.get_roster(ROOM)) for c in (alice, bob)}

    # 9. Destroy.
    await alice.iq("destroy", alice.muc.destroy(ROOM, reason="Tea is over", altroom=ALT_ROOM, timeout=STEP_TIMEOUT))
    await until("the destroy presence at alice and robert", lambda: all(
        any(p["destroy"] for p in result["presences"][n]) for n in ("alice", "bob")))
    result["disco_items_after"] = await disco_items(bob)

    result["step"] = "done"
    for c in clients:
        c.leave()
    await asyncio.sleep(0.1)


run.main(scenario, out=OUT)
