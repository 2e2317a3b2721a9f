//! Teams, their members and captain.
//!
//! Membership is `users.team_id`. Joining is atomic with the size check: the team row is locked
//! (PostgreSQL) or the write lock held (SQLite) while members are counted, so two players can
//! never both take the last place. The captain must be a member.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::{Patch, bool_of};
use super::users::{USER_COLUMNS, User};
use super::{Store, StoreError};
use crate::domain::{BracketId, TeamId, UserId};

/// A new team.
#[derive(Debug, Clone, Default)]
pub struct NewTeam {
    /// Name, unique case-insensitively.
    pub name: String,
    /// Contact address, unique case-insensitively when present.
    pub email: Option<String>,
    /// Hash of the join password, if any.
    pub password_hash: Option<String>,
    /// Invite code for joining, unique when present.
    pub invite_code: Option<String>,
    /// Scoreboard bracket.
    pub bracket_id: Option<BracketId>,
    /// Hidden from the scoreboard.
    pub hidden: bool,
    /// Banned.
    pub banned: bool,
}

/// A stored team.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Team {
    /// Row id.
    pub id: TeamId,
    /// Id at the OAuth provider.
    pub oauth_id: Option<i64>,
    /// Display and lookup name.
    pub name: String,
    /// Contact e-mail address.
    pub email: Option<String>,
    /// Password hash (argon2id PHC string, or an imported CTFd hash).
    pub password_hash: Option<String>,
    /// CTFd `secret` field (opaque).
    pub secret: Option<String>,
    /// Profile website.
    pub website: Option<String>,
    /// Profile affiliation.
    pub affiliation: Option<String>,
    /// ISO country code.
    pub country: Option<String>,
    /// Scoreboard bracket.
    pub bracket_id: Option<BracketId>,
    /// Left out of public lists and the scoreboard.
    pub hidden: bool,
    /// Refused everywhere.
    pub banned: bool,
    /// The member allowed to start instances (and submit, when captain-only).
    pub captain_id: Option<UserId>,
    /// Code to join the team.
    pub invite_code: Option<String>,
    /// Creation time (Unix seconds).
    pub created: i64,
}

/// A partial update of a team; `None` leaves a field as it is, `Some(None)` clears it.
#[derive(Debug, Clone, Default)]
pub struct TeamUpdate {
    /// Display and lookup name.
    pub name: Option<String>,
    /// Contact e-mail address.
    pub email: Option<Option<String>>,
    /// Password hash (argon2id PHC string, or an imported CTFd hash).
    pub password_hash: Option<Option<String>>,
    /// CTFd `secret` field (opaque).
    pub secret: Option<Option<String>>,
    /// Profile website.
    pub website: Option<Option<String>>,
    /// Profile affiliation.
    pub affiliation: Option<Option<String>>,
    /// ISO country code.
    pub country: Option<Option<String>>,
    /// Scoreboard bracket.
    pub bracket_id: Option<Option<BracketId>>,
    /// Code to join the team.
    pub invite_code: Option<Option<String>>,
    /// Left out of public lists and the scoreboard.
    pub hidden: Option<bool>,
    /// Refused everywhere.
    pub banned: Option<bool>,
}

/// The result of [`Store::add_team_member`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum JoinOutcome {
    /// The user is now a member.
    Joined,
    /// The user already belongs to a team (this one or another).
    AlreadyInTeam,
    /// The team has `max_members` members already.
    TeamFull,
}

const TEAM_COLUMNS: &str = "id, oauth_id, name, email, password, secret, website, affiliation, country, bracket_id, \
     hidden, banned, captain_id, invite_code, created";

