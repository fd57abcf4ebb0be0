// xmppjs_fast.mjs SERVICE DOMAIN USERNAME PASSWORD
//
// @xmpp/client (xmpp.js) with FAST (XEP-0484): a first client logs in with
// the password over SASL2 (XEP-0388) and Bind2, asking for a token as
// xmpp.js does when the server offers FAST and it holds none, and stops;
// a second client with the same user-agent id and a wrong password logs
// in with the token alone (HT-SHA-256-NONE, xmpp.js's only FAST
// mechanism). SERVICE is wss://… (RFC 7395) or xmpp://host:port (TCP with
// STARTTLS). It prints one JSON object on stdout: what each login sent
// and got; "error" is set when it stopped early. The server's certificate
// is trusted through NODE_EXTRA_CA_CERTS.
import { client, xml } from "@xmpp/client";

const [service, domain, username, password] = process.argv.slice(2);
const res = { events: [], first: {}, second: {}, error: "" };
const log = (s) => res.events.push(`${new Date().toISOString()} ${s}`);
const finish = (code) => process.stdout.write(JSON.stringify(res) + "\n", () => process.exit(code));
const fail = (msg) => {
  res.error ||= msg;
  finish(1);
};
setTimeout(() => fail("timed out"), 30_000).unref();

const userAgent = () =>
  xml("user-agent", { id: "7f0c8a52-3b1e-4d9a-a6c2-5e8b9d0f1a23" }, xml("software", {}, "xmpp.js interop"));

async function login(creds, out, token) {
  const xmpp = client({ service, domain, username, password: creds, resource: "xmppjs", userAgent: userAgent() });
  xmpp.reconnect.stop();
  let saved = null;
  xmpp.fast.saveToken = async (t) => {
    saved = t;
  };
  if (token) xmpp.fast.fetchToken = async () => token;
  xmpp.on("send", (el) => {
    if (!el.is("authenticate", "urn:xmpp:sasl:2")) return;
    out.mech = el.attrs.mechanism;
    out.request_token = el.getChild("request-token", "urn:xmpp:fast:0")?.attrs.mechanism ?? "";
    out.fast = !!el.getChild("fast", "urn:xmpp:fast:0");
    log(`sent <authenticate mechanism='${el.attrs.mechanism}'>`);
  });
  xmpp.on("element", (el) => log(`received <${el.name} xmlns='${el.attrs.xmlns ?? ""}'>`));
  xmpp.on("error", (err) => log(`error: ${err}`));
  const address = await xmpp.start();
  out.jid = address.toString();
  out.token = !!saved;
  out.token_mechanism = saved?.mechanism ?? "";
  await xmpp.stop();
  return saved;
}

try {
  const token = await login(password, res.first, null);
  if (!token) fail("no FAST token after the password login");
  await login("not the password", res.second, token);
  finish(0);
} catch (err) {
  fail(`${err?.stack ?? err}`);
}
