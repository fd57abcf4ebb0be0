#!/usr/bin/python3
"""OMEMO keys over PEP (XEP-0163, XEP-0060) with slixmpp's xep_0060,
xep_0115 and xep_0163 plugins.

Usage: slixmpp_pep.py HOST PORT CAFILE JID_A JID_B JID_E PASSWORD DEVICE

A (the publisher), B (a contact subscribed to A's presence, set up by the
test) and E (a stranger) log in over STARTTLS trusting CAFILE. B marks an
interest in A's device lists (xep_0163 add_interest: the
eu.siacs.conversations.axolotl.devicelist+notify and
urn:xmpp:omemo:2:devices+notify features in its XEP-0115 caps) before
its presence goes out. Then:

  1. A checks that its account's disco#info has the identity pubsub/pep
     and the publish-options feature.
  2. A publishes its legacy OMEMO device list (item 'current', device
     DEVICE) and its bundle (node ...bundles:DEVICE), and its OMEMO 2
     device list, each with publish-options pubsub#access_model=open as
     Conversations does.
  3. B gets the device list notifications (pubsub_publish events).
  4. E, with no subscription, fetches A's bundle and both device lists
     with xep_0060 get_items, and is refused A's geoloc node (access
     model presence: an error).
  5. A publishes the same device list with publish-options
     access_model=whitelist: the node is open, so the publish fails with
     conflict and precondition-not-met.

The script prints one JSON object; pep_test.go checks it. The exit
status is 0 unless a step failed ("error").
"""
import asyncio
import logging
import sys

import slixmpp
from slixmpp.exceptions import IqError
from slixmpp.xmlstream import ET

import harness
from harness import connect

HOST, PORT, CAFILE, JID_A, JID_B, JID_E, PASSWORD, DEVICE = sys.argv[1:9]
STEP_TIMEOUT = 15
TOTAL_TIMEOUT = 80
AXOLOTL = "eu.siacs.conversations.axolotl"
DEVICELIST = AXOLOTL + ".devicelist"
BUNDLE = AXOLOTL + ".bundles:" + DEVICE
OMEMO2 = "urn:xmpp:omemo:2"
OMEMO2_DEVICES = OMEMO2 + ":devices"
GEOLOC = "http://jabber.org/protocol/geoloc"
PUBSUB = "http://jabber.org/protocol/pubsub"

logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
    version=slixmpp.__version__,
    identities=[],
    features=[],
    published={},
    b_events=[],
    e_items={},
    e_geoloc_error="",
    whitelist_error="",
    whitelist_app_error="",
)
result, log, step, until = run.result, run.log, run.step, run.until


class Bot(harness.Client):
    def __init__(self, jid, name, interests=()):
        super().__init__(run, jid, PASSWORD, name, CAFILE,
                         plugins=("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163"))
        self.interests = interests
        self.add_event_handler("pubsub_publish", self.on_publish)

    async def starting(self):
        for ns in self.interests:
            self["xep_0163"].add_interest(ns)
        if self.interests:
            # add_interest updates the caps on the loop: let it.
            await self["xep_0115"].update_caps(broadcast=False)

    def on_publish(self, msg):
        items = msg.xml.find("{%s#event}event/{%s#event}items" % (PUBSUB, PUBSUB))
        node = items.get("node") if items is not None else ""
        ids = [i.get("id") for i in items] if items is not None else []
        log("%s: notification from %s, node %s, items %s" % (self.name, msg["from"], node, ids))
        if self.name == "b":
            result["b_events"].append({"from": msg["from"].full, "to": msg["to"].full, "type": msg["type"],
                                       "node": node, "ids": ids,
                                       "payload": ET.tostring(items[0][0], encoding="unicode") if ids and len(items[0]) else ""})


