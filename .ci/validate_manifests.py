#!/usr/bin/env python3
"""Offline validation of fctf's Kubernetes and Argo manifests (driven by .ci/validate-manifests).

What it checks, for every kustomization (built with `kubectl kustomize`) and every standalone
manifest (Secret templates, the Argo examples):
  - built-in kinds against the Kubernetes OpenAPI schemas of the pinned versions, strict
    (unknown fields are errors), through the kubernetes-validate package;
  - Argo kinds against the Argo Workflows JSON schemas, made strict here (every object that
    lists its properties rejects others; IntOrString, Quantity and parameter values also take
    numbers, as Argo does); any other kind is an error unless listed in SKIPPED_KINDS;
  - names and labels are valid DNS names / label syntax;
  - fctf containers: every FCTF_* variable is a key of config/default.toml, service links are
    off, probes hit the ops port, the container is locked down, resources are set;
  - references resolve: Service and NetworkPolicy selectors match pods, RBAC bindings name
    existing roles and accounts, pods name existing accounts, ConfigMaps, PVCs and priority
    classes, secret keys exist in the Secret templates, workflow template parameters and
    steps exist, scripts exist in the scripts ConfigMap;
  - the start-chal-v2-template contract (argo/README.md) on the golden example, that the
    example's JSON parameters equal argo/examples/instance-bundle.yaml, and that both are what
    argo/examples/reference_render.py renders;
  - the admission policies (argo/policies) admit what fctf does and deny hostile variants,
    evaluated with a CEL interpreter (validate_admission.py);
  - the RabbitMQ definitions match the [queue] defaults of config/default.toml;
  - with --fctf-bin, `fctf config check` accepts the environment of every fctf container.
A self-test first feeds known-bad documents through the same checks and fails unless each one
is caught. Prints `manifests: N validated, E errors` and exits non-zero on any error.
"""

import argparse
import copy
import functools
import importlib.util
import ipaddress
import json
import os
import re
import subprocess
import sys
import tomllib

import jsonschema
import kubernetes_validate
import kubernetes_validate.utils
import yaml

import validate_admission

KUSTOMIZATIONS = ["k8s/base", "k8s/overlays/production", "k8s/overlays/single", "argo"]
# Overlays are installed together with argo/: references are resolved over both.
COMBINED_WITH_ARGO = ["k8s/base", "k8s/overlays/production", "k8s/overlays/single"]
SECRET_TEMPLATES = ["k8s/templates/fctf-secrets.example.yaml", "argo/secrets.example.yaml"]
EXAMPLES = ["argo/examples/instance-bundle.yaml", "argo/examples/start-workflow.json", "argo/examples/build-workflow.json"]
ARGO_SCHEMA_FILES = ["schema-v3.7.18.json", "schema-v4.1.2.json"]
ARGO_KINDS = {"Workflow", "WorkflowTemplate", "CronWorkflow", "ClusterWorkflowTemplate", "WorkflowEventBinding"}
# Custom kinds that no schema here covers, with the reason they are skipped. fctf uses none.
SKIPPED_KINDS: dict = {}
FCTF_IMAGE = re.compile(r"(^|/)fctf(:|@|$)")
ROLES = {"api", "center", "consumer", "listener", "gateway", "all"}
PLATFORM_NAMESPACE = "fctf"
ARGO_NAMESPACE = "argo"
PRIVATE_V4 = ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16", "100.64.0.0/10"]

DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS_1035 = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
WF_PARAM = re.compile(r"\{\{\s*workflow\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")
INPUT_PARAM = re.compile(r"\{\{\s*inputs\.parameters\.([A-Za-z0-9_-]+)\s*\}\}")
SCRIPT_PATH = re.compile(r"^/scripts/([A-Za-z0-9_.-]+)$")
POD_KINDS = {"Deployment": ("spec", "template"), "Job": ("spec", "template"), "CronJob": ("spec", "jobTemplate", "spec", "template")}


class Report:
    """Collects errors; `quiet` is used by the self-test."""

    def __init__(self, quiet=False):
        self.errors = []
        self.validated = 0
        self.quiet = quiet

    def error(self, where, message):
        self.errors.append(f"{where}: {message}")
        if not self.quiet:
            print(f"ERROR {where}: {message}")


def ident(doc):
    meta = doc.get("metadata") or {}
    name = meta.get("name") or meta.get("generateName") or "?"
    namespace = meta.get("namespace")
    return f"{doc.get('kind', '?')}/{namespace + '/' if namespace else ''}{name}"


def dig(value, *path, default=None):
    for key in path:
        if isinstance(value, dict) and key in value:
            value = value[key]
        elif isinstance(value, list) and isinstance(key, int) and 0 <= key < len(value):
            value = value[key]
        else:
            return default
    return value


# ---------------------------------------------------------------------------------------------
# Schemas
# ---------------------------------------------------------------------------------------------


class Schemas:
    def __init__(self, kube_versions, argo_dir):
        self.kube_versions = kube_versions
        self.argo = []
        for name in ARGO_SCHEMA_FILES:
            with open(os.path.join(argo_dir, name), encoding="utf-8") as handle:
                self.argo.append((name, strict_argo_definitions(json.load(handle)["definitions"])))
        self._argo_validators = {}
        # kubernetes-validate re-reads its schema files on every call; cache them.
        kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(
            kubernetes_validate.utils.schema_contents
        )

    def argo_validator(self, schema_name, definitions, kind):
        key = (schema_name, kind)
        if key not in self._argo_validators:
            root = {"$ref": f"#/definitions/io.argoproj.workflow.v1alpha1.{kind}", "definitions": definitions}
            self._argo_validators[key] = jsonschema.Draft202012Validator(root)
        return self._argo_validators[key]

    def validate(self, doc, where, report):
        """Schema-validates one document; True when a schema applied."""
        api_version, kind = doc.get("apiVersion", ""), doc.get("kind", "")
        if not api_version or not kind:
            report.error(where, "document without apiVersion or kind")
            return False
        if api_version.startswith("argoproj.io/"):
            if kind not in ARGO_KINDS:
                report.error(where, f"no schema for Argo kind {kind}")
                return False
            for schema_name, definitions in self.argo:
                validator = self.argo_validator(schema_name, definitions, kind)
                for failure in sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))[:5]:
                    path = "/".join(str(p) for p in failure.absolute_path) or "<root>"
                    report.error(where, f"[argo {schema_name}] {path}: {short(failure.message)}")
            return True
        group = api_version.split("/")[0] if "/" in api_version else ""
        if group and "." in group and not group.endswith(".k8s.io"):
            reason = SKIPPED_KINDS.get(f"{api_version}/{kind}")
            if reason is None:
                report.error(where, f"custom kind {api_version} {kind} has no schema here and is not listed as skipped")
            else:
                print(f"skipped {where}: {reason}")
            return False
        for version in self.kube_versions:
            try:
                kubernetes_validate.utils.validate(doc, version, strict=True)
            except kubernetes_validate.ValidationError as failure:
                path = "/".join(str(p) for p in failure.absolute_path) or "<root>"
                report.error(where, f"[kubernetes {version}] {path}: {short(failure.message)}")
            except kubernetes_validate.SchemaNotFoundError as failure:
                report.error(where, f"[kubernetes {version}] {failure.message}")
        return True


