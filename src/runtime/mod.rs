//! The `Runtime` seam: where challenge instances actually run.
//!
//! Backends: `LocalRuntime` (challenge processes on this host; embedded default and tests) and
//! `KubeRuntime` (Argo Workflows and per-instance namespaces). Role code sees only `Runtime`,
//! `InstanceSpec` and `InstanceEvent`; all Pod↔domain and process↔domain mapping stays in the
//! backend modules.

mod kube;
mod local;

#[cfg(test)]
pub(crate) mod tests;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::stream::BoxStream;
use serde::{Deserialize, Serialize};

use crate::domain::{ChallengeId, InstanceId, TeamId};

pub use kube::KubeRuntime;
pub use local::LocalRuntime;

/// Which runtime backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RuntimeBackendKind {
    Local,
    Kubernetes,
}

/// The `[runtime]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuntimeConfig {
    pub backend: RuntimeBackendKind,
    pub local: LocalConfig,
    pub kubernetes: KubernetesConfig,
}

impl RuntimeConfig {
    /// Problems with this section, for configuration validation.
    pub(crate) fn problems(&self) -> Vec<String> {
        let mut problems = Vec::new();
        if self.local.port_range_start == 0 || self.local.port_range_start > self.local.port_range_end {
            problems.push("runtime.local.port_range_start must be at least 1 and not above port_range_end".to_owned());
        }
        problems
    }
}

/// The `[runtime.local]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LocalConfig {
    pub host: String,
    pub ready_timeout_secs: u64,
    pub port_range_start: u16,
    pub port_range_end: u16,
    pub log_lines: usize,
}

/// The `[runtime.kubernetes]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KubernetesConfig {
    pub argo_namespace: String,
    pub start_template: String,
    pub build_template: String,
    /// Namespace of the fctf platform (the gateway's pods), allowed into instances.
    pub platform_namespace: String,
    /// Challenge pods may reach the internet (never private, link-local or cluster ranges).
    pub internet_egress: bool,
    /// Copy the `fctf-registry-pull` secret into instance namespaces and pull with it.
    pub copy_pull_secret: bool,
}

/// Errors of the runtime seam.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The instance is not known to the runtime.
    #[error("instance {0} not found in the runtime")]
    NotFound(InstanceId),
    /// The spec cannot be run by this backend (e.g. no command for a local challenge).
    #[error("invalid instance spec: {0}")]
    InvalidSpec(String),
    /// The backend is not usable (not configured, not reachable, not built yet).
    #[error("runtime unavailable: {0}")]
    Unavailable(String),
    /// Anything else.
    #[error("runtime error: {0}")]
    Other(String),
}

/// What to run for one instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceSpec {
    pub instance_id: InstanceId,
    pub team_id: TeamId,
    pub challenge_id: ChallengeId,
    /// DNS-safe name (≤ 63 characters) of the runtime object.
    pub name: String,
    /// Container image (kubernetes).
    pub image: Option<String>,
    /// Shell command (local runtime), run with `sh -c`.
    pub command: Option<String>,
    /// Port the challenge listens on inside its container (kubernetes). The local runtime
    /// assigns a free port and passes it as `PORT`.
    pub port: u16,
    /// The flag handed to the instance as `FLAG` (per-team dynamic flags), if any.
    pub flag: Option<String>,
    /// Extra environment variables.
    pub env: BTreeMap<String, String>,
    /// Seconds the instance may live at most (backstop for expiry).
    pub max_lifetime_secs: u64,
    /// Container settings (kubernetes; ignored by the local runtime).
    pub container: ContainerSettings,
}

/// How a challenge container runs on Kubernetes. `None` resources take the platform defaults
/// (300m CPU, 256 MiB; a request defaults to its limit).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerSettings {
    /// CPU request in millicores.
    pub cpu_request_millis: Option<u32>,
    /// CPU limit in millicores.
    pub cpu_limit_millis: Option<u32>,
    /// Memory request in MiB.
    pub memory_request_mib: Option<u32>,
    /// Memory limit in MiB.
    pub memory_limit_mib: Option<u32>,
    /// Hardened pod and container security context (and Pod Security `restricted`).
    pub hardened: bool,
    /// Run under gVisor (`runtimeClassName: gvisor`).
    pub gvisor: bool,
}

/// An image build (kubernetes runtime: `up-challenge-template`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildSpec {
    pub challenge_id: ChallengeId,
    /// Signed URL of the build context (tar archive).
    pub context_url: String,
    /// Destination image reference with its tag.
    pub image: String,
    /// Dockerfile path inside the context.
    pub dockerfile: Option<String>,
    /// Center's signed build-report endpoint.
    pub callback_url: String,
}

/// The state of an image build (kubernetes runtime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildState {
    /// The build's name (its Workflow).
    pub workflow: String,
    pub challenge_id: Option<ChallengeId>,
    /// The destination image.
    pub image: Option<String>,
    /// Argo's phase: `Pending`, `Running`, `Succeeded`, `Failed` or `Error`.
    pub phase: String,
    /// True once the build ended (whatever the outcome).
    pub finished: bool,
    /// True when it ended `Succeeded`.
    pub succeeded: bool,
    /// Argo's message, if any.
    pub message: Option<String>,
    /// Unix seconds when it started and finished, when known.
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

