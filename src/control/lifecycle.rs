//! Instance lifecycle: the guarded transitions of the durable instance rows, each followed by
//! the matching change of hot state in the cache. Used by center (start, stop, stop-all),
//! consumer (deploy) and listener (runtime events, expiry, resync, contest end).
//!
//! ```text
//! queued ──consumer──► deploying ──listener──► running ──stop/expiry──► stopping ──► stopped
//!   │                      │                      │                                   ▲
//!   └──stop (never ran)────┼──────────────────────┼───────────────────────────────────┘
//!                          └── runtime failure ───┴──► failed (reason)
//! ```
//!
//! The store row is the authority: every transition is a compare-and-set there, so of several
//! actors racing exactly one moves the instance and only that one performs the side effects.
//! The cache holds hot state only, rebuilt from the rows by [`Lifecycle::restore_hot_state`]:
//! - the team's instance slot (`Cache::reserve_instance_slot`, member = challenge id) while an
//!   instance of a real team is live, so the per-team concurrent limit holds;
//! - the gateway liveness marker (`Cache::mark_instance_live`) while running, until
//!   `time_finished`: clearing it revokes the instance's tokens at once.
//!
//! Decision: status reads go to the store (one indexed lookup). A cached status snapshot was
//! tried and dropped: a reader racing a transition could re-cache the old state after the
//! writer's invalidation, and players polling every second then saw a running instance as
//! deploying for the snapshot's lifetime.
//!
//! Cache failures never undo a store transition: they are logged, and the listener's resync
//! repairs the hot state.

use std::time::Duration;

use crate::cache::{Cache, SlotReservation};
use crate::domain::{ChallengeId, InstanceId, TeamId};
use crate::runtime::{Runtime, RuntimeError};
use crate::store::{Instance, InstanceState, Store, StoreError};

/// How long a slot reserved by a start request is held before anything refreshes it: longer
/// than the queue timeout plus the start budget, so it never lapses under a live instance;
/// every transition refreshes or releases it and the listener's resync re-reserves it.
pub const RESERVATION_HOLD: Duration = Duration::from_secs(30 * 60);
/// Margin added to a running instance's `time_finished` for its slot hold.
pub const RUNNING_HOLD_MARGIN: Duration = Duration::from_secs(10 * 60);
/// CAS retries when another actor moves the instance between our read and our write.
const MAX_CAS_ATTEMPTS: usize = 5;
/// Instance lifetime when the challenge sets none (or a non-positive one), in minutes.
pub const DEFAULT_TIME_LIMIT_MINUTES: i64 = 30;

/// An instance's lifetime in seconds: the challenge's time limit, or
/// [`DEFAULT_TIME_LIMIT_MINUTES`] when it has none or a non-positive one (a zero limit would
/// make an instance that expires the moment it starts).
pub fn time_limit_secs(deploy: &crate::store::DeploySettings) -> i64 {
    let minutes = deploy.time_limit_minutes.filter(|minutes| *minutes > 0).unwrap_or(DEFAULT_TIME_LIMIT_MINUTES);
    minutes.saturating_mul(60)
}

/// `time_finished` of an instance becoming running at `now`: its lifetime from now, capped at
/// the event end when one is set.
pub fn time_finished(now: i64, deploy: &crate::store::DeploySettings, event_end: i64) -> i64 {
    let finish = now.saturating_add(time_limit_secs(deploy));
    if event_end > 0 && event_end < finish { event_end } else { finish }
}

/// The cache name of a team's slot set.
pub fn slot_team(team_id: TeamId) -> String {
    team_id.to_string()
}

/// The slot member of a challenge.
pub fn slot_member(challenge_id: ChallengeId) -> String {
    challenge_id.to_string()
}

/// What a stop did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopResult {
    /// This call moved the instance to `stopped`.
    Stopped(Instance),
    /// This call moved it to `stopping`, but the runtime could not remove it yet; the listener
    /// retries.
    Stopping(Instance),
    /// Another actor stopped (or is stopping) it, or it had already ended.
    AlreadyStopped(Instance),
}

/// Instance transitions with their cache side effects. Cheap to clone.
#[derive(Clone, Debug)]
pub struct Lifecycle {
    store: Store,
    cache: Cache,
    runtime: Runtime,
}

impl Lifecycle {
    /// Builds the lifecycle over the process's backends.
    pub fn new(store: Store, cache: Cache, runtime: Runtime) -> Self {
        Self { store, cache, runtime }
    }

