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
import logging
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout

import harness
from harness import StepTimeout, connect

HOST, PORT, CAFILE, DOMAIN, JID_A, PASS_A, JID_B, PASS_B = sys.argv[1:9]
STEP_TIMEOUT = 15
NS = "urn:xmpp:carbons:2"

logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=60,
    version=slixmpp.__version__, jids={}, disco_carbons=False, got={"a1": [], "a2": [], "b": []})
result, log, step, until = run.result, run.log, run.step, run.until


def describe(m):
    return {"from": m["from"].full, "to": m["to"].full, "type": m["type"], "body": m["body"],
            "private": m.xml.find("{%s}private" % NS) is not None}


class Bot(harness.Client):
    def __init__(self, jid, password, name):
        super().__init__(run, jid, password, name, CAFILE, plugins=("xep_0030", "xep_0297", "xep_0280"))
        self.got = result["got"][name]
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("carbon_received", lambda m: self.on_carbon("received", m, m["carbon_received"]))
        self.add_event_handler("carbon_sent", lambda m: self.on_carbon("sent", m, m["carbon_sent"]))

    async def starting(self):
        result["jids"][self.name] = self.boundjid.full

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


def has(bot, kind, body):
    return any(g["kind"] == kind and (g.get("body") == body or g.get("forwarded", {}).get("body") == body) for g in bot.got)


async def scenario():
    a1, a2, b = Bot(JID_A, PASS_A, "a1"), Bot(JID_A, PASS_A, "a2"), Bot(JID_B, PASS_B, "b")
    for bot in (a1, a2, b):
        connect(bot, HOST, PORT)
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
        bot.leave()
    await asyncio.sleep(0.2)


run.main(scenario)
