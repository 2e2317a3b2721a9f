//! Kubernetes runtime tests against a fake API server: the rendered bundle against the
//! contract's golden example, the exact requests of every operation, realistic watch streams
//! (disconnects, 410 Gone), and each role's calls against its RBAC rules in `k8s/rbac/`.

mod calls;
pub(crate) mod fake;
mod rbac;
mod watch;

use std::collections::BTreeMap;

use serde_json::Value;

use super::render;
use crate::domain::instance_names::instance_name;
use crate::domain::{ChallengeId, InstanceId, TeamId};
use crate::runtime::{BuildSpec, ContainerSettings, InstanceSpec, KubernetesConfig};

/// The runtime configuration of the contract's examples.
pub(crate) fn config(internet_egress: bool, copy_pull_secret: bool) -> KubernetesConfig {
    KubernetesConfig {
        argo_namespace: "argo".into(),
        start_template: "start-chal-v2-template".into(),
        build_template: "up-challenge-template".into(),
        platform_namespace: "fctf".into(),
        internet_egress,
        copy_pull_secret,
    }
}

/// The inputs of the golden example (`argo/README.md` §1.6).
pub(crate) fn golden_spec() -> InstanceSpec {
    InstanceSpec {
        instance_id: InstanceId(4217),
        team_id: TeamId(7),
        challenge_id: ChallengeId(12),
        name: instance_name(TeamId(7), ChallengeId(12), "Web Chall: Ünïcode édition!", InstanceId(4217)),
        image: Some("registry.example.com/fctf/challenge-12:1712345678".into()),
        command: None,
        port: 8080,
        flag: Some("FLAG{example_flag}".into()),
        env: BTreeMap::from([("MODE".to_owned(), "ctf".to_owned()), ("PORT".to_owned(), "9999".to_owned())]),
        max_lifetime_secs: 2400,
        container: ContainerSettings {
            cpu_request_millis: Some(100),
            cpu_limit_millis: Some(300),
            memory_request_mib: Some(256),
            memory_limit_mib: Some(256),
            hardened: true,
            gvisor: true,
        },
    }
}

fn read_repo_json(path: &str) -> Value {
    let full = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    serde_json::from_str(&std::fs::read_to_string(&full).unwrap_or_else(|error| panic!("{}: {error}", full.display())))
        .unwrap()
}

/// The parameters of a Workflow, with the JSON-valued ones parsed (key order is free).
fn parameters(workflow: &Value) -> BTreeMap<String, Value> {
    workflow["spec"]["arguments"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|parameter| {
            let name = parameter["name"].as_str().unwrap().to_owned();
            let text = parameter["value"].as_str().unwrap();
            let value = if name == "namespace_manifest" || name == "manifests" {
                serde_json::from_str(text).unwrap()
            } else {
                Value::String(text.to_owned())
            };
            (name, value)
        })
        .collect()
}

