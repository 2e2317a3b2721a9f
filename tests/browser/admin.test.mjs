// The organiser's flows through the admin UI (/admin) in headless Chromium, on `fctf --role all`.
//
// Starts the built binary with a temporary data directory and free ports, creates the admin
// with `fctf admin create`, seeds a challenge through the admin API (as ctfcli would), then:
// logs in; creates a dynamic challenge with a flag, a hint and a file; finds the imported
// challenge; verifies a user, adds them to a team and makes them captain; starts the shared
// instance of a local-runtime challenge (python3 http.server), watches it run, reads its logs
// and stops it; replies to a player's ticket; freezes the scoreboard and exports it (CSV and
// CTFtime JSON); and opens every other page. Every page is screenshotted at 1366x768 into
// ./screenshots (gitignored).

import { describe, it, before, after } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { DESKTOP, shots, sleep, launchChromium, startFctf } from "./support.mjs";

const ADMIN_PASSWORD = "Adm1n!password";
const PLAYER_PASSWORD = "Pl4yer!password";

let fctf;
let base;
let browser;
let page;
let dynamicId;
let playerId;
let teamId;

const admin = (method, path, body) => fctf.admin(method, path, body);

async function shoot(name) {
  await page.waitForLoadState("load");
  await page.screenshot({ path: join(shots, `admin-${name}.png`), fullPage: true });
}

async function flash() {
  const element = page.locator(".flash").first();
  return (await element.count()) ? (await element.textContent()).trim() : "";
}

async function visit(path) {
  const response = await page.goto(base + path);
  assert.ok(response.status() < 400, `GET ${path} -> ${response.status()}`);
  return response;
}

// Clicks a submit button (or link) and waits for the page it leads to.
async function submit(locator) {
  await Promise.all([page.waitForNavigation(), locator.click()]);
}

// The table row containing `text`.
function row(text) {
  return page.locator("tr", { hasText: text }).first();
}

