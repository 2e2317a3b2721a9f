//! Accounts: users (players and staff), their profile flags and the IP addresses they used.
//!
//! Names and e-mail addresses are unique case-insensitively (`lower()` indexes, ASCII folding on
//! SQLite), matching the original's `utf8mb4_unicode_ci` lookups; `get_user_by_name` folds the
//! same way. Team membership changes only through `teams.rs`.

use std::str::FromStr;

use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::{Patch, bool_of};
use super::{Store, StoreError};
use crate::domain::{BracketId, TeamId, UserId};

/// Staff or player role of an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum UserRole {
    /// A player.
    User,
    /// Everything.
    Admin,
    /// Reads everything, answers tickets, changes nothing.
    Jury,
    /// Challenges and their children only.
    Writer,
}

impl UserRole {
    /// The stored name (`user`, `admin`, `jury`, `challenge_writer`).
    pub fn as_str(self) -> &'static str {
        match self {
            UserRole::User => "user",
            UserRole::Admin => "admin",
            UserRole::Jury => "jury",
            UserRole::Writer => "challenge_writer",
        }
    }
}

impl FromStr for UserRole {
    type Err = StoreError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "user" => Ok(UserRole::User),
            "admin" => Ok(UserRole::Admin),
            "jury" => Ok(UserRole::Jury),
            "challenge_writer" => Ok(UserRole::Writer),
            other => Err(StoreError::Other(format!("unknown user role {other:?}"))),
        }
    }
}

/// A new account.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Login name, unique case-insensitively.
    pub name: String,
    /// E-mail address, unique case-insensitively when present.
    pub email: Option<String>,
    /// PHC string (argon2id) or imported CTFd hash.
    pub password_hash: String,
    /// Role of the account.
    pub role: UserRole,
    /// Whether the account is verified (self-registered players wait for approval).
    pub verified: bool,
}

/// A stored account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Row id.
    pub id: UserId,
    /// Id at the OAuth provider.
    pub oauth_id: Option<i64>,
    /// Display and lookup name.
    pub name: String,
    /// Contact e-mail address.
    pub email: Option<String>,
    /// Password hash; `None` for accounts that cannot log in with a password.
    pub password_hash: Option<String>,
    /// Role of the account.
    pub role: UserRole,
    /// CTFd `secret` field (opaque).
    pub secret: Option<String>,
    /// Profile website.
    pub website: Option<String>,
    /// Profile affiliation.
    pub affiliation: Option<String>,
    /// ISO country code.
    pub country: Option<String>,
    /// Preferred language code.
    pub language: Option<String>,
    /// Scoreboard bracket.
    pub bracket_id: Option<BracketId>,
    /// The team (`None`: none, or users mode).
    pub team_id: Option<TeamId>,
    /// Left out of public lists and the scoreboard.
    pub hidden: bool,
    /// Refused everywhere.
    pub banned: bool,
    /// Approved by an organizer (or e-mail verified).
    pub verified: bool,
    /// The user must change the password at next login.
    pub change_password: bool,
    /// Creation time (Unix seconds).
    pub created: i64,
}

/// A partial update of an account; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct UserUpdate {
    /// Display and lookup name.
    pub name: Option<String>,
    /// Contact e-mail address.
    pub email: Option<Option<String>>,
    /// Password hash (argon2id PHC string, or an imported CTFd hash).
    pub password_hash: Option<String>,
    /// Role of the account.
    pub role: Option<UserRole>,
    /// Id at the OAuth provider.
    pub oauth_id: Option<Option<i64>>,
    /// CTFd `secret` field (opaque).
    pub secret: Option<Option<String>>,
    /// Profile website.
    pub website: Option<Option<String>>,
    /// Profile affiliation.
    pub affiliation: Option<Option<String>>,
    /// ISO country code.
    pub country: Option<Option<String>>,
    /// Preferred language code.
    pub language: Option<Option<String>>,
    /// Scoreboard bracket.
    pub bracket_id: Option<Option<BracketId>>,
    /// Left out of public lists and the scoreboard.
    pub hidden: Option<bool>,
    /// Refused everywhere.
    pub banned: Option<bool>,
    /// Approved by an organizer (or e-mail verified).
    pub verified: Option<bool>,
    /// The user must change the password at next login.
    pub change_password: Option<bool>,
}

pub(crate) const USER_COLUMNS: &str = "users.id, users.oauth_id, users.name, users.email, users.password, users.type, \
     users.secret, users.website, users.affiliation, users.country, users.language, users.bracket_id, users.team_id, \
     users.hidden, users.banned, users.verified, users.change_password, users.created";

