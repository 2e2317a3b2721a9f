// The player's whole journey through the portal in headless Chromium, on `fctf --role all`.
//
// Starts the built binary with a temporary data directory and free ports, seeds the event
// through the admin API, then plays: register, (organizer verifies), log in, create a team,
// solve a static challenge, unlock a hint, start an instance (local runtime: a python HTTP
// server), open it through the gateway link, stop it, and find the team on the scoreboard and
// its graph. Every page is screenshotted at 1366x768 and 390x844 into ./screenshots.

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DESKTOP, PHONE, shots, sleep, launchChromium, startFctf } from "./support.mjs";

const SECRET_PAGE = "fctf-browser-journey-instance-page-4242";
const PASSWORD = "Passw0rd!x";
const GATEWAY_HOST = "gateway.fctf.test";

let fctf;
let base;
let browser;
let page;
let ports;

const admin = (method, path, body) => fctf.admin(method, path, body);

async function shoot(name) {
  await page.waitForLoadState("load");
  await page.setViewportSize(DESKTOP);
  await page.screenshot({ path: join(shots, `${name}-desktop.png`), fullPage: true });
  await page.setViewportSize(PHONE);
  await page.screenshot({ path: join(shots, `${name}-phone.png`), fullPage: true });
  await page.setViewportSize(DESKTOP);
}

async function flashText() {
  const flash = page.locator(".flash").first();
  return (await flash.count()) ? (await flash.textContent()).trim() : "";
}

let staticId;
let instanceId;
let hintId;

describe("player portal journey", { timeout: 300_000 }, () => {
  before(async () => {
    fctf = await startFctf({
      prefix: "fctf-browser-",
      // The gateway expires the other cookies of its host when it hands out its own, so it
      // must live on another host name than the portal (as in production).
      env: { FCTF_GATEWAY__PUBLIC_HOST: GATEWAY_HOST },
    });
    ({ base, ports } = fctf);
    const site = join(fctf.dataDir, "site");
    mkdirSync(site);
    writeFileSync(join(site, "index.html"), `<!doctype html><title>instance</title><h1>${SECRET_PAGE}</h1>`);

    await admin("PATCH", "/api/v1/configs", {
      ctf_name: "Browser CTF",
      ctf_description: "Welcome to **Browser CTF**. Read the [rules](https://example.org/rules).",
      contestant_registration_enabled: "true",
      team_self_service: "true",
    });
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
      deploy_command: `cd '${site}' && exec python3 -m http.server "$PORT" --bind 127.0.0.1`,
    });
    instanceId = web.data.id;
    await admin("POST", "/api/v1/flags", { challenge: instanceId, content: "flag{web}", type: "static" });
    const hint = await admin("POST", "/api/v1/hints", { challenge: instanceId, content: "Look at **the page**.", cost: 10 });
    hintId = hint.data.id;

    browser = await launchChromium([`--host-resolver-rules=MAP ${GATEWAY_HOST} 127.0.0.1`]);
    const context = await browser.newContext({ viewport: DESKTOP });
    page = await context.newPage();
    page.on("dialog", (dialog) => dialog.accept());
  });

  after(async () => {
    if (browser) await browser.close();
    if (fctf) await fctf.stop();
  });

  it("shows the home page and guards private pages", async () => {
    await page.goto(base + "/");
    assert.match(await page.title(), /Browser CTF/);
    assert.equal(await page.locator("main strong", { hasText: "Browser CTF" }).count(), 1);
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
    assert.match(await flashText(), /Team Rockets created\. Invite code/);
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
    while ((await page.locator("#open-instance").count()) === 0) {
      assert.ok(Date.now() < deadline, `instance never ran: ${await page.locator("#instance").textContent()}\n${fctf.log}`);
      await sleep(1000);
      await page.goto(`${base}/challenges/${instanceId}`);
    }
    assert.equal((await page.locator("#instance-state").textContent()).trim(), "Running");
    assert.ok(Number(await page.locator("#instance .countdown").getAttribute("data-seconds")) > 60);
    const link = await page.locator("#open-instance").getAttribute("href");
    assert.ok(link.startsWith(`http://${GATEWAY_HOST}:${ports.http}/?fctftoken=`), link);
    assert.match(await page.locator("#instance").textContent(), new RegExp(`nc ${GATEWAY_HOST.replaceAll(".", "\\.")} ${ports.tcp}`));
    await shoot("challenge-instance");

    const tab = await page.context().newPage();
    await tab.goto(link);
    assert.match(await tab.locator("h1").textContent(), new RegExp(SECRET_PAGE));
    await tab.close();

    await page.goto(base + "/instances");
    assert.match(await page.locator("main").textContent(), /Web server/);
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
    assert.equal(await page.locator("svg.graph path").count(), 1);
    assert.match(await page.locator("svg.graph title").first().textContent(), /Rockets: 90/);
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
    await shoot("team");
    await page.goto(base + "/profile");
    await shoot("profile");
    await page.goto(base + "/log");
    assert.match(await page.locator(".timeline").textContent(), /Correct flag/);
    await shoot("log");

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
});
