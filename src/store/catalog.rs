//! Challenge children used by ctfcli (tags, topics and their links, files) and scoreboard
//! brackets. Lists come back in creation order (ctfcli compares them in order). Uploading to
//! an existing file location replaces that row (CTFd behaviour), atomically via `ON CONFLICT`.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};
use crate::domain::{BracketId, ChallengeId};

/// A tag (public label) of a challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tag {
    /// Row id.
    pub id: i64,
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// The label.
    pub value: String,
}

/// A topic linked to a challenge (`id` is the link row, as in the admin API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TopicLink {
    /// Link row id.
    pub id: i64,
    /// The challenge.
    pub challenge_id: ChallengeId,
    /// The topic.
    pub topic_id: i64,
    /// The topic text.
    pub value: String,
}

/// A stored file's metadata (the bytes live in the files directory).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredFile {
    /// Row id.
    pub id: i64,
    /// `standard`, `challenge`, `page` or `solution`.
    pub kind: String,
    /// `<dir>/<name>`, unique.
    pub location: String,
    /// Lowercase hex SHA-1 of the content.
    pub sha1sum: Option<String>,
    /// Size in bytes.
    pub size: Option<i64>,
    /// Owning challenge, for challenge files.
    pub challenge_id: Option<ChallengeId>,
}

/// A scoreboard bracket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Bracket {
    /// Bracket id.
    pub id: BracketId,
    /// Display name.
    pub name: String,
    /// Free text.
    pub description: String,
    /// `users` or `teams`.
    pub kind: String,
}

fn file_of(row: &AnyRow) -> Result<StoredFile, sqlx::Error> {
    Ok(StoredFile {
        id: row.try_get("id")?,
        kind: row.try_get("type")?,
        location: row.try_get("location")?,
        sha1sum: row.try_get("sha1sum")?,
        size: row.try_get("size")?,
        challenge_id: row.try_get::<Option<i64>, _>("challenge_id")?.map(ChallengeId),
    })
}

impl Store {
    /// Adds a tag to a challenge.
    pub async fn create_tag(&self, challenge_id: ChallengeId, value: &str) -> Result<Tag, StoreError> {
        let id: i64 = sqlx::query_scalar("INSERT INTO tags (challenge_id, value) VALUES ($1, $2) RETURNING id")
            .bind(challenge_id.get())
            .bind(value)
            .fetch_one(&self.pool)
            .await?;
        Ok(Tag { id, challenge_id, value: value.to_owned() })
    }

    /// The tags of one challenge, or of all when `None`, in creation order.
    pub async fn list_tags(&self, challenge_id: Option<ChallengeId>) -> Result<Vec<Tag>, StoreError> {
        let rows =
            sqlx::query("SELECT id, challenge_id, value FROM tags WHERE ($1 IS NULL OR challenge_id = $1) ORDER BY id")
                .bind(challenge_id.map(ChallengeId::get))
                .fetch_all(&self.pool)
                .await?;
        rows.iter()
            .map(|row| {
                Ok(Tag {
                    id: row.try_get("id")?,
                    challenge_id: ChallengeId(row.try_get("challenge_id")?),
                    value: row.try_get("value")?,
                })
            })
            .collect()
    }

