//! Whole-table dumps and loads, for event export/import and for tests that compare a
//! database record by record.
//!
//! A dump is every row of the event tables ([`EVENT_TABLES`], parents before children) as
//! JSON values (integers, floats, text, null), read in one snapshot (a read transaction;
//! `REPEATABLE READ` on PostgreSQL). Sessions and instances are runtime state and are not part
//! of an event. Loading writes the rows with their ids in one write transaction into an empty
//! event: self and circular references (`challenges.next_id`, `teams.captain_id`) are written
//! after every row exists, and PostgreSQL sequences are moved past the loaded ids. Column names
//! in a dump are checked against the live schema before any SQL is built, so a crafted file
//! cannot inject SQL; table names come only from [`EVENT_TABLES`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};

use super::{Dialect, Store, StoreError};

/// The tables of an event, parents before children.
pub const EVENT_TABLES: &[&str] = &[
    "config",
    "brackets",
    "teams",
    "users",
    "fields",
    "field_entries",
    "api_tokens",
    "tracking",
    "challenges",
    "flags",
    "hints",
    "tags",
    "topics",
    "challenge_topics",
    "solutions",
    "pages",
    "files",
    "submissions",
    "solves",
    "awards",
    "unlocks",
    "notifications",
    "tickets",
    "action_logs",
    "challenge_versions",
    "deploy_history",
    "cheat_events",
    "audit_log",
];

/// Columns written after every row exists (self or circular references).
const DEFERRED: &[(&str, &str)] = &[("teams", "captain_id"), ("challenges", "next_id")];

/// The rows of one table.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct TableDump {
    /// Column names, in row order.
    pub columns: Vec<String>,
    /// Rows, ordered by primary key.
    pub rows: Vec<Vec<Value>>,
}

/// How a column is bound when loading.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ColumnKind {
    Integer,
    Float,
    Text,
}

fn value_of(row: &AnyRow, index: usize) -> Value {
    if let Ok(value) = row.try_get::<Option<i64>, _>(index) {
        return value.map(Value::from).unwrap_or(Value::Null);
    }
    if let Ok(value) = row.try_get::<Option<String>, _>(index) {
        return value.map(Value::from).unwrap_or(Value::Null);
    }
    if let Ok(value) = row.try_get::<Option<f64>, _>(index) {
        return value.and_then(serde_json::Number::from_f64).map(Value::Number).unwrap_or(Value::Null);
    }
    Value::Null
}

