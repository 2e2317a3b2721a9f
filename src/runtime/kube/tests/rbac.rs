//! Each role's Kubernetes API calls against its RBAC rules in `k8s/rbac/<role>.yaml`.
//!
//! The roles run their real code (center's control operations and build watch, the
//! consumer's job handling, the listener's watch, resync and ghost collection), each with its
//! own kubernetes runtime over a recording fake cluster that behaves like Argo and the API
//! server (a start Workflow creates the instance namespace and a ready pod). Every recorded
//! call is turned into (verb, API group, resource, namespace) and must be allowed by the
//! role's rules; every (rule, resource, verb) must be used by some call: the rules allow what
//! the code does and nothing broader.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::sync::mpsc;

use super::config;
use super::fake::{self, PodFixture, Recorded, Reply};
use crate::app::{Deps, Role, RoleSet};
use crate::control::{
    BuildRequest, BuildStatusRequest, Client, LogsRequest, StartRequest, StopAllRequest, StopReason, StopRequest,
};
use crate::domain::TeamId;
use crate::runtime::Runtime;
use crate::runtime::kube::KubeRuntime;
use crate::store::{DeploySettings, InstanceState, NewChallenge, NewUser, UserRole};

/// A permission a call needs, or a rule grants.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Permission {
    verb: String,
    group: String,
    resource: String,
    /// `None`: cluster-wide (ClusterRole); `Some(ns)`: a Role in `ns`.
    namespace: Option<String>,
}

/// The permission a request needs.
fn needed(request: &Recorded) -> Permission {
    let segments: Vec<&str> = request.path.trim_matches('/').split('/').collect();
    let (group, rest) = match segments.as_slice() {
        ["api", "v1", rest @ ..] => (String::new(), rest.to_vec()),
        ["apis", group, _version, rest @ ..] => ((*group).to_owned(), rest.to_vec()),
        _ => panic!("unexpected path {}", request.path),
    };
    let (namespace, rest) = match rest.as_slice() {
        ["namespaces", namespace, tail @ ..] if !tail.is_empty() => (Some((*namespace).to_owned()), tail.to_vec()),
        _ => (None, rest),
    };
    let resource = match rest.as_slice() {
        [resource, _name, sub] => format!("{resource}/{sub}"),
        [resource, ..] => (*resource).to_owned(),
        [] => panic!("no resource in {}", request.path),
    };
    let named = rest.len() >= 2;
    let verb = match (request.method.as_str(), named) {
        ("GET", true) => "get",
        ("GET", false) if request.is_watch() => "watch",
        ("GET", false) => "list",
        ("POST", _) => "create",
        ("DELETE", true) => "delete",
        ("DELETE", false) => "deletecollection",
        ("PATCH", _) => "patch",
        ("PUT", _) => "update",
        (method, _) => panic!("unexpected method {method}"),
    };
    Permission { verb: verb.to_owned(), group, resource, namespace }
}

/// The rules of `k8s/rbac/<role>.yaml`, one permission per (rule, resource, verb).
fn granted(role: &str) -> BTreeSet<Permission> {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("k8s/rbac/{role}.yaml"));
    let text = std::fs::read_to_string(&path).unwrap();
    let mut permissions = BTreeSet::new();
    for document in serde_yaml_ng::Deserializer::from_str(&text) {
        let value: Value = serde::Deserialize::deserialize(document).unwrap();
        let namespace = match value["kind"].as_str().unwrap() {
            "ClusterRole" => None,
            "Role" => Some(value["metadata"]["namespace"].as_str().unwrap().to_owned()),
            other => panic!("unexpected kind {other} in {}", path.display()),
        };
        for rule in value["rules"].as_array().unwrap() {
            let list = |key: &str| -> Vec<String> {
                rule[key].as_array().unwrap().iter().map(|item| item.as_str().unwrap().to_owned()).collect()
            };
            for group in list("apiGroups") {
                for resource in list("resources") {
                    for verb in list("verbs") {
                        assert!(group != "*" && resource != "*" && verb != "*", "wildcard rule in {}", path.display());
                        permissions.insert(Permission {
                            verb: verb.clone(),
                            group: group.clone(),
                            resource: resource.clone(),
                            namespace: namespace.clone(),
                        });
                    }
                }
            }
        }
    }
    permissions
}

/// True when `rule` grants `call` (a ClusterRole grants in every namespace).
fn grants(rule: &Permission, call: &Permission) -> bool {
    rule.verb == call.verb
        && rule.group == call.group
        && rule.resource == call.resource
        && (rule.namespace.is_none() || rule.namespace == call.namespace)
}

/// A tiny stateful cluster: namespaces, pods, workflows; open watches are kept alive.
#[derive(Default)]
struct Cluster {
    namespaces: BTreeMap<String, i64>,
    workflows: BTreeMap<String, Value>,
    watches: Vec<mpsc::UnboundedSender<bytes::Bytes>>,
    version: u64,
}

