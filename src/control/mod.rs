//! Deployment control: the contract between the roles that ask for instances (api, admin) and
//! the role that owns them (center), plus the instance-state operations center, consumer and
//! listener share.
//!
//! Roles never import each other, so everything they must agree on lives here:
//! - [`dto`]: request and response bodies; [`ControlError`]: errors with their HTTP status;
//! - [`signature`]: HMAC-SHA256 request signing (v1, `argo/README.md` §3);
//! - [`ControlService`]: the operations center implements; [`Client`]: the one handle callers
//!   use, in process ([`LocalLink`]) when center runs in the same process and signed HTTP to
//!   `center.url` otherwise;
//! - [`lifecycle`]: guarded state transitions of the durable instance rows together with their
//!   hot state in the cache (team slots, gateway liveness markers, status snapshots).
//!
//! Decision: the api reads instance status through center too (one code path for status,
//! queue position and token minting), not from the store directly.

mod client;
pub mod dto;
mod error;
pub mod lifecycle;
pub mod signature;

#[cfg(test)]
pub(crate) mod testing;

use std::sync::{Arc, OnceLock};

use async_trait::async_trait;

pub use client::Client;
pub use dto::*;
pub use error::{ControlError, ErrorBody};

/// HTTP paths of center's internal API (all `POST`, JSON bodies, signed).
pub mod paths {
    /// [`super::ControlService::start`].
    pub const START: &str = "/internal/instances/start";
    /// [`super::ControlService::stop`].
    pub const STOP: &str = "/internal/instances/stop";
    /// [`super::ControlService::status`].
    pub const STATUS: &str = "/internal/instances/status";
    /// [`super::ControlService::list`].
    pub const LIST: &str = "/internal/instances/list";
    /// [`super::ControlService::logs`].
    pub const LOGS: &str = "/internal/instances/logs";
    /// [`super::ControlService::stop_all`].
    pub const STOP_ALL: &str = "/internal/instances/stop-all";
    /// [`super::ControlService::build`].
    pub const BUILD: &str = "/internal/builds";
    /// [`super::ControlService::build_status`].
    pub const BUILD_STATUS: &str = "/internal/builds/status";
    /// [`super::ControlService::build_report`]: the build workflow's signed callback.
    pub const BUILD_REPORT: &str = "/internal/workflows/build";
}

/// The operations of the deployment center.
#[async_trait]
pub trait ControlService: Send + Sync + 'static {
    /// Records the instance and queues its deploy job (confirmed by the queue), or returns the
    /// team's live instance of the challenge. On a queue failure nothing stays queued, and the
    /// team's slot is released.
    async fn start(&self, request: StartRequest) -> Result<StartOutcome, ControlError>;
    /// Stops the live instance. Of concurrent stops exactly one succeeds; the others get
    /// `Conflict` ("already stopped"). `NotFound` when there is no live instance.
    async fn stop(&self, request: StopRequest) -> Result<InstanceView, ControlError>;
    /// The team's instance of the challenge, with the token while running and the queue
    /// position while queued.
    async fn status(&self, request: StatusRequest) -> Result<StatusOutcome, ControlError>;
    /// Live instances (with tokens).
    async fn list(&self, request: ListRequest) -> Result<ListOutcome, ControlError>;
    /// The last lines of output of the team's instance of the challenge.
    async fn logs(&self, request: LogsRequest) -> Result<LogsOutcome, ControlError>;
    /// Stops every instance and removes every runtime object (administrators only).
    async fn stop_all(&self, request: StopAllRequest) -> Result<StopAllOutcome, ControlError>;
    /// Submits an image build.
    async fn build(&self, request: BuildRequest) -> Result<BuildAccepted, ControlError>;
    /// The state of a build.
    async fn build_status(&self, request: BuildStatusRequest) -> Result<BuildState, ControlError>;
    /// Records a build result; repeated reports of one workflow are accepted idempotently.
    async fn build_report(&self, report: BuildReport) -> Result<(), ControlError>;
}

/// Where center registers itself when it runs in this process, so that the api's [`Client`]
/// calls it directly. Cloned into every role through `Deps`; empty in processes without
/// center.
#[derive(Clone, Default)]
pub struct LocalLink(Arc<OnceLock<Arc<dyn ControlService>>>);

impl LocalLink {
    /// Registers this process's center; a second registration is ignored.
    pub fn register(&self, service: Arc<dyn ControlService>) {
        let _ = self.0.set(service);
    }

    /// This process's center, if it runs here.
    pub fn get(&self) -> Option<Arc<dyn ControlService>> {
        self.0.get().cloned()
    }
}

impl std::fmt::Debug for LocalLink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalLink").field("registered", &self.0.get().is_some()).finish()
    }
}
