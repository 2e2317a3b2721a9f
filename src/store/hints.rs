//! Hints and hint unlocks.
//!
//! An unlock is unique per account (`unlocks_team_hint_uq`, `unlocks_user_hint_uq`) and its
//! cost is charged as one negative award written in the same transaction, so a hint is paid
//! at most once whatever the concurrency. The account row is locked (PostgreSQL) or the write
//! lock held (SQLite) while the score is checked, so concurrent unlocks of *different* hints
//! cannot together spend more than the account has. Free hints create an unlock and no award.
//!
//! Hints are soft-deleted: a sync deletes and recreates every hint, and a hint created with
//! the same challenge and content as a deleted one takes over its unlocks (admin-api D7), so
//! players keep what they paid for.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::submissions::{Account, account_condition};
use super::{Store, StoreError};
use crate::domain::{ChallengeId, HintId, TeamId};

/// A new hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewHint {
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// Short title.
    pub title: Option<String>,
    /// Body text.
    pub content: String,
    /// Points charged on unlock (0 = free).
    pub cost: i64,
    /// CTFd requirements JSON `{"prerequisites":[hint ids]}`.
    pub requirements: Option<String>,
}

/// A stored (live) hint.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hint {
    /// Row id.
    pub id: HintId,
    /// The hint as created.
    pub hint: NewHint,
    /// `standard`.
    pub kind: String,
    /// Creation time (Unix seconds).
    pub created: i64,
}

/// What to unlock, for whom.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NewUnlock {
    /// The hint.
    pub hint_id: HintId,
    /// Who submitted or unlocked.
    pub account: Account,
    /// Refuse when the account's score is below the cost (the contestant rule).
    pub require_affordable: bool,
}

/// The result of [`Store::unlock_hint`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UnlockOutcome {
    /// This call unlocked the hint; `award_id` is the charge (`None` for a free hint).
    Unlocked { unlock_id: i64, award_id: Option<i64> },
    /// The account had already unlocked it; nothing was written.
    AlreadyUnlocked,
    /// The account's score is below the cost; nothing was written.
    InsufficientScore { score: i64, cost: i64 },
}

/// A stored unlock.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unlock {
    /// Row id.
    pub id: i64,
    /// The hint.
    pub hint_id: HintId,
    /// Who submitted or unlocked.
    pub account: Account,
    /// The charge for the unlock (`None` for a free hint).
    pub award_id: Option<i64>,
    /// When it happened (Unix seconds).
    pub date: i64,
}

const HINT_COLUMNS: &str = "id, challenge_id, type, title, content, cost, requirements, created";

impl Hint {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Hint {
            id: HintId(row.try_get("id")?),
            hint: NewHint {
                challenge_id: ChallengeId(row.try_get("challenge_id")?),
                title: row.try_get("title")?,
                content: row.try_get("content")?,
                cost: row.try_get("cost")?,
                requirements: row.try_get("requirements")?,
            },
            kind: row.try_get("type")?,
            created: row.try_get("created")?,
        })
    }
}

