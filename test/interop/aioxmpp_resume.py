#!/usr/bin/python3
"""One aioxmpp client loses its connection and resumes (XEP-0198).

Usage: aioxmpp_resume.py HOST PORT CAFILE JID PASSWORD OBSERVER

aioxmpp's Client negotiates stream management by itself: after binding,
its StanzaStream sends <enable resume='true'/>, and when the connection
fails the Client reconnects on its own and sends <resume/> after SASL,
emitting on_stream_suspended, then on_stream_resumed (or, when resumption
fails, on_stream_destroyed and a fresh on_stream_established).

The client logs in over STARTTLS, sends initial presence (PresenceServer)
and, once the stream is established, three messages "c1", "c2", "c3" to
OBSERVER. Then it obeys the commands of slixmpp_resume.py, one a line on
stdin, from the test (resume_test.go):

  pause      aioxmpp stops reading from the socket (its reader is taken
             off the event loop): what arrives stays in the kernel's
             receive buffer, unhandled
  drop       once something waits there (or after 5 s), the connection
             dies as it does when the network goes: what waits in the
             receive buffer is read off the socket and thrown away (lost
             on the way), the socket is shut down (no </stream:stream>, no
             TLS close_notify) and aioxmpp's reader is given back, so that
             it meets the end of the TCP stream in the middle of TLS; it
             sees a failed stream and starts reconnecting by itself.
             (Aborting the transport instead, as slixmpp_resume.py does,
             does not work with aioxmpp: aioopenssl then reports the
             connection lost without an exception, which aioxmpp takes
             for a clean end of the stream: it neither fails nor
             reconnects, and the client hangs.)
  reconnect  lets that reconnection connect: until then it waits (the
             client's connect_xmlstream is wrapped to wait for this
             command on every attempt after the first)
  done       sends a message "done" to OBSERVER, stops the client (which
             closes the stream) and prints the result

It prints the same events and result as slixmpp_resume.py.

RESUME_DEBUG=1 in the environment logs aioxmpp's debug output to stderr.
"""
import asyncio
import fcntl
import json
import logging
import os
import socket
import sys
import termios

import aioxmpp
import aioxmpp.connector
import aioxmpp.dispatcher
import aioxmpp.node
import aioxmpp.nonza
import aioxmpp.protocol
import aioxmpp.security_layer

HOST, PORT, CAFILE, JID, PASSWORD, OBSERVER = sys.argv[1:7]

logging.basicConfig(level=logging.DEBUG if os.environ.get("RESUME_DEBUG") else logging.ERROR)
result = {
    "event": "result",
    "version": aioxmpp.__version__,
    "module": aioxmpp.__file__,
    "python": sys.version.split()[0],
    "sm_sent": [],
    "sm_received": [],
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
    "handled_at_drop": None,
    "sent_at_drop": None,
    "unread_at_drop": None,
    "bodies": [],
    "jids": [],
    "notes": [],
    "error": "",
}


def emit(event, **kw):
    print(json.dumps(dict(event=event, **kw)), flush=True)


def text(v):
    if v is None:
        return None
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


def describe(xso):
    """The stream-management nonzas as tag and attributes, else None."""
    n = aioxmpp.nonza
    for cls, tag, fields in (
            (n.SMEnable, "enable", (("resume", "resume"), ("max", "max_"))),
            (n.SMEnabled, "enabled", (("id", "id_"), ("resume", "resume"), ("max", "max_"), ("location", "location"))),
            (n.SMResume, "resume", (("previd", "previd"), ("h", "counter"))),
            (n.SMResumed, "resumed", (("previd", "previd"), ("h", "counter"))),
            (n.SMFailed, "failed", (("h", "counter"),)),
            (n.SMRequest, "r", ()),
            (n.SMAcknowledgement, "a", (("h", "counter"),))):
        if isinstance(xso, cls):
            attrs = {}
            for name, field in fields:
                v = text(getattr(xso, field, None))
                if v is not None and not (name == "resume" and v == "false"):
                    attrs[name] = v
            return tag, attrs
    return None


def record(direction, xso):
    d = describe(xso)
    if d is None:
        return
    tag, attrs = d
    if tag in ("r", "a"):
        result["%s_%s" % (tag, direction)] += 1
        if tag == "a" and direction == "sent":
            result["a_sent_last"] = attrs.get("h")
        return
    result["sm_" + direction].append({"tag": tag, "attrs": attrs})
    if tag == "enabled":
        result["sm_enabled"] += 1
    elif tag == "failed":
        result["sm_failed"] += 1
        emit("sm_failed", xml=repr(attrs))


# Every XSO aioxmpp sends passes through XMLStream.send_xso; the
# responses to <enable/> and <resume/> through send_and_wait_for; <r/>
# and <a/> received through StanzaStream.recv_stanza (wrapped per client
# below).
_send_xso = aioxmpp.protocol.XMLStream.send_xso


def send_xso(self, obj):
    record("sent", obj)
    return _send_xso(self, obj)


aioxmpp.protocol.XMLStream.send_xso = send_xso

_send_and_wait_for = aioxmpp.protocol.send_and_wait_for


async def send_and_wait_for(xmlstream, send, wait_for, timeout=None, cb=None):
    def recording_cb(obj):
        record("received", obj)
        if cb is not None:
            cb(obj)
    return await _send_and_wait_for(xmlstream, send, wait_for, timeout=timeout, cb=recording_cb)


aioxmpp.protocol.send_and_wait_for = send_and_wait_for

# Reconnection attempts after the first wait for the "reconnect" command.
reconnect_gate = asyncio.Event()
_connect_xmlstream = aioxmpp.node.connect_xmlstream
attempts = 0


