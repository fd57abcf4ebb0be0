// xmppjs_chat.mjs SERVICE DOMAIN USERNAME PASSWORD PEER
//
// @xmpp/client (xmpp.js) logs in over XMPP over WebSocket (RFC 7395) with
// its default negotiation, sends "hello from xmpp.js" to PEER (a full JID),
// waits for a chat message from PEER, sends "hello again from xmpp.js" and
// waits for the server's XEP-0198 acknowledgement of it, then closes the
// stream. It prints one
// JSON object on stdout: what it negotiated (the SASL mechanism it chose,
// stream management), what it received, its events; "error" is set when it
// stopped early. The server's certificate is trusted through
// NODE_EXTRA_CA_CERTS, not by turning verification off.
import { client, xml } from "@xmpp/client";

const [service, domain, username, password, peer] = process.argv.slice(2);
const res = { events: [], mech: "", sasl: "", jid: "", sm: {}, received: null, acked: false, closing: false, server_closed: false, error: "" };
const log = (s) => res.events.push(`${new Date().toISOString()} ${s}`);
let done = false;
const finish = (code) => {
  if (done) return;
  done = true;
  process.stdout.write(JSON.stringify(res) + "\n", () => process.exit(code));
};
const fail = (msg) => {
  res.error ||= msg;
  finish(1);
};
setTimeout(() => fail("timed out"), 30_000).unref();

const xmpp = client({ service, domain, username, password, resource: "xmppjs" });
xmpp.reconnect.stop();

// What the client sends shows its choice: <auth/> (SASL, RFC 6120) or
// <authenticate/> (SASL2, XEP-0388), and <enable/> for stream management.
xmpp.on("send", (el) => {
  if (el.is("auth", "urn:ietf:params:xml:ns:xmpp-sasl")) {
    res.sasl = "sasl";
    res.mech = el.attrs.mechanism;
  } else if (el.is("authenticate", "urn:xmpp:sasl:2")) {
    res.sasl = "sasl2";
    res.mech = el.attrs.mechanism;
    // Bind2 (XEP-0386) carries the <enable/> of stream management.
    const enable = el.getChild("bind", "urn:xmpp:bind:0")?.getChild("enable", "urn:xmpp:sm:3");
    if (enable) {
      res.sm.enable_sent = true;
      res.sm.enable_resume = enable.attrs.resume === "true";
    }
  } else if (el.is("enable", "urn:xmpp:sm:3")) {
    res.sm.enable_sent = true;
    res.sm.enable_resume = el.attrs.resume === "true";
  }
  log(`sent <${el.name} xmlns='${el.attrs.xmlns ?? ""}'>`);
});
xmpp.on("element", (el) => {
  // With Bind2, <enabled/> comes inside SASL2's <success/>.
  if (el.is("success", "urn:xmpp:sasl:2")) el = el.getChild("bound", "urn:xmpp:bind:0")?.getChild("enabled", "urn:xmpp:sm:3") ?? el;
  if (el.is("enabled", "urn:xmpp:sm:3")) {
    res.sm.enabled = true;
    res.sm.resume = el.attrs.resume === "true" || el.attrs.resume === "1";
    res.sm.id_set = !!el.attrs.id;
  }
  log(`received <${el.name} xmlns='${el.attrs.xmlns ?? ""}'>`);
});
xmpp.on("error", (err) => log(`error: ${err}`));
xmpp.on("status", (s) => {
  log(`status ${s}`);
  // "close" follows the server's <close/> (RFC 7395 §3.6), for which
  // xmpp.stop() waits after sending its own.
  if (s === "close" && res.closing) res.server_closed = true;
  if (s === "closing") res.closing = true;
});

// xmpp.js emits "online" after resource binding and enables stream
// management after that: the first message goes out before <enable/>, so
// a second one, sent once <enabled/> is in and the reply has arrived, is
// the one whose acknowledgement the script waits for.
const first = xml("message", { type: "chat", to: peer, id: "xmppjs-1" }, xml("body", {}, "hello from xmpp.js"));
const second = xml("message", { type: "chat", to: peer, id: "xmppjs-2" }, xml("body", {}, "hello again from xmpp.js"));
let secondSent = false;
xmpp.streamManagement.on("ack", (stanza) => {
  log(`acknowledged: message ${stanza.attrs.id}`);
  if (stanza.attrs.id === second.attrs.id) {
    res.acked = true;
    stop();
  }
});

xmpp.on("stanza", (st) => {
  if (!st.is("message") || st.attrs.from !== peer) return;
  const body = st.getChildText("body");
  if (body == null) return;
  res.received = { from: st.attrs.from, to: st.attrs.to, type: st.attrs.type ?? "", body };
  log(`message from ${st.attrs.from}: ${body}`);
  sendSecond();
});
xmpp.on("element", (el) => {
  if (el.is("enabled", "urn:xmpp:sm:3")) setImmediate(sendSecond);
});

async function sendSecond() {
  if (secondSent || !res.received || !xmpp.streamManagement.enabled) return;
  secondSent = true;
  try {
    await xmpp.send(second);
    log("sent the second message");
  } catch (err) {
    fail(`send: ${err}`);
  }
}

async function stop() {
  res.sm.enabled_at_end = xmpp.streamManagement.enabled;
  res.sm.outbound = xmpp.streamManagement.outbound;
  res.sm.inbound = xmpp.streamManagement.inbound;
  try {
    await xmpp.stop();
    log("stopped");
    finish(0);
  } catch (err) {
    fail(`stop: ${err}`);
  }
}

xmpp.on("online", async (address) => {
  res.jid = address.toString();
  log(`online as ${res.jid}`);
  try {
    await xmpp.send(first);
  } catch (err) {
    fail(`send: ${err}`);
  }
});

xmpp.start().catch((err) => fail(`start: ${err?.stack ?? err}`));