def short(text, limit=300):
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def strict_argo_definitions(definitions):
    """The upstream Argo definitions, made strict (see the module docstring)."""
    strict = copy.deepcopy(definitions)
    for definition in strict.values():
        if definition.get("type") == "object" and "properties" in definition and "additionalProperties" not in definition:
            definition["additionalProperties"] = False
    for name, types in (
        ("io.k8s.apimachinery.pkg.util.intstr.IntOrString", ["string", "integer"]),
        ("io.k8s.apimachinery.pkg.api.resource.Quantity", ["string", "number"]),
    ):
        if name in strict:
            strict[name]["type"] = types
    parameter = strict.get("io.argoproj.workflow.v1alpha1.Parameter", {}).get("properties", {})
    for field in ("value", "default"):
        if field in parameter:
            parameter[field]["type"] = ["string", "number", "boolean"]
    return strict


# ---------------------------------------------------------------------------------------------
# Generic checks
# ---------------------------------------------------------------------------------------------


def check_label_map(labels, where, what, report):
    if labels is None:
        return
    if not isinstance(labels, dict):
        report.error(where, f"{what} is not a map")
        return
    for key, value in labels.items():
        prefix, _, name = key.rpartition("/")
        if prefix and (len(prefix) > 253 or not DNS_SUBDOMAIN.match(prefix)):
            report.error(where, f"{what}: bad label key prefix in {key!r}")
        if len(name) > 63 or not LABEL_NAME.match(name):
            report.error(where, f"{what}: bad label key {key!r}")
        if not isinstance(value, str):
            report.error(where, f"{what}: label {key} value must be a string, got {value!r}")
        elif len(value) > 63 or not LABEL_VALUE.match(value):
            report.error(where, f"{what}: bad label value {key}={value!r}")


def check_names(doc, where, report):
    meta = doc.get("metadata") or {}
    name = meta.get("name")
    kind = doc.get("kind")
    if name is None:
        if not meta.get("generateName"):
            report.error(where, "metadata.name is missing")
    elif kind in ("Namespace",):
        if len(name) > 63 or not DNS_LABEL.match(name):
            report.error(where, f"namespace name {name!r} is not a DNS label of at most 63 characters")
    elif kind == "Service":
        if len(name) > 63 or not DNS_1035.match(name):
            report.error(where, f"service name {name!r} is not a DNS-1035 label")
    elif len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        report.error(where, f"name {name!r} is not a DNS subdomain")
    namespace = meta.get("namespace")
    if namespace is not None and (len(namespace) > 63 or not DNS_LABEL.match(namespace)):
        report.error(where, f"namespace {namespace!r} is not a DNS label")
    check_label_map(meta.get("labels"), where, "metadata.labels", report)
    template = pod_template(doc)
    if template is not None:
        check_label_map(dig(template, "metadata", "labels"), where, "pod template labels", report)
    selector = dig(doc, "spec", "selector")
    if kind == "Service":
        check_label_map(selector, where, "spec.selector", report)
    elif isinstance(selector, dict):
        check_label_map(selector.get("matchLabels"), where, "spec.selector.matchLabels", report)


def pod_template(doc):
    path = POD_KINDS.get(doc.get("kind"))
    return dig(doc, *path) if path else None


def config_keys(default_toml):
    """FCTF_* environment names accepted by fctf, from config/default.toml."""
    with open(default_toml, "rb") as handle:
        data = tomllib.load(handle)
    keys = {"FCTF_CONFIG", "FCTF_ROLES"}

    def walk(table, prefix):
        for key, value in table.items():
            path = prefix + [key.upper()]
            if isinstance(value, dict):
                walk(value, path)
            else:
                keys.add("FCTF_" + "__".join(path))

    walk(data, [])
    return keys, data


def fctf_containers(docs):
    """(doc, pod spec, container) for every container running the fctf image."""
    for doc in docs:
        template = pod_template(doc)
        if template is None:
            continue
        spec = template.get("spec") or {}
        for container in spec.get("containers") or []:
            if FCTF_IMAGE.search(container.get("image", "")):
                yield doc, spec, container


def check_fctf_containers(docs, keys, report):
    configmaps = {(dig(d, "metadata", "namespace"), dig(d, "metadata", "name")): d for d in docs if d.get("kind") == "ConfigMap"}
    checked_configmaps = set()
    for doc, spec, container in fctf_containers(docs):
        where = f"{ident(doc)} container {container.get('name')}"
        namespace = dig(doc, "metadata", "namespace")
        if spec.get("enableServiceLinks") is not False:
            report.error(where, "enableServiceLinks must be false (service links inject FCTF_*_SERVICE_* variables fctf rejects)")
        for entry in container.get("env") or []:
            if entry["name"].startswith("FCTF_") and entry["name"] not in keys:
                report.error(where, f"env {entry['name']} is not a key of config/default.toml")
        for source in container.get("envFrom") or []:
            ref = dig(source, "configMapRef", "name")
            if ref is None:
                report.error(where, "envFrom other than a ConfigMap is not expected")
                continue
            configmap = configmaps.get((namespace, ref))
            if configmap is None:
                report.error(where, f"envFrom ConfigMap {ref} does not exist")
                continue
            if (namespace, ref) in checked_configmaps:
                continue
            checked_configmaps.add((namespace, ref))
            for key in (configmap.get("data") or {}):
                if not key.startswith("FCTF_") or key not in keys:
                    report.error(f"{ident(configmap)}", f"{key} is not a key of config/default.toml")
        args = container.get("args") or []
        if len(args) < 3 or args[0] != "run" or args[1] != "--role" or any(r not in ROLES for r in args[2].split(",")):
            report.error(where, f"args must be `run --role <role>`, got {args}")
        ports = {p.get("name"): p.get("containerPort") for p in container.get("ports") or []}
        if ports.get("ops") != 9000:
            report.error(where, "the ops port (named ops, 9000) must be declared")
        for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz"), ("startupProbe", "/healthz")):
            get = dig(container, probe, "httpGet") or {}
            if get.get("path") != path or get.get("port") not in ("ops", 9000):
                report.error(where, f"{probe} must GET {path} on the ops port")
        security = container.get("securityContext") or {}
        if security.get("readOnlyRootFilesystem") is not True or security.get("allowPrivilegeEscalation") is not False:
            report.error(where, "container must have readOnlyRootFilesystem and no privilege escalation")
        if "ALL" not in (dig(security, "capabilities", "drop") or []):
            report.error(where, "container must drop ALL capabilities")
        pod_security = spec.get("securityContext") or {}
        if pod_security.get("runAsNonRoot") is not True or pod_security.get("runAsUser") != 10001:
            report.error(where, "pod must run as non-root uid 10001 (the image's user)")
        if dig(pod_security, "seccompProfile", "type") != "RuntimeDefault":
            report.error(where, "pod must use the RuntimeDefault seccomp profile")
        check_resources(container, where, report)
        mounts = {m.get("mountPath") for m in container.get("volumeMounts") or []}
        if "/data" not in mounts or "/tmp" not in mounts:
            report.error(where, "the read-only root needs writable /data and /tmp mounts")


