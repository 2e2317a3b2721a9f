//! Smaller records: awards, notifications, tickets, challenge image versions and deploy history.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::{ChallengeId, TeamId, UserId};

/// A manual award (negative = penalty).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewAward {
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// The team (`None`: none, or users mode).
    pub team_id: Option<TeamId>,
    /// Award title.
    pub name: String,
    /// Free text.
    pub description: String,
    /// Points (negative for penalties and hint costs).
    pub value: i64,
    /// Category.
    pub category: Option<String>,
    /// Icon name.
    pub icon: Option<String>,
}

/// A stored award.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Award {
    /// Row id.
    pub id: i64,
    /// The award as created.
    pub award: NewAward,
    /// When it happened (Unix seconds).
    pub date: i64,
}

/// A new announcement (to everyone, or to one user or team).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewNotification {
    /// Short title.
    pub title: String,
    /// Body text.
    pub content: String,
    /// `alert`, `toast` or `background`.
    pub kind: String,
    /// Play a sound in the portal.
    pub sound: bool,
    /// The user concerned.
    pub user_id: Option<UserId>,
    /// The team (`None`: none, or users mode).
    pub team_id: Option<TeamId>,
}

/// A stored announcement.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// Row id.
    pub id: i64,
    /// The announcement as created.
    pub notification: NewNotification,
    /// When it happened (Unix seconds).
    pub date: i64,
}

/// A new support ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewTicket {
    /// Account that authored it.
    pub author_id: UserId,
    /// Short title.
    pub title: String,
    /// Free text (`Question`, `Error`, `Inform`).
    pub kind: String,
    /// Free text.
    pub description: String,
}

/// A stored ticket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// Row id.
    pub id: i64,
    /// The ticket as opened.
    pub ticket: NewTicket,
    /// `open`, `answered`, `closed`, …
    pub status: String,
    /// Staff member who replied.
    pub replier_id: Option<UserId>,
    /// Staff reply.
    pub replier_message: Option<String>,
    /// Creation time (Unix seconds).
    pub created: i64,
    /// Last change (Unix seconds).
    pub updated: i64,
}

/// An image built for a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeVersion {
    /// Row id.
    pub id: i64,
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// Container image reference.
    pub image: String,
    /// Port the image listens on.
    pub exposed_port: Option<i64>,
    /// Account that created it.
    pub created_by: Option<UserId>,
    /// Creation time (Unix seconds).
    pub created: i64,
}

/// One step of a challenge's build and deploy history.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeployRecord {
    /// Row id.
    pub id: i64,
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// Image version concerned.
    pub version_id: Option<i64>,
    /// Status text.
    pub status: String,
    /// Build or start workflow name.
    pub workflow_name: Option<String>,
    /// Details (log excerpt, error).
    pub detail: Option<String>,
    /// When it happened (Unix seconds).
    pub date: i64,
}

fn user_of(row: &AnyRow, column: &str) -> Result<Option<UserId>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(UserId))
}

fn team_of(row: &AnyRow, column: &str) -> Result<Option<TeamId>, sqlx::Error> {
    Ok(row.try_get::<Option<i64>, _>(column)?.map(TeamId))
}

fn award_of(row: &AnyRow) -> Result<Award, sqlx::Error> {
    Ok(Award {
        id: row.try_get("id")?,
        award: NewAward {
            user_id: user_of(row, "user_id")?,
            team_id: team_of(row, "team_id")?,
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            value: row.try_get("value")?,
            category: row.try_get("category")?,
            icon: row.try_get("icon")?,
        },
        date: row.try_get("date")?,
    })
}

fn ticket_of(row: &AnyRow) -> Result<Ticket, sqlx::Error> {
    Ok(Ticket {
        id: row.try_get("id")?,
        ticket: NewTicket {
            author_id: UserId(row.try_get("author_id")?),
            title: row.try_get("title")?,
            kind: row.try_get("type")?,
            description: row.try_get("description")?,
        },
        status: row.try_get("status")?,
        replier_id: user_of(row, "replier_id")?,
        replier_message: row.try_get("replier_message")?,
        created: row.try_get("created")?,
        updated: row.try_get("updated")?,
    })
}

