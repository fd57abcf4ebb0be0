#!/usr/bin/python3
"""Bookmarks and avatars converted by the server, with slixmpp's
xep_0402 (1.10 only), xep_0048, xep_0049, xep_0223, xep_0084, xep_0054
and xep_0153 plugins.

Usage: slixmpp_bookmarks.py HOST PORT CAFILE JID_A JID_B PASSWORD

Two clients of A log in over STARTTLS trusting CAFILE: "modern" (PEP:
XEP-0402 bookmarks, XEP-0084 avatars) and "legacy" (XEP-0048 in private
storage and in PEP, vCard avatars); B is a contact subscribed to A's
presence (set up by the test), with xep_0153. Then:

  1. modern checks that A's account advertises urn:xmpp:bookmarks:1#compat,
     #compat-pep, urn:xmpp:bookmarks-conversion:0 and
     urn:xmpp:pep-vcard-conversion:0.
  2. modern publishes a XEP-0402 bookmark (the xep_0402 plugin's
     <conference/> when slixmpp has it) with the XEP's publish-options.
  3. legacy reads XEP-0048 bookmarks from private storage (xep_0049) and
     from PEP (xep_0223): the room is in both with its nick and autojoin.
  4. legacy stores a new list in private storage without that room and
     with another: modern gets a retraction notification and the XEP-0402
     items are the new room.
  5. legacy stores a list through PEP (xep_0223): the XEP-0402 items
     follow.
  6. modern publishes an avatar with xep_0084 (data, then metadata) and
     sends presence: B gets the photo hash in A's presence (xep_0153's
     vcard_avatar_update) and, with xep_0054, A's vCard with that PHOTO.
  7. legacy publishes a vCard with another PHOTO (xep_0054): the avatar
     metadata and data in PEP become that photo.

The script prints one JSON object; bookmarks_test.go checks it. The exit
status is 0 unless a step failed ("error").
"""
import asyncio
import base64
import hashlib
import logging
import struct
import sys
import zlib

import slixmpp
from slixmpp.xmlstream import ET

import harness
from harness import connect

HOST, PORT, CAFILE, JID_A, JID_B, PASSWORD = sys.argv[1:7]
STEP_TIMEOUT = 15
TOTAL_TIMEOUT = 80
PUBSUB = "http://jabber.org/protocol/pubsub"
BOOKMARKS = "urn:xmpp:bookmarks:1"
ROOM1 = "council@conference.underhill.org"
ROOM2 = "orchard@chat.shakespeare.lit"
ROOM3 = "balcony@chat.shakespeare.lit"

logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
    version=slixmpp.__version__,
    xep_0402_plugin=False,
    features=[],
    private_rooms={},
    pep48_rooms={},
    items_after_private=[],
    retracted=[],
    items_after_pep48=[],
    avatar_id="",
    b_photo_hash="",
    b_vcard_photo_sha1="",
    vcard_photo_id="",
    metadata_ids=[],
    data_sha1="",
)
result, log, step, until = run.result, run.log, run.step, run.until


def png(w, h, rgb):
    """A w×h PNG of one colour."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xffffffff)
    raw = b"".join(b"\x00" + bytes(rgb) * w for _ in range(h))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0)) +
            chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


class Bot(harness.Client):
    def __init__(self, jid, name, plugins):
        super().__init__(run, jid, PASSWORD, name, CAFILE,
                         plugins=("xep_0030", "xep_0004", "xep_0060", "xep_0115", "xep_0163") + plugins)
        self.photo_hashes = []
        self.retracted = []
        self.add_event_handler("pubsub_retract", self.on_retract)
        self.add_event_handler("vcard_avatar_update", self.on_avatar)

    def on_retract(self, msg):
        items = msg.xml.find("{%s#event}event/{%s#event}items" % (PUBSUB, PUBSUB))
        if items is not None and items.get("node") == BOOKMARKS:
            ids = [r.get("id") for r in items.findall("{%s#event}retract" % PUBSUB)]
            log("%s: retracted %s" % (self.name, ids))
            self.retracted.extend(ids)

    def on_avatar(self, pres):
        h = pres["vcard_temp_update"]["photo"]
        log("%s: avatar hash %r from %s" % (self.name, h, pres["from"]))
        if pres["from"].bare == JID_A:
            self.photo_hashes.append(h)


def bookmark_options(bot):
    form = bot["xep_0004"].make_form(ftype="submit")
    form.add_field(var="FORM_TYPE", ftype="hidden", value=PUBSUB + "#publish-options")
    for var, value in (("pubsub#persist_items", "true"), ("pubsub#max_items", "max"),
                       ("pubsub#send_last_published_item", "never"), ("pubsub#access_model", "whitelist")):
        form.add_field(var=var, value=value)
    return form


def conference_402(bot):
    """A XEP-0402 <conference/>: the plugin's stanza when there is one."""
    if result["xep_0402_plugin"]:
        from slixmpp.plugins.xep_0402.stanza import Conference
        conf = Conference()
        conf["name"] = "Council of Oberon"
        conf["autojoin"] = True
        conf["nick"] = "Puck"
        return conf
    conf = ET.Element("{%s}conference" % BOOKMARKS, name="Council of Oberon", autojoin="true")
    ET.SubElement(conf, "{%s}nick" % BOOKMARKS).text = "Puck"
    return conf


def rooms_of(storage):
    return {c["jid"].bare if hasattr(c["jid"], "bare") else str(c["jid"]):
            {"nick": c["nick"], "autojoin": c["autojoin"], "name": c["name"]} for c in storage["conferences"]}


