//! Accounts and API tokens.

use crate::domain::UserId;

use super::{Store, StoreError};

/// Staff or player role of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserRole {
    User,
    Admin,
    Jury,
    Writer,
}

impl UserRole {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::User => "user",
            UserRole::Admin => "admin",
            UserRole::Jury => "jury",
            UserRole::Writer => "writer",
        }
    }
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    pub name: String,
    pub email: Option<String>,
    pub password_hash: String,
    pub role: UserRole,
    pub verified: bool,
}

impl Store {
    /// Creates an account; `Conflict` when the name or email is taken.
    pub async fn create_user(&self, user: &NewUser) -> Result<UserId, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (name, email, password, type, verified, created) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&user.name)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(i64::from(user.verified))
        .bind(chrono::Utc::now().timestamp())
        .fetch_one(&self.pool)
        .await?;
        Ok(UserId(id))
    }

    /// Stores an API token digest for a user.
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
        .bind(chrono::Utc::now().timestamp())
        .fetch_one(&self.pool)
        .await?;
        Ok(id)
    }

    /// Counts accounts with the given role.
    pub async fn count_users_with_role(&self, role: UserRole) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE type = $1")
            .bind(role.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }
}
