//! Flag submissions and solves.
//!
//! A solve is the row in `solves` that shares the id of its correct submission. Uniqueness is
//! per *account*: the team when the submission carries a team (teams mode), the user when it
//! does not (users mode); the partial unique indexes `solves_team_challenge_uq` and
//! `solves_user_challenge_uq` enforce it. [`Store::record_solve`] inserts the submission and
//! the solve in one transaction with `ON CONFLICT DO NOTHING`: whichever of N concurrent calls
//! commits first creates the solve, every other call rolls back (leaving no submission row) and
//! reports `AlreadySolved`. For a decaying challenge the challenge row is locked first so the
//! solve count and the new value are computed serially per challenge.

use std::str::FromStr;

use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::audit::insert_action_log;
use super::scoring::recompute_value_in;
use super::{NewActionLog, Store, StoreError};
use crate::domain::{ChallengeId, SubmissionId, TeamId, UserId};

/// Who acts: the user, and the team it plays for (`None` in users mode). Solves and unlocks
/// are unique per team when `team_id` is set, per user otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Account {
    /// The acting user.
    pub user_id: UserId,
    /// The user's team in teams mode.
    pub team_id: Option<TeamId>,
}

/// The verdict stored with a submission.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SubmissionKind {
    /// The flag matched (a solve has the same id).
    Correct,
    /// The flag did not match.
    Incorrect,
    /// Part of an `all`-logic challenge.
    Partial,
    /// Set aside by an organizer.
    Discard,
    /// Refused by a rate limit.
    Ratelimited,
}

impl SubmissionKind {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            SubmissionKind::Correct => "correct",
            SubmissionKind::Incorrect => "incorrect",
            SubmissionKind::Partial => "partial",
            SubmissionKind::Discard => "discard",
            SubmissionKind::Ratelimited => "ratelimited",
        }
    }
}

impl FromStr for SubmissionKind {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "correct" => Ok(SubmissionKind::Correct),
            "incorrect" => Ok(SubmissionKind::Incorrect),
            "partial" => Ok(SubmissionKind::Partial),
            "discard" => Ok(SubmissionKind::Discard),
            "ratelimited" => Ok(SubmissionKind::Ratelimited),
            other => Err(StoreError::Other(format!("unknown submission type {other:?}"))),
        }
    }
}

/// A stored submission.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Submission {
    /// Row id.
    pub id: SubmissionId,
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// Who submitted or unlocked.
    pub account: Account,
    /// Client address.
    pub ip: Option<String>,
    /// The submitted text (trimmed by the caller).
    pub provided: String,
    /// Type name as stored.
    pub kind: SubmissionKind,
    /// Submission time (Unix seconds).
    pub date: i64,
}

impl Submission {
    /// Maps a row selected with [`SUBMISSION_COLUMNS`] (shared with `admin_results`).
    pub(super) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let kind: String = row.try_get("type")?;
        Ok(Submission {
            id: SubmissionId(row.try_get("id")?),
            challenge_id: ChallengeId(row.try_get("challenge_id")?),
            account: Account {
                user_id: UserId(row.try_get("user_id")?),
                team_id: row.try_get::<Option<i64>, _>("team_id")?.map(TeamId),
            },
            ip: row.try_get("ip")?,
            provided: row.try_get("provided")?,
            kind: kind.parse().map_err(|error| sqlx::Error::Decode(Box::new(error)))?,
            date: row.try_get("date")?,
        })
    }
}

/// The result of [`Store::record_solve`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SolveOutcome {
    /// This call created the solve.
    Solved {
        /// The correct submission (and solve) id.
        submission_id: SubmissionId,
        /// The challenge value after this solve (recomputed for decaying challenges).
        value: i64,
    },
    /// The account had already solved the challenge; nothing was written.
    AlreadySolved,
}

/// The columns [`Submission::from_row`] reads.
pub(super) const SUBMISSION_COLUMNS: &str = "id, challenge_id, user_id, team_id, ip, provided, type, date";

/// The insert of one submission row, bound, returning its id (run on a transaction or the pool).
fn insert_submission<'q>(
    challenge_id: ChallengeId,
    account: Account,
    kind: SubmissionKind,
    provided: &'q str,
    ip: Option<&'q str>,
    date: i64,
) -> sqlx::query::QueryScalar<'q, Any, i64, sqlx::any::AnyArguments<'q>> {
    sqlx::query_scalar(
        "INSERT INTO submissions (challenge_id, user_id, team_id, ip, provided, type, date) \
         VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
    )
    .bind(challenge_id.get())
    .bind(account.user_id.get())
    .bind(account.team_id.map(TeamId::get))
    .bind(ip)
    .bind(provided)
    .bind(kind.as_str())
    .bind(date)
}

