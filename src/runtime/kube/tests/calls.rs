//! The exact API requests of each runtime operation.

use serde_json::json;

use super::fake::{self, PodFixture, Reply};
use super::{config, golden_spec};
use crate::domain::{ChallengeId, InstanceId};
use crate::runtime::kube::KubeRuntime;
use crate::runtime::{BuildSpec, RuntimeBackend, RuntimeError};

const WORKFLOWS: &str = "/apis/argoproj.io/v1alpha1/namespaces/argo/workflows";

#[tokio::test]
async fn start_creates_the_workflow_and_treats_already_exists_as_done() {
    let created = std::sync::atomic::AtomicBool::new(false);
    let (client, log) = fake::client(move |request| {
        if created.swap(true, std::sync::atomic::Ordering::SeqCst) {
            Reply::Json(409, fake::status(409, "AlreadyExists", "workflows \"start-4217\" already exists"))
        } else {
            Reply::Json(201, request.body.clone().unwrap())
        }
    });
    let runtime = KubeRuntime::with_client(client, config(true, true));
    runtime.start(golden_spec()).await.unwrap();
    runtime.start(golden_spec()).await.unwrap();
    let requests = log.all();
    assert_eq!(requests.len(), 2);
    for request in &requests {
        assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", WORKFLOWS));
        let expected = crate::runtime::kube::render::start_workflow(&golden_spec(), &config(true, true)).unwrap();
        assert_eq!(request.body.as_ref().unwrap(), &expected);
    }
}

#[tokio::test]
async fn start_maps_server_errors_to_unavailable() {
    let (client, _log) = fake::client(|_| Reply::Json(503, fake::status(503, "ServiceUnavailable", "etcd down")));
    let runtime = KubeRuntime::with_client(client, config(false, false));
    assert!(matches!(runtime.start(golden_spec()).await, Err(RuntimeError::Unavailable(_))));
    let (client, _log) = fake::client(|_| Reply::Json(403, fake::status(403, "Forbidden", "denied")));
    let runtime = KubeRuntime::with_client(client, config(false, false));
    assert!(matches!(runtime.start(golden_spec()).await, Err(RuntimeError::Other(_))));
}

#[tokio::test]
async fn in_flight_counts_uncompleted_start_workflows_by_label_with_a_metadata_list() {
    let (client, log) = fake::client(|_| {
        let item = |name: &str| json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadata", "metadata": {"name": name}});
        Reply::Json(
            200,
            json!({"apiVersion": "meta.k8s.io/v1", "kind": "PartialObjectMetadataList",
            "metadata": {"resourceVersion": "5"}, "items": [item("start-1"), item("start-2"), item("start-3")]}),
        )
    });
    let runtime = KubeRuntime::with_client(client, config(false, false));
    assert_eq!(runtime.in_flight().await.unwrap(), 3);
    let request = &log.all()[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("GET", WORKFLOWS));
    assert_eq!(request.param("labelSelector"), Some("ctf/kind=challenge-start,workflows.argoproj.io/completed!=true"));
    assert!(request.accept.as_deref().unwrap().contains("as=PartialObjectMetadataList"), "{:?}", request.accept);
}

#[tokio::test]
async fn stop_finds_the_namespace_by_label_and_deletes_it() {
    let (client, log) = fake::client(|request| match (request.method.as_str(), request.path.as_str()) {
        ("GET", "/api/v1/namespaces")
            if request.param("labelSelector") == Some("ctf/kind=challenge,ctf/instance=42") =>
        {
            Reply::Json(
                200,
                fake::list(
                    "NamespaceList",
                    "v1",
                    "9",
                    vec![
                        fake::namespace_json("team-1-2-x-42", 42, false),
                        fake::namespace_json("team-1-2-x-old", 42, true),
                    ],
                ),
            )
        }
        ("GET", "/api/v1/namespaces") => Reply::Json(200, fake::list("NamespaceList", "v1", "9", vec![])),
        ("DELETE", "/api/v1/namespaces/team-1-2-x-42") => {
            Reply::Json(200, fake::namespace_json("team-1-2-x-42", 42, true))
        }
        _ => Reply::Json(404, fake::status(404, "NotFound", "unexpected")),
    });
    let runtime = KubeRuntime::with_client(client, config(false, false));
    runtime.stop(InstanceId(42)).await.unwrap();
    assert!(matches!(runtime.stop(InstanceId(43)).await, Err(RuntimeError::NotFound(InstanceId(43)))));
    let requests = log.all();
    let delete = requests.iter().find(|request| request.method == "DELETE").unwrap();
    assert_eq!(delete.path, "/api/v1/namespaces/team-1-2-x-42");
    let body = delete.body.as_ref().unwrap();
    assert_eq!(body["propagationPolicy"], "Background");
    assert_eq!(body["gracePeriodSeconds"], 0);
    assert_eq!(
        requests.iter().filter(|request| request.method == "DELETE").count(),
        1,
        "terminating namespaces are left alone"
    );
}

