"""Evaluates fctf's ValidatingAdmissionPolicies (argo/policies) offline with a CEL interpreter.

Used by validate_manifests.py. Each policy is run against admission requests built from the
golden examples: what fctf legitimately sends (the start bundle, the grant RoleBinding, the pull
secret, the example Workflows, deletes of challenge namespaces) must be admitted, and hostile
variants (writes outside challenge namespaces, privileged or token-mounting Jobs, foreign
RoleBindings, other templates, extra Workflow fields, ...) must be denied. cel-python is not
the API server's CEL, so this proves the logic, not Kubernetes' type checker; expressions are
kept to constructs both accept.
"""

import copy

import celpy
import yaml
from celpy import celtypes

START_ACCOUNT = "system:serviceaccount:argo:fctf-start-challenge"
RESOURCES = {"Namespace": "namespaces", "Service": "services", "NetworkPolicy": "networkpolicies",
             "Job": "jobs", "Secret": "secrets", "RoleBinding": "rolebindings", "Workflow": "workflows"}

_ENV = celpy.Environment()


@__import__("functools").lru_cache(maxsize=None)
def _program(expression):
    return _ENV.program(_ENV.compile(expression))


def _request(user, kind, operation):
    return {"userInfo": {"username": user}, "resource": {"resource": RESOURCES[kind]}, "operation": operation}


def evaluate(policy, user, operation, obj=None, old=None, namespace=None):
    """None when the policy does not apply, else the list of failed validation messages."""
    kind = (obj or old)["kind"]
    activation = {
        "request": celpy.json_to_cel(_request(user, kind, operation)),
        "object": celpy.json_to_cel(obj),
        "oldObject": celpy.json_to_cel(old),
        "namespaceObject": celpy.json_to_cel(namespace),
    }
    spec = policy["spec"]
    rules = (spec.get("matchConstraints") or {}).get("resourceRules") or []
    if not any(RESOURCES[kind] in r.get("resources", []) and operation in r.get("operations", []) for r in rules):
        return None
    for condition in spec.get("matchConditions") or []:
        if not bool(_program(condition["expression"]).evaluate(activation)):
            return None
    variables = {}
    for variable in spec.get("variables") or []:
        scope = dict(activation, variables=celtypes.MapType({celtypes.StringType(k): v for k, v in variables.items()}))
        variables[variable["name"]] = _program(variable["expression"]).evaluate(scope)
    scope = dict(activation, variables=celtypes.MapType({celtypes.StringType(k): v for k, v in variables.items()}))
    failed = []
    for validation in spec["validations"]:
        try:
            result = _program(validation["expression"]).evaluate(scope)
            ok = not isinstance(result, Exception) and bool(result)
        except Exception:  # noqa: BLE001 - an evaluation error denies, as with failurePolicy Fail
            ok = False
        if not ok:
            failed.append(" ".join(validation["message"].split()))
    return failed


