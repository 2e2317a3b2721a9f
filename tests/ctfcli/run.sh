#!/usr/bin/env bash
# End-to-end check of the CTFd-compatible admin API with the real ctfcli (PyPI ctfcli==0.1.8).
#
# Starts the built fctf binary (target/debug/fctf, or $FCTF_BIN) on free ports with a private
# data directory, creates an admin token with `fctf admin create`, then runs `ctf challenge
# install`, `verify`, `sync`, `verify`, `mirror` (and `mirror --skip-verify` on a copy that lost
# a file) over tests/ctfcli/challenges/, checking exit codes, output and the server's state.
# fctf's deployment fields travel under `extra` (Instance Web: ctfcli sends them) or under
# `deploy:` (Dynamic Decay: only `fctf challenge import` reads them, and a later ctfcli sync
# keeps them); `verify` reports both in sync.
#
# Environment: FCTF_BIN (binary), CTFCLI_VENV (reuse an existing venv with ctfcli 0.1.8
# installed), KEEP_TMP=1 (keep the temporary directory for inspection).
# Prints `ctfcli: N passed, M failed` and exits non-zero when anything failed.
set -uo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
fctf_bin="${FCTF_BIN:-$repo/target/debug/fctf}"
work="$(mktemp -d "${TMPDIR:-/tmp}/fctf-ctfcli.XXXXXX")"
server_pid=""
passed=0
failed=0

cleanup() {
  if [[ -n "$server_pid" ]] && kill -0 "$server_pid" 2>/dev/null; then
    kill "$server_pid" 2>/dev/null
    wait "$server_pid" 2>/dev/null
  fi
  if [[ "${KEEP_TMP:-0}" == "1" ]]; then
    echo "kept $work"
  else
    rm -rf "$work"
  fi
}
trap cleanup EXIT

pass() { passed=$((passed + 1)); echo "  ok   $1"; }
fail() { failed=$((failed + 1)); echo "  FAIL $1"; [[ -n "${2:-}" ]] && printf '%s\n' "$2" | sed 's/^/       | /' | tail -n 40; }
finish() {
  echo "ctfcli: $passed passed, $failed failed"
  [[ "$failed" -eq 0 ]]
  exit $?
}
abort() { fail "$1" "${2:-}"; finish; }

[[ -x "$fctf_bin" ]] || abort "fctf binary $fctf_bin is missing (run cargo build or cargo test first)"

# --- ctfcli ------------------------------------------------------------------------------
if [[ -n "${CTFCLI_VENV:-}" && -x "$CTFCLI_VENV/bin/ctf" ]]; then
  venv="$CTFCLI_VENV"
else
  venv="$work/venv"
  python3 -m venv "$venv" >/dev/null 2>&1 || abort "python3 -m venv failed"
  "$venv/bin/pip" install --quiet --disable-pip-version-check "ctfcli==0.1.8" >"$work/pip.log" 2>&1 \
    || abort "pip install ctfcli==0.1.8" "$(cat "$work/pip.log")"
fi
ctf="$venv/bin/ctf"
py="$venv/bin/python"
"$ctf" version >/dev/null 2>&1 || true

# --- fctf --------------------------------------------------------------------------------
# Only the settings below reach fctf (CI exports FCTF_TEST_* for the test suites).
while read -r variable; do unset "$variable"; done < <(compgen -e | grep '^FCTF_')
export FCTF_CENTER__LISTEN="127.0.0.1:0"
export FCTF_GATEWAY__HTTP_LISTEN="127.0.0.1:0"
export FCTF_GATEWAY__TCP_LISTEN="127.0.0.1:0"
export FCTF_OPS__LISTEN="127.0.0.1:0"
export FCTF_LOG__LEVEL="warn"

