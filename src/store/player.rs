//! Reads and writes of the contestant API that span several tables: the per-request account
//! snapshot, what an account solved or unlocked, team self-service and tickets with
//! near-duplicate detection.
//!
//! Atomicity: `create_team_for` and `join_team_for` lock the user row (PostgreSQL) or take the
//! write lock (SQLite) so a player can never end up in two teams; `create_ticket_unless_similar`
//! locks the author row while it compares with the author's earlier tickets, so of N identical
//! tickets sent at once exactly one is created.

use sqlx::Row;

use super::sql::bool_of;
use super::submissions::{Account, account_condition};
use super::{NewTeam, NewTicket, Store, StoreError, Team, Ticket};
use crate::domain::{BracketId, ChallengeId, HintId, TeamId, UserId};

/// What the per-request session check needs about an account, read in one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountSnapshot {
    /// The user.
    pub user_id: UserId,
    /// Login name.
    pub name: String,
    /// Contact e-mail address.
    pub email: Option<String>,
    /// `user`, `admin`, `jury` or `challenge_writer`.
    pub role: String,
    /// Approved by an organizer.
    pub verified: bool,
    /// Left out of public lists and the scoreboard.
    pub hidden: bool,
    /// Refused everywhere.
    pub banned: bool,
    /// The user's own bracket (users mode).
    pub bracket_id: Option<BracketId>,
    /// The user's team, if any.
    pub team: Option<TeamSnapshot>,
    /// The token id of the active session, with its expiry (Unix seconds).
    pub session: Option<(String, i64)>,
}

/// The part of a team the session check and the handlers need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TeamSnapshot {
    /// The team.
    pub id: TeamId,
    /// Team name.
    pub name: String,
    /// Banned teams cannot play.
    pub banned: bool,
    /// Hidden from the scoreboard.
    pub hidden: bool,
    /// The captain, if one is set.
    pub captain_id: Option<UserId>,
    /// Scoreboard bracket.
    pub bracket_id: Option<BracketId>,
}

/// What happened to a self-service team request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TeamChange {
    /// Done; the team as it is now.
    Done(Box<Team>),
    /// The user already belongs to a team.
    AlreadyInTeam,
    /// The team is at its size limit.
    TeamFull,
}

/// The result of [`Store::create_ticket_unless_similar`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TicketOutcome {
    /// The ticket was created.
    Created(Ticket),
    /// An earlier ticket of the author is too similar; nothing was written.
    Similar,
}

