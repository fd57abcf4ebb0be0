#!/usr/bin/python3
"""Two slixmpp clients on two federated servers talk across them (RFC 6120
server-to-server streams, RFC 6121, XEP-0199).

Usage: slixmpp_federation.py HOST_A PORT_A CA_A JID_A PASS_A HOST_B PORT_B CA_B JID_B PASS_B

A logs in to its server at HOST_A:PORT_A over STARTTLS trusting the
certificate authority in the file CA_A, B likewise to its own server; each
fetches its roster and sends initial presence. Then, every stanza crossing from one server to the other:

  1. A subscribes to B; B approves and subscribes back; A approves. Both
     rosters must reach subscription "both", and each client must see the
     other's available presence.
  2. A sends B a chat message to B's bare JID, and B answers to A's full
     JID; each must arrive from the sender's full JID.
  3. Each client pings the other's server (XEP-0199, iq to the bare domain)
     and the other client (iq to its full JID); each must get a result.

slixmpp's automatic subscription handling is off, and approvals are plain
<presence type='subscribed'/> stanzas, so the presence each side sees comes
from the servers' own subscription rules.

Prints one JSON object with everything observed and exits 0 only when every
check holds ("failures" lists those that did not; "error" names an
exception or the step that timed out). Driven by prosody_test.go; needs
Debian's python3-slixmpp.
"""
import asyncio
import logging
import sys

from slixmpp.exceptions import IqError, IqTimeout

import harness

HOST_A, PORT_A, CA_A, JID_A, PASS_A, HOST_B, PORT_B, CA_B, JID_B, PASS_B = sys.argv[1:11]
STEP_TIMEOUT = 15  # seconds for any one step
TOTAL_TIMEOUT = 50  # seconds for the whole scenario
BODY_A = "hello from a, across servers"
BODY_B = "hello from b, across servers"

logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
    failures=[],
    jids={},
    subscribe_from={"a": [], "b": []},
    available_from={"a": [], "b": []},
    final_subscription={},
    messages={"a": [], "b": []},
    pings={},
)
result, log, step, until = run.result, run.log, run.step, run.until


def check(ok, what):
    if not ok:
        result["failures"].append(what)
    return ok


class Bot(harness.Client):
    """A client that fetches its roster before its initial presence and
    records the presences and messages it gets."""

    def __init__(self, jid, password, cafile, name):
        super().__init__(run, jid, password, name, cafile, plugins=("xep_0030", "xep_0199"))
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("stream_error", lambda e: self.fail("stream error: %s" % e))

    def on_disconnected(self, reason):
        if self.leaving:
            return
        if self.ready.done():
            result["failures"].append("%s was disconnected unexpectedly: %s" % (self.name, reason))
        self.fail("disconnected unexpectedly: %s" % reason)

    async def starting(self):
        try:
            await self.get_roster(timeout=STEP_TIMEOUT)
        except Exception as e:  # pylint: disable=broad-except
            self.fail("roster get failed: %s: %s" % (type(e).__name__, e))
            return
        result["jids"][self.name] = self.boundjid.full

    def on_presence(self, pres):
        typ, frm = pres["type"], pres["from"]
        log("%s: presence type=%s from=%s" % (self.name, typ, frm))
        if typ in ("available", "away", "chat", "dnd", "xa"):
            result["available_from"][self.name].append(frm.full)
        elif typ == "subscribe":
            result["subscribe_from"][self.name].append(frm.full)
            on_subscribe(self, frm)

    def on_message(self, msg):
        log("%s: message type=%s from=%s body=%r" % (self.name, msg["type"], msg["from"], msg["body"]))
        result["messages"][self.name].append({"type": msg["type"], "from": msg["from"].full, "body": msg["body"]})


def on_subscribe(bot, frm):
    """B approves A and subscribes back; A approves B."""
    if bot.name == "b" and frm.bare == JID_A:
        bot.send_presence(pto=JID_A, ptype="subscribed")
        bot.send_presence_subscription(pto=JID_A)
        log("b: approved %s and subscribed back" % frm)
    elif bot.name == "a" and frm.bare == JID_B:
        bot.send_presence(pto=JID_B, ptype="subscribed")
        log("a: approved %s" % frm)


async def login(bot, host, port, what):
    harness.connect(bot, host, port)
    await step(what, asyncio.shield(bot.ready))


def sub(bot, peer):
    return bot.client_roster[peer]["subscription"]


def saw(name, full):
    return full in result["available_from"][name]


def got(name, body):
    return [m for m in result["messages"][name] if m["body"] == body]


async def ping(bot, to, key):
    """Pings to and records "result" or what went wrong under key."""
    try:
        reply = await bot["xep_0199"].send_ping(to, timeout=STEP_TIMEOUT)
        outcome = reply["type"] if str(reply["from"]) == to else "result from %s, not %s" % (reply["from"], to)
    except IqError as e:
        outcome = "error reply: %s %s" % (e.iq["error"]["condition"], e.iq["error"]["text"] or "")
    except IqTimeout:
        outcome = "no reply within %ds" % STEP_TIMEOUT
    result["pings"][key] = outcome.strip()
    log("%s: ping %s: %s" % (bot.name, to, result["pings"][key]))


async def scenario():
    a = Bot(JID_A, PASS_A, CA_A, "a")
    b = Bot(JID_B, PASS_B, CA_B, "b")
    await asyncio.gather(login(a, HOST_A, PORT_A, "a logs in"), login(b, HOST_B, PORT_B, "b logs in"))
    domain_a, domain_b = a.boundjid.domain, b.boundjid.domain

    # 1. Mutual subscription across the servers.
    log("a: subscribing to %s" % JID_B)
    a.send_presence_subscription(pto=JID_B)
    await until("both rosters at subscription both",
                lambda: sub(a, JID_B) == "both" and sub(b, JID_A) == "both")
    await until("each client to see the other's available presence",
                lambda: saw("a", b.boundjid.full) and saw("b", a.boundjid.full))
    result["final_subscription"] = {"a": sub(a, JID_B), "b": sub(b, JID_A)}

    # 2. Messages both ways.
    a.send_message(mto=JID_B, mbody=BODY_A, mtype="chat")
    b.send_message(mto=a.boundjid.full, mbody=BODY_B, mtype="chat")
    log("a and b: sent messages")
    await until("the messages both ways", lambda: got("b", BODY_A) and got("a", BODY_B))

    # 3. Pings across the servers.
    result["step"] = "pings"
    await asyncio.gather(
        ping(a, domain_b, "a_to_server_b"), ping(b, domain_a, "b_to_server_a"),
        ping(a, b.boundjid.full, "a_to_b"), ping(b, a.boundjid.full, "b_to_a"))
    result["step"] = "done"

    for name, peer in (("a", JID_B), ("b", JID_A)):
        check(result["subscribe_from"][name] == [peer],
              "%s got subscription requests from %s, want one from the bare JID %s" % (name, result["subscribe_from"][name], peer))
    for name, body, sender in (("b", BODY_A, a), ("a", BODY_B, b)):
        m = got(name, body)[0]
        check(m["from"] == sender.boundjid.full and m["type"] == "chat",
              "%s got %r as %s from %s, want chat from %s" % (name, body, m["type"], m["from"], sender.boundjid.full))
    for key, outcome in sorted(result["pings"].items()):
        check(outcome == "result", "ping %s: %s" % (key, outcome))

    for bot in (a, b):
        bot.leave()
    await asyncio.sleep(0.2)


run.main(scenario)
