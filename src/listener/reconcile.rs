//! Full resync: the store's live instances against the runtime's objects.
//!
//! For every live instance: restore its hot state (team slot, liveness marker); a `deploying`
//! instance whose object already runs is marked running (a missed event); one with no running
//! object past `listener.start_timeout_secs` fails ("creation or readiness timeout"); a
//! `queued` one past `listener.queue_timeout_secs` fails (its job was lost); a `stopping` one
//! is stopped again (the runtime refused earlier); a `running` one whose object is gone in two
//! resyncs in a row fails ("instance disappeared").
//!
//! For every object with no live instance (a ghost): removed once it has been seen for
//! `listener.ghost_grace_secs` *and* a fresh read of the store still shows no live instance.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use super::Config;
use crate::control::lifecycle::Lifecycle;
use crate::domain::InstanceId;
use crate::event::EventSettings;
use crate::metrics::Counter;
use crate::runtime::RuntimeObject;
use crate::store::{Instance, InstanceState, StoreError};

/// Seconds a `stopping` instance waits before the listener retries its stop.
const STOP_RETRY_AFTER_SECS: i64 = 10;
/// Resyncs in a row a running instance's object must be missing before it fails.
const MISSING_RESYNCS: u32 = 2;

/// The listener's reconciliation state. Cheap to clone.
#[derive(Clone)]
pub(super) struct Reconciler {
    inner: Arc<Inner>,
}

struct Inner {
    lifecycle: Lifecycle,
    cfg: Config,
    event: EventSettings,
    /// Objects with no live instance, and when they were first seen.
    ghosts: Mutex<HashMap<InstanceId, Instant>>,
    /// Running instances whose object was missing, and in how many resyncs in a row.
    missing: Mutex<HashMap<InstanceId, u32>>,
    /// Serialises resyncs (the watch loop and a cache-loss recovery may both ask for one).
    resync_lock: tokio::sync::Mutex<()>,
    pub(super) metrics: Metrics,
}

pub(super) struct Metrics {
    pub running: Counter,
    pub failed: Counter,
    pub expired: Counter,
    pub ghosts_removed: Counter,
    pub resyncs: Counter,
}

impl Reconciler {
    pub fn new(lifecycle: Lifecycle, cfg: Config, event: EventSettings, metrics: &crate::metrics::Metrics) -> Self {
        let counter = |name: &str, help: &str| metrics.counter(name, help, &[]);
        let metrics = Metrics {
            running: counter("fctf_listener_running_total", "Instances that became running."),
            failed: counter("fctf_listener_failed_total", "Instances that failed."),
            expired: counter("fctf_listener_expired_total", "Instances stopped at time_finished."),
            ghosts_removed: counter(
                "fctf_listener_ghosts_removed_total",
                "Runtime objects removed with no live instance.",
            ),
            resyncs: counter("fctf_listener_resyncs_total", "Full resyncs with the runtime."),
        };
        Self {
            inner: Arc::new(Inner {
                lifecycle,
                cfg,
                event,
                ghosts: Mutex::default(),
                missing: Mutex::default(),
                resync_lock: tokio::sync::Mutex::new(()),
                metrics,
            }),
        }
    }

    pub fn lifecycle(&self) -> &Lifecycle {
        &self.inner.lifecycle
    }

    pub fn cfg(&self) -> &Config {
        &self.inner.cfg
    }

    pub fn event(&self) -> &EventSettings {
        &self.inner.event
    }

    pub(super) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Restores the hot state of every live instance from the store (after a cache loss).
    pub async fn restore_all_hot_state(&self) -> Result<usize, StoreError> {
        let live = self.lifecycle().store().list_live_instances(None).await?;
        for instance in &live {
            if let Err(error) = self.lifecycle().restore_hot_state(instance).await {
                tracing::warn!(%error, instance = %instance.id, "could not restore an instance's hot state");
            }
        }
        Ok(live.len())
    }