impl Team {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(Team {
            id: TeamId(row.try_get("id")?),
            oauth_id: row.try_get("oauth_id")?,
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            password_hash: row.try_get("password")?,
            secret: row.try_get("secret")?,
            website: row.try_get("website")?,
            affiliation: row.try_get("affiliation")?,
            country: row.try_get("country")?,
            bracket_id: row.try_get::<Option<i64>, _>("bracket_id")?.map(BracketId),
            hidden: bool_of(row, "hidden")?,
            banned: bool_of(row, "banned")?,
            captain_id: row.try_get::<Option<i64>, _>("captain_id")?.map(UserId),
            invite_code: row.try_get("invite_code")?,
            created: row.try_get("created")?,
        })
    }
}

impl Store {
    /// Creates a team; `Conflict` on `teams_name_uq`, `teams_email_uq` or `teams_invite_code_uq`.
    pub async fn create_team(&self, team: &NewTeam) -> Result<Team, StoreError> {
        let sql = format!(
            "INSERT INTO teams (name, email, password, invite_code, bracket_id, hidden, banned, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {TEAM_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&team.name)
            .bind(&team.email)
            .bind(&team.password_hash)
            .bind(&team.invite_code)
            .bind(team.bracket_id.map(BracketId::get))
            .bind(i64::from(team.hidden))
            .bind(i64::from(team.banned))
            .bind(super::now())
            .fetch_one(&self.pool)
            .await?;
        Ok(Team::from_row(&row)?)
    }

    /// Reads a team; `NotFound` when it does not exist.
    pub async fn get_team(&self, id: TeamId) -> Result<Team, StoreError> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM teams WHERE id = $1");
        Ok(Team::from_row(&sqlx::query(&sql).bind(id.get()).fetch_one(&self.pool).await?)?)
    }

