"""Executable reference of the start-chal-v2-template contract (argo/README.md, section 1).

Renders the Workflow the consumer submits for one instance, in Python, from the same inputs
the Rust runtime has. The golden files next to this one are its output for EXAMPLE:

    python3 argo/examples/reference_render.py argo/examples     # rewrites the golden files

.ci/validate-manifests re-renders EXAMPLE and the naming table of the README and fails when
they differ from the committed files, so the README, the golden files and this reference
cannot drift apart. The Rust implementation is checked against the golden files, not this code.
"""

import hashlib
import json
import re
import sys
import unicodedata

PLATFORM_NAMESPACE = "fctf"
RESERVED_ENV = {"PORT", "HOST", "FLAG", "FCTF_INSTANCE_ID", "FCTF_TEAM_ID", "FCTF_CHALLENGE_ID"}

# The inputs of the golden example (argo/README.md, section 1.6).
EXAMPLE = {
    "instance_id": 4217,
    "team_id": 7,
    "challenge_id": 12,
    "challenge_name": "Web Chall: Ünïcode édition!",
    "image": "registry.example.com/fctf/challenge-12:1712345678",
    "port": 8080,
    "cpu_request": "100m",
    "cpu_limit": "300m",
    "memory_request": "256Mi",
    "memory_limit": "256Mi",
    "hardened": True,
    "gvisor": True,
    "internet": True,
    "copy_pull_secret": True,
    "flag": "FLAG{example_flag}",
    "env": {"MODE": "ctf", "PORT": "9999"},
    "max_lifetime_secs": 2400,
}

# The naming table of argo/README.md, section 1.2: (team, challenge name, namespace) for
# challenge 12, instance 4217.
NAMING_EXAMPLES = [
    (7, "Web Chall: Ünïcode édition!", "team-7-12-web-chall-unicode-edition-4217"),
    (-1, "Web Chall: Ünïcode édition!", "team-preview-12-web-chall-unicode-edition-4217"),
    (-2, "Web Chall: Ünïcode édition!", "team-shared-12-web-chall-unicode-edition-4217"),
    (7, "A Very Long Challenge Name That Goes On And On, Forever & Ever!",
     "team-7-12-a-very-long-challenge-name-that-goes-on-and-0795e719"),
    (7, "中文", "team-7-12-chal-4217"),
]


def slug(name):
    ascii_only = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode("ascii").lower()
    return re.sub(r"[^a-z0-9]+", "-", ascii_only).strip("-") or "chal"


def team_label(team_id):
    return {-1: "preview", -2: "shared"}.get(team_id, str(team_id))


def namespace_name(team_id, challenge_id, challenge_name, instance_id):
    full = f"team-{team_label(team_id)}-{challenge_id}-{slug(challenge_name)}-{instance_id}"
    if len(full) <= 63:
        return full
    return full[:54].rstrip("-") + "-" + hashlib.sha256(full.encode("utf-8")).hexdigest()[:8]


def common_labels(spec):
    return {
        "app.kubernetes.io/managed-by": "fctf",
        "ctf/kind": "challenge",
        "ctf/instance": str(spec["instance_id"]),
        "ctf/team": team_label(spec["team_id"]),
        "ctf/challenge": str(spec["challenge_id"]),
    }