impl User {
    pub(crate) fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        let role_text: String = row.try_get("type")?;
        let role = role_text.parse::<UserRole>().map_err(|error| sqlx::Error::Decode(Box::new(error)))?;
        Ok(User {
            id: UserId(row.try_get("id")?),
            oauth_id: row.try_get("oauth_id")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password")?,
            role,
            secret: row.try_get("secret")?,
            website: row.try_get("website")?,
            affiliation: row.try_get("affiliation")?,
            country: row.try_get("country")?,
            language: row.try_get("language")?,
            bracket_id: row.try_get::<Option<i64>, _>("bracket_id")?.map(BracketId),
            team_id: row.try_get::<Option<i64>, _>("team_id")?.map(TeamId),
            hidden: bool_of(row, "hidden")?,
            banned: bool_of(row, "banned")?,
            verified: bool_of(row, "verified")?,
            change_password: bool_of(row, "change_password")?,
            created: row.try_get("created")?,
        })
    }
}

impl Store {
    /// Creates an account; `Conflict` on `users_name_uq` or `users_email_uq` when taken.
    pub async fn create_user(&self, user: &NewUser) -> Result<UserId, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (name, email, password, type, verified, created) VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(&user.name)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(i64::from(user.verified))
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?;
        Ok(UserId(id))
    }

    /// Reads an account; `NotFound` when it does not exist.
    pub async fn get_user(&self, id: UserId) -> Result<User, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE id = $1");
        let row = sqlx::query(&sql).bind(id.get()).fetch_one(&self.pool).await?;
        Ok(User::from_row(&row)?)
    }

    /// Finds an account by name, case-insensitively.
    pub async fn get_user_by_name(&self, name: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(name) = lower($1)");
        let row = sqlx::query(&sql).bind(name).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(User::from_row).transpose()?)
    }

    /// Finds an account by e-mail address, case-insensitively.
    pub async fn get_user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE lower(email) = lower($1)");
        let row = sqlx::query(&sql).bind(email).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(User::from_row).transpose()?)
    }

    /// Lists accounts by ascending id, `limit` rows after skipping `offset`.
    pub async fn list_users(&self, offset: i64, limit: i64) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users ORDER BY id LIMIT $1 OFFSET $2");
        let rows = sqlx::query(&sql).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(User::from_row).collect::<Result<_, _>>()?)
    }

    /// Counts all accounts.
    pub async fn count_users(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(&self.pool).await?)
    }

    /// Counts accounts with the given role.
    pub async fn count_users_with_role(&self, role: UserRole) -> Result<i64, StoreError> {
        let count: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE type = $1")
            .bind(role.as_str())
            .fetch_one(&self.pool)
            .await?;
        Ok(count)
    }

    /// Applies a partial update and returns the account; `NotFound`, or `Conflict` on a taken
    /// name or e-mail.
    pub async fn update_user(&self, id: UserId, update: &UserUpdate) -> Result<User, StoreError> {
        let mut patch = Patch::default();
        patch.text("name", update.name.clone().map(Some));
        patch.text("email", update.email.clone());
        patch.text("password", update.password_hash.clone().map(Some));
        patch.text("type", update.role.map(|role| Some(role.as_str().to_owned())));
        patch.int("oauth_id", update.oauth_id);
        patch.text("secret", update.secret.clone());
        patch.text("website", update.website.clone());
        patch.text("affiliation", update.affiliation.clone());
        patch.text("country", update.country.clone());
        patch.text("language", update.language.clone());
        patch.int("bracket_id", update.bracket_id.map(|bracket| bracket.map(BracketId::get)));
        patch.bool("hidden", update.hidden);
        patch.bool("banned", update.banned);
        patch.bool("verified", update.verified);
        patch.bool("change_password", update.change_password);
        if !patch.is_empty() {
            let (sql, values) = patch.into_update("users", id.get());
            let mut query = sqlx::query(&sql);
            for value in values {
                query = value.bind_to(query);
            }
            if query.execute(&self.pool).await?.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
        self.get_user(id).await
    }

    /// Deletes an account and, by cascade, its sessions, tokens, submissions, solves, awards
    /// and unlocks. Returns false when it did not exist.
    pub async fn delete_user(&self, id: UserId) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        // A captain leaving clears the captaincy (the foreign key would do it too; be explicit).
        sqlx::query("UPDATE teams SET captain_id = NULL WHERE captain_id = $1")
            .bind(id.get())
            .execute(&mut *transaction)
            .await?;
        let deleted = sqlx::query("DELETE FROM users WHERE id = $1").bind(id.get()).execute(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Records that `user_id` was seen at `ip` now (one row per user and address).
    pub async fn record_user_ip(&self, user_id: UserId, ip: &str) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO tracking (user_id, ip, date) VALUES ($1, $2, $3) \
             ON CONFLICT (user_id, ip) DO UPDATE SET date = excluded.date",
        )
        .bind(user_id.get())
        .bind(ip)
        .bind(super::now())
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    /// The addresses a user was seen at, most recent first, as `(ip, last seen)`.
    pub async fn list_user_ips(&self, user_id: UserId) -> Result<Vec<(String, i64)>, StoreError> {
        let rows = sqlx::query("SELECT ip, date FROM tracking WHERE user_id = $1 ORDER BY date DESC, id DESC")
            .bind(user_id.get())
            .fetch_all(&self.pool)
            .await?;
        rows.iter().map(|row| Ok((row.try_get("ip")?, row.try_get("date")?))).collect()
    }
}