def check_resources(container, where, report):
    resources = container.get("resources") or {}
    for kind in ("requests", "limits"):
        values = resources.get(kind) or {}
        if "cpu" not in values or "memory" not in values:
            report.error(where, f"resources.{kind} must set cpu and memory")


def check_workloads(docs, report):
    """Every container of a Deployment, Job or CronJob is locked down and sized."""
    for doc in docs:
        template = pod_template(doc)
        if template is None:
            continue
        spec = template.get("spec") or {}
        for container in (spec.get("containers") or []) + (spec.get("initContainers") or []):
            where = f"{ident(doc)} container {container.get('name')}"
            check_resources(container, where, report)
            security = container.get("securityContext") or {}
            if security.get("allowPrivilegeEscalation") is not False or security.get("privileged"):
                report.error(where, "container must not be privileged or escalate privileges")


# ---------------------------------------------------------------------------------------------
# References
# ---------------------------------------------------------------------------------------------


def pods_by_namespace(docs):
    """Label sets of every pod the manifests create, by namespace."""
    pods = {}
    for doc in docs:
        namespace = dig(doc, "metadata", "namespace")
        template = pod_template(doc)
        if template is not None:
            pods.setdefault(namespace, []).append(dig(template, "metadata", "labels", default={}) or {})
        if doc.get("kind") == "WorkflowTemplate":
            pods.setdefault(namespace, []).append(dig(doc, "spec", "podMetadata", "labels", default={}) or {})
    return pods


def selects(selector, labels):
    return all(labels.get(key) == value for key, value in selector.items())


def check_references(docs, secret_templates, report):
    by_kind = {}
    for doc in docs:
        by_kind.setdefault(doc.get("kind"), {})[(dig(doc, "metadata", "namespace"), dig(doc, "metadata", "name"))] = doc
    names = lambda kind: by_kind.get(kind, {})  # noqa: E731
    pods = pods_by_namespace(docs)

    for (namespace, name), service in names("Service").items():
        selector = dig(service, "spec", "selector") or {}
        if not any(selects(selector, labels) for labels in pods.get(namespace, [])):
            report.error(ident(service), f"selector {selector} matches no pod")
        for port in dig(service, "spec", "ports", default=[]) or []:
            target = port.get("targetPort")
            if isinstance(target, str) and not any(
                target in {p.get("name") for p in c.get("ports") or []}
                for d in docs if dig(d, "metadata", "namespace") == namespace and pod_template(d)
                and selects(selector, dig(pod_template(d), "metadata", "labels", default={}) or {})
                for c in dig(pod_template(d), "spec", "containers", default=[]) or []
            ):
                report.error(ident(service), f"targetPort {target} is not a named port of the selected pods")

    for (namespace, name), ingress in names("Ingress").items():
        for rule in dig(ingress, "spec", "rules", default=[]) or []:
            for path in dig(rule, "http", "paths", default=[]) or []:
                backend = dig(path, "backend", "service") or {}
                service = names("Service").get((namespace, backend.get("name")))
                if service is None:
                    report.error(ident(ingress), f"backend Service {backend.get('name')} does not exist")
                    continue
                port = backend.get("port") or {}
                declared = dig(service, "spec", "ports", default=[]) or []
                if not any(port.get("name") == p.get("name") if "name" in port else port.get("number") == p.get("port") for p in declared):
                    report.error(ident(ingress), f"backend port {port} is not a port of Service {backend.get('name')}")
        hosts = {h for tls in dig(ingress, "spec", "tls", default=[]) or [] for h in tls.get("hosts") or []}
        for rule in dig(ingress, "spec", "rules", default=[]) or []:
            if rule.get("host") not in hosts:
                report.error(ident(ingress), f"host {rule.get('host')} has no TLS entry (cert-manager would not issue it)")

    for (namespace, name), policy in names("NetworkPolicy").items():
        selector = dig(policy, "spec", "podSelector", "matchLabels") or {}
        if selector and not any(selects(selector, labels) for labels in pods.get(namespace, [])):
            report.error(ident(policy), f"podSelector {selector} matches no pod")

    for kind in ("RoleBinding", "ClusterRoleBinding"):
        for (namespace, name), binding in names(kind).items():
            ref = binding.get("roleRef") or {}
            role_kind = ref.get("kind")
            key = (namespace if role_kind == "Role" else None, ref.get("name"))
            if key not in names(role_kind):
                report.error(ident(binding), f"roleRef {role_kind} {ref.get('name')} does not exist")
            for subject in binding.get("subjects") or []:
                if subject.get("kind") == "ServiceAccount" and (subject.get("namespace"), subject.get("name")) not in names("ServiceAccount"):
                    report.error(ident(binding), f"subject ServiceAccount {subject.get('namespace')}/{subject.get('name')} does not exist")

    priority_classes = {name for _, name in names("PriorityClass")}
    runtime_classes = {name for _, name in names("RuntimeClass")}
    for doc in docs:
        namespace = dig(doc, "metadata", "namespace")
        specs = []
        template = pod_template(doc)
        if template is not None:
            specs.append(template.get("spec") or {})
        if doc.get("kind") == "WorkflowTemplate":
            spec = doc.get("spec") or {}
            for account in (spec.get("serviceAccountName"), dig(spec, "executor", "serviceAccountName")):
                if account and (namespace, account) not in names("ServiceAccount"):
                    report.error(ident(doc), f"service account {account} does not exist")
            if spec.get("podPriorityClassName") and spec["podPriorityClassName"] not in priority_classes:
                report.error(ident(doc), f"priority class {spec['podPriorityClassName']} does not exist")
            for template_spec in spec.get("templates") or []:
                specs.append({"volumes": template_spec.get("volumes") or [],
                              "containers": [c for c in [template_spec.get("container"), template_spec.get("script")] if c]
                              + (template_spec.get("initContainers") or [])})
        for spec in specs:
            account = spec.get("serviceAccountName")
            if account and (namespace, account) not in names("ServiceAccount"):
                report.error(ident(doc), f"service account {account} does not exist")
            if spec.get("priorityClassName") and spec["priorityClassName"] not in priority_classes:
                report.error(ident(doc), f"priority class {spec['priorityClassName']} does not exist")
            if spec.get("runtimeClassName") and spec["runtimeClassName"] not in runtime_classes:
                report.error(ident(doc), f"runtime class {spec['runtimeClassName']} does not exist")
            for volume in spec.get("volumes") or []:
                claim = dig(volume, "persistentVolumeClaim", "claimName")
                if claim and (namespace, claim) not in names("PersistentVolumeClaim"):
                    report.error(ident(doc), f"PersistentVolumeClaim {claim} does not exist")
                configmap = dig(volume, "configMap", "name")
                if configmap and (namespace, configmap) not in names("ConfigMap"):
                    report.error(ident(doc), f"ConfigMap {configmap} does not exist")
                secret = dig(volume, "secret", "secretName")
                if secret:
                    check_secret_ref(namespace, secret, [i.get("key") for i in dig(volume, "secret", "items", default=[]) or []],
                                     secret_templates, ident(doc), report)
            for container in spec.get("containers") or []:
                for entry in container.get("env") or []:
                    ref = dig(entry, "valueFrom", "secretKeyRef")
                    if ref:
                        check_secret_ref(namespace, ref.get("name"), [ref.get("key")], secret_templates, ident(doc), report)
                    ref = dig(entry, "valueFrom", "configMapKeyRef")
                    if ref and (namespace, ref.get("name")) not in names("ConfigMap"):
                        report.error(ident(doc), f"ConfigMap {ref.get('name')} does not exist")


