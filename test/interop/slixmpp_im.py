#!/usr/bin/python3
"""Two slixmpp clients exercise a server's IM features (RFC 6121, XEP-0030,
XEP-0199, XEP-0203).

Usage: slixmpp_im.py HOST PORT CAFILE DOMAIN JID_A PASS_A JID_B PASS_B

Both clients log in with slixmpp's default negotiation over STARTTLS,
trusting CAFILE, fetch their rosters and send initial presence. Then:

  1. A subscribes to B; B approves and subscribes back; A approves. Both
     rosters must reach subscription "both" through roster pushes, and each
     client must see the other's available presence.
  2. B disconnects; A must see B go unavailable. A sends B a chat message
     "while you were away", then pings the server: the server handles A's
     stanzas in order, so the reply means the message has been stored. B logs
     in again with a new client and must receive the message, after its
     initial presence, with an XEP-0203 <delay/>.
  3. A asks the server for disco#info and looks for urn:xmpp:ping.

slixmpp's automatic subscription handling (auto_authorize, auto_subscribe)
is off, and approvals are plain <presence type='subscribed'/> stanzas, not
slixmpp's RosterItem.authorize(), which also sends a directed presence: the
available presence each side sees must come from the server's own
subscription and broadcast rules.

Prints one JSON object with everything observed and exits 0 only when every
check holds ("failures" lists those that did not; "error" names an
exception or the step that timed out). Driven by im_test.go; needs Debian's
python3-slixmpp.
"""
import asyncio
import logging
import sys
from datetime import datetime, timezone

from slixmpp.exceptions import IqError, IqTimeout

import harness

HOST, PORT, CAFILE, DOMAIN, JID_A, PASS_A, JID_B, PASS_B = sys.argv[1:9]
STEP_TIMEOUT = 15  # seconds for any one step
TOTAL_TIMEOUT = 60  # seconds for the whole scenario
OFFLINE_BODY = "while you were away"

logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
    failures=[],
    jids={},
    login_roster={},
    pushes={"a": [], "b": []},
    subscribe_from={},
    available_from={"a": [], "b": [], "b2": []},
    unavailable_from={"a": [], "b": [], "b2": []},
    final_subscription={},
    b2_login_roster={},
    offline_message=None,
    message_before_presence=None,
    ping_ok=False,
    ping_error="",
    disco_features=[],
    disco_identities=[],
    disco_error="",
)
result, log, step, until = run.result, run.log, run.step, run.until


def check(ok, what):
    if not ok:
        result["failures"].append(what)
    return ok


