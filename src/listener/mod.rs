//! The `listener` role: watches the runtime and reconciles instance state. Two loops:
//!
//! - **Events** ([`events`]): `Runtime::watch` drives `deploying → running` (setting
//!   `time_finished` = now + the challenge's time limit, capped at the event end, marking the
//!   instance live for the gateway, whose tokens then carry `exp = time_finished`), `→ failed`
//!   with the runtime's reason (image pull errors, crash loops, OOM, creation or readiness
//!   timeouts) with the runtime object removed, and `stopping → stopped`. A runtime object
//!   whose instance is no longer live is removed. When the watch stream ends (disconnect, lag,
//!   relist) the loop watches again and runs a full resync; it also resyncs every
//!   `listener.resync_interval_secs`.
//! - **Sweeper** ([`sweep`], every `listener.sweep_interval_ms`): stops instances at
//!   `time_finished` (expiry has this one authority; the runtime's lifetime limit is only a
//!   backstop), notices a flushed cache (a sentinel key disappears) and rebuilds the hot state
//!   from the store at once, and stops everything once when the event ends.
//!
//! The store is trusted, never the cache ([`reconcile`]): a resync restores the hot state of
//! every live instance (slots, liveness markers), fails instances stuck `queued` or
//! `deploying` beyond their budgets, retries stops the runtime refused, and removes a runtime
//! object with no live instance only after it has been seen for `listener.ghost_grace_secs`
//! and the store still has no live instance for it. Losing the cache therefore never kills a
//! running instance. One listener per deployment is assumed (as the original); two would only
//! duplicate idempotent work.

mod events;
mod reconcile;
mod sweep;

#[cfg(test)]
mod tests;

use std::time::Duration;

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::control::lifecycle::Lifecycle;
use crate::event::EventSettings;

/// The `[listener]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Seconds a runtime object with no live instance survives before it is removed.
    pub ghost_grace_secs: u64,
    /// Seconds between full resyncs with the runtime.
    pub resync_interval_secs: u64,
    /// Seconds a deploying instance gets to become running before it fails.
    pub start_timeout_secs: u64,
    /// Seconds a queued instance may wait before it fails (backstop for lost jobs).
    pub queue_timeout_secs: u64,
    /// Milliseconds between two expiry sweeps.
    pub sweep_interval_ms: u64,
}

/// Pause before watching again after the watch stream ended.
const REWATCH_PAUSE: Duration = Duration::from_millis(200);
/// Tasks applying runtime events. Events of one instance always go to the same task, so they
/// apply in order; different instances proceed in parallel.
const EVENT_WORKERS: usize = 16;
/// Events queued per worker before the watch loop waits.
const EVENT_QUEUE: usize = 256;

/// The listener role.
pub struct Listener {
    lifecycle: Lifecycle,
    cfg: Config,
    metrics: crate::metrics::Metrics,
}

impl Listener {
    /// Checks that the runtime and the store are available.
    pub fn bind(cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        let runtime = deps.runtime()?.clone();
        let store = deps.store()?.clone();
        let lifecycle = Lifecycle::new(store, deps.cache.clone(), runtime);
        Ok(Self { lifecycle, cfg: cfg.clone(), metrics: deps.metrics.clone() })
    }

    /// Runs until the token is cancelled.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        let event = EventSettings::load(self.lifecycle.store().clone(), self.lifecycle.cache().clone())
            .await
            .map_err(|error| anyhow::anyhow!("the listener cannot read the event configuration: {error}"))?;
        let refresher = event.spawn_refresher(token.child_token());
        let reconciler = reconcile::Reconciler::new(self.lifecycle.clone(), self.cfg.clone(), event, &self.metrics);
        let sweeper =
            sweep::Sweeper::new(reconciler.clone(), Duration::from_millis(self.cfg.sweep_interval_ms.max(50)));
        let sweeping = tokio::spawn(sweeper.run(token.child_token()));
        let (senders, mut workers) = spawn_event_workers(&reconciler);
        watch_loop(&reconciler, &senders, &self.cfg, &token).await;
        drop(senders);
        while let Some(joined) = workers.join_next().await {
            if let Err(join_error) = joined {
                tracing::warn!(%join_error, "listener event worker panicked");
            }
        }
        if let Err(join_error) = sweeping.await {
            tracing::warn!(%join_error, "listener sweeper panicked");
        }
        refresher.abort();
        Ok(())
    }
}

/// Starts the event workers; each ends when its sender is dropped and its queue is drained.
fn spawn_event_workers(
    reconciler: &reconcile::Reconciler,
) -> (Vec<tokio::sync::mpsc::Sender<crate::runtime::InstanceEvent>>, tokio::task::JoinSet<()>) {
    let mut senders = Vec::with_capacity(EVENT_WORKERS);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..EVENT_WORKERS {
        let (sender, mut receiver) = tokio::sync::mpsc::channel(EVENT_QUEUE);
        let reconciler = reconciler.clone();
        workers.spawn(async move {
            while let Some(event) = receiver.recv().await {
                reconciler.handle_event(event).await;
            }
        });
        senders.push(sender);
    }
    (senders, workers)
}

async fn watch_loop(
    reconciler: &reconcile::Reconciler,
    workers: &[tokio::sync::mpsc::Sender<crate::runtime::InstanceEvent>],
    cfg: &Config,
    token: &CancellationToken,
) {
    let resync_every = Duration::from_secs(cfg.resync_interval_secs.max(1));
    loop {
        // Subscribe first, then resync: nothing that happens in between is missed.
        let mut events = reconciler.lifecycle().runtime().watch();
        reconciler.resync().await;
        let mut resync = tokio::time::interval_at(tokio::time::Instant::now() + resync_every, resync_every);
        resync.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                () = token.cancelled() => return,
                _ = resync.tick() => reconciler.resync().await,
                event = futures::StreamExt::next(&mut events) => match event {
                    Some(event) => {
                        let shard = usize::try_from(event.instance_id().get().rem_euclid(workers.len() as i64)).unwrap_or(0);
                        if workers[shard].send(event).await.is_err() {
                            return;
                        }
                    }
                    None => {
                        tracing::info!("runtime watch ended; watching again and resyncing");
                        break;
                    }
                },
            }
        }
        tokio::select! {
            () = token.cancelled() => return,
            () = tokio::time::sleep(REWATCH_PAUSE) => {}
        }
    }
}