def check_secret_ref(namespace, name, keys, secret_templates, where, report):
    template = secret_templates.get((namespace, name))
    if template is None:
        report.error(where, f"Secret {namespace}/{name} is not documented by a Secret template")
        return
    present = set((template.get("stringData") or {}).keys()) | set((template.get("data") or {}).keys())
    for key in keys:
        if key and key not in present:
            report.error(where, f"Secret {namespace}/{name} has no key {key} in its template")


def check_rbac_files(repo, docs, report):
    """k8s/rbac/<role>.yaml holds exactly role <role>'s rules; api and gateway have none."""
    rbac_dir = os.path.join(repo, "k8s", "rbac")
    for filename in sorted(os.listdir(rbac_dir)):
        if not filename.endswith(".yaml") or filename == "kustomization.yaml":
            continue
        role = filename[: -len(".yaml")]
        with open(os.path.join(rbac_dir, filename), encoding="utf-8") as handle:
            for doc in yaml.safe_load_all(handle):
                where = f"k8s/rbac/{filename} {ident(doc)}"
                if doc.get("kind") not in ("ClusterRole", "Role"):
                    report.error(where, "only ClusterRole and Role objects belong in the RBAC rule files")
                if dig(doc, "metadata", "name") != f"fctf-{role}" or dig(doc, "metadata", "labels", "app.kubernetes.io/component") != role:
                    report.error(where, f"must be named fctf-{role} and labelled app.kubernetes.io/component={role}")
                if doc.get("kind") == "Role" and dig(doc, "metadata", "namespace") != ARGO_NAMESPACE:
                    report.error(where, "namespaced rules of a role live in the argo namespace")
    for doc in docs:
        if doc.get("kind") == "ServiceAccount" and dig(doc, "metadata", "name") in ("fctf-api", "fctf-gateway"):
            if doc.get("automountServiceAccountToken") is not False:
                report.error(ident(doc), "api and gateway use no Kubernetes API: automountServiceAccountToken must be false")
        if doc.get("kind") in ("RoleBinding", "ClusterRoleBinding"):
            for subject in doc.get("subjects") or []:
                if subject.get("name") in ("fctf-api", "fctf-gateway"):
                    report.error(ident(doc), "api and gateway must not be bound to any role")


# ---------------------------------------------------------------------------------------------
# Argo templates and the start contract
# ---------------------------------------------------------------------------------------------


def check_workflow_templates(docs, report):
    configmaps = {dig(d, "metadata", "name"): d for d in docs if d.get("kind") == "ConfigMap"}
    scripts = set((configmaps.get("fctf-workflow-scripts") or {}).get("data", {}).keys())
    for doc in docs:
        if doc.get("kind") != "WorkflowTemplate":
            continue
        where = ident(doc)
        spec = doc.get("spec") or {}
        declared = {p["name"] for p in dig(spec, "arguments", "parameters", default=[]) or []}
        templates = {t["name"]: t for t in spec.get("templates") or []}
        for used in sorted(set(WF_PARAM.findall(json.dumps(spec)))):
            if used not in declared:
                report.error(where, f"{{{{workflow.parameters.{used}}}}} is not a declared parameter")
        for field in ("entrypoint", "onExit"):
            if spec.get(field) and spec[field] not in templates:
                report.error(where, f"{field} {spec[field]} is not a template")
        for name, template in templates.items():
            inputs = {p["name"] for p in dig(template, "inputs", "parameters", default=[]) or []}
            for used in sorted(set(INPUT_PARAM.findall(json.dumps(template)))):
                if used not in inputs:
                    report.error(where, f"template {name} uses undeclared input {used}")
            for group in template.get("steps") or []:
                for step in group:
                    if step.get("template") not in templates:
                        report.error(where, f"step {step.get('name')} calls unknown template {step.get('template')}")
                    target = templates.get(step.get("template")) or {}
                    wanted = {p["name"] for p in dig(target, "inputs", "parameters", default=[]) or [] if "value" not in p and "default" not in p}
                    given = {p["name"] for p in dig(step, "arguments", "parameters", default=[]) or []}
                    if wanted - given:
                        report.error(where, f"step {step.get('name')} does not pass {sorted(wanted - given)}")
            for container in [template.get("container"), template.get("script")] + (template.get("initContainers") or []):
                if not container:
                    continue
                check_scripts(container, scripts, f"{where} template {name}", report)
                check_resources(container, f"{where} template {name} container {container.get('name', 'main')}", report)
    for doc in docs:
        template = pod_template(doc)
        for container in dig(template, "spec", "containers", default=[]) or [] if template else []:
            check_scripts(container, scripts, ident(doc), report)


