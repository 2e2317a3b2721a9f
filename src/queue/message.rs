//! The messages that travel on the deploy queue.

use serde::{Deserialize, Serialize};

use crate::domain::{ChallengeId, InstanceId, TeamId, UserId};

/// Everything the queue carries. Tagged so new kinds can be added without breaking consumers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Task {
    /// Start the runtime object of an instance that center recorded as queued.
    Deploy(DeployJob),
}

/// A request to start one instance. The consumer re-reads the instance row before acting, so
/// the job carries ids, not state.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeployJob {
    /// The instance row to start.
    pub instance_id: InstanceId,
    /// Its challenge.
    pub challenge_id: ChallengeId,
    /// Its team (negative for preview and shared instances).
    pub team_id: TeamId,
    /// The user who asked for it, when a user did.
    pub user_id: Option<UserId>,
    /// Unix seconds when center queued the job; jobs older than the queue timeout are dropped.
    pub enqueued_at: i64,
}
