// The player's whole journey through the portal in headless Chromium, on `fctf --role all`.
//
// Starts the built binary with a temporary data directory and free ports (portal on
// `localhost`, gateway on its default public host `127.0.0.1`, TLS with a self-signed test
// certificate when openssl is present), seeds the event through the admin API, then plays:
// register, (organizer verifies), log in, create a team, solve a static challenge, unlock a
// hint, start an instance (local runtime: a python HTTP server), use the connection info shown
// (TCP with node's net and tls, the HTTP link in a tab), stop it, and find the team on the
// scoreboard and its graph. Every page is screenshotted at 1366x768 and 390x844 into
// ./screenshots.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { connect as connectTcp } from "node:net";
import { connect as connectTls } from "node:tls";
import { DESKTOP, PHONE, shots, sleep, launchChromium, startFctf } from "./support.mjs";

const SECRET_PAGE = "fctf-browser-journey-instance-page-4242";
const PASSWORD = "Passw0rd!x";
// The laptop defaults: the portal at `localhost`, the gateway at `127.0.0.1` (gateway.public_host
// left at its default), two host names of this machine, so the gateway's cookie never touches
// the portal's.
const PORTAL_HOST = "localhost";
const GATEWAY_HOST = "127.0.0.1";

// A self-signed certificate for the gateway (TLS on both ports), made with the openssl command
// line; without openssl the journey runs without TLS.
function testCertificate(dir) {
  const cert = join(dir, "gateway.crt");
  const key = join(dir, "gateway.key");
  try {
    execFileSync("openssl", ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
      "-keyout", key, "-out", cert, "-days", "2", "-subj", "/CN=fctf browser test",
      "-addext", `subjectAltName=IP:${GATEWAY_HOST},DNS:localhost`], { stdio: "pipe" });
  } catch (error) {
    console.log(`# no openssl (${error.message.split("\n")[0]}): the gateway runs without TLS`);
    return null;
  }
  return { cert, key, pem: readFileSync(cert) };
}

// Plays the TCP access shown in the portal: connect, answer the token prompt, and speak HTTP
// to the instance through the pipe. Returns everything received.
async function tcpSession(open, token) {
  const socket = await new Promise((ok, fail) => {
    const stream = open(() => ok(stream));
    stream.once("error", fail);
  });
  let received = "";
  socket.setEncoding("utf8");
  socket.on("data", (chunk) => { received += chunk; });
  socket.on("error", () => {});
  const waitFor = async (pattern, what) => {
    const deadline = Date.now() + 15_000;
    while (!pattern.test(received)) {
      assert.ok(Date.now() < deadline, `no ${what} over TCP; received: ${JSON.stringify(received)}`);
      await sleep(50);
    }
  };
  try {
    await waitFor(/enter your token/i, "token prompt");
    socket.write(`${token}\n`);
    await waitFor(/Access Granted! Connecting to challenge\.\.\.\n/, "access grant");
    socket.write("GET / HTTP/1.0\r\nHost: instance\r\n\r\n");
    await waitFor(new RegExp(SECRET_PAGE), "challenge page");
  } finally {
    socket.destroy();
  }
  return received;
}

let fctf;
let base;
let browser;
let page;
let ports;
let tls;

const admin = (method, path, body) => fctf.admin(method, path, body);

async function shoot(name, target = page) {
  await target.waitForLoadState("load");
  await target.setViewportSize(DESKTOP);
  await target.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: true });
  await target.setViewportSize(PHONE);
  await target.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
  await target.setViewportSize(DESKTOP);
}

async function flashText(target = page) {
  const flash = target.locator(".flash").first();
  return (await flash.count()) ? (await flash.textContent()).trim() : "";
}

let staticId;
let instanceId;
let hintId;
let inviteCode;
let affiliationField;