def check_scripts(container, scripts, where, report):
    for arg in (container.get("command") or []) + (container.get("args") or []):
        match = SCRIPT_PATH.match(arg)
        if match and match.group(1) not in scripts:
            report.error(where, f"runs {arg}, which is not in ConfigMap fctf-workflow-scripts")


def parameters_of(workflow):
    return {p["name"]: p.get("value") for p in dig(workflow, "spec", "arguments", "parameters", default=[]) or []}


def check_submission(workflow, templates, where, report):
    """The fctf-workflow-submissions admission policy, and the template's parameters."""
    spec = workflow.get("spec") or {}
    if set(spec) - {"workflowTemplateRef", "arguments"}:
        report.error(where, f"spec may only hold workflowTemplateRef and arguments, has {sorted(spec)}")
    labels = dig(workflow, "metadata", "labels", default={}) or {}
    template_name = dig(spec, "workflowTemplateRef", "name")
    expected = {"start-chal-v2-template": ("challenge-start", "ctf/instance"), "up-challenge-template": ("challenge-build", "ctf/challenge")}
    if template_name not in expected:
        report.error(where, f"references unknown template {template_name}")
        return
    kind, required_label = expected[template_name]
    if labels.get("ctf/kind") != kind or required_label not in labels:
        report.error(where, f"labels must include ctf/kind={kind} and {required_label}")
    name = dig(workflow, "metadata", "name") or ""
    if len(name) > 63:
        report.error(where, "workflow names must fit a label value (63 characters)")
    template = templates.get(template_name)
    if template is None:
        report.error(where, f"template {template_name} is not in argo/")
        return
    declared = {p["name"]: p for p in dig(template, "spec", "arguments", "parameters", default=[]) or []}
    given = parameters_of(workflow)
    for unknown in sorted(set(given) - set(declared)):
        report.error(where, f"parameter {unknown} is not declared by {template_name}")
    for missing in sorted(n for n, p in declared.items() if "value" not in p and n not in given):
        report.error(where, f"required parameter {missing} of {template_name} is missing")
    for parameter_name, value in given.items():
        allowed = (declared.get(parameter_name) or {}).get("enum")
        if allowed and value not in allowed:
            report.error(where, f"parameter {parameter_name}={value!r} is not one of {allowed}")


def port_ranges(ports):
    for port in ports or [{}]:
        low = port.get("port")
        if low is None:
            yield port.get("protocol", "TCP"), 1, 65535
        elif isinstance(low, int):
            yield port.get("protocol", "TCP"), low, port.get("endPort", low)