start_fctf() { # DATA_DIR -> sets base, token, server_pid
  local port created
  port="$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"
  base="http://127.0.0.1:$port"
  export FCTF_DATA_DIR="$1"
  export FCTF_API__LISTEN="127.0.0.1:$port"
  export FCTF_API__PUBLIC_URL="$base"
  created="$("$fctf_bin" admin create --name ctfcli --password 'ctfcli-password-1' 2>&1)" \
    || abort "fctf admin create" "$created"
  token="$(printf '%s\n' "$created" | sed -n 's/^admin API token: //p')"
  [[ -n "$token" ]] && pass "fctf admin create prints an admin token" || abort "no token in: $created"
  "$fctf_bin" --role all >>"$work/fctf.log" 2>&1 &
  server_pid=$!
  for _ in $(seq 1 150); do
    if curl -sf -o /dev/null -H "Authorization: Token $token" "$base/api/v1/challenges"; then break; fi
    kill -0 "$server_pid" 2>/dev/null || abort "fctf exited" "$(cat "$work/fctf.log")"
    sleep 0.2
  done
  api GET /api/v1/challenges >/dev/null || abort "fctf did not become ready" "$(cat "$work/fctf.log")"
  pass "fctf answers on $base"
}

stop_fctf() {
  kill "$server_pid" 2>/dev/null
  wait "$server_pid" 2>/dev/null
  server_pid=""
}

api() { # METHOD PATH -> body on stdout, fails on non-2xx
  curl -sS --fail-with-body -X "$1" -H "Authorization: Token $token" -H 'Content-Type: application/json' "$base$2"
}

start_fctf "$work/data"

# --- project -----------------------------------------------------------------------------
project="$work/project"
mkdir -p "$project/.ctf"
cp -R "$here/challenges/." "$project/"
write_config() { # DIR
  cat >"$1/.ctf/config" <<EOF
[config]
url = $base
access_token = $token

[challenges]
warmup = warmup
flag-kinds = flag-kinds
file-bundle = file-bundle
dynamic-decay = dynamic-decay
instance-web = instance-web
EOF
}
write_config "$project"

run_ctf() { # DIR ARGS... -> sets out and code
  out="$(cd "$1" && shift && NO_COLOR=1 "$ctf" "$@" 2>&1 </dev/null)"
  code=$?
}

expect() { # DESCRIPTION EXPECTED_CODE PATTERN...
  local description=$1 expected=$2
  shift 2
  if [[ "$code" -ne "$expected" ]]; then
    fail "$description (exit $code, expected $expected)" "$out"
    return
  fi
  local pattern
  for pattern in "$@"; do
    if ! grep -qF -- "$pattern" <<<"$out"; then
      fail "$description (missing: $pattern)" "$out"
      return
    fi
  done
  if grep -q "Traceback" <<<"$out"; then
    fail "$description (traceback)" "$out"
    return
  fi
  pass "$description"
}

check_challenge() { # DESCRIPTION NAME PYTHON_EXPRESSION_ON_data (the admin detail of the named challenge)
  local list id
  list="$(api GET /api/v1/challenges?view=admin)" || { fail "$1 (list failed)" "$list"; return; }
  id="$(BODY="$list" NAME="$2" "$py" -c "import json, os; print(next(c['id'] for c in json.loads(os.environ['BODY'])['data'] if c['name'] == os.environ['NAME']))")" \
    || { fail "$1 (no challenge named $2)" "$list"; return; }
  check_json "$1" "$3" "/api/v1/challenges/$id"
}

check_json() { # DESCRIPTION PYTHON_EXPRESSION_ON_data PATH
  local body
  body="$(api GET "$3")" || { fail "$1 (GET $3 failed)" "$body"; return; }
  if BODY="$body" "$py" -c "import json, os, sys; data = json.loads(os.environ['BODY'])['data']; sys.exit(0 if ($2) else 1)"; then
    pass "$1"
  else
    fail "$1" "$body"
  fi
}


run_ctf "$project" challenge install
expect "ctf challenge install" 0 "Success! All challenges installed!"

run_ctf "$project" challenge verify
expect "verify after install: Flag Kinds is out of sync (its next challenge did not exist yet)" 2 \
  "Challenges out of sync:" " - Flag Kinds"

run_ctf "$project" challenge sync
expect "ctf challenge sync" 0 "Success! All challenges synced!"

run_ctf "$project" challenge verify
expect "ctf challenge verify: everything in sync" 0 "Success! All challenges verified!" "Challenges in sync:" \
  " - Warmup" " - Flag Kinds" " - File Bundle" " - Dynamic Decay" " - Instance Web"