#[tokio::test]
async fn logs_read_the_instance_pod_with_a_tail() {
    let (client, log) = fake::client(|request| match request.path.as_str() {
        "/api/v1/namespaces" => {
            Reply::Json(200, fake::list("NamespaceList", "v1", "1", vec![fake::namespace_json("ns-7", 7, false)]))
        }
        "/api/v1/namespaces/ns-7/pods" => {
            let pod = PodFixture {
                instance: 7,
                namespace: "ns-7",
                resource_version: "3",
                phase: "Running",
                ready: true,
                waiting: None,
                terminated: None,
                created_secs_ago: 5,
            };
            Reply::Json(200, fake::list("PodList", "v1", "3", vec![pod.json()]))
        }
        "/api/v1/namespaces/ns-7/pods/challenge-7/log" => Reply::Text(200, "line 1\nline 2\n".into()),
        _ => Reply::Json(404, fake::status(404, "NotFound", "unexpected")),
    });
    let runtime = KubeRuntime::with_client(client, config(false, false));
    assert_eq!(runtime.logs(InstanceId(7), 50).await.unwrap(), "line 1\nline 2\n");
    let requests = log.all();
    assert_eq!(requests[1].param("labelSelector"), Some("ctf/kind=challenge,ctf/instance=7"));
    assert_eq!(requests[2].param("tailLines"), Some("50"));
    assert_eq!(requests[2].param("container"), Some("challenge"));
}

#[tokio::test]
async fn list_joins_namespaces_and_ready_pods() {
    let (client, log) = fake::client(|request| match request.path.as_str() {
        "/api/v1/namespaces" => Reply::Json(
            200,
            fake::list(
                "NamespaceList",
                "v1",
                "1",
                vec![
                    fake::namespace_json("ns-1", 1, false),
                    fake::namespace_json("ns-2", 2, false),
                    fake::namespace_json("ns-3", 3, true),
                ],
            ),
        ),
        "/api/v1/pods" => {
            let ready = PodFixture {
                instance: 1,
                namespace: "ns-1",
                resource_version: "3",
                phase: "Running",
                ready: true,
                waiting: None,
                terminated: None,
                created_secs_ago: 5,
            };
            let pending = PodFixture {
                instance: 2,
                namespace: "ns-2",
                resource_version: "4",
                phase: "Pending",
                ready: false,
                waiting: Some("ContainerCreating"),
                terminated: None,
                created_secs_ago: 5,
            };
            Reply::Json(200, fake::list("PodList", "v1", "4", vec![ready.json(), pending.json()]))
        }
        _ => Reply::Json(404, fake::status(404, "NotFound", "unexpected")),
    });
    let runtime = KubeRuntime::with_client(client, config(false, false));
    let objects = runtime.list().await.unwrap();
    assert_eq!(objects.len(), 2, "the terminating namespace is gone already");
    assert_eq!(objects[0].upstream.as_deref(), Some("challenge.ns-1.svc:8080"));
    assert!(!objects[0].starting);
    assert_eq!((objects[1].upstream.as_deref(), objects[1].starting), (None, true));
    for request in log.all() {
        assert_eq!(request.param("labelSelector"), Some("ctf/kind=challenge"));
    }
}

#[tokio::test]
async fn builds_create_the_build_workflow() {
    let (client, log) = fake::client(|request| Reply::Json(201, request.body.clone().unwrap()));
    let runtime = KubeRuntime::with_client(client, config(false, false));
    let spec = BuildSpec {
        challenge_id: ChallengeId(12),
        context_url: "http://api/ctx.tar?token=t".into(),
        image: "registry/x:1".into(),
        dockerfile: Some("docker/Dockerfile".into()),
        callback_url: "http://center/internal/workflows/build".into(),
    };
    let name = runtime.build_image(spec).await.unwrap();
    assert!(name.starts_with("build-12-"), "{name}");
    let request = &log.all()[0];
    assert_eq!((request.method.as_str(), request.path.as_str()), ("POST", WORKFLOWS));
    let body = request.body.as_ref().unwrap();
    assert_eq!(body["metadata"]["labels"]["ctf/kind"], "challenge-build");
    assert_eq!(body["spec"]["arguments"]["parameters"][3]["value"], "docker/Dockerfile");
}
