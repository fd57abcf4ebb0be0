#!/usr/bin/python3
"""A slixmpp client logs in to an account imported from another server and
reports what it finds there: its roster, the offline messages delivered
after its initial presence, and its vCard.

Usage: slixmpp_migrated.py HOST PORT CAFILE MECH JID PASSWORD MESSAGES

MECH is passed as sasl_mech, which limits slixmpp to that mechanism: the
SCRAM verifier carried over from the other server is the one checked.
MESSAGES is how many offline messages to wait for (at most 10 s).
Prints one JSON object; exits 0 when the session started. Driven by
migrate_test.go.
"""
import asyncio
import logging
import sys

import slixmpp

import harness
from harness import connect

HOST, PORT, CAFILE, MECH, JID, PASSWORD, MESSAGES = sys.argv[1:8]
TIMEOUT = 30

logging.basicConfig(level=logging.ERROR)
run = harness.Run(step_timeout=TIMEOUT, total_timeout=4 * TIMEOUT, version=slixmpp.__version__, roster={}, messages=[], vcard_fn=None)
result = run.result


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(JID, PASSWORD, sasl_mech=MECH)
        self.ca_certs = CAFILE
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        self.register_plugin("xep_0054")
        self.register_plugin("xep_0203")
        self.done = asyncio.get_event_loop().create_future()
        self.got_message = asyncio.Event()
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("message", self.on_message)
        self.add_event_handler("auth_success", lambda _: result.update(mech=self["feature_mechanisms"].mech.name))
        self.add_event_handler("failed_auth", lambda f: result["events"].append("refused: %s" % f["condition"]))
        self.add_event_handler("failed_all_auth", lambda _: self.fail("every mechanism failed"))
        self.add_event_handler("disconnected", lambda reason: self.fail("disconnected: %s" % reason))

    def fail(self, why):
        result["events"].append(why)
        if not self.done.done():
            self.done.set_exception(RuntimeError(why))

    def on_message(self, msg):
        delay = msg["delay"]["stamp"]
        result["messages"].append({"from": str(msg["from"]), "body": msg["body"], "delayed": delay is not None})
        if len(result["messages"]) >= int(MESSAGES):
            self.got_message.set()

    async def on_session_start(self, _):
        try:
            roster = await self.get_roster()
            for jid, item in roster["roster"]["items"].items():
                result["roster"][str(jid)] = {
                    "name": item["name"],
                    "subscription": item["subscription"],
                    "groups": sorted(item["groups"]),
                }
            if int(MESSAGES) == 0:
                self.got_message.set()
            self.send_presence()
            try:
                await asyncio.wait_for(self.got_message.wait(), 10)
            except asyncio.TimeoutError:
                result["events"].append("no offline message within 10 s")
            vcard = await self["xep_0054"].get_vcard(self.boundjid.bare, local=False)
            result["vcard_fn"] = vcard["vcard_temp"]["FN"]
            result["events"].append("session started as %s" % self.boundjid.full)
            self.done.set_result(True)
        except Exception as e:
            self.fail("%s: %s" % (type(e).__name__, e))


async def main():
    c = Client()
    connect(c, HOST, PORT)
    try:
        await asyncio.wait_for(c.done, TIMEOUT)
    finally:
        c.disconnect()
        await asyncio.sleep(0.1)


run.main(main)