    /// The store.
    pub fn store(&self) -> &Store {
        &self.store
    }

    /// The cache.
    pub fn cache(&self) -> &Cache {
        &self.cache
    }

    /// The runtime.
    pub fn runtime(&self) -> &Runtime {
        &self.runtime
    }

    /// Clears the hot state of an instance that reached a terminal state: its tokens stop
    /// working, its team slot is free again.
    pub async fn release_hot_state(&self, instance: &Instance) {
        if let Err(error) = self.cache.clear_instance_live(instance.id).await {
            tracing::warn!(%error, instance = %instance.id, "could not clear an instance liveness marker");
        }
        if instance.team_id.is_real()
            && let Err(error) = self
                .cache
                .release_instance_slot(&slot_team(instance.team_id), &slot_member(instance.challenge_id))
                .await
        {
            tracing::warn!(%error, instance = %instance.id, "could not release an instance slot; it expires on its own");
        }
    }

    /// Rebuilds the hot state of a live instance from its row (after a cache loss): the
    /// liveness marker while running, the team slot while live. If the instance ended
    /// meanwhile, whatever was just re-created is released again.
    pub async fn restore_hot_state(&self, instance: &Instance) -> Result<(), crate::cache::CacheError> {
        if instance.state == InstanceState::Running
            && let Some(expires_at) = instance.expires_at
        {
            self.cache.mark_instance_live(instance.id, expires_at).await?;
        }
        if instance.team_id.is_real() && !instance.state.is_terminal() {
            let hold = slot_hold(instance);
            let team = slot_team(instance.team_id);
            let member = slot_member(instance.challenge_id);
            if !self.cache.refresh_instance_slot(&team, &member, hold).await? {
                // Re-reserve regardless of the limit: the instance exists, the quota follows it.
                let outcome = self.cache.reserve_instance_slot(&team, &member, u32::MAX, hold).await?;
                debug_assert_ne!(outcome, SlotReservation::LimitReached);
            }
        }
        match self.store.get_instance(instance.id).await {
            Ok(current) if current.state.is_terminal() => self.release_hot_state(&current).await,
            Ok(_) | Err(StoreError::NotFound) => {}
            Err(error) => tracing::warn!(%error, instance = %instance.id, "could not re-check an instance"),
        }
        Ok(())
    }

    /// Moves a `queued` instance to `deploying` (the consumer picked it up); false when it is
    /// no longer queued.
    pub async fn begin_deploy(&self, instance: &Instance) -> Result<bool, StoreError> {
        let moved = self
            .store
            .transition_instance(instance.id, &[InstanceState::Queued], InstanceState::Deploying, None)
            .await?;
        Ok(moved)
    }

    /// Marks an instance of `team`/`challenge` running at `upstream` until `expires_at`;
    /// false when it was not queued or deploying any more. The gateway liveness marker is set
    /// *before* the row turns running, so a player never sees a token the gateway refuses
    /// (and it is cleared again when the transition loses); the team slot is then held until
    /// after `expires_at` (refreshed only, never resurrected: a slot lost with the cache is the
    /// resync's to restore).
    pub async fn mark_running(&self, instance: &Instance, upstream: &str, expires_at: i64) -> Result<bool, StoreError> {
        if let Err(error) = self.cache.mark_instance_live(instance.id, expires_at).await {
            tracing::warn!(%error, instance = %instance.id, "could not mark a running instance live; the listener's resync retries");
        }
        if !self.store.mark_instance_running(instance.id, upstream, expires_at).await? {
            if let Err(error) = self.cache.clear_instance_live(instance.id).await {
                tracing::warn!(%error, instance = %instance.id, "could not clear a liveness marker");
            }
            return Ok(false);
        }
        if instance.team_id.is_real() {
            let left = u64::try_from(expires_at.saturating_sub(crate::store::now())).unwrap_or(0);
            let hold = Duration::from_secs(left) + RUNNING_HOLD_MARGIN;
            let refreshed = self
                .cache
                .refresh_instance_slot(&slot_team(instance.team_id), &slot_member(instance.challenge_id), hold)
                .await;
            if let Err(error) = refreshed {
                tracing::warn!(%error, instance = %instance.id, "could not extend an instance slot; the resync retries");
            }
        }
        Ok(true)
    }