impl Store {
    /// The account snapshot of `user_id`, or `None` when the user does not exist.
    pub async fn account_snapshot(&self, user_id: UserId) -> Result<Option<AccountSnapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT users.id, users.name, users.email, users.type, users.verified, users.hidden, users.banned, \
             users.bracket_id, users.team_id, teams.name AS team_name, teams.banned AS team_banned, \
             teams.hidden AS team_hidden, teams.captain_id, teams.bracket_id AS team_bracket_id, \
             sessions.token_id, sessions.expires_at \
             FROM users LEFT JOIN teams ON teams.id = users.team_id \
             LEFT JOIN sessions ON sessions.user_id = users.id AND sessions.revoked_at IS NULL \
             WHERE users.id = $1",
        )
        .bind(user_id.get())
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let team_id: Option<i64> = row.try_get("team_id")?;
        let team_name: Option<String> = row.try_get("team_name")?;
        let team = match (team_id, team_name) {
            (Some(id), Some(name)) => Some(TeamSnapshot {
                id: TeamId(id),
                name,
                banned: bool_of(&row, "team_banned")?,
                hidden: bool_of(&row, "team_hidden")?,
                captain_id: row.try_get::<Option<i64>, _>("captain_id")?.map(UserId),
                bracket_id: row.try_get::<Option<i64>, _>("team_bracket_id")?.map(BracketId),
            }),
            _ => None,
        };
        let token_id: Option<String> = row.try_get("token_id")?;
        let expires_at: Option<i64> = row.try_get("expires_at")?;
        Ok(Some(AccountSnapshot {
            user_id: UserId(row.try_get("id")?),
            name: row.try_get("name")?,
            email: row.try_get("email")?,
            role: row.try_get("type")?,
            verified: bool_of(&row, "verified")?,
            hidden: bool_of(&row, "hidden")?,
            banned: bool_of(&row, "banned")?,
            bracket_id: row.try_get::<Option<i64>, _>("bracket_id")?.map(BracketId),
            team,
            session: token_id.zip(expires_at),
        }))
    }

    /// The challenges the account has solved.
    pub async fn solved_challenge_ids(&self, account: Account) -> Result<Vec<ChallengeId>, StoreError> {
        let sql = format!("SELECT solves.challenge_id FROM solves WHERE {}", account_condition("solves", 1, 2));
        let ids: Vec<i64> = sqlx::query_scalar(&sql)
            .bind(account.user_id.get())
            .bind(account.team_id.map(TeamId::get))
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(ChallengeId).collect())
    }

    /// The account's submissions for one challenge, counted by kind: `(correct, incorrect)`.
    pub async fn attempt_counts(&self, challenge_id: ChallengeId, account: Account) -> Result<(i64, i64), StoreError> {
        let sql = format!(
            "SELECT CAST(COALESCE(SUM(CASE WHEN submissions.type = 'correct' THEN 1 ELSE 0 END), 0) AS BIGINT) AS correct, \
             CAST(COALESCE(SUM(CASE WHEN submissions.type = 'incorrect' THEN 1 ELSE 0 END), 0) AS BIGINT) AS incorrect \
             FROM submissions WHERE submissions.challenge_id = $1 AND {}",
            account_condition("submissions", 2, 3)
        );
        let row = sqlx::query(&sql)
            .bind(challenge_id.get())
            .bind(account.user_id.get())
            .bind(account.team_id.map(TeamId::get))
            .fetch_one(&self.pool)
            .await?;
        Ok((row.try_get("correct")?, row.try_get("incorrect")?))
    }

    /// The hints the account has unlocked.
    pub async fn unlocked_hint_ids(&self, account: Account) -> Result<Vec<HintId>, StoreError> {
        let sql = format!("SELECT unlocks.hint_id FROM unlocks WHERE {}", account_condition("unlocks", 1, 2));
        let ids: Vec<i64> = sqlx::query_scalar(&sql)
            .bind(account.user_id.get())
            .bind(account.team_id.map(TeamId::get))
            .fetch_all(&self.pool)
            .await?;
        Ok(ids.into_iter().map(HintId).collect())
    }

    /// Creates a team and makes `user_id` its first member and captain, in one transaction.
    /// `Conflict` on a taken team name or invite code.
    pub async fn create_team_for(&self, user_id: UserId, team: &NewTeam) -> Result<TeamChange, StoreError> {
        let mut transaction = self.begin_write().await?;
        if !self.lock_row(&mut transaction, "users", user_id.get()).await? {
            return Err(StoreError::NotFound);
        }
        let current: Option<i64> = sqlx::query_scalar("SELECT team_id FROM users WHERE id = $1")
            .bind(user_id.get())
            .fetch_one(&mut *transaction)
            .await?;
        if current.is_some() {
            return Ok(TeamChange::AlreadyInTeam);
        }
        let team_id: i64 = sqlx::query_scalar(
            "INSERT INTO teams (name, email, password, invite_code, bracket_id, hidden, banned, captain_id, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING id",
        )
        .bind(&team.name)
        .bind(&team.email)
        .bind(&team.password_hash)
        .bind(&team.invite_code)
        .bind(team.bracket_id.map(BracketId::get))
        .bind(i64::from(team.hidden))
        .bind(i64::from(team.banned))
        .bind(user_id.get())
        .bind(super::now())
        .fetch_one(&mut *transaction)
        .await?;
        sqlx::query("UPDATE users SET team_id = $1 WHERE id = $2")
            .bind(team_id)
            .bind(user_id.get())
            .execute(&mut *transaction)
            .await?;
        transaction.commit().await?;
        Ok(TeamChange::Done(Box::new(self.get_team(TeamId(team_id)).await?)))
    }

    /// Adds `user_id` to `team_id` within the size limit (`None` = unlimited); a team without a
    /// captain gets this member as captain. Atomic like [`Store::add_team_member`].
    pub async fn join_team_for(
        &self,
        user_id: UserId,
        team_id: TeamId,
        max_members: Option<i64>,
    ) -> Result<TeamChange, StoreError> {
        match self.add_team_member(team_id, user_id, max_members).await? {
            super::JoinOutcome::Joined => {}
            super::JoinOutcome::AlreadyInTeam => return Ok(TeamChange::AlreadyInTeam),
            super::JoinOutcome::TeamFull => return Ok(TeamChange::TeamFull),
        }
        sqlx::query(
            "UPDATE teams SET captain_id = $2 WHERE id = $1 AND captain_id IS NULL \
             AND $2 IN (SELECT id FROM users WHERE team_id = $1)",
        )
        .bind(team_id.get())
        .bind(user_id.get())
        .execute(&self.pool)
        .await?;
        Ok(TeamChange::Done(Box::new(self.get_team(team_id).await?)))
    }

    /// Counts the solves and awards a user holds within a team (self-service leave refuses a
    /// member who already scored for the team).
    pub async fn member_record_count(&self, user_id: UserId, team_id: TeamId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT CAST((SELECT COUNT(*) FROM solves WHERE user_id = $1 AND team_id = $2) + \
             (SELECT COUNT(*) FROM awards WHERE user_id = $1 AND team_id = $2) AS BIGINT)",
        )
        .bind(user_id.get())
        .bind(team_id.get())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Opens a ticket unless an earlier ticket of the same author has a description at least
    /// `threshold` similar (`similarity` in `[0, 1]`); the comparison and the insert happen
    /// under the author's row lock, so concurrent duplicates create exactly one ticket.
    pub async fn create_ticket_unless_similar(
        &self,
        ticket: &NewTicket,
        threshold: f64,
        similarity: fn(&str, &str) -> f64,
    ) -> Result<TicketOutcome, StoreError> {
        let mut transaction = self.begin_write().await?;
        if !self.lock_row(&mut transaction, "users", ticket.author_id.get()).await? {
            return Err(StoreError::NotFound);
        }
        let earlier: Vec<String> = sqlx::query_scalar("SELECT description FROM tickets WHERE author_id = $1")
            .bind(ticket.author_id.get())
            .fetch_all(&mut *transaction)
            .await?;
        if earlier.iter().any(|description| similarity(description, &ticket.description) >= threshold) {
            return Ok(TicketOutcome::Similar);
        }
        let now = super::now();
        let id: i64 = sqlx::query_scalar(
            "INSERT INTO tickets (author_id, title, type, description, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING id",
        )
        .bind(ticket.author_id.get())
        .bind(&ticket.title)
        .bind(&ticket.kind)
        .bind(&ticket.description)
        .bind(now)
        .fetch_one(&mut *transaction)
        .await?;
        transaction.commit().await?;
        Ok(TicketOutcome::Created(self.get_ticket(id).await?))
    }

    /// Recomputes the value of every decaying challenge (after a solver was hidden, banned or
    /// deleted); returns how many challenges were recomputed.
    pub async fn recompute_decaying_values(&self) -> Result<usize, StoreError> {
        let ids: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM challenges WHERE initial IS NOT NULL AND function IN ('linear', 'logarithmic') ORDER BY id",
        )
        .fetch_all(&self.pool)
        .await?;
        for id in &ids {
            self.recompute_challenge_value(ChallengeId(*id)).await?;
        }
        Ok(ids.len())
    }
}
