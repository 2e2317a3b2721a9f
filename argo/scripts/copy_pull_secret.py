"""Copies the registry pull secret into a new instance namespace (start-chal-v2-template).

The secret `fctf-registry-pull` of the `argo` namespace is mounted into this step's pod by the
kubelet, so the workflow account never needs to read secrets; it may only create this one
(admission policy fctf-start-challenge-scope). An existing copy (a retried step) is success.

Environment: NAMESPACE (instance namespace), INSTANCE_ID, PULL_SECRET_FILE (default
/etc/fctf/registry-pull/.dockerconfigjson).
"""

import base64
import json
import os
import sys

import fctf_kube

SECRET_NAME = "fctf-registry-pull"


def secret_manifest(namespace, instance_id, dockerconfigjson):
    """The Secret object created in the instance namespace."""
    json.loads(dockerconfigjson)  # refuse to copy something that is not a docker config
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {
            "name": SECRET_NAME,
            "namespace": namespace,
            "labels": {
                "app.kubernetes.io/managed-by": "fctf",
                "ctf/kind": "challenge",
                "ctf/instance": instance_id,
            },
        },
        "type": "kubernetes.io/dockerconfigjson",
        "data": {".dockerconfigjson": base64.b64encode(dockerconfigjson).decode("ascii")},
    }


def main():
    namespace = os.environ["NAMESPACE"]
    instance_id = os.environ["INSTANCE_ID"]
    path = os.environ.get("PULL_SECRET_FILE", "/etc/fctf/registry-pull/.dockerconfigjson")
    with open(path, "rb") as handle:
        body = secret_manifest(namespace, instance_id, handle.read())
    client = fctf_kube.Client.in_cluster()
    try:
        client.request("POST", f"/api/v1/namespaces/{namespace}/secrets", body)
        print(f"created secret {SECRET_NAME} in {namespace}")
    except fctf_kube.ApiError as error:
        if error.status != 409:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"secret {SECRET_NAME} already exists in {namespace}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