impl Cluster {
    fn answer(&mut self, request: &Recorded) -> Reply {
        self.version += 1;
        let version = self.version.to_string();
        let selector = request.param("labelSelector").unwrap_or_default().to_owned();
        let wanted_instance =
            selector.split(',').find_map(|term| term.strip_prefix("ctf/instance=")).map(str::to_owned);
        let matches = |instance: i64| wanted_instance.as_deref().is_none_or(|wanted| wanted == instance.to_string());
        if request.is_watch() {
            let (sender, receiver) = mpsc::unbounded_channel();
            self.watches.push(sender);
            return Reply::Stream(receiver);
        }
        let path = request.path.as_str();
        match (request.method.as_str(), path) {
            ("GET", "/api/v1/namespaces") => {
                let items = self
                    .namespaces
                    .iter()
                    .filter(|(_, instance)| matches(**instance))
                    .map(|(name, instance)| fake::namespace_json(name, *instance, false))
                    .collect();
                Reply::Json(200, fake::list("NamespaceList", "v1", &version, items))
            }
            ("DELETE", _) if path.starts_with("/api/v1/namespaces/") => {
                let name = path.trim_start_matches("/api/v1/namespaces/").to_owned();
                match self.namespaces.remove(&name) {
                    Some(instance) => Reply::Json(200, fake::namespace_json(&name, instance, true)),
                    None => Reply::Json(404, fake::status(404, "NotFound", "namespace not found")),
                }
            }
            ("GET", _) if path.ends_with("/log") => Reply::Text(200, "challenge output\n".into()),
            ("GET", _) if path.ends_with("/pods") => {
                let items = self
                    .namespaces
                    .iter()
                    .filter(|(name, instance)| {
                        matches(**instance) && (path == "/api/v1/pods" || path.contains(name.as_str()))
                    })
                    .map(|(name, instance)| {
                        PodFixture {
                            instance: *instance,
                            namespace: name,
                            resource_version: &version,
                            phase: "Running",
                            ready: true,
                            waiting: None,
                            terminated: None,
                            created_secs_ago: 5,
                        }
                        .json()
                    })
                    .collect();
                Reply::Json(200, fake::list("PodList", "v1", &version, items))
            }
            ("POST", _) if path.ends_with("/workflows") => {
                let workflow = request.body.clone().unwrap();
                let name = workflow["metadata"]["name"].as_str().unwrap().to_owned();
                if workflow["metadata"]["labels"]["ctf/kind"] == "challenge-start" {
                    // Argo applies the bundle: the namespace and a pod that becomes ready.
                    let parameters = workflow["spec"]["arguments"]["parameters"].as_array().unwrap();
                    let value = |key: &str| {
                        parameters.iter().find(|p| p["name"] == key).unwrap()["value"].as_str().unwrap().to_owned()
                    };
                    self.namespaces.insert(value("namespace"), value("instance_id").parse().unwrap());
                }
                self.workflows.insert(name, workflow.clone());
                Reply::Json(201, workflow)
            }
            ("GET", _) if path.ends_with("/workflows") => {
                let items = self
                    .workflows
                    .values()
                    .filter(|workflow| selector.starts_with(&format!("ctf/kind={}", workflow["metadata"]["labels"]["ctf/kind"].as_str().unwrap())))
                    .map(|workflow| {
                        if request.accept.as_deref().is_some_and(|accept| accept.contains("PartialObjectMetadata")) {
                            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": workflow["metadata"]})
                        } else {
                            workflow.clone()
                        }
                    })
                    .collect();
                Reply::Json(200, fake::list("WorkflowList", "argoproj.io/v1alpha1", &version, items))
            }
            ("GET", _) if path.contains("/workflows/") => {
                let name = path.rsplit('/').next().unwrap();
                match self.workflows.get(name) {
                    Some(workflow) => {
                        let mut workflow = workflow.clone();
                        workflow["status"] = json!({"phase": "Running", "startedAt": "2026-01-01T00:00:00Z"});
                        Reply::Json(200, workflow)
                    }
                    None => Reply::Json(404, fake::status(404, "NotFound", "no workflow")),
                }
            }
            _ => Reply::Json(404, fake::status(404, "NotFound", &format!("unexpected {} {path}", request.method))),
        }
    }
}

fn runtime_over(cluster: &Arc<Mutex<Cluster>>) -> (Runtime, fake::Log) {
    let cluster = cluster.clone();
    let (client, log) = fake::client(move |request| cluster.lock().unwrap().answer(request));
    (Runtime::from_backend(Arc::new(KubeRuntime::with_client(client, config(false, false)))), log)
}

