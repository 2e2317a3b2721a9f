//! API tokens. Only the SHA-256 digest of a token is stored (see `crate::auth`); a token is
//! found by its digest, refused once `expires_at` has passed, and revoked by deleting its row.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::users::{USER_COLUMNS, User};
use super::{Store, StoreError};
use crate::domain::UserId;

/// A stored API token (without its secret value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiToken {
    /// Token id.
    pub id: i64,
    /// Owner; an admin's token is an admin token.
    pub user_id: UserId,
    /// Always `user` for now (CTFd's token type).
    pub kind: String,
    /// Free text.
    pub description: String,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Expiry (Unix seconds); `None` never expires.
    pub expires_at: Option<i64>,
}

const TOKEN_COLUMNS: &str = "api_tokens.id AS token_id, api_tokens.user_id AS token_user_id, api_tokens.type AS token_type, \
     api_tokens.description AS token_description, api_tokens.created AS token_created, api_tokens.expires_at AS token_expires_at";

impl ApiToken {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(ApiToken {
            id: row.try_get("token_id")?,
            user_id: UserId(row.try_get("token_user_id")?),
            kind: row.try_get("token_type")?,
            description: row.try_get("token_description")?,
            created: row.try_get("token_created")?,
            expires_at: row.try_get("token_expires_at")?,
        })
    }
}

impl Store {
    /// Stores an API token digest for a user and returns the token id; `Conflict` on
    /// `api_tokens_digest_uq` if the digest exists.
    pub async fn create_api_token(
        &self,
        user_id: UserId,
        digest: &str,
        expires_at: Option<i64>,
        description: &str,
    ) -> Result<i64, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO api_tokens (user_id, digest, expires_at, description, created) VALUES ($1, $2, $3, $4, $5) RETURNING id",
        )
        .bind(user_id.get())
        .bind(digest)
        .bind(expires_at)
        .bind(description)
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Finds the token with this digest and its owner, unless it expired at or before `now`.
    pub async fn find_api_token(&self, digest: &str, now: i64) -> Result<Option<(ApiToken, User)>, StoreError> {
        let sql = format!(
            "SELECT {TOKEN_COLUMNS}, {USER_COLUMNS} FROM api_tokens JOIN users ON users.id = api_tokens.user_id \
             WHERE api_tokens.digest = $1 AND (api_tokens.expires_at IS NULL OR api_tokens.expires_at > $2)"
        );
        let row = sqlx::query(&sql).bind(digest).bind(now).fetch_optional(&self.pool).await?;
        match row {
            Some(row) => Ok(Some((ApiToken::from_row(&row)?, User::from_row(&row)?))),
            None => Ok(None),
        }
    }

    /// Reads one token; `NotFound` when it does not exist.
    pub async fn get_api_token(&self, id: i64) -> Result<ApiToken, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE id = $1");
        let row = sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?;
        Ok(ApiToken::from_row(&row)?)
    }

    /// The tokens of one user (or of everyone when `user_id` is `None`), by ascending id.
    pub async fn list_api_tokens(&self, user_id: Option<UserId>) -> Result<Vec<ApiToken>, StoreError> {
        let sql = format!("SELECT {TOKEN_COLUMNS} FROM api_tokens WHERE ($1 IS NULL OR user_id = $1) ORDER BY id");
        let rows = sqlx::query(&sql).bind(user_id.map(UserId::get)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(ApiToken::from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes (deletes) a token; false when it did not exist.
    pub async fn revoke_api_token(&self, id: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM api_tokens WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }
}