def bundle(spec):
    """(Namespace, [namespaced objects in contract order])."""
    name = namespace_name(spec["team_id"], spec["challenge_id"], spec["challenge_name"], spec["instance_id"])
    instance = str(spec["instance_id"])
    labels = common_labels(spec)
    port = spec["port"]
    namespace = {
        "apiVersion": "v1",
        "kind": "Namespace",
        "metadata": {"name": name, "labels": dict(labels, **{
            "pod-security.kubernetes.io/enforce": "restricted" if spec["hardened"] else "baseline",
            "pod-security.kubernetes.io/enforce-version": "latest",
        })},
    }

    def meta(object_name):
        return {"name": object_name, "namespace": name, "labels": dict(labels)}

    selector = {"matchLabels": {"ctf/instance": instance}}
    objects = [
        {"apiVersion": "v1", "kind": "Service", "metadata": meta("challenge"), "spec": {
            "type": "ClusterIP", "selector": {"ctf/instance": instance},
            "ports": [{"name": "challenge", "protocol": "TCP", "port": port, "targetPort": port}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("default-deny"),
         "spec": {"podSelector": {}, "policyTypes": ["Ingress", "Egress"]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("allow-gateway"), "spec": {
            "podSelector": selector, "policyTypes": ["Ingress"],
            "ingress": [{"from": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": PLATFORM_NAMESPACE}},
                                   "podSelector": {"matchLabels": {"fctf.dev/role-gateway": "true"}}}],
                         "ports": [{"protocol": "TCP", "port": port}]}]}},
        {"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("allow-cluster-dns"), "spec": {
            "podSelector": selector, "policyTypes": ["Egress"],
            "egress": [{"to": [{"namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
                                "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}}}],
                        "ports": [{"protocol": "UDP", "port": 53}, {"protocol": "TCP", "port": 53}]}]}},
    ]
    if spec["internet"]:
        ports = [{"protocol": protocol, "port": low, "endPort": high}
                 for protocol in ("TCP", "UDP") for low, high in ((1, 52), (54, 65535))]
        objects.append({"apiVersion": "networking.k8s.io/v1", "kind": "NetworkPolicy", "metadata": meta("allow-internet"), "spec": {
            "podSelector": selector, "policyTypes": ["Egress"],
            "egress": [{"to": [
                {"ipBlock": {"cidr": "0.0.0.0/0", "except": ["10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8",
                                                              "169.254.0.0/16", "172.16.0.0/12", "192.168.0.0/16"]}},
                {"ipBlock": {"cidr": "::/0", "except": ["::1/128", "fc00::/7", "fe80::/10"]}}],
                "ports": ports}]}})
    env = [{"name": "PORT", "value": str(port)}, {"name": "HOST", "value": "0.0.0.0"}]
    if spec.get("flag") is not None:
        env.append({"name": "FLAG", "value": spec["flag"]})
    env += [{"name": "FCTF_INSTANCE_ID", "value": instance},
            {"name": "FCTF_TEAM_ID", "value": str(spec["team_id"])},
            {"name": "FCTF_CHALLENGE_ID", "value": str(spec["challenge_id"])}]
    env += [{"name": key, "value": value} for key, value in sorted(spec["env"].items()) if key not in RESERVED_ENV]
    container = {
        "name": "challenge", "image": spec["image"], "imagePullPolicy": "IfNotPresent",
        "ports": [{"name": "challenge", "containerPort": port, "protocol": "TCP"}], "env": env,
        "readinessProbe": {"tcpSocket": {"port": port}, "periodSeconds": 2, "failureThreshold": 3},
        "resources": {"requests": {"cpu": spec["cpu_request"], "memory": spec["memory_request"]},
                      "limits": {"cpu": spec["cpu_limit"], "memory": spec["memory_limit"], "ephemeral-storage": "256Mi"}},
    }
    pod = {"restartPolicy": "Never", "automountServiceAccountToken": False, "enableServiceLinks": False,
           "priorityClassName": "fctf-challenge", "terminationGracePeriodSeconds": 5}
    if spec["gvisor"]:
        pod["runtimeClassName"] = "gvisor"
    if spec["copy_pull_secret"]:
        pod["imagePullSecrets"] = [{"name": "fctf-registry-pull"}]
    if spec["hardened"]:
        pod["securityContext"] = {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                  "seccompProfile": {"type": "RuntimeDefault"}}
        container["securityContext"] = {"allowPrivilegeEscalation": False, "privileged": False,
                                        "readOnlyRootFilesystem": True, "capabilities": {"drop": ["ALL"]}}
        container["volumeMounts"] = [{"name": "tmp", "mountPath": "/tmp"}]
        pod["volumes"] = [{"name": "tmp", "emptyDir": {"medium": "Memory", "sizeLimit": "64Mi"}}]
    pod["containers"] = [container]
    objects.append({"apiVersion": "batch/v1", "kind": "Job", "metadata": meta("challenge"), "spec": {
        "backoffLimit": 0, "activeDeadlineSeconds": spec["max_lifetime_secs"], "ttlSecondsAfterFinished": 300,
        "template": {"metadata": {"labels": dict(labels, **{"app.kubernetes.io/name": "challenge"})}, "spec": pod}}})
    return namespace, objects


def compact(value):
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def workflow(spec):
    """The Workflow the consumer creates for one instance."""
    namespace, objects = bundle(spec)
    instance = str(spec["instance_id"])
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "Workflow",
        "metadata": {"name": f"start-{instance}", "namespace": "argo", "labels": {
            "app.kubernetes.io/managed-by": "fctf", "ctf/kind": "challenge-start", "ctf/instance": instance,
            "ctf/team": team_label(spec["team_id"]), "ctf/challenge": str(spec["challenge_id"])}},
        "spec": {"workflowTemplateRef": {"name": "start-chal-v2-template"}, "arguments": {"parameters": [
            {"name": "instance_id", "value": instance},
            {"name": "namespace", "value": namespace["metadata"]["name"]},
            {"name": "namespace_manifest", "value": compact(namespace)},
            {"name": "manifests", "value": compact(objects)},
            {"name": "copy_pull_secret", "value": "true" if spec["copy_pull_secret"] else "false"},
        ]}},
    }


BUNDLE_HEADER = """\
# The per-instance bundle of the golden example (argo/README.md, section 1.6) as readable YAML:
# the Namespace, then the objects of `manifests` in order. start-workflow.json carries the same
# objects as the JSON parameters the consumer submits. Both are written by reference_render.py;
# .ci/validate-manifests checks them against it, the Kubernetes schemas and the contract.
"""


def write_golden(directory):
    import yaml  # only needed to write the readable copy

    namespace, objects = bundle(EXAMPLE)
    with open(f"{directory}/start-workflow.json", "w", encoding="utf-8") as handle:
        json.dump(workflow(EXAMPLE), handle, indent=2, ensure_ascii=False)
        handle.write("\n")
    with open(f"{directory}/instance-bundle.yaml", "w", encoding="utf-8") as handle:
        handle.write(BUNDLE_HEADER)
        handle.write(yaml.safe_dump_all([namespace] + objects, sort_keys=False, allow_unicode=True))


if __name__ == "__main__":
    write_golden(sys.argv[1] if len(sys.argv) > 1 else ".")
