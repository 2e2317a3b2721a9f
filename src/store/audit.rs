//! Append-only logs: the admin audit log (privileged mutations with before/after JSON), the
//! contestant action log, and cheat events (a team submitting another team's dynamic flag).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::{ChallengeId, TeamId, UserId};

/// A privileged mutation to record.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewAuditEntry {
    /// Acting account (`None` for the system or a deleted account).
    pub actor_id: Option<UserId>,
    /// Actor name at the time (kept when the account is deleted).
    pub actor_name: String,
    /// Actor role (`admin`, `jury`, `challenge_writer`, `system`).
    pub actor_role: String,
    /// What was done (`create`, `update`, `delete`, `bulk_update`, …).
    pub action: String,
    /// Kind of object (`challenge`, `user`, `config`, …).
    pub target_type: String,
    /// Object id, when there is one.
    pub target_id: Option<String>,
    /// JSON of the object before (None for creations).
    pub before_json: Option<String>,
    /// JSON of the object after (None for deletions).
    pub after_json: Option<String>,
    /// Client address.
    pub ip: Option<String>,
}

/// A recorded mutation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuditEntry {
    /// Row id.
    pub id: i64,
    /// The entry as recorded.
    pub entry: NewAuditEntry,
    /// Time (Unix seconds).
    pub date: i64,
}

/// Filters for [`Store::list_audit`]; results are newest first.
#[derive(Debug, Clone, Default)]
pub struct AuditQuery {
    /// Acting account.
    pub actor_id: Option<UserId>,
    /// Kind of object concerned.
    pub target_type: Option<String>,
    /// Object id, when there is one.
    pub target_id: Option<String>,
    /// Only entries with a smaller id (keyset pagination).
    pub before_id: Option<i64>,
    /// Maximum number of rows.
    pub limit: i64,
}

/// A contestant action to record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewActionLog {
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// The team (`None`: none, or users mode).
    pub team_id: Option<TeamId>,
    /// The challenge.
    pub challenge_id: Option<ChallengeId>,
    /// 1 access challenge, 2 start, 3 correct flag, 4 incorrect flag, 5 unlock hint, 7 stop.
    pub action_type: i64,
    /// Free text, up to 500 characters (checked by the caller).
    pub action_detail: String,
    /// Challenge category at the time.
    pub topic_name: Option<String>,
}

/// A recorded contestant action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ActionLog {
    /// Row id.
    pub id: i64,
    /// The entry as recorded.
    pub log: NewActionLog,
    /// When it happened (Unix seconds).
    pub date: i64,
}

/// A flag of one team's instance submitted by another team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCheatEvent {
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// The team that submitted the flag.
    pub submitting_team_id: Option<TeamId>,
    /// The user who submitted the flag.
    pub submitting_user_id: Option<UserId>,
    /// The team whose instance the flag belongs to.
    pub owner_team_id: Option<TeamId>,
    /// The submitted text.
    pub provided: String,
    /// Client address.
    pub ip: Option<String>,
}

/// A recorded cheat event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheatEvent {
    /// Row id.
    pub id: i64,
    /// The event as recorded.
    pub event: NewCheatEvent,
    /// When it happened (Unix seconds).
    pub date: i64,
}

const AUDIT_COLUMNS: &str =
    "id, actor_id, actor_name, actor_role, action, target_type, target_id, before_json, after_json, ip, date";

impl AuditEntry {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(AuditEntry {
            id: row.try_get("id")?,
            entry: NewAuditEntry {
                actor_id: row.try_get::<Option<i64>, _>("actor_id")?.map(UserId),
                actor_name: row.try_get("actor_name")?,
                actor_role: row.try_get("actor_role")?,
                action: row.try_get("action")?,
                target_type: row.try_get("target_type")?,
                target_id: row.try_get("target_id")?,
                before_json: row.try_get("before_json")?,
                after_json: row.try_get("after_json")?,
                ip: row.try_get("ip")?,
            },
            date: row.try_get("date")?,
        })
    }
}

fn optional_id<T>(row: &AnyRow, column: &str, wrap: fn(i64) -> T) -> Result<Option<T>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(wrap))
}

