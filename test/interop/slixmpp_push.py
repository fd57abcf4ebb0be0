#!/usr/bin/python3
"""A slixmpp phone uses XEP-0357 push notifications through a slixmpp app
server, and resumes its XEP-0198 session after being woken.

Usage: slixmpp_push.py HOST PORT CAFILE PHONE_JID APP_JID BOB_JID PASSWORD NODE SECRET

Three slixmpp clients log in over STARTTLS (trusting CAFILE), each with
PASSWORD: the phone (PHONE_JID, a full JID, with the xep_0198 plugin as it
comes: stream management with resumption), the app server (APP_JID, a full
JID: it answers every pubsub publish it is sent with a result and records
it) and bob (BOB_JID), a contact of the phone's user. Then:

  1. The phone enables push (<enable jid=APP_JID node=NODE/> with a
     publish-options form carrying SECRET) and asks for the disco#info of
     its bare JID. Checkpoint "enabled".
  2. The phone's TCP connection dies under it: the transport is aborted, so
     no </stream:stream> and no TLS close_notify are sent. Checkpoint
     "dropped": the test waits for the server to detach the session. Bob
     sends a chat message to the phone's bare JID; the app server gets a
     publish for NODE.
  3. The phone connects again and resumes its session (its plugin sends
     <resume/> after SASL) and gets bob's message. Checkpoint "resumed":
     the test waits for the server to log the resumption. Bob sends a
     second message, which shows, once it came, that the first came only
     once.
  4. The phone disables push. Checkpoint "disabled". It closes its stream
     cleanly. Checkpoint "closed": the test waits for the server to end the
     session. Bob sends the phone another message (stored offline), then
     one to the app server; once that arrived, and GRACE seconds more, the
     app server must have had no further publish.

At a checkpoint the script prints {"event": NAME, "jid": ...} and waits
for a line "go" on stdin (push_test.go checks the server's side then). The
last line is {"event": "result", ...}: what each step saw, every publish
the app server got (addresses, node, the summary form, publish-options)
and the bodies the phone got, in order; push_test.go checks them.

slixmpp (1.8.3 and 1.10.0 alike) has no XEP-0357 plugin: there is no
xep_0357 in slixmpp.plugins, so no enable_push/disable_push. The script
declares <enable/> and <disable/> as slixmpp stanza plugins of Iq, with
xep_0004's Form inside <enable/>, and sends them with make_iq_set, which is
what such a plugin would do. The app server's handler reads the publish's
XML as it came (ElementTree), not through xep_0060's stanza classes, so
that what is checked is the wire, whatever either version's pubsub stanzas
make of it.

slixmpp 1.8.3 logs "Inconsistent sequence numbers from the server" on
<resumed h='2'/>: its plugin has emptied its queue of unacknowledged
stanzas when the connection died and takes the server's count, which is
right (the <enable/> and disco#info IQs since <enable/>); 1.10.0 does not.

PUSH_DEBUG=1 in the environment logs slixmpp's debug output to stderr.
"""
import asyncio
import json
import logging
import os
import sys

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout
from slixmpp.plugins.xep_0004 import Form
from slixmpp.stanza import Iq
from slixmpp.xmlstream import ElementBase, register_stanza_plugin
from slixmpp.xmlstream.handler import Callback
from slixmpp.xmlstream.matcher import MatchXPath

import harness
from harness import StepTimeout, connect

HOST, PORT, CAFILE, PHONE_JID, APP_JID, BOB_JID, PASSWORD, NODE, SECRET = sys.argv[1:10]

NS_PUSH = "urn:xmpp:push:0"
NS_PUBSUB = "http://jabber.org/protocol/pubsub"
NS_DATA = "jabber:x:data"
NS_PUBLISH_OPTIONS = "http://jabber.org/protocol/pubsub#publish-options"
STEP_TIMEOUT = 10
TOTAL_TIMEOUT = 60
# How long the app server still waits for a publish after the message
# that follows the one that must not cause any: the server publishes
# asynchronously, within milliseconds.
GRACE = 1.0

logging.basicConfig(level=logging.DEBUG if os.environ.get("PUSH_DEBUG") else logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
    event="result",
    version=slixmpp.__version__,
    module=slixmpp.__file__,
    jids={},
    enable="",            # "result", or the error condition
    disco_push=False,     # urn:xmpp:push:0 in the bare JID's disco#info
    disco_features=[],
    session_start=0,      # the phone's fresh sessions (1 expected)
    session_resumed=0,
    sm_failed=0,
    publishes=[],         # every publish the app server got
    publishes_at_disable=None,
    phone_bodies=[],      # bodies of the messages the phone got
    disable="",
    marker_received=False,  # bob's last message, at the app server
    app_bodies=[],
)
result, log, step, until = run.result, run.log, run.step, run.until