    /// Finds a team by name, case-insensitively.
    pub async fn get_team_by_name(&self, name: &str) -> Result<Option<Team>, StoreError> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM teams WHERE lower(name) = lower($1)");
        let row = sqlx::query(&sql).bind(name).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(Team::from_row).transpose()?)
    }

    /// Finds a team by invite code.
    pub async fn get_team_by_invite_code(&self, code: &str) -> Result<Option<Team>, StoreError> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM teams WHERE invite_code = $1");
        let row = sqlx::query(&sql).bind(code).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(Team::from_row).transpose()?)
    }

    /// Lists teams by ascending id, `limit` rows after skipping `offset`.
    pub async fn list_teams(&self, offset: i64, limit: i64) -> Result<Vec<Team>, StoreError> {
        let sql = format!("SELECT {TEAM_COLUMNS} FROM teams ORDER BY id LIMIT $1 OFFSET $2");
        let rows = sqlx::query(&sql).bind(limit).bind(offset).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(Team::from_row).collect::<Result<_, _>>()?)
    }

    /// Counts all teams.
    pub async fn count_teams(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM teams").fetch_one(&self.pool).await?)
    }

    /// Applies a partial update and returns the team; `NotFound`, or `Conflict` on a taken name.
    pub async fn update_team(&self, id: TeamId, update: &TeamUpdate) -> Result<Team, StoreError> {
        let mut patch = Patch::default();
        patch.text("name", update.name.clone().map(Some));
        patch.text("email", update.email.clone());
        patch.text("password", update.password_hash.clone());
        patch.text("secret", update.secret.clone());
        patch.text("website", update.website.clone());
        patch.text("affiliation", update.affiliation.clone());
        patch.text("country", update.country.clone());
        patch.int("bracket_id", update.bracket_id.map(|bracket| bracket.map(BracketId::get)));
        patch.text("invite_code", update.invite_code.clone());
        patch.bool("hidden", update.hidden);
        patch.bool("banned", update.banned);
        if !patch.is_empty() {
            let (sql, values) = patch.into_update("teams", id.get());
            let mut query = sqlx::query(&sql);
            for value in values {
                query = value.bind_to(query);
            }
            if query.execute(&self.pool).await?.rows_affected() == 0 {
                return Err(StoreError::NotFound);
            }
        }
        self.get_team(id).await
    }

    /// Deletes a team; members are detached (their `team_id` becomes NULL) and the team's
    /// solves, submissions, awards and unlocks go with it. False when it did not exist.
    pub async fn delete_team(&self, id: TeamId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM teams WHERE id = $1").bind(id.get()).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }

    /// The members of a team by ascending id.
    pub async fn team_members(&self, id: TeamId) -> Result<Vec<User>, StoreError> {
        let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE team_id = $1 ORDER BY id");
        let rows = sqlx::query(&sql).bind(id.get()).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(User::from_row).collect::<Result<_, _>>()?)
    }

    /// Adds a team-less user to a team, atomically with the size limit (`None` = unlimited).
    /// `NotFound` when the team or the user does not exist.
    pub async fn add_team_member(
        &self,
        team_id: TeamId,
        user_id: UserId,
        max_members: Option<i64>,
    ) -> Result<JoinOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        if !self.lock_row(&mut transaction, "teams", team_id.get()).await? {
            return Err(StoreError::NotFound);
        }
        let current: Option<Option<i64>> = sqlx::query_scalar("SELECT team_id FROM users WHERE id = $1")
            .bind(user_id.get())
            .fetch_optional(&mut *transaction)
            .await?;
        match current {
            None => return Err(StoreError::NotFound),
            Some(Some(_)) => return Ok(JoinOutcome::AlreadyInTeam),
            Some(None) => {}
        }
        if let Some(limit) = max_members {
            let members: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE team_id = $1")
                .bind(team_id.get())
                .fetch_one(&mut *transaction)
                .await?;
            if members >= limit {
                return Ok(JoinOutcome::TeamFull);
            }
        }
        let updated = sqlx::query("UPDATE users SET team_id = $1 WHERE id = $2 AND team_id IS NULL")
            .bind(team_id.get())
            .bind(user_id.get())
            .execute(&mut *transaction)
            .await?;
        if updated.rows_affected() == 0 {
            return Ok(JoinOutcome::AlreadyInTeam);
        }
        transaction.commit().await?;
        Ok(JoinOutcome::Joined)
    }

    /// Removes a member from a team (clearing the captaincy if it was theirs). With
    /// `delete_records`, the user's submissions, solves, awards and unlocks are deleted too (the
    /// admin API's behaviour). False when the user was not a member of this team.
    pub async fn remove_team_member(
        &self,
        team_id: TeamId,
        user_id: UserId,
        delete_records: bool,
    ) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated = sqlx::query("UPDATE users SET team_id = NULL WHERE id = $1 AND team_id = $2")
            .bind(user_id.get())
            .bind(team_id.get())
            .execute(&mut *transaction)
            .await?;
        if updated.rows_affected() == 0 {
            return Ok(false);
        }
        sqlx::query("UPDATE teams SET captain_id = NULL WHERE id = $1 AND captain_id = $2")
            .bind(team_id.get())
            .bind(user_id.get())
            .execute(&mut *transaction)
            .await?;
        if delete_records {
            for table in ["unlocks", "awards", "submissions"] {
                sqlx::query(&format!("DELETE FROM {table} WHERE user_id = $1"))
                    .bind(user_id.get())
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(true)
    }

    /// Makes a member the captain (or clears the captain with `None`); false when the user is
    /// not a member of the team or the team does not exist.
    pub async fn set_team_captain(&self, team_id: TeamId, captain: Option<UserId>) -> Result<bool, StoreError> {
        let result = match captain {
            Some(user_id) => {
                sqlx::query(
                    "UPDATE teams SET captain_id = $2 WHERE id = $1 \
                     AND $2 IN (SELECT id FROM users WHERE team_id = $1)",
                )
                .bind(team_id.get())
                .bind(user_id.get())
                .execute(&self.pool)
                .await?
            }
            None => {
                sqlx::query("UPDATE teams SET captain_id = NULL WHERE id = $1")
                    .bind(team_id.get())
                    .execute(&self.pool)
                    .await?
            }
        };
        Ok(result.rows_affected() == 1)
    }
}
