//! `fctf event export FILE` / `fctf event import FILE`: the whole event as one JSON document.
//!
//! Format (`"format": "fctf-event"`, `"version": 1`): the schema version it was taken from,
//! every row of the event tables (`store::EVENT_TABLES`: settings, accounts, challenges and
//! their children, submissions, solves, awards, unlocks, notifications, tickets, logs) with
//! their ids, and every stored file (`files` rows) base64-encoded with its SHA-1. JSON keeps
//! the tool dependency-free and the file diffable; files are embedded so that one document is
//! the whole event. Sessions and instances are runtime state and are left out; API tokens are
//! kept (as digests), so tokens keep working after a move.
//!
//! Import only goes into an empty event with the same schema version: files are written first
//! (and removed again if the rows cannot be loaded), then every row in one transaction, so a
//! failed import leaves nothing behind. Export then import reproduces the event exactly (the
//! `admin_event` tests compare every record).

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine;
use serde::{Deserialize, Serialize};

use crate::api::admin::storage::{FileStorage, sha1_hex};
use crate::store::{Store, StoreError, TableDump};

/// The `format` marker of an event document.
pub const FORMAT: &str = "fctf-event";
/// The document version this fctf writes and reads.
pub const VERSION: i64 = 1;

/// Why an export or import failed.
#[derive(Debug, thiserror::Error)]
pub enum EventError {
    /// Reading or writing a file failed.
    #[error("{0}")]
    Io(String),
    /// The document is not an fctf event this version can load.
    #[error("invalid event document: {0}")]
    Format(String),
    /// The target already holds an event.
    #[error("the target event is not empty ({0}); import into a fresh data directory or database")]
    NotEmpty(String),
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// One stored file in the document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ArchivedFile {
    /// `<dir>/<name>`.
    pub location: String,
    /// Lowercase hex SHA-1 of the content.
    pub sha1: String,
    /// Base64 (standard alphabet) of the content.
    pub data: String,
}

/// The event document.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventDocument {
    /// Always [`FORMAT`].
    pub format: String,
    /// Always [`VERSION`].
    pub version: i64,
    /// Migration version of the exporting database.
    pub schema: i64,
    /// Export time (Unix seconds).
    pub exported_at: i64,
    /// Rows per table.
    pub tables: BTreeMap<String, TableDump>,
    /// Stored files.
    pub files: Vec<ArchivedFile>,
}

/// What an export or import moved.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EventSummary {
    /// Rows written or read.
    pub rows: usize,
    /// Files written or read.
    pub files: usize,
    /// Locations with a row but no file on disk (export only; left out of the document).
    pub missing_files: Vec<String>,
}

/// Builds the event document from a store and its files.
pub async fn snapshot(store: &Store, data_dir: &Path) -> Result<(EventDocument, EventSummary), EventError> {
    let tables = store.dump_event_tables().await?;
    let storage = FileStorage::new(data_dir);
    let mut summary =
        EventSummary { rows: tables.values().map(|table| table.rows.len()).sum(), ..EventSummary::default() };
    let mut files = Vec::new();
    if let Some(dump) = tables.get("files")
        && let Some(position) = dump.columns.iter().position(|column| column == "location")
    {
        for row in &dump.rows {
            let Some(location) = row.get(position).and_then(|value| value.as_str()) else { continue };
            match storage.read(location).await {
                Ok(bytes) => files.push(ArchivedFile {
                    location: location.to_owned(),
                    sha1: sha1_hex(&bytes),
                    data: base64::engine::general_purpose::STANDARD.encode(&bytes),
                }),
                Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
                    summary.missing_files.push(location.to_owned())
                }
                Err(error) => return Err(EventError::Io(format!("{location}: {error}"))),
            }
        }
    }
    summary.files = files.len();
    let document = EventDocument {
        format: FORMAT.to_owned(),
        version: VERSION,
        schema: store.schema_version().await?,
        exported_at: chrono::Utc::now().timestamp(),
        tables,
        files,
    };
    Ok((document, summary))
}