    /// Deletes a tag; false when it did not exist.
    pub async fn delete_tag(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM tags WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Finds or creates the topic `value` and links it to the challenge (one transaction, so
    /// concurrent links of a new topic create it once).
    pub async fn link_topic(&self, challenge_id: ChallengeId, value: &str) -> Result<TopicLink, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("INSERT INTO topics (value) VALUES ($1) ON CONFLICT (value) DO NOTHING")
            .bind(value)
            .execute(&mut *transaction)
            .await?;
        let topic_id: i64 = sqlx::query_scalar("SELECT id FROM topics WHERE value = $1")
            .bind(value)
            .fetch_one(&mut *transaction)
            .await?;
        let id: i64 =
            sqlx::query_scalar("INSERT INTO challenge_topics (challenge_id, topic_id) VALUES ($1, $2) RETURNING id")
                .bind(challenge_id.get())
                .bind(topic_id)
                .fetch_one(&mut *transaction)
                .await?;
        transaction.commit().await?;
        Ok(TopicLink { id, challenge_id, topic_id, value: value.to_owned() })
    }

    /// The topic links of a challenge in creation order.
    pub async fn list_topic_links(&self, challenge_id: ChallengeId) -> Result<Vec<TopicLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT challenge_topics.id, challenge_topics.topic_id, topics.value FROM challenge_topics \
             JOIN topics ON topics.id = challenge_topics.topic_id WHERE challenge_topics.challenge_id = $1 \
             ORDER BY challenge_topics.id",
        )
        .bind(challenge_id.get())
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(TopicLink {
                    id: row.try_get("id")?,
                    challenge_id,
                    topic_id: row.try_get("topic_id")?,
                    value: row.try_get("value")?,
                })
            })
            .collect()
    }

    /// Deletes a challenge–topic link; false when it did not exist.
    pub async fn unlink_topic(&self, link_id: i64) -> Result<bool, StoreError> {
        let result =
            sqlx::query("DELETE FROM challenge_topics WHERE id = $1").bind(link_id).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }

    /// Records a file at `location`, replacing the row already there.
    pub async fn upsert_file(
        &self,
        kind: &str,
        location: &str,
        sha1sum: Option<&str>,
        size: Option<i64>,
        challenge_id: Option<ChallengeId>,
    ) -> Result<StoredFile, StoreError> {
        let row = sqlx::query(
            "INSERT INTO files (type, location, sha1sum, size, challenge_id, created) VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (location) DO UPDATE SET type = excluded.type, sha1sum = excluded.sha1sum, \
             size = excluded.size, challenge_id = excluded.challenge_id \
             RETURNING id, type, location, sha1sum, size, challenge_id",
        )
        .bind(kind)
        .bind(location)
        .bind(sha1sum)
        .bind(size)
        .bind(challenge_id.map(ChallengeId::get))
        .bind(super::now())
        .fetch_one(&self.pool)
        .await?;
        Ok(file_of(&row)?)
    }

    /// Files of one type and/or challenge, in creation order.
    pub async fn list_files(
        &self,
        kind: Option<&str>,
        challenge_id: Option<ChallengeId>,
    ) -> Result<Vec<StoredFile>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, type, location, sha1sum, size, challenge_id FROM files WHERE ($1 IS NULL OR type = $1) \
             AND ($2 IS NULL OR challenge_id = $2) ORDER BY id",
        )
        .bind(kind)
        .bind(challenge_id.map(ChallengeId::get))
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(file_of).collect::<Result<_, _>>()?)
    }

    /// Finds a file by location.
    pub async fn get_file_by_location(&self, location: &str) -> Result<Option<StoredFile>, StoreError> {
        let row = sqlx::query("SELECT id, type, location, sha1sum, size, challenge_id FROM files WHERE location = $1")
            .bind(location)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(file_of).transpose()?)
    }

    /// Deletes a file row; false when it did not exist.
    pub async fn delete_file(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM files WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Creates a bracket (`kind` is `users` or `teams`).
    pub async fn create_bracket(&self, name: &str, description: &str, kind: &str) -> Result<Bracket, StoreError> {
        let id: i64 =
            sqlx::query_scalar("INSERT INTO brackets (name, description, type) VALUES ($1, $2, $3) RETURNING id")
                .bind(name)
                .bind(description)
                .bind(kind)
                .fetch_one(&self.pool)
                .await?;
        Ok(Bracket {
            id: BracketId(id),
            name: name.to_owned(),
            description: description.to_owned(),
            kind: kind.to_owned(),
        })
    }

    /// Every bracket by ascending id.
    pub async fn list_brackets(&self) -> Result<Vec<Bracket>, StoreError> {
        let rows =
            sqlx::query("SELECT id, name, description, type FROM brackets ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter()
            .map(|row| {
                Ok(Bracket {
                    id: BracketId(row.try_get("id")?),
                    name: row.try_get("name")?,
                    description: row.try_get("description")?,
                    kind: row.try_get("type")?,
                })
            })
            .collect()
    }

    /// Deletes a bracket (members keep playing without one); false when it did not exist.
    pub async fn delete_bracket(&self, id: BracketId) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM brackets WHERE id = $1").bind(id.get()).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }
}