async fn wait_for(what: &str, mut condition: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    while !condition().await {
        assert!(tokio::time::Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test]
async fn each_role_makes_only_the_calls_its_rbac_allows_and_uses_every_rule() {
    let data_dir = tempfile::tempdir().unwrap();
    let env: HashMap<String, String> = [
        ("FCTF_DATA_DIR", data_dir.path().display().to_string()),
        ("FCTF_CENTER__LISTEN", "127.0.0.1:0".to_owned()),
        ("FCTF_SECRETS__JWT", "j".to_owned()),
        ("FCTF_SECRETS__GATEWAY", "g".to_owned()),
        ("FCTF_SECRETS__INTERNAL", "i".to_owned()),
        ("FCTF_SECRETS__FILES", "f".to_owned()),
        ("FCTF_LISTENER__GHOST_GRACE_SECS", "0".to_owned()),
        ("FCTF_LISTENER__RESYNC_INTERVAL_SECS", "1".to_owned()),
        ("FCTF_LISTENER__SWEEP_INTERVAL_MS", "100".to_owned()),
    ]
    .into_iter()
    .map(|(key, value)| (key.to_owned(), value))
    .collect();
    let settings = crate::config::load_from(None, &env, &crate::config::Overrides::default()).unwrap();
    let deps = Deps::connect(Arc::new(settings), RoleSet::from_roles(&[Role::Center, Role::Consumer, Role::Listener]))
        .await
        .unwrap();
    let store = deps.store.clone().unwrap();
    let cluster = Arc::new(Mutex::new(Cluster::default()));
    // A ghost: a challenge namespace with no instance record.
    cluster.lock().unwrap().namespaces.insert("team-1-1-ghost-999999".into(), 999_999);
    let mut logs = BTreeMap::new();
    let mut role_deps = |role: &str| {
        let (runtime, log) = runtime_over(&cluster);
        logs.insert(role.to_owned(), log);
        Deps { runtime: Some(runtime), ..deps.clone() }
    };
    let (center_deps, consumer_deps, listener_deps) =
        (role_deps("center"), role_deps("consumer"), role_deps("listener"));
    let token = tokio_util::sync::CancellationToken::new();
    let center = crate::center::Center::bind(&center_deps.settings.center, &center_deps).await.unwrap();
    let consumer = crate::consumer::Consumer::bind(&consumer_deps.settings.consumer, &consumer_deps).unwrap();
    let listener = crate::listener::Listener::bind(&listener_deps.settings.listener, &listener_deps).unwrap();
    let tasks = [
        tokio::spawn(center.run(token.child_token())),
        tokio::spawn(consumer.run(token.child_token())),
        tokio::spawn(listener.run(token.child_token())),
    ];
    let client = Client::for_process(&center_deps).unwrap();

    let challenge = store
        .create_challenge(&NewChallenge {
            name: "Web".into(),
            deploy: DeploySettings {
                require_deploy: true,
                image: Some("registry/web:1".into()),
                exposed_port: Some(8080),
                ..DeploySettings::default()
            },
            ..NewChallenge::default()
        })
        .await
        .unwrap()
        .id;
    let admin = store
        .create_user(&NewUser {
            name: "root".into(),
            email: None,
            password_hash: "x".into(),
            role: UserRole::Admin,
            verified: true,
        })
        .await
        .unwrap();
    let started =
        client.start(StartRequest { challenge_id: challenge, team_id: TeamId(1), user_id: None }).await.unwrap();
    let id = started.instance.instance_id;
    wait_for("the instance to run", async || store.get_instance(id).await.unwrap().state == InstanceState::Running)
        .await;
    wait_for("the ghost to go", async || {
        !cluster.lock().unwrap().namespaces.values().any(|instance| *instance == 999_999)
    })
    .await;
    client.logs(LogsRequest { challenge_id: challenge, team_id: TeamId(1), tail_lines: 10 }).await.unwrap();
    let build = client
        .build(BuildRequest {
            challenge_id: challenge,
            context_url: "http://api/ctx.tar".into(),
            image: "registry/web:2".into(),
            dockerfile: None,
            user_id: Some(admin),
        })
        .await
        .unwrap();
    let state = client.build_status(BuildStatusRequest { workflow: build.workflow }).await.unwrap();
    assert_eq!(state.phase, "Running");
    client
        .stop(StopRequest { challenge_id: challenge, team_id: TeamId(1), user_id: None, reason: StopReason::User })
        .await
        .unwrap();
    let second =
        client.start(StartRequest { challenge_id: challenge, team_id: TeamId(2), user_id: None }).await.unwrap();
    let second_id = second.instance.instance_id;
    wait_for("the second instance to run", async || {
        store.get_instance(second_id).await.unwrap().state == InstanceState::Running
    })
    .await;
    client.stop_all(StopAllRequest { user_id: admin }).await.unwrap();
    // Let the center's build watch and the listener's watch make their calls.
    wait_for("the watches", async || {
        let watching = |role: &str| logs[role].all().iter().any(|request| request.is_watch());
        watching("center") && watching("listener")
    })
    .await;
    token.cancel();
    for task in tasks {
        task.await.unwrap().unwrap();
    }

    for (role, log) in &logs {
        let rules = granted(role);
        let calls: BTreeSet<Permission> = log.all().iter().map(needed).collect();
        assert!(!calls.is_empty(), "{role} made no call");
        for call in &calls {
            assert!(
                rules.iter().any(|rule| grants(rule, call)),
                "{role} makes {call:?}, which k8s/rbac/{role}.yaml does not allow"
            );
        }
        for rule in &rules {
            assert!(
                calls.iter().any(|call| grants(rule, call)),
                "k8s/rbac/{role}.yaml grants {rule:?}, which {role} never uses"
            );
        }
    }
}
