//! Event configuration: text key/value pairs (CTFd's `config` table). Values are text or NULL;
//! typing (ints, booleans, times) is the caller's business. Keys are compared exactly.

use sqlx::Row;
use sqlx::any::AnyRow;

use super::{Store, StoreError};

/// One configuration entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigEntry {
    /// Row id (shown by the admin API).
    pub id: i64,
    /// Key, unique.
    pub key: String,
    /// Value; `None` is stored as NULL.
    pub value: Option<String>,
}

impl ConfigEntry {
    fn from_row(row: &AnyRow) -> Result<Self, sqlx::Error> {
        Ok(ConfigEntry { id: row.try_get("id")?, key: row.try_get("key")?, value: row.try_get("value")? })
    }
}

const UPSERT: &str = "INSERT INTO config (key, value) VALUES ($1, $2) \
     ON CONFLICT (key) DO UPDATE SET value = excluded.value RETURNING id, key, value";

impl Store {
    /// Reads one entry.
    pub async fn get_config(&self, key: &str) -> Result<Option<ConfigEntry>, StoreError> {
        let row = sqlx::query("SELECT id, key, value FROM config WHERE key = $1")
            .bind(key)
            .fetch_optional(&self.pool)
            .await?;
        Ok(row.as_ref().map(ConfigEntry::from_row).transpose()?)
    }

    /// Every entry, by key.
    pub async fn list_config(&self) -> Result<Vec<ConfigEntry>, StoreError> {
        let rows = sqlx::query("SELECT id, key, value FROM config ORDER BY key").fetch_all(&self.pool).await?;
        Ok(rows.iter().map(ConfigEntry::from_row).collect::<Result<_, _>>()?)
    }

    /// Inserts or replaces one entry and returns it.
    pub async fn set_config(&self, key: &str, value: Option<&str>) -> Result<ConfigEntry, StoreError> {
        let row = sqlx::query(UPSERT).bind(key).bind(value).fetch_one(&self.pool).await?;
        Ok(ConfigEntry::from_row(&row)?)
    }

    /// Inserts or replaces several entries in one transaction: all or none are written.
    pub async fn set_config_many(&self, entries: &[(String, Option<String>)]) -> Result<(), StoreError> {
        let mut transaction = self.begin_write().await?;
        for (key, value) in entries {
            sqlx::query(UPSERT).bind(key).bind(value).fetch_one(&mut *transaction).await?;
        }
        transaction.commit().await?;
        Ok(())
    }

    /// Deletes one entry; false when it did not exist.
    pub async fn delete_config(&self, key: &str) -> Result<bool, StoreError> {
        let result = sqlx::query("DELETE FROM config WHERE key = $1").bind(key).execute(&self.pool).await?;
        Ok(result.rows_affected() == 1)
    }
}
