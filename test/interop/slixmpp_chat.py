#!/usr/bin/python3
"""Two slixmpp clients log in to a server and exchange messages both ways.

Usage: slixmpp_chat.py HOST PORT CAFILE MECH JID1 PASS1 JID2 PASS2

MECH "default" lets slixmpp negotiate as it does out of the box; a mechanism
name forces it, and for SCRAM turns slixmpp's channel binding off (it only
knows tls-unique, which TLS 1.3 does not define), so that it sends the "n"
flag rather than "y".

Prints one JSON object with what happened and exits 0 when both clients
logged in over STARTTLS and each received the other's message. Driven by
interop_test.go; needs Debian's python3-slixmpp.
"""
import asyncio
import logging
import sys

import slixmpp

import harness
from harness import connect

HOST, PORT, CAFILE, MECH, JID1, PASS1, JID2, PASS2 = sys.argv[1:9]
TIMEOUT = 30

logging.basicConfig(level=logging.ERROR)
run = harness.Run(step_timeout=TIMEOUT, total_timeout=4 * TIMEOUT, mech=MECH)
result = run.result


class Bot(slixmpp.ClientXMPP):
    def __init__(self, jid, password, peer, name):
        super().__init__(jid, password, sasl_mech=None if MECH == "default" else MECH)
        self.peer, self.name = peer, name
        if MECH.startswith("SCRAM-"):
            mechs = self["feature_mechanisms"]
            default = mechs.sasl_callback

            def no_channel_binding(required, optional):
                creds = default(required, optional)
                if "channel_binding" in creds:
                    creds["channel_binding"] = None
                return creds

            mechs.sasl_callback = no_channel_binding
        self.ca_certs = CAFILE
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        self.ready = asyncio.get_event_loop().create_future()
        self.got = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.start)
        self.add_event_handler("message", self.on_message)
        # failed_auth fires for each refused mechanism, and slixmpp then
        # tries the next one; no_auth means it has none left.
        self.add_event_handler("failed_auth", lambda _: result["events"].append("%s: a mechanism was refused" % name))
        self.add_event_handler("no_auth", lambda _: self.fail("no mechanism left"))
        self.add_event_handler("disconnected", lambda reason: self.fail("disconnected: %s" % reason))
        self.add_event_handler("connection_failed", lambda e: self.fail("connection failed: %s" % e))

    def fail(self, why):
        result["events"].append("%s: %s" % (self.name, why))
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    async def start(self, _):
        self.send_presence()
        tls = self.socket.version() if hasattr(self.socket, "version") else None
        result["events"].append("%s: session started as %s (%s)" % (self.name, self.boundjid.full, tls))
        result[self.name + "_tls"] = tls
        result[self.name + "_jid"] = self.boundjid.full
        result[self.name + "_mech"] = self["feature_mechanisms"].mech.name
        self.ready.set_result(True)

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal"):
            result["events"].append("%s: got %r from %s" % (self.name, msg["body"], msg["from"]))
            if not self.got.done():
                self.got.set_result((str(msg["from"]), msg["body"]))


async def main():
    a = Bot(JID1, PASS1, JID2, "a")
    b = Bot(JID2, PASS2, JID1, "b")
    for bot in (a, b):
        connect(bot, HOST, PORT)
    await asyncio.wait_for(asyncio.gather(a.ready, b.ready), TIMEOUT)
    # a → b's bare JID (routed to the available resource), b → a's full JID.
    a.send_message(mto=JID2, mbody="hello from a", mtype="chat")
    frm, body = await asyncio.wait_for(b.got, TIMEOUT)
    result["b_received"] = {"from": frm, "body": body}
    b.send_message(mto=a.boundjid.full, mbody="hello from b", mtype="chat")
    frm, body = await asyncio.wait_for(a.got, TIMEOUT)
    result["a_received"] = {"from": frm, "body": body}
    for bot in (a, b):
        bot.disconnect()
    await asyncio.sleep(0.2)


run.main(main)