/// Inserts one submission row in `transaction`; returns its id.
pub(super) async fn insert_submission_in(
    transaction: &mut Transaction<'static, Any>,
    challenge_id: ChallengeId,
    account: Account,
    kind: SubmissionKind,
    provided: &str,
    ip: Option<&str>,
    date: i64,
) -> Result<i64, StoreError> {
    Ok(insert_submission(challenge_id, account, kind, provided, ip, date).fetch_one(&mut **transaction).await?)
}

/// Inserts the solve of the correct submission `submission_id`; false (nothing inserted) when
/// the account had already solved the challenge (the unique solve indexes, see the module docs).
pub(super) async fn insert_solve_in(
    transaction: &mut Transaction<'static, Any>,
    submission_id: i64,
    challenge_id: ChallengeId,
    account: Account,
    date: i64,
) -> Result<bool, StoreError> {
    let solved: Option<i64> = sqlx::query_scalar(
        "INSERT INTO solves (id, challenge_id, user_id, team_id, date) VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT DO NOTHING RETURNING id",
    )
    .bind(submission_id)
    .bind(challenge_id.get())
    .bind(account.user_id.get())
    .bind(account.team_id.map(TeamId::get))
    .bind(date)
    .fetch_optional(&mut **transaction)
    .await?;
    Ok(solved.is_some())
}

/// `AND <account condition>` on a table with `user_id` and `team_id`, parameters `$a`, `$b`.
pub(crate) fn account_condition(table: &str, user_param: usize, team_param: usize) -> String {
    format!(
        "(({table}.team_id IS NOT NULL AND {table}.team_id = ${team_param}) \
         OR ({table}.team_id IS NULL AND ${team_param} IS NULL AND {table}.user_id = ${user_param}))"
    )
}

impl Store {
    /// Records a correct flag: inserts the submission and the solve in one transaction.
    /// Exactly one of any number of concurrent calls for the same account and challenge
    /// returns `Solved`; the others return `AlreadySolved` and leave nothing behind.
    /// `NotFound` when the challenge does not exist.
    pub async fn record_solve(
        &self,
        challenge_id: ChallengeId,
        account: Account,
        provided: &str,
        ip: Option<&str>,
    ) -> Result<SolveOutcome, StoreError> {
        self.record_solve_with_log(challenge_id, account, provided, ip, None).await
    }

    /// [`Store::record_solve`], also appending `log` in the same transaction when the solve
    /// is created (one commit for both).
    pub async fn record_solve_with_log(
        &self,
        challenge_id: ChallengeId,
        account: Account,
        provided: &str,
        ip: Option<&str>,
        log: Option<&NewActionLog>,
    ) -> Result<SolveOutcome, StoreError> {
        let now = super::now();
        let mut transaction = self.begin_write().await?;
        let decays: Option<i64> = sqlx::query_scalar(
            "SELECT CASE WHEN initial IS NOT NULL AND function IN ('linear', 'logarithmic') THEN 1 ELSE 0 END \
             FROM challenges WHERE id = $1",
        )
        .bind(challenge_id.get())
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(decays) = decays else {
            return Err(StoreError::NotFound);
        };
        if decays == 1 && !self.lock_row(&mut transaction, "challenges", challenge_id.get()).await? {
            return Err(StoreError::NotFound);
        }
        let submission_id =
            insert_submission_in(&mut transaction, challenge_id, account, SubmissionKind::Correct, provided, ip, now)
                .await?;
        if !insert_solve_in(&mut transaction, submission_id, challenge_id, account, now).await? {
            transaction.rollback().await?;
            return Ok(SolveOutcome::AlreadySolved);
        }
        let value = recompute_value_in(&mut transaction, challenge_id).await?;
        if let Some(log) = log {
            insert_action_log(&mut *transaction, log).await?;
        }
        transaction.commit().await?;
        Ok(SolveOutcome::Solved { submission_id: SubmissionId(submission_id), value })
    }

    /// Records a submission that is not a solve (incorrect, rate limited, …). A `Correct` kind
    /// is refused: use [`Store::record_solve`].
    pub async fn record_submission(
        &self,
        challenge_id: ChallengeId,
        account: Account,
        kind: SubmissionKind,
        provided: &str,
        ip: Option<&str>,
    ) -> Result<SubmissionId, StoreError> {
        self.record_submission_with_log(challenge_id, account, kind, provided, ip, None).await
    }

