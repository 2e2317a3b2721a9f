//! Flags of a challenge (`static`, `regex`, or fctf's per-instance `dynamic`). Content and
//! `data` are stored as given (admin-api: `data` null and `""` both round-trip).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::ChallengeId;

/// A new flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewFlag {
    /// Owning challenge.
    pub challenge_id: ChallengeId,
    /// `static`, `regex`, …
    pub kind: String,
    /// The flag text or pattern.
    pub content: String,
    /// `case_insensitive`, `case_sensitive`, `""` or `None`.
    pub data: Option<String>,
}

/// A stored flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flag {
    /// Flag id.
    pub id: i64,
    /// The flag as created.
    pub flag: NewFlag,
}

impl Flag {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Flag {
            id: row.try_get("id")?,
            flag: NewFlag {
                challenge_id: ChallengeId(row.try_get("challenge_id")?),
                kind: row.try_get("type")?,
                content: row.try_get("content")?,
                data: row.try_get("data")?,
            },
        })
    }
}

impl Store {
    /// Adds a flag; `Conflict` (foreign key) when the challenge does not exist.
    pub async fn create_flag(&self, flag: &NewFlag) -> Result<Flag, StoreError> {
        let row = sqlx::query(
            "INSERT INTO flags (challenge_id, type, content, data) VALUES ($1, $2, $3, $4) \
             RETURNING id, challenge_id, type, content, data",
        )
        .bind(flag.challenge_id.get())
        .bind(&flag.kind)
        .bind(&flag.content)
        .bind(&flag.data)
        .fetch_one(&self.pool)
        .await?;
        Ok(Flag::from_row(&row)?)
    }

    /// The flags of one challenge, or of all when `None`, in creation order.
    pub async fn list_flags(&self, challenge_id: Option<ChallengeId>) -> Result<Vec<Flag>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, challenge_id, type, content, data FROM flags WHERE ($1 IS NULL OR challenge_id = $1) ORDER BY id",
        )
        .bind(challenge_id.map(ChallengeId::get))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(Flag::from_row).collect::<Result<_, _>>()?)
    }

    /// Deletes a flag; false when it did not exist.
    pub async fn delete_flag(&self, id: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM flags WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }
}
