//! Event configuration: the organiser's settings (times, modes, visibility, limits), typed and
//! validated, cached in every process and invalidated across processes on change.
//!
//! The store keeps them as CTFd-style `config(key, value)` text rows, so the CTFd admin API and
//! `ctfcli` can read and write them. `EventConfig::from_map` turns the rows into typed values
//! (unknown keys are kept verbatim in `raw` for CTFd compatibility; a malformed stored value
//! reads as its default, never as an error). Writes go through `EventSettings::update`, which
//! validates every known key first (all problems reported at once), writes all rows in one
//! store transaction, swaps the local copy and signals the other processes through the cache
//! (`Cache::notify("event-config")`). Every process also reloads periodically as a backstop for
//! a lost signal, so a change is visible everywhere within `RELOAD_INTERVAL` at worst and
//! within milliseconds normally.

mod keys;

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::cache::Cache;
use crate::store::{Store, StoreError};

pub use keys::{EventConfig, ScoreVisibility, UserMode, validate_value};

/// Topic of the cross-process change signal.
pub const CHANGE_TOPIC: &str = "event-config";
/// Backstop reload period.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(15);

/// Why an update was refused: one message per offending key.
#[derive(Debug, thiserror::Error)]
pub enum UpdateError {
    #[error("invalid configuration values")]
    Invalid(BTreeMap<String, String>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The process-wide view of the event configuration. Cheap to clone.
#[derive(Clone)]
pub struct EventSettings {
    store: Store,
    cache: Cache,
    current: Arc<RwLock<Arc<EventConfig>>>,
}

impl std::fmt::Debug for EventSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EventSettings").finish_non_exhaustive()
    }
}

impl EventSettings {
    /// Loads the configuration from the store.
    pub async fn load(store: Store, cache: Cache) -> Result<Self, StoreError> {
        let config = EventConfig::from_map(stored_rows(&store).await?);
        Ok(Self { store, cache, current: Arc::new(RwLock::new(Arc::new(config))) })
    }

    /// The configuration as last loaded.
    pub fn current(&self) -> Arc<EventConfig> {
        match self.current.read() {
            Ok(guard) => guard.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    fn replace(&self, config: EventConfig) {
        let mut guard = match self.current.write() {
            Ok(guard) => guard,
            Err(poisoned) => poisoned.into_inner(),
        };
        *guard = Arc::new(config);
    }

    /// Re-reads the store.
    pub async fn reload(&self) -> Result<(), StoreError> {
        self.replace(EventConfig::from_map(stored_rows(&self.store).await?));
        Ok(())
    }

    /// Validates and writes `updates` (`None` deletes a key) atomically, then tells every
    /// process. Nothing is written when any value is invalid.
    pub async fn update(&self, updates: &BTreeMap<String, Option<String>>) -> Result<Arc<EventConfig>, UpdateError> {
        let mut problems = BTreeMap::new();
        for (key, value) in updates {
            if let Some(value) = value
                && let Err(problem) = validate_value(key, value)
            {
                problems.insert(key.clone(), problem);
            }
        }
        if !problems.is_empty() {
            return Err(UpdateError::Invalid(problems));
        }
        let entries: Vec<(String, Option<String>)> =
            updates.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
        self.store.set_config_many(&entries).await?;
        self.reload().await?;
        if let Err(error) = self.cache.notify(CHANGE_TOPIC, "changed").await {
            tracing::warn!(%error, "could not signal the configuration change; other processes pick it up on their next reload");
        }
        Ok(self.current())
    }

    /// Deletes one key (its row) and tells every process; false when it was not stored.
    pub async fn remove(&self, key: &str) -> Result<bool, UpdateError> {
        let removed = self.store.delete_config(key).await?;
        if removed {
            self.reload().await?;
            if let Err(error) = self.cache.notify(CHANGE_TOPIC, "changed").await {
                tracing::warn!(%error, "could not signal the configuration change; other processes pick it up on their next reload");
            }
        }
        Ok(removed)
    }

    /// Keeps this process's copy fresh: reloads on every change signal and every
    /// `RELOAD_INTERVAL`, until the token is cancelled.
    pub fn spawn_refresher(&self, token: CancellationToken) -> tokio::task::JoinHandle<()> {
        let settings = self.clone();
        tokio::spawn(async move {
            let mut changes = match settings.cache.subscribe(CHANGE_TOPIC).await {
                Ok(changes) => Some(changes),
                Err(error) => {
                    tracing::warn!(%error, "cannot subscribe to configuration changes; relying on periodic reloads");
                    None
                }
            };
            let mut interval = tokio::time::interval(RELOAD_INTERVAL);
            interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                let signalled = async {
                    match changes.as_mut() {
                        Some(stream) => stream.next().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    () = token.cancelled() => return,
                    _ = interval.tick() => {}
                    message = signalled => {
                        if message.is_none() {
                            changes = None;
                        }
                    }
                }
                if let Err(error) = settings.reload().await {
                    tracing::warn!(%error, "configuration reload failed; keeping the previous values");
                }
            }
        })
    }
}

/// Stored rows with a value (a NULL value reads as absent).
async fn stored_rows(store: &Store) -> Result<BTreeMap<String, String>, StoreError> {
    let entries = store.list_config().await?;
    Ok(entries.into_iter().filter_map(|entry| entry.value.map(|value| (entry.key, value))).collect())
}

#[cfg(test)]
mod tests;