impl Store {
    /// Appends an audit entry and returns it.
    pub async fn append_audit(&self, entry: &NewAuditEntry) -> Result<AuditEntry, StoreError> {
        let sql = format!(
            "INSERT INTO audit_log (actor_id, actor_name, actor_role, action, target_type, target_id, before_json, \
             after_json, ip, date) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) RETURNING {AUDIT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(entry.actor_id.map(UserId::get))
            .bind(&entry.actor_name)
            .bind(&entry.actor_role)
            .bind(&entry.action)
            .bind(&entry.target_type)
            .bind(&entry.target_id)
            .bind(&entry.before_json)
            .bind(&entry.after_json)
            .bind(&entry.ip)
            .bind(super::now())
            .fetch_one(&self.pool)
            .await?;
        Ok(AuditEntry::from_row(&row)?)
    }

    /// Audit entries matching `query`, newest first.
    pub async fn list_audit(&self, query: &AuditQuery) -> Result<Vec<AuditEntry>, StoreError> {
        let sql = format!(
            "SELECT {AUDIT_COLUMNS} FROM audit_log WHERE ($1 IS NULL OR actor_id = $1) \
             AND ($2 IS NULL OR target_type = $2) AND ($3 IS NULL OR target_id = $3) \
             AND ($4 IS NULL OR id < $4) ORDER BY id DESC LIMIT $5"
        );
        let rows = sqlx::query(&sql)
            .bind(query.actor_id.map(UserId::get))
            .bind(&query.target_type)
            .bind(&query.target_id)
            .bind(query.before_id)
            .bind(query.limit)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(AuditEntry::from_row).collect::<Result<_, _>>()?)
    }

    /// Appends a contestant action log entry; returns its id.
    pub async fn append_action_log(&self, log: &NewActionLog) -> Result<i64, StoreError> {
        insert_action_log(&self.pool, log).await
    }

    /// Action logs of the users currently in `team_id` (or of one user), newest first.
    pub async fn list_action_logs(
        &self,
        team_id: Option<TeamId>,
        user_id: Option<UserId>,
        limit: i64,
    ) -> Result<Vec<ActionLog>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, user_id, team_id, challenge_id, action_type, action_detail, topic_name, date FROM action_logs \
             WHERE ($1 IS NULL OR user_id IN (SELECT id FROM users WHERE team_id = $1)) \
             AND ($2 IS NULL OR user_id = $2) ORDER BY date DESC, id DESC LIMIT $3",
        )
        .bind(team_id.map(TeamId::get))
        .bind(user_id.map(UserId::get))
        .bind(limit)
        .fetch_all(&self.pool)
        .await?;
        let mut logs = Vec::with_capacity(rows.len());
        for row in &rows {
            logs.push(ActionLog {
                id: row.try_get("id")?,
                log: NewActionLog {
                    user_id: optional_id(row, "user_id", UserId)?,
                    team_id: optional_id(row, "team_id", TeamId)?,
                    challenge_id: optional_id(row, "challenge_id", ChallengeId)?,
                    action_type: row.try_get("action_type")?,
                    action_detail: row.try_get("action_detail")?,
                    topic_name: row.try_get("topic_name")?,
                },
                date: row.try_get("date")?,
            });
        }
        Ok(logs)
    }

    /// Records a cheat event; returns its id.
    pub async fn record_cheat_event(&self, event: &NewCheatEvent) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO cheat_events (challenge_id, submitting_team_id, submitting_user_id, owner_team_id, provided, ip, date) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(event.challenge_id.get())
        .bind(event.submitting_team_id.map(TeamId::get))
        .bind(event.submitting_user_id.map(UserId::get))
        .bind(event.owner_team_id.map(TeamId::get))
        .bind(&event.provided)
        .bind(&event.ip)
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Cheat events, newest first, optionally for one challenge.
    pub async fn list_cheat_events(&self, challenge_id: Option<ChallengeId>) -> Result<Vec<CheatEvent>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, challenge_id, submitting_team_id, submitting_user_id, owner_team_id, provided, ip, date \
             FROM cheat_events WHERE ($1 IS NULL OR challenge_id = $1) ORDER BY id DESC",
        )
        .bind(challenge_id.map(ChallengeId::get))
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::with_capacity(rows.len());
        for row in &rows {
            events.push(CheatEvent {
                id: row.try_get("id")?,
                event: NewCheatEvent {
                    challenge_id: ChallengeId(row.try_get("challenge_id")?),
                    submitting_team_id: optional_id(row, "submitting_team_id", TeamId)?,
                    submitting_user_id: optional_id(row, "submitting_user_id", UserId)?,
                    owner_team_id: optional_id(row, "owner_team_id", TeamId)?,
                    provided: row.try_get("provided")?,
                    ip: row.try_get("ip")?,
                },
                date: row.try_get("date")?,
            });
        }
        Ok(events)
    }
}

/// Inserts an action log entry through `executor` (the pool, or an open transaction so that the
/// entry commits with what it describes).
pub(crate) async fn insert_action_log<'e, E>(executor: E, log: &NewActionLog) -> Result<i64, StoreError>
where
    E: sqlx::Executor<'e, Database = sqlx::Any>,
{
    Ok(sqlx::query_scalar(
        "INSERT INTO action_logs (user_id, team_id, challenge_id, action_type, action_detail, topic_name, date) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(log.user_id.map(UserId::get))
    .bind(log.team_id.map(TeamId::get))
    .bind(log.challenge_id.map(ChallengeId::get))
    .bind(log.action_type)
    .bind(&log.action_detail)
    .bind(&log.topic_name)
    .bind(super::now())
    .fetch_one(executor)
    .await?)
}
