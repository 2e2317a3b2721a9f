//! Test support, shared by unit tests and the `tests/it` integration tests (which link the
//! library without `cfg(test)`, hence a public, doc-hidden module; nothing here runs in
//! production).
//!
//! [`TestDatabase::create`] makes a fresh PostgreSQL database `fctf_test_<uuid>` through a
//! maintenance connection so that tests run in parallel without sharing rows; it is dropped
//! (`WITH (FORCE)`) by [`TestDatabase::drop_database`], or best-effort when the value is
//! dropped (a test that panicked).

use std::str::FromStr;

use sqlx::any::AnyConnectOptions;
use sqlx::{ConnectOptions, Connection, Executor};

use super::{Store, StoreError};

/// The variable naming the PostgreSQL maintenance URL for tests.
pub const DATABASE_URL_VAR: &str = "FCTF_TEST_DATABASE_URL";

/// A throw-away PostgreSQL database.
#[derive(Debug)]
pub struct TestDatabase {
    admin_url: String,
    name: String,
    url: String,
    dropped: bool,
}

impl TestDatabase {
    /// Creates an empty database next to the one `admin_url` points at.
    pub async fn create(admin_url: &str) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let name = format!("fctf_test_{}", uuid::Uuid::new_v4().simple());
        let mut parsed = url::Url::parse(admin_url).map_err(|error| StoreError::Other(format!("bad url: {error}")))?;
        parsed.set_path(&format!("/{name}"));
        let mut connection = AnyConnectOptions::from_str(admin_url)?.disable_statement_logging().connect().await?;
        connection.execute(format!("CREATE DATABASE \"{name}\"").as_str()).await?;
        connection.close().await?;
        Ok(TestDatabase { admin_url: admin_url.to_owned(), name, url: parsed.to_string(), dropped: false })
    }

    /// The URL of the new database.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The database name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Drops the database, disconnecting whoever is still connected.
    pub async fn drop_database(mut self) -> Result<(), StoreError> {
        self.dropped = true;
        drop_named(&self.admin_url, &self.name).await
    }
}

async fn drop_named(admin_url: &str, name: &str) -> Result<(), StoreError> {
    let mut connection = AnyConnectOptions::from_str(admin_url)?.disable_statement_logging().connect().await?;
    connection.execute(format!("DROP DATABASE IF EXISTS \"{name}\" WITH (FORCE)").as_str()).await?;
    connection.close().await?;
    Ok(())
}

impl Drop for TestDatabase {
    fn drop(&mut self) {
        if self.dropped {
            return;
        }
        let admin_url = self.admin_url.clone();
        let name = self.name.clone();
        // Best effort, on a private runtime so that this works inside or outside tokio.
        let cleanup = std::thread::spawn(move || {
            if let Ok(runtime) = tokio::runtime::Builder::new_current_thread().enable_all().build() {
                let _ = runtime.block_on(drop_named(&admin_url, &name));
            }
        });
        let _ = cleanup.join();
    }
}

/// A migrated store on a fresh PostgreSQL database, or `None` when `FCTF_TEST_DATABASE_URL` is
/// unset (the caller skips). An unreachable server is an error.
pub async fn fresh_postgres_store(max_connections: u32) -> Result<Option<(Store, TestDatabase)>, StoreError> {
    let Ok(admin_url) = std::env::var(DATABASE_URL_VAR) else {
        return Ok(None);
    };
    let database = TestDatabase::create(&admin_url).await?;
    let store = Store::connect_postgres(database.url(), max_connections).await?;
    store.migrate().await?;
    Ok(Some((store, database)))
}

/// A migrated private in-memory SQLite store.
pub async fn sqlite_memory_store() -> Result<Store, StoreError> {
    let store = Store::connect_sqlite("sqlite::memory:", 1).await?;
    store.migrate().await?;
    Ok(store)
}