def check_instance_bundle(namespace, manifests, namespace_param, instance_id, where, report):
    """The per-instance bundle contract of argo/README.md."""
    if namespace.get("kind") != "Namespace":
        report.error(where, "namespace_manifest must be a Namespace")
        return
    name = dig(namespace, "metadata", "name") or ""
    labels = dig(namespace, "metadata", "labels", default={}) or {}
    if name != namespace_param:
        report.error(where, f"namespace_manifest name {name!r} differs from the namespace parameter {namespace_param!r}")
    if len(name) > 63 or not DNS_LABEL.match(name):
        report.error(where, f"namespace {name!r} is not a DNS label of at most 63 characters")
    if labels.get("ctf/kind") != "challenge" or labels.get("ctf/instance") != instance_id:
        report.error(where, "the Namespace must be labelled ctf/kind=challenge and ctf/instance=<instance_id>")
    for key in ("ctf/team", "ctf/challenge"):
        if key not in labels:
            report.error(where, f"the Namespace must carry the label {key}")
    enforce = labels.get("pod-security.kubernetes.io/enforce")
    if enforce not in ("baseline", "restricted"):
        report.error(where, "the Namespace must enforce Pod Security baseline or restricted")
    if not isinstance(manifests, list):
        report.error(where, "manifests must be a JSON array")
        return
    kinds = {}
    for obj in manifests:
        kinds.setdefault(obj.get("kind"), []).append(obj)
        obj_where = f"{where} {ident(obj)}"
        if obj.get("kind") not in ("Service", "NetworkPolicy", "Job"):
            report.error(obj_where, "only Service, NetworkPolicy and Job objects belong in manifests")
        if dig(obj, "metadata", "namespace") != name:
            report.error(obj_where, f"metadata.namespace must be {name}")
        obj_labels = dig(obj, "metadata", "labels", default={}) or {}
        if obj_labels.get("ctf/kind") != "challenge" or obj_labels.get("ctf/instance") != instance_id:
            report.error(obj_where, "must be labelled ctf/kind=challenge and ctf/instance=<instance_id>")
    jobs = kinds.get("Job", [])
    if len(jobs) != 1 or dig(jobs[0], "metadata", "name") != "challenge":
        report.error(where, "manifests must hold exactly one Job, named challenge")
        return
    job = jobs[0]
    job_where = f"{where} {ident(job)}"
    job_spec = job.get("spec") or {}
    if not isinstance(job_spec.get("activeDeadlineSeconds"), int) or job_spec["activeDeadlineSeconds"] <= 0:
        report.error(job_where, "activeDeadlineSeconds must be a positive integer (expiry backstop)")
    if not isinstance(job_spec.get("ttlSecondsAfterFinished"), int):
        report.error(job_where, "ttlSecondsAfterFinished must be set")
    if job_spec.get("backoffLimit") != 0:
        report.error(job_where, "backoffLimit must be 0 (one pod per instance)")
    pod_labels = dig(job_spec, "template", "metadata", "labels", default={}) or {}
    if pod_labels.get("ctf/kind") != "challenge" or pod_labels.get("ctf/instance") != instance_id:
        report.error(job_where, "pods must be labelled ctf/kind=challenge and ctf/instance=<instance_id>")
    pod = dig(job_spec, "template", "spec", default={}) or {}
    if pod.get("automountServiceAccountToken") is not False or pod.get("serviceAccountName", "default") != "default":
        report.error(job_where, "pods must not mount a service account token")
    if pod.get("restartPolicy") != "Never" or pod.get("priorityClassName") != "fctf-challenge":
        report.error(job_where, "pods need restartPolicy Never and priorityClassName fctf-challenge")
    if pod.get("enableServiceLinks") is not False:
        report.error(job_where, "pods need enableServiceLinks false")
    if any(pod.get(flag) for flag in ("hostNetwork", "hostPID", "hostIPC")) or pod.get("initContainers"):
        report.error(job_where, "pods must not use host namespaces or init containers")
    if any("hostPath" in volume for volume in pod.get("volumes") or []):
        report.error(job_where, "pods must not mount host paths")
    if pod.get("runtimeClassName") not in (None, "gvisor"):
        report.error(job_where, "runtimeClassName is gvisor or absent")
    containers = pod.get("containers") or []
    if len(containers) != 1 or containers[0].get("name") != "challenge":
        report.error(job_where, "pods run exactly one container, named challenge")
        return
    container = containers[0]
    security = container.get("securityContext") or {}
    if security.get("privileged"):
        report.error(job_where, "the container must not be privileged")
    if enforce == "restricted":
        pod_security = pod.get("securityContext") or {}
        if pod_security.get("runAsNonRoot") is not True or dig(pod_security, "seccompProfile", "type") != "RuntimeDefault":
            report.error(job_where, "hardened pods need runAsNonRoot and the RuntimeDefault seccomp profile")
        if (security.get("allowPrivilegeEscalation") is not False or security.get("readOnlyRootFilesystem") is not True
                or "ALL" not in (dig(security, "capabilities", "drop") or [])):
            report.error(job_where, "hardened containers need no privilege escalation, a read-only root and no capabilities")
    check_resources(container, job_where, report)
    ports = [p.get("containerPort") for p in container.get("ports") or []]
    env = {e.get("name"): e.get("value") for e in container.get("env") or []}
    if len(ports) != 1 or env.get("PORT") != str(ports[0]) or env.get("FCTF_INSTANCE_ID") != instance_id:
        report.error(job_where, "the container declares one port, and PORT and FCTF_INSTANCE_ID in its environment")
    if dig(container, "readinessProbe", "tcpSocket", "port") != (ports[0] if ports else None):
        report.error(job_where, "the readiness probe is a TCP connect to the challenge port")

    services = kinds.get("Service", [])
    if len(services) != 1 or dig(services[0], "metadata", "name") != "challenge":
        report.error(where, "manifests must hold exactly one Service, named challenge")
    else:
        service = dig(services[0], "spec", default={}) or {}
        if service.get("type", "ClusterIP") != "ClusterIP" or service.get("externalIPs"):
            report.error(where, "the Service is a plain ClusterIP")
        if not service.get("selector") or not selects(service["selector"], pod_labels):
            report.error(where, "the Service must select the Job's pod")
        if [p.get("targetPort") for p in service.get("ports") or []] != ports:
            report.error(where, "the Service targets the container port")

    policies = {dig(p, "metadata", "name"): p.get("spec") or {} for p in kinds.get("NetworkPolicy", [])}
    deny = policies.get("default-deny")
    if deny is None or deny.get("podSelector") != {} or sorted(deny.get("policyTypes") or []) != ["Egress", "Ingress"] \
            or deny.get("ingress") or deny.get("egress"):
        report.error(where, "NetworkPolicy default-deny must deny all ingress and egress of every pod")
    gateway = policies.get("allow-gateway")
    if gateway is None:
        report.error(where, "NetworkPolicy allow-gateway is missing")
    for policy_name, spec in policies.items():
        for rule in spec.get("ingress") or []:
            for peer in rule.get("from") or [{}]:
                if (dig(peer, "namespaceSelector", "matchLabels") != {"kubernetes.io/metadata.name": PLATFORM_NAMESPACE}
                        or dig(peer, "podSelector", "matchLabels") != {"fctf.dev/role-gateway": "true"}):
                    report.error(where, f"NetworkPolicy {policy_name}: ingress is only allowed from the gateway pods")
            if [p.get("port") for p in rule.get("ports") or []] != ports:
                report.error(where, f"NetworkPolicy {policy_name}: ingress is only allowed on the challenge port")
        for rule in spec.get("egress") or []:
            for peer in rule.get("to") or [{}]:
                block = peer.get("ipBlock")
                if block is None:
                    is_dns = (dig(peer, "namespaceSelector", "matchLabels") == {"kubernetes.io/metadata.name": "kube-system"}
                              and dig(peer, "podSelector", "matchLabels") == {"k8s-app": "kube-dns"})
                    if not is_dns:
                        report.error(where, f"NetworkPolicy {policy_name}: egress to pods is only allowed to the cluster DNS")
                    continue
                network = ipaddress.ip_network(block["cidr"])
                excepted = [ipaddress.ip_network(c) for c in block.get("except") or []]
                private = PRIVATE_V4 if network.version == 4 else ["fc00::/7", "fe80::/10"]
                for private_net in map(ipaddress.ip_network, private):
                    if network.overlaps(private_net) and not any(private_net.subnet_of(e) for e in excepted):
                        report.error(where, f"NetworkPolicy {policy_name}: egress reaches the private range {private_net}")
                for protocol, low, high in port_ranges(rule.get("ports")):
                    if low <= 53 <= high:
                        report.error(where, f"NetworkPolicy {policy_name}: {protocol} 53 to {block['cidr']} allows DNS past the cluster DNS")


def check_examples(repo, argo_docs, loaded, report):
    templates = {dig(d, "metadata", "name"): d for d in argo_docs if d.get("kind") == "WorkflowTemplate"}
    for path, docs in loaded.items():
        for doc in docs:
            if doc.get("kind") == "Workflow":
                check_submission(doc, templates, f"{path} {ident(doc)}", report)
    start = (loaded.get("argo/examples/start-workflow.json") or [None])[0]
    bundle = loaded.get("argo/examples/instance-bundle.yaml") or []
    if start is None or not bundle:
        report.error("argo/examples", "the golden start example is missing")
        return []
    params = parameters_of(start)
    where = "argo/examples/start-workflow.json"
    try:
        namespace = json.loads(params.get("namespace_manifest") or "")
        manifests = json.loads(params.get("manifests") or "")
    except ValueError as failure:
        report.error(where, f"namespace_manifest and manifests must be JSON: {failure}")
        return []
    check_instance_bundle(namespace, manifests, params.get("namespace"), params.get("instance_id"), where, report)
    if [namespace] + manifests != bundle:
        report.error(where, "its parameters differ from argo/examples/instance-bundle.yaml")
    check_reference_render(repo, start, report)
    if dig(start, "metadata", "labels", "ctf/instance") != params.get("instance_id"):
        report.error(where, "the ctf/instance label must equal the instance_id parameter")
    return [namespace] + manifests


