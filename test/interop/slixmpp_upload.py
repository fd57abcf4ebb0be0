#!/usr/bin/python3
"""One slixmpp client uploads a file with its XEP-0363 plugin and fetches it.

Usage: slixmpp_upload.py HOST PORT CAFILE JID PASSWORD FILE

The client logs in over STARTTLS and calls the xep_0363 plugin's
upload_file, which finds the upload service in the domain's disco#items,
reads max-file-size from its disco#info form, requests a slot and PUTs the
file with aiohttp (which trusts CAFILE through SSL_CERT_FILE, set by the
caller). It then GETs the URL and compares the bytes, and requests a slot
one byte larger than max-file-size, which the server must refuse with
not-acceptable and <file-too-large/>.

slixmpp 1.8.3's service discovery fails on Python 3.11 (see discover); the
script then finds the service itself and the plugin does the rest.

Prints one JSON object: how the service was found, the service,
max-file-size, the GET URL, the GET's
status, headers and whether the bytes matched, and the too-large refusal.
Exits 0 when every step ran. Driven by upload_test.go.
"""
import asyncio
import logging
import sys

import aiohttp
import slixmpp
from slixmpp.exceptions import IqError

import harness
from harness import connect

HOST, PORT, CAFILE, JID, PASSWORD, FILE = sys.argv[1:7]
TIMEOUT = 30
NS = "urn:xmpp:http:upload:0"

logging.basicConfig(level=logging.ERROR)
run = harness.Run(step_timeout=TIMEOUT, total_timeout=4 * TIMEOUT, version=slixmpp.__version__)
result = run.result


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(JID, PASSWORD)
        self.ca_certs = CAFILE
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        self.register_plugin("xep_0030")
        self.register_plugin("xep_0128")
        self.register_plugin("xep_0363")
        self.ready = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("disconnected", lambda reason: self.fail("disconnected: %s" % reason))
        self.add_event_handler("connection_failed", lambda e: self.fail("connection failed: %s" % e))

    def fail(self, why):
        result["events"].append(why)
        if not self.ready.done():
            self.ready.set_exception(RuntimeError(why))

    def on_session_start(self, _):
        result["events"].append("session started as %s" % self.boundjid.full)
        if not self.ready.done():
            self.ready.set_result(True)


async def discover(c):
    """Finds the upload service as the plugin does, for slixmpp 1.8.3, whose
    xep_0030 get_info_from_domain passes coroutines to asyncio.wait, which
    Python 3.11 refuses (TypeError)."""
    plugin = c["xep_0363"]
    items = await c["xep_0030"].get_items(c.boundjid.domain, timeout=TIMEOUT)
    for item in items["disco_items"]["items"]:
        info = await c["xep_0030"].get_info(item[0], timeout=TIMEOUT)
        ids = [(i[0], i[1]) for i in info["disco_info"]["identities"]]
        if ("store", "file") in ids and NS in info["disco_info"]["features"]:
            plugin.upload_service = info["from"]
            for form in info["disco_info"].iterables:
                values = form["values"]
                if values["FORM_TYPE"] == [NS]:
                    plugin.max_file_size = int(values["max-file-size"])
            return
    raise RuntimeError("no upload service in the disco#items of %s" % c.boundjid.domain)


async def upload(c):
    plugin = c["xep_0363"]
    try:
        url = await plugin.upload_file(FILE, content_type="application/octet-stream", timeout=TIMEOUT)
        result["discovery"] = "plugin"
    except TypeError as e:
        if plugin.upload_service is not None:
            raise
        result["discovery"] = "script (the plugin's failed: %s)" % e
        await discover(c)
        url = await plugin.upload_file(FILE, content_type="application/octet-stream", timeout=TIMEOUT)
    result["service"] = str(plugin.upload_service)
    result["max_file_size"] = plugin.max_file_size
    result["url"] = url
    result["events"].append("uploaded to %s" % url)
    with open(FILE, "rb") as f:
        want = f.read()
    async with aiohttp.ClientSession() as session:
        async with session.get(url) as res:
            got = await res.read()
            result["get_status"] = res.status
            result["get_headers"] = {k: res.headers.get(k, "") for k in (
                "Content-Type", "Content-Disposition", "X-Content-Type-Options", "Content-Security-Policy")}
    result["get_equal"] = got == want
    result["get_length"] = len(got)

    try:
        await plugin.request_slot(plugin.upload_service, "big.bin", plugin.max_file_size + 1,
                                  "application/octet-stream", timeout=TIMEOUT)
        result["too_large"] = {"condition": "granted"}
    except IqError as e:
        err = e.iq["error"]
        too_large = e.iq.xml.find(".//{%s}file-too-large" % NS)
        max_size = too_large.find("{%s}max-file-size" % NS) if too_large is not None else None
        result["too_large"] = {
            "condition": err["condition"],
            "type": err["type"],
            "file_too_large": too_large is not None,
            "max_file_size": max_size.text if max_size is not None else "",
        }


async def main():
    c = Client()
    connect(c, HOST, PORT)
    try:
        await asyncio.wait_for(c.ready, TIMEOUT)
        await asyncio.wait_for(upload(c), TIMEOUT)
    finally:
        c.disconnect()
        await asyncio.sleep(0.1)


run.main(main)