async def item_ids(bot, node):
    res = await step("items of " + node, bot["xep_0060"].get_items(JID_A, node, timeout=STEP_TIMEOUT))
    return [i.get("id") for i in res.xml.find("{%s}pubsub/{%s}items" % (PUBSUB, PUBSUB))]


async def scenario():
    from slixmpp.plugins.xep_0048 import Bookmarks
    try:
        import slixmpp.plugins.xep_0402  # noqa: F401
        result["xep_0402_plugin"] = True
    except ImportError:
        pass
    modern_plugins = ("xep_0084",) + (("xep_0402",) if result["xep_0402_plugin"] else ())
    modern = Bot(JID_A + "/modern", "modern", modern_plugins)
    legacy = Bot(JID_A + "/legacy", "legacy", ("xep_0048", "xep_0049", "xep_0223", "xep_0054"))
    b = Bot(JID_B + "/pc", "b", ("xep_0054", "xep_0153"))
    for bot in (modern, legacy, b):
        connect(bot, HOST, PORT)
    await step("logins", asyncio.gather(modern.ready, legacy.ready, b.ready))

    # 1. Discovery.
    info = await step("disco#info", modern["xep_0030"].get_info(jid=JID_A, local=False, cached=False, timeout=STEP_TIMEOUT))
    result["features"] = sorted(info["disco_info"]["features"])

    # 2. A XEP-0402 bookmark.
    await step("publish XEP-0402", modern["xep_0060"].publish(JID_A, BOOKMARKS, id=ROOM1, payload=conference_402(modern),
                                                              options=bookmark_options(modern), timeout=STEP_TIMEOUT))
    log("modern: published %s" % ROOM1)

    # 3. Seen as XEP-0048, both ways.
    res = await step("private storage", legacy["xep_0048"].get_bookmarks(method="xep_0049", timeout=STEP_TIMEOUT))
    result["private_rooms"] = rooms_of(res["private"]["bookmarks"])
    res = await step("legacy PEP", legacy["xep_0048"].get_bookmarks(method="xep_0223", timeout=STEP_TIMEOUT))
    result["pep48_rooms"] = rooms_of(res["pubsub"]["items"]["item"]["bookmarks"])

    # 4. A legacy client changes the list in private storage.
    bm = Bookmarks()
    bm.add_conference(ROOM2, "Romeo", name="Orchard", autojoin=True)
    await step("store private", legacy["xep_0048"].set_bookmarks(bm, method="xep_0049", timeout=STEP_TIMEOUT))
    await until("the retraction notification", lambda: ROOM1 in modern.retracted)
    result["retracted"] = modern.retracted
    result["items_after_private"] = await item_ids(modern, BOOKMARKS)

    # 5. And through PEP.
    bm = Bookmarks()
    bm.add_conference(ROOM3, "Juliet", name="Balcony", autojoin=True)
    await step("store in PEP", legacy["xep_0048"].set_bookmarks(bm, method="xep_0223", id="current", timeout=STEP_TIMEOUT))
    result["items_after_pep48"] = await item_ids(modern, BOOKMARKS)

    # 6. A XEP-0084 avatar, seen by B as a vCard avatar.
    img = png(4, 3, (200, 30, 30))
    aid = hashlib.sha1(img).hexdigest()
    result["avatar_id"] = aid
    await step("publish avatar data", modern["xep_0084"].publish_avatar(img, timeout=STEP_TIMEOUT))
    await step("publish avatar metadata", modern["xep_0084"].publish_avatar_metadata(
        items=[{"id": aid, "type": "image/png", "bytes": str(len(img)), "width": "4", "height": "3"}], timeout=STEP_TIMEOUT))
    modern.send_presence(pstatus="new avatar")
    await until("the hash in A's presence", lambda: aid in b.photo_hashes)
    result["b_photo_hash"] = aid
    vc = await step("B gets A's vCard", b["xep_0054"].get_vcard(JID_A, cached=False, timeout=STEP_TIMEOUT))
    data = vc["vcard_temp"]["PHOTO"]["BINVAL"]
    result["b_vcard_photo_sha1"] = hashlib.sha1(data).hexdigest() if data else ""

    # 7. A vCard photo, seen as a XEP-0084 avatar.
    img2 = png(2, 2, (10, 200, 10))
    result["vcard_photo_id"] = hashlib.sha1(img2).hexdigest()
    card = legacy["xep_0054"].make_vcard()
    card["FN"] = "Alice"
    card["PHOTO"]["TYPE"] = "image/png"
    card["PHOTO"]["BINVAL"] = img2
    await step("publish vCard", legacy["xep_0054"].publish_vcard(card, timeout=STEP_TIMEOUT))
    result["metadata_ids"] = await item_ids(modern, "urn:xmpp:avatar:metadata")
    res = await step("avatar data", modern["xep_0084"].retrieve_avatar(JID_A, result["vcard_photo_id"], timeout=STEP_TIMEOUT))
    data_el = res.xml.find("{%s}pubsub/{%s}items/{%s}item/{urn:xmpp:avatar:data}data" % (PUBSUB, PUBSUB, PUBSUB))
    if data_el is not None and data_el.text:
        result["data_sha1"] = hashlib.sha1(base64.b64decode(data_el.text)).hexdigest()

    result["step"] = "done"
    for bot in (modern, legacy, b):
        bot.leave()
    await asyncio.sleep(0.2)


run.main(scenario)
