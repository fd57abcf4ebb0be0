#!/usr/bin/python3
"""Service administration (XEP-0133) over ad-hoc commands (XEP-0050),
driven by slixmpp's xep_0050 plugin and its command workflow
(start_command, complete_command, cancel_command with next/error
handlers).

Usage: slixmpp_adhoc.py HOST PORT CAFILE ADMIN_JID USER_JID PASSWORD NEW_JID NEW_PASSWORD

ADMIN_JID is in [server] admins, USER_JID is not; both have PASSWORD.
Each logs in over STARTTLS trusting CAFILE. Then:

  1. The admin lists the commands (get_commands): the XEP-0133 nodes.
     The user's list is empty.
  2. The user starts add-user: the error handler gets forbidden.
  3. The admin starts add-user and cancels at the form: status canceled.
  4. The admin starts add-user, fills in the form it got (accountjid,
     password, password-verify) and completes: status completed with an
     info note.
  5. NEW_JID logs in with NEW_PASSWORD.
  6. The admin runs get-online-users-num (no form): the result form's
     onlineusersnum.

The script prints one JSON object; adhoc_test.go checks it. The exit
status is 0 unless a step failed ("error").
"""
import asyncio
import logging
import sys

import slixmpp

import harness
from harness import connect

HOST, PORT, CAFILE, ADMIN, USER, PASSWORD, NEW, NEW_PASSWORD = sys.argv[1:9]
DOMAIN = ADMIN.split("@", 1)[1]
ADMIN_NS = "http://jabber.org/protocol/admin"
STEP_TIMEOUT = 15
TOTAL_TIMEOUT = 80

logging.basicConfig(level=logging.ERROR)
run = harness.Run(
    step_timeout=STEP_TIMEOUT, total_timeout=TOTAL_TIMEOUT,
    version=slixmpp.__version__,
    admin_nodes=[],
    user_nodes=[],
    user_error="",
    cancel_status="",
    form_fields=[],
    form_type="",
    add_status="",
    add_note="",
    new_login=False,
    online_num="",
)
result, log, step, until = run.result, run.log, run.step, run.until


class Bot(harness.Client):
    def __init__(self, jid, password, name):
        super().__init__(run, jid, password, name, CAFILE, plugins=("xep_0030", "xep_0004", "xep_0050"))


async def scenario():
    admin = Bot(ADMIN + "/gajim", PASSWORD, "admin")
    user = Bot(USER + "/psi", PASSWORD, "user")
    bots = [admin, user]
    for bot in bots:
        connect(bot, HOST, PORT)
    await step("logins", asyncio.gather(admin.ready, user.ready))

    # 1. The command lists.
    res = await step("admin's commands", admin["xep_0050"].get_commands(DOMAIN, timeout=STEP_TIMEOUT))
    result["admin_nodes"] = sorted(item[1] for item in res["disco_items"]["items"])
    res = await step("user's commands", user["xep_0050"].get_commands(DOMAIN, timeout=STEP_TIMEOUT))
    result["user_nodes"] = sorted(item[1] for item in res["disco_items"]["items"])

    # 2. Not for the user.
    iq, _ = await step("user's add-user", user.run_command(DOMAIN, ADMIN_NS + "#add-user", ADMIN_NS))
    result["user_error"] = iq["error"]["condition"] if iq["type"] == "error" else "none: " + str(iq)

    # 3. Cancel at the form.
    iq, _ = await step("canceled add-user", admin.run_command(DOMAIN, ADMIN_NS + "#add-user", ADMIN_NS, lambda form: None))
    result["cancel_status"] = iq["command"]["status"]

    # 4. Add a user.
    def fill(form):
        result["form_fields"] = sorted(form.get_fields().keys())
        ft = form.get_fields()["FORM_TYPE"].get_value()  # a list for a hidden field in slixmpp
        result["form_type"] = ft[0] if isinstance(ft, list) and ft else ft
        return {"accountjid": NEW, "password": NEW_PASSWORD, "password-verify": NEW_PASSWORD}
    iq, _ = await step("add-user", admin.run_command(DOMAIN, ADMIN_NS + "#add-user", ADMIN_NS, fill))
    if iq["type"] == "error":
        raise RuntimeError("add-user: error %s" % iq["error"]["condition"])
    result["add_status"] = iq["command"]["status"]
    notes = iq["command"]["notes"]
    result["add_note"] = "%s: %s" % notes[0] if notes else ""

    # 5. The new user logs in.
    new = Bot(NEW + "/phone", NEW_PASSWORD, "new")
    bots.append(new)
    connect(new, HOST, PORT)
    await step("new user's login", new.ready)
    result["new_login"] = True

    # 6. A command without a form.
    iq, _ = await step("get-online-users-num", admin.run_command(DOMAIN, ADMIN_NS + "#get-online-users-num", ADMIN_NS))
    result["online_num"] = iq["command"]["form"].get_fields()["onlineusersnum"].get_value()

    result["step"] = "done"
    for bot in bots:
        bot.leave()
    await asyncio.sleep(0.2)


run.main(scenario)
