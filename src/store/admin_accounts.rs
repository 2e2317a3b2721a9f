//! Account creation with every profile field in one statement (the admin API creates users
//! and teams with website, country, bracket, flags… at once, so a half-created account can
//! never be left behind by a failing second write), and the bulk import of accounts from a
//! CSV file in one transaction (all rows or none).

use std::collections::HashMap;

use sqlx::{Any, Executor};

use super::{NewTeam, NewUser, Store, StoreError, Team, TeamUpdate, User, UserUpdate};
use crate::domain::{BracketId, TeamId, UserId};

fn flat<T: Clone>(value: &Option<Option<T>>) -> Option<T> {
    value.clone().flatten()
}

/// One user of an import: the account, its profile, the team it joins (by name: an existing
/// team, a team of the same import, or a new team created for it) and custom field values.
#[derive(Debug, Clone)]
pub struct ImportUser {
    /// The account (password already hashed).
    pub user: NewUser,
    /// Profile fields; `None` fields take their defaults.
    pub profile: UserUpdate,
    /// Name of the team to join.
    pub team_name: Option<String>,
    /// `(field id, value)` of custom user fields.
    pub fields: Vec<(i64, String)>,
}

/// One team of an import.
#[derive(Debug, Clone)]
pub struct ImportTeam {
    /// The team.
    pub team: NewTeam,
    /// Profile fields.
    pub profile: TeamUpdate,
    /// `(field id, value)` of custom team fields.
    pub fields: Vec<(i64, String)>,
}

/// What an import created, in input order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportedAccounts {
    /// The teams created (listed teams first, then teams named by users), with their names.
    pub teams: Vec<(TeamId, String)>,
    /// The users created and the team each joined.
    pub users: Vec<(UserId, Option<TeamId>)>,
}

async fn insert_user<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    user: &NewUser,
    extra: &UserUpdate,
    team_id: Option<TeamId>,
) -> Result<UserId, StoreError> {
    let id: i64 = sqlx::query_scalar(
        "INSERT INTO users (name, email, password, type, verified, oauth_id, secret, website, affiliation, country, \
         language, bracket_id, hidden, banned, change_password, created, team_id) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17) RETURNING id",
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
    .bind(team_id.map(TeamId::get))
    .fetch_one(executor)
    .await?;
    Ok(UserId(id))
}

async fn insert_team<'e, E: Executor<'e, Database = Any>>(
    executor: E,
    team: &NewTeam,
    extra: &TeamUpdate,
) -> Result<TeamId, StoreError> {
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
    .fetch_one(executor)
    .await?;
    Ok(TeamId(id))
}

impl Store {
    /// Creates an account with the profile fields of `extra` (fields left `None` take their
    /// defaults); `Conflict` on a taken name, e-mail or OAuth id.
    pub async fn create_user_full(&self, user: &NewUser, extra: &UserUpdate) -> Result<User, StoreError> {
        let id = insert_user(&self.pool, user, extra, None).await?;
        self.get_user(id).await
    }

    /// Creates a team with the profile fields of `extra`; `Conflict` on a taken name or e-mail.
    pub async fn create_team_full(&self, team: &NewTeam, extra: &TeamUpdate) -> Result<Team, StoreError> {
        let id = insert_team(&self.pool, team, extra).await?;
        self.get_team(id).await
    }

    /// Creates every team and user of an import in one transaction: a conflict (a name or
    /// e-mail taken meanwhile) rolls everything back. A user's team is found by name
    /// (case-insensitively) among the existing teams and the teams created so far, and created
    /// when there is none; a team left without a captain gets its first imported member.
    pub async fn import_accounts(
        &self,
        teams: &[ImportTeam],
        users: &[ImportUser],
    ) -> Result<ImportedAccounts, StoreError> {
        let mut transaction = self.begin_write().await?;
        let mut imported = ImportedAccounts::default();
        let mut team_ids: HashMap<String, TeamId> = HashMap::new();
        for team in teams {
            let id = insert_team(&mut *transaction, &team.team, &team.profile).await?;
            insert_entries(&mut transaction, None, Some(id), &team.fields).await?;
            team_ids.insert(team.team.name.to_lowercase(), id);
            imported.teams.push((id, team.team.name.clone()));
        }
        let mut first_member: Vec<(TeamId, UserId)> = Vec::new();
        for user in users {
            let team_id = match &user.team_name {
                None => None,
                Some(name) => Some(match team_ids.get(&name.to_lowercase()) {
                    Some(id) => *id,
                    None => {
                        let existing: Option<i64> =
                            sqlx::query_scalar("SELECT id FROM teams WHERE lower(name) = lower($1)")
                                .bind(name)
                                .fetch_optional(&mut *transaction)
                                .await?;
                        let id = match existing {
                            Some(id) => TeamId(id),
                            None => {
                                let new_team = NewTeam { name: name.clone(), ..NewTeam::default() };
                                let id = insert_team(&mut *transaction, &new_team, &TeamUpdate::default()).await?;
                                imported.teams.push((id, name.clone()));
                                id
                            }
                        };
                        team_ids.insert(name.to_lowercase(), id);
                        id
                    }
                }),
            };
            let id = insert_user(&mut *transaction, &user.user, &user.profile, team_id).await?;
            insert_entries(&mut transaction, Some(id), None, &user.fields).await?;
            if let Some(team_id) = team_id
                && !first_member.iter().any(|(team, _)| *team == team_id)
            {
                first_member.push((team_id, id));
            }
            imported.users.push((id, team_id));
        }
        for (team_id, user_id) in first_member {
            sqlx::query("UPDATE teams SET captain_id = $1 WHERE id = $2 AND captain_id IS NULL")
                .bind(user_id.get())
                .bind(team_id.get())
                .execute(&mut *transaction)
                .await?;
        }
        transaction.commit().await?;
        Ok(imported)
    }
}

async fn insert_entries(
    transaction: &mut sqlx::Transaction<'static, Any>,
    user_id: Option<UserId>,
    team_id: Option<TeamId>,
    entries: &[(i64, String)],
) -> Result<(), StoreError> {
    for (field_id, value) in entries {
        sqlx::query("INSERT INTO field_entries (field_id, user_id, team_id, value) VALUES ($1, $2, $3, $4)")
            .bind(field_id)
            .bind(user_id.map(UserId::get))
            .bind(team_id.map(TeamId::get))
            .bind(value)
            .execute(&mut **transaction)
            .await?;
    }
    Ok(())
}
