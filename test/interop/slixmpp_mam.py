#!/usr/bin/python3
"""slixmpp clients use the server's message archive (XEP-0313) with
slixmpp's xep_0313 plugin, and its XEP-0359 stanza ids.

Usage: slixmpp_mam.py HOST PORT CAFILE JID_A PASS_A JID_B PASS_B

A and B log in (slixmpp's default negotiation over STARTTLS, trusting
CAFILE) and send initial presence. Then:

  1. A sends B "1", "2", "3"; B answers "r"; A sends "4", "5". B records
     the <stanza-id by=JID_B> of each message it gets live.
  2. B disconnects. A sends "6", "7", "8" (stored offline for B, and
     archived), then pings the server: A's stanzas are handled in order,
     so the answer means they were routed.
  3. A fresh session of B (B2) logs in without sending presence (so that
     the offline messages stay where they are) and pages through its whole
     archive with the plugin's iterate(), 3 per page: it must get
     1 2 3 r 4 5 6 7 8 exactly once and in that order, and the result ids
     of 1-5 must be the stanza-ids B saw live.
  4. B2 asks for what came after the last stanza-id B saw (that of "5"):
     it must get exactly 6 7 8.
  5. B2 asks for the archive metadata (slixmpp 1.10 only: 1.8.3 has no
     such call): its end must be the id of "8".

Prints one JSON object with what was observed and exits 0 unless a step
failed ("error"); mam_test.go checks the rest.
"""
import asyncio
import logging
import sys

import slixmpp
from slixmpp import JID

import harness
from harness import connect

HOST, PORT, CAFILE, JID_A, PASS_A, JID_B, PASS_B = sys.argv[1:8]
STEP_TIMEOUT = 15
TOTAL_TIMEOUT = 70
SID = "urn:xmpp:sid:0"

logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
    version=slixmpp.__version__,
    live=[],             # [body, stanza-id] as B got them
    archive=[],          # [body, result id, from] of B2's full retrieval
    pages=0,
    after_last_seen=[],  # bodies after the last stanza-id B saw
    metadata_end=None,
)
result, log, step, until = run.result, run.log, run.step, run.until


class Bot(harness.Client):
    def __init__(self, jid, password, name, presence=True):
        super().__init__(run, jid, password, name, CAFILE, presence=presence,
                         plugins=("xep_0030", "xep_0004", "xep_0059", "xep_0297", "xep_0313", "xep_0199"))
        self.got = []
        self.add_event_handler("message", self.on_message)

    def on_message(self, msg):
        if msg.xml.find("{urn:xmpp:mam:2}result") is not None or not msg["body"]:
            return
        sid = None
        for e in msg.xml.findall("{%s}stanza-id" % SID):
            if e.get("by") == JID_B:
                sid = e.get("id")
        log("%s: message %r stanza-id %s" % (self.name, msg["body"], sid))
        self.got.append([msg["body"], sid])

    def go(self):
        connect(self, HOST, PORT)


async def collect(bot, rsm):
    """Every message of bot's archive the plugin's iterate() yields."""
    out = []
    async for m in bot["xep_0313"].iterate(jid=JID(JID_B), rsm=rsm):
        r = m["mam_result"]
        fwd = r["forwarded"]["stanza"]
        out.append([fwd["body"], r["id"], fwd["from"].full])
    return out


async def scenario():
    a, b = Bot(JID_A, PASS_A, "a"), Bot(JID_B, PASS_B, "b")
    a.go()
    b.go()
    await step("logins", asyncio.gather(a.ready, b.ready))
    for body in ("1", "2", "3"):
        a.send_message(mto=JID_B, mbody=body, mtype="chat")
    await until("b's first three", lambda: len(b.got) == 3)
    b.send_message(mto=JID_A, mbody="r", mtype="chat")
    await until("a gets r", lambda: any(g[0] == "r" for g in a.got))
    for body in ("4", "5"):
        a.send_message(mto=JID_B, mbody=body, mtype="chat")
    await until("b's five", lambda: len(b.got) == 5)
    result["live"] = b.got
    b.leave()
    await step("b's disconnection", b.disconnected)
    for body in ("6", "7", "8"):
        a.send_message(mto=JID_B, mbody=body, mtype="chat")
    await step("a's ping", a["xep_0199"].ping(jid=JID(JID(JID_A).domain), timeout=STEP_TIMEOUT))

    b2 = Bot(JID_B, PASS_B, "b2", presence=False)
    b2.go()
    await step("b2's login", b2.ready)
    result["step"] = "b2 retrieves the archive"
    result["archive"] = await asyncio.wait_for(collect(b2, {"max": 3}), STEP_TIMEOUT)
    log("b2: archive %s" % [m[0] for m in result["archive"]])
    last_seen = result["live"][-1][1]
    result["step"] = "b2 asks for what came after %s" % last_seen
    after = await asyncio.wait_for(collect(b2, {"max": 10, "after": last_seen}), STEP_TIMEOUT)
    result["after_last_seen"] = [m[0] for m in after]
    log("b2: after %s: %s" % (last_seen, result["after_last_seen"]))
    if hasattr(b2["xep_0313"], "get_archive_metadata"):
        md = await step("metadata", b2["xep_0313"].get_archive_metadata(jid=JID(JID_B), timeout=STEP_TIMEOUT))
        result["metadata_end"] = md["mam_metadata"]["end"]["id"]
    result["step"] = "done"
    for bot in (a, b2):
        bot.leave()
    await asyncio.sleep(0.2)


run.main(scenario)
