// Shared start-up of the browser suites: runs the built `fctf --role all` with a temporary data
// directory and free loopback ports, creates the admin account (`fctf admin create`) and keeps
// its API token for seeding, and launches headless Chromium.

import assert from "node:assert/strict";
import { spawn, execFile } from "node:child_process";
import { mkdtempSync, mkdirSync, rmSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, dirname, resolve } from "node:path";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { chromium } from "playwright-core";

export const here = dirname(fileURLToPath(import.meta.url));
export const root = resolve(here, "../..");
export const binary = process.env.PORTAL_TEST_BIN || join(root, "target/debug/fctf");
export const chromiumPath = process.env.CHROMIUM || "/usr/bin/chromium";
export const shots = join(here, "screenshots");
export const DESKTOP = { width: 1366, height: 768 };
export const PHONE = { width: 390, height: 844 };

export const sleep = (ms) => new Promise((ok) => setTimeout(ok, ms));

// A TCP port free on 127.0.0.1 right now.
export async function freePort() {
  return new Promise((ok, fail) => {
    const server = createServer();
    server.once("error", fail);
    server.listen(0, "127.0.0.1", () => {
      const { port } = server.address();
      server.close(() => ok(port));
    });
  });
}

// A running `fctf --role all` with an admin account.
//
// `options.prefix` names the temporary data directory, `options.env` adds or overrides
// environment variables (after the defaults below; `dataDir` and `ports` are passed to it when
// it is a function), `options.adminPassword` is the admin's password.
//
// The handle: `base` (portal/API URL on 127.0.0.1), `ports` (api, center, http, tcp, ops),
// `dataDir`, `env`, `adminToken`, `admin(method, path, body)` (admin API call asserting
// success, JSON answer), `log` (everything the server printed so far) and `stop()`.
export async function startFctf(options = {}) {
  assert.ok(existsSync(binary), `build the binary first: ${binary}`);
  mkdirSync(shots, { recursive: true });
  const dataDir = mkdtempSync(join(tmpdir(), options.prefix || "fctf-browser-"));
  const ports = { api: await freePort(), center: await freePort(), http: await freePort(), tcp: await freePort(), ops: await freePort() };
  const base = `http://127.0.0.1:${ports.api}`;
  const extra = typeof options.env === "function" ? options.env({ dataDir, ports }) : options.env || {};
  const env = {
    ...Object.fromEntries(Object.entries(process.env).filter(([key]) => !key.startsWith("FCTF_"))),
    FCTF_DATA_DIR: dataDir,
    FCTF_API__LISTEN: `127.0.0.1:${ports.api}`,
    FCTF_API__PUBLIC_URL: base,
    FCTF_CENTER__LISTEN: `127.0.0.1:${ports.center}`,
    FCTF_GATEWAY__HTTP_LISTEN: `127.0.0.1:${ports.http}`,
    FCTF_GATEWAY__TCP_LISTEN: `127.0.0.1:${ports.tcp}`,
    FCTF_OPS__LISTEN: `127.0.0.1:${ports.ops}`,
    FCTF_LOG__LEVEL: "warn",
    ...extra,
  };
  const password = options.adminPassword || "Adm1n!password";
  const { stdout } = await promisify(execFile)(binary, ["admin", "create", "--name", "admin", "--password", password], { env });
  const adminToken = (stdout.match(/admin API token: (\S+)/) || [])[1];
  assert.ok(adminToken, `no admin token in: ${stdout}`);

  const server = spawn(binary, ["--role", "all"], { env, stdio: ["ignore", "pipe", "pipe"] });
  const handle = {
    base,
    ports,
    dataDir,
    env,
    adminToken,
    log: "",
    async admin(method, path, body) {
      const response = await fetch(base + path, {
        method,
        headers: { Authorization: `Token ${adminToken}`, "Content-Type": "application/json" },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
      const text = await response.text();
      let json;
      try { json = JSON.parse(text); } catch { json = { raw: text }; }
      assert.ok(response.ok, `${method} ${path} -> ${response.status} ${text}`);
      return json;
    },
    async stop() {
      if (server.exitCode === null && server.signalCode === null) {
        const exited = new Promise((ok) => server.once("exit", ok));
        server.kill("SIGTERM");
        await Promise.race([exited, sleep(10_000)]);
        if (server.exitCode === null && server.signalCode === null) server.kill("SIGKILL");
      }
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
  server.stdout.on("data", (chunk) => { handle.log += chunk; });
  server.stderr.on("data", (chunk) => { handle.log += chunk; });
  const deadline = Date.now() + 60_000;
  for (;;) {
    try {
      if ((await fetch(`${base}/healthz`)).ok) break;
    } catch { /* not up yet */ }
    if (server.exitCode !== null) {
      rmSync(dataDir, { recursive: true, force: true });
      assert.fail(`fctf exited early:\n${handle.log}`);
    }
    if (Date.now() > deadline) {
      await handle.stop();
      assert.fail(`fctf did not come up:\n${handle.log}`);
    }
    await sleep(250);
  }
  return handle;
}

// Headless Chromium; `extraArgs` are appended to the usual flags.
export async function launchChromium(extraArgs = []) {
  return chromium.launch({
    executablePath: chromiumPath,
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync", ...extraArgs],
  });
}
