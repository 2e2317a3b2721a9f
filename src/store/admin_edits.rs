//! Single-row reads and edits the admin API needs beyond the contestant flows: flags, tags,
//! topics, hint edits, file rows with their page or solution, brackets, awards and
//! notifications.
//!
//! Hint edits keep admin-api D7: when a hint's content changes to the content of a deleted
//! hint of the same challenge (ctfcli creates chained hints with empty content, then patches
//! the content in), the new hint takes over that deleted hint's unlocks, as `create_hint` does.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Award, Bracket, Flag, Hint, NewAward, NewFlag, NewNotification, Notification, StoredFile, Tag};
use super::{Dialect, Store, StoreError};
use crate::domain::{BracketId, ChallengeId, HintId, TeamId, UserId};

/// Why a locked file change failed.
#[derive(Debug, thiserror::Error)]
pub enum FileCommitError {
    /// Writing or removing the bytes failed (nothing was recorded).
    #[error("file storage: {0}")]
    Io(#[from] std::io::Error),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A topic (a label shared by challenges).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Topic {
    /// Row id.
    pub id: i64,
    /// The text, unique.
    pub value: String,
}

/// A file row with what it belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRecord {
    /// The common metadata.
    pub file: StoredFile,
    /// Owning page, for page files.
    pub page_id: Option<i64>,
    /// Owning solution, for solution files.
    pub solution_id: Option<i64>,
}

/// What a new file row belongs to.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileOwner {
    /// Owning challenge.
    pub challenge_id: Option<ChallengeId>,
    /// Owning page.
    pub page_id: Option<i64>,
    /// Owning solution.
    pub solution_id: Option<i64>,
}

const FILE_COLUMNS: &str = "id, type, location, sha1sum, size, challenge_id, page_id, solution_id";

fn file_record_of(row: &AnyRow) -> Result<FileRecord, sqlx::Error> {
    Ok(FileRecord {
        file: StoredFile {
            id: row.try_get("id")?,
            kind: row.try_get("type")?,
            location: row.try_get("location")?,
            sha1sum: row.try_get("sha1sum")?,
            size: row.try_get("size")?,
            challenge_id: row.try_get::<Option<i64>, _>("challenge_id")?.map(ChallengeId),
        },
        page_id: row.try_get("page_id")?,
        solution_id: row.try_get("solution_id")?,
    })
}

fn flag_of(row: &AnyRow) -> Result<Flag, sqlx::Error> {
    Ok(Flag {
        id: row.try_get("id")?,
        flag: NewFlag {
            challenge_id: ChallengeId(row.try_get("challenge_id")?),
            kind: row.try_get("type")?,
            content: row.try_get("content")?,
            data: row.try_get("data")?,
        },
    })
}

fn notification_of(row: &AnyRow) -> Result<Notification, sqlx::Error> {
    Ok(Notification {
        id: row.try_get("id")?,
        notification: NewNotification {
            title: row.try_get("title")?,
            content: row.try_get("content")?,
            kind: row.try_get("type")?,
            sound: super::sql::bool_of(row, "sound")?,
            user_id: row.try_get::<Option<i64>, _>("user_id")?.map(UserId),
            team_id: row.try_get::<Option<i64>, _>("team_id")?.map(TeamId),
        },
        date: row.try_get("date")?,
    })
}