describe("admin UI", { timeout: 300_000 }, () => {
  before(async () => {
    fctf = await startFctf({ prefix: "fctf-admin-ui-", adminPassword: ADMIN_PASSWORD, env: { FCTF_GATEWAY__PUBLIC_HOST: "gateway.fctf.test" } });
    base = fctf.base;
    const now = Math.floor(Date.now() / 1000);
    await admin("PATCH", "/api/v1/configs", { ctf_name: "Admin UI CTF", start: String(now - 3600), end: String(now + 86400) });
    // What `ctf challenge install` does: POST /api/v1/challenges with a token.
    await admin("POST", "/api/v1/challenges", { name: "Imported via ctfcli", category: "crypto", value: 300, type: "standard", state: "visible", description: "From challenge.yml" });
    const player = await admin("POST", "/api/v1/users", { name: "alice", password: PLAYER_PASSWORD, verified: false });
    playerId = player.data.id;
    const team = await admin("POST", "/api/v1/teams", { name: "Red Team" });
    teamId = team.data.id;

    browser = await launchChromium();
    const context = await browser.newContext({ viewport: DESKTOP, acceptDownloads: true });
    page = await context.newPage();
    page.on("dialog", (dialog) => dialog.accept());
  });

  after(async () => {
    if (browser) await browser.close();
    if (fctf) await fctf.stop();
  });

  it("logs in", async () => {
    await page.goto(base + "/admin/challenges");
    assert.match(page.url(), /\/admin\/login\?next=/);
    await shoot("login");
    await page.getByLabel("Name").fill("admin");
    await page.getByLabel("Password").fill("wrong password");
    await Promise.all([page.waitForNavigation(), page.keyboard.press("Enter")]);
    assert.match(await flash(), /Wrong name or password/);
    await page.getByLabel("Password").fill(ADMIN_PASSWORD);
    await page.getByRole("button", { name: "Log in" }).click();
    await page.waitForURL(/\/admin\/challenges$/);
    await visit("/admin");
    assert.match(await page.textContent("h1"), /Dashboard · Admin UI CTF/);
    assert.match(await page.textContent(".stats"), /Running/);
    await shoot("dashboard");
  });

  it("creates a dynamic challenge with a flag, a hint and a file", async () => {
    await visit("/admin/challenges/new");
    await page.getByLabel("Name", { exact: true }).fill("Web server");
    await page.getByLabel("Category").fill("web");
    await page.getByLabel("Type", { exact: true }).selectOption("dynamic");
    await page.getByLabel("State").selectOption("visible");
    await page.getByLabel("Description (Markdown)").fill("Start the instance and read the page.");
    await page.getByLabel("Value (standard) / initial value").fill("500");
    await page.getByLabel("Decay (dynamic: solves to reach the minimum)").fill("10");
    await page.getByLabel("Minimum (dynamic)").fill("100");
    await page.getByLabel("Needs an instance").check();
    await page.getByLabel("Local command").fill('exec python3 -m http.server "$PORT" --bind 127.0.0.1');
    await page.getByLabel("Instance lifetime (minutes)").fill("30");
    await shoot("challenge-new");
    await submit(page.getByRole("button", { name: "Create challenge" }));
    assert.equal(await flash(), "Challenge created");
    dynamicId = Number(page.url().match(/\/admin\/challenges\/(\d+)/)[1]);

    await page.getByLabel("Flag", { exact: true }).fill("flag{served}");
    await submit(page.getByRole("button", { name: "Add flag" }));
    assert.equal(await flash(), "Flag added");
    await page.getByLabel("Hint", { exact: true }).fill("Look at the index page.");
    await page.getByLabel("Cost").fill("25");
    await submit(page.getByRole("button", { name: "Add hint" }));
    assert.equal(await flash(), "Hint added");
    await page.getByLabel("File", { exact: true }).setInputFiles({ name: "notes.txt", mimeType: "text/plain", buffer: Buffer.from("read me\n") });
    await submit(page.getByRole("button", { name: "Upload" }));
    assert.equal(await flash(), "File uploaded");
    await page.getByLabel("Tag").fill("beginner");
    await submit(page.getByRole("button", { name: "Add tag" }));

    await shoot("challenge-edit");
    assert.ok(await row("flag{served}").count());
    assert.ok(await row("Look at the index page.").count());
    assert.ok(await page.locator("a", { hasText: "notes.txt" }).count());
    const stored = await admin("GET", `/api/v1/challenges/${dynamicId}`);
    assert.equal(stored.data.type, "dynamic");
    assert.equal(stored.data.initial, 500);
    assert.equal(stored.data.minimum, 100);
    assert.equal(stored.data.require_deploy, true);
    await shoot("challenge-edit");
  });

  it("lists the challenge imported through the admin API", async () => {
    await visit("/admin/challenges");
    assert.ok(await row("Imported via ctfcli").count());
    assert.match(await row("Web server").textContent(), /dynamic/);
    await shoot("challenges");
  });

  it("verifies a user and makes them captain", async () => {
    await visit("/admin/users");
    await submit(row("alice").getByRole("button", { name: "Verify" }));
    assert.equal(await flash(), "User updated");
    assert.match(await row("alice").textContent(), /yes/);
    await shoot("users");
    await visit("/admin/teams");
    await shoot("teams");
    await page.getByRole("link", { name: "Red Team" }).click();
    await page.getByLabel("User id").fill(String(playerId));
    await submit(page.getByRole("button", { name: "Add member" }));
    assert.equal(await flash(), "Member added");
    await submit(row("alice").getByRole("button", { name: "Make captain" }));
    assert.equal(await flash(), "Team updated");
    assert.match(await row("alice").textContent(), /captain/);
    const team = await admin("GET", `/api/v1/teams/${teamId}`);
    assert.equal(team.data.captain_id, playerId);
    await shoot("team");
  });

  it("watches a running instance and stops it", async () => {
    await visit(`/admin/challenges/${dynamicId}/preview`);
    await shoot("challenge-preview");
    await submit(page.getByRole("button", { name: "Start shared instance" }));
    assert.match(await flash(), /Instance/);
    const deadline = Date.now() + 60_000;
    for (;;) {
      await visit("/admin/instances");
      const text = (await row("Web server").count()) ? await row("Web server").textContent() : "";
      if (/running/.test(text)) break;
      assert.ok(Date.now() < deadline, `instance not running: ${text}\n${fctf.log}`);
      await sleep(1000);
    }
    assert.match(await row("Web server").textContent(), /Shared/);
    await shoot("instances");
    await submit(row("Web server").getByRole("link").first());
    assert.match(await page.textContent("h1"), /Logs of instance/);
    assert.equal(await page.getAttribute("body", "data-refresh"), "5");
    await shoot("instance-logs");
    await visit("/admin/instances");
    await submit(row("Web server").getByRole("button", { name: "Stop" }));
    assert.equal(await flash(), "Stopped 1 instance(s)");
    assert.equal(await row("Web server").count(), 0);
    await visit("/admin/instances/history");
    assert.match(await row("Web server").textContent(), /stopped|Shared/);
    await shoot("instance-history");
    const csv = await page.request.get(base + "/admin/instances/history.csv");
    assert.equal(csv.status(), 200);
    assert.match(await csv.text(), /^Id,Challenge,Team,State/);
  });

  it("replies to a ticket", async () => {
    const login = await fetch(base + "/api/Auth/login-contestant", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "alice", password: PLAYER_PASSWORD }),
    });
    const session = await login.json();
    assert.ok(login.ok, JSON.stringify(session));
    const token = session.generatedToken || (session.data && session.data.generatedToken);
    const sent = await fetch(base + "/api/Ticket/sendticket", {
      method: "POST",
      headers: { "Content-Type": "application/json", Authorization: `Bearer ${token}` },
      body: JSON.stringify({ title: "Instance will not start", type: "question", description: "The web server challenge shows an error." }),
    });
    assert.ok(sent.ok, await sent.text());
    await visit("/admin/tickets");
    await shoot("tickets");
    await page.getByRole("link", { name: "Instance will not start" }).click();
    await page.getByLabel("Answer").fill("Fixed: try again now.");
    await submit(page.getByRole("button", { name: "Send reply" }));
    assert.equal(await flash(), "Reply sent");
    assert.match(await page.textContent(".stats"), /answered/);
    await shoot("ticket");
  });

  it("freezes the scoreboard and exports it", async () => {
    await visit("/admin/scoreboard");
    await submit(page.getByRole("button", { name: "Freeze now" }));
    assert.equal(await flash(), "Scoreboard frozen");
    assert.doesNotMatch(await page.textContent(".stats"), /not set/);
    await shoot("scoreboard");
    await submit(page.getByRole("link", { name: "Frozen view" }));
    assert.match(await page.textContent(".stats"), /Frozen/);
    await shoot("scoreboard-frozen");
    const csv = await page.request.get(base + "/admin/scoreboard.csv?view=frozen");
    assert.equal(csv.status(), 200);
    assert.match(csv.headers()["content-disposition"], /scoreboard\.csv/);
    assert.match(await csv.text(), /^place,name,score\r\n/);
    const ctftime = await page.request.get(base + "/admin/scoreboard/ctftime.json");
    const body = await ctftime.json();
    assert.ok(Array.isArray(body.standings), JSON.stringify(body));
  });

  it("renders every other page", async () => {
    for (const [path, name] of [
      ["/admin/config", "config"],
      ["/admin/submissions", "submissions"],
      ["/admin/statistics", "statistics"],
      ["/admin/logs", "logs"],
      ["/admin", "dashboard-after"],
    ]) {
      await visit(path);
      await shoot(name);
    }
    await visit("/admin/notifications");
    await page.getByLabel("Title").fill("Scoreboard frozen");
    await page.getByLabel("Message").fill("The last hour is hidden. Good luck!");
    await submit(page.getByRole("button", { name: "Send" }));
    assert.equal(await flash(), "Notification sent");
    await shoot("notifications");
    await visit("/admin/config");
    await page.getByLabel("Event name").fill("Admin UI CTF Finals");
    await submit(page.getByRole("button", { name: "Save configuration" }));
    assert.equal(await flash(), "Configuration saved");
    // Keyboard: the skip link is the first stop and every input has a label.
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content");
    const unlabelled = await page.evaluate(() =>
      [...document.querySelectorAll("input:not([type=hidden]), select, textarea")]
        .filter((input) => !input.labels || input.labels.length === 0).length);
    assert.equal(unlabelled, 0);
    await page.getByRole("button", { name: "Log out" }).click();
    await page.waitForURL(/\/admin\/login/);
  });
});