grep -q "out of sync" <<<"$out" && fail "verify lists challenges out of sync" "$out"

check_json "five challenges, no duplicates" \
  "sorted(c['name'] for c in data) == sorted(['Warmup', 'Flag Kinds', 'File Bundle', 'Dynamic Decay', 'Instance Web'])" \
  "/api/v1/challenges?view=admin"
check_json "the dynamic challenge stays hidden and the others are visible" \
  "{c['name']: c['state'] for c in data} == {'Warmup': 'visible', 'Flag Kinds': 'visible', 'File Bundle': 'visible', 'Dynamic Decay': 'hidden', 'Instance Web': 'visible'}" \
  "/api/v1/challenges?view=admin"
check_challenge "deployment fields sent by ctfcli under extra are stored" "Instance Web" \
  "data['require_deploy'] is True and data['deploy_command'].startswith('exec python3') and data['time_limit'] == 30 and data['max_deploy_count'] == 3 and data['connection_protocol'] == 'http'"
check_challenge "the deploy: key is fctf's alone (ctfcli does not send it)" "Dynamic Decay" \
  "data['require_deploy'] is False and data['shared_instance'] is False"
check_json "challenge files have locations <dir>/<name> and lowercase sha1 sums" \
  "len(data) == 3 and all(len(f['location'].split('/')) == 2 and len(f['sha1sum']) == 40 and f['sha1sum'] == f['sha1sum'].lower() for f in data)" \
  "/api/v1/files?type=challenge"
check_json "one copy of every flag after sync" "len(data) == 7" "/api/v1/flags"
check_json "the write-up is stored with its image link rewritten" \
  "len(data) == 1 and data[0]['state'] == 'visible' and '](/files/' in data[0]['content']" "/api/v1/solutions"
check_json "the write-up image is a solution file" "len(data) >= 1" "/api/v1/files?type=solution"

run_ctf "$project" challenge mirror
expect "ctf challenge mirror (everything in sync)" 0 "Success! All challenges mirrored!" "already in sync"

# A copy that lost a file: mirror --skip-verify downloads it back into dist/ and rewrites the yml.
copy="$work/project-copy"
cp -R "$project" "$copy"
rm "$copy/file-bundle/dist/readme part 2.md"
"$py" - "$copy/file-bundle/challenge.yml" <<'EOF'
import sys
path = sys.argv[1]
lines = [line for line in open(path) if "readme part 2.md" not in line]
open(path, "w").writelines(lines)
EOF
run_ctf "$copy" challenge mirror --skip-verify
expect "ctf challenge mirror --skip-verify" 0 "Success! All challenges mirrored!"
if cmp -s "$copy/file-bundle/dist/readme part 2.md" "$here/challenges/file-bundle/dist/readme part 2.md"; then
  pass "mirror downloaded the missing file byte for byte"
else
  fail "mirror did not restore dist/readme part 2.md"
fi
if cmp -s "$copy/file-bundle/dist/capture.bin" "$here/challenges/file-bundle/dist/capture.bin"; then
  pass "mirror rewrote the binary file unchanged"
else
  fail "mirror changed dist/capture.bin"
fi
run_ctf "$copy" challenge verify
expect "verify the mirrored copy" 0 "Success! All challenges verified!" " - File Bundle"

# Instance configuration, pages and media (ctfcli's other admin API users).
run_ctf "$project" instance config set ctf_name "ctfcli Finals"
expect "ctf instance config set" 0 "Successfully set 'ctf_name'"
run_ctf "$project" instance config get ctf_name
expect "ctf instance config get" 0 "ctfcli Finals"
run_ctf "$project" instance config pull
expect "ctf instance config pull" 0 "Successfully pulled configuration"
grep -q "ctf_name = ctfcli Finals" "$project/.ctf/config" && pass "pulled settings are in .ctf/config" \
  || fail "pulled settings are in .ctf/config" "$(cat "$project/.ctf/config")"
run_ctf "$project" instance config push
expect "ctf instance config push" 0 "Successfully pushed config"

mkdir -p "$project/pages"
printf -- '---\nroute: rules\ntitle: Rules\ndraft: false\nhidden: false\nauth_required: false\n---\nBe nice.\n' \
  >"$project/pages/rules.md"
