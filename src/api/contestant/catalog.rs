//! The challenge catalog as the listing endpoints read it, cached per process.
//!
//! Every player's challenge list starts from the same rows, so they are read once per
//! [`CATALOG_TTL`] (1 s) rather than once per request, and dropped at once in every process by
//! `signals::challenges_changed` (the admin API's edits). Endpoints that act on one challenge
//! (submission, hints, files) read it from the store directly, so a state change applies to
//! them immediately.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::api::ApiState;
use crate::store::{Challenge, StoreError};

/// How long the catalog is reused.
pub const CATALOG_TTL: Duration = Duration::from_secs(1);

/// The per-process catalog cache.
#[derive(Debug, Default)]
pub struct CatalogCache {
    current: Mutex<Option<(Instant, Arc<Vec<Challenge>>)>>,
    generation: AtomicU64,
    loading: tokio::sync::Mutex<()>,
}

impl CatalogCache {
    /// Drops the cached catalog.
    pub fn invalidate(&self) {
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.generation.fetch_add(1, Ordering::SeqCst);
        *current = None;
    }

    fn fresh(&self) -> Option<Arc<Vec<Challenge>>> {
        let current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        current.as_ref().filter(|(stored, _)| stored.elapsed() < CATALOG_TTL).map(|(_, challenges)| challenges.clone())
    }

    /// Every challenge by ascending id. One read at a time per process: concurrent requests
    /// that find the catalog expired wait for that read and share it.
    pub async fn challenges(&self, state: &ApiState) -> Result<Arc<Vec<Challenge>>, StoreError> {
        if let Some(challenges) = self.fresh() {
            return Ok(challenges);
        }
        let _loading = self.loading.lock().await;
        if let Some(challenges) = self.fresh() {
            return Ok(challenges);
        }
        let generation = self.generation.load(Ordering::SeqCst);
        let challenges = Arc::new(state.store.list_challenges().await?);
        let mut current = self.current.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if self.generation.load(Ordering::SeqCst) == generation {
            *current = Some((Instant::now(), challenges.clone()));
        }
        Ok(challenges)
    }
}
