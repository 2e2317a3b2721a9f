//! The raw rows the scoreboard is computed from, read in a handful of queries.
//!
//! The contestant API ranks accounts, applies the freeze (including the value a decaying
//! challenge had at the freeze) and builds graph data in memory from this snapshot, then
//! caches the result; at the sizes of an event (thousands of teams, tens of thousands of
//! solves) one snapshot is a few megabytes at most and is read at most once per cache period.

use sqlx::Row;

use super::sql::bool_of;
use super::{Store, StoreError};
use crate::domain::{BracketId, ChallengeId, TeamId, UserId};

/// A challenge as scoring sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoredChallenge {
    /// The challenge.
    pub id: ChallengeId,
    /// Display name.
    pub name: String,
    /// Category.
    pub category: String,
    /// `visible`, `hidden` or `locked`.
    pub state: String,
    /// Current value.
    pub value: i64,
    /// Decay parameters (CTFd dynamic scoring); `function` is `static` when it does not decay.
    pub initial: Option<i64>,
    /// Lowest decayed value.
    pub minimum: Option<i64>,
    /// Decay parameter.
    pub decay: Option<i64>,
    /// `static`, `linear` or `logarithmic`.
    pub function: String,
}

/// One solve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SolveRow {
    /// Solve (= correct submission) id.
    pub id: i64,
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// The solving user.
    pub user_id: UserId,
    /// The solving team (`None` in users mode).
    pub team_id: Option<TeamId>,
    /// Unix seconds.
    pub date: i64,
}

/// One award (hint charges are negative awards).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AwardRow {
    /// Award id.
    pub id: i64,
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// The team concerned.
    pub team_id: Option<TeamId>,
    /// Points.
    pub value: i64,
    /// Unix seconds.
    pub date: i64,
}

/// A user as the scoreboard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoredUser {
    /// The user.
    pub id: UserId,
    /// Login name.
    pub name: String,
    /// Contact e-mail address.
    pub email: Option<String>,
    /// Account role (`user` for players).
    pub role: String,
    /// Current team.
    pub team_id: Option<TeamId>,
    /// Bracket (users mode).
    pub bracket_id: Option<BracketId>,
    /// Hidden from the scoreboard.
    pub hidden: bool,
    /// Banned.
    pub banned: bool,
}

/// A team as the scoreboard sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoredTeam {
    /// The team.
    pub id: TeamId,
    /// Team name.
    pub name: String,
    /// Bracket.
    pub bracket_id: Option<BracketId>,
    /// Hidden from the scoreboard.
    pub hidden: bool,
    /// Banned.
    pub banned: bool,
}

/// Everything the standings are computed from.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScoreData {
    /// Every challenge.
    pub challenges: Vec<ScoredChallenge>,
    /// Every solve, oldest first.
    pub solves: Vec<SolveRow>,
    /// Every award, oldest first.
    pub awards: Vec<AwardRow>,
    /// Every user.
    pub users: Vec<ScoredUser>,
    /// Every team.
    pub teams: Vec<ScoredTeam>,
    /// Bracket names by id.
    pub brackets: Vec<(BracketId, String)>,
}

fn optional<T>(row: &sqlx::any::AnyRow, column: &str, wrap: fn(i64) -> T) -> Result<Option<T>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(wrap))
}

impl Store {
    /// Reads the scoring snapshot (one statement per table, in one read transaction so that
    /// solves and challenges agree).
    pub async fn score_data(&self) -> Result<ScoreData, StoreError> {
        let mut transaction = self.pool.begin().await?;
        let mut data = ScoreData::default();
        for row in sqlx::query(
            "SELECT id, name, category, state, value, initial, minimum, decay, function FROM challenges ORDER BY id",
        )
        .fetch_all(&mut *transaction)
        .await?
        {
            data.challenges.push(ScoredChallenge {
                id: ChallengeId(row.try_get("id")?),
                name: row.try_get("name")?,
                category: row.try_get("category")?,
                state: row.try_get("state")?,
                value: row.try_get("value")?,
                initial: row.try_get("initial")?,
                minimum: row.try_get("minimum")?,
                decay: row.try_get("decay")?,
                function: row.try_get("function")?,
            });
        }
        for row in sqlx::query("SELECT id, challenge_id, user_id, team_id, date FROM solves ORDER BY date, id")
            .fetch_all(&mut *transaction)
            .await?
        {
            data.solves.push(SolveRow {
                id: row.try_get("id")?,
                challenge_id: ChallengeId(row.try_get("challenge_id")?),
                user_id: UserId(row.try_get("user_id")?),
                team_id: optional(&row, "team_id", TeamId)?,
                date: row.try_get("date")?,
            });
        }
        for row in sqlx::query("SELECT id, user_id, team_id, value, date FROM awards ORDER BY date, id")
            .fetch_all(&mut *transaction)
            .await?
        {
            data.awards.push(AwardRow {
                id: row.try_get("id")?,
                user_id: optional(&row, "user_id", UserId)?,
                team_id: optional(&row, "team_id", TeamId)?,
                value: row.try_get("value")?,
                date: row.try_get("date")?,
            });
        }
        for row in
            sqlx::query("SELECT id, name, email, type, team_id, bracket_id, hidden, banned FROM users ORDER BY id")
                .fetch_all(&mut *transaction)
                .await?
        {
            data.users.push(ScoredUser {
                id: UserId(row.try_get("id")?),
                name: row.try_get("name")?,
                email: row.try_get("email")?,
                role: row.try_get("type")?,
                team_id: optional(&row, "team_id", TeamId)?,
                bracket_id: optional(&row, "bracket_id", BracketId)?,
                hidden: bool_of(&row, "hidden")?,
                banned: bool_of(&row, "banned")?,
            });
        }
        for row in sqlx::query("SELECT id, name, bracket_id, hidden, banned FROM teams ORDER BY id")
            .fetch_all(&mut *transaction)
            .await?
        {
            data.teams.push(ScoredTeam {
                id: TeamId(row.try_get("id")?),
                name: row.try_get("name")?,
                bracket_id: optional(&row, "bracket_id", BracketId)?,
                hidden: bool_of(&row, "hidden")?,
                banned: bool_of(&row, "banned")?,
            });
        }
        for row in sqlx::query("SELECT id, name FROM brackets ORDER BY id").fetch_all(&mut *transaction).await? {
            data.brackets.push((BracketId(row.try_get("id")?), row.try_get("name")?));
        }
        transaction.commit().await?;
        Ok(data)
    }
}
