//! The `kubernetes` runtime: Argo Workflows and per-instance namespaces.
//!
//! Not built yet: the deployment pipeline issue fills it in (kube-rs client, workflow
//! submission from `start-chal-v2-template`, pod watch). Until then every call answers a clear
//! `RuntimeError::Unavailable`, and `fctf` refuses to start a role that needs it.

use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;

use super::{InstanceEvent, InstanceSpec, KubernetesConfig, RuntimeBackend, RuntimeError, RuntimeObject};
use crate::domain::InstanceId;

const NOT_AVAILABLE: &str = "the kubernetes runtime is not available in this build yet; use runtime.backend = local";

/// Runtime backed by a Kubernetes cluster with Argo Workflows.
#[derive(Debug)]
pub struct KubeRuntime;

impl KubeRuntime {
    /// Connects to the cluster.
    pub async fn connect(_cfg: &KubernetesConfig) -> Result<Self, RuntimeError> {
        Err(RuntimeError::Unavailable(NOT_AVAILABLE.to_owned()))
    }
}

#[async_trait]
impl RuntimeBackend for KubeRuntime {
    async fn start(&self, _spec: InstanceSpec) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unavailable(NOT_AVAILABLE.to_owned()))
    }

    async fn stop(&self, _instance_id: InstanceId) -> Result<(), RuntimeError> {
        Err(RuntimeError::Unavailable(NOT_AVAILABLE.to_owned()))
    }

    async fn logs(&self, _instance_id: InstanceId, _tail_lines: usize) -> Result<String, RuntimeError> {
        Err(RuntimeError::Unavailable(NOT_AVAILABLE.to_owned()))
    }

    async fn in_flight(&self) -> Result<usize, RuntimeError> {
        Err(RuntimeError::Unavailable(NOT_AVAILABLE.to_owned()))
    }

    async fn list(&self) -> Result<Vec<RuntimeObject>, RuntimeError> {
        Err(RuntimeError::Unavailable(NOT_AVAILABLE.to_owned()))
    }

    fn watch(&self) -> BoxStream<'static, InstanceEvent> {
        Box::pin(futures::stream::empty())
    }

    async fn shutdown(&self, _grace: Duration) {}
}