def check_reference_render(repo, start, report):
    """The golden files and the README naming table are what reference_render.py produces."""
    path = os.path.join(repo, "argo", "examples", "reference_render.py")
    loader = importlib.util.spec_from_file_location("reference_render", path)
    reference = importlib.util.module_from_spec(loader)
    loader.loader.exec_module(reference)
    if reference.workflow(reference.EXAMPLE) != start:
        report.error("argo/examples/start-workflow.json", "differs from reference_render.py's rendering of EXAMPLE (rerun it)")
    with open(os.path.join(repo, "argo", "README.md"), encoding="utf-8") as handle:
        readme = handle.read()
    for team, name, expected in reference.NAMING_EXAMPLES:
        got = reference.namespace_name(team, 12, name, 4217)
        if got != expected:
            report.error("argo/examples/reference_render.py", f"namespace_name({team}, 12, {name!r}, 4217) = {got}, expected {expected}")
        if f"`{expected}`" not in readme:
            report.error("argo/README.md", f"the naming table lacks {expected}")


# ---------------------------------------------------------------------------------------------
# RabbitMQ and fctf itself
# ---------------------------------------------------------------------------------------------


def check_rabbitmq(path, config, report):
    where = os.path.basename(os.path.dirname(path)) + "/" + os.path.basename(path)
    with open(path, encoding="utf-8") as handle:
        definitions = json.load(handle)
    queue = config["queue"]
    vhost, exchange, name, key = queue["vhost"], queue["exchange"], queue["queue"], queue["routing_key"]
    dlx, dlq = f"{exchange}.dlx", f"{name}.dlq"
    if [v.get("name") for v in definitions.get("vhosts", [])] != [vhost]:
        report.error(where, f"vhosts must be [{vhost}]")
    exchanges = {e["name"]: e for e in definitions.get("exchanges", [])}
    queues = {q["name"]: q for q in definitions.get("queues", [])}
    expected_exchanges = {exchange: "direct", dlx: "fanout"}
    for exchange_name, exchange_type in expected_exchanges.items():
        found = exchanges.get(exchange_name)
        if not found or found.get("type") != exchange_type or found.get("durable") is not True or found.get("vhost") != vhost:
            report.error(where, f"exchange {exchange_name} must be a durable {exchange_type} exchange in {vhost}")
    if set(exchanges) != set(expected_exchanges) or set(queues) != {name, dlq}:
        report.error(where, f"exactly the exchanges {sorted(expected_exchanges)} and queues {[name, dlq]} are expected")
    arguments = (queues.get(name) or {}).get("arguments") or {}
    wanted = {"x-max-length": queue["max_length"], "x-overflow": "reject-publish", "x-dead-letter-exchange": dlx}
    if arguments != wanted:
        report.error(where, f"queue {name} arguments must be {wanted} (what fctf declares), got {arguments}")
    for queue_name in (name, dlq):
        found = queues.get(queue_name) or {}
        if found.get("durable") is not True or found.get("vhost") != vhost:
            report.error(where, f"queue {queue_name} must be durable in {vhost}")
    bindings = {(b.get("source"), b.get("destination"), b.get("routing_key"), b.get("vhost")) for b in definitions.get("bindings", [])}
    if bindings != {(exchange, name, key, vhost), (dlx, dlq, key, vhost)}:
        report.error(where, f"bindings must be {exchange}->{name} and {dlx}->{dlq} with key {key}")


DUMMY_SECRET_VALUES = {
    "store-url": "postgres://fctf:x@postgresql.fctf-data.svc:5432/fctf",
    "cache-url": "redis://redis-master.fctf-data.svc:6379/0",
    "queue-url": "amqp://fctf:x@rabbitmq.fctf-data.svc:5672",
}


def check_with_fctf(fctf_bin, source, docs, report):
    """`fctf config check` accepts the environment of every fctf container."""
    configmaps = {(dig(d, "metadata", "namespace"), dig(d, "metadata", "name")): d.get("data") or {} for d in docs if d.get("kind") == "ConfigMap"}
    checked = accepted = 0
    for doc, _, container in fctf_containers(docs):
        env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
        for source_ref in container.get("envFrom") or []:
            env.update(configmaps.get((dig(doc, "metadata", "namespace"), dig(source_ref, "configMapRef", "name")), {}))
        for entry in container.get("env") or []:
            if "value" in entry:
                env[entry["name"]] = str(entry["value"])
            elif dig(entry, "valueFrom", "secretKeyRef"):
                env[entry["name"]] = DUMMY_SECRET_VALUES.get(entry["valueFrom"]["secretKeyRef"]["key"], "dummy-secret-for-validation")
        args = container.get("args") or []
        command = [fctf_bin] + args[1:] + ["config", "check"]
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, check=False)
        checked += 1
        if result.returncode == 0:
            accepted += 1
        else:
            report.error(f"{source} {ident(doc)}", f"`fctf {' '.join(args[1:])} config check` failed: {short(result.stderr or result.stdout, 600)}")
    print(f"{source}: fctf config check accepted {accepted} of {checked} container environments")


# ---------------------------------------------------------------------------------------------
# Driver
# ---------------------------------------------------------------------------------------------


def kustomize(repo, path):
    result = subprocess.run(["kubectl", "kustomize", os.path.join(repo, path)], capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"kubectl kustomize {path} failed: {result.stderr.strip()}")
    return [d for d in yaml.safe_load_all(result.stdout) if d]


def load_file(repo, path):
    with open(os.path.join(repo, path), encoding="utf-8") as handle:
        if path.endswith(".json"):
            return [json.load(handle)]
        return [d for d in yaml.safe_load_all(handle) if d]


def validate_docs(schemas, source, docs, report):
    for doc in docs:
        where = f"{source} {ident(doc)}"
        schemas.validate(doc, where, report)
        check_names(doc, where, report)
        report.validated += 1


def run(args, schemas, report):
    repo = args.repo
    keys, config = config_keys(os.path.join(repo, "config", "default.toml"))
    built = {}
    for path in KUSTOMIZATIONS:
        try:
            built[path] = kustomize(repo, path)
        except RuntimeError as failure:
            report.error(path, str(failure))
            built[path] = []
        print(f"{path}: kustomize built {len(built[path])} documents")
        validate_docs(schemas, path, built[path], report)
    loaded = {}
    for path in SECRET_TEMPLATES + EXAMPLES:
        loaded[path] = load_file(repo, path)
        validate_docs(schemas, path, loaded[path], report)
    secret_templates = {}
    for path in SECRET_TEMPLATES:
        for doc in loaded[path]:
            secret_templates[(dig(doc, "metadata", "namespace"), dig(doc, "metadata", "name"))] = doc

    for path in COMBINED_WITH_ARGO:
        docs = built[path] + built["argo"]
        check_references(docs, secret_templates, report)
        check_fctf_containers(built[path], keys, report)
        check_workloads(built[path], report)
        if args.fctf_bin:
            check_with_fctf(args.fctf_bin, path, built[path], report)
    check_workloads(built["argo"], report)
    check_rbac_files(repo, built["k8s/base"] + built["k8s/overlays/single"] + built["argo"], report)
    check_workflow_templates(built["argo"], report)
    bundle = check_examples(repo, built["argo"], loaded, report)
    # The objects inside the example's JSON parameters are manifests too.
    validate_docs(schemas, "argo/examples/start-workflow.json parameters", bundle, report)
    if bundle:
        scenarios = validate_admission.check(
            built["argo"], loaded["argo/examples/start-workflow.json"][0], bundle[0], bundle[1:],
            loaded["argo/examples/build-workflow.json"][0], report)
        print(f"argo/policies: {scenarios} admission scenarios evaluated")
    check_rabbitmq(os.path.join(repo, "k8s", "rabbitmq", "definitions.json"), config, report)
    report.validated += 1