def open_options(bot, model="open"):
    form = bot["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=PUBSUB + "#publish-options")
    form.add_field(var="pubsub#access_model", value=model)
    return form


def devicelist():
    lst = ET.Element("{%s}list" % AXOLOTL)
    ET.SubElement(lst, "{%s}device" % AXOLOTL, id=DEVICE)
    return lst


def bundle():
    b = ET.Element("{%s}bundle" % AXOLOTL)
    spk = ET.SubElement(b, "{%s}signedPreKeyPublic" % AXOLOTL, signedPreKeyId="1")
    spk.text = "BXN0YW5kLWluLWtleQ=="
    ET.SubElement(b, "{%s}signedPreKeySignature" % AXOLOTL).text = "c2lnbmF0dXJl"
    ET.SubElement(b, "{%s}identityKey" % AXOLOTL).text = "aWRlbnRpdHk="
    pks = ET.SubElement(b, "{%s}prekeys" % AXOLOTL)
    ET.SubElement(pks, "{%s}preKeyPublic" % AXOLOTL, preKeyId="1").text = "cHJla2V5"
    return b


def omemo2_devices():
    d = ET.Element("{%s}devices" % OMEMO2)
    ET.SubElement(d, "{%s}device" % OMEMO2, id=DEVICE)
    return d


async def scenario():
    a = Bot(JID_A, "a")
    b = Bot(JID_B, "b", interests=(DEVICELIST, OMEMO2_DEVICES))
    e = Bot(JID_E, "e")
    for bot in (a, b, e):
        connect(bot, HOST, PORT)
    await step("logins", asyncio.gather(a.ready, b.ready, e.ready))
    # b's presence (with its caps) reached a's account, whose server asks
    # b's client for its disco#info. Whether that is done before a
    # publishes or after, b gets the device lists: as notifications, or
    # as the last items once its caps are known.

    info = await step("disco#info", a["xep_0030"].get_info(jid=a.boundjid.bare, local=False, cached=False, timeout=STEP_TIMEOUT))
    result["identities"] = ["%s/%s" % (i[0], i[1]) for i in info["disco_info"]["identities"]]
    result["features"] = sorted(info["disco_info"]["features"])

    for node, payload in ((DEVICELIST, devicelist()), (BUNDLE, bundle()), (OMEMO2_DEVICES, omemo2_devices())):
        res = await step("publish " + node, a["xep_0060"].publish(a.boundjid.bare, node, id="current", payload=payload,
                                                                   options=open_options(a), timeout=STEP_TIMEOUT))
        result["published"][node] = res["pubsub"]["publish"]["item"]["id"]
        log("a: published %s" % node)

    await until("b's device list notifications", lambda: {ev["node"] for ev in result["b_events"]} >= {DEVICELIST, OMEMO2_DEVICES})

    for node in (BUNDLE, DEVICELIST, OMEMO2_DEVICES):
        res = await step("e fetches " + node, e["xep_0060"].get_items(a.boundjid.bare, node, timeout=STEP_TIMEOUT))
        items = res.xml.find("{%s}pubsub/{%s}items" % (PUBSUB, PUBSUB))
        result["e_items"][node] = [{"id": i.get("id"), "payload": ET.tostring(i[0], encoding="unicode") if len(i) else ""} for i in items]
    try:
        await step("e fetches geoloc", e["xep_0060"].get_items(a.boundjid.bare, GEOLOC, timeout=STEP_TIMEOUT))
        result["e_geoloc_error"] = "none"
    except IqError as err:
        result["e_geoloc_error"] = err.iq["error"]["condition"]

    try:
        await step("publish with whitelist options", a["xep_0060"].publish(
            a.boundjid.bare, DEVICELIST, id="current", payload=devicelist(), options=open_options(a, "whitelist"), timeout=STEP_TIMEOUT))
        result["whitelist_error"] = "none"
    except IqError as err:
        result["whitelist_error"] = err.iq["error"]["condition"]
        app = [c.tag for c in err.iq.xml.find("{jabber:client}error") if c.tag.startswith("{%s#errors}" % PUBSUB)]
        result["whitelist_app_error"] = app[0].split("}")[1] if app else ""
    result["step"] = "done"
    for bot in (a, b, e):
        bot.leave()
    await asyncio.sleep(0.2)


run.main(scenario)