run_ctf "$project" pages push
expect "ctf pages push" 0 "Successfully pushed page"
sed -i 's/Be nice./Be very nice./' "$project/pages/rules.md"
run_ctf "$project" pages sync
expect "ctf pages sync" 0 "Successfully synced page"
check_json "the synced page is stored once with its new content" \
  "len(data) == 1 and data[0]['route'] == 'rules' and 'content' not in data[0]" "/api/v1/pages"
page_id="$(api GET /api/v1/pages | "$py" -c 'import json, sys; print(json.load(sys.stdin)["data"][0]["id"])')"
check_json "the page content was updated" "data['content'].strip() == 'Be very nice.'" "/api/v1/pages/$page_id"

cp "$here/challenges/file-bundle/dist/capture.bin" "$project/logo.bin"
run_ctf "$project" media add logo.bin
expect "ctf media add" 0
run_ctf "$project" media url media/logo.bin
expect "ctf media url" 0 "$base/files/media/logo.bin"
curl -sf -H "Authorization: Token $token" -o "$work/logo.download" "$base/files/media/logo.bin" \
  && cmp -s "$work/logo.download" "$project/logo.bin" && pass "media downloads byte for byte" \
  || fail "media downloads byte for byte"

# A second sync of the unchanged project changes nothing.
run_ctf "$project" challenge sync
expect "second ctf challenge sync" 0 "Success! All challenges synced!"
run_ctf "$project" challenge verify
expect "verify after the second sync" 0 "Success! All challenges verified!"
check_json "still five challenges after two syncs" "len(data) == 5" "/api/v1/challenges?view=admin"
check_json "files were not re-uploaded by the second sync" "len(data) == 3" "/api/v1/files?type=challenge"
check_json "the media file is untouched by syncs" "len(data) == 1" "/api/v1/files?type=page"

# install without --force refuses existing challenges instead of duplicating them.
run_ctf "$project" challenge install warmup
expect "install of an existing challenge is refused" 1 "Install failed for:"
check_json "no duplicate after a refused install" "len(data) == 5" "/api/v1/challenges?view=admin"

# `fctf challenge import` of the same directory produces what ctfcli verifies as in sync.
stop_fctf
imported="$work/imported"
import_out="$("$fctf_bin" --data-dir "$imported" challenge import "$here/challenges" 2>&1)" \
  && grep -qF "5 challenge file(s): 5 imported, 0 failed" <<<"$import_out" \
  && pass "fctf challenge import of the fixtures" || fail "fctf challenge import of the fixtures" "$import_out"
start_fctf "$imported"
write_config "$project"
run_ctf "$project" challenge verify
expect "ctf challenge verify against challenges imported by fctf" 0 "Success! All challenges verified!" \
  " - Warmup" " - Flag Kinds" " - File Bundle" " - Dynamic Decay" " - Instance Web"
grep -q "out of sync" <<<"$out" && fail "verify lists imported challenges out of sync" "$out"
check_challenge "fctf challenge import reads deployment fields under deploy:" "Dynamic Decay" \
  "data['require_deploy'] is True and data['shared_instance'] is True and data['connection_protocol'] == 'tcp'"
check_json "fctf challenge import uploads the write-up image and rewrites its link" \
  "len(data) == 1 and '](/files/' in data[0]['content'] and 'diagram.png)' in data[0]['content']" "/api/v1/solutions"
check_json "the imported write-up image is one solution file" "len(data) == 1" "/api/v1/files?type=solution"
run_ctf "$project" challenge sync
expect "ctf challenge sync over imported challenges" 0 "Success! All challenges synced!"
check_challenge "a ctfcli sync keeps the deployment fields imported from deploy:" "Dynamic Decay" \
  "data['require_deploy'] is True and data['shared_instance'] is True"
run_ctf "$project" challenge verify
expect "verify after syncing imported challenges" 0 "Success! All challenges verified!" " - Dynamic Decay" " - Instance Web"

grep -qi "panicked" "$work/fctf.log" && fail "fctf log shows a panic" "$(cat "$work/fctf.log")"
finish
