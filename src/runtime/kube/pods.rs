//! Pod → instance state: the only place that reads Kubernetes pod status.
//!
//! A challenge pod (label `ctf/kind=challenge`, id in `ctf/instance`) is:
//! - **running** when its phase is `Running` and its `Ready` condition is true; the upstream is
//!   the instance Service, `challenge.<namespace>.svc:<container port>`;
//! - **failed** when its phase is `Failed` or `Succeeded` (a challenge must not exit), when it
//!   was evicted, when a container was `OOMKilled` or is in `CrashLoopBackOff`, when its image
//!   name is invalid or its configuration cannot be applied, or when pulling the image has
//!   failed for longer than [`PULL_FAILURE_GRACE_SECS`] (transient registry errors heal);
//! - **starting** otherwise. Readiness and creation timeouts are the listener's start budget.
//!
//! A pod being deleted maps to nothing (its deletion event says stopped).

use k8s_openapi::api::core::v1::{ContainerStatus, Pod};

use super::render::{INSTANCE, upstream};
use crate::domain::InstanceId;

/// Seconds image pulls may fail before the instance fails.
pub const PULL_FAILURE_GRACE_SECS: i64 = 30;

/// What a pod says about its instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PodState {
    Starting,
    Running { upstream: String },
    Failed { reason: String },
}

/// The instance a pod belongs to (from its `ctf/instance` label).
pub fn instance_id(pod: &Pod) -> Option<InstanceId> {
    let labels = pod.metadata.labels.as_ref()?;
    labels.get(INSTANCE)?.parse::<i64>().ok().map(InstanceId)
}

/// The pod's state at `now` (Unix seconds); `None` while it is being deleted.
pub fn state(pod: &Pod, now: i64) -> Option<PodState> {
    if pod.metadata.deletion_timestamp.is_some() {
        return None;
    }
    let status = pod.status.as_ref();
    let phase = status.and_then(|status| status.phase.as_deref()).unwrap_or("Pending");
    let containers: &[ContainerStatus] = status.and_then(|status| status.container_statuses.as_deref()).unwrap_or(&[]);
    if status.and_then(|status| status.reason.as_deref()) == Some("Evicted") {
        let message = status.and_then(|status| status.message.clone()).unwrap_or_default();
        return Some(PodState::Failed {
            reason: format!("evicted: {message}").trim_end_matches([' ', ':']).to_owned(),
        });
    }
    for container in containers {
        if let Some(reason) = container_failure(container, pod, now) {
            return Some(PodState::Failed { reason });
        }
    }
    match phase {
        "Failed" | "Succeeded" => {
            let detail = containers.iter().find_map(|container| container.state.as_ref()?.terminated.as_ref()).map(
                |terminated| match &terminated.reason {
                    Some(reason) => format!("{reason}, exit code {}", terminated.exit_code),
                    None => format!("exit code {}", terminated.exit_code),
                },
            );
            Some(PodState::Failed {
                reason: match detail {
                    Some(detail) => format!("the challenge exited ({detail})"),
                    None => "the challenge exited".to_owned(),
                },
            })
        }
        "Running" if is_ready(pod) => {
            let namespace = pod.metadata.namespace.as_deref()?;
            Some(PodState::Running { upstream: upstream(namespace, container_port(pod)?) })
        }
        _ => Some(PodState::Starting),
    }
}

fn container_failure(container: &ContainerStatus, pod: &Pod, now: i64) -> Option<String> {
    let state = container.state.as_ref()?;
    if let Some(terminated) = &state.terminated
        && terminated.reason.as_deref() == Some("OOMKilled")
    {
        return Some("out of memory (OOMKilled)".to_owned());
    }
    let waiting = state.waiting.as_ref()?;
    let reason = waiting.reason.as_deref()?;
    let message = waiting.message.as_deref().unwrap_or_default();
    let described = |what: &str| {
        if message.is_empty() { what.to_owned() } else { format!("{what}: {}", truncate(message)) }
    };
    match reason {
        "InvalidImageName" => Some(described("invalid image name")),
        "CreateContainerConfigError" | "CreateContainerError" => Some(described("container cannot be created")),
        "CrashLoopBackOff" => Some(described("crash loop")),
        "ErrImagePull" | "ImagePullBackOff" if age(pod, now) > PULL_FAILURE_GRACE_SECS => {
            Some(described("image pull failed"))
        }
        _ => None,
    }
}

fn is_ready(pod: &Pod) -> bool {
    pod.status.as_ref().and_then(|status| status.conditions.as_ref()).is_some_and(|conditions| {
        conditions.iter().any(|condition| condition.type_ == "Ready" && condition.status == "True")
    })
}

fn container_port(pod: &Pod) -> Option<i32> {
    let spec = pod.spec.as_ref()?;
    let container = spec
        .containers
        .iter()
        .find(|container| container.name == super::render::OBJECT_NAME)
        .or(spec.containers.first())?;
    container.ports.as_ref()?.first().map(|port| port.container_port)
}

fn age(pod: &Pod, now: i64) -> i64 {
    pod.metadata.creation_timestamp.as_ref().map(|created| now.saturating_sub(created.0.as_second())).unwrap_or(0)
}

fn truncate(message: &str) -> String {
    const LIMIT: usize = 300;
    if message.chars().count() <= LIMIT {
        return message.to_owned();
    }
    let cut: String = message.chars().take(LIMIT).collect();
    format!("{cut}…")
}
