#!/usr/bin/python3
"""Two slixmpp sessions of one account use Message Carbons (XEP-0280) with
slixmpp's xep_0280 plugin, and a third client talks to them.

Usage: slixmpp_carbons.py HOST PORT CAFILE DOMAIN JID_A PASS_A JID_B PASS_B

A1 and A2 log in as JID_A, B as JID_B (slixmpp's default negotiation over
STARTTLS, trusting CAFILE), and A1 and A2 enable carbons. A1 also checks
that the server's disco#info lists urn:xmpp:carbons:2. Then:

  1. B sends a chat message to A1's full JID: A1 gets it, and A2 gets a
     received carbon (carbon_received) with B's message inside.
  2. A1 sends a chat message to B: B gets it, and A2 gets a sent carbon
     (carbon_sent) with A1's message inside.
  3. A2 sends a chat message to B's bare JID: A1 gets a sent carbon.
  4. A1 sends a message with <private/> and <no-copy/> to B: no carbon.
  5. A1 and B each send a headline (never copied) to every other client.
     A client's stanzas are handled in order, so once A2 has both
     headlines it has everything steps 1 to 4 sent it.

slixmpp's plugin raises carbon_received and carbon_sent only for carbons
from the account itself. The script records every message each client
got ("plain" for ordinary messages, "received"/"sent" for carbons with
the outer 'from' and the forwarded message) and prints one JSON object.
carbons_test.go checks the counts and addresses. The exit status is 0
unless a step failed ("error").
"""
import asyncio
import inspect
import json
import logging
import sys
import time

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

HOST, PORT, CAFILE, DOMAIN, JID_A, PASS_A, JID_B, PASS_B = sys.argv[1:9]
STEP_TIMEOUT = 15
TOTAL_TIMEOUT = 60
NS = "urn:xmpp:carbons:2"

logging.basicConfig(level=logging.ERROR)
T0 = time.monotonic()
result = {
    "version": slixmpp.__version__,
    "events": [],
    "error": "",
    "step": "",
    "jids": {},
    "disco_carbons": False,
    "got": {"a1": [], "a2": [], "b": []},
}


class StepTimeout(Exception):
    """A step did not finish within STEP_TIMEOUT."""


def log(what):
    result["events"].append("%6.3f %s" % (time.monotonic() - T0, what))


def describe(m):
    return {"from": m["from"].full, "to": m["to"].full, "type": m["type"], "body": m["body"],
            "private": m.xml.find("{%s}private" % NS) is not None}


class Bot(slixmpp.ClientXMPP):
    def __init__(self, jid, password, name):
        super().__init__(jid, password)
        self.name = name
        self.ca_certs = CAFILE
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0297")
        self.register_plugin("xep_0280")
        self.leaving = False
        loop = asyncio.get_event_loop()
        self.ready = loop.create_future()
        self.got = result["got"][name]
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("carbon_received", lambda m: self.on_carbon("received", m, m["carbon_received"]))
        self.add_event_handler("carbon_sent", lambda m: self.on_carbon("sent", m, m["carbon_sent"]))
        self.add_event_handler("no_auth", lambda _: self.fail("no SASL mechanism left"))
        self.add_event_handler("connection_failed", lambda e: self.fail("connection failed: %s" % e))
        self.add_event_handler("disconnected", self.on_disconnected)

    def fail(self, why):
        log("%s: %s" % (self.name, why))
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("%s: %s" % (self.name, why)))

    def on_disconnected(self, reason):
        if not self.leaving:
            self.fail("disconnected: %s" % reason)

    async def start(self, _):
        self.send_presence()
        result["jids"][self.name] = self.boundjid.full
        log("%s: session started as %s" % (self.name, self.boundjid.full))
        self.ready.set_result(True)

    def on_message(self, msg):
        if msg.xml.find("{%s}received" % NS) is not None or msg.xml.find("{%s}sent" % NS) is not None:
            return  # a carbon: on_carbon records it
        log("%s: %s message from %s: %r" % (self.name, msg["type"], msg["from"], msg["body"]))
        self.got.append(dict(kind="plain", **describe(msg)))

    def on_carbon(self, kind, outer, inner):
        log("%s: %s carbon from %s to %s: %s -> %s %r" % (
            self.name, kind, outer["from"], outer["to"], inner["from"], inner["to"], inner["body"]))
        self.got.append({"kind": kind, "outer_from": outer["from"].full, "outer_to": outer["to"].full,
                         "outer_type": outer["type"], "forwarded": describe(inner)})


