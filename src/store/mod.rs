//! The `Store` seam: the source of truth (sqlx, runtime-checked queries).
//!
//! Backends: SQLite (embedded default; a WAL file in the data directory) and PostgreSQL.
//!
//! Design decision: both backends run the *same* SQL through sqlx's `Any` driver, with `$N`
//! placeholders, `RETURNING` and `ON CONFLICT`, which SQLite and PostgreSQL both understand.
//! The few places where the dialects differ branch on `Dialect` inside this module. This keeps
//! one implementation of every query (instead of a trait with two copies of ~100 methods) while
//! the conformance suite (`store/tests.rs`) proves the behaviour on both databases. Columns are
//! therefore limited to the types `Any` carries: 64-bit integers (`BIGINT` on PostgreSQL),
//! doubles, text, blobs; timestamps are Unix seconds. Role code sees only `Store`, never a pool.
//!
//! Migrations live in `migrations/sqlite` and `migrations/postgres` with matching version
//! numbers; they run at start-up (`store.migrate_on_start`) and with `fctf migrate`.

mod users;

#[cfg(test)]
pub(crate) mod tests;

pub use users::{NewUser, UserRole};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, ConnectOptions, Executor};

use crate::config::Secret;

/// Which store backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreBackendKind {
    Sqlite,
    Postgres,
}

/// The `[store]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    pub backend: StoreBackendKind,
    pub url: Secret,
    pub max_connections: u32,
    pub migrate_on_start: bool,
}

/// SQL dialect of the connected database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
}

/// Errors of the store seam.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The row does not exist.
    #[error("not found")]
    NotFound,
    /// A unique or foreign-key constraint refused the write.
    #[error("conflict on {constraint}")]
    Conflict { constraint: String },
    /// The database could not be reached (or the pool timed out); retrying may help.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// Migrations failed.
    #[error("migration failed: {0}")]
    Migration(String),
    /// Anything else.
    #[error("store error: {0}")]
    Other(String),
}

impl From<sqlx::Error> for StoreError {
    fn from(error: sqlx::Error) -> Self {
        match error {
            sqlx::Error::RowNotFound => StoreError::NotFound,
            sqlx::Error::Database(database_error) => {
                let constraint_kind = matches!(
                    database_error.kind(),
                    sqlx::error::ErrorKind::UniqueViolation | sqlx::error::ErrorKind::ForeignKeyViolation
                );
                if constraint_kind {
                    let constraint = database_error
                        .constraint()
                        .map(str::to_owned)
                        .unwrap_or_else(|| database_error.message().to_owned());
                    StoreError::Conflict { constraint }
                } else {
                    StoreError::Other(database_error.message().to_owned())
                }
            }
            sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_) | sqlx::Error::Tls(_) => {
                StoreError::Unavailable(error.to_string())
            }
            other => StoreError::Other(other.to_string()),
        }
    }
}

/// The store handle. Cheap to clone.
#[derive(Clone)]
pub struct Store {
    pub(crate) pool: AnyPool,
    pub(crate) dialect: Dialect,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("dialect", &self.dialect).finish_non_exhaustive()
    }
}

impl Store {
    /// Connects the configured backend. An empty SQLite URL means `<data_dir>/fctf.db`.
    pub async fn from_config(cfg: &StoreConfig, data_dir: &Path) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        match cfg.backend {
            StoreBackendKind::Sqlite => {
                let url = if cfg.url.is_empty() {
                    std::fs::create_dir_all(data_dir)
                        .map_err(|error| StoreError::Unavailable(format!("{}: {error}", data_dir.display())))?;
                    format!("sqlite://{}?mode=rwc", data_dir.join("fctf.db").display())
                } else {
                    cfg.url.expose().to_owned()
                };
                Self::connect_sqlite(&url, cfg.max_connections).await
            }
            StoreBackendKind::Postgres => Self::connect_postgres(cfg.url.expose(), cfg.max_connections).await,
        }
    }

    /// Opens a SQLite database (`sqlite::memory:` gives a private in-memory database).
    pub async fn connect_sqlite(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let in_memory = url.contains(":memory:");
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        // An in-memory database exists once per connection: keep exactly one, forever.
        let (max, min) = if in_memory { (1, 1) } else { (max_connections.max(1), 0) };
        let pool = AnyPoolOptions::new()
            .max_connections(max)
            .min_connections(min)
            .idle_timeout(if in_memory { None } else { Some(Duration::from_secs(600)) })
            .max_lifetime(if in_memory { None } else { Some(Duration::from_secs(1800)) })
            .acquire_timeout(Duration::from_secs(30))
            .after_connect(|connection, _meta| {
                Box::pin(async move {
                    connection
                        .execute("PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 10000; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
                        .await?;
                    Ok(())
                })
            })
            .connect_with(options)
            .await?;
        Ok(Self { pool, dialect: Dialect::Sqlite })
    }

    /// Connects to PostgreSQL.
    pub async fn connect_postgres(url: &str, max_connections: u32) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let options = AnyConnectOptions::from_str(url)?.disable_statement_logging();
        let pool = AnyPoolOptions::new()
            .max_connections(max_connections.max(1))
            .acquire_timeout(Duration::from_secs(30))
            .connect_with(options)
            .await?;
        Ok(Self { pool, dialect: Dialect::Postgres })
    }

    /// Applies pending migrations of this backend's tree.
    pub async fn migrate(&self) -> Result<(), StoreError> {
        let migrator = match self.dialect {
            Dialect::Sqlite => sqlx::migrate!("migrations/sqlite"),
            Dialect::Postgres => sqlx::migrate!("migrations/postgres"),
        };
        migrator.run(&self.pool).await.map_err(|error| StoreError::Migration(error.to_string()))
    }

    /// Checks the connection (readiness).
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Closes the pool, waiting for connections to be returned.
    pub async fn close(&self) {
        self.pool.close().await;
    }
}