impl Store {
    /// Creates a hint, taking over the unlocks of deleted hints of the same challenge with the
    /// same content (most recently deleted first; an account keeps one unlock).
    pub async fn create_hint(&self, hint: &NewHint) -> Result<Hint, StoreError> {
        let mut transaction = self.begin_write().await?;
        let sql = format!(
            "INSERT INTO hints (challenge_id, title, content, cost, requirements, created) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {HINT_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(hint.challenge_id.get())
            .bind(&hint.title)
            .bind(&hint.content)
            .bind(hint.cost)
            .bind(&hint.requirements)
            .bind(super::now())
            .fetch_one(&mut *transaction)
            .await?;
        let created = Hint::from_row(&row)?;
        let predecessors: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM hints WHERE challenge_id = $1 AND content = $2 AND deleted_at IS NOT NULL \
             ORDER BY deleted_at DESC, id DESC",
        )
        .bind(hint.challenge_id.get())
        .bind(&hint.content)
        .fetch_all(&mut *transaction)
        .await?;
        for predecessor in predecessors {
            sqlx::query(
                "UPDATE unlocks SET hint_id = $1 WHERE hint_id = $2 AND NOT EXISTS (\
                 SELECT 1 FROM unlocks AS other WHERE other.hint_id = $1 AND (\
                 (unlocks.team_id IS NOT NULL AND other.team_id = unlocks.team_id) OR \
                 (unlocks.team_id IS NULL AND other.team_id IS NULL AND other.user_id = unlocks.user_id)))",
            )
            .bind(created.id.get())
            .bind(predecessor)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        Ok(created)
    }

    /// Reads a live hint; `NotFound` when it does not exist or was deleted.
    pub async fn get_hint(&self, id: HintId) -> Result<Hint, StoreError> {
        let sql = format!("SELECT {HINT_COLUMNS} FROM hints WHERE id = $1 AND deleted_at IS NULL");
        Ok(Hint::from_row(&sqlx::query(&sql).bind(id.get()).fetch_one(&self.pool).await?)?)
    }

    /// The live hints of one challenge, or of all when `None`, in creation order.
    pub async fn list_hints(&self, challenge_id: Option<ChallengeId>) -> Result<Vec<Hint>, StoreError> {
        let sql = format!(
            "SELECT {HINT_COLUMNS} FROM hints WHERE deleted_at IS NULL AND ($1 IS NULL OR challenge_id = $1) ORDER BY id"
        );
        let rows = sqlx::query(&sql).bind(challenge_id.map(ChallengeId::get)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(Hint::from_row).collect::<Result<_, _>>()?)
    }

    /// Deletes a hint (soft: its unlocks stay for a recreated twin); false when not live.
    pub async fn delete_hint(&self, id: HintId) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE hints SET deleted_at = $2 WHERE id = $1 AND deleted_at IS NULL")
            .bind(id.get())
            .bind(super::now())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// The account's score: values of the challenges it solved plus its awards (hint costs are
    /// negative awards). No freeze is applied.
    pub async fn account_score(&self, account: Account) -> Result<i64, StoreError> {
        let sql = score_sql();
        Ok(sqlx::query_scalar(&sql)
            .bind(account.user_id.get())
            .bind(account.team_id.map(TeamId::get))
            .fetch_one(&self.pool)
            .await?)
    }

    /// Unlocks a hint exactly once per account, charging its cost once (see the module docs).
    /// `NotFound` when the hint does not exist or was deleted.
    pub async fn unlock_hint(&self, unlock: &NewUnlock) -> Result<UnlockOutcome, StoreError> {
        let account = unlock.account;
        let now = super::now();
        let mut transaction = self.begin_write().await?;
        let locked = match account.team_id {
            Some(team_id) => self.lock_row(&mut transaction, "teams", team_id.get()).await?,
            None => self.lock_row(&mut transaction, "users", account.user_id.get()).await?,
        };
        if !locked {
            return Err(StoreError::NotFound);
        }
        let hint = sqlx::query(
            "SELECT hints.cost, hints.challenge_id, challenges.name FROM hints \
             JOIN challenges ON challenges.id = hints.challenge_id WHERE hints.id = $1 AND hints.deleted_at IS NULL",
        )
        .bind(unlock.hint_id.get())
        .fetch_optional(&mut *transaction)
        .await?
        .ok_or(StoreError::NotFound)?;
        let cost: i64 = hint.try_get("cost")?;
        let challenge_id: i64 = hint.try_get("challenge_id")?;
        let challenge_name: String = hint.try_get("name")?;
        let existing_sql = format!(
            "SELECT COUNT(*) FROM unlocks WHERE unlocks.hint_id = $1 AND {}",
            account_condition("unlocks", 2, 3)
        );
        let existing: i64 = sqlx::query_scalar(&existing_sql)
            .bind(unlock.hint_id.get())
            .bind(account.user_id.get())
            .bind(account.team_id.map(TeamId::get))
            .fetch_one(&mut *transaction)
            .await?;
        if existing > 0 {
            return Ok(UnlockOutcome::AlreadyUnlocked);
        }
        if unlock.require_affordable && cost > 0 {
            let score: i64 = sqlx::query_scalar(&score_sql())
                .bind(account.user_id.get())
                .bind(account.team_id.map(TeamId::get))
                .fetch_one(&mut *transaction)
                .await?;
            if score < cost {
                return Ok(UnlockOutcome::InsufficientScore { score, cost });
            }
        }
        let award_id: Option<i64> = if cost != 0 {
            Some(
                sqlx::query_scalar(
                    "INSERT INTO awards (user_id, team_id, name, description, value, category, date) \
                     VALUES ($1, $2, $3, $4, $5, 'hint', $6) RETURNING id",
                )
                .bind(account.user_id.get())
                .bind(account.team_id.map(TeamId::get))
                .bind(format!("Hint {challenge_id}"))
                .bind(format!("Hint for {challenge_name}"))
                .bind(-cost)
                .bind(now)
                .fetch_one(&mut *transaction)
                .await?,
            )
        } else {
            None
        };
        let unlock_id: Option<i64> = sqlx::query_scalar(
            "INSERT INTO unlocks (hint_id, user_id, team_id, award_id, type, date) VALUES ($1, $2, $3, $4, 'hints', $5) \
             ON CONFLICT DO NOTHING RETURNING id",
        )
        .bind(unlock.hint_id.get())
        .bind(account.user_id.get())
        .bind(account.team_id.map(TeamId::get))
        .bind(award_id)
        .bind(now)
        .fetch_optional(&mut *transaction)
        .await?;
        let Some(unlock_id) = unlock_id else {
            transaction.rollback().await?;
            return Ok(UnlockOutcome::AlreadyUnlocked);
        };
        transaction.commit().await?;
        Ok(UnlockOutcome::Unlocked { unlock_id, award_id })
    }

    /// The unlocks of an account, oldest first.
    pub async fn list_unlocks(&self, account: Account) -> Result<Vec<Unlock>, StoreError> {
        let sql = format!(
            "SELECT id, hint_id, user_id, team_id, award_id, date FROM unlocks WHERE {} ORDER BY id",
            account_condition("unlocks", 1, 2)
        );
        let rows = sqlx::query(&sql)
            .bind(account.user_id.get())
            .bind(account.team_id.map(TeamId::get))
            .fetch_all(&self.pool)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(Unlock {
                    id: row.try_get("id")?,
                    hint_id: HintId(row.try_get("hint_id")?),
                    account: Account {
                        user_id: crate::domain::UserId(row.try_get("user_id")?),
                        team_id: row.try_get::<Option<i64>, _>("team_id")?.map(TeamId),
                    },
                    award_id: row.try_get("award_id")?,
                    date: row.try_get("date")?,
                })
            })
            .collect()
    }
}

/// Score of the account given as `$1` (user) and `$2` (team or NULL).
fn score_sql() -> String {
    format!(
        "SELECT CAST(COALESCE((SELECT SUM(challenges.value) FROM solves JOIN challenges ON challenges.id = solves.challenge_id \
         WHERE {}), 0) + COALESCE((SELECT SUM(awards.value) FROM awards WHERE {}), 0) AS BIGINT)",
        account_condition("solves", 1, 2),
        account_condition("awards", 1, 2)
    )
}