async def step(what, aw):
    result["step"] = what
    try:
        return await asyncio.wait_for(aw, STEP_TIMEOUT)
    except asyncio.TimeoutError:
        raise StepTimeout("timed out after %ds: %s" % (STEP_TIMEOUT, what)) from None


async def until(what, pred):
    result["step"] = what
    deadline = time.monotonic() + STEP_TIMEOUT
    while not pred():
        if time.monotonic() > deadline:
            raise StepTimeout("timed out after %ds waiting for %s" % (STEP_TIMEOUT, what))
        await asyncio.sleep(0.05)


def has(bot, kind, body):
    return any(g["kind"] == kind and (g.get("body") == body or g.get("forwarded", {}).get("body") == body) for g in bot.got)


async def scenario():
    a1, a2, b = Bot(JID_A, PASS_A, "a1"), Bot(JID_A, PASS_A, "a2"), Bot(JID_B, PASS_B, "b")
    for bot in (a1, a2, b):
        if "address" in inspect.signature(bot.connect).parameters:
            bot.connect((HOST, int(PORT)))  # slixmpp 1.8
        else:
            bot.connect(HOST, int(PORT))  # slixmpp 1.10
    await step("logins", asyncio.gather(a1.ready, a2.ready, b.ready))
    for bot in (a1, a2):
        try:
            await step("%s enables carbons" % bot.name, bot["xep_0280"].enable(timeout=STEP_TIMEOUT))
            log("%s: carbons enabled" % bot.name)
        except IqError as e:
            raise RuntimeError("%s: enable: %s" % (bot.name, e.iq["error"]["condition"])) from None
        except IqTimeout:
            raise StepTimeout("%s: no answer to <enable/>" % bot.name) from None
    info = await step("disco#info", a1["xep_0030"].get_info(jid=DOMAIN, local=False, cached=False, timeout=STEP_TIMEOUT))
    result["disco_carbons"] = NS in info["disco_info"]["features"]

    b.send_message(mto=a1.boundjid.full, mbody="1 from b", mtype="chat")
    await until("a2's received carbon", lambda: has(a2, "received", "1 from b"))
    a1.send_message(mto=b.boundjid.full, mbody="2 from a1", mtype="chat")
    await until("a2's sent carbon", lambda: has(a2, "sent", "2 from a1"))
    a2.send_message(mto=JID_B, mbody="3 from a2", mtype="chat")
    await until("a1's sent carbon", lambda: has(a1, "sent", "3 from a2"))
    m = a1.make_message(mto=b.boundjid.full, mbody="4 private", mtype="chat")
    m.enable("carbon_private")
    m.xml.append(slixmpp.xmlstream.ET.Element("{urn:xmpp:hints}no-copy"))
    m.send()
    await until("b's private message", lambda: has(b, "plain", "4 private"))

    for frm in (a1, b):
        for to in (a1, a2, b):
            if to is not frm:
                frm.send_message(mto=to.boundjid.full, mbody="5 end from " + frm.name, mtype="headline")
    await until("every client's headlines", lambda: all(
        has(to, "plain", "5 end from " + frm.name) for frm in (a1, b) for to in (a1, a2, b) if to is not frm))
    result["step"] = "done"
    for bot in (a1, a2, b):
        bot.leaving = True
        bot.disconnect()
    await asyncio.sleep(0.2)


try:
    asyncio.get_event_loop().run_until_complete(asyncio.wait_for(scenario(), TOTAL_TIMEOUT))
except StepTimeout as e:
    result["error"] = str(e)
except asyncio.TimeoutError:
    result["error"] = "scenario exceeded %ds during step: %s" % (TOTAL_TIMEOUT, result["step"])
except Exception as e:  # report, then fail
    result["error"] = "%s: %s (step: %s)" % (type(e).__name__, e, result["step"])
print(json.dumps(result))
sys.exit(0 if not result["error"] else 1)