def scenarios(policies, start_workflow, namespace, manifests, grant, build_workflow):
    """(description, policy, user, operation, object, oldObject, namespaceObject, admitted)."""
    start_policy = policies["fctf-start-challenge-scope"]
    deletes = policies["fctf-namespace-deletes"]
    submissions = policies["fctf-workflow-submissions"]
    job = next(m for m in manifests if m["kind"] == "Job")
    service = next(m for m in manifests if m["kind"] == "Service")
    kube_system = {"apiVersion": "v1", "kind": "Namespace",
                   "metadata": {"name": "kube-system", "labels": {"kubernetes.io/metadata.name": "kube-system"}}}
    pull = {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/dockerconfigjson",
            "metadata": {"name": "fctf-registry-pull", "namespace": namespace["metadata"]["name"]}, "data": {}}

    def changed(obj, mutate):
        copied = copy.deepcopy(obj)
        mutate(copied)
        return copied

    def pod(obj):
        return obj["spec"]["template"]["spec"]

    cases = [("create the instance namespace", start_policy, START_ACCOUNT, "CREATE", namespace, None, None, True),
             ("re-apply the instance namespace", start_policy, START_ACCOUNT, "UPDATE", namespace, namespace, None, True),
             ("delete the instance namespace on failure", start_policy, START_ACCOUNT, "DELETE", None, namespace, None, True),
             ("grant RoleBinding", start_policy, START_ACCOUNT, "CREATE", grant, None, namespace, True),
             ("pull secret", start_policy, START_ACCOUNT, "CREATE", pull, None, namespace, True)]
    cases += [(f"apply {m['kind']} {m['metadata']['name']}", start_policy, START_ACCOUNT, "CREATE", m, None, namespace, True)
              for m in manifests]
    cases += [
        ("Job in kube-system", start_policy, START_ACCOUNT, "CREATE", job, None, kube_system, False),
        ("privileged Pod Security on the namespace", start_policy, START_ACCOUNT, "CREATE",
         changed(namespace, lambda n: n["metadata"]["labels"].update({"pod-security.kubernetes.io/enforce": "privileged"})), None, None, False),
        ("namespace without ctf/kind", start_policy, START_ACCOUNT, "CREATE",
         changed(namespace, lambda n: n["metadata"]["labels"].pop("ctf/kind")), None, None, False),
        ("adopt kube-system", start_policy, START_ACCOUNT, "UPDATE", namespace, kube_system, None, False),
        ("delete kube-system", start_policy, START_ACCOUNT, "DELETE", None, kube_system, None, False),
        ("Job on the host network", start_policy, START_ACCOUNT, "CREATE", changed(job, lambda j: pod(j).update(hostNetwork=True)), None, namespace, False),
        ("Job mounting a token", start_policy, START_ACCOUNT, "CREATE", changed(job, lambda j: pod(j).pop("automountServiceAccountToken")), None, namespace, False),
        ("Job with another account", start_policy, START_ACCOUNT, "CREATE", changed(job, lambda j: pod(j).update(serviceAccountName="argo-server")), None, namespace, False),
        ("privileged Job", start_policy, START_ACCOUNT, "CREATE",
         changed(job, lambda j: pod(j)["containers"][0].setdefault("securityContext", {}).update(privileged=True)), None, namespace, False),
        ("Job mounting a host path", start_policy, START_ACCOUNT, "CREATE",
         changed(job, lambda j: pod(j).setdefault("volumes", []).append({"name": "h", "hostPath": {"path": "/"}})), None, namespace, False),
        ("Job without a deadline", start_policy, START_ACCOUNT, "CREATE", changed(job, lambda j: j["spec"].pop("activeDeadlineSeconds")), None, namespace, False),
        ("NodePort Service", start_policy, START_ACCOUNT, "CREATE", changed(service, lambda s: s["spec"].update(type="NodePort")), None, namespace, False),
        ("RoleBinding to cluster-admin", start_policy, START_ACCOUNT, "CREATE",
         changed(grant, lambda g: g["roleRef"].update(name="cluster-admin")), None, namespace, False),
        ("RoleBinding for another subject", start_policy, START_ACCOUNT, "CREATE",
         changed(grant, lambda g: g["subjects"][0].update(name="default")), None, namespace, False),
        ("another Secret", start_policy, START_ACCOUNT, "CREATE", changed(pull, lambda s: s["metadata"].update(name="x")), None, namespace, False),
        ("center deletes an instance namespace", deletes, "system:serviceaccount:fctf:fctf-center", "DELETE", None, namespace, None, True),
        ("listener deletes an instance namespace", deletes, "system:serviceaccount:fctf:fctf-listener", "DELETE", None, namespace, None, True),
        ("cleanup deletes an instance namespace", deletes, "system:serviceaccount:argo:fctf-cleanup", "DELETE", None, namespace, None, True),
        ("listener deletes kube-system", deletes, "system:serviceaccount:fctf:fctf-listener", "DELETE", None, kube_system, None, False),
        ("consumer submits a start", submissions, "system:serviceaccount:fctf:fctf-consumer", "CREATE", start_workflow, None, None, True),
        ("center submits a build", submissions, "system:serviceaccount:fctf:fctf-center", "CREATE", build_workflow, None, None, True),
        ("single pod submits both", submissions, "system:serviceaccount:fctf:fctf", "CREATE", start_workflow, None, None, True),
        ("consumer submits a build", submissions, "system:serviceaccount:fctf:fctf-consumer", "CREATE", build_workflow, None, None, False),
        ("center submits a start", submissions, "system:serviceaccount:fctf:fctf-center", "CREATE", start_workflow, None, None, False),
        ("Workflow choosing its account", submissions, "system:serviceaccount:fctf:fctf-consumer", "CREATE",
         changed(start_workflow, lambda w: w["spec"].update(serviceAccountName="argo-server")), None, None, False),
        ("Workflow with its own templates", submissions, "system:serviceaccount:fctf:fctf-consumer", "CREATE",
         changed(start_workflow, lambda w: w["spec"].update(templates=[{"name": "x"}])), None, None, False),
        ("start without ctf/instance", submissions, "system:serviceaccount:fctf:fctf-consumer", "CREATE",
         changed(start_workflow, lambda w: w["metadata"]["labels"].pop("ctf/instance")), None, None, False),
        ("cluster-scoped template", submissions, "system:serviceaccount:fctf:fctf-consumer", "CREATE",
         changed(start_workflow, lambda w: w["spec"]["workflowTemplateRef"].update(clusterScope=True)), None, None, False),
    ]
    return cases


def check(argo_docs, start_workflow, namespace, manifests, build_workflow, report):
    """Runs every scenario; returns the number of scenarios evaluated."""
    policies = {d["metadata"]["name"]: d for d in argo_docs if d.get("kind") == "ValidatingAdmissionPolicy"}
    template = next(d for d in argo_docs if d.get("kind") == "WorkflowTemplate" and d["metadata"]["name"] == "start-chal-v2-template")
    grant_text = next(t for t in template["spec"]["templates"] if t["name"] == "grant")["resource"]["manifest"]
    params = {p["name"]: p["value"] for p in start_workflow["spec"]["arguments"]["parameters"]}
    grant = yaml.safe_load(grant_text.replace("{{workflow.parameters.namespace}}", params["namespace"])
                           .replace("{{workflow.parameters.instance_id}}", params["instance_id"]))
    count = 0
    for description, policy, user, operation, obj, old, ns, admitted in scenarios(
            policies, start_workflow, namespace, manifests, grant, build_workflow):
        count += 1
        where = f"argo/policies/{policy['metadata']['name']}"
        failed = evaluate(policy, user, operation, obj, old, ns)
        if failed is None:
            report.error(where, f"does not apply to: {description}")
        elif admitted and failed:
            report.error(where, f"denies what fctf must do ({description}): {failed}")
        elif not admitted and not failed:
            report.error(where, f"admits a hostile request: {description}")
    return count
