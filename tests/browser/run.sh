#!/usr/bin/env bash
# Browser journey of the player portal in headless Chromium (Debian's package) driven by
# playwright-core from npm. Installs what is missing, builds the binary when needed, runs
# `node --test`, and exits non-zero on failure. Screenshots land in tests/browser/screenshots/.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
root="$(cd "$here/../.." && pwd)"

if [ ! -x /usr/bin/chromium ]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq chromium >/dev/null
fi
# python3 serves the journey's challenge instance; openssl makes the gateway's test certificate.
for tool in python3 openssl; do
  if ! command -v "$tool" >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq "$tool" >/dev/null
  fi
done
if [ ! -d "$here/node_modules/playwright-core" ]; then
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi
if [ -z "${PORTAL_TEST_BIN:-}" ]; then
  (cd "$root" && cargo build --quiet --bin fctf)
  export PORTAL_TEST_BIN="$root/target/debug/fctf"
fi
cd "$here"
exec node --test --test-concurrency=1 journey.test.mjs
