//! The `kubernetes` runtime: Argo Workflows and one namespace per instance (kube-rs).
//!
//! The contract with the cluster is `argo/README.md`; this module is its only Rust
//! implementation, and all Pod↔domain mapping stays here ([`pods`]).
//!
//! | operation | Kubernetes API calls |
//! |---|---|
//! | `start` | `POST /apis/argoproj.io/v1alpha1/namespaces/<argo>/workflows` (Workflow `start-<id>` from `start-chal-v2-template`, bundle rendered by [`render`]; 409 AlreadyExists = already submitted) |
//! | `in_flight` | `GET …/namespaces/<argo>/workflows?labelSelector=ctf/kind=challenge-start,workflows.argoproj.io/completed!=true` (metadata only) |
//! | `stop` | `GET /api/v1/namespaces?labelSelector=ctf/kind=challenge,ctf/instance=<id>`, then `DELETE /api/v1/namespaces/<ns>` (background propagation) |
//! | `logs` | the namespace as for `stop`, `GET /api/v1/namespaces/<ns>/pods?labelSelector=…`, `GET …/pods/<pod>/log?tailLines=<n>` |
//! | `list` | `GET /api/v1/namespaces?labelSelector=ctf/kind=challenge` and `GET /api/v1/pods?labelSelector=ctf/kind=challenge` |
//! | `watch` | list and watch `GET /api/v1/pods?labelSelector=ctf/kind=challenge` (all namespaces) |
//! | `build_image` | `POST …/namespaces/<argo>/workflows` (Workflow `build-<challenge>-<unix>` from `up-challenge-template`) |
//! | `build_state` | `GET …/namespaces/<argo>/workflows/<name>` |
//! | `watch_builds` | list and watch `GET …/namespaces/<argo>/workflows?labelSelector=ctf/kind=challenge-build` |
//!
//! Each role's account may make exactly the calls of the operations it uses (`k8s/rbac/`,
//! checked by the RBAC test). Decisions: namespaces are found by label, never by parsing
//! names; a namespace being deleted counts as gone; a stop of an instance whose namespace does
//! not exist yet is `NotFound` (if the start Workflow creates it later, the listener removes it
//! as a ghost after the grace period).

mod builds;
mod pods;
mod render;
mod watch;

#[cfg(test)]
mod tests;

use std::time::Duration;

use ::kube::api::{Api, ApiResource, DeleteParams, DynamicObject, GroupVersionKind, ListParams, LogParams, PostParams};
use async_trait::async_trait;
use futures::stream::BoxStream;
use k8s_openapi::api::core::v1::{Namespace, Pod};

use super::{
    BuildSpec, BuildState, InstanceEvent, InstanceSpec, KubernetesConfig, RuntimeBackend, RuntimeError, RuntimeObject,
};
use crate::domain::InstanceId;

/// Runtime backed by a Kubernetes cluster with Argo Workflows.
pub struct KubeRuntime {
    client: ::kube::Client,
    cfg: KubernetesConfig,
}

impl std::fmt::Debug for KubeRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeRuntime").field("argo_namespace", &self.cfg.argo_namespace).finish_non_exhaustive()
    }
}

impl KubeRuntime {
    /// Connects with the in-cluster configuration, or `KUBECONFIG` / `~/.kube/config`.
    pub async fn connect(cfg: &KubernetesConfig) -> Result<Self, RuntimeError> {
        let client = ::kube::Client::try_default()
            .await
            .map_err(|error| RuntimeError::Unavailable(format!("cannot configure the Kubernetes client: {error}")))?;
        Ok(Self::with_client(client, cfg.clone()))
    }

    /// A runtime over an existing client (tests use a fake API server).
    pub fn with_client(client: ::kube::Client, cfg: KubernetesConfig) -> Self {
        Self { client, cfg }
    }

    fn workflows(&self) -> Api<DynamicObject> {
        let gvk = GroupVersionKind::gvk("argoproj.io", "v1alpha1", "Workflow");
        let resource = ApiResource::from_gvk_with_plural(&gvk, "workflows");
        Api::namespaced_with(self.client.clone(), &self.cfg.argo_namespace, &resource)
    }

    async fn create_workflow(&self, workflow: serde_json::Value) -> Result<String, RuntimeError> {
        let object: DynamicObject = serde_json::from_value(workflow)
            .map_err(|error| RuntimeError::Other(format!("cannot render the workflow: {error}")))?;
        let name = object.metadata.name.clone().unwrap_or_default();
        match self.workflows().create(&PostParams::default(), &object).await {
            Ok(_) => Ok(name),
            // At-least-once delivery: the Workflow was already submitted.
            Err(::kube::Error::Api(status)) if status.code == 409 => Ok(name),
            Err(error) => Err(map_error(error)),
        }
    }

    /// The live namespaces of an instance (normally one).
    async fn instance_namespaces(&self, instance_id: InstanceId) -> Result<Vec<String>, RuntimeError> {
        let params = ListParams::default().labels(&render::instance_selector(instance_id));
        let list = Api::<Namespace>::all(self.client.clone()).list(&params).await.map_err(map_error)?;
        Ok(list
            .items
            .into_iter()
            .filter(|namespace| !terminating(namespace))
            .filter_map(|namespace| namespace.metadata.name)
            .collect())
    }
}

