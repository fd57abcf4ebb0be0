#!/usr/bin/python3
"""One slixmpp client with XEP-0198 loses its connection and resumes.

Usage: slixmpp_resume.py HOST PORT CAFILE JID PASSWORD OBSERVER

The client logs in over STARTTLS with the xep_0198 plugin registered as it
comes (it enables stream management with resumption by itself, after
binding), sends initial presence and, once <enabled/> came, three messages
"c1", "c2", "c3" to OBSERVER (stanzas of the client's for the server to
count in <resumed h/>). Then it obeys commands, one a line on stdin, from
the test (resume_test.go), which sends it messages meanwhile:

  pause      slixmpp stops reading from the socket: what arrives stays in
             the kernel's receive buffer, unhandled
  drop       once something waits there (or after 5 s), the TCP
             connection dies under slixmpp: the transport is aborted, so
             no </stream:stream> and no TLS close_notify is sent, and the
             unread bytes make the kernel answer with a reset; slixmpp
             sees a lost connection, not a disconnect of its own
  reconnect  slixmpp connects again, as an application does on
             "disconnected"; its plugin sends <resume/> after SASL
  done       sends a message "done" to OBSERVER, closes the stream and
             prints the result

Each message received is a line {"event": "message", "body": ...} on
stdout; so are "ready" (session started and <enabled/> received),
"paused", "dropped" (with the bytes left unread and the plugin's counters
then), "disconnected", "resumed", "session_start" (a fresh bind: not
expected after the first) and "sm_failed". The last line is
{"event": "result", ...}: the version, the stream-management elements sent
and received on the wire (<enable/>, <enabled/>, <resume/>, <resumed/>,
<failed/>; <r/> and <a/> counted), the event counts and the bodies
received, in order.

RESUME_DEBUG=1 in the environment logs slixmpp's debug output to stderr.
"""
import asyncio
import fcntl
import inspect
import json
import logging
import os
import sys
import termios
import xml.etree.ElementTree as ET

import slixmpp

HOST, PORT, CAFILE, JID, PASSWORD, OBSERVER = sys.argv[1:7]
NS_SM = "urn:xmpp:sm:3"

logging.basicConfig(level=logging.DEBUG if os.environ.get("RESUME_DEBUG") else logging.ERROR)
result = {
    "event": "result",
    "version": slixmpp.__version__,
    "module": slixmpp.__file__,
    "python": sys.version.split()[0],
    "sm_sent": [],      # <enable/>, <resume/>: tag and attributes
    "sm_received": [],  # <enabled/>, <resumed/>, <failed/>
    "r_received": 0,
    "a_received": 0,
    "r_sent": 0,
    "a_sent": 0,
    "a_sent_last": None,
    "session_start": 0,
    "session_resumed": 0,
    "sm_enabled": 0,
    "sm_failed": 0,
    "disconnected": [],
    "handled_at_drop": None,  # the plugin's counts of stanzas received
    "sent_at_drop": None,     # and sent since <enable/>
    "unread_at_drop": None,   # bytes never read from the dead socket
    "bodies": [],
    "jids": [],
    "notes": [],
    "error": "",
}


def emit(event, **kw):
    print(json.dumps(dict(event=event, **kw)), flush=True)


def attrs(elem):
    return dict(sorted(elem.attrib.items()))


def unread_bytes(transport):
    """The bytes received but not handed to slixmpp: in the kernel's
    receive buffer, and in the encrypted buffer of asyncio's TLS layer,
    which in Python 3.11 goes on reading from the socket while the
    application's reading is paused."""
    sock = transport.get_extra_info("socket")
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    n = int.from_bytes(buf, sys.byteorder)
    incoming = getattr(getattr(transport, "_ssl_protocol", None), "_incoming", None)
    if incoming is not None:
        n += incoming.pending
    return n


