"""Backstop: deletes challenge namespaces older than a maximum age (CronJob fctf-cleanup).

fctf's listener stops every instance at its expiry; this only catches what it missed (fctf
down for a long time, a lost instance record). It lists namespaces labelled
ctf/kind=challenge and deletes those whose creationTimestamp is more than MAX_AGE_SECONDS
ago and that are not already terminating.

Environment: MAX_AGE_SECONDS (required), DRY_RUN ("true" to only print).
"""

import datetime
import os
import sys

import fctf_kube

SELECTOR = "ctf/kind=challenge"


def age_seconds(namespace, now):
    created = namespace["metadata"]["creationTimestamp"]
    stamp = datetime.datetime.strptime(created, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
    return (now - stamp).total_seconds()


def expired(namespaces, now, max_age):
    """Names of the namespaces to delete, oldest first."""
    candidates = []
    for namespace in namespaces:
        labels = namespace["metadata"].get("labels") or {}
        if labels.get("ctf/kind") != "challenge":
            continue
        if (namespace.get("status") or {}).get("phase") == "Terminating":
            continue
        age = age_seconds(namespace, now)
        if age > max_age:
            candidates.append((-age, namespace["metadata"]["name"]))
    return [name for _, name in sorted(candidates)]


def list_challenge_namespaces(client):
    items, token = [], None
    while True:
        query = {"labelSelector": SELECTOR, "limit": "500"}
        if token:
            query["continue"] = token
        page = client.request("GET", "/api/v1/namespaces", query=query)
        items.extend(page.get("items", []))
        token = (page.get("metadata") or {}).get("continue")
        if not token:
            return items


def main():
    max_age = int(os.environ["MAX_AGE_SECONDS"])
    if max_age <= 0:
        print("error: MAX_AGE_SECONDS must be positive", file=sys.stderr)
        return 2
    dry_run = os.environ.get("DRY_RUN", "false").lower() == "true"
    client = fctf_kube.Client.in_cluster()
    now = datetime.datetime.now(datetime.timezone.utc)
    namespaces = list_challenge_namespaces(client)
    doomed = expired(namespaces, now, max_age)
    failed = 0
    for name in doomed:
        if dry_run:
            print(f"would delete namespace {name}")
            continue
        try:
            client.request("DELETE", f"/api/v1/namespaces/{name}", {"propagationPolicy": "Background"})
            print(f"deleted namespace {name}")
        except fctf_kube.ApiError as error:
            if error.status == 404:
                continue
            failed += 1
            print(f"error: {error}", file=sys.stderr)
    print(f"{len(namespaces)} challenge namespaces, {len(doomed)} older than {max_age}s, {failed} failed deletes")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
