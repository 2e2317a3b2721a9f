//! Results as organisers see them: filtered submission lists, submissions written or re-judged
//! by an admin, standings, and the counts behind the statistics endpoints.
//!
//! Re-judging keeps the solve invariants of `submissions.rs`: marking a submission correct
//! inserts a new correct submission and its solve in one transaction (the unique solve indexes
//! refuse a second solve of the account) and sets the original aside as `discard`; marking it
//! incorrect deletes its solve. Every change recomputes a decaying challenge's value in the
//! same transaction, with the challenge row locked.

use std::collections::HashMap;

use sqlx::Row;

use super::scoring::recompute_value_in;
use super::submissions::{SUBMISSION_COLUMNS, insert_solve_in, insert_submission_in};
use super::{Account, Store, StoreError, Submission, SubmissionKind};
use crate::domain::{ChallengeId, SubmissionId, TeamId, UserId};

/// Filters of the admin submission list; `None` matches everything.
#[derive(Debug, Clone, Default)]
pub struct SubmissionFilter {
    /// The challenge.
    pub challenge_id: Option<ChallengeId>,
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// The team (`None`: none, or users mode).
    pub team_id: Option<TeamId>,
    /// Stored type name.
    pub kind: Option<SubmissionKind>,
    /// Client address (exact).
    pub ip: Option<String>,
    /// Submitted text (exact).
    pub provided: Option<String>,
    /// Submitted text contains (case-sensitive substring).
    pub provided_like: Option<String>,
}

/// The result of re-judging a submission as correct.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MarkOutcome {
    /// The new solve (a correct submission).
    Solved(Submission),
    /// The account had already solved the challenge; nothing changed.
    AlreadySolved,
}

/// One row of the standings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Standing {
    /// Team id in teams mode, user id in users mode.
    pub account_id: i64,
    /// Display name.
    pub name: String,
    /// Id at the OAuth provider.
    pub oauth_id: Option<i64>,
    /// Scoreboard bracket.
    pub bracket_id: Option<i64>,
    /// Solve values plus awards.
    pub score: i64,
    /// Time of the last scoring event (ties go to whoever got there first).
    pub last: i64,
}

/// A scoring event of an account: a solve (`challenge_id` set) or an award.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScoreEvent {
    /// The challenge solved; `None` for an award.
    pub challenge_id: Option<ChallengeId>,
    /// Who scored.
    pub user_id: Option<UserId>,
    /// Their team.
    pub team_id: Option<TeamId>,
    /// Points.
    pub value: i64,
    /// Time (Unix seconds).
    pub date: i64,
}

const FILTER_SQL: &str = "($1 IS NULL OR challenge_id = $1) AND ($2 IS NULL OR user_id = $2) AND \
     ($3 IS NULL OR team_id = $3) AND ($4 IS NULL OR type = $4) AND ($5 IS NULL OR ip = $5) AND \
     ($6 IS NULL OR provided = $6) AND ($7 IS NULL OR provided LIKE $7)";

type AnyQuery<'q> = sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments<'q>>;

fn bind_filter<'q>(query: AnyQuery<'q>, filter: &'q SubmissionFilter) -> AnyQuery<'q> {
    query
        .bind(filter.challenge_id.map(ChallengeId::get))
        .bind(filter.user_id.map(UserId::get))
        .bind(filter.team_id.map(TeamId::get))
        .bind(filter.kind.map(SubmissionKind::as_str))
        .bind(filter.ip.clone())
        .bind(filter.provided.clone())
        .bind(filter.provided_like.as_ref().map(|text| format!("%{}%", text.replace(['%', '_'], ""))))
}

impl Store {
    /// Submissions matching `filter`, oldest first, `limit` rows after `offset`.
    pub async fn list_submissions_filtered(
        &self,
        filter: &SubmissionFilter,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Submission>, StoreError> {
        let sql =
            format!("SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE {FILTER_SQL} ORDER BY id LIMIT $8 OFFSET $9");
        let rows = bind_filter(sqlx::query(&sql), filter).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(Submission::from_row).collect::<Result<_, _>>()?)
    }

    /// Counts submissions matching `filter`.
    pub async fn count_submissions_filtered(&self, filter: &SubmissionFilter) -> Result<i64, StoreError> {
        let sql = format!("SELECT COUNT(*) AS n FROM submissions WHERE {FILTER_SQL}");
        let row = bind_filter(sqlx::query(&sql), filter).fetch_one(&self.pool).await?;
        Ok(row.try_get("n")?)
    }