async def connect_xmlstream(*args, **kwargs):
    global attempts
    attempts += 1
    if attempts > 1:
        await reconnect_gate.wait()
        reconnect_gate.clear()
    return await _connect_xmlstream(*args, **kwargs)


aioxmpp.node.connect_xmlstream = connect_xmlstream


def ssl_context():
    ctx = aioxmpp.security_layer.default_ssl_context()
    ctx.load_verify_locations(CAFILE)
    return ctx


def unread_bytes(transport):
    sock = transport.get_extra_info("socket")
    buf = fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, sys.byteorder)


class Resumer:
    def __init__(self):
        self.client = aioxmpp.Client(
            aioxmpp.JID.fromstr(JID),
            aioxmpp.make_security_layer(PASSWORD, ssl_context_factory=ssl_context),
            override_peer=[(HOST, int(PORT), aioxmpp.connector.STARTTLSConnector())],
            max_initial_attempts=1,
        )
        stream = self.client.stream
        recv = stream.recv_stanza

        def recv_stanza(obj):
            record("received", obj)
            return recv(obj)
        stream.recv_stanza = recv_stanza

        self.client.summon(aioxmpp.PresenceServer).set_presence(aioxmpp.PresenceState(True))
        self.client.summon(aioxmpp.dispatcher.SimpleMessageDispatcher).register_callback(
            aioxmpp.MessageType.CHAT, None, self.on_message)
        self.client.on_stream_established.connect(self.on_established)
        self.client.on_stream_resumed.connect(self.on_resumed)
        self.client.on_stream_suspended.connect(self.on_suspended)
        self.client.on_stream_destroyed.connect(self.on_destroyed)
        self.client.on_failure.connect(self.on_failure)
        self.client.on_stopped.connect(self.on_stopped)
        self.failed = asyncio.get_event_loop().create_future()
        self.stopped = asyncio.get_event_loop().create_future()
        self.stopping = False

    def send(self, body):
        """Sends a message to OBSERVER; the result is awaitable, done when
        the message is sent (acknowledged, with stream management)."""
        msg = aioxmpp.Message(to=aioxmpp.JID.fromstr(OBSERVER), type_=aioxmpp.MessageType.CHAT)
        msg.body[None] = body
        return self.client.send(msg)

    def on_established(self):
        result["session_start"] += 1
        full = str(self.client.local_jid)
        result["jids"].append(full)
        if result["session_start"] > 1:
            emit("session_start", jid=full)
            return
        if not self.client.stream.sm_enabled:
            result["notes"].append("stream management is not enabled after the stream was established")
        for body in ("c1", "c2", "c3"):
            asyncio.ensure_future(self.send(body))
        emit("ready", jid=full)

    def on_resumed(self):
        result["session_resumed"] += 1
        emit("resumed", jid=str(self.client.local_jid))

    def on_suspended(self, reason):
        result["disconnected"].append(repr(reason))
        emit("disconnected", reason=repr(reason))

    def on_destroyed(self, reason=None):
        if self.stopping:
            return  # as it should when the client stops
        result["notes"].append("on_stream_destroyed(%r): the session was lost" % (reason,))
        emit("sm_failed", xml="on_stream_destroyed(%r)" % (reason,))

    def on_failure(self, err):
        if not self.failed.done():
            self.failed.set_exception(err)

    def on_stopped(self):
        if not self.stopped.done():
            self.stopped.set_result(None)

    def on_message(self, msg):
        body = msg.body.any() if msg.body else None
        if body:
            result["bodies"].append(body)
            emit("message", body=body)

    def transport(self):
        return self.client.stream._xmlstream.transport

    def pause(self):
        # aioopenssl's transport has no pause_reading: take its reader off
        # the loop.
        t = self.transport()
        asyncio.get_event_loop().remove_reader(t.get_extra_info("socket").fileno())

    async def drop(self):
        t = self.transport()
        sock = t.get_extra_info("socket")
        unread = 0
        for _ in range(500):
            unread = unread_bytes(t)
            if unread:
                break
            await asyncio.sleep(0.01)
        stream = self.client.stream
        result["handled_at_drop"] = stream.sm_inbound_ctr
        result["sent_at_drop"] = stream.sm_outbound_base + len(stream.sm_unacked_list)
        lost = 0
        while True:
            try:
                data = sock.recv(1 << 16)
            except BlockingIOError:
                break
            if not data:
                break
            lost += len(data)
        result["unread_at_drop"] = lost
        sock.shutdown(socket.SHUT_RDWR)
        asyncio.get_event_loop().add_reader(sock.fileno(), t._read_ready)
        unread = lost
        emit("dropped", unread=unread, handled=result["handled_at_drop"], sent=result["sent_at_drop"])


async def commands(r):
    loop = asyncio.get_event_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while True:
        line = (await reader.readline()).decode()
        if not line:
            raise RuntimeError("stdin closed")
        cmd = line.strip()
        if cmd == "pause":
            r.pause()
            emit("paused")
        elif cmd == "drop":
            await r.drop()
        elif cmd == "reconnect":
            reconnect_gate.set()
        elif cmd == "done":
            await r.send("done")
            r.stopping = True
            r.client.stop()
            await r.stopped
            return
        else:
            raise RuntimeError("unknown command %r" % line)


async def main():
    r = Resumer()
    r.client.start()
    cmds = asyncio.ensure_future(commands(r))
    done, _ = await asyncio.wait([cmds, r.failed], return_when=asyncio.FIRST_COMPLETED)
    if r.failed in done:
        cmds.cancel()
        r.failed.result()  # raises the client's failure
    cmds.result()


try:
    asyncio.get_event_loop().run_until_complete(asyncio.wait_for(main(), 90))
except Exception as e:  # report, then fail
    result["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(result), flush=True)
sys.exit(1 if result["error"] else 0)
