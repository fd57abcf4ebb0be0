#!/usr/bin/python3
"""A moderator retracts an occupant's groupchat message (XEP-0425) with
slixmpp's xep_0425 plugin, in a room of the server's MUC service.

Usage: slixmpp_moderate.py HOST PORT CAFILE SERVICE JID_ALICE JID_BOB JID_CAROL PASSWORD

Both slixmpp versions have a xep_0425 plugin, but not the same XEP-0425:
1.8.3's is version 0.2 (urn:xmpp:message-moderate:0: the request and the
announcement are wrapped in XEP-0422 <apply-to/>, the retraction is
urn:xmpp:message-retract:0), 1.10.0's is version 0.3
(urn:xmpp:message-moderate:1: <moderate id/> in the IQ, a XEP-0424
urn:xmpp:message-retract:1 <retract id/> in the announcement). So 1.8.3
moderates with the :0 request and 1.10.0 with the :1 one, and each reads
the announcement with its plugin (the moderated_message event); the
script also records both forms of every announcement from the raw XML.

Alice, bob and carol log in (STARTTLS trusting CAFILE, each with
PASSWORD). Then:

  1. Alice creates room@SERVICE (join_muc_wait) and submits its
     configuration with muc#roomconfig_persistentroom on (only stored
     rooms keep the archive that gives messages their ids; the rest is
     the default, archiving on). Bob and carol enter.
  2. Bob sends a groupchat message; all three get it, each records its
     XEP-0359 stanza-id by the room.
  3. Alice moderates it by that id with a reason (xep_0425 moderate);
     all three get the announcement.
  4. Carol, a participant, tries to moderate it: the error condition.
  5. Alice moderates an id the room never gave: the error condition.

The script prints one JSON object (on the original stdout: 1.8.3's
join_muc_wait prints the history while it waits, so sys.stdout points at
stderr); moderate_test.go checks it. The exit status is 0 unless a step
failed ("error").
"""
import logging
import sys

import slixmpp
from slixmpp import JID
from slixmpp.exceptions import IqError
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness
from harness import connect

HOST, PORT, CAFILE, SERVICE, JID_ALICE, JID_BOB, JID_CAROL, PASSWORD = sys.argv[1:9]
ROOM = JID("room@" + SERVICE)
NS_SID = "urn:xmpp:sid:0"
NS_MOD0, NS_MOD1 = "urn:xmpp:message-moderate:0", "urn:xmpp:message-moderate:1"
NS_RETRACT0, NS_RETRACT1 = "urn:xmpp:message-retract:0", "urn:xmpp:message-retract:1"
NS_FASTEN = "urn:xmpp:fasten:0"
STEP_TIMEOUT = 10
NAMES = ("alice", "bob", "carol")

OUT = sys.stdout
sys.stdout = sys.stderr
logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=60,
    version=slixmpp.__version__,
    messages={n: [] for n in NAMES},   # groupchat messages with a body
    raw={n: [] for n in NAMES},        # announcements from the room, both forms, from the XML
    plugin={n: [] for n in NAMES},     # what the moderated_message event gave
    moderate="",                       # how alice's moderation ended
    participant="",                    # how carol's ended
    unknown="",                        # how the unknown id's ended
)
result, log, step, until = run.result, run.log, run.step, run.until


def text(el, path):
    return (el.findtext(path) or "") if el is not None else ""


def attr(el, name):
    return el.get(name, "") if el is not None else ""


