"""Unit tests of the workflow and CronJob scripts (run by .ci/validate-manifests).

    python3 -m unittest discover -s argo/scripts -p 'test_*.py'
"""

import base64
import datetime
import io
import json
import os
import shutil
import tarfile
import tempfile
import threading
import unittest
from http.server import BaseHTTPRequestHandler, HTTPServer

import build_callback
import cleanup_namespaces
import copy_pull_secret
import fetch_context


class SigningTest(unittest.TestCase):
    # Independent vector, computed with:
    #   h=$(printf '%s' "$BODY" | sha256sum | cut -d' ' -f1)
    #   printf 'POST\n/internal/workflows/callback\n1712345678\n%s' "$h" | openssl dgst -sha256 -hmac test-internal-key
    BODY = b'{"challenge_id":12,"kind":"build"}'

    def test_known_vector(self):
        signature = build_callback.sign(b"test-internal-key", "POST", "/internal/workflows/callback", "1712345678", self.BODY)
        self.assertEqual(signature, "2f16fe386a5ff1a6da3ca8cf45bb30d7be2678c824075d7766d69cfcb282f7e6")

    def test_canonical_request_layout(self):
        canonical = build_callback.canonical_request("post", "/p", "7", b"")
        self.assertEqual(canonical, "POST\n/p\n7\ne3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855")

    def test_report_body_is_compact_sorted_json(self):
        failures = json.dumps([{"displayName": "build", "message": "exit code 1", "phase": "Failed"}])
        body = build_callback.report_body("build-12-1", "Failed", failures, "12", "r/x:1", 1712345999.7)
        self.assertEqual(
            body,
            b'{"challenge_id":12,"finished_at":1712345999,"image":"r/x:1","kind":"build",'
            b'"message":"build: exit code 1","phase":"Failed","succeeded":false,"workflow":"build-12-1"}',
        )

    def test_success_has_no_message_and_bad_failures_are_ignored(self):
        body = json.loads(build_callback.report_body("w", "Succeeded", "not json", "3", "i", 0))
        self.assertTrue(body["succeeded"])
        self.assertIsNone(body["message"])
        self.assertIsNone(build_callback.failure_message("null"))
        self.assertIsNone(build_callback.failure_message("{}"))

    def test_error_phase_is_a_failure(self):
        body = json.loads(build_callback.report_body("w", "Error", "[]", "3", "i", 0))
        self.assertFalse(body["succeeded"])


class CallbackServerTest(unittest.TestCase):
    """The script against a local HTTP server that verifies the signature like center."""

    def setUp(self):
        self.received = []
        test = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 (http.server naming)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                expected = build_callback.sign(b"k", "POST", self.path, self.headers["X-Fctf-Timestamp"], body)
                ok = expected == self.headers["X-Fctf-Signature"] and self.headers["X-Fctf-Key-Id"] == "k9"
                test.received.append((self.path, json.loads(body), ok))
                status = 503 if len(test.received) == 1 else (204 if ok else 401)
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def tearDown(self):
        self.server.shutdown()
        self.server.server_close()

    def test_retries_then_succeeds_with_a_valid_signature(self):
        url = f"http://127.0.0.1:{self.server.server_port}/internal/workflows/callback"
        env = {
            "CALLBACK_URL": url, "FCTF_INTERNAL_KEY": "k", "FCTF_KEY_ID": "k9", "WORKFLOW_NAME": "build-1",
            "WORKFLOW_STATUS": "Succeeded", "WORKFLOW_FAILURES": "null", "CHALLENGE_ID": "5", "IMAGE": "r/i:1",
            "ATTEMPTS": "3",
        }
        saved = dict(os.environ)
        os.environ.update(env)
        original_sleep = build_callback.time.sleep
        build_callback.time.sleep = lambda seconds: None
        try:
            self.assertEqual(build_callback.main(), 0)
        finally:
            build_callback.time.sleep = original_sleep
            os.environ.clear()
            os.environ.update(saved)
        self.assertEqual(len(self.received), 2)
        path, body, ok = self.received[1]
        self.assertEqual(path, "/internal/workflows/callback")
        self.assertTrue(ok)
        self.assertEqual(body["workflow"], "build-1")
        self.assertEqual(body["challenge_id"], 5)


def make_archive(members):
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if data is not None else None)
    return buffer.getvalue()


def file_member(name, data):
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


HAS_TAR_FILTERS = hasattr(tarfile, "data_filter")


