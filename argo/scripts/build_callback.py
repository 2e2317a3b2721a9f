"""Reports the end of an image build to fctf center (exit handler of up-challenge-template).

The request is signed like every internal call to center (argo/README.md, "Signed internal
requests"): HMAC-SHA256 with the internal secret over

    METHOD "\n" PATH "\n" TIMESTAMP "\n" lowercase_hex(SHA-256(BODY))

sent as the headers X-Fctf-Key-Id, X-Fctf-Timestamp (unix seconds) and X-Fctf-Signature
(lowercase hex). Each attempt is signed afresh; center treats a repeated report of the same
workflow as idempotent. Never prints the secret or the signature.

Environment: CALLBACK_URL, WORKFLOW_NAME, WORKFLOW_STATUS (Argo: Succeeded, Failed or Error),
WORKFLOW_FAILURES (Argo's JSON list of failed nodes), CHALLENGE_ID, IMAGE, FCTF_INTERNAL_KEY,
FCTF_KEY_ID (default k1), ATTEMPTS (default 6).
"""

import hashlib
import hmac
import json
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

MESSAGE_LIMIT = 1000


def canonical_request(method, path, timestamp, body):
    """The string that is signed."""
    return f"{method.upper()}\n{path}\n{timestamp}\n{hashlib.sha256(body).hexdigest()}"


def sign(secret, method, path, timestamp, body):
    """Lowercase hex HMAC-SHA256 of the canonical request."""
    message = canonical_request(method, path, timestamp, body).encode("utf-8")
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def failure_message(failures_json):
    """The first failed node's message, if Argo reported one."""
    try:
        failures = json.loads(failures_json or "null")
    except ValueError:
        return None
    if not isinstance(failures, list):
        return None
    for node in failures:
        if isinstance(node, dict) and node.get("message"):
            name = node.get("displayName") or node.get("templateName") or "step"
            return f"{name}: {node['message']}"[:MESSAGE_LIMIT]
    return None


def report_body(workflow, status, failures_json, challenge_id, image, finished_at):
    """The JSON body (compact, keys sorted: the signature covers these exact bytes)."""
    body = {
        "kind": "build",
        "workflow": workflow,
        "challenge_id": int(challenge_id),
        "image": image,
        "phase": status,
        "succeeded": status == "Succeeded",
        "message": None if status == "Succeeded" else failure_message(failures_json),
        "finished_at": int(finished_at),
    }
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode("utf-8")


def post(url, body, secret, key_id, now=time.time, timeout=10):
    """One signed POST; returns the HTTP status (raises URLError on transport errors)."""
    path = urllib.parse.urlsplit(url).path or "/"
    timestamp = str(int(now()))
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    request.add_header("X-Fctf-Key-Id", key_id)
    request.add_header("X-Fctf-Timestamp", timestamp)
    request.add_header("X-Fctf-Signature", sign(secret, "POST", path, timestamp, body))
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def retryable(status):
    return status in (408, 425, 429) or status >= 500


def main():
    url = os.environ["CALLBACK_URL"]
    secret = os.environ["FCTF_INTERNAL_KEY"].encode("utf-8")
    key_id = os.environ.get("FCTF_KEY_ID") or "k1"
    attempts = int(os.environ.get("ATTEMPTS", "6"))
    body = report_body(
        os.environ["WORKFLOW_NAME"],
        os.environ["WORKFLOW_STATUS"],
        os.environ.get("WORKFLOW_FAILURES", ""),
        os.environ["CHALLENGE_ID"],
        os.environ["IMAGE"],
        time.time(),
    )
    delay = 1.0
    for attempt in range(1, attempts + 1):
        try:
            status = post(url, body, secret, key_id)
        except (urllib.error.URLError, OSError) as error:
            status, detail = None, str(getattr(error, "reason", error))
        else:
            detail = f"HTTP {status}"
        if status is not None and 200 <= status < 300:
            print(f"build status {os.environ['WORKFLOW_STATUS']} reported to center ({detail})")
            return 0
        if status is not None and not retryable(status):
            print(f"error: center refused the build report ({detail})", file=sys.stderr)
            return 1
        print(f"attempt {attempt}/{attempts} failed ({detail})", file=sys.stderr)
        if attempt < attempts:
            time.sleep(delay)
            delay = min(delay * 2, 30.0)
    print("error: could not report the build status to center", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