/// What the runtime reports about an instance.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum InstanceEvent {
    /// The runtime object exists and is starting.
    Starting { instance_id: InstanceId },
    /// The instance accepts connections at `upstream` (`host:port`).
    Running { instance_id: InstanceId, upstream: String },
    /// The instance could not start or died; `reason` is for players and admins.
    Failed { instance_id: InstanceId, reason: String },
    /// The runtime object is gone.
    Stopped { instance_id: InstanceId },
}

impl InstanceEvent {
    /// The instance the event is about.
    pub fn instance_id(&self) -> InstanceId {
        match self {
            InstanceEvent::Starting { instance_id }
            | InstanceEvent::Running { instance_id, .. }
            | InstanceEvent::Failed { instance_id, .. }
            | InstanceEvent::Stopped { instance_id } => *instance_id,
        }
    }
}

/// A runtime object as listed by the backend (for resync and ghost detection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeObject {
    pub instance_id: InstanceId,
    pub name: String,
    /// The upstream when it is running.
    pub upstream: Option<String>,
    pub starting: bool,
}

/// The backend interface.
#[async_trait]
pub(crate) trait RuntimeBackend: Send + Sync + 'static {
    async fn start(&self, spec: InstanceSpec) -> Result<(), RuntimeError>;
    async fn stop(&self, instance_id: InstanceId) -> Result<(), RuntimeError>;
    async fn logs(&self, instance_id: InstanceId, tail_lines: usize) -> Result<String, RuntimeError>;
    /// Instance starts in flight (started, not yet running or failed), from the runtime's view.
    async fn in_flight(&self) -> Result<usize, RuntimeError>;
    async fn list(&self) -> Result<Vec<RuntimeObject>, RuntimeError>;
    /// Events from now on. Each call returns an independent stream. A stream that *ends* may
    /// have missed events (watch lag, disconnect, relist): the caller watches again and
    /// relists with `list`.
    fn watch(&self) -> BoxStream<'static, InstanceEvent>;
    /// Submits an image build; returns the build's name. Only the kubernetes runtime builds.
    async fn build_image(&self, spec: BuildSpec) -> Result<String, RuntimeError> {
        Err(RuntimeError::Unavailable(format!(
            "image builds need the kubernetes runtime (challenge {})",
            spec.challenge_id
        )))
    }
    /// The state of a build by name.
    async fn build_state(&self, workflow: &str) -> Result<BuildState, RuntimeError> {
        Err(RuntimeError::Unavailable(format!("image builds need the kubernetes runtime (build {workflow})")))
    }
    /// Build states as they change (kubernetes); never yields on other runtimes. A stream that
    /// ends may have missed changes: watch again.
    fn watch_builds(&self) -> BoxStream<'static, BuildState> {
        Box::pin(futures::stream::pending())
    }
    /// Stops everything (process shutdown for the local runtime; nothing on kubernetes).
    async fn shutdown(&self, grace: Duration);
}

/// The runtime handle. Cheap to clone.
#[derive(Clone)]
pub struct Runtime(Arc<dyn RuntimeBackend>);

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Runtime")
    }
}

impl Runtime {
    /// Builds the configured backend. `data_dir` keeps local logs.
    pub async fn from_config(cfg: &RuntimeConfig) -> Result<Self, RuntimeError> {
        match cfg.backend {
            RuntimeBackendKind::Local => Ok(Self(Arc::new(LocalRuntime::new(cfg.local.clone())))),
            RuntimeBackendKind::Kubernetes => Ok(Self(Arc::new(KubeRuntime::connect(&cfg.kubernetes).await?))),
        }
    }

    /// Asks the runtime to start an instance; progress arrives as events.
    pub async fn start(&self, spec: InstanceSpec) -> Result<(), RuntimeError> {
        self.0.start(spec).await
    }

    /// Stops an instance and removes its resources.
    pub async fn stop(&self, instance_id: InstanceId) -> Result<(), RuntimeError> {
        self.0.stop(instance_id).await
    }

    /// The last `tail_lines` lines of output.
    pub async fn logs(&self, instance_id: InstanceId, tail_lines: usize) -> Result<String, RuntimeError> {
        self.0.logs(instance_id, tail_lines).await
    }

    /// Starts in flight, for the global concurrency cap.
    pub async fn in_flight(&self) -> Result<usize, RuntimeError> {
        self.0.in_flight().await
    }

    /// Every runtime object.
    pub async fn list(&self) -> Result<Vec<RuntimeObject>, RuntimeError> {
        self.0.list().await
    }

    /// A stream of instance events from now on. When it ends, events may have been missed:
    /// watch again and relist.
    pub fn watch(&self) -> BoxStream<'static, InstanceEvent> {
        self.0.watch()
    }

    /// Submits an image build (kubernetes only); returns the build's name.
    pub async fn build_image(&self, spec: BuildSpec) -> Result<String, RuntimeError> {
        self.0.build_image(spec).await
    }

    /// The state of a build (kubernetes only).
    pub async fn build_state(&self, workflow: &str) -> Result<BuildState, RuntimeError> {
        self.0.build_state(workflow).await
    }

    /// Build states as they change (kubernetes only; other runtimes never yield).
    pub fn watch_builds(&self) -> BoxStream<'static, BuildState> {
        self.0.watch_builds()
    }

    /// Wraps a backend (tests use instrumented backends).
    #[cfg(test)]
    pub(crate) fn from_backend(backend: Arc<dyn RuntimeBackend>) -> Self {
        Self(backend)
    }

    /// Stops what the runtime owns at process exit.
    pub async fn shutdown(&self, grace: Duration) {
        self.0.shutdown(grace).await
    }
}