class Client(slixmpp.ClientXMPP):
    def __init__(self):
        super().__init__(JID, PASSWORD)
        self.ca_certs = CAFILE
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        # As it comes: resumption asked for, <r/> every 5 stanzas sent.
        self.register_plugin("xep_0198")
        self.add_filter("in", self.on_in)
        self.add_event_handler("session_start", self.on_session_start)
        self.add_event_handler("sm_enabled", self.on_sm_enabled)
        self.add_event_handler("session_resumed", self.on_session_resumed)
        self.add_event_handler("sm_failed", self.on_sm_failed)
        self.add_event_handler("disconnected", self.on_disconnected)
        self.add_event_handler("message", self.on_message)
        self.waiting_ready = False

    def send_raw(self, data):
        # Everything slixmpp writes passes here: stanzas after the out
        # filters, and the plugin's nonzas (<r/> and <a/> by send_raw).
        text = data.decode() if isinstance(data, bytes) else data
        if NS_SM in text:
            try:
                elem = ET.fromstring(text)
            except ET.ParseError:
                elem = None
            if elem is not None:
                tag = elem.tag.split("}")[-1]
                if tag == "r":
                    result["r_sent"] += 1
                elif tag == "a":
                    result["a_sent"] += 1
                    result["a_sent_last"] = elem.get("h")
                else:
                    result["sm_sent"].append({"tag": tag, "attrs": attrs(elem)})
        super().send_raw(data)

    def on_in(self, stanza):
        xml = stanza.xml
        if xml.tag.startswith("{%s}" % NS_SM):
            tag = xml.tag.split("}")[-1]
            if tag == "r":
                result["r_received"] += 1
            elif tag == "a":
                result["a_received"] += 1
            else:
                result["sm_received"].append({"tag": tag, "attrs": attrs(xml)})
        return stanza

    def ready_if_both(self):
        if self.waiting_ready and result["sm_enabled"] == 1:
            self.waiting_ready = False
            for body in ("c1", "c2", "c3"):
                self.send_message(mto=OBSERVER, mbody=body, mtype="chat")
            emit("ready", jid=self.boundjid.full)

    def on_session_start(self, _):
        result["session_start"] += 1
        result["jids"].append(self.boundjid.full)
        if result["session_start"] > 1:
            emit("session_start", jid=self.boundjid.full)
            return
        self.send_presence()
        self.waiting_ready = True
        self.ready_if_both()

    def on_sm_enabled(self, _):
        result["sm_enabled"] += 1
        self.ready_if_both()

    def on_session_resumed(self, _):
        # The plugin passes the last stanza it resent (or <resumed/> when
        # it resent none), not always <resumed/>: on_in records that.
        result["session_resumed"] += 1
        emit("resumed", jid=self.boundjid.full)

    def on_sm_failed(self, stanza):
        result["sm_failed"] += 1
        emit("sm_failed", xml=str(stanza))

    def on_disconnected(self, reason):
        result["disconnected"].append(str(reason))
        emit("disconnected", reason=str(reason))

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            result["bodies"].append(msg["body"])
            emit("message", body=msg["body"])

    def start(self):
        if "address" in inspect.signature(self.connect).parameters:
            self.connect((HOST, int(PORT)))  # slixmpp 1.8
        else:
            self.connect(HOST, int(PORT))  # slixmpp 1.10

    def pause(self):
        self.transport.pause_reading()

    async def drop(self):
        unread = 0
        for _ in range(500):
            unread = unread_bytes(self.transport)
            if unread:
                break
            await asyncio.sleep(0.01)
        sm = self.plugin["xep_0198"]
        result["handled_at_drop"] = sm.handled
        result["sent_at_drop"] = sm.seq
        result["unread_at_drop"] = unread
        self.transport.abort()
        emit("dropped", unread=unread, handled=sm.handled, sent=sm.seq)


async def main():
    c = Client()
    c.start()
    loop = asyncio.get_event_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode()
        if not line:
            raise RuntimeError("stdin closed")
        cmd = line.strip()
        if cmd == "pause":
            c.pause()
            emit("paused")
        elif cmd == "drop":
            await c.drop()
        elif cmd == "reconnect":
            c.start()
        elif cmd == "done":
            c.send_message(mto=OBSERVER, mbody="done", mtype="chat")
            await c.disconnect()
            return
        else:
            raise RuntimeError("unknown command %r" % line)


try:
    asyncio.get_event_loop().run_until_complete(asyncio.wait_for(main(), 90))
except Exception as e:  # report, then fail
    result["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(result), flush=True)
sys.exit(1 if result["error"] else 0)