impl Store {
    /// The latest applied migration version.
    pub async fn schema_version(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT CAST(COALESCE(MAX(version), 0) AS BIGINT) FROM _sqlx_migrations")
            .fetch_one(&self.pool)
            .await?)
    }

    async fn columns_of(
        &self,
        transaction: &mut Transaction<'static, Any>,
        table: &str,
    ) -> Result<Vec<(String, ColumnKind)>, StoreError> {
        let rows = match self.dialect {
            Dialect::Sqlite => {
                sqlx::query("SELECT name AS column_name, type AS data_type FROM pragma_table_info($1) ORDER BY cid")
                    .bind(table)
                    .fetch_all(&mut **transaction)
                    .await?
            }
            Dialect::Postgres => {
                sqlx::query(
                    "SELECT CAST(column_name AS TEXT) AS column_name, CAST(data_type AS TEXT) AS data_type \
                     FROM information_schema.columns WHERE table_schema = current_schema() AND table_name = $1 \
                     ORDER BY ordinal_position",
                )
                .bind(table)
                .fetch_all(&mut **transaction)
                .await?
            }
        };
        let mut columns = Vec::with_capacity(rows.len());
        for row in &rows {
            let name: String = row.try_get("column_name")?;
            let data_type: String = row.try_get("data_type")?;
            let upper = data_type.to_ascii_uppercase();
            let kind = if upper.contains("INT") {
                ColumnKind::Integer
            } else if upper.contains("REAL") || upper.contains("DOUBLE") || upper.contains("FLOAT") {
                ColumnKind::Float
            } else {
                ColumnKind::Text
            };
            columns.push((name, kind));
        }
        if columns.is_empty() {
            return Err(StoreError::Other(format!("table {table} does not exist")));
        }
        Ok(columns)
    }

    /// Every row of the event tables, in one snapshot.
    pub async fn dump_event_tables(&self) -> Result<BTreeMap<String, TableDump>, StoreError> {
        let mut transaction = match self.dialect {
            Dialect::Sqlite => self.pool.begin().await?,
            Dialect::Postgres => self.pool.begin_with("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY").await?,
        };
        let mut tables = BTreeMap::new();
        for table in EVENT_TABLES {
            let columns = self.columns_of(&mut transaction, table).await?;
            let names: Vec<String> = columns.iter().map(|(name, _)| name.clone()).collect();
            let order = if names.iter().any(|name| name == "id") { "id" } else { "1" };
            let sql = format!("SELECT {} FROM {table} ORDER BY {order}", names.join(", "));
            let rows = sqlx::query(&sql).fetch_all(&mut *transaction).await?;
            let mut dump = TableDump { columns: names, rows: Vec::with_capacity(rows.len()) };
            for row in &rows {
                dump.rows.push((0..row.columns().len()).map(|index| value_of(row, index)).collect());
            }
            tables.insert((*table).to_owned(), dump);
        }
        transaction.commit().await?;
        Ok(tables)
    }

    /// Counts the rows of the event tables (0 means an empty event).
    pub async fn count_event_rows(&self) -> Result<i64, StoreError> {
        let mut total = 0;
        for table in EVENT_TABLES {
            let count: i64 = sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&self.pool).await?;
            total += count;
        }
        Ok(total)
    }

    /// Loads `tables` (a dump) into an empty event in one transaction. `Conflict` when the
    /// event is not empty; `Other` for a dump that does not fit the schema.
    pub async fn load_event_tables(&self, tables: &BTreeMap<String, TableDump>) -> Result<(), StoreError> {
        for name in tables.keys() {
            if !EVENT_TABLES.contains(&name.as_str()) {
                return Err(StoreError::Other(format!("unknown table {name:?} in the dump")));
            }
        }
        let mut transaction = self.begin_write().await?;
        for table in EVENT_TABLES {
            let count: i64 =
                sqlx::query_scalar(&format!("SELECT COUNT(*) FROM {table}")).fetch_one(&mut *transaction).await?;
            if count > 0 {
                return Err(StoreError::Conflict { constraint: format!("{table} is not empty") });
            }
        }
        let mut deferred_updates: Vec<(&str, &str, Value, Value)> = Vec::new();
        for table in EVENT_TABLES {
            let Some(dump) = tables.get(*table) else { continue };
            let schema = self.columns_of(&mut transaction, table).await?;
            let mut kinds = Vec::with_capacity(dump.columns.len());
            for column in &dump.columns {
                match schema.iter().find(|(name, _)| name == column) {
                    Some((_, kind)) => kinds.push(*kind),
                    None => return Err(StoreError::Other(format!("unknown column {table}.{column} in the dump"))),
                }
            }
            let id_index = dump.columns.iter().position(|column| column == "id");
            let deferred: Vec<(usize, &str)> = DEFERRED
                .iter()
                .filter(|(deferred_table, _)| deferred_table == table)
                .filter_map(|(_, column)| {
                    dump.columns.iter().position(|name| name == column).map(|index| (index, *column))
                })
                .collect();
            let placeholders = super::sql::placeholders(1, dump.columns.len());
            let sql = format!("INSERT INTO {table} ({}) VALUES ({placeholders})", dump.columns.join(", "));
            for row in &dump.rows {
                if row.len() != dump.columns.len() {
                    return Err(StoreError::Other(format!("a row of {table} has {} values", row.len())));
                }
                let mut query = sqlx::query(&sql);
                for (index, (value, kind)) in row.iter().zip(&kinds).enumerate() {
                    let deferred_here = deferred.iter().find(|(position, _)| *position == index);
                    if let Some((_, column)) = deferred_here
                        && !value.is_null()
                    {
                        let id = id_index.map(|position| row[position].clone()).unwrap_or(Value::Null);
                        deferred_updates.push((table, column, id, value.clone()));
                        query = bind_value(query, &Value::Null, *kind)?;
                        continue;
                    }
                    query = bind_value(query, value, *kind)?;
                }
                query.execute(&mut *transaction).await?;
            }
        }
        for (table, column, id, value) in deferred_updates {
            let sql = format!("UPDATE {table} SET {column} = $1 WHERE id = $2");
            let query = bind_value(sqlx::query(&sql), &value, ColumnKind::Integer)?;
            bind_value(query, &id, ColumnKind::Integer)?.execute(&mut *transaction).await?;
        }
        if self.dialect == Dialect::Postgres {
            for table in EVENT_TABLES {
                let sql = format!(
                    "SELECT setval(pg_get_serial_sequence('{table}', 'id'), COALESCE((SELECT MAX(id) FROM {table}), 0) + 1, false)"
                );
                let has_sequence: Option<String> =
                    sqlx::query_scalar(&format!("SELECT CAST(pg_get_serial_sequence('{table}', 'id') AS TEXT)"))
                        .fetch_one(&mut *transaction)
                        .await?;
                if has_sequence.is_some() {
                    sqlx::query(&sql).execute(&mut *transaction).await?;
                }
            }
        }
        transaction.commit().await?;
        Ok(())
    }
}

type AnyQuery<'q> = sqlx::query::Query<'q, Any, sqlx::any::AnyArguments<'q>>;

fn bind_value<'q>(query: AnyQuery<'q>, value: &Value, kind: ColumnKind) -> Result<AnyQuery<'q>, StoreError> {
    let mismatch = || StoreError::Other(format!("value {value} does not fit a {kind:?} column"));
    Ok(match kind {
        ColumnKind::Integer => match value {
            Value::Null => query.bind(None::<i64>),
            Value::Number(number) => query.bind(Some(number.as_i64().ok_or_else(mismatch)?)),
            Value::Bool(flag) => query.bind(Some(i64::from(*flag))),
            _ => return Err(mismatch()),
        },
        ColumnKind::Float => match value {
            Value::Null => query.bind(None::<f64>),
            Value::Number(number) => query.bind(Some(number.as_f64().ok_or_else(mismatch)?)),
            _ => return Err(mismatch()),
        },
        ColumnKind::Text => match value {
            Value::Null => query.bind(None::<String>),
            Value::String(text) => query.bind(Some(text.clone())),
            Value::Number(number) => query.bind(Some(number.to_string())),
            _ => return Err(mismatch()),
        },
    })
}