describe("player portal journey", { timeout: 300_000 }, () => {
  before(async () => {
    let certificate = null;
    fctf = await startFctf({
      prefix: "fctf-browser-",
      env: ({ dataDir, ports }) => {
        certificate = testCertificate(dataDir);
        return {
          FCTF_API__PUBLIC_URL: `http://${PORTAL_HOST}:${ports.api}`,
          ...(certificate ? { FCTF_GATEWAY__TLS_CERT_FILE: certificate.cert, FCTF_GATEWAY__TLS_KEY_FILE: certificate.key } : {}),
        };
      },
    });
    tls = certificate;
    ports = fctf.ports;
    base = `http://${PORTAL_HOST}:${ports.api}`;
    const site = join(fctf.dataDir, "site");
    mkdirSync(site);
    writeFileSync(join(site, "index.html"), `<!doctype html><title>instance</title><h1>${SECRET_PAGE}</h1>`);

    const now = Math.floor(Date.now() / 1000);
    await admin("PATCH", "/api/v1/configs", {
      ctf_name: "Browser CTF",
      start: String(now - 3600),
      end: String(now + 2 * 86400 + 3 * 3600 + 30),
      ctf_description: "Welcome to **Browser CTF**. Read the [rules](https://example.org/rules).",
      contestant_registration_enabled: "true",
      team_self_service: "true",
      challenge_difficulty_visibility: "enabled",
    });
    const affiliation = await admin("POST", "/api/v1/configs/fields", { name: "Affiliation", type: "user", field_type: "text", required: true, description: "School or company" });
    affiliationField = affiliation.data.id;
    const warmup = await admin("POST", "/api/v1/challenges", {
      name: "Warmup",
      category: "misc",
      value: 100,
      type: "standard",
      state: "visible",
      description: "# Warm up\n\nThe flag is `flag{hello}`.\n\n<script>window.pwned = 1</script>\n\n[bad](javascript:alert(1))",
    });
    staticId = warmup.data.id;
    await admin("POST", "/api/v1/flags", { challenge: staticId, content: "flag{hello}", type: "static" });
    const web = await admin("POST", "/api/v1/challenges", {
      name: "Web server",
      category: "web",
      value: 200,
      type: "standard",
      state: "visible",
      description: "Start your instance and read its page.",
      require_deploy: true,
      connection_protocol: "http",
      time_limit: 30,
      difficulty: 2,
      max_deploy_count: 3,
      deploy_command: `cd '${site}' && exec python3 -m http.server "$PORT" --bind 127.0.0.1`,
    });
    instanceId = web.data.id;
    await admin("POST", "/api/v1/flags", { challenge: instanceId, content: "flag{web}", type: "static" });
    const hint = await admin("POST", "/api/v1/hints", { challenge: instanceId, content: "Look at **the page**.", cost: 10 });
    hintId = hint.data.id;

    browser = await launchChromium();
    // The gateway's certificate is self-signed.
    const context = await browser.newContext({ viewport: DESKTOP, ignoreHTTPSErrors: true });
    page = await context.newPage();
    page.on("dialog", (dialog) => dialog.accept());
  });

  after(async () => {
    if (browser) await browser.close();
    if (fctf) await fctf.stop();
  });

  it("shows the home page and guards private pages", async () => {
    assert.match(fctf.log, new RegExp(`gateway http  : ${tls ? "https" : "http"}://${GATEWAY_HOST}:${ports.http}/`));
    assert.doesNotMatch(fctf.log, /public host .* is the portal's/);
    await page.goto(base + "/");
    assert.match(await page.title(), /Browser CTF/);
    assert.equal(await page.locator("main strong", { hasText: "Browser CTF" }).count(), 1);
    assert.match(await page.locator(".schedule").textContent(), /^Ends in 2 d 3 h \(\d{4}-\d\d-\d\d \d\d:\d\d UTC\)$/);
    await shoot("home");
    await page.goto(base + "/challenges");
    assert.match(page.url(), /\/login\?next=%2Fchallenges$/);
    await shoot("login");
  });

  it("registers, and logs in once an organizer verified the account", async () => {
    await page.goto(base + "/register");
    await shoot("register");
    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=email]", "alice@example.org");
    await page.fill("input[name=password]", PASSWORD);
    await page.fill("input[name=confirm]", PASSWORD);
    assert.match(await page.locator("form[action='/register']").textContent(), /Affiliation \*[\s\S]*School or company/);
    await page.fill(`input[name=field_${affiliationField}]`, "Rocket School");
    await page.click("form[action='/register'] button[type=submit]");
    assert.match(page.url(), /\/login$/);
    assert.match(await flashText(), /Registration submitted/);

    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", PASSWORD);
    await page.click("form[action='/login'] button[type=submit]");
    assert.match(await flashText(), /not verified/);

    const users = await admin("GET", "/api/v1/users");
    const alice = users.data.find((user) => user.name === "alice");
    assert.ok(alice, JSON.stringify(users));
    await admin("PATCH", `/api/v1/users/${alice.id}`, { verified: true });

    await page.fill("input[name=username]", "alice");
    await page.fill("input[name=password]", PASSWORD);
    await page.click("form[action='/login'] button[type=submit]");
    assert.match(page.url(), /\/team$/);
    const cookies = await page.context().cookies();
    const session = cookies.find((cookie) => cookie.name === "fctf_session");
    assert.ok(session && session.httpOnly && session.sameSite === "Lax", JSON.stringify(cookies));
  });

  it("creates a team", async () => {
    await shoot("team-new");
    await page.fill("form[action='/team/create'] input[name=name]", "Rockets");
    await page.click("form[action='/team/create'] button[type=submit]");
    const created = await flashText();
    assert.match(created, /Team Rockets created\. Invite code/);
    inviteCode = created.split(": ").pop().trim();
    assert.equal((await page.locator("h1").textContent()).trim(), "Rockets");
  });

  it("solves the static challenge with a visible verdict", async () => {
    await page.goto(base + "/challenges");
    await shoot("board");
    await page.click(`a.tile[href='/challenges/${staticId}']`);
    assert.equal(await page.locator(".description script").count(), 0);
    assert.equal(await page.evaluate(() => window.pwned), undefined);
    assert.equal(await page.locator(".description a[href^='javascript']").count(), 0);
    await page.fill("input[name=flag]", "flag{nope}");
    await page.click("#flag button[type=submit]");
    assert.match(await flashText(), /Incorrect/);
    await shoot("challenge-static");
    await page.fill("input[name=flag]", "flag{hello}");
    await page.click("#flag button[type=submit]");
    assert.match(await flashText(), /Correct! \+100 points/);
    assert.equal(await page.locator(".badge.ok", { hasText: "Solved" }).count(), 1);
    await page.goto(base + "/challenges");
    assert.equal(await page.locator(`a.tile.solved[href='/challenges/${staticId}']`).count(), 1);
  });

  it("unlocks a hint after confirming its cost", async () => {
    await page.goto(`${base}/challenges/${instanceId}`);
    await page.click(`a[href='/challenges/${instanceId}/hints/${hintId}']`);
    assert.match(await page.locator("main").textContent(), /costs your team 10 points/);
    await shoot("hint-confirm");
    await page.click("main form button[type=submit]");
    assert.match(await flashText(), /Hint unlocked/);
    assert.equal((await page.locator(`#hint-${hintId} strong`).textContent()).trim(), "the page");
  });

  it("starts an instance, opens it through the gateway and stops it", async () => {
    await page.goto(`${base}/challenges/${instanceId}`);
    await page.click("form[action$='/start'] button");
    const deadline = Date.now() + 90_000;
    while ((await page.locator("#instance .open-instance").count()) === 0) {
      assert.ok(Date.now() < deadline, `instance never ran: ${await page.locator("#instance").textContent()}\n${fctf.log}`);
      await sleep(1000);
      await page.goto(`${base}/challenges/${instanceId}`);
    }
    assert.equal((await page.locator("#instance-state").textContent()).trim(), "Running");
    assert.ok(Number(await page.locator("#instance .countdown").getAttribute("data-seconds")) > 60);
    assert.deepEqual((await page.locator(".meta .badge").allTextContents()).map((text) => text.trim()),
      ["Difficulty 2/5", "Instance lifetime 30 min", "2 of 3 instance starts left"]);

    // Connection info as shown: the HTTP link with the token on the gateway's own host name,
    // `nc <host> <port>`, the token, and the TLS command when the gateway has a certificate.
    const token = (await page.locator("#instance .conn-token").textContent()).trim();
    assert.ok(token.length > 20, token);
    const link = await page.locator("#instance .open-instance").getAttribute("href");
    const scheme = tls ? "https" : "http";
    assert.equal(link, `${scheme}://${GATEWAY_HOST}:${ports.http}/?fctftoken=${encodeURIComponent(token)}`);
    assert.equal((await page.locator("#instance .conn-link").textContent()).trim(), link);
    assert.notEqual(new URL(link).hostname, new URL(base).hostname, "the gateway must not share the portal's host name");
    const nc = page.locator("#instance .conn-nc");
    const host = await nc.getAttribute("data-host");
    const port = Number(await nc.getAttribute("data-port"));
    assert.deepEqual([host, port], [GATEWAY_HOST, ports.tcp]);
    assert.equal((await nc.textContent()).trim(), `nc ${host} ${port}`);
    if (tls) {
      assert.equal((await page.locator("#instance .conn-tls").textContent()).trim(), `openssl s_client -quiet -connect ${host}:${port}`);
    } else {
      assert.equal(await page.locator("#instance .conn-tls").count(), 0);
    }
    await page.locator("#instance .copy").first().waitFor();
    await shoot("challenge-instance");
    await page.goto(base + "/challenges");
    assert.match(await page.locator(`a.tile[href='/challenges/${instanceId}']`).textContent(), /Instance: Running/);
    await shoot("board-instance");
    await page.goto(`${base}/challenges/${instanceId}`);

    // The TCP line works as shown: plaintext (what `nc` does), and TLS with the certificate.
    const plain = await tcpSession((ready) => connectTcp({ host, port }, ready), token);
    assert.match(plain, /Please enter your token/);
    if (tls) {
      const secured = await tcpSession((ready) => connectTls({ host, port, ca: tls.pem }, ready), token);
      assert.match(secured, /Access Granted! Connecting to challenge\.\.\./);
    }
    const refused = await new Promise((ok) => {
      const socket = connectTcp({ host, port }, () => socket.write("not-a-token\n"));
      let text = "";
      socket.setEncoding("utf8");
      socket.on("data", (chunk) => { text += chunk; });
      socket.on("close", () => ok(text));
      socket.on("error", () => ok(text));
    });
    assert.match(refused, /Auth failed!/);

    // The HTTP link opens the instance; the gateway's cookie lives on its own host name, so
    // the player stays logged in to the portal.
    const tab = await page.context().newPage();
    await tab.goto(link);
    assert.match(await tab.locator("h1").textContent(), new RegExp(SECRET_PAGE));
    await tab.close();
    const cookies = await page.context().cookies();
    assert.ok(cookies.some((cookie) => cookie.name === "FCTF_Auth_Token" && cookie.domain === GATEWAY_HOST), JSON.stringify(cookies));
    assert.ok(cookies.some((cookie) => cookie.name === "fctf_session" && cookie.domain === PORTAL_HOST), JSON.stringify(cookies));
    await page.goto(`${base}/challenges/${instanceId}`);
    assert.match(page.url(), new RegExp(`/challenges/${instanceId}$`));

    await page.goto(base + "/instances");
    assert.match(await page.locator("main").textContent(), /Web server/);
    assert.equal((await page.locator("#instances .conn-token").textContent()).trim(), token);
    assert.ok(Number(await page.locator("#instances .countdown").getAttribute("data-seconds")) > 60);
    await shoot("instances");

    await page.goto(`${base}/challenges/${instanceId}`);
    await page.click("form[action$='/stop'] button");
    assert.doesNotMatch(await flashText(), /error|failed/i);
    const stopDeadline = Date.now() + 60_000;
    while ((await page.locator("form[action$='/start']").count()) === 0) {
      assert.ok(Date.now() < stopDeadline, `instance never stopped: ${await page.locator("#instance").textContent()}`);
      await sleep(1000);
      await page.goto(`${base}/challenges/${instanceId}`);
    }
    assert.equal((await page.locator("#instance-state").textContent()).trim(), "Not started");
  });

  it("finds the team on the scoreboard and its graph", async () => {
    await page.goto(base + "/scoreboard");
    const row = page.locator("tr.me");
    assert.equal(await row.count(), 1);
    assert.match(await row.textContent(), /Rockets/);
    assert.match(await row.textContent(), /90/);
    assert.equal(await page.locator("svg.graph.wide path").count(), 1);
    assert.match(await page.locator("svg.graph.wide title").first().textContent(), /Rockets: 90/);
    assert.match(await page.locator(".legend").textContent(), /Rockets/);
    await shoot("scoreboard");
    await page.click("form[action='/theme'] button");
    assert.equal(await page.locator("html").getAttribute("data-theme"), "dark");
    await shoot("scoreboard-dark");
    await page.goto(`${base}/challenges/${instanceId}`);
    await shoot("challenge-dark");
    await page.click("form[action='/theme'] button");
    assert.equal(await page.locator("html").getAttribute("data-theme"), "light");
  });

  it("shows team, profile, action log, tickets and live notifications", async () => {
    await page.goto(base + "/team");
    assert.match(await page.locator("main").textContent(), /Warmup/);
    assert.equal((await page.locator("tr", { hasText: "alice" }).locator(".badge").textContent()).trim(), "Captain");
    assert.equal((await page.locator(".invite-code").textContent()).trim(), inviteCode);
    await shoot("team");
    await page.goto(base + "/profile");
    await shoot("profile");
    await page.goto(base + "/log");
    assert.match(await page.locator(".timeline").textContent(), /Correct flag/);
    assert.equal(await page.locator(".timeline li").count(), 5);
    await shoot("log");
    // Filters are a GET form: action type, category, search.
    await page.selectOption("select[name=type]", { label: "Incorrect flag" });
    await page.click(".filters button[type=submit]");
    assert.match(page.url(), /\/log\?type=4&topic=&q=$/);
    assert.deepEqual((await page.locator(".timeline .badge").allTextContents()), ["Incorrect flag"]);
    await page.goto(base + "/log?topic=web&q=STOPPED");
    assert.equal(await page.locator("select[name=topic]").inputValue(), "web");
    assert.deepEqual((await page.locator(".timeline .badge").allTextContents()), ["Stopped instance"]);
    await page.goto(base + "/log?q=nothing-like-this");
    assert.match(await page.locator("#log").textContent(), /No entry matches these filters/);

    await page.goto(base + "/tickets");
    await page.fill("input[name=title]", "Instance question");
    await page.fill("textarea[name=description]", "How long does an instance live?");
    await page.click("form[action='/tickets'] button[type=submit]");
    assert.match(await flashText(), /Ticket sent/);
    await shoot("tickets");
    await page.click("a[href^='/tickets/']");
    assert.match(await page.locator("main").textContent(), /How long does an instance live\?/);
    await shoot("ticket");

    await page.goto(base + "/notifications");
    await sleep(1500);
    await admin("POST", "/api/v1/notifications", { title: "Heads up", content: "Round two opens soon." });
    await page.locator("#toasts .toast").first().waitFor({ timeout: 20_000 });
    assert.match(await page.locator("#notification-list").textContent(), /Round two opens soon\./);
    assert.equal(await page.locator("#notification-empty").count(), 0);
    assert.doesNotMatch(await page.locator("#notification-list time").first().textContent(), /T/);
    await shoot("notifications");
  });

  it("rejects a form without a valid CSRF token and logs out", async () => {
    const response = await page.request.post(base + "/team/leave", { form: { csrf: "00" }, maxRedirects: 0 });
    assert.equal(response.status(), 403);
    await page.goto(base + "/challenges");
    await page.click("form[action='/logout'] button");
    assert.match(await flashText(), /logged out/);
    await page.goto(base + "/challenges");
    assert.match(page.url(), /\/login/);
  });

  it("plays every core action without JavaScript", async () => {
    const context = await browser.newContext({ viewport: DESKTOP, javaScriptEnabled: false });
    const plain = await context.newPage();
    try {
      const post = async (selector) => {
        await Promise.all([plain.waitForNavigation(), plain.click(selector)]);
      };
      await plain.goto(base + "/login");
      await plain.fill("input[name=username]", "alice");
      await plain.fill("input[name=password]", PASSWORD);
      await post("form[action='/login'] button[type=submit]");
      assert.match(plain.url(), /\/challenges$|\/team$/);

      // Theme switch.
      await post("form[action='/theme'] button");
      assert.equal(await plain.locator("html").getAttribute("data-theme"), "dark");

      // Flag verdict.
      await plain.goto(`${base}/challenges/${instanceId}`);
      await plain.fill("input[name=flag]", "flag{wrong}");
      await post("#flag button[type=submit]");
      assert.match(await flashText(plain), /Incorrect/);

      // Start: the page reloads itself (meta refresh) until the instance runs, then stop.
      await post("form[action$='/start'] button");
      await plain.locator("#instance .open-instance").waitFor({ timeout: 90_000 });
      assert.equal(await plain.locator("meta[http-equiv=refresh]").count(), 0);
      assert.match(await plain.locator("#instance .countdown").textContent(), /^\d+ min$/);
      assert.equal(await plain.locator("#instance .copy").count(), 0, "copy buttons come from the script");
      await shoot("challenge-instance-nojs-dark", plain);
      await post("form[action$='/stop'] button");
      await plain.locator("form[action$='/start']").waitFor({ timeout: 60_000 });

      // Ticket: send, open, delete.
      await plain.goto(base + "/tickets");
      await plain.fill("input[name=title]", "Without script");
      await plain.fill("textarea[name=description]", "Does the desk work without JavaScript?");
      await post("form[action='/tickets'] button[type=submit]");
      assert.match(await flashText(plain), /Ticket sent/);
      await plain.click("a:text('Without script')");
      await post("form[action$='/delete'] button");
      assert.doesNotMatch(await plain.locator("main").textContent(), /Without script/);

      // A page that does not exist.
      const missing = await plain.goto(`${base}/challenges/999999`);
      assert.ok(missing.status() >= 400, String(missing.status()));
      await shoot("not-found-dark", plain);

      await post("form[action='/theme'] button");
      await post("form[action='/logout'] button");
      assert.match(await flashText(plain), /logged out/);
    } finally {
      await context.close();
    }
  });
});
