//! The sweeper: expiry at `time_finished`, cache-loss detection and contest-end cleanup, every
//! `listener.sweep_interval_ms`.
//!
//! Cache loss: the sweeper keeps a sentinel key (no expiry) in the cache. When it is gone the
//! cache was flushed or replaced, so the hot state of every live instance is rebuilt from the
//! store at once (liveness markers, slots) rather than at the next periodic resync: a flush
//! interrupts players' access for at most one sweep interval and never stops an instance.
//!
//! Contest end: once `end` (event configuration) has passed, every live instance is stopped
//! and every runtime object removed, once per `end` value (retried on the next sweep until
//! nothing failed).

use std::time::Duration;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::events::EVENT_ENDED;
use super::reconcile::Reconciler;
use crate::control::lifecycle::StopResult;
use crate::store::StoreError;

/// Cache key of the sentinel.
pub(super) const SENTINEL_KEY: &str = "pipeline:listener-sentinel";
/// Reason recorded on expired instances.
pub(super) const EXPIRED: &str = "time limit reached";
/// Stops run at once by a sweep.
const CONCURRENT_STOPS: usize = 16;

pub(super) struct Sweeper {
    reconciler: Reconciler,
    interval: Duration,
    cleaned_end: Option<i64>,
}

impl Sweeper {
    pub fn new(reconciler: Reconciler, interval: Duration) -> Self {
        Self { reconciler, interval, cleaned_end: None }
    }

    pub async fn run(mut self, token: CancellationToken) {
        let mut ticks = tokio::time::interval(self.interval);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = ticks.tick() => {}
            }
            self.check_cache().await;
            if let Err(error) = self.expire().await {
                tracing::warn!(%error, "expiry sweep failed; retrying on the next one");
            }
            self.contest_end().await;
        }
    }

    /// Stops every running instance at or past its `time_finished`.
    async fn expire(&self) -> Result<(), StoreError> {
        let lifecycle = self.reconciler.lifecycle();
        let expired = lifecycle.store().list_expired_instances(crate::store::now()).await?;
        if expired.is_empty() {
            return Ok(());
        }
        let results: Vec<_> = futures::stream::iter(expired)
            .map(|instance| async move {
                let id = instance.id;
                (id, lifecycle.stop(instance, EXPIRED).await)
            })
            .buffer_unordered(CONCURRENT_STOPS)
            .collect()
            .await;
        for (id, result) in results {
            match result {
                Ok(StopResult::Stopped(_) | StopResult::Stopping(_)) => {
                    tracing::info!(instance = %id, "instance expired");
                    self.reconciler.metrics().expired.inc();
                }
                Ok(StopResult::AlreadyStopped(_)) => {}
                Err(error) => tracing::warn!(%error, instance = %id, "could not stop an expired instance"),
            }
        }
        Ok(())
    }

    /// Rebuilds the hot state when the sentinel disappeared.
    async fn check_cache(&self) {
        let cache = self.reconciler.lifecycle().cache();
        match cache.get_bytes(SENTINEL_KEY).await {
            Ok(Some(_)) => {}
            Ok(None) => {
                match self.reconciler.restore_all_hot_state().await {
                    Ok(count) => tracing::info!(instances = count, "cache state rebuilt from the store"),
                    Err(error) => {
                        tracing::warn!(%error, "cannot rebuild the cache state yet");
                        return;
                    }
                }
                if let Err(error) = cache.set_bytes(SENTINEL_KEY, b"1", None).await {
                    tracing::warn!(%error, "cannot set the cache sentinel");
                }
            }
            Err(error) => tracing::debug!(%error, "cache unreachable; hot state rebuilt once it is back"),
        }
    }

    /// Stops everything once the event has ended.
    async fn contest_end(&mut self) {
        let end = self.reconciler.event().current().end;
        let now = crate::store::now();
        if end <= 0 || now <= end || self.cleaned_end == Some(end) {
            return;
        }
        let lifecycle = self.reconciler.lifecycle();
        let live = match lifecycle.store().list_live_instances(None).await {
            Ok(live) => live,
            Err(error) => {
                tracing::warn!(%error, "contest-end cleanup cannot list instances; retrying");
                return;
            }
        };
        let mut failures = 0usize;
        let results: Vec<_> = futures::stream::iter(live)
            .map(|instance| lifecycle.stop(instance, EVENT_ENDED))
            .buffer_unordered(CONCURRENT_STOPS)
            .collect()
            .await;
        for result in results {
            if !matches!(result, Ok(StopResult::Stopped(_) | StopResult::AlreadyStopped(_))) {
                failures += 1;
            }
        }
        match lifecycle.runtime().list().await {
            Ok(objects) => {
                for object in objects {
                    if let Err(error) = lifecycle.runtime().stop(object.instance_id).await
                        && !matches!(error, crate::runtime::RuntimeError::NotFound(_))
                    {
                        tracing::warn!(%error, instance = %object.instance_id, "contest-end cleanup could not remove an object");
                        failures += 1;
                    }
                }
            }
            Err(error) => {
                tracing::warn!(%error, "contest-end cleanup cannot list the runtime");
                failures += 1;
            }
        }
        if failures == 0 {
            tracing::info!(end, "contest ended: every instance stopped");
            self.cleaned_end = Some(end);
        }
    }
}
