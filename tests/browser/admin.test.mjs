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

  // ---- Accounts: CSV import, brackets, custom fields, awards, the user page, audit ----------

  // Logs in again (the test above logged out) and lands on `path`.
  async function loginAgain(path) {
    await page.goto(base + path);
    if (/\/admin\/login/.test(page.url())) {
      await page.getByLabel("Name").fill("admin");
      await page.getByLabel("Password").fill(ADMIN_PASSWORD);
      await submit(page.getByRole("button", { name: "Log in" }));
    }
    assert.ok(page.url().startsWith(base + path), page.url());
  }

  // The form whose submit button is labelled `label`.
  function formWith(label) {
    return page.locator("form", { has: page.getByRole("button", { name: label, exact: true }) }).first();
  }

  // Laptop screen, keyboard and labels: the skip link comes first, every input is labelled,
  // ids are unique and nothing overflows 1366 px sideways.
  async function checkUsable(name) {
    await page.keyboard.press("Tab");
    assert.equal(await page.evaluate(() => document.activeElement.textContent), "Skip to content", name);
    const problems = await page.evaluate(() => {
      const found = [];
      for (const input of document.querySelectorAll("input:not([type=hidden]), select, textarea")) {
        if (!input.labels || input.labels.length === 0) found.push(`unlabelled ${input.name}`);
      }
      const ids = [...document.querySelectorAll("[id]")].map((element) => element.id);
      for (const id of ids) if (ids.indexOf(id) !== ids.lastIndexOf(id)) found.push(`duplicate id ${id}`);
      if (document.documentElement.scrollWidth > window.innerWidth) found.push(`page is ${document.documentElement.scrollWidth}px wide`);
      return found;
    });
    assert.deepEqual(problems, [], name);
  }

  it("imports users from a CSV, refusing a bad file and showing credentials once", async () => {
    await loginAgain("/admin/users");
    await submit(page.getByRole("link", { name: "Import CSV" }));
    assert.match(await page.textContent("h1"), /Import users or teams/);
    await shoot("import");
    await checkUsable("import");
    await page.getByLabel("Accounts in the file").selectOption("users");
    await page.getByLabel("Or paste the CSV here").fill("name,email,team,country\nbob,bob@example.org,Blue Team,FR\nalice,not-an-email,,France\nbob,,,\n");
    await submit(page.getByRole("button", { name: "Import", exact: true }));
    assert.equal(await flash(), "2 rows have problems; nothing was imported");
    assert.equal((await row("not-an-email").locator("td").first().textContent()).trim(), "3");
    assert.match(await page.locator("table").first().textContent(), /name: alice is already taken/);
    assert.match(await page.locator("table").first().textContent(), /bob appears twice/);
    assert.match(await page.getByLabel("Or paste the CSV here").inputValue(), /bob@example.org/);
    await shoot("import-errors");
    const users = await admin("GET", "/api/v1/users?q=bob&field=name");
    assert.equal(users.data.length, 0, "nothing imported");

    await page.getByLabel("Or paste the CSV here").fill("");
    await page.getByLabel("CSV file").setInputFiles({
      name: "players.csv",
      mimeType: "text/csv",
      buffer: Buffer.from("name,email,team,country\r\nbob,bob@example.org,Blue Team,fr\r\ncarol,,Blue Team,\r\n"),
    });
    await submit(page.getByRole("button", { name: "Import", exact: true }));
    assert.equal(await flash(), "Imported 2 user(s) and 1 new team(s)");
    assert.match(await page.textContent("h1"), /Import done/);
    await shoot("import-done");
    await checkUsable("import-done");
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("link", { name: "Download credentials (CSV)" }).click(),
    ]);
    assert.equal(download.suggestedFilename(), "credentials.csv");
    const { readFileSync } = await import("node:fs");
    const csv = readFileSync(await download.path(), "utf8");
    const lines = csv.trim().split("\r\n");
    assert.equal(lines[0], "name,email,team,password");
    const [name, email, team, password] = lines[1].split(",");
    assert.deepEqual([name, email, team], ["bob", "bob@example.org", "Blue Team"]);
    assert.match(await row("bob@example.org").textContent(), new RegExp(password.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    // The generated password works for the player, and the page cannot show it again.
    const login = await fetch(base + "/api/Auth/login-contestant", {
      method: "POST",
      headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ username: "bob", password }),
    });
    assert.ok(login.ok, await login.text());
    await visit("/admin/import");
    assert.doesNotMatch(await page.content(), new RegExp(password.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")));
    const teams = await admin("GET", "/api/v1/teams?q=Blue&field=name");
    assert.equal(teams.data.length, 1);
    const bob = (await admin("GET", "/api/v1/users?q=bob&field=name")).data[0];
    assert.equal(teams.data[0].captain_id, bob.id, "the first imported member captains a new team");
  });

  it("creates, edits and deletes brackets, custom fields and awards", async () => {
    await loginAgain("/admin/brackets");
    await page.getByLabel("Name", { exact: true }).fill("Students");
    await page.getByLabel("Description").fill("Enrolled at a school or university.");
    await submit(page.getByRole("button", { name: "Add bracket" }));
    assert.equal(await flash(), "Bracket added");
    await submit(row("Students").getByRole("link", { name: "Edit" }));
    assert.match(await page.textContent("h1"), /Edit bracket: Students/);
    await shoot("bracket-edit");
    await checkUsable("bracket-edit");
    await page.getByLabel("Name", { exact: true }).fill("Students and pupils");
    await submit(page.getByRole("button", { name: "Save" }));
    assert.equal(await flash(), "Bracket saved");
    await shoot("brackets");
    await checkUsable("brackets");

    await visit("/admin/fields");
    await page.getByLabel("Name", { exact: true }).fill("School");
    await page.getByLabel("Required at registration").check();
    await submit(page.getByRole("button", { name: "Add custom field" }));
    assert.equal(await flash(), "Custom field added");
    assert.match(await row("School").textContent(), /user.*text.*yes/);
    await submit(row("School").getByRole("link", { name: "Edit" }));
    await page.getByLabel("Shown on public profiles").check();
    await submit(page.getByRole("button", { name: "Save" }));
    assert.equal(await flash(), "Custom field saved");
    await shoot("fields");
    await checkUsable("fields");

    await visit("/admin/awards");
    const create = formWith("Add award");
    await create.getByLabel("User id").fill(String(playerId));
    await create.getByLabel("Name", { exact: true }).fill("Best write-up");
    await create.getByLabel("Value (negative: penalty)").fill("50");
    await create.getByLabel("Category").fill("bonus");
    await submit(create.getByRole("button", { name: "Add award" }));
    assert.equal(await flash(), "Award added");
    await submit(row("Best write-up").getByRole("link", { name: "Edit" }));
    await page.getByLabel("Value (negative: penalty)").fill("75");
    await submit(page.getByRole("button", { name: "Save" }));
    assert.equal(await flash(), "Award saved");
    assert.match(await row("Best write-up").textContent(), /75/);
    await shoot("awards");
    await checkUsable("awards");
    await page.getByLabel("User id").first().fill(String(playerId));
    await submit(page.getByRole("button", { name: "Filter" }));
    assert.ok(await row("Best write-up").count());
    const awards = await admin("GET", `/api/v1/awards?user_id=${playerId}`);
    assert.equal(awards.data[0].value, 75);
  });

  it("shows a user's page and acts on the account from it", async () => {
    await loginAgain("/admin/users");
    await submit(page.getByRole("link", { name: "alice", exact: true }));
    assert.match(await page.textContent("h1"), /User: alice/);
    assert.match(await page.textContent(".stats"), /Red Team/);
    assert.ok(await row("Best write-up").count(), "awards are listed");
    assert.match(await page.locator("table", { hasText: "Newest 10 sessions" }).textContent(), /ended|active/);
    const profile = formWith("Save profile");
    await profile.getByLabel("Affiliation").fill("Hanoi University");
    await profile.getByLabel("School").fill("HUST");
    await profile.getByLabel("Bracket").selectOption({ label: "Students and pupils" });
    await submit(profile.getByRole("button", { name: "Save profile" }));
    assert.equal(await flash(), "Profile saved");
    assert.equal(await formWith("Save profile").getByLabel("School").inputValue(), "HUST");
    const award = formWith("Add award");
    await award.getByLabel("Name", { exact: true }).fill("Late flag");
    await award.getByLabel("Value (negative: penalty)").fill("-10");
    await submit(award.getByRole("button", { name: "Add award" }));
    assert.equal(await flash(), "Award added");
    assert.match(page.url(), new RegExp(`/admin/users/${playerId}\\?`));
    await submit(page.getByRole("button", { name: "Hide", exact: true }));
    assert.equal(await flash(), "User updated");
    assert.match(page.url(), new RegExp(`/admin/users/${playerId}\\?`));
    assert.match(await page.textContent(".stats"), /Status\s*verified, hidden/);
    await shoot("user");
    await checkUsable("user");
    await submit(page.getByRole("button", { name: "Unhide", exact: true }));
    const stored = await admin("GET", `/api/v1/users/${playerId}`);
    assert.equal(stored.data.affiliation, "Hanoi University");
    assert.equal(stored.data.hidden, false);
    assert.equal(stored.data.fields.find((entry) => entry.name === "School").value, "HUST");
    // Hidden and banned accounts stay listed for the organisers.
    await visit("/admin/users");
    await page.getByLabel("Show").selectOption("pending");
    await submit(page.getByRole("button", { name: "Filter" }));
    await shoot("users-pending");
    await checkUsable("users-filtered");
  });

  it("audits preview and shared instance actions taken in the UI", async () => {
    await loginAgain(`/admin/challenges/${dynamicId}/preview`);
    await submit(page.getByRole("button", { name: "Start preview" }));
    assert.match(await flash(), /Instance/);
    await submit(page.getByRole("button", { name: "Stop preview" }));
    assert.equal(await flash(), "Instance stopped");
    // Every start and stop went through the admin API: one audit entry each, never a token.
    const entries = (await admin("GET", "/api/v1/audit?target_type=instance")).data;
    assert.deepEqual(
      entries.map((entry) => [entry.action, entry.after.team_id, entry.after.challenge_id]),
      [["stop", -1, dynamicId], ["start", -1, dynamicId], ["stop", -2, dynamicId], ["start", -2, dynamicId]],
      "preview stop and start here; the shared instance's start and monitor stop earlier",
    );
    for (const entry of entries) {
      assert.equal(entry.actor_name, "admin");
      assert.equal(entry.after.token, undefined, "no gateway token in the audit log");
    }
    await visit("/admin/logs?target_type=instance");
    assert.ok(await row("instance").count());
    await shoot("logs-audit");
  });
});