class Bot(harness.Client):
    """A client that fetches its roster, then sends its initial presence,
    and records the roster pushes, presences and messages it gets."""

    def __init__(self, jid, password, name):
        super().__init__(run, jid, password, name, CAFILE, plugins=("xep_0030", "xep_0199", "xep_0203"), presence=False)
        # No automatic answers to subscription requests: the scenario does it.
        self.roster.auto_authorize = None
        self.roster.auto_subscribe = False
        self.presence_sent = False
        self.gone = asyncio.get_event_loop().create_future()
        self.messages = []
        self.add_event_handler("roster_update", self.on_roster)
        self.add_event_handler("presence", self.on_presence)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("failed_auth", lambda _: log("%s: a SASL mechanism was refused" % name))
        self.add_event_handler("stream_error", lambda e: self.fail("stream error: %s" % e))

    def on_disconnected(self, reason):
        if self.leaving:
            log("%s: disconnected" % self.name)
            if not self.gone.done():
                self.gone.set_result(True)
        else:
            if self.ready.done():
                result["failures"].append("%s was disconnected unexpectedly: %s" % (self.name, reason))
            self.fail("disconnected unexpectedly: %s" % reason)

    async def starting(self):
        try:
            iq = await self.get_roster(timeout=STEP_TIMEOUT)
            items = {str(j): dict(v) for j, v in iq["roster"]["items"].items()}
            ver = iq["roster"].xml.get("ver")
            log("%s: roster result %s ver=%r" % (self.name, items, ver))
            result["login_roster"][self.name] = {"items": {j: v.get("subscription", "") for j, v in items.items()}, "ver": ver}
            self.send_presence()
            self.presence_sent = True
        except Exception as e:  # pylint: disable=broad-except
            self.fail("roster get failed: %s: %s" % (type(e).__name__, e))
            return
        result["jids"][self.name] = self.boundjid.full

    def on_roster(self, iq):
        if iq["type"] != "set":  # the result of our own get_roster
            return
        for j, item in iq["roster"]["items"].items():
            push = {"jid": str(j), "subscription": item.get("subscription", ""), "ask": item.get("ask", ""), "ver": iq["roster"].xml.get("ver")}
            log("%s: roster push %s" % (self.name, push))
            result["pushes"].setdefault(self.name, []).append(push)

    def on_presence(self, pres):
        typ, frm = pres["type"], pres["from"]
        log("%s: presence type=%s from=%s" % (self.name, typ, frm))
        if typ in ("available", "away", "chat", "dnd", "xa"):
            result["available_from"].setdefault(self.name, []).append(frm.full)
        elif typ == "unavailable":
            result["unavailable_from"].setdefault(self.name, []).append(frm.full)
        elif typ == "subscribe":
            result["subscribe_from"].setdefault(self.name, []).append(frm.full)
            on_subscribe(self, frm)

    def on_message(self, msg):
        delays = msg.xml.findall("{urn:xmpp:delay}delay")
        stamp = delays[0].get("stamp") if delays else None
        dfrom = delays[0].get("from") if delays else None
        log("%s: message type=%s from=%s body=%r delay stamp=%r from=%r" % (
            self.name, msg["type"], msg["from"], msg["body"], stamp, dfrom))
        self.messages.append({
            "type": msg["type"], "from": msg["from"].full, "body": msg["body"],
            "delay_count": len(delays), "delay_stamp": stamp, "delay_from": dfrom,
            "after_presence": self.presence_sent,
        })


def on_subscribe(bot, frm):
    """B approves A and subscribes back; A approves B."""
    if bot.name == "b" and frm.bare == JID_A:
        bot.send_presence(pto=JID_A, ptype="subscribed")
        bot.send_presence_subscription(pto=JID_A)
        log("b: approved %s and subscribed back" % frm)
    elif bot.name == "a" and frm.bare == JID_B:
        bot.send_presence(pto=JID_B, ptype="subscribed")
        log("a: approved %s" % frm)


def sub(bot, peer):
    return bot.client_roster[peer]["subscription"]


def saw(kind, name, full):
    return full in result[kind].get(name, [])


async def wait_step(fut, what):
    return await step(what, asyncio.shield(fut))


async def login(bot, what):
    harness.connect(bot, HOST, PORT)
    await wait_step(bot.ready, what)


