//! Player sessions: one active session per user.
//!
//! A session is identified by a random `token_id` carried in the session JWT. `create_session`
//! revokes the user's active session and inserts the new one in one transaction (the user row
//! is locked on PostgreSQL so concurrent logins queue); the partial unique index
//! `sessions_one_active_uq` makes two active sessions impossible whatever the caller does.
//! Revoked rows are kept for auditing.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::UserId;

/// A login session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Row id.
    pub id: i64,
    /// Owner.
    pub user_id: UserId,
    /// The random id carried by the session token.
    pub token_id: String,
    /// Client address at login.
    pub ip: Option<String>,
    /// Client user agent at login.
    pub user_agent: Option<String>,
    /// Login time (Unix seconds).
    pub created: i64,
    /// Expiry (Unix seconds).
    pub expires_at: i64,
    /// When it was revoked (logout, newer login, password change), if it was.
    pub revoked_at: Option<i64>,
}

const SESSION_COLUMNS: &str = "id, user_id, token_id, ip, user_agent, created, expires_at, revoked_at";

impl Session {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Session {
            id: row.try_get("id")?,
            user_id: UserId(row.try_get("user_id")?),
            token_id: row.try_get("token_id")?,
            ip: row.try_get("ip")?,
            user_agent: row.try_get("user_agent")?,
            created: row.try_get("created")?,
            expires_at: row.try_get("expires_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

impl Store {
    /// Opens a session for `user_id`, revoking the previous active one in the same transaction.
    /// `NotFound` when the user does not exist.
    pub async fn create_session(
        &self,
        user_id: UserId,
        token_id: &str,
        expires_at: i64,
        ip: Option<&str>,
        user_agent: Option<&str>,
    ) -> Result<Session, StoreError> {
        let now = super::now();
        let mut transaction = self.begin_write().await?;
        if !self.lock_row(&mut transaction, "users", user_id.get()).await? {
            return Err(StoreError::NotFound);
        }
        sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL")
            .bind(user_id.get())
            .bind(now)
            .execute(&mut *transaction)
            .await?;
        let sql = format!(
            "INSERT INTO sessions (user_id, token_id, ip, user_agent, created, expires_at) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING {SESSION_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(user_id.get())
            .bind(token_id)
            .bind(ip)
            .bind(user_agent)
            .bind(now)
            .bind(expires_at)
            .fetch_one(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(Session::from_row(&row)?)
    }

    /// The session with this token id if it is active: not revoked and not expired at `now`.
    pub async fn get_active_session(&self, token_id: &str, now: i64) -> Result<Option<Session>, StoreError> {
        let sql = format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE token_id = $1 AND revoked_at IS NULL AND expires_at > $2"
        );
        let row = sqlx::query(&sql).bind(token_id).bind(now).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(Session::from_row).transpose()?)
    }

    /// The user's active session, if any (expired or not).
    pub async fn get_user_session(&self, user_id: UserId) -> Result<Option<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 AND revoked_at IS NULL");
        let row = sqlx::query(&sql).bind(user_id.get()).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(Session::from_row).transpose()?)
    }

    /// The user's newest `limit` sessions, active or not, newest first (for the admin UI).
    pub async fn list_user_sessions(&self, user_id: UserId, limit: i64) -> Result<Vec<Session>, StoreError> {
        let sql = format!("SELECT {SESSION_COLUMNS} FROM sessions WHERE user_id = $1 ORDER BY id DESC LIMIT $2");
        let rows = sqlx::query(&sql).bind(user_id.get()).bind(limit).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(Session::from_row).collect::<Result<_, _>>()?)
    }

    /// Revokes one session (logout); false when it was not active.
    pub async fn revoke_session(&self, token_id: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("UPDATE sessions SET revoked_at = $2 WHERE token_id = $1 AND revoked_at IS NULL")
            .bind(token_id)
            .bind(super::now())
            .execute(&self.pool)
            .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Revokes every active session of a user except `keep_token_id` (password change, ban);
    /// returns how many were revoked.
    pub async fn revoke_user_sessions(&self, user_id: UserId, keep_token_id: Option<&str>) -> Result<u64, StoreError> {
        let result = sqlx::query(
            "UPDATE sessions SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL \
             AND ($3 IS NULL OR token_id <> $3)",
        )
        .bind(user_id.get())
        .bind(super::now())
        .bind(keep_token_id)
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected())
    }
}