class FetchContextTest(unittest.TestCase):
    def tempdir(self):
        directory = tempfile.mkdtemp(prefix="fctf-test-")
        self.addCleanup(shutil.rmtree, directory, True)
        return directory

    def unpack(self, archive_bytes):
        directory = self.tempdir()
        archive = os.path.join(directory, "context.tar")
        with open(archive, "wb") as handle:
            handle.write(archive_bytes)
        dest = os.path.join(directory, "context")
        fetch_context.unpack(archive, dest)
        return dest

    @unittest.skipUnless(HAS_TAR_FILTERS, "tarfile extraction filters need Python 3.12+ or a backport")
    def test_unpacks_a_normal_context(self):
        dest = self.unpack(make_archive([file_member("Dockerfile", b"FROM scratch\n"), file_member("src/app.py", b"x")]))
        self.assertTrue(os.path.isfile(os.path.join(dest, "Dockerfile")))
        self.assertTrue(os.path.isfile(os.path.join(dest, "src", "app.py")))

    @unittest.skipUnless(HAS_TAR_FILTERS, "tarfile extraction filters need Python 3.12+ or a backport")
    def test_refuses_path_traversal(self):
        with self.assertRaises(fetch_context.ContextError):
            self.unpack(make_archive([file_member("../evil", b"x")]))

    @unittest.skipUnless(HAS_TAR_FILTERS, "tarfile extraction filters need Python 3.12+ or a backport")
    def test_keeps_absolute_paths_inside_and_refuses_escaping_links(self):
        dest = self.unpack(make_archive([file_member("/etc/evil", b"x")]))
        self.assertTrue(os.path.isfile(os.path.join(dest, "etc", "evil")))
        link = tarfile.TarInfo("escape")
        link.type = tarfile.SYMTYPE
        link.linkname = "/etc/passwd"
        with self.assertRaises(fetch_context.ContextError):
            self.unpack(make_archive([(link, None)]))

    def test_dockerfile_path_must_stay_inside(self):
        self.assertEqual(fetch_context.check_dockerfile_path("./docker/Dockerfile"), "docker/Dockerfile")
        for bad in ("", "/Dockerfile", "../Dockerfile", "a/../../Dockerfile"):
            with self.assertRaises(fetch_context.ContextError):
                fetch_context.check_dockerfile_path(bad)

    def test_download_refuses_other_schemes(self):
        directory = self.tempdir()
        with self.assertRaises(fetch_context.ContextError):
            fetch_context.download("file:///etc/hostname", os.path.join(directory, "out"), 100)

    def test_download_is_capped(self):
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server naming)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"x" * 4096)

            def log_message(self, *args):
                pass

        server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.addCleanup(server.server_close)
        self.addCleanup(server.shutdown)
        directory = self.tempdir()
        url = f"http://127.0.0.1:{server.server_port}/ctx.tgz?token=t"
        with self.assertRaises(fetch_context.ContextError):
            fetch_context.download(url, os.path.join(directory, "out"), 100)
        self.assertEqual(fetch_context.download(url, os.path.join(directory, "out"), 4096), 4096)

    def test_redaction_drops_query_and_credentials(self):
        self.assertEqual(
            fetch_context.redacted("http://user:pw@fctf-api:8000/files/ctx.tgz?token=secret"),
            "http://fctf-api:8000/files/ctx.tgz",
        )


class PullSecretTest(unittest.TestCase):
    def test_manifest(self):
        config = b'{"auths":{"registry.example.com":{"auth":"eDp5"}}}'
        secret = copy_pull_secret.secret_manifest("team-7-12-web-4217", "4217", config)
        self.assertEqual(secret["metadata"]["name"], "fctf-registry-pull")
        self.assertEqual(secret["metadata"]["namespace"], "team-7-12-web-4217")
        self.assertEqual(secret["metadata"]["labels"]["ctf/instance"], "4217")
        self.assertEqual(secret["type"], "kubernetes.io/dockerconfigjson")
        self.assertEqual(base64.b64decode(secret["data"][".dockerconfigjson"]), config)

    def test_refuses_garbage(self):
        with self.assertRaises(ValueError):
            copy_pull_secret.secret_manifest("ns", "1", b"not json")


class CleanupTest(unittest.TestCase):
    NOW = datetime.datetime(2026, 1, 1, 12, 0, 0, tzinfo=datetime.timezone.utc)

    @staticmethod
    def namespace(name, created, kind="challenge", phase="Active"):
        return {
            "metadata": {"name": name, "creationTimestamp": created, "labels": {"ctf/kind": kind}},
            "status": {"phase": phase},
        }

    def test_selects_only_old_active_challenge_namespaces_oldest_first(self):
        namespaces = [
            self.namespace("young", "2026-01-01T11:00:00Z"),
            self.namespace("old", "2026-01-01T05:00:00Z"),
            self.namespace("older", "2025-12-31T05:00:00Z"),
            self.namespace("terminating", "2025-12-01T00:00:00Z", phase="Terminating"),
            self.namespace("not-a-challenge", "2025-01-01T00:00:00Z", kind="platform"),
        ]
        self.assertEqual(cleanup_namespaces.expired(namespaces, self.NOW, 6 * 3600), ["older", "old"])

    def test_boundary_is_exclusive(self):
        namespaces = [self.namespace("exact", "2026-01-01T06:00:00Z")]
        self.assertEqual(cleanup_namespaces.expired(namespaces, self.NOW, 6 * 3600), [])


if __name__ == "__main__":
    unittest.main()