async def scenario():
    a = Bot(JID_A, PASS_A, "a")
    b = Bot(JID_B, PASS_B, "b")
    await asyncio.gather(login(a, "a logs in"), login(b, "b logs in"))
    for name in ("a", "b"):
        check(result["login_roster"][name]["items"] == {}, "%s's first roster is not empty: %s" % (name, result["login_roster"][name]))

    # 1. Mutual subscription.
    log("a: subscribing to %s" % JID_B)
    a.send_presence_subscription(pto=JID_B)
    await until("both rosters at subscription both",
                lambda: sub(a, JID_B) == "both" and sub(b, JID_A) == "both")
    await until("each client to see the other's available presence",
                lambda: saw("available_from", "a", b.boundjid.full) and saw("available_from", "b", a.boundjid.full))
    result["final_subscription"] = {"a": sub(a, JID_B), "b": sub(b, JID_A)}

    # 2. Offline message.
    b.leaving = True
    log("b: disconnecting")
    b.disconnect()
    await wait_step(b.gone, "b's disconnection")
    b_full = b.boundjid.full
    await until("a to see b unavailable", lambda: saw("unavailable_from", "a", b_full))
    sent_at = datetime.now(timezone.utc).replace(microsecond=0)
    result["offline_sent_at"] = sent_at.isoformat().replace("+00:00", "Z")
    a.send_message(mto=JID_B, mbody=OFFLINE_BODY, mtype="chat")
    log("a: sent %r to %s" % (OFFLINE_BODY, JID_B))

    # The ping both checks XEP-0199 and orders the message before b2's login.
    result["step"] = "ping the server"
    try:
        reply = await a["xep_0199"].send_ping(DOMAIN, timeout=STEP_TIMEOUT)
        result["ping_ok"] = reply["type"] == "result"
        log("a: ping reply type=%s from=%s" % (reply["type"], reply["from"]))
    except IqError as e:
        result["ping_error"] = "error reply: %s" % e.iq["error"]["condition"]
    except IqTimeout:
        result["ping_error"] = "no reply within %ds" % STEP_TIMEOUT

    b2 = Bot(JID_B, PASS_B, "b2")
    await login(b2, "b logs in again")
    result["b2_login_roster"] = result["login_roster"].pop("b2")
    await until("b's offline message", lambda: any(m["body"] == OFFLINE_BODY for m in b2.messages))
    m = next(m for m in b2.messages if m["body"] == OFFLINE_BODY)
    result["offline_message"] = m
    result["offline_received_at"] = datetime.now(timezone.utc).isoformat().replace("+00:00", "Z")
    await until("a and b2 to see each other available again",
                lambda: saw("available_from", "a", b2.boundjid.full) and saw("available_from", "b2", a.boundjid.full))

    # 3. Service discovery.
    result["step"] = "disco#info of the server"
    try:
        info = await a["xep_0030"].get_info(jid=DOMAIN, local=False, cached=False, timeout=STEP_TIMEOUT)
        result["disco_features"] = sorted(info["disco_info"]["features"])
        result["disco_identities"] = sorted("%s/%s" % (i[0], i[1]) for i in info["disco_info"]["identities"])
        log("a: disco#info identities=%s features=%s" % (result["disco_identities"], result["disco_features"]))
    except IqError as e:
        result["disco_error"] = "error reply: %s" % e.iq["error"]["condition"]
    except IqTimeout:
        result["disco_error"] = "no reply within %ds" % STEP_TIMEOUT
    result["step"] = "done"

    # Checks beyond the waits above.
    for name, peer in (("a", JID_B), ("b", JID_A)):
        check(any(p["jid"] == peer for p in result["pushes"][name]), "%s got no roster push for %s" % (name, peer))
        check(all(f == peer for f in result["subscribe_from"].get(name, [])),
              "%s got a subscription request not from the bare JID %s: %s" % (name, peer, result["subscribe_from"].get(name)))
    check(result["b2_login_roster"]["items"].get(JID_A) == "both", "b's roster at its second login: %s" % result["b2_login_roster"])
    check(m["delay_count"] == 1 and bool(m["delay_stamp"]), "offline message has %d urn:xmpp:delay elements, stamp %r" % (m["delay_count"], m["delay_stamp"]))
    check(m["after_presence"], "offline message arrived before b sent initial presence")
    check(m["from"].startswith(JID_A + "/"), "offline message from %s, want %s/..." % (m["from"], JID_A))
    check(result["ping_ok"], "ping: %s" % (result["ping_error"] or "no result"))
    check(not result["disco_error"], "disco#info: %s" % result["disco_error"])
    check("urn:xmpp:ping" in result["disco_features"], "disco#info features lack urn:xmpp:ping: %s" % result["disco_features"])

    for bot in (a, b2):
        bot.leaving = True
        bot.disconnect()
    await asyncio.sleep(0.2)


run.main(scenario)
