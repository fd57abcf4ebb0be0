"""What the slixmpp scenario scripts of test/interop share.

Each script drives one feature of ode with slixmpp (Debian's 1.8 or
bookworm-backports' 1.10) and prints one JSON object, which its Go test
reads; its exit status is 0 unless a step failed. This module holds the
parts that are the same in every script:

  run = harness.Run(step_timeout=15, total_timeout=60, jids={})
  result, log, step, until = run.result, run.log, run.step, run.until

  class Bot(harness.Client):
      ...

  run.main(scenario_coroutine)

Run keeps the result (with "events", "error" and "step" added), times each
step and the whole scenario out, and prints the result at the end. Client
is a slixmpp.ClientXMPP over STARTTLS that trusts the test's CA, never
sends a password in the clear, and resolves its ready future once its
session has started (or fails it with the reason).
"""
import asyncio
import inspect
import json
import sys
import time

import slixmpp
from slixmpp.exceptions import IqError, IqTimeout


class StepTimeout(Exception):
    """A step did not finish in time."""


class Run:
    """One scenario's result, log and time limits."""

    def __init__(self, step_timeout=15, total_timeout=60, **fields):
        self.step_timeout = step_timeout
        self.total_timeout = total_timeout
        self.t0 = time.monotonic()
        self.result = {"events": [], "error": "", "step": ""}
        self.result.update(fields)

    def log(self, what):
        """Appends what to the result's events, with the time since the start."""
        self.result["events"].append("%6.3f %s" % (time.monotonic() - self.t0, what))

    async def step(self, what, aw, timeout=None):
        """Awaits aw as the step what, at most timeout (the step timeout) seconds."""
        timeout = timeout or self.step_timeout
        self.result["step"] = what
        try:
            return await asyncio.wait_for(aw, timeout)
        except asyncio.TimeoutError:
            raise StepTimeout("timed out after %ds: %s" % (timeout, what)) from None

    async def until(self, what, pred, timeout=None):
        """Waits until pred() holds, as the step what."""
        timeout = timeout or self.step_timeout
        self.result["step"] = what
        deadline = time.monotonic() + timeout
        while not pred():
            if time.monotonic() > deadline:
                raise StepTimeout("timed out after %ds waiting for %s" % (timeout, what))
            await asyncio.sleep(0.05)

    def main(self, scenario, out=None):
        """Runs the coroutine function scenario within the total timeout,
        records why it failed, prints the result to out (stdout) and
        exits."""
        try:
            asyncio.get_event_loop().run_until_complete(asyncio.wait_for(scenario(), self.total_timeout))
        except StepTimeout as e:
            self.result["error"] = str(e)
        except asyncio.TimeoutError:
            self.result["error"] = "scenario exceeded %ds during step: %s" % (self.total_timeout, self.result["step"])
        except (IqError, IqTimeout) as e:
            self.result["error"] = "%s (step: %s)" % (e, self.result["step"])
        except Exception as e:  # report, then fail
            self.result["error"] = "%s: %s (step: %s)" % (type(e).__name__, e, self.result["step"])
        print(json.dumps(self.result), file=out or sys.stdout, flush=True)
        sys.exit(0 if not self.result["error"] else 1)


def connect(client, host, port):
    """Connects a slixmpp client to host:port with either version's signature."""
    if "address" in inspect.signature(client.connect).parameters:
        client.connect((host, int(port)))  # slixmpp 1.8
    else:
        client.connect(host, int(port))  # slixmpp 1.10


class Client(slixmpp.ClientXMPP):
    """A slixmpp client of the scenario: STARTTLS trusting cafile, the
    plugins named, presence sent when the session starts (unless presence
    is false), and self.ready resolved then; a failure to connect or log in,
    or a disconnection while not self.leaving, fails self.ready."""

    def __init__(self, run, jid, password, name, cafile, plugins=(), presence=True):
        super().__init__(jid, password)
        self.run = run
        self.name = name
        self.presence = presence
        self.ca_certs = cafile
        self.enable_direct_tls = False
        self.enable_starttls = True
        self.enable_plaintext = False
        for p in plugins:
            self.register_plugin(p)
        self.leaving = False
        self.ready = asyncio.get_event_loop().create_future()
        self.add_event_handler("session_start", self._start)
        self.add_event_handler("no_auth", lambda _: self.fail("no SASL mechanism left"))
        self.add_event_handler("connection_failed", lambda e: self.fail("connection failed: %s" % e))
        self.add_event_handler("disconnected", self.on_disconnected)

    def fail(self, why):
        """Logs why and fails self.ready if it is still pending."""
        self.run.log("%s: %s" % (self.name, why))
        if not self.ready.done():
            self.ready.set_exception(RuntimeError("%s: %s" % (self.name, why)))

    def on_disconnected(self, reason):
        if not self.leaving:
            self.fail("disconnected: %s" % reason)

    async def starting(self):
        """Runs once the session has started, before the presence is sent
        and self.ready resolves."""

    async def _start(self, _):
        await self.starting()
        if self.presence:
            self.send_presence()
        self.run.log("%s: session started as %s" % (self.name, self.boundjid.full))
        if not self.ready.done():
            self.ready.set_result(True)

    def run_command(self, to, node, form_type, on_form=None):
        """Runs the XEP-0050 command node of to with the xep_0050 plugin's
        workflow (the client registers xep_0004 and xep_0050); returns a
        future of (the last response, the session). on_form(form) returns
        the values to submit with complete (FORM_TYPE form_type), or None
        to cancel."""
        done = asyncio.get_event_loop().create_future()

        def on_next(iq, session):
            status = iq["command"]["status"]
            self.run.log("%s: %s %s" % (self.name, node.split("#")[-1], status))
            if status == "executing":
                values = on_form(iq["command"]["form"]) if on_form else None
                if values is None:
                    session["next"] = finish
                    session["payload"] = None
                    self["xep_0050"].cancel_command(session)
                    return
                submit = self["xep_0004"].make_form(ftype="submit")
                submit.add_field(var="FORM_TYPE", ftype="hidden", value=form_type)
                for var, value in values.items():
                    submit.add_field(var=var, value=value)
                session["payload"] = submit
                session["next"] = finish
                self["xep_0050"].complete_command(session)
                return
            finish(iq, session)

        def finish(iq, session):
            if not done.done():
                done.set_result((iq, session))

        self["xep_0050"].start_command(to, node, {"next": on_next, "error": finish})
        return done

    def leave(self):
        """Disconnects without counting it as a failure."""
        self.leaving = True
        self.disconnect()
