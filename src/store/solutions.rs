//! Challenge solutions (CTFd 3.8's `solutions`): at most one per challenge
//! (`solutions_challenge_uq`), with a state `hidden`, `visible` or `solved`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::ChallengeId;

/// A stored solution.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Solution {
    /// Row id.
    pub id: i64,
    /// The challenge it explains.
    pub challenge_id: ChallengeId,
    /// Markdown text.
    pub content: String,
    /// `hidden`, `visible` or `solved` (shown once solved).
    pub state: String,
}

fn solution_of(row: &AnyRow) -> Result<Solution, sqlx::Error> {
    Ok(Solution {
        id: row.try_get("id")?,
        challenge_id: ChallengeId(row.try_get("challenge_id")?),
        content: row.try_get("content")?,
        state: row.try_get("state")?,
    })
}

impl Store {
    /// Creates the solution of a challenge; `Conflict` on `solutions_challenge_uq` when it has
    /// one already, or a foreign-key conflict when the challenge does not exist.
    pub async fn create_solution(
        &self,
        challenge_id: ChallengeId,
        content: &str,
        state: &str,
    ) -> Result<Solution, StoreError> {
        let row = sqlx::query(
            "INSERT INTO solutions (challenge_id, content, state) VALUES ($1, $2, $3) \
             RETURNING id, challenge_id, content, state",
        )
        .bind(challenge_id.get())
        .bind(content)
        .bind(state)
        .fetch_one(&self.pool)
        .await?;
        Ok(solution_of(&row)?)
    }

    /// Reads a solution; `NotFound` when it does not exist.
    pub async fn get_solution(&self, id: i64) -> Result<Solution, StoreError> {
        let row = sqlx::query("SELECT id, challenge_id, content, state FROM solutions WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(solution_of(&row)?)
    }

    /// Every solution by ascending id.
    pub async fn list_solutions(&self) -> Result<Vec<Solution>, StoreError> {
        let rows = sqlx::query("SELECT id, challenge_id, content, state FROM solutions ORDER BY id")
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(solution_of).collect::<Result<_, _>>()?)
    }

    /// Sets content and state; `NotFound` when it does not exist.
    pub async fn update_solution(&self, id: i64, content: &str, state: &str) -> Result<Solution, StoreError> {
        let row = sqlx::query(
            "UPDATE solutions SET content = $2, state = $3 WHERE id = $1 RETURNING id, challenge_id, content, state",
        )
        .bind(id)
        .bind(content)
        .bind(state)
        .fetch_optional(&self.pool)
        .await?;
        Ok(solution_of(&row.ok_or(StoreError::NotFound)?)?)
    }

    /// Deletes a solution (its files' rows go with it); false when it did not exist.
    pub async fn delete_solution(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM solutions WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }
}
