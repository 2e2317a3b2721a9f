//! Instance endpoints (start, stop-by-user, check-status, instances) and the read-only
//! instance view the challenge endpoints show.
//!
//! **Composition point for the deployment pipeline.** The pipeline adds its routes to
//! [`routes`]; they are merged into `contestant::router`, so they get the shared context and the
//! per-address rate limit. Their paths (`/api/Challenge/start`, `stop-by-user`, `check-status`,
//! `instances`) are already in `contestant::ROUTE_PATHS` (case-insensitive matching); each new
//! operation must also be described in `openapi.json`, which a unit test keeps in step with the
//! router.
//! Handlers take `State<ApiState>`, a `session::Player` (full per-request account check) and
//! call `guards::ctf_only` / `guards::ctf_or_after`; errors are `error::ApiError`.
//!
//! Until then this module only reads the store's durable instance records, which are the
//! source of truth for what runs: the challenge list and detail show a team's live instance
//! (`pod_status`, `is_started`, time remaining) from them. The pipeline may replace
//! [`live_instances`] with its cache hot copy and add the gateway URL.

use std::collections::HashMap;

use axum::routing::MethodRouter;

use crate::api::ApiState;
use crate::domain::{ChallengeId, TeamId};
use crate::store::{Instance, InstanceState, StoreError};

/// The pipeline's instance routes: `(method, path, handler)`.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<ApiState>)> {
    Vec::new()
}

/// The FCTF status string of an instance state.
pub fn pod_status(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Queued => "PENDING_DEPLOY",
        InstanceState::Deploying => "Pending",
        InstanceState::Running => "Running",
        InstanceState::Stopping => "Deleting",
        InstanceState::Stopped => "Stopped",
        InstanceState::Failed => "Failed",
    }
}

/// The live instances of a team, by challenge.
pub async fn live_instances(state: &ApiState, team: TeamId) -> Result<HashMap<ChallengeId, Instance>, StoreError> {
    let instances = state.store.list_live_instances(Some(team)).await?;
    Ok(instances.into_iter().map(|instance| (instance.challenge_id, instance)).collect())
}