fn terminating(namespace: &Namespace) -> bool {
    namespace.metadata.deletion_timestamp.is_some()
        || namespace.status.as_ref().and_then(|status| status.phase.as_deref()) == Some("Terminating")
}

/// API errors: server-side trouble and transport failures are `Unavailable` (retry), the rest
/// `Other`.
fn map_error(error: ::kube::Error) -> RuntimeError {
    match error {
        ::kube::Error::Api(status) if status.code >= 500 || status.code == 429 => {
            RuntimeError::Unavailable(format!("Kubernetes API: {} ({})", status.message, status.code))
        }
        ::kube::Error::Api(status) => {
            RuntimeError::Other(format!("Kubernetes API: {} ({})", status.message, status.code))
        }
        other => RuntimeError::Unavailable(format!("Kubernetes API unreachable: {other}")),
    }
}

#[async_trait]
impl RuntimeBackend for KubeRuntime {
    async fn start(&self, spec: InstanceSpec) -> Result<(), RuntimeError> {
        let workflow = render::start_workflow(&spec, &self.cfg)?;
        self.create_workflow(workflow).await.map(|_| ())
    }

    async fn stop(&self, instance_id: InstanceId) -> Result<(), RuntimeError> {
        let namespaces = self.instance_namespaces(instance_id).await?;
        if namespaces.is_empty() {
            return Err(RuntimeError::NotFound(instance_id));
        }
        let api = Api::<Namespace>::all(self.client.clone());
        let params = DeleteParams::background().grace_period(0);
        for name in namespaces {
            match api.delete(&name, &params).await {
                Ok(_) => {}
                Err(::kube::Error::Api(status)) if status.code == 404 || status.code == 409 => {}
                Err(error) => return Err(map_error(error)),
            }
        }
        Ok(())
    }

    async fn logs(&self, instance_id: InstanceId, tail_lines: usize) -> Result<String, RuntimeError> {
        let Some(namespace) = self.instance_namespaces(instance_id).await?.into_iter().next() else {
            return Err(RuntimeError::NotFound(instance_id));
        };
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &namespace);
        let params = ListParams::default().labels(&render::instance_selector(instance_id));
        let list = pods.list(&params).await.map_err(map_error)?;
        let Some(pod) = list.items.into_iter().filter_map(|pod| pod.metadata.name).next() else {
            return Err(RuntimeError::NotFound(instance_id));
        };
        let params = LogParams {
            container: Some(render::OBJECT_NAME.to_owned()),
            tail_lines: Some(i64::try_from(tail_lines).unwrap_or(i64::MAX)),
            ..LogParams::default()
        };
        pods.logs(&pod, &params).await.map_err(map_error)
    }

    async fn in_flight(&self) -> Result<usize, RuntimeError> {
        let params = ListParams::default().labels(&render::in_flight_selector());
        let list = self.workflows().list_metadata(&params).await.map_err(map_error)?;
        Ok(list.items.len())
    }

    async fn list(&self) -> Result<Vec<RuntimeObject>, RuntimeError> {
        let params = ListParams::default().labels(&format!("{}={}", render::KIND, render::KIND_CHALLENGE));
        let namespaces = Api::<Namespace>::all(self.client.clone()).list(&params).await.map_err(map_error)?;
        let pods = Api::<Pod>::all(self.client.clone()).list(&params).await.map_err(map_error)?;
        let now = chrono::Utc::now().timestamp();
        let mut objects = Vec::new();
        for namespace in namespaces.items.iter().filter(|namespace| !terminating(namespace)) {
            let Some(name) = namespace.metadata.name.clone() else { continue };
            let Some(instance_id) = namespace
                .metadata
                .labels
                .as_ref()
                .and_then(|labels| labels.get(render::INSTANCE))
                .and_then(|value| value.parse::<i64>().ok())
                .map(InstanceId)
            else {
                continue;
            };
            let upstream =
                pods.items.iter().filter(|pod| pods::instance_id(pod) == Some(instance_id)).find_map(|pod| {
                    match pods::state(pod, now) {
                        Some(pods::PodState::Running { upstream }) => Some(upstream),
                        _ => None,
                    }
                });
            objects.push(RuntimeObject { instance_id, name, starting: upstream.is_none(), upstream });
        }
        Ok(objects)
    }

    fn watch(&self) -> BoxStream<'static, InstanceEvent> {
        watch::pod_events(Api::<Pod>::all(self.client.clone()))
    }

    async fn build_image(&self, spec: BuildSpec) -> Result<String, RuntimeError> {
        let workflow = render::build_workflow(&spec, &self.cfg, chrono::Utc::now().timestamp());
        self.create_workflow(workflow).await
    }

    async fn build_state(&self, workflow: &str) -> Result<BuildState, RuntimeError> {
        match self.workflows().get(workflow).await {
            Ok(object) => Ok(builds::state(&object)),
            Err(::kube::Error::Api(status)) if status.code == 404 => {
                Err(RuntimeError::Other(format!("no build workflow named {workflow}")))
            }
            Err(error) => Err(map_error(error)),
        }
    }

    fn watch_builds(&self) -> BoxStream<'static, BuildState> {
        builds::finished_builds(self.workflows())
    }

    async fn shutdown(&self, _grace: Duration) {}
}