    /// Moves a live instance to `failed` with `reason` (an instance being stopped ends
    /// `stopped` instead), releases its hot state and removes its runtime object. Returns the
    /// row when this call ended it.
    pub async fn fail(&self, id: InstanceId, reason: &str) -> Result<Option<Instance>, StoreError> {
        let failing = [InstanceState::Queued, InstanceState::Deploying, InstanceState::Running];
        let ended = if self.store.transition_instance(id, &failing, InstanceState::Failed, Some(reason)).await? {
            true
        } else {
            self.store.transition_instance(id, &[InstanceState::Stopping], InstanceState::Stopped, None).await?
        };
        if !ended {
            return Ok(None);
        }
        let instance = self.store.get_instance(id).await?;
        self.release_hot_state(&instance).await;
        self.remove_runtime_object(id).await;
        Ok(Some(instance))
    }

    /// Stops a live instance: a queued one ends `stopped` at once (the consumer drops its
    /// job); a deploying or running one goes `stopping` (tokens refused from now on), its
    /// runtime object is removed, then it ends `stopped`.
    pub async fn stop(&self, mut instance: Instance, reason: &str) -> Result<StopResult, StoreError> {
        for _ in 0..MAX_CAS_ATTEMPTS {
            match instance.state {
                InstanceState::Queued => {
                    if self
                        .store
                        .transition_instance(
                            instance.id,
                            &[InstanceState::Queued],
                            InstanceState::Stopped,
                            Some(reason),
                        )
                        .await?
                    {
                        let stopped = self.store.get_instance(instance.id).await?;
                        self.release_hot_state(&stopped).await;
                        return Ok(StopResult::Stopped(stopped));
                    }
                }
                InstanceState::Deploying | InstanceState::Running => {
                    let from = [InstanceState::Deploying, InstanceState::Running];
                    if self.store.transition_instance(instance.id, &from, InstanceState::Stopping, Some(reason)).await?
                    {
                        let stopping = self.store.get_instance(instance.id).await?;
                        // Revoke first: the token must stop working before the runtime is done.
                        if let Err(error) = self.cache.clear_instance_live(stopping.id).await {
                            tracing::warn!(%error, instance = %stopping.id, "could not clear an instance liveness marker");
                        }
                        return self.finish_stop(stopping).await;
                    }
                }
                InstanceState::Stopping | InstanceState::Stopped | InstanceState::Failed => {
                    return Ok(StopResult::AlreadyStopped(instance));
                }
            }
            instance = self.store.get_instance(instance.id).await?;
        }
        Err(StoreError::Unavailable(format!("instance {} kept changing state; try again", instance.id)))
    }

    /// Removes the runtime object of a `stopping` instance and moves it to `stopped`. When the
    /// runtime cannot be reached the instance stays `stopping` (the listener retries).
    pub async fn finish_stop(&self, instance: Instance) -> Result<StopResult, StoreError> {
        match self.runtime.stop(instance.id).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {}
            Err(error) => {
                tracing::warn!(%error, instance = %instance.id, "could not remove an instance from the runtime; will retry");
                return Ok(StopResult::Stopping(instance));
            }
        }
        if self.store.transition_instance(instance.id, &[InstanceState::Stopping], InstanceState::Stopped, None).await?
        {
            let stopped = self.store.get_instance(instance.id).await?;
            self.release_hot_state(&stopped).await;
            return Ok(StopResult::Stopped(stopped));
        }
        // Another actor (the listener, seeing the runtime object go) completed this stop.
        let current = self.store.get_instance(instance.id).await?;
        if current.state == InstanceState::Stopped {
            return Ok(StopResult::Stopped(current));
        }
        Ok(StopResult::AlreadyStopped(current))
    }

    /// Removes an instance's runtime object, if any (failures are logged: ghost collection
    /// retries).
    pub async fn remove_runtime_object(&self, id: InstanceId) {
        match self.runtime.stop(id).await {
            Ok(()) | Err(RuntimeError::NotFound(_)) => {}
            Err(error) => {
                tracing::warn!(%error, instance = %id, "could not remove a runtime object; ghost collection retries")
            }
        }
    }
}

/// How long a live instance's slot is held: until well after `time_finished` when running,
/// [`RESERVATION_HOLD`] before.
pub fn slot_hold(instance: &Instance) -> Duration {
    match instance.expires_at {
        Some(expires_at) if instance.state == InstanceState::Running => {
            let left = u64::try_from(expires_at.saturating_sub(crate::store::now())).unwrap_or(0);
            Duration::from_secs(left) + RUNNING_HOLD_MARGIN
        }
        _ => RESERVATION_HOLD,
    }
}
