//! Durable instance records: one row per lifetime of a challenge instance.
//!
//! States: `queued` → `deploying` → `running` → `stopping` → `stopped`, or `failed`. The first
//! four are *live*; the partial unique index `instances_live_uq` allows one live instance per
//! (team, challenge), so a duplicate start fails with `Conflict { constraint:
//! "instances_live_uq" }` whatever the concurrency. Every change of state is a compare-and-set
//! (`UPDATE … WHERE id = $1 AND state IN (…)`): of several concurrent transitions from the
//! same state exactly one reports `true`. The team id is not a foreign key (−1 is an admin
//! preview, −2 a shared instance).

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::placeholders;
use super::{Store, StoreError};
use crate::domain::{ChallengeId, InstanceId, TeamId, UserId};

/// Lifecycle state of an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum InstanceState {
    /// Recorded, deploy job published, not yet picked up.
    Queued,
    /// The runtime is starting it.
    Deploying,
    /// Reachable through the gateway until `expires_at`.
    Running,
    /// Stop requested, runtime object being removed.
    Stopping,
    /// Gone (terminal).
    Stopped,
    /// Could not start or crashed (terminal).
    Failed,
}

impl InstanceState {
    /// Every live (non-terminal) state.
    pub const LIVE: [InstanceState; 4] =
        [InstanceState::Queued, InstanceState::Deploying, InstanceState::Running, InstanceState::Stopping];

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            InstanceState::Queued => "queued",
            InstanceState::Deploying => "deploying",
            InstanceState::Running => "running",
            InstanceState::Stopping => "stopping",
            InstanceState::Stopped => "stopped",
            InstanceState::Failed => "failed",
        }
    }

    /// True for `stopped` and `failed`.
    pub fn is_terminal(self) -> bool {
        matches!(self, InstanceState::Stopped | InstanceState::Failed)
    }
}

impl FromStr for InstanceState {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "queued" => Ok(InstanceState::Queued),
            "deploying" => Ok(InstanceState::Deploying),
            "running" => Ok(InstanceState::Running),
            "stopping" => Ok(InstanceState::Stopping),
            "stopped" => Ok(InstanceState::Stopped),
            "failed" => Ok(InstanceState::Failed),
            other => Err(StoreError::Other(format!("unknown instance state {other:?}"))),
        }
    }
}

/// A new instance (created `queued`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInstance {
    /// The team (−1 admin preview, −2 shared instance).
    pub team_id: TeamId,
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// Who asked for it.
    pub user_id: Option<UserId>,
    /// The per-instance flag handed to it, if the challenge uses dynamic flags.
    pub flag: Option<String>,
}

/// A stored instance.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Row id.
    pub id: InstanceId,
    /// The team (−1 admin preview, −2 shared instance).
    pub team_id: TeamId,
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// Lifecycle state.
    pub state: InstanceState,
    /// Name of the runtime object (namespace or process name).
    pub runtime_name: Option<String>,
    /// `host:port` the gateway proxies to, once running.
    pub upstream: Option<String>,
    /// The flag as created.
    pub flag: Option<String>,
    /// Why it stopped or failed.
    pub reason: Option<String>,
    /// Creation time (Unix seconds).
    pub created_at: i64,
    /// Last change (Unix seconds).
    pub updated_at: i64,
    /// When it became running.
    pub ready_at: Option<i64>,
    /// `time_finished`: when it must stop; also the gateway token's expiry.
    pub expires_at: Option<i64>,
    /// When it reached a terminal state.
    pub stopped_at: Option<i64>,
}

const INSTANCE_COLUMNS: &str = "id, team_id, challenge_id, user_id, state, runtime_name, upstream, flag, reason, \
     created_at, updated_at, ready_at, expires_at, stopped_at";

impl Instance {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let state: String = row.try_get("state")?;
        Ok(Instance {
            id: InstanceId(row.try_get("id")?),
            team_id: TeamId(row.try_get("team_id")?),
            challenge_id: ChallengeId(row.try_get("challenge_id")?),
            user_id: row.try_get::<Option<i64>, _>("user_id")?.map(UserId),
            state: state.parse().map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
            runtime_name: row.try_get("runtime_name")?,
            upstream: row.try_get("upstream")?,
            flag: row.try_get("flag")?,
            reason: row.try_get("reason")?,
            created_at: row.try_get("created_at")?,
            updated_at: row.try_get("updated_at")?,
            ready_at: row.try_get("ready_at")?,
            expires_at: row.try_get("expires_at")?,
            stopped_at: row.try_get("stopped_at")?,
        })
    }
}

fn live_list() -> String {
    InstanceState::LIVE.iter().map(|state| format!("'{}'", state.as_str())).collect::<Vec<_>>().join(", ")
}