#[test]
fn the_start_workflow_matches_the_golden_example() {
    let golden = read_repo_json("argo/examples/start-workflow.json");
    let rendered = render::start_workflow(&golden_spec(), &config(true, true)).unwrap();
    assert_eq!(rendered["metadata"], golden["metadata"]);
    assert_eq!(rendered["spec"]["workflowTemplateRef"], golden["spec"]["workflowTemplateRef"]);
    let names = |workflow: &Value| -> Vec<String> {
        workflow["spec"]["arguments"]["parameters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["name"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(names(&rendered), names(&golden), "parameters in the contract's order");
    let (ours, theirs) = (parameters(&rendered), parameters(&golden));
    for (name, value) in &theirs {
        assert_eq!(ours.get(name), Some(value), "parameter {name}");
    }
    assert_eq!(ours.len(), theirs.len());
    // Compact JSON, non-ASCII unescaped.
    let manifests_text = rendered["spec"]["arguments"]["parameters"][3]["value"].as_str().unwrap();
    assert_eq!(manifests_text, serde_json::to_string(&ours["manifests"]).unwrap());
}

#[test]
fn the_bundle_carries_the_contract_labels_and_names() {
    let spec = golden_spec();
    let manifests = render::manifests(&spec, &config(true, false)).unwrap();
    let kinds: Vec<(&str, &str)> = manifests
        .iter()
        .map(|object| (object["kind"].as_str().unwrap(), object["metadata"]["name"].as_str().unwrap()))
        .collect();
    assert_eq!(
        kinds,
        [
            ("Service", "challenge"),
            ("NetworkPolicy", "default-deny"),
            ("NetworkPolicy", "allow-gateway"),
            ("NetworkPolicy", "allow-cluster-dns"),
            ("NetworkPolicy", "allow-internet"),
            ("Job", "challenge"),
        ]
    );
    let common = serde_json::json!({"app.kubernetes.io/managed-by": "fctf", "ctf/kind": "challenge",
        "ctf/instance": "4217", "ctf/team": "7", "ctf/challenge": "12"});
    for object in &manifests {
        assert_eq!(object["metadata"]["labels"], common);
        assert_eq!(object["metadata"]["namespace"], "team-7-12-web-chall-unicode-edition-4217");
    }
    let pod_labels = &manifests[5]["spec"]["template"]["metadata"]["labels"];
    assert_eq!(pod_labels["ctf/kind"], "challenge");
    assert_eq!(pod_labels["app.kubernetes.io/name"], "challenge");
    assert_eq!(manifests[5]["spec"]["activeDeadlineSeconds"], 2400);
    assert_eq!(manifests[5]["spec"]["template"]["spec"].get("imagePullSecrets"), None);
    let namespace = serde_json::to_value(render::namespace(&spec)).unwrap();
    assert_eq!(namespace["metadata"]["labels"]["ctf/kind"], "challenge");
    assert_eq!(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "restricted");
}

#[test]
fn the_plain_variant_drops_the_security_contexts_and_optional_objects() {
    let mut spec = golden_spec();
    spec.container.hardened = false;
    spec.container.gvisor = false;
    spec.team_id = TeamId::SHARED;
    spec.flag = None;
    spec.container = ContainerSettings { hardened: false, gvisor: false, ..ContainerSettings::default() };
    let manifests = render::manifests(&spec, &config(false, false)).unwrap();
    assert_eq!(manifests.len(), 5, "no allow-internet policy");
    let pod = &manifests[4]["spec"]["template"]["spec"];
    for key in ["securityContext", "volumes", "runtimeClassName", "imagePullSecrets"] {
        assert_eq!(pod.get(key), None, "{key}");
    }
    let container = &pod["containers"][0];
    assert_eq!(container.get("securityContext"), None);
    assert_eq!(container.get("volumeMounts"), None);
    assert_eq!(container["resources"]["limits"]["cpu"], "300m");
    assert_eq!(container["resources"]["requests"]["cpu"], "300m");
    assert_eq!(container["resources"]["requests"]["memory"], "256Mi");
    let env: Vec<&str> = container["env"].as_array().unwrap().iter().map(|var| var["name"].as_str().unwrap()).collect();
    assert_eq!(env, ["PORT", "HOST", "FCTF_INSTANCE_ID", "FCTF_TEAM_ID", "FCTF_CHALLENGE_ID", "MODE"]);
    assert_eq!(container["env"][3]["value"], "-2");
    assert_eq!(manifests[0]["metadata"]["labels"]["ctf/team"], "shared");
    let namespace = serde_json::to_value(render::namespace(&spec)).unwrap();
    assert_eq!(namespace["metadata"]["labels"]["pod-security.kubernetes.io/enforce"], "baseline");
}

#[test]
fn specs_the_cluster_cannot_run_are_refused() {
    let mut no_image = golden_spec();
    no_image.image = None;
    let mut no_port = golden_spec();
    no_port.port = 0;
    let mut bad_name = golden_spec();
    bad_name.name = "Not A Label".into();
    for spec in [no_image, no_port, bad_name] {
        assert!(matches!(
            render::start_workflow(&spec, &config(false, false)),
            Err(crate::runtime::RuntimeError::InvalidSpec(_))
        ));
    }
}

#[test]
fn the_build_workflow_matches_the_golden_example() {
    let golden = read_repo_json("argo/examples/build-workflow.json");
    let spec = BuildSpec {
        challenge_id: ChallengeId(12),
        context_url:
            "http://fctf-api.fctf.svc.cluster.local:8000/files/build-contexts/12-1712345678.tar.gz?token=EXAMPLE".into(),
        image: "registry.example.com/fctf/challenge-12:1712345678".into(),
        dockerfile: None,
        callback_url: "http://fctf-center.fctf.svc.cluster.local:8001/internal/workflows/build".into(),
    };
    assert_eq!(render::build_workflow(&spec, &config(false, false), 1_712_345_678), golden);
}
