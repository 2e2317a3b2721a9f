"""Minimal in-cluster Kubernetes API client for fctf's workflow and CronJob scripts.

Standard library only (the scripts run in a stock python:alpine image). Authenticates with the
pod's service account token and verifies the API server against the service account CA.
"""

import json
import os
import ssl
import urllib.error
import urllib.parse
import urllib.request

SERVICE_ACCOUNT_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"


class ApiError(Exception):
    """A non-2xx answer of the API server."""

    def __init__(self, method, path, status, reason):
        super().__init__(f"{method} {path}: HTTP {status}: {reason}")
        self.status = status


class Client:
    """Talks JSON to the Kubernetes API server."""

    def __init__(self, base_url, token, ca_file=None, timeout=20):
        self.base_url = base_url.rstrip("/")
        self.token = token
        self.timeout = timeout
        self.context = ssl.create_default_context(cafile=ca_file) if ca_file else None

    @classmethod
    def in_cluster(cls):
        """The client of the pod's own service account."""
        host = os.environ["KUBERNETES_SERVICE_HOST"]
        port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:  # IPv6 literal
            host = f"[{host}]"
        with open(os.path.join(SERVICE_ACCOUNT_DIR, "token"), encoding="utf-8") as handle:
            token = handle.read().strip()
        return cls(f"https://{host}:{port}", token, os.path.join(SERVICE_ACCOUNT_DIR, "ca.crt"))

    def request(self, method, path, body=None, query=None):
        """Sends one request; returns the decoded JSON answer, raises ApiError on non-2xx."""
        url = self.base_url + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = None if body is None else json.dumps(body).encode("utf-8")
        request = urllib.request.Request(url, data=data, method=method)
        request.add_header("Authorization", f"Bearer {self.token}")
        request.add_header("Accept", "application/json")
        if data is not None:
            request.add_header("Content-Type", "application/json")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as response:
                payload = response.read()
        except urllib.error.HTTPError as error:
            reason = error.reason
            try:
                reason = json.loads(error.read()).get("message", reason)
            except (ValueError, AttributeError):
                pass
            raise ApiError(method, path, error.code, reason) from None
        return json.loads(payload) if payload else {}
