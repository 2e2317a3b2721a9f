//! The `Store` seam: the source of truth (sqlx, runtime-checked queries).
//!
//! Backends: SQLite (embedded default; a WAL file in the data directory) and PostgreSQL.
//!
//! Design decision: both backends run the *same* SQL through sqlx's `Any` driver, with `$N`
//! placeholders, `RETURNING` and `ON CONFLICT`, which SQLite and PostgreSQL both understand.
//! The few places where the dialects differ branch on `Dialect` inside this module. This keeps
//! one implementation of every query (instead of a trait with two copies of ~100 methods) while
//! the conformance suite (`store/tests`) proves the behaviour on both databases. Role code sees
//! only `Store`, never a pool.
//!
//! Column types are limited to what `Any` carries: 64-bit integers (`BIGINT` on PostgreSQL,
//! `INTEGER` on SQLite), doubles, text and blobs. Timestamps are Unix seconds; JSON documents
//! are text. **Booleans are integer 0/1 columns on both backends**: `Any` cannot read a SQLite
//! column declared `BOOLEAN` at all ("Any driver does not support the SQLite type Bool"), so the
//! schema never declares one and the store converts at the edge (`bool_of`, `i64::from(bool)`).
//! Aggregates that PostgreSQL would type as `NUMERIC` (`SUM`) are cast to `BIGINT`, and no
//! query returns a PostgreSQL `boolean` expression.
//!
//! Concurrency: exactly-once effects (a solve, a hint unlock, one live instance per team and
//! challenge, one active session per user) are decided by unique indexes inside one
//! transaction, never by a read-then-write in the caller. Write transactions start with
//! `Store::begin_write`: on SQLite that is `BEGIN IMMEDIATE`, which takes the write lock up
//! front so that concurrent writers queue on `busy_timeout` (10 s) instead of failing with
//! `SQLITE_BUSY` when a deferred transaction tries to upgrade its read lock; no retry loop is
//! needed. A busy error that still escapes is reported as `StoreError::Unavailable`. On
//! PostgreSQL (READ COMMITTED) transactions that compute from data they then change lock the
//! owning row first (`SELECT … FOR NO KEY UPDATE`; `Store::lock_row`).
//!
//! Migrations live in `migrations/sqlite` and `migrations/postgres` with matching version
//! numbers; they run at start-up (`store.migrate_on_start`) and with `fctf migrate`.

mod admin_accounts;
mod admin_edits;
mod admin_results;
mod audit;
mod catalog;
mod challenges;
mod config;
mod dump;
mod error;
mod fields;
mod flags;
mod hints;
mod instances;
mod pages;
mod player;
mod records;
mod registration;
mod scoring;
mod sessions;
mod solutions;
mod sql;
mod standings;
mod submissions;
mod teams;
mod tokens;
mod users;

#[doc(hidden)]
pub mod testing;

#[cfg(test)]
pub(crate) mod tests;

pub use admin_accounts::{ImportTeam, ImportUser, ImportedAccounts};
pub use admin_edits::{FileCommitError, FileOwner, FileRecord, Topic};
pub use admin_results::{MarkOutcome, ScoreEvent, Standing, SubmissionFilter};
pub use audit::{ActionLog, AuditEntry, AuditQuery, CheatEvent, NewActionLog, NewAuditEntry, NewCheatEvent};
pub use catalog::{Bracket, StoredFile, Tag, TopicLink};
pub use challenges::{Challenge, ChallengeState, DeploySettings, NewChallenge};
pub use config::ConfigEntry;
pub use dump::{EVENT_TABLES, TableDump};
pub use error::StoreError;
pub use fields::{Field, FieldEntry, FieldOwner, NewField};
pub use flags::{Flag, NewFlag};
pub use hints::{Hint, NewHint, NewUnlock, Unlock, UnlockOutcome};
pub use instances::{Instance, InstanceState, NewInstance};
pub use pages::{NewPage, Page};
pub use player::{AccountSnapshot, TeamChange, TeamSnapshot, TicketOutcome};
pub use records::{Award, ChallengeVersion, DeployRecord, NewAward, NewNotification, NewTicket, Notification, Ticket};
pub use registration::RegistrationField;
pub use scoring::dynamic_value;
pub use sessions::Session;
pub use solutions::Solution;
pub use standings::{AwardRow, ScoreData, ScoredChallenge, ScoredTeam, ScoredUser, SolveRow};
pub use submissions::{Account, SolveOutcome, Submission, SubmissionKind};
pub use teams::{JoinOutcome, NewTeam, Team, TeamUpdate};
pub use tokens::ApiToken;
pub use users::{NewUser, User, UserRole, UserUpdate};

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use serde::Deserialize;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{Any, AnyPool, ConnectOptions, Executor, Transaction};

use crate::config::Secret;

/// Which store backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StoreBackendKind {
    /// Embedded SQLite file (one process only).
    Sqlite,
    /// PostgreSQL (shared by every process).
    Postgres,
}

/// The `[store]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StoreConfig {
    /// Which database.
    pub backend: StoreBackendKind,
    /// Connection URL (secret).
    pub url: Secret,
    /// Pool size.
    pub max_connections: u32,
    /// Apply pending migrations when the process starts.
    pub migrate_on_start: bool,
}

/// SQL dialect of the connected database.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Dialect {
    Sqlite,
    Postgres,
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
                        .execute("PRAGMA busy_timeout = 10000; PRAGMA journal_mode = WAL; PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
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

    /// Starts a write transaction: `BEGIN IMMEDIATE` on SQLite (take the write lock now and
    /// wait on `busy_timeout` rather than fail on a lock upgrade), a plain `BEGIN` on PostgreSQL.
    pub(crate) async fn begin_write(&self) -> Result<Transaction<'static, Any>, StoreError> {
        let transaction = match self.dialect {
            Dialect::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Dialect::Postgres => self.pool.begin().await?,
        };
        Ok(transaction)
    }

    /// On PostgreSQL, locks one row of `table` for the rest of the transaction
    /// (`FOR NO KEY UPDATE`, which does not block foreign-key checks of other writers); on
    /// SQLite the `BEGIN IMMEDIATE` write lock already serializes writers. Returns false when
    /// the row does not exist (checked on both backends).
    pub(crate) async fn lock_row(
        &self,
        transaction: &mut Transaction<'static, Any>,
        table: &'static str,
        id: i64,
    ) -> Result<bool, StoreError> {
        let sql = match self.dialect {
            Dialect::Sqlite => format!("SELECT id FROM {table} WHERE id = $1"),
            Dialect::Postgres => format!("SELECT id FROM {table} WHERE id = $1 FOR NO KEY UPDATE"),
        };
        let found: Option<i64> = sqlx::query_scalar(&sql).bind(id).fetch_optional(&mut **transaction).await?;
        Ok(found.is_some())
    }
}

/// The current time in Unix seconds.
pub(crate) fn now() -> i64 {
    chrono::Utc::now().timestamp()
}