    /// Writes a submission as an admin gives it (any type, any date). A `correct` one also
    /// records the solve: `Ok(None)` when the account had solved the challenge already.
    pub async fn create_submission_as_admin(
        &self,
        challenge_id: ChallengeId,
        account: Account,
        kind: SubmissionKind,
        provided: &str,
        ip: Option<&str>,
        date: i64,
    ) -> Result<Option<Submission>, StoreError> {
        let mut transaction = self.begin_write().await?;
        if !self.lock_row(&mut transaction, "challenges", challenge_id.get()).await? {
            return Err(StoreError::NotFound);
        }
        let id = insert_submission_in(&mut transaction, challenge_id, account, kind, provided, ip, date).await?;
        if kind == SubmissionKind::Correct {
            if !insert_solve_in(&mut transaction, id, challenge_id, account, date).await? {
                transaction.rollback().await?;
                return Ok(None);
            }
            recompute_value_in(&mut transaction, challenge_id).await?;
        }
        transaction.commit().await?;
        Ok(Some(self.get_submission(SubmissionId(id)).await?))
    }

    /// Re-judges a submission as correct (see the module docs); `NotFound` when it does not
    /// exist.
    pub async fn mark_submission_correct(&self, id: SubmissionId) -> Result<MarkOutcome, StoreError> {
        let original = self.get_submission(id).await?;
        let mut transaction = self.begin_write().await?;
        self.lock_row(&mut transaction, "challenges", original.challenge_id.get()).await?;
        let new_id = insert_submission_in(
            &mut transaction,
            original.challenge_id,
            original.account,
            SubmissionKind::Correct,
            &original.provided,
            original.ip.as_deref(),
            original.date,
        )
        .await?;
        if !insert_solve_in(&mut transaction, new_id, original.challenge_id, original.account, original.date).await? {
            transaction.rollback().await?;
            return Ok(MarkOutcome::AlreadySolved);
        }
        let discarded = sqlx::query("UPDATE submissions SET type = 'discard' WHERE id = $1")
            .bind(id.get())
            .execute(&mut *transaction)
            .await?;
        if discarded.rows_affected() == 0 {
            transaction.rollback().await?;
            return Err(StoreError::NotFound);
        }
        recompute_value_in(&mut transaction, original.challenge_id).await?;
        transaction.commit().await?;
        Ok(MarkOutcome::Solved(self.get_submission(SubmissionId(new_id)).await?))
    }

    /// Re-judges a submission as incorrect: deletes its solve, if any, and sets its type.
    /// `NotFound` when it does not exist.
    pub async fn mark_submission_incorrect(&self, id: SubmissionId) -> Result<Submission, StoreError> {
        let original = self.get_submission(id).await?;
        let mut transaction = self.begin_write().await?;
        self.lock_row(&mut transaction, "challenges", original.challenge_id.get()).await?;
        sqlx::query("DELETE FROM solves WHERE id = $1").bind(id.get()).execute(&mut *transaction).await?;
        let updated = sqlx::query("UPDATE submissions SET type = 'incorrect' WHERE id = $1")
            .bind(id.get())
            .execute(&mut *transaction)
            .await?;
        if updated.rows_affected() == 0 {
            transaction.rollback().await?;
            return Err(StoreError::NotFound);
        }
        recompute_value_in(&mut transaction, original.challenge_id).await?;
        transaction.commit().await?;
        self.get_submission(id).await
    }

