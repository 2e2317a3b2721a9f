//! Account creation with every profile field in one statement (the admin API creates users
//! and teams with website, country, bracket, flags… at once, so a half-created account can
//! never be left behind by a failing second write).

use super::{NewTeam, NewUser, Store, StoreError, Team, TeamUpdate, User, UserUpdate};
use crate::domain::BracketId;

fn flat<T: Clone>(value: &Option<Option<T>>) -> Option<T> {
    value.clone().flatten()
}

impl Store {
    /// Creates an account with the profile fields of `extra` (fields left `None` take their
    /// defaults); `Conflict` on a taken name, e-mail or OAuth id.
    pub async fn create_user_full(&self, user: &NewUser, extra: &UserUpdate) -> Result<User, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO users (name, email, password, type, verified, oauth_id, secret, website, affiliation, country, \
             language, bracket_id, hidden, banned, change_password, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16) RETURNING id",
        )
        .bind(&user.name)
        .bind(&user.email)
        .bind(&user.password_hash)
        .bind(user.role.as_str())
        .bind(i64::from(extra.verified.unwrap_or(user.verified)))
        .bind(extra.oauth_id.flatten())
        .bind(flat(&extra.secret))
        .bind(flat(&extra.website))
        .bind(flat(&extra.affiliation))
        .bind(flat(&extra.country))
        .bind(flat(&extra.language))
        .bind(extra.bracket_id.flatten().map(BracketId::get))
        .bind(i64::from(extra.hidden.unwrap_or(false)))
        .bind(i64::from(extra.banned.unwrap_or(false)))
        .bind(i64::from(extra.change_password.unwrap_or(false)))
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?;
        self.get_user(crate::domain::UserId(id)).await
    }

    /// Creates a team with the profile fields of `extra`; `Conflict` on a taken name or e-mail.
    pub async fn create_team_full(&self, team: &NewTeam, extra: &TeamUpdate) -> Result<Team, StoreError> {
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO teams (name, email, password, invite_code, bracket_id, hidden, banned, secret, website, \
             affiliation, country, created) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12) RETURNING id",
        )
        .bind(&team.name)
        .bind(&team.email)
        .bind(&team.password_hash)
        .bind(&team.invite_code)
        .bind(team.bracket_id.map(BracketId::get))
        .bind(i64::from(team.hidden))
        .bind(i64::from(team.banned))
        .bind(flat(&extra.secret))
        .bind(flat(&extra.website))
        .bind(flat(&extra.affiliation))
        .bind(flat(&extra.country))
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?;
        self.get_team(crate::domain::TeamId(id)).await
    }
}