# ---------------------------------------------------------------------------------------------
# Self-test: each known-bad input must be caught.
# ---------------------------------------------------------------------------------------------

BAD_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: broken, namespace: fctf}
spec:
  replica: 2
  selector: {matchLabels: {app: broken}}
  template:
    metadata: {labels: {app: broken}}
    spec:
      containers: [{name: c, image: busybox}]
"""
BAD_SERVICE = """
apiVersion: v1
kind: Service
metadata: {name: broken, namespace: fctf}
spec:
  ports: [{port: eighty}]
"""
BAD_TEMPLATE = """
apiVersion: argoproj.io/v1alpha1
kind: WorkflowTemplate
metadata: {name: broken, namespace: argo}
spec:
  entrypont: main
  templates: [{name: main, container: {image: busybox}}]
"""
BAD_NAMESPACE = """
apiVersion: v1
kind: Namespace
metadata: {name: Team_7, labels: {ctf/kind: "challenge!"}}
"""
UNKNOWN_KIND = """
apiVersion: cert-manager.io/v1
kind: Certificate
metadata: {name: broken, namespace: fctf}
spec: {secretName: x}
"""
BAD_FCTF_DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: fctf-api, namespace: fctf}
spec:
  selector: {matchLabels: {app: x}}
  template:
    metadata: {labels: {app: x}}
    spec:
      containers:
        - name: fctf
          image: registry.example.com/fctf/fctf:1
          args: [run, --role, api]
          env: [{name: FCTF_STORE__URLL, value: x}]
"""


def self_test(schemas, config_env_keys):
    cases = []

    def schema_case(name, text):
        def probe(report):
            for doc in yaml.safe_load_all(text):
                schemas.validate(doc, name, report)
                check_names(doc, name, report)
        cases.append((name, probe))

    schema_case("misspelt Deployment field", BAD_DEPLOYMENT)
    schema_case("wrongly typed Service port", BAD_SERVICE)
    schema_case("misspelt WorkflowTemplate field", BAD_TEMPLATE)
    schema_case("invalid namespace name and label", BAD_NAMESPACE)
    schema_case("unlisted custom kind", UNKNOWN_KIND)
    cases.append(("unknown FCTF_ variable and missing hardening",
                  lambda report: check_fctf_containers(list(yaml.safe_load_all(BAD_FCTF_DEPLOYMENT)), config_env_keys, report)))

    def bundle_case(name, mutate):
        def probe(report):
            workflow = load_file(ARGS.repo, "argo/examples/start-workflow.json")[0]
            params = parameters_of(workflow)
            namespace, manifests = json.loads(params["namespace_manifest"]), json.loads(params["manifests"])
            mutate(namespace, manifests)
            check_instance_bundle(namespace, manifests, params["namespace"], params["instance_id"], name, report)
        cases.append((name, probe))

    def job(manifests):
        return next(m for m in manifests if m["kind"] == "Job")

    bundle_case("Job without activeDeadlineSeconds", lambda ns, m: job(m)["spec"].pop("activeDeadlineSeconds"))
    bundle_case("Job pod mounting a token", lambda ns, m: job(m)["spec"]["template"]["spec"].update(automountServiceAccountToken=True))
    bundle_case("namespace name over 63 characters", lambda ns, m: ns["metadata"].update(name="team-" + "x" * 70))
    bundle_case("public DNS allowed", lambda ns, m: next(p for p in m if p["metadata"]["name"] == "allow-internet")["spec"]["egress"][0]["ports"].append({"protocol": "UDP", "port": 53}))
    bundle_case("egress to private ranges", lambda ns, m: next(p for p in m if p["metadata"]["name"] == "allow-internet")["spec"]["egress"][0]["to"][0]["ipBlock"].update(**{"except": []}))
    bundle_case("missing default-deny", lambda ns, m: m.remove(next(p for p in m if p["metadata"]["name"] == "default-deny")))

    def permissive_policy(report):
        argo_docs = kustomize(ARGS.repo, "argo")
        for doc in argo_docs:
            if doc.get("kind") == "ValidatingAdmissionPolicy" and doc["metadata"]["name"] == "fctf-start-challenge-scope":
                doc["spec"]["validations"] = doc["spec"]["validations"][1:]
        start = load_file(ARGS.repo, "argo/examples/start-workflow.json")[0]
        bundle = load_file(ARGS.repo, "argo/examples/instance-bundle.yaml")
        build = load_file(ARGS.repo, "argo/examples/build-workflow.json")[0]
        validate_admission.check(argo_docs, start, bundle[0], bundle[1:], build, report)

    cases.append(("admission policy without its namespace rule", permissive_policy))

    failures = 0
    for name, probe in cases:
        report = Report(quiet=True)
        probe(report)
        if report.errors:
            print(f"self-test: caught {name} ({len(report.errors)} errors, e.g. {short(report.errors[0], 160)})")
        else:
            failures += 1
            print(f"self-test: NOT CAUGHT: {name}")
    print(f"self-test: {len(cases) - failures} of {len(cases)} broken inputs caught")
    return failures


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repo", required=True)
    parser.add_argument("--argo-schemas", required=True, help="directory holding the Argo JSON schema files")
    parser.add_argument("--kube-version", action="append", required=True, help="Kubernetes version to validate against (repeatable)")
    parser.add_argument("--fctf-bin", help="fctf executable for `config check` of every fctf container (optional)")
    global ARGS
    ARGS = parser.parse_args()
    schemas = Schemas(ARGS.kube_version, ARGS.argo_schemas)
    keys, _ = config_keys(os.path.join(ARGS.repo, "config", "default.toml"))
    if self_test(schemas, keys):
        print("self-test failed: the validator misses broken manifests")
        return 1
    report = Report()
    run(ARGS, schemas, report)
    print(f"manifests: {report.validated} validated, {len(report.errors)} errors")
    return 1 if report.errors else 0


ARGS = None

if __name__ == "__main__":
    sys.exit(main())
