//! The pod watch against replayed watch streams, and the pod → state mapping.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::Duration;

use futures::StreamExt;
use k8s_openapi::api::core::v1::Pod;
use serde_json::json;
use tokio::sync::mpsc;

use super::config;
use super::fake::{self, PodFixture, Reply};
use crate::domain::InstanceId;
use crate::runtime::kube::KubeRuntime;
use crate::runtime::kube::pods::{self, PodState};
use crate::runtime::{InstanceEvent, RuntimeBackend};

fn pod(instance: i64, resource_version: &str, phase: &str, ready: bool, waiting: Option<&str>) -> serde_json::Value {
    let namespace = format!("ns-{instance}");
    PodFixture {
        instance,
        namespace: &namespace,
        resource_version,
        phase,
        ready,
        waiting,
        terminated: None,
        created_secs_ago: 5,
    }
    .json()
}

#[tokio::test]
async fn the_watch_follows_pods_resumes_after_a_disconnect_and_ends_on_410_gone() {
    let (first_tx, first_rx) = mpsc::unbounded_channel();
    let (second_tx, second_rx) = mpsc::unbounded_channel();
    let watches = Mutex::new(VecDeque::from([first_rx, second_rx]));
    let lists = Mutex::new(VecDeque::from([fake::list(
        "PodList",
        "v1",
        "10",
        vec![pod(1, "8", "Pending", false, Some("ContainerCreating")), pod(2, "9", "Running", true, None)],
    )]));
    let (client, log) = fake::client(move |request| {
        assert_eq!(request.path, "/api/v1/pods");
        assert_eq!(request.param("labelSelector"), Some("ctf/kind=challenge"));
        if request.is_watch() {
            match watches.lock().unwrap().pop_front() {
                Some(receiver) => Reply::Stream(receiver),
                None => Reply::Json(500, fake::status(500, "InternalError", "no more watches scripted")),
            }
        } else {
            match lists.lock().unwrap().pop_front() {
                Some(list) => Reply::Json(200, list),
                None => Reply::Json(500, fake::status(500, "InternalError", "no more lists scripted")),
            }
        }
    });
    // The first watch: pod 1 becomes ready, pod 2 is deleted, then the connection drops.
    first_tx.send(fake::watch_event("MODIFIED", pod(1, "11", "Running", true, None))).unwrap();
    first_tx.send(fake::watch_event("DELETED", pod(2, "12", "Running", true, None))).unwrap();
    drop(first_tx);
    // The resumed watch: the server has compacted the history.
    second_tx
        .send(fake::watch_event("ERROR", fake::status(410, "Expired", "too old resource version: 12 (30)")))
        .unwrap();

    let runtime = KubeRuntime::with_client(client, config(false, false));
    let events: Vec<InstanceEvent> = tokio::time::timeout(Duration::from_secs(30), runtime.watch().collect())
        .await
        .expect("the stream ends after the relist");
    assert_eq!(
        events,
        vec![
            InstanceEvent::Starting { instance_id: InstanceId(1) },
            InstanceEvent::Running { instance_id: InstanceId(2), upstream: "challenge.ns-2.svc:8080".into() },
            InstanceEvent::Running { instance_id: InstanceId(1), upstream: "challenge.ns-1.svc:8080".into() },
            InstanceEvent::Stopped { instance_id: InstanceId(2) },
        ]
    );
    let watch_versions: Vec<Option<String>> = log
        .all()
        .iter()
        .filter(|request| request.is_watch())
        .map(|request| request.param("resourceVersion").map(str::to_owned))
        .collect();
    assert_eq!(
        watch_versions,
        vec![Some("10".to_owned()), Some("12".to_owned())],
        "resumed from the last version seen"
    );
    drop(second_tx);
}