impl Store {
    /// Records a new `queued` instance. `Conflict { constraint: "instances_live_uq" }` when the
    /// team already has a live instance of the challenge.
    pub async fn create_instance(&self, instance: &NewInstance) -> Result<Instance, StoreError> {
        let now = super::now();
        let sql = format!(
            "INSERT INTO instances (team_id, challenge_id, user_id, state, flag, created_at, updated_at) \
             VALUES ($1, $2, $3, 'queued', $4, $5, $5) RETURNING {INSTANCE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(instance.team_id.get())
            .bind(instance.challenge_id.get())
            .bind(instance.user_id.map(UserId::get))
            .bind(&instance.flag)
            .bind(now)
            .fetch_one(&self.pool)
            .await?;
        Ok(Instance::from_row(&row)?)
    }

    /// Reads an instance; `NotFound` when it does not exist.
    pub async fn get_instance(&self, id: InstanceId) -> Result<Instance, StoreError> {
        let sql = format!("SELECT {INSTANCE_COLUMNS} FROM instances WHERE id = $1");
        Ok(Instance::from_row(&sqlx::query(&sql).bind(id.get()).fetch_one(&self.pool).await?)?)
    }

    /// The live instance of a team for a challenge, if any.
    pub async fn find_live_instance(
        &self,
        team_id: TeamId,
        challenge_id: ChallengeId,
    ) -> Result<Option<Instance>, StoreError> {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE team_id = $1 AND challenge_id = $2 AND state IN ({})",
            live_list()
        );
        let row = sqlx::query(&sql).bind(team_id.get()).bind(challenge_id.get()).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(Instance::from_row).transpose()?)
    }

    /// Every live instance (of one team when `team_id` is given), by ascending id.
    pub async fn list_live_instances(&self, team_id: Option<TeamId>) -> Result<Vec<Instance>, StoreError> {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE state IN ({}) AND ($1 IS NULL OR team_id = $1) ORDER BY id",
            live_list()
        );
        let rows = sqlx::query(&sql).bind(team_id.map(TeamId::get)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(Instance::from_row).collect::<Result<_, _>>()?)
    }

    /// Running instances whose `expires_at` is at or before `now`.
    pub async fn list_expired_instances(&self, now: i64) -> Result<Vec<Instance>, StoreError> {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE state = 'running' AND expires_at IS NOT NULL \
             AND expires_at <= $1 ORDER BY id"
        );
        let rows = sqlx::query(&sql).bind(now).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(Instance::from_row).collect::<Result<_, _>>()?)
    }

    /// Instance history, newest first, optionally for one team and/or challenge.
    pub async fn list_instances(
        &self,
        team_id: Option<TeamId>,
        challenge_id: Option<ChallengeId>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Instance>, StoreError> {
        let sql = format!(
            "SELECT {INSTANCE_COLUMNS} FROM instances WHERE ($1 IS NULL OR team_id = $1) \
             AND ($2 IS NULL OR challenge_id = $2) ORDER BY id DESC LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(team_id.map(TeamId::get))
            .bind(challenge_id.map(ChallengeId::get))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Instance::from_row).collect::<Result<_, _>>()?)
    }

    /// How many instances of the challenge the team had that became running (the
    /// `max_deploy_count` budget).
    pub async fn count_started_instances(&self, team_id: TeamId, challenge_id: ChallengeId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT COUNT(*) FROM instances WHERE team_id = $1 AND challenge_id = $2 AND ready_at IS NOT NULL",
        )
        .bind(team_id.get())
        .bind(challenge_id.get())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Moves an instance to `to` if its current state is one of `from`; returns whether it
    /// moved (false: another actor moved it first, or it does not exist). A terminal `to`
    /// stamps `stopped_at`; `reason`, when given, is recorded. Leaving a terminal state for a
    /// live one can fail with `Conflict` on `instances_live_uq`.
    pub async fn transition_instance(
        &self,
        id: InstanceId,
        from: &[InstanceState],
        to: InstanceState,
        reason: Option<&str>,
    ) -> Result<bool, StoreError> {
        if from.is_empty() {
            return Ok(false);
        }
        let sql = format!(
            "UPDATE instances SET state = $2, updated_at = $3, reason = COALESCE($4, reason), \
             stopped_at = CASE WHEN $5 = 1 THEN $3 ELSE stopped_at END \
             WHERE id = $1 AND state IN ({})",
            placeholders(6, from.len())
        );
        let mut query = sqlx::query(&sql)
            .bind(id.get())
            .bind(to.as_str())
            .bind(super::now())
            .bind(reason)
            .bind(i64::from(to.is_terminal()));
        for state in from {
            query = query.bind(state.as_str());
        }
        Ok(query.execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Marks a `queued` or `deploying` instance running at `upstream` until `expires_at`
    /// (stamping `ready_at`); returns whether it moved.
    pub async fn mark_instance_running(
        &self,
        id: InstanceId,
        upstream: &str,
        expires_at: i64,
    ) -> Result<bool, StoreError> {
        let now = super::now();
        let result = sqlx::query(
            "UPDATE instances SET state = 'running', upstream = $2, expires_at = $3, ready_at = $4, updated_at = $4 \
             WHERE id = $1 AND state IN ('queued', 'deploying')",
        )
        .bind(id.get())
        .bind(upstream)
        .bind(expires_at)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records the runtime object name; false when the instance does not exist.
    pub async fn set_instance_runtime_name(&self, id: InstanceId, name: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE instances SET runtime_name = $2, updated_at = $3 WHERE id = $1")
            .bind(id.get())
            .bind(name)
            .bind(super::now())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Changes the expiry (and so the token expiry) of a live instance; false otherwise.
    pub async fn set_instance_expiry(&self, id: InstanceId, expires_at: i64) -> Result<bool, StoreError> {
        let sql = format!(
            "UPDATE instances SET expires_at = $2, updated_at = $3 WHERE id = $1 AND state IN ({})",
            live_list()
        );
        let result = sqlx::query(&sql).bind(id.get()).bind(expires_at).bind(super::now()).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records why an instance is (or will be) stopped; false when it does not exist.
    pub async fn set_instance_reason(&self, id: InstanceId, reason: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE instances SET reason = $2, updated_at = $3 WHERE id = $1")
            .bind(id.get())
            .bind(reason)
            .bind(super::now())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// How many instances are queued ahead of `id` (queued with a smaller id): a queued
    /// player's position in the deployment queue is this plus one.
    pub async fn count_queued_before(&self, id: InstanceId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM instances WHERE state = 'queued' AND id < $1")
            .bind(id.get())
            .fetch_one(&self.pool)
            .await?)
    }
}