    /// Deletes a submission with its solve and recomputes the challenge's value; false when it
    /// did not exist.
    pub async fn delete_submission_rescored(&self, id: SubmissionId) -> Result<bool, StoreError> {
        let original = match self.get_submission(id).await {
            Ok(submission) => submission,
            Err(StoreError::NotFound) => return Ok(false),
            Err(error) => return Err(error),
        };
        let mut transaction = self.begin_write().await?;
        self.lock_row(&mut transaction, "challenges", original.challenge_id.get()).await?;
        let deleted =
            sqlx::query("DELETE FROM submissions WHERE id = $1").bind(id.get()).execute(&mut *transaction).await?;
        recompute_value_in(&mut transaction, original.challenge_id).await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Scoring events (solves at the challenge's current value, then awards), oldest first,
    /// up to `until` (Unix seconds, inclusive) when given.
    pub async fn score_events(&self, until: Option<i64>) -> Result<Vec<ScoreEvent>, StoreError> {
        let solves = sqlx::query(
            "SELECT solves.challenge_id, solves.user_id, solves.team_id, solves.date, challenges.value FROM solves \
             JOIN challenges ON challenges.id = solves.challenge_id WHERE ($1 IS NULL OR solves.date <= $1) \
             ORDER BY solves.date, solves.id",
        )
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        let awards = sqlx::query(
            "SELECT user_id, team_id, date, value FROM awards WHERE ($1 IS NULL OR date <= $1) ORDER BY date, id",
        )
        .bind(until)
        .fetch_all(&self.pool)
        .await?;
        let mut events = Vec::with_capacity(solves.len() + awards.len());
        for row in &solves {
            events.push(ScoreEvent {
                challenge_id: Some(ChallengeId(row.try_get("challenge_id")?)),
                user_id: Some(UserId(row.try_get("user_id")?)),
                team_id: row.try_get::<Option<i64>, _>("team_id")?.map(TeamId),
                value: row.try_get("value")?,
                date: row.try_get("date")?,
            });
        }
        for row in &awards {
            events.push(ScoreEvent {
                challenge_id: None,
                user_id: row.try_get::<Option<i64>, _>("user_id")?.map(UserId),
                team_id: row.try_get::<Option<i64>, _>("team_id")?.map(TeamId),
                value: row.try_get("value")?,
                date: row.try_get("date")?,
            });
        }
        events.sort_by_key(|event| event.date);
        Ok(events)
    }

    /// The standings of visible accounts (teams, or players in users mode), best first; ties
    /// go to the account that reached its score first, then to the lower id.
    pub async fn standings(&self, teams_mode: bool, until: Option<i64>) -> Result<Vec<Standing>, StoreError> {
        let accounts = if teams_mode {
            sqlx::query("SELECT id, name, oauth_id, bracket_id FROM teams WHERE hidden = 0 AND banned = 0")
                .fetch_all(&self.pool)
                .await?
        } else {
            sqlx::query(
                "SELECT id, name, oauth_id, bracket_id FROM users WHERE hidden = 0 AND banned = 0 AND type = 'user'",
            )
            .fetch_all(&self.pool)
            .await?
        };
        let mut totals: HashMap<i64, (i64, i64)> = HashMap::new();
        for event in self.score_events(until).await? {
            let owner = if teams_mode { event.team_id.map(TeamId::get) } else { event.user_id.map(UserId::get) };
            if let Some(owner) = owner {
                let entry = totals.entry(owner).or_insert((0, 0));
                entry.0 += event.value;
                entry.1 = entry.1.max(event.date);
            }
        }
        let mut standings = Vec::with_capacity(accounts.len());
        for row in &accounts {
            let id: i64 = row.try_get("id")?;
            let (score, last) = totals.get(&id).copied().unwrap_or((0, 0));
            standings.push(Standing {
                account_id: id,
                name: row.try_get("name")?,
                oauth_id: row.try_get("oauth_id")?,
                bracket_id: row.try_get("bracket_id")?,
                score,
                last,
            });
        }
        standings.sort_by(|a, b| b.score.cmp(&a.score).then(a.last.cmp(&b.last)).then(a.account_id.cmp(&b.account_id)));
        Ok(standings)
    }

    /// `(value as text, count)` grouped by a column of a table. `table` and `column` must be
    /// trusted identifiers (the caller checks them against a fixed list).
    pub async fn group_count(
        &self,
        table: &'static str,
        column: &'static str,
        condition: &'static str,
    ) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let sql = format!(
            "SELECT CAST({column} AS TEXT) AS k, COUNT(*) AS n FROM {table} WHERE {condition} GROUP BY {column} ORDER BY 1"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok((row.try_get("k")?, row.try_get("n")?))).collect()
    }

    /// `(value as text, sum of target)` grouped by a column of `challenges`; trusted names only.
    pub async fn challenge_group_sum(
        &self,
        column: &'static str,
        target: &'static str,
    ) -> Result<Vec<(Option<String>, i64)>, StoreError> {
        let sql = format!(
            "SELECT CAST({column} AS TEXT) AS k, CAST(COALESCE(SUM({target}), 0) AS BIGINT) AS n FROM challenges \
             GROUP BY {column} ORDER BY 1"
        );
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok((row.try_get("k")?, row.try_get("n")?))).collect()
    }

    /// The distinct `(account id, challenge)` pairs with at least one submission of any type;
    /// the account is the team in teams mode (submissions without a team are left out), the
    /// user otherwise.
    pub async fn submitted_pairs(&self, teams_mode: bool) -> Result<Vec<(i64, ChallengeId)>, StoreError> {
        let sql = if teams_mode {
            "SELECT DISTINCT team_id AS account_id, challenge_id FROM submissions WHERE team_id IS NOT NULL"
        } else {
            "SELECT DISTINCT user_id AS account_id, challenge_id FROM submissions"
        };
        let rows = sqlx::query(sql).fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok((row.try_get("account_id")?, ChallengeId(row.try_get("challenge_id")?)))).collect()
    }

    /// Solves per challenge by visible accounts (neither the user nor its team hidden or banned).
    pub async fn solve_counts(&self) -> Result<HashMap<ChallengeId, i64>, StoreError> {
        let rows = sqlx::query(
            "SELECT solves.challenge_id, COUNT(*) AS n FROM solves JOIN users ON users.id = solves.user_id \
             LEFT JOIN teams ON teams.id = solves.team_id WHERE users.hidden = 0 AND users.banned = 0 \
             AND (teams.id IS NULL OR (teams.hidden = 0 AND teams.banned = 0)) GROUP BY solves.challenge_id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter().map(|row| Ok((ChallengeId(row.try_get("challenge_id")?), row.try_get("n")?))).collect()
    }
}
