// converse_chat.mjs PAGE_URL PEER_JID SPKI_HASH USER_DATA_DIR SCREENSHOT
//
// Drives Converse.js (converse.html, served by the Go test at PAGE_URL) in
// Debian's headless Chromium with playwright-core. Chromium trusts ode's
// test certificate through an SPKI pin (--ignore-certificate-errors-spki-list
// with SPKI_HASH, base64 SHA-256 of the certificate's public key), not by
// ignoring certificate errors in general. Requests to any host other than
// the page's and ode's are aborted and reported: Converse must work offline.
//
// Converse logs in (auto_login); the script prints {"event":"online","jid":…}
// as one JSON line, for the Go test's client PEER_JID to send it
// "hello from Go". It waits for PEER_JID with an unread message in the
// roster, opens the chat by clicking it, waits for the message in the
// chat, types "hello from Converse" into the chat's textarea and presses
// Enter, waits for it in the chat, prints {"event":"sent"} and waits for a
// line on stdin from the Go test (what its client got), takes a screenshot
// to SCREENSHOT, logs out and prints {"event":"result",…}: what the DOM
// showed, the SASL mechanism, stream management and the stream's end seen
// on the wire (WebSocket frames or BOSH bodies), and errors.
import { createInterface } from "node:readline";
import { chromium } from "playwright-core";

const [pageURL, peer, spki, userDataDir, screenshot] = process.argv.slice(2);
const res = {
  event: "result", jid: "", mech: "", sm_offered: false, sm_enable: false, sm_enabled: false, sm_resume: false,
  transport: "", unread_badge: "", received_in_dom: false, sent_in_dom: false, peer_ack: "", close_sent: false, close_received: false, logout_ms: 0, chat_heading: "", chat_text: "",
  screenshot: "", blocked: [], page_errors: [], events: [], error: "",
};
const log = (s) => res.events.push(`${new Date().toISOString()} ${s}`);
const emit = (o) => process.stdout.write(JSON.stringify(o) + "\n");