impl Store {
    /// Reads a flag; `NotFound` when it does not exist.
    pub async fn get_flag(&self, id: i64) -> Result<Flag, StoreError> {
        let row = sqlx::query("SELECT id, challenge_id, type, content, data FROM flags WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(flag_of(&row)?)
    }

    /// Replaces a flag's type, content and data; `NotFound` when it does not exist.
    pub async fn update_flag(&self, id: i64, flag: &NewFlag) -> Result<Flag, StoreError> {
        let row = sqlx::query(
            "UPDATE flags SET challenge_id = $2, type = $3, content = $4, data = $5 WHERE id = $1 \
             RETURNING id, challenge_id, type, content, data",
        )
        .bind(id)
        .bind(flag.challenge_id.get())
        .bind(&flag.kind)
        .bind(&flag.content)
        .bind(&flag.data)
        .fetch_optional(&self.pool)
        .await?;
        Ok(flag_of(&row.ok_or(StoreError::NotFound)?)?)
    }

    /// Reads a tag; `NotFound` when it does not exist.
    pub async fn get_tag(&self, id: i64) -> Result<Tag, StoreError> {
        let row = sqlx::query("SELECT id, challenge_id, value FROM tags WHERE id = $1")
            .bind(id)
            .fetch_one(&self.pool)
            .await?;
        Ok(Tag {
            id: row.try_get("id")?,
            challenge_id: ChallengeId(row.try_get("challenge_id")?),
            value: row.try_get("value")?,
        })
    }

    /// Changes a tag's text; `NotFound` when it does not exist.
    pub async fn update_tag(&self, id: i64, value: &str) -> Result<Tag, StoreError> {
        let result =
            sqlx::query("UPDATE tags SET value = $2 WHERE id = $1").bind(id).bind(value).execute(&self.pool).await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_tag(id).await
    }

    /// Every topic by ascending id.
    pub async fn list_topics(&self) -> Result<Vec<Topic>, StoreError> {
        let rows = sqlx::query("SELECT id, value FROM topics ORDER BY id").fetch_all(&self.pool).await?;
        rows.iter().map(|row| Ok(Topic { id: row.try_get("id")?, value: row.try_get("value")? })).collect()
    }

    /// Reads a topic; `NotFound` when it does not exist.
    pub async fn get_topic(&self, id: i64) -> Result<Topic, StoreError> {
        let row = sqlx::query("SELECT id, value FROM topics WHERE id = $1").bind(id).fetch_one(&self.pool).await?;
        Ok(Topic { id: row.try_get("id")?, value: row.try_get("value")? })
    }

    /// Links an existing topic to a challenge; `NotFound` when the topic does not exist.
    pub async fn link_topic_id(
        &self,
        challenge_id: ChallengeId,
        topic_id: i64,
    ) -> Result<super::TopicLink, StoreError> {
        let topic = self.get_topic(topic_id).await?;
        self.link_topic(challenge_id, &topic.value).await
    }

    /// Deletes a topic and its links; false when it did not exist.
    pub async fn delete_topic(&self, id: i64) -> Result<bool, StoreError> {
        let mut transaction = self.begin_write().await?;
        sqlx::query("DELETE FROM challenge_topics WHERE topic_id = $1").bind(id).execute(&mut *transaction).await?;
        let deleted = sqlx::query("DELETE FROM topics WHERE id = $1").bind(id).execute(&mut *transaction).await?;
        transaction.commit().await?;
        Ok(deleted.rows_affected() == 1)
    }

    /// Every challenge–topic link by ascending id.
    pub async fn list_all_topic_links(&self) -> Result<Vec<super::TopicLink>, StoreError> {
        let rows = sqlx::query(
            "SELECT challenge_topics.id, challenge_topics.challenge_id, challenge_topics.topic_id, topics.value \
             FROM challenge_topics JOIN topics ON topics.id = challenge_topics.topic_id ORDER BY challenge_topics.id",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(super::TopicLink {
                    id: row.try_get("id")?,
                    challenge_id: ChallengeId(row.try_get("challenge_id")?),
                    topic_id: row.try_get("topic_id")?,
                    value: row.try_get("value")?,
                })
            })
            .collect()
    }

    /// Replaces a live hint's title, content, cost and requirements (see the module docs for
    /// unlocks); `NotFound` when it does not exist or was deleted.
    pub async fn update_hint(&self, id: HintId, hint: &super::NewHint) -> Result<Hint, StoreError> {
        let mut transaction = self.begin_write().await?;
        let updated = sqlx::query(
            "UPDATE hints SET title = $2, content = $3, cost = $4, requirements = $5 WHERE id = $1 AND deleted_at IS NULL",
        )
        .bind(id.get())
        .bind(&hint.title)
        .bind(&hint.content)
        .bind(hint.cost)
        .bind(&hint.requirements)
        .execute(&mut *transaction)
        .await?;
        if updated.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        let challenge_id: i64 = sqlx::query_scalar("SELECT challenge_id FROM hints WHERE id = $1")
            .bind(id.get())
            .fetch_one(&mut *transaction)
            .await?;
        let predecessors: Vec<i64> = sqlx::query_scalar(
            "SELECT id FROM hints WHERE challenge_id = $1 AND content = $2 AND deleted_at IS NOT NULL \
             ORDER BY deleted_at DESC, id DESC",
        )
        .bind(challenge_id)
        .bind(&hint.content)
        .fetch_all(&mut *transaction)
        .await?;
        for predecessor in predecessors {
            sqlx::query(
                "UPDATE unlocks SET hint_id = $1 WHERE hint_id = $2 AND NOT EXISTS (\
                 SELECT 1 FROM unlocks AS other WHERE other.hint_id = $1 AND (\
                 (unlocks.team_id IS NOT NULL AND other.team_id = unlocks.team_id) OR \
                 (unlocks.team_id IS NULL AND other.team_id IS NULL AND other.user_id = unlocks.user_id)))",
            )
            .bind(id.get())
            .bind(predecessor)
            .execute(&mut *transaction)
            .await?;
        }
        transaction.commit().await?;
        self.get_hint(id).await
    }