    /// [`Store::record_submission`], also appending `log` in the same transaction (one commit
    /// for both instead of two: the synchronous write is what a wrong flag costs most).
    pub async fn record_submission_with_log(
        &self,
        challenge_id: ChallengeId,
        account: Account,
        kind: SubmissionKind,
        provided: &str,
        ip: Option<&str>,
        log: Option<&NewActionLog>,
    ) -> Result<SubmissionId, StoreError> {
        if kind == SubmissionKind::Correct {
            return Err(StoreError::Other("a correct submission is recorded with record_solve".to_owned()));
        }
        let insert = insert_submission(challenge_id, account, kind, provided, ip, super::now());
        let Some(log) = log else {
            let id: i64 = insert.fetch_one(&self.pool).await?;
            return Ok(SubmissionId(id));
        };
        let mut transaction = self.begin_write().await?;
        let id: i64 = insert.fetch_one(&mut *transaction).await?;
        insert_action_log(&mut *transaction, log).await?;
        transaction.commit().await?;
        Ok(SubmissionId(id))
    }

    /// True when the account has solved the challenge.
    pub async fn has_solved(&self, challenge_id: ChallengeId, account: Account) -> Result<bool, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM solves WHERE solves.challenge_id = $1 AND {}",
            account_condition("solves", 2, 3)
        );
        let count: i64 = sqlx::query_scalar(&sql)
            .bind(challenge_id.get())
            .bind(account.user_id.get())
            .bind(account.team_id.map(TeamId::get))
            .fetch_one(&self.pool)
            .await?;
        Ok(count > 0)
    }

    /// Counts the account's submissions of one kind for a challenge (the attempt budget).
    pub async fn count_submissions(
        &self,
        challenge_id: ChallengeId,
        account: Account,
        kind: SubmissionKind,
    ) -> Result<i64, StoreError> {
        let sql = format!(
            "SELECT COUNT(*) FROM submissions WHERE submissions.challenge_id = $1 AND submissions.type = $4 AND {}",
            account_condition("submissions", 2, 3)
        );
        Ok(sqlx::query_scalar(&sql)
            .bind(challenge_id.get())
            .bind(account.user_id.get())
            .bind(account.team_id.map(TeamId::get))
            .bind(kind.as_str())
            .fetch_one(&self.pool)
            .await?)
    }

    /// Reads one submission; `NotFound` when it does not exist.
    pub async fn get_submission(&self, id: SubmissionId) -> Result<Submission, StoreError> {
        let sql = format!("SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE id = $1");
        Ok(Submission::from_row(&sqlx::query(&sql).bind(id.get()).fetch_one(&self.pool).await?)?)
    }

    /// Submissions, newest first, optionally for one challenge and/or of one kind.
    pub async fn list_submissions(
        &self,
        challenge_id: Option<ChallengeId>,
        kind: Option<SubmissionKind>,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Submission>, StoreError> {
        let sql = format!(
            "SELECT {SUBMISSION_COLUMNS} FROM submissions WHERE ($1 IS NULL OR challenge_id = $1) \
             AND ($2 IS NULL OR type = $2) ORDER BY id DESC LIMIT $3 OFFSET $4"
        );
        let rows = sqlx::query(&sql)
            .bind(challenge_id.map(ChallengeId::get))
            .bind(kind.map(SubmissionKind::as_str))
            .bind(limit)
            .bind(offset)
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(Submission::from_row).collect::<Result<_, _>>()?)
    }

    /// The solves of a challenge (as their correct submissions), oldest first.
    pub async fn list_challenge_solves(&self, challenge_id: ChallengeId) -> Result<Vec<Submission>, StoreError> {
        let sql = format!(
            "SELECT {} FROM submissions JOIN solves ON solves.id = submissions.id \
             WHERE solves.challenge_id = $1 ORDER BY submissions.date, submissions.id",
            SUBMISSION_COLUMNS.split(", ").map(|column| format!("submissions.{column}")).collect::<Vec<_>>().join(", ")
        );
        let rows = sqlx::query(&sql).bind(challenge_id.get()).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(Submission::from_row).collect::<Result<_, _>>()?)
    }

    /// Deletes a submission (and its solve); false when it did not exist.
    pub async fn delete_submission(&self, id: SubmissionId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM submissions WHERE id = $1").bind(id.get()).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }
}