def emit(event, **kw):
    print(json.dumps(dict(event=event, **kw)), flush=True)


class Enable(ElementBase):
    """<enable/> of XEP-0357 §5, with a publish-options Form inside."""
    namespace = NS_PUSH
    name = "enable"
    plugin_attrib = "push_enable"
    interfaces = {"jid", "node"}


class Disable(ElementBase):
    """<disable/> of XEP-0357 §6."""
    namespace = NS_PUSH
    name = "disable"
    plugin_attrib = "push_disable"
    interfaces = {"jid", "node"}


register_stanza_plugin(Iq, Enable)
register_stanza_plugin(Iq, Disable)
register_stanza_plugin(Enable, Form)


class Client(harness.Client):
    """A client of the scenario that records the bodies of the chat and
    normal messages it gets."""

    def __init__(self, jid, name, plugins=()):
        super().__init__(run, jid, PASSWORD, name, CAFILE, plugins=plugins)
        self.bodies = []
        self.add_event_handler("message", self.on_message)

    async def starting(self):
        result["jids"][self.name] = self.boundjid.full

    def on_message(self, msg):
        if msg["type"] in ("chat", "normal") and msg["body"]:
            log("%s: message from %s: %r" % (self.name, msg["from"], msg["body"]))
            self.bodies.append(msg["body"])


class Phone(Client):
    def __init__(self):
        # xep_0198 as it comes: resume='true'.
        super().__init__(PHONE_JID, "phone", plugins=("xep_0030", "xep_0004", "xep_0198"))
        self.bodies = result["phone_bodies"]
        loop = asyncio.get_event_loop()
        self.sm_enabled = loop.create_future()
        self.resumed = loop.create_future()
        self.disconnected = loop.create_future()
        self.add_event_handler("sm_enabled", self.on_sm_enabled)
        self.add_event_handler("session_resumed", self.on_session_resumed)
        self.add_event_handler("sm_failed", self.on_sm_failed)

    async def _start(self, stanza):
        result["session_start"] += 1
        if result["session_start"] > 1:
            log("phone: a fresh session instead of a resumption: %s" % self.boundjid.full)
            return
        await super()._start(stanza)

    def on_sm_enabled(self, _):
        log("phone: stream management enabled")
        if not self.sm_enabled.done():
            self.sm_enabled.set_result(True)

    def on_session_resumed(self, _):
        result["session_resumed"] += 1
        log("phone: session resumed")
        if not self.resumed.done():
            self.resumed.set_result(True)

    def on_sm_failed(self, stanza):
        result["sm_failed"] += 1
        log("phone: stream management failed: %s" % stanza)
        if not self.resumed.done():
            self.resumed.set_exception(RuntimeError("phone: <failed/>: %s" % stanza))

    def on_disconnected(self, reason):
        log("phone: disconnected (%s)" % reason)
        if not self.disconnected.done():
            self.disconnected.set_result(str(reason))

    async def enable_push(self):
        iq = self.make_iq_set()
        iq["push_enable"]["jid"] = APP_JID
        iq["push_enable"]["node"] = NODE
        form = iq["push_enable"]["form"]
        form["type"] = "submit"
        form.add_field(var="FORM_TYPE", ftype="hidden", value=NS_PUBLISH_OPTIONS)
        form.add_field(var="secret", value=SECRET)
        return await self.command(iq)

    async def disable_push(self):
        iq = self.make_iq_set()
        iq["push_disable"]["jid"] = APP_JID
        iq["push_disable"]["node"] = NODE
        return await self.command(iq)

    async def command(self, iq):
        try:
            await iq.send(timeout=STEP_TIMEOUT)
            return "result"
        except IqError as e:
            return e.iq["error"]["condition"] or "error"
        except IqTimeout:
            raise StepTimeout("no answer to %s" % iq) from None

    def drop(self):
        # The connection dies as a phone's does: the socket is closed
        # under TLS, with nothing sent, and slixmpp sees it lost.
        self.transport.abort()


class AppServer(Client):
    def __init__(self):
        super().__init__(APP_JID, "app")
        self.got_publish = asyncio.get_event_loop().create_future()
        self.bodies = result["app_bodies"]
        self.register_handler(Callback(
            "push publish",
            MatchXPath("{jabber:client}iq[@type='set']/{%s}pubsub/{%s}publish" % (NS_PUBSUB, NS_PUBSUB)),
            self.on_publish))

    def on_publish(self, iq):
        p = describe_publish(iq)
        result["publishes"].append(p)
        log("app: publish from %s to node %s: %s, options %s" % (p["from"], p["node"], p["summary"], p["options"]))
        iq.reply().send()
        if not self.got_publish.done():
            self.got_publish.set_result(p)