    /// Counts the unlocks of a hint.
    pub async fn count_hint_unlocks(&self, id: HintId) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM unlocks WHERE hint_id = $1")
            .bind(id.get())
            .fetch_one(&self.pool)
            .await?)
    }

    /// Takes the write lock of one file location for the rest of `transaction`: on SQLite the
    /// database write lock (`BEGIN IMMEDIATE`) already serializes every writer of the file, on
    /// PostgreSQL a transaction-scoped advisory lock on the location's hash does.
    async fn lock_location(
        &self,
        transaction: &mut sqlx::Transaction<'static, sqlx::Any>,
        location: &str,
    ) -> Result<(), StoreError> {
        if self.dialect == Dialect::Postgres {
            sqlx::query(
                "SELECT 1 AS locked FROM (SELECT pg_advisory_xact_lock(hashtextextended($1, 0))) AS lock_taken",
            )
            .bind(location)
            .fetch_one(&mut **transaction)
            .await?;
        }
        Ok(())
    }

    /// Puts a file in place and records it, atomically per location across processes: `place`
    /// (which writes the bytes at `location` and returns their SHA-1 and size) runs while the
    /// location is locked, and the row is written in the same transaction, so concurrent
    /// uploads to one location leave the bytes and the row of the same upload.
    pub async fn commit_file_locked<F>(
        &self,
        kind: &str,
        location: &str,
        owner: &FileOwner,
        place: F,
    ) -> Result<FileRecord, FileCommitError>
    where
        F: AsyncFnOnce() -> std::io::Result<(String, u64)>,
    {
        let mut transaction = self.begin_write().await?;
        self.lock_location(&mut transaction, location).await?;
        let (sha1sum, size) = place().await?;
        let sql = format!(
            "INSERT INTO files (type, location, sha1sum, size, challenge_id, page_id, solution_id, created) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT (location) DO UPDATE SET type = excluded.type, \
             sha1sum = excluded.sha1sum, size = excluded.size, challenge_id = excluded.challenge_id, \
             page_id = excluded.page_id, solution_id = excluded.solution_id RETURNING {FILE_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(kind)
            .bind(location)
            .bind(&sha1sum)
            .bind(i64::try_from(size).unwrap_or(i64::MAX))
            .bind(owner.challenge_id.map(ChallengeId::get))
            .bind(owner.page_id)
            .bind(owner.solution_id)
            .bind(super::now())
            .fetch_one(&mut *transaction)
            .await
            .map_err(StoreError::from)?;
        let record = file_record_of(&row).map_err(StoreError::from)?;
        transaction.commit().await.map_err(StoreError::from)?;
        Ok(record)
    }

    /// Deletes a file row and, under the same location lock, its bytes (`remove`); `None` when
    /// the row did not exist. If `remove` fails the row stays.
    pub async fn delete_file_locked<F>(&self, id: i64, remove: F) -> Result<Option<FileRecord>, FileCommitError>
    where
        F: AsyncFnOnce(&str) -> std::io::Result<()>,
    {
        let Some(record) = (match self.get_file_record(id).await {
            Ok(record) => Some(record),
            Err(StoreError::NotFound) => None,
            Err(error) => return Err(error.into()),
        }) else {
            return Ok(None);
        };
        let mut transaction = self.begin_write().await?;
        self.lock_location(&mut transaction, &record.file.location).await?;
        let deleted = sqlx::query("DELETE FROM files WHERE id = $1 AND location = $2")
            .bind(id)
            .bind(&record.file.location)
            .execute(&mut *transaction)
            .await
            .map_err(StoreError::from)?;
        if deleted.rows_affected() == 0 {
            return Ok(None);
        }
        remove(&record.file.location).await?;
        transaction.commit().await.map_err(StoreError::from)?;
        Ok(Some(record))
    }

    /// Reads a file row; `NotFound` when it does not exist.
    pub async fn get_file_record(&self, id: i64) -> Result<FileRecord, StoreError> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE id = $1");
        Ok(file_record_of(&sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?)?)
    }

    /// Finds a file row by location.
    pub async fn get_file_record_by_location(&self, location: &str) -> Result<Option<FileRecord>, StoreError> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files WHERE location = $1");
        let row = sqlx::query(&sql).bind(location).fetch_optional(&self.pool).await?;
        Ok(row.as_ref().map(file_record_of).transpose()?)
    }

    /// Every file row by ascending id.
    pub async fn list_file_records(&self) -> Result<Vec<FileRecord>, StoreError> {
        let sql = format!("SELECT {FILE_COLUMNS} FROM files ORDER BY id");
        let rows = sqlx::query(&sql).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(file_record_of).collect::<Result<_, _>>()?)
    }

    /// Reads a bracket; `NotFound` when it does not exist.
    pub async fn get_bracket(&self, id: BracketId) -> Result<Bracket, StoreError> {
        let row = sqlx::query("SELECT id, name, description, type FROM brackets WHERE id = $1")
            .bind(id.get())
            .fetch_one(&self.pool)
            .await?;
        Ok(Bracket {
            id: BracketId(row.try_get("id")?),
            name: row.try_get("name")?,
            description: row.try_get("description")?,
            kind: row.try_get("type")?,
        })
    }

    /// Replaces a bracket's name, description and type; `NotFound` when it does not exist.
    pub async fn update_bracket(&self, bracket: &Bracket) -> Result<Bracket, StoreError> {
        let result = sqlx::query("UPDATE brackets SET name = $2, description = $3, type = $4 WHERE id = $1")
            .bind(bracket.id.get())
            .bind(&bracket.name)
            .bind(&bracket.description)
            .bind(&bracket.kind)
            .execute(&self.pool)
            .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_bracket(bracket.id).await
    }

    /// Reads an award; `NotFound` when it does not exist.
    pub async fn get_award(&self, id: i64) -> Result<Award, StoreError> {
        let row = sqlx::query(
            "SELECT id, user_id, team_id, name, description, value, category, icon, date FROM awards WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(Award {
            id: row.try_get("id")?,
            award: NewAward {
                user_id: row.try_get::<Option<i64>, _>("user_id")?.map(UserId),
                team_id: row.try_get::<Option<i64>, _>("team_id")?.map(TeamId),
                name: row.try_get("name")?,
                description: row.try_get("description")?,
                value: row.try_get("value")?,
                category: row.try_get("category")?,
                icon: row.try_get("icon")?,
            },
            date: row.try_get("date")?,
        })
    }

    /// Replaces an award's name, description, value, category and icon (its owners and date
    /// stay); `NotFound` when it does not exist.
    pub async fn update_award(&self, id: i64, award: &NewAward) -> Result<Award, StoreError> {
        let result = sqlx::query(
            "UPDATE awards SET name = $2, description = $3, value = $4, category = $5, icon = $6 WHERE id = $1",
        )
        .bind(id)
        .bind(&award.name)
        .bind(&award.description)
        .bind(award.value)
        .bind(&award.category)
        .bind(&award.icon)
        .execute(&self.pool)
        .await?;
        if result.rows_affected() == 0 {
            return Err(StoreError::NotFound);
        }
        self.get_award(id).await
    }

    /// Reads an announcement; `NotFound` when it does not exist.
    pub async fn get_notification(&self, id: i64) -> Result<Notification, StoreError> {
        let row = sqlx::query(
            "SELECT id, title, content, type, sound, user_id, team_id, date FROM notifications WHERE id = $1",
        )
        .bind(id)
        .fetch_one(&self.pool)
        .await?;
        Ok(notification_of(&row)?)
    }

    /// Deletes a ticket whatever its state (staff); false when it did not exist.
    pub async fn delete_ticket(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM tickets WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }
}