const AWARD_COLUMNS: &str = "id, user_id, team_id, name, description, value, category, icon, date";
const TICKET_COLUMNS: &str =
    "id, author_id, title, type, description, status, replier_id, replier_message, created, updated";

impl Store {
    /// Creates an award.
    pub async fn create_award(&self, award: &NewAward) -> Result<Award, StoreError> {
        let sql = format!(
            "INSERT INTO awards (user_id, team_id, name, description, value, category, icon, date) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) RETURNING {AWARD_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(award.user_id.map(UserId::get))
            .bind(award.team_id.map(TeamId::get))
            .bind(&award.name)
            .bind(&award.description)
            .bind(award.value)
            .bind(&award.category)
            .bind(&award.icon)
            .bind(super::now())
            .fetch_one(&self.pool)
            .await?;
        Ok(award_of(&row)?)
    }

    /// Awards, oldest first, optionally of one team or user.
    pub async fn list_awards(
        &self,
        team_id: Option<TeamId>,
        user_id: Option<UserId>,
    ) -> Result<Vec<Award>, StoreError> {
        let sql = format!(
            "SELECT {AWARD_COLUMNS} FROM awards WHERE ($1 IS NULL OR team_id = $1) AND ($2 IS NULL OR user_id = $2) ORDER BY id"
        );
        let rows = sqlx::query(&sql)
            .bind(team_id.map(TeamId::get))
            .bind(user_id.map(UserId::get))
            .fetch_all(&self.pool)
            .await?;
        Ok(rows.iter().map(award_of).collect::<Result<_, _>>()?)
    }

    /// Deletes an award; false when it did not exist.
    pub async fn delete_award(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM awards WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Creates an announcement and returns its id.
    pub async fn create_notification(&self, notification: &NewNotification) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO notifications (title, content, type, sound, user_id, team_id, date) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING id",
        )
        .bind(&notification.title)
        .bind(&notification.content)
        .bind(&notification.kind)
        .bind(i64::from(notification.sound))
        .bind(notification.user_id.map(UserId::get))
        .bind(notification.team_id.map(TeamId::get))
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?)
    }

    /// Announcements with an id above `since_id`, oldest first.
    pub async fn list_notifications(&self, since_id: i64) -> Result<Vec<Notification>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, title, content, type, sound, user_id, team_id, date FROM notifications WHERE id > $1 ORDER BY id",
        )
        .bind(since_id)
        .fetch_all(&self.pool)
        .await?;
        let mut notifications = Vec::with_capacity(rows.len());
        for row in &rows {
            notifications.push(Notification {
                id: row.try_get("id")?,
                notification: NewNotification {
                    title: row.try_get("title")?,
                    content: row.try_get("content")?,
                    kind: row.try_get("type")?,
                    sound: super::sql::bool_of(row, "sound")?,
                    user_id: user_of(row, "user_id")?,
                    team_id: team_of(row, "team_id")?,
                },
                date: row.try_get("date")?,
            });
        }
        Ok(notifications)
    }

    /// Deletes an announcement; false when it did not exist.
    pub async fn delete_notification(&self, id: i64) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM notifications WHERE id = $1").bind(id).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Opens a ticket.
    pub async fn create_ticket(&self, ticket: &NewTicket) -> Result<Ticket, StoreError> {
        let sql = format!(
            "INSERT INTO tickets (author_id, title, type, description, created, updated) \
             VALUES ($1, $2, $3, $4, $5, $5) RETURNING {TICKET_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(ticket.author_id.get())
            .bind(&ticket.title)
            .bind(&ticket.kind)
            .bind(&ticket.description)
            .bind(super::now())
            .fetch_one(&self.pool)
            .await?;
        Ok(ticket_of(&row)?)
    }

    /// Reads a ticket; `NotFound` when it does not exist.
    pub async fn get_ticket(&self, id: i64) -> Result<Ticket, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE id = $1");
        Ok(ticket_of(&sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?)?)
    }

    /// Tickets, oldest first, of one author or of everyone.
    pub async fn list_tickets(&self, author_id: Option<UserId>) -> Result<Vec<Ticket>, StoreError> {
        let sql = format!("SELECT {TICKET_COLUMNS} FROM tickets WHERE ($1 IS NULL OR author_id = $1) ORDER BY id");
        let rows = sqlx::query(&sql).bind(author_id.map(UserId::get)).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(ticket_of).collect::<Result<_, _>>()?)
    }

    /// Records a staff reply and the new status; false when the ticket does not exist.
    pub async fn reply_ticket(
        &self,
        id: i64,
        replier_id: UserId,
        message: &str,
        status: &str,
    ) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "UPDATE tickets SET replier_id = $2, replier_message = $3, status = $4, updated = $5 WHERE id = $1",
        )
        .bind(id)
        .bind(replier_id.get())
        .bind(message)
        .bind(status)
        .bind(super::now())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Deletes a ticket of `author_id` only while it is open and unanswered (atomically);
    /// false otherwise.
    pub async fn delete_open_ticket(&self, id: i64, author_id: UserId) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "DELETE FROM tickets WHERE id = $1 AND author_id = $2 AND lower(status) = 'open' \
             AND (replier_message IS NULL OR replier_message = '')",
        )
        .bind(id)
        .bind(author_id.get())
        .execute(&self.pool)
        .await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records an image built for a challenge.
    pub async fn add_challenge_version(
        &self,
        challenge_id: ChallengeId,
        image: &str,
        exposed_port: Option<i64>,
        created_by: Option<UserId>,
    ) -> Result<ChallengeVersion, StoreError> {
        let row = sqlx::query(
            "INSERT INTO challenge_versions (challenge_id, image, exposed_port, created_by, created) \
             VALUES ($1, $2, $3, $4, $5) RETURNING id, challenge_id, image, exposed_port, created_by, created",
        )
        .bind(challenge_id.get())
        .bind(image)
        .bind(exposed_port)
        .bind(created_by.map(UserId::get))
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?;
        Ok(version_of(&row)?)
    }

    /// The image versions of a challenge, newest first.
    pub async fn list_challenge_versions(
        &self,
        challenge_id: ChallengeId,
    ) -> Result<Vec<ChallengeVersion>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, challenge_id, image, exposed_port, created_by, created FROM challenge_versions \
             WHERE challenge_id = $1 ORDER BY id DESC",
        )
        .bind(challenge_id.get())
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(version_of).collect::<Result<_, _>>()?)
    }

    /// Appends a build or deploy step to a challenge's history; returns its id.
    pub async fn append_deploy_history(
        &self,
        challenge_id: ChallengeId,
        version_id: Option<i64>,
        status: &str,
        workflow_name: Option<&str>,
        detail: Option<&str>,
    ) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar(
            "INSERT INTO deploy_history (challenge_id, version_id, status, workflow_name, detail, date) \
             VALUES ($1, $2, $3, $4, $5, $6) RETURNING id",
        )
        .bind(challenge_id.get())
        .bind(version_id)
        .bind(status)
        .bind(workflow_name)
        .bind(detail)
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?)
    }

    /// The build and deploy history of a challenge, newest first.
    pub async fn list_deploy_history(&self, challenge_id: ChallengeId) -> Result<Vec<DeployRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, challenge_id, version_id, status, workflow_name, detail, date FROM deploy_history \
             WHERE challenge_id = $1 ORDER BY id DESC",
        )
        .bind(challenge_id.get())
        .fetch_all(&self.pool)
        .await?;
        let mut records = Vec::with_capacity(rows.len());
        for row in &rows {
            records.push(DeployRecord {
                id: row.try_get("id")?,
                challenge_id: ChallengeId(row.try_get("challenge_id")?),
                version_id: row.try_get("version_id")?,
                status: row.try_get("status")?,
                workflow_name: row.try_get("workflow_name")?,
                detail: row.try_get("detail")?,
                date: row.try_get("date")?,
            });
        }
        Ok(records)
    }
}

fn version_of(row: &AnyRow) -> Result<ChallengeVersion, sqlx::Error> {
    Ok(ChallengeVersion {
        id: row.try_get("id")?,
        challenge_id: ChallengeId(row.try_get("challenge_id")?),
        image: row.try_get("image")?,
        exposed_port: row.try_get("exposed_port")?,
        created_by: user_of(row, "created_by")?,
        created: row.try_get("created")?,
    })
}