def fields(x):
    """A data form's fields: var -> its values."""
    if x is None:
        return None
    return {f.get("var"): [v.text or "" for v in f.findall("{%s}value" % NS_DATA)]
            for f in x.findall("{%s}field" % NS_DATA)}


def describe_publish(iq):
    xml = iq.xml
    pubsub = xml.find("{%s}pubsub" % NS_PUBSUB)
    publish = pubsub.find("{%s}publish" % NS_PUBSUB)
    items = publish.findall("{%s}item" % NS_PUBSUB)
    notification = items[0].find("{%s}notification" % NS_PUSH) if items else None
    summary = notification.find("{%s}x" % NS_DATA) if notification is not None else None
    options = pubsub.find("{%s}publish-options/{%s}x" % (NS_PUBSUB, NS_DATA))
    return {
        "from": xml.get("from", ""),
        "to": xml.get("to", ""),
        "id": xml.get("id", ""),
        "node": publish.get("node", ""),
        "items": len(items),
        "notification": notification is not None,
        "summary_type": summary.get("type", "") if summary is not None else "",
        "summary": fields(summary),
        "options_type": options.get("type", "") if options is not None else "",
        "options": fields(options),
    }


async def checkpoint(stdin, name, jid):
    result["step"] = "checkpoint " + name
    emit(name, jid=jid)
    line = (await stdin.readline()).decode().strip()
    if line != "go":
        raise RuntimeError("checkpoint %s: got %r on stdin, want \"go\"" % (name, line))


async def scenario():
    loop = asyncio.get_event_loop()
    stdin = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(stdin), sys.stdin)
    phone, app, bob = Phone(), AppServer(), Client(BOB_JID, "bob")
    for c in (phone, app, bob):
        connect(c, HOST, PORT)
    await step("logins and stream management", asyncio.gather(phone.ready, phone.sm_enabled, app.ready, bob.ready))
    full = phone.boundjid.full
    bare = phone.boundjid.bare

    # 1. Enable, and the account's disco#info.
    result["step"] = "enable"
    result["enable"] = await phone.enable_push()
    log("phone: enable: %s" % result["enable"])
    info = await step("disco#info of %s" % bare,
                      phone["xep_0030"].get_info(jid=bare, local=False, cached=False, timeout=STEP_TIMEOUT))
    result["disco_features"] = sorted(info["disco_info"]["features"])
    result["disco_push"] = NS_PUSH in result["disco_features"]
    await checkpoint(stdin, "enabled", full)

    # 2. The connection dies; a message wakes the device.
    phone.drop()
    await step("phone sees its connection lost", phone.disconnected)
    await checkpoint(stdin, "dropped", full)
    bob.send_message(mto=bare, mbody="while you were away", mtype="chat")
    await step("the app server's publish", app.got_publish)

    # 3. The phone comes back and resumes.
    connect(phone, HOST, PORT)
    await step("resumption", phone.resumed)
    await until("bob's message on the phone", lambda: "while you were away" in phone.bodies)
    # The phone has <resumed/> and what the server resent, but the server
    # may not yet count the session as attached: c2s marks it so only
    # after sending them, and a message routed in between is taken for
    # one to a detached session (a second, needless publish). The test
    # waits for the server to log the resumption, which comes after.
    await checkpoint(stdin, "resumed", full)
    bob.send_message(mto=bare, mbody="after the resumption", mtype="chat")
    await until("bob's second message on the phone", lambda: "after the resumption" in phone.bodies)

    # 4. Disable; no more publishes.
    result["step"] = "disable"
    result["disable"] = await phone.disable_push()
    log("phone: disable: %s" % result["disable"])
    result["publishes_at_disable"] = len(result["publishes"])
    await checkpoint(stdin, "disabled", full)
    await step("phone closes its stream", phone.disconnect())
    await checkpoint(stdin, "closed", full)
    bob.send_message(mto=bare, mbody="stored offline", mtype="chat")
    bob.send_message(mto=app.boundjid.full, mbody="marker", mtype="chat")
    await until("bob's marker at the app server", lambda: "marker" in app.bodies)
    result["marker_received"] = True
    result["step"] = "grace"
    await asyncio.sleep(GRACE)

    result["step"] = "done"
    app.leaving = bob.leaving = True
    await asyncio.gather(app.disconnect(), bob.disconnect())


run.main(scenario)