/// Writes the event to `path` (atomically: a temporary file renamed into place). The document
/// holds password hashes and token digests, so it is created readable by its owner only.
pub async fn export_event(store: &Store, data_dir: &Path, path: &Path) -> Result<EventSummary, EventError> {
    let (document, summary) = snapshot(store, data_dir).await?;
    let text = serde_json::to_vec(&document).map_err(|error| EventError::Format(error.to_string()))?;
    let temporary = path.with_extension("partial");
    write_private(&temporary, &text)
        .await
        .map_err(|error| EventError::Io(format!("{}: {error}", temporary.display())))?;
    tokio::fs::rename(&temporary, path)
        .await
        .map_err(|error| EventError::Io(format!("{}: {error}", path.display())))?;
    Ok(summary)
}

async fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use tokio::io::AsyncWriteExt;
    let mut options = tokio::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    options.mode(0o600);
    let mut file = options.open(path).await?;
    file.write_all(bytes).await?;
    file.sync_all().await
}

/// Checks a document against this fctf and the target store.
async fn check(store: &Store, document: &EventDocument) -> Result<(), EventError> {
    if document.format != FORMAT {
        return Err(EventError::Format(format!("format is {:?}, expected {FORMAT:?}", document.format)));
    }
    if document.version != VERSION {
        return Err(EventError::Format(format!("document version {} (this fctf reads {VERSION})", document.version)));
    }
    let schema = store.schema_version().await?;
    if document.schema != schema {
        return Err(EventError::Format(format!(
            "exported from schema version {}, this database is at {schema}; use the same fctf version",
            document.schema
        )));
    }
    for file in &document.files {
        crate::api::admin::storage::validate_location(&file.location)
            .map_err(|error| EventError::Format(format!("file {:?}: {error}", file.location)))?;
    }
    let rows = store.count_event_rows().await?;
    if rows > 0 {
        return Err(EventError::NotEmpty(format!("{rows} rows")));
    }
    Ok(())
}

/// Loads a document into an empty event.
pub async fn restore(store: &Store, data_dir: &Path, document: &EventDocument) -> Result<EventSummary, EventError> {
    check(store, document).await?;
    let storage = FileStorage::new(data_dir);
    let mut decoded = Vec::with_capacity(document.files.len());
    for file in &document.files {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.data)
            .map_err(|error| EventError::Format(format!("file {:?}: {error}", file.location)))?;
        if sha1_hex(&bytes) != file.sha1 {
            return Err(EventError::Format(format!("file {:?}: content does not match its sha1", file.location)));
        }
        decoded.push((file.location.as_str(), bytes));
    }
    let mut written = Vec::new();
    let mut result = Ok(());
    for (location, bytes) in &decoded {
        match storage.write(location, bytes).await {
            Ok(_) => written.push(*location),
            Err(error) => {
                result = Err(EventError::Io(format!("{location}: {error}")));
                break;
            }
        }
    }
    if result.is_ok() {
        result = store.load_event_tables(&document.tables).await.map_err(|error| match error {
            StoreError::Conflict { constraint } => EventError::NotEmpty(constraint),
            other => EventError::Store(other),
        });
    }
    if let Err(error) = result {
        for location in written {
            let _ = storage.remove(location).await;
        }
        return Err(error);
    }
    Ok(EventSummary {
        rows: document.tables.values().map(|table| table.rows.len()).sum(),
        files: decoded.len(),
        missing_files: Vec::new(),
    })
}

/// Reads `path` and loads it into an empty event.
pub async fn import_event(store: &Store, data_dir: &Path, path: &Path) -> Result<EventSummary, EventError> {
    let text = tokio::fs::read(path).await.map_err(|error| EventError::Io(format!("{}: {error}", path.display())))?;
    let document: EventDocument =
        serde_json::from_slice(&text).map_err(|error| EventError::Format(error.to_string()))?;
    restore(store, data_dir, &document).await
}
