//! Request and response bodies of the deployment control API (api → center, admin → center,
//! workflow → center). JSON, snake_case; the same types travel in process and over HTTP.

use serde::{Deserialize, Serialize};

use crate::domain::{ChallengeId, InstanceId, TeamId, UserId};
use crate::store::{Instance, InstanceState};

/// Start an instance of `challenge_id` for `team_id` (−1 admin preview, −2 shared instance).
/// For a real team the caller has already reserved the team's instance slot.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartRequest {
    pub challenge_id: ChallengeId,
    pub team_id: TeamId,
    /// The user asking (a player, or the admin for preview and shared instances).
    pub user_id: Option<UserId>,
}

/// What a start did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StartOutcome {
    /// True when this call created and queued the instance; false when the team already had a
    /// live instance of the challenge (its view is returned, nothing was queued).
    pub created: bool,
    /// The instance.
    pub instance: InstanceView,
}

/// Why an instance is being stopped (recorded as its reason).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// The player stopped it.
    User,
    /// An administrator stopped it.
    Admin,
    /// The team solved the challenge.
    Solved,
    /// The team used its last attempt.
    AttemptsExhausted,
}

impl StopReason {
    /// The reason text stored on the instance.
    pub fn as_str(self) -> &'static str {
        match self {
            StopReason::User => "stopped by the player",
            StopReason::Admin => "stopped by an administrator",
            StopReason::Solved => "stopped after a correct flag",
            StopReason::AttemptsExhausted => "stopped after the last allowed attempt",
        }
    }
}

/// Stop the live instance of `challenge_id` for `team_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopRequest {
    pub challenge_id: ChallengeId,
    pub team_id: TeamId,
    pub user_id: Option<UserId>,
    pub reason: StopReason,
}

/// Read the state of the team's instance of a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusRequest {
    pub challenge_id: ChallengeId,
    pub team_id: TeamId,
}

/// The team's instance of a challenge: its live instance, or the last one when it failed a
/// short while ago (so the player sees why).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StatusOutcome {
    pub instance: Option<InstanceView>,
}

/// The live instances of one team (or of every team).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListRequest {
    pub team_id: Option<TeamId>,
}

/// Live instances.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ListOutcome {
    pub instances: Vec<InstanceView>,
}

/// The last lines of output of the team's instance of a challenge.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsRequest {
    pub challenge_id: ChallengeId,
    pub team_id: TeamId,
    pub tail_lines: usize,
}

/// Instance output.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogsOutcome {
    pub instance_id: InstanceId,
    pub logs: String,
}

/// Stop every instance; `user_id` must be an administrator.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopAllRequest {
    pub user_id: UserId,
}

/// What stop-all did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StopAllOutcome {
    /// Live instances stopped.
    pub stopped: u64,
    /// Runtime objects with no live instance removed.
    pub orphans_removed: u64,
    /// Stops that failed (retried by the listener).
    pub failed: u64,
}

/// Build a challenge image from an uploaded context (kubernetes runtime).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildRequest {
    pub challenge_id: ChallengeId,
    /// Signed, short-lived URL of the build context (a tar archive).
    pub context_url: String,
    /// Destination image reference with its tag.
    pub image: String,
    /// Dockerfile path inside the context (`Dockerfile` when absent).
    pub dockerfile: Option<String>,
    /// The administrator asking.
    pub user_id: Option<UserId>,
}

/// A build workflow was submitted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildAccepted {
    pub workflow: String,
}

/// Read the state of a build by its workflow name.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildStatusRequest {
    pub workflow: String,
}

/// The state of a build.
pub use crate::runtime::BuildState;

/// The build workflow's signed status report (`argo/README.md` §2), also accepted repeatedly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BuildReport {
    pub challenge_id: ChallengeId,
    pub finished_at: i64,
    pub image: String,
    pub kind: String,
    pub message: Option<String>,
    pub phase: String,
    pub succeeded: bool,
    pub workflow: String,
}

/// An instance as players and admins see it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InstanceView {
    pub instance_id: InstanceId,
    pub team_id: TeamId,
    pub challenge_id: ChallengeId,
    /// `queued`, `deploying`, `running`, `stopping`, `stopped` or `failed`.
    pub state: String,
    /// The gateway token (`challenge_url`), only while running.
    pub token: Option<String>,
    /// `time_finished` (Unix seconds), once running.
    pub expires_at: Option<i64>,
    /// Why it stopped or failed.
    pub reason: Option<String>,
    /// 1-based position among the queued instances, while queued.
    pub queue_position: Option<u64>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
}

impl InstanceView {
    /// The view of a stored instance (no token, no queue position).
    pub fn of(instance: &Instance) -> Self {
        InstanceView {
            instance_id: instance.id,
            team_id: instance.team_id,
            challenge_id: instance.challenge_id,
            state: instance.state.as_str().to_owned(),
            token: None,
            expires_at: instance.expires_at,
            reason: instance.reason.clone(),
            queue_position: None,
            created_at: instance.created_at,
        }
    }

    /// The state, parsed.
    pub fn state(&self) -> Option<InstanceState> {
        self.state.parse().ok()
    }

    /// The FCTF status string (`PENDING_DEPLOY`, `Pending`, `Running`, `Deleting`, `Stopped`,
    /// `Failed`) used by the contestant API's `pod_status` and `status` fields.
    pub fn fctf_status(&self) -> &'static str {
        match self.state() {
            Some(InstanceState::Queued) => "PENDING_DEPLOY",
            Some(InstanceState::Deploying) => "Pending",
            Some(InstanceState::Running) => "Running",
            Some(InstanceState::Stopping) => "Deleting",
            Some(InstanceState::Stopped) => "Stopped",
            Some(InstanceState::Failed) | None => "Failed",
        }
    }
}
