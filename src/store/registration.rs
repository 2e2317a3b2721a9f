//! Self-registration: the custom user fields an organizer defined, and the creation of a
//! player account with its field values in one transaction.

use sqlx::Row;

use super::sql::bool_of;
use super::{NewUser, Store, StoreError};
use crate::domain::UserId;

/// A custom registration field (`fields` row of type `user`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistrationField {
    /// Field id.
    pub id: i64,
    /// Label shown to players.
    pub name: String,
    /// `text` or `boolean` (as stored).
    pub field_type: String,
    /// Help text.
    pub description: String,
    /// A value must be given.
    pub required: bool,
}

impl Store {
    /// The custom fields of user accounts, by id.
    pub async fn registration_fields(&self) -> Result<Vec<RegistrationField>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, name, field_type, description, required FROM fields WHERE type = 'user' ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(RegistrationField {
                    id: row.try_get("id")?,
                    name: row.try_get("name")?,
                    field_type: row.try_get("field_type")?,
                    description: row.try_get("description")?,
                    required: bool_of(row, "required")?,
                })
            })
            .collect()
    }

    /// Counts player accounts (`type = 'user'`) that are neither hidden nor banned: the
    /// population the registration cap applies to.
    pub async fn count_active_players(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE type = 'user' AND hidden = 0 AND banned = 0")
            .fetch_one(&self.pool)
            .await?)
    }

    /// Creates a player account and its field values (`(field id, JSON text)`) atomically;
    /// `Conflict` on `users_name_uq` or `users_email_uq`.
    pub async fn register_player(&self, user: &NewUser, fields: &[(i64, String)]) -> Result<UserId, StoreError> {
        let mut transaction = self.begin_write().await?;
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (name, email, password, type, verified, created) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&user.name)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(i64::from(user.verified))
        .bind(super::now())
        .fetch_one(&mut *transaction)
        .await?;
        for (field_id, value) in fields {
            sqlx::query("INSERT INTO field_entries (field_id, user_id, value) VALUES ($1, $2, $3)")
                .bind(field_id)
                .bind(id)
                .bind(value)
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(UserId(id))
    }

    /// Creates a custom field (tests and tools; the admin API owns field management).
    pub async fn create_registration_field(
        &self,
        name: &str,
        field_type: &str,
        description: &str,
        required: bool,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO fields (name, type, field_type, description, required) VALUES ($1, 'user', $2, $3, $4) RETURNING id",
        )
        .bind(name)
        .bind(field_type)
        .bind(description)
        .bind(i64::from(required))
        .fetch_one(&self.pool)
        .await?)
    }

    /// The stored field values of a user as `(field id, JSON text)`, by field id.
    pub async fn user_field_values(&self, user_id: UserId) -> Result<Vec<(i64, String)>, StoreError> {
        let rows = sqlx::query("SELECT field_id, value FROM field_entries WHERE user_id = $1 ORDER BY field_id")
            .bind(user_id.get())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.try_get("field_id")?, row.try_get("value")?))).collect()
    }
}