// scan notes what the client and the server said that the test asserts.
function scan(dir, text) {
  if (typeof text !== "string") return;
  const closing = /<close\b[^>]*urn:ietf:params:xml:ns:xmpp-framing/.test(text) ||
    /<body\b[^>]*\btype=["']terminate["']/.test(text);
  if (dir === "sent") {
    if (closing) { res.close_sent = true; log("sent the stream's end (<close/> or a terminate <body/>)"); }
    const m = text.match(/<auth\b[^>]*\bmechanism=["']([^"']+)["']/);
    if (m) { res.mech = m[1]; log(`sent <auth mechanism='${m[1]}'>`); }
    if (/<enable\b[^>]*urn:xmpp:sm:3/.test(text)) { res.sm_enable = true; log("sent <enable/> (XEP-0198)"); }
  } else {
    if (closing) { res.close_received = true; log(`received the stream's end: ${text.slice(0, 200)}`); }
    if (/<sm\b[^>]*urn:xmpp:sm:3/.test(text)) res.sm_offered = true;
    const m = text.match(/<enabled\b[^>]*>/);
    if (m && m[0].includes("urn:xmpp:sm:3")) {
      res.sm_enabled = true;
      res.sm_resume = /\bresume=["'](true|1)["']/.test(m[0]);
      log(`received ${m[0]}`);
    }
    if (/<failure\b/.test(text)) log(`received a failure: ${text.slice(0, 300)}`);
  }
}

const allowed = new Set([new URL(pageURL).host]);
const q = new URL(pageURL).searchParams;
for (const k of ["websocket_url", "bosh_service_url"]) {
  if (q.get(k)) { allowed.add(new URL(q.get(k)).host); res.transport = k === "websocket_url" ? "websocket" : "bosh"; }
}

let context;
async function main() {
  context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: "/usr/bin/chromium",
    headless: true,
    viewport: { width: 1280, height: 800 },
    args: [
      "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      `--ignore-certificate-errors-spki-list=${spki}`,
    ],
  });
  await context.route("**/*", (route) => {
    const u = new URL(route.request().url());
    if (allowed.has(u.host) || u.protocol === "data:" || u.protocol === "blob:") return route.continue();
    res.blocked.push({ url: u.href, type: route.request().resourceType() });
    return route.abort();
  });
  const page = context.pages()[0] ?? (await context.newPage());
  page.on("console", (m) => {
    if (["error", "warning"].includes(m.type())) log(`console.${m.type()}: ${m.text().slice(0, 300)}`);
  });
  page.on("pageerror", (e) => res.page_errors.push(String(e).slice(0, 300)));
  page.on("requestfailed", (r) => log(`request failed: ${r.url()} ${r.failure()?.errorText}`));
  page.on("websocket", (ws) => {
    log(`websocket ${ws.url()}`);
    ws.on("framesent", (f) => scan("sent", f.payload));
    ws.on("framereceived", (f) => scan("received", f.payload));
    ws.on("socketerror", (e) => log(`websocket error: ${e}`));
  });
  page.on("request", (r) => { if (r.url().includes("/http-bind")) scan("sent", r.postData()); });
  page.on("response", async (r) => {
    if (!r.url().includes("/http-bind")) return;
    try { scan("received", await r.text()); } catch {}
  });

  await page.goto(pageURL);
  await page.waitForFunction(() => window.odeTest?.connected && window.odeTest?.ready, null, { timeout: 20_000 })
    .catch(async (e) => { throw new Error(`Converse did not log in: ${e.message}; page: ${JSON.stringify(await pageState(page))}`); });
  res.jid = await page.evaluate(() => window.odeTest.jid);
  log(`online as ${res.jid}`);
  emit({ event: "online", jid: res.jid });

  // In fullscreen, a message from someone not in the roster opens no chat:
  // its sender shows with an unread count under "New messages", where a
  // user clicks it.
  const unread = page.locator("a.open-chat.unread-msgs", { hasText: peer }).first();
  await unread.waitFor({ state: "visible", timeout: 20_000 })
    .catch(async (e) => { throw new Error(`no unread message from ${peer} in the roster: ${e.message}; page: ${JSON.stringify(await pageState(page))}`); });
  res.unread_badge = (await unread.locator(".msgs-indicator").innerText().catch(() => "")).trim();
  log(`${peer} shows with ${res.unread_badge} unread; opening the chat`);
  await unread.click();

  const received = page.locator(".chat-msg__text", { hasText: "hello from Go" });
  await received.first().waitFor({ state: "visible", timeout: 20_000 })
    .catch(async (e) => { throw new Error(`"hello from Go" not shown: ${e.message}; page: ${JSON.stringify(await pageState(page))}`); });
  res.received_in_dom = true;
  log("\"hello from Go\" is shown");

  const textarea = page.locator("converse-chat textarea.chat-textarea").first();
  await textarea.click({ timeout: 10_000 });
  await page.keyboard.type("hello from Converse");
  await page.keyboard.press("Enter");
  await page.locator(".chat-msg__text", { hasText: "hello from Converse" }).first().waitFor({ state: "visible", timeout: 10_000 });
  res.sent_in_dom = true;
  log("\"hello from Converse\" is shown");
  // Converse shows a message before its transport has carried it (over
  // BOSH, the next request does): the browser stays until the Go client
  // says on stdin that it has the message, or 20 s have passed.
  emit({ event: "sent" });
  res.peer_ack = await peerLine(20_000);
  log(`the Go client says: ${res.peer_ack}`);

  res.chat_heading = (await page.locator("converse-chat .chatbox-title__text").first().innerText().catch(() => "")).trim();
  res.chat_text = (await page.locator("converse-chat .chat-content").first().innerText().catch(() => "")).trim();
  await page.screenshot({ path: screenshot });
  res.screenshot = screenshot;

  // Log out as a user would: the client ends the stream (<close/>, or a
  // terminate <body/>) and the server answers in kind.
  const t0 = Date.now();
  await Promise.race([
    page.evaluate(() => window.odeTest.logout()),
    new Promise((_, reject) => setTimeout(() => reject(new Error("logout took over 10 s")), 10_000)),
  ]);
  res.logout_ms = Date.now() - t0;
  res.events.push(...(await page.evaluate(() => window.odeTest.events)));
}

const stdin = createInterface({ input: process.stdin });
const stdinLines = [];
let stdinWaiter = null;
stdin.on("line", (l) => { stdinLines.push(l); stdinWaiter?.(); });
function peerLine(timeout) {
  return new Promise((resolve) => {
    const take = () => { clearTimeout(t); stdinWaiter = null; resolve(stdinLines.shift()); };
    const t = setTimeout(() => { stdinWaiter = null; resolve("(nothing within 20 s)"); }, timeout);
    if (stdinLines.length) take(); else stdinWaiter = take;
  });
}

async function pageState(page) {
  return page.evaluate(() => ({
    odeTest: window.odeTest,
    body: document.body.innerText.slice(0, 500),
  })).catch((e) => String(e));
}

const timer = setTimeout(() => { res.error ||= "timed out"; done(1); }, 50_000);
let finished = false;
async function done(code) {
  if (finished) return;
  finished = true;
  clearTimeout(timer);
  await context?.close().catch(() => {});
  emit(res);
  process.exit(code);
}
main().then(() => done(0), (e) => { res.error = String(e?.message ?? e); done(1); });
