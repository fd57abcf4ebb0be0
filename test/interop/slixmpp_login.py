#!/usr/bin/python3
"""One slixmpp client logs in over STARTTLS and reports how SASL went.

Usage: slixmpp_login.py HOST PORT CAFILE MECH JID PASSWORD

MECH "default" lets slixmpp negotiate as it does out of the box; a mechanism
name is passed as sasl_mech, which limits slixmpp to it (nothing else is
changed: the channel binding slixmpp offers is its own).

Prints one JSON object: the slixmpp version loaded (which slixmpp runs is
the caller's PYTHONPATH), each <auth/> sent with its mechanism, its GS2
channel-binding flag (SCRAM only; nothing else of the payload), its
outcome ("success" or the failure's condition) and the failure's text, the
mechanism of the login, the TLS version and the bound JID.
Exits 0 when the session started. Driven by scram_test.go.
"""
import asyncio
import logging
import sys

import slixmpp
from slixmpp.features.feature_mechanisms.stanza import Auth

import harness
from harness import connect

HOST, PORT, CAFILE, MECH, JID, PASSWORD = sys.argv[1:7]
TIMEOUT = 30

logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=TIMEOUT, total_timeout=4 * TIMEOUT,
    version=slixmpp.__version__,
    module=slixmpp.__file__,
    python=sys.version.split()[0],
    attempts=[],
)
result = run.result


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(JID, PASSWORD, sasl_mech=None if MECH == "default" else MECH)
        self.ca_certs = CAFILE
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        self.ready = asyncio.get_event_loop().create_future()
        self.add_filter("out", self.on_out)
        self.add_event_handler("failed_auth", self.on_failed_auth)
        self.add_event_handler("auth_success", self.on_auth_success)
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("no_auth", lambda _: self.fail("no mechanism left"))
        self.add_event_handler("failed_all_auth", lambda _: self.fail("every mechanism failed"))
        self.add_event_handler("disconnected", lambda reason: self.fail("disconnected: %s" % reason))
        self.add_event_handler("connection_failed", lambda e: self.fail("connection failed: %s" % e))

    def on_out(self, stanza):
        if isinstance(stanza, Auth):
            mech = stanza["mechanism"]
            attempt = {"mech": mech, "gs2": "", "outcome": "pending", "text": ""}
            if mech.startswith("SCRAM-"):
                # The GS2 header is "flag,authzid,"; keep the flag only.
                attempt["gs2"] = stanza["value"].split(b",", 1)[0].decode()
            result["attempts"].append(attempt)
        return stanza

    def last_attempt(self):
        return result["attempts"][-1] if result["attempts"] else {}

    def on_failed_auth(self, failure):
        attempt = self.last_attempt()
        attempt["outcome"] = failure["condition"]
        attempt["text"] = failure["text"]
        result["events"].append("refused: %s: %s" % (failure["condition"], failure["text"]))

    def on_auth_success(self, _):
        self.last_attempt()["outcome"] = "success"
        result["mech_used"] = self["feature_mechanisms"].mech.name

    def fail(self, why):
        result["events"].append(why)
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    async def on_session_start(self, _):
        result["tls"] = self.socket.version() if hasattr(self.socket, "version") else None
        result["jid"] = self.boundjid.full
        result["events"].append("session started as %s" % self.boundjid.full)
        self.ready.set_result(True)


async def main():
    c = Client()
    connect(c, HOST, PORT)
    try:
        await asyncio.wait_for(c.ready, TIMEOUT)
    finally:
        c.disconnect()
        await asyncio.sleep(0.1)


run.main(main)
