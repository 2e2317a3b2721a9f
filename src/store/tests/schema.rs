//! Schema-level cases: migrations, boolean representation, constraint names.

use sqlx::Row;

use super::fixtures;
use crate::store::error::SQLITE_UNIQUE_COLUMNS;
use crate::store::{Store, UserUpdate};

pub(super) async fn migrations_apply_twice(store: &Store) {
    store.migrate().await.expect("second migrate is a no-op");
    store.migrate().await.expect("third migrate is a no-op");
    let applied: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM _sqlx_migrations").fetch_one(&store.pool).await.unwrap();
    let expected = match store.dialect {
        crate::store::Dialect::Sqlite => sqlx::migrate!("migrations/sqlite").iter().count(),
        crate::store::Dialect::Postgres => sqlx::migrate!("migrations/postgres").iter().count(),
    };
    assert_eq!(applied, i64::try_from(expected).unwrap());
    store.ping().await.unwrap();
}

pub(super) async fn booleans_round_trip_as_integers(store: &Store) {
    let user_id = fixtures::user(store, "flags").await;
    let user = store.get_user(user_id).await.unwrap();
    assert!(user.verified && !user.hidden && !user.banned);
    let update = UserUpdate { hidden: Some(true), verified: Some(false), ..UserUpdate::default() };
    let user = store.update_user(user_id, &update).await.unwrap();
    assert!(user.hidden && !user.verified && !user.banned);
    // Stored as 0/1 integers on both backends, readable as i64 through `Any`.
    let row = sqlx::query("SELECT hidden, verified FROM users WHERE id = $1")
        .bind(user_id.get())
        .fetch_one(&store.pool)
        .await
        .unwrap();
    assert_eq!(row.try_get::<i64, _>("hidden").unwrap(), 1);
    assert_eq!(row.try_get::<i64, _>("verified").unwrap(), 0);
    // The CHECK constraint refuses anything else.
    let refused =
        sqlx::query("UPDATE users SET hidden = 2 WHERE id = $1").bind(user_id.get()).execute(&store.pool).await;
    assert!(refused.is_err());
}

/// Why the schema has no BOOLEAN columns: `Any` cannot read one from SQLite.
#[tokio::test]
async fn sqlite_boolean_columns_are_unreadable_through_any() {
    let store = super::sqlite_memory_store().await;
    sqlx::query("CREATE TABLE boolean_probe (flag BOOLEAN NOT NULL)").execute(&store.pool).await.unwrap();
    sqlx::query("INSERT INTO boolean_probe (flag) VALUES (1)").execute(&store.pool).await.unwrap();
    let as_bool = sqlx::query_scalar::<_, bool>("SELECT flag FROM boolean_probe").fetch_one(&store.pool).await;
    let as_int = sqlx::query_scalar::<_, i64>("SELECT flag FROM boolean_probe").fetch_one(&store.pool).await;
    assert!(as_bool.is_err() && as_int.is_err(), "Any learned to read SQLite BOOLEAN; revisit the 0/1 decision");
}

/// Every plain-column unique index of the SQLite schema is in the table that turns SQLite's
/// column-list messages into the index names PostgreSQL reports.
#[tokio::test]
async fn every_sqlite_unique_index_has_a_stable_name() {
    let store = super::sqlite_memory_store().await;
    let indexes =
        sqlx::query("SELECT name, tbl_name, sql FROM sqlite_master WHERE type = 'index' AND sql LIKE 'CREATE UNIQUE%'")
            .fetch_all(&store.pool)
            .await
            .unwrap();
    assert!(indexes.len() > 15);
    for index in indexes {
        let name: String = index.get("name");
        let sql: String = index.get("sql");
        if sql.contains("lower(") {
            continue; // expression indexes are named by SQLite itself
        }
        assert!(
            SQLITE_UNIQUE_COLUMNS.iter().any(|(_, mapped)| *mapped == name),
            "unique index {name} is missing from SQLITE_UNIQUE_COLUMNS"
        );
    }
}