class Client(harness.Client):
    def __init__(self, jid, name):
        super().__init__(run, jid, PASSWORD, name, CAFILE,
                         plugins=("xep_0030", "xep_0004", "xep_0045", "xep_0359", "xep_0425"))
        self.add_event_handler("groupchat_message", self.on_groupchat)
        self.add_event_handler("moderated_message", self.on_moderated)
        # slixmpp's message event is for messages with a body only.
        self.register_handler(Callback("any message", MatchXPath("{jabber:client}message"), self.on_message))

    def on_groupchat(self, msg):
        if not msg["body"]:
            return
        sids = [e.get("id", "") for e in msg.xml.findall("{%s}stanza-id" % NS_SID) if e.get("by") == ROOM.bare]
        result["messages"][self.name].append({"from": str(msg["from"]), "body": msg["body"], "stanza_ids": sids})

    def on_message(self, msg):
        # The announcement as it came, whichever version the plugin reads.
        if str(msg["from"]) != ROOM.bare or msg["body"]:
            return
        x = msg.xml
        r1 = x.find("{%s}retract" % NS_RETRACT1)
        m1 = r1.find("{%s}moderated" % NS_MOD1) if r1 is not None else None
        a0 = x.find("{%s}apply-to" % NS_FASTEN)
        m0 = a0.find("{%s}moderated" % NS_MOD0) if a0 is not None else None
        if r1 is None and a0 is None:  # the subject on entry
            return
        d = {"type": msg["type"],
             "v1": {"id": attr(r1, "id"), "by": attr(m1, "by"),
                    "reason": text(r1, "{%s}reason" % NS_RETRACT1)} if m1 is not None else None,
             "v0": {"id": attr(a0, "id"), "by": attr(m0, "by"), "reason": text(m0, "{%s}reason" % NS_MOD0),
                    "retract": m0.find("{%s}retract" % NS_RETRACT0) is not None} if m0 is not None else None}
        log("%s: announcement %s" % (self.name, d))
        result["raw"][self.name].append(d)

    def on_moderated(self, msg):
        if self["xep_0425"].namespace == NS_MOD1:  # 1.10: XEP-0425 0.3
            r = msg["retract"]
            d = {"ns": NS_MOD1, "id": r["id"], "by": str(r["moderated"]["by"]), "reason": r["reason"]}
        else:  # 1.8.3: XEP-0425 0.2
            a = msg["apply_to"]
            d = {"ns": NS_MOD0, "id": a["id"], "by": str(a["moderated"]["by"]), "reason": a["moderated"]["reason"]}
        log("%s: moderated_message %s" % (self.name, d))
        result["plugin"][self.name].append(d)

    async def enter(self):
        await step("%s enters" % self.name, self["xep_0045"].join_muc_wait(
            ROOM, self.name, presence_options={"pfrom": self.boundjid}, timeout=STEP_TIMEOUT))

    async def moderate(self, key, sid):
        """Moderates sid with the plugin; records "result" or the condition under key."""
        try:
            await step("%s moderates %s" % (self.name, sid), self["xep_0425"].moderate(
                ROOM, sid, "Spam", timeout=STEP_TIMEOUT))
            result[key] = "result"
        except IqError as e:
            result[key] = e.iq["error"]["condition"] or "error"
        log("%s: moderate %s: %s" % (self.name, sid, result[key]))


async def scenario():
    clients = [Client(j, n) for j, n in zip((JID_ALICE, JID_BOB, JID_CAROL), NAMES)]
    alice, bob, carol = clients
    for c in clients:
        connect(c, HOST, PORT)
    for c in clients:
        await step("%s logs in" % c.name, c.ready)

    # 1. A stored room with bob and carol in it.
    await alice.enter()
    form = await step("get_room_config", alice["xep_0045"].get_room_config(ROOM, timeout=STEP_TIMEOUT))
    form.get_fields()["muc#roomconfig_persistentroom"]["value"] = True
    await step("set_room_config", alice["xep_0045"].set_room_config(ROOM, form, timeout=STEP_TIMEOUT))
    await bob.enter()
    await carol.enter()

    # 2. Bob's message reaches everyone with the room's stanza-id.
    bob.send_message(mto=ROOM, mbody="buy cheap watches", mtype="groupchat")
    await until("bob's message at all three", lambda: all(result["messages"][n] for n in NAMES))
    sids = result["messages"]["alice"][0]["stanza_ids"]
    if len(sids) != 1:
        raise RuntimeError("alice got bob's message with the stanza-ids %s" % sids)

    # 3. Alice retracts it; everyone gets the announcement.
    await alice.moderate("moderate", sids[0])
    await until("the announcement at all three (plugin and XML)",
                lambda: all(result["plugin"][n] and result["raw"][n] for n in NAMES))

    # 4, 5. A participant may not; an unknown id is not found.
    await carol.moderate("participant", sids[0])
    await alice.moderate("unknown", "no-such-stanza-id")

    result["step"] = "done"
    for c in clients:
        c.leave()


run.main(scenario, out=OUT)