    /// One full resync.
    pub async fn resync(&self) {
        let _serialised = self.inner.resync_lock.lock().await;
        self.metrics().resyncs.inc();
        let objects = match self.lifecycle().runtime().list().await {
            Ok(objects) => objects,
            Err(error) => {
                tracing::warn!(%error, "cannot list the runtime's objects; resync skipped");
                return;
            }
        };
        let live = match self.lifecycle().store().list_live_instances(None).await {
            Ok(live) => live,
            Err(error) => {
                tracing::warn!(%error, "cannot list live instances; resync skipped");
                return;
            }
        };
        let by_id: HashMap<InstanceId, &RuntimeObject> =
            objects.iter().map(|object| (object.instance_id, object)).collect();
        let now = crate::store::now();
        for instance in &live {
            if let Err(error) = self.lifecycle().restore_hot_state(instance).await {
                tracing::warn!(%error, instance = %instance.id, "could not restore an instance's hot state");
            }
            if let Err(error) = self.reconcile_instance(instance, by_id.get(&instance.id).copied(), now).await {
                tracing::warn!(%error, instance = %instance.id, "could not reconcile an instance");
            }
        }
        let live_ids: HashSet<InstanceId> = live.iter().map(|instance| instance.id).collect();
        self.collect_ghosts(&objects, &live_ids).await;
    }

    async fn reconcile_instance(
        &self,
        instance: &Instance,
        object: Option<&RuntimeObject>,
        now: i64,
    ) -> Result<(), StoreError> {
        let age_in_state = now.saturating_sub(instance.updated_at);
        match instance.state {
            InstanceState::Queued => {
                if now.saturating_sub(instance.created_at) > secs(self.cfg().queue_timeout_secs) {
                    self.fail(instance.id, "waited too long in the deployment queue").await?;
                }
            }
            InstanceState::Deploying => match object.and_then(|object| object.upstream.clone()) {
                Some(upstream) => self.on_running(instance.id, &upstream).await?,
                None if age_in_state > secs(self.cfg().start_timeout_secs) => {
                    let reason = if object.is_some() { "readiness timeout" } else { "creation timeout" };
                    self.fail(instance.id, reason).await?;
                }
                None => {}
            },
            InstanceState::Running => {
                let misses = {
                    let mut missing = self.inner.missing.lock().unwrap_or_else(PoisonError::into_inner);
                    if object.is_some() {
                        missing.remove(&instance.id);
                        0
                    } else {
                        let count = missing.entry(instance.id).or_insert(0);
                        *count += 1;
                        *count
                    }
                };
                if misses >= MISSING_RESYNCS {
                    self.inner.missing.lock().unwrap_or_else(PoisonError::into_inner).remove(&instance.id);
                    self.fail(instance.id, "the instance disappeared from the runtime").await?;
                }
            }
            InstanceState::Stopping => {
                if age_in_state > STOP_RETRY_AFTER_SECS {
                    self.lifecycle().finish_stop(instance.clone()).await?;
                }
            }
            InstanceState::Stopped | InstanceState::Failed => {}
        }
        Ok(())
    }

    async fn collect_ghosts(&self, objects: &[RuntimeObject], live_ids: &HashSet<InstanceId>) {
        let grace = std::time::Duration::from_secs(self.cfg().ghost_grace_secs);
        let candidates: Vec<InstanceId> = {
            let mut ghosts = self.inner.ghosts.lock().unwrap_or_else(PoisonError::into_inner);
            let present: HashSet<InstanceId> =
                objects.iter().map(|object| object.instance_id).filter(|id| !live_ids.contains(id)).collect();
            ghosts.retain(|id, _| present.contains(id));
            let now = Instant::now();
            for id in &present {
                ghosts.entry(*id).or_insert(now);
            }
            ghosts.iter().filter(|(_, first_seen)| first_seen.elapsed() >= grace).map(|(id, _)| *id).collect()
        };
        for id in candidates {
            // The store decides, read fresh: an instance may have started since the listing.
            let still_ghost = match self.lifecycle().store().get_instance(id).await {
                Ok(instance) => instance.state.is_terminal(),
                Err(StoreError::NotFound) => true,
                Err(error) => {
                    tracing::warn!(%error, instance = %id, "cannot check a ghost against the store");
                    false
                }
            };
            if still_ghost {
                tracing::info!(instance = %id, "removing a runtime object with no live instance");
                self.lifecycle().remove_runtime_object(id).await;
                self.metrics().ghosts_removed.inc();
            }
            self.inner.ghosts.lock().unwrap_or_else(PoisonError::into_inner).remove(&id);
        }
    }

    /// Ends an instance `failed` (logged and counted).
    pub async fn fail(&self, id: InstanceId, reason: &str) -> Result<(), StoreError> {
        if self.lifecycle().fail(id, reason).await?.is_some() {
            tracing::info!(instance = %id, reason, "instance failed");
            self.metrics().failed.inc();
        }
        Ok(())
    }
}

fn secs(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