#[tokio::test]
async fn repeated_pod_updates_with_the_same_state_emit_one_event() {
    let (tx, rx) = mpsc::unbounded_channel();
    let watches = Mutex::new(VecDeque::from([rx]));
    let (client, _log) = fake::client(move |request| {
        if request.is_watch() {
            match watches.lock().unwrap().pop_front() {
                Some(receiver) => Reply::Stream(receiver),
                None => Reply::Json(500, fake::status(500, "InternalError", "done")),
            }
        } else {
            Reply::Json(200, fake::list("PodList", "v1", "1", vec![]))
        }
    });
    for version in 2..6 {
        tx.send(fake::watch_event("MODIFIED", pod(5, &version.to_string(), "Running", true, None))).unwrap();
    }
    tx.send(fake::watch_event("MODIFIED", pod(5, "7", "Failed", false, None))).unwrap();
    let runtime = KubeRuntime::with_client(client, config(false, false));
    let mut stream = runtime.watch();
    let first = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap();
    assert!(matches!(first, InstanceEvent::Running { instance_id: InstanceId(5), .. }));
    let second = tokio::time::timeout(Duration::from_secs(10), stream.next()).await.unwrap().unwrap();
    assert!(
        matches!(second, InstanceEvent::Failed { instance_id: InstanceId(5), ref reason } if reason.contains("exited")),
        "{second:?}"
    );
}

fn parse(value: serde_json::Value) -> Pod {
    serde_json::from_value(value).unwrap()
}

#[test]
fn pod_states_cover_readiness_and_every_failure() {
    let now = chrono::Utc::now().timestamp();
    let fixture = |phase, ready, waiting, terminated, created_secs_ago| {
        parse(
            PodFixture {
                instance: 3,
                namespace: "ns-3",
                resource_version: "1",
                phase,
                ready,
                waiting,
                terminated,
                created_secs_ago,
            }
            .json(),
        )
    };
    let state = |pod: &Pod| pods::state(pod, now).unwrap();
    assert_eq!(pods::instance_id(&fixture("Running", true, None, None, 1)), Some(InstanceId(3)));
    assert_eq!(
        state(&fixture("Running", true, None, None, 1)),
        PodState::Running { upstream: "challenge.ns-3.svc:8080".into() }
    );
    assert_eq!(state(&fixture("Running", false, None, None, 1)), PodState::Starting);
    assert_eq!(state(&fixture("Pending", false, Some("ContainerCreating"), None, 1)), PodState::Starting);
    assert_eq!(
        state(&fixture("Pending", false, Some("ErrImagePull"), None, 10)),
        PodState::Starting,
        "young pull errors heal"
    );
    let failed = |pod: &Pod| match state(pod) {
        PodState::Failed { reason } => reason,
        other => panic!("{other:?}"),
    };
    assert!(failed(&fixture("Pending", false, Some("ImagePullBackOff"), None, 45)).contains("image pull failed"));
    assert!(failed(&fixture("Pending", false, Some("InvalidImageName"), None, 1)).contains("invalid image name"));
    assert!(
        failed(&fixture("Pending", false, Some("CreateContainerConfigError"), None, 1)).contains("cannot be created")
    );
    assert!(failed(&fixture("Running", false, Some("CrashLoopBackOff"), None, 1)).contains("crash loop"));
    assert!(failed(&fixture("Running", false, None, Some(("OOMKilled", 137)), 1)).contains("OOMKilled"));
    assert!(failed(&fixture("Failed", false, None, Some(("Error", 2)), 1)).contains("exit code 2"));
    assert!(failed(&fixture("Succeeded", false, None, Some(("Completed", 0)), 1)).contains("exited"));
    let mut evicted = fixture("Failed", false, None, None, 1);
    evicted.status.as_mut().unwrap().reason = Some("Evicted".into());
    evicted.status.as_mut().unwrap().message = Some("low on memory".into());
    assert_eq!(failed(&evicted), "evicted: low on memory");
    let mut deleting = fixture("Running", true, None, None, 1);
    deleting.metadata.deletion_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(jiff_now()));
    assert_eq!(pods::state(&deleting, now), None);
    let unlabelled = parse(json!({"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "x"}}));
    assert_eq!(pods::instance_id(&unlabelled), None);
}

fn jiff_now() -> k8s_openapi::jiff::Timestamp {
    k8s_openapi::jiff::Timestamp::now()
}
