//! Custom registration fields (CTFd's `fields`) and their values per user or team
//! (`field_entries`, one value per field and owner).

use sqlx::Row;
use sqlx::any::AnyRow;

use super::sql::bool_of;
use super::{Store, StoreError};
use crate::domain::{TeamId, UserId};

/// Every editable property of a custom field.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NewField {
    /// Label shown on the form.
    pub name: String,
    /// `user` or `team`: whose form it belongs to.
    pub kind: String,
    /// `text` or `boolean`.
    pub field_type: String,
    /// Help text.
    pub description: String,
    /// Must be filled in at registration.
    pub required: bool,
    /// Shown on public profiles.
    pub public: bool,
    /// The owner may change it after registration.
    pub editable: bool,
}

/// A stored custom field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    /// Row id.
    pub id: i64,
    /// Its properties.
    pub field: NewField,
}

/// Whose value a field entry is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FieldOwner {
    /// A user's.
    User(UserId),
    /// A team's.
    Team(TeamId),
}

/// One value of a custom field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldEntry {
    /// Row id.
    pub id: i64,
    /// The field.
    pub field_id: i64,
    /// Whose value it is.
    pub owner: FieldOwner,
    /// The value, as text.
    pub value: String,
}

const FIELD_COLUMNS: &str = "id, name, type, field_type, description, required, public, editable";

fn field_of(row: &AnyRow) -> Result<Field, sqlx::Error> {
    Ok(Field {
        id: row.try_get("id")?,
        field: NewField {
            name: row.try_get("name")?,
            kind: row.try_get("type")?,
            field_type: row.try_get("field_type")?,
            description: row.try_get("description")?,
            required: bool_of(row, "required")?,
            public: bool_of(row, "public")?,
            editable: bool_of(row, "editable")?,
        },
    })
}

fn entry_of(row: &AnyRow) -> Result<FieldEntry, sqlx::Error> {
    let user_id: Option<i64> = row.try_get("user_id")?;
    let team_id: Option<i64> = row.try_get("team_id")?;
    let owner = match (user_id, team_id) {
        (Some(user), _) => FieldOwner::User(UserId(user)),
        (None, Some(team)) => FieldOwner::Team(TeamId(team)),
        (None, None) => return Err(sqlx::Error::Decode("field entry without an owner".into())),
    };
    Ok(FieldEntry { id: row.try_get("id")?, field_id: row.try_get("field_id")?, owner, value: row.try_get("value")? })
}

fn owner_ids(owner: FieldOwner) -> (Option<i64>, Option<i64>) {
    match owner {
        FieldOwner::User(user) => (Some(user.get()), None),
        FieldOwner::Team(team) => (None, Some(team.get())),
    }
}

impl Store {
    /// Creates a custom field.
    pub async fn create_field(&self, field: &NewField) -> Result<Field, StoreError> {
        let sql = format!(
            "INSERT INTO fields (name, type, field_type, description, required, public, editable) \
             VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING {FIELD_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&field.name)
            .bind(&field.kind)
            .bind(&field.field_type)
            .bind(&field.description)
            .bind(i64::from(field.required))
            .bind(i64::from(field.public))
            .bind(i64::from(field.editable))
            .fetch_one(&self.pool)
            .await?;
        Ok(field_of(&row)?)
    }

    /// Reads a custom field; `NotFound` when it does not exist.
    pub async fn get_field(&self, id: i64) -> Result<Field, StoreError> {
        let sql = format!("SELECT {FIELD_COLUMNS} FROM fields WHERE id = $1");
        Ok(field_of(&sqlx::query(&sql).bind(id).fetch_one(&self.pool).await?)?)
    }

    /// Custom fields (of one kind, `user` or `team`, or all) by ascending id.
    pub async fn list_fields(&self, kind: Option<&str>) -> Result<Vec<Field>, StoreError> {
        let sql = format!("SELECT {FIELD_COLUMNS} FROM fields WHERE ($1 IS NULL OR type = $1) ORDER BY id");
        let rows = sqlx::query(&sql).bind(kind).fetch_all(&self.pool).await?;
        Ok(rows.iter().map(field_of).collect::<Result<_, _>>()?)
    }

    /// Replaces a custom field's properties; `NotFound` when it does not exist.
    pub async fn update_field(&self, id: i64, field: &NewField) -> Result<Field, StoreError> {
        let sql = format!(
            "UPDATE fields SET name = $1, type = $2, field_type = $3, description = $4, required = $5, public = $6, \
             editable = $7 WHERE id = $8 RETURNING {FIELD_COLUMNS}"
        );
        let row = sqlx::query(&sql)
            .bind(&field.name)
            .bind(&field.kind)
            .bind(&field.field_type)
            .bind(&field.description)
            .bind(i64::from(field.required))
            .bind(i64::from(field.public))
            .bind(i64::from(field.editable))
            .bind(id)
            .fetch_optional(&self.pool)
            .await?;
        Ok(field_of(&row.ok_or(StoreError::NotFound)?)?)
    }

    /// Deletes a custom field and its values; false when it did not exist.
    pub async fn delete_field(&self, id: i64) -> Result<bool, StoreError> {
        Ok(sqlx::query("DELETE FROM fields WHERE id = $1").bind(id).execute(&self.pool).await?.rows_affected() == 1)
    }

    /// Sets several values of one owner in one transaction (insert or replace each).
    pub async fn set_field_entries(&self, owner: FieldOwner, entries: &[(i64, String)]) -> Result<(), StoreError> {
        let (user_id, team_id) = owner_ids(owner);
        let mut transaction = self.begin_write().await?;
        for (field_id, value) in entries {
            let updated = sqlx::query(
                "UPDATE field_entries SET value = $1 WHERE field_id = $2 AND \
                 (($3 IS NOT NULL AND user_id = $3) OR ($4 IS NOT NULL AND team_id = $4))",
            )
            .bind(value)
            .bind(field_id)
            .bind(user_id)
            .bind(team_id)
            .execute(&mut *transaction)
            .await?;
            if updated.rows_affected() == 0 {
                sqlx::query("INSERT INTO field_entries (field_id, user_id, team_id, value) VALUES ($1, $2, $3, $4)")
                    .bind(field_id)
                    .bind(user_id)
                    .bind(team_id)
                    .bind(value)
                    .execute(&mut *transaction)
                    .await?;
            }
        }
        transaction.commit().await?;
        Ok(())
    }

    /// The values of one owner by field id.
    pub async fn list_field_entries(&self, owner: FieldOwner) -> Result<Vec<FieldEntry>, StoreError> {
        let (user_id, team_id) = owner_ids(owner);
        let rows = sqlx::query(
            "SELECT id, field_id, user_id, team_id, value FROM field_entries WHERE \
             ($1 IS NOT NULL AND user_id = $1) OR ($2 IS NOT NULL AND team_id = $2) ORDER BY field_id",
        )
        .bind(user_id)
        .bind(team_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(entry_of).collect::<Result<_, _>>()?)
    }
}
