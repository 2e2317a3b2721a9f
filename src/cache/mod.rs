//! The `Cache` seam: hot, shared, expiring state with atomic domain operations.
//!
//! Backends: `MemoryCache` (embedded default; one process) and `RedisCache` (production). Code
//! outside this module sees only the `Cache` handle. Every multi-step operation is one atomic
//! step on the backend (a Lua script on Redis, one critical section in memory) and is exposed as
//! a domain method, never as raw commands. All keys are prefixed with `cache.prefix`, so several
//! events (or parallel tests) can share one Redis.
//!
//! The cache holds no data of record: losing it must never lose data or kill a running
//! instance; everything is rebuilt from the store.

mod instances;
mod memory;
mod once;
mod redis;

#[cfg(test)]
pub(crate) mod tests;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::config::Secret;

pub use memory::MemoryCache;
/// The token-bucket arithmetic of `Cache::rate_limit`, for buckets kept in process.
pub(crate) use memory::{Bucket as TokenBucket, take_token as take_bucket_token};
pub use redis::RedisCache;

/// Which cache backend to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CacheBackendKind {
    Memory,
    Redis,
}

/// The `[cache]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheConfig {
    pub backend: CacheBackendKind,
    pub url: Secret,
    pub prefix: String,
}

/// Errors of the cache seam.
#[derive(Debug, thiserror::Error)]
pub enum CacheError {
    /// The backend could not be reached or timed out; retrying may help.
    #[error("cache unavailable: {0}")]
    Unavailable(String),
    /// A stored value could not be decoded.
    #[error("cache value for {key} is malformed: {reason}")]
    Malformed { key: String, reason: String },
    /// Anything else the backend reported.
    #[error("cache error: {0}")]
    Other(String),
}

/// Outcome of a token-bucket check.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RateDecision {
    /// True when the request may go ahead (a token was taken).
    pub allowed: bool,
    /// Whole tokens left after this request.
    pub remaining: u32,
    /// How long until the next token, when refused.
    pub retry_after: Duration,
}

/// Outcome of taking a batch of tokens (`Cache::take_tokens`).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TokenGrant {
    /// Tokens taken, at most the number asked for; fewer only when the bucket ran out.
    pub granted: u32,
    /// Whole tokens left after this grant.
    pub remaining: u32,
    /// When fewer were granted than asked for: how long until the next whole token.
    pub retry_after: Duration,
}

impl TokenGrant {
    /// The grant of a one-token request as a rate-limit decision.
    pub(crate) fn into_decision(self) -> RateDecision {
        RateDecision { allowed: self.granted >= 1, remaining: self.remaining, retry_after: self.retry_after }
    }
}

/// Outcome of an instance-slot reservation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlotReservation {
    /// The slot is now held by this member.
    Reserved,
    /// The member already holds a slot.
    AlreadyHeld,
    /// The set is at its limit.
    LimitReached,
}

/// Outcome of a lease acquisition over several counted scopes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseOutcome {
    /// Every scope had room; the lease now counts in all of them.
    Granted,
    /// The scope at this index (in the order given) was full; nothing was taken.
    Full(usize),
}

/// The backend interface: small, byte-oriented, object-safe. Keys arrive already prefixed.
/// Times are milliseconds since the Unix epoch as seen by the caller (`now_ms`), so that both
/// backends agree and tests can drive time.
#[async_trait]
pub(crate) trait CacheBackend: Send + Sync + 'static {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError>;
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError>;
    /// Sets only when absent; true when set.
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError>;
    /// Deletes; true when the key existed.
    async fn delete(&self, key: &str) -> Result<bool, CacheError>;
    /// Deletes only when the current value equals `value` (owner-checked lock release).
    async fn delete_if_equals(&self, key: &str, value: &[u8]) -> Result<bool, CacheError>;
    /// Remaining time to live; `None` when the key is missing or has no expiry.
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError>;
    /// Token bucket: `capacity` tokens, refilled at `refill_per_sec`; takes up to `want` tokens
    /// (at least one), as many as the bucket holds. Callers pass `capacity >= 1` and a positive
    /// finite rate (the handle treats anything else as a disabled limiter). The key expires once
    /// the bucket would be full again.
    async fn take_tokens(
        &self,
        key: &str,
        capacity: u32,
        refill_per_sec: f64,
        want: u32,
        now_ms: i64,
    ) -> Result<TokenGrant, CacheError>;
    /// Cooldown check-and-set: when the last mark is older than `cooldown` (or absent) marks
    /// now and returns `None`; otherwise returns the time left. `cooldown` is at least 1 ms.
    async fn cooldown(&self, key: &str, cooldown: Duration, now_ms: i64) -> Result<Option<Duration>, CacheError>;
    /// Bounded counter: when the key is missing it starts at `initial`; if the counter is
    /// below `max` it is incremented and the new value returned, otherwise `None`.
    async fn increment_bounded(
        &self,
        key: &str,
        max: u64,
        initial: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, CacheError>;
    /// Decrements a counter that exists and is above zero (giving back a refused attempt).
    async fn decrement_floor(&self, key: &str) -> Result<(), CacheError>;
    /// Reserves `member` in the expiring set `key` (expired members pruned first) unless it is
    /// already there or the set holds `limit` members.
    async fn reserve_slot(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<SlotReservation, CacheError>;
    /// Moves a held slot's expiry; false (and nothing changes) when the member is not held or
    /// its slot already expired (an expired slot is never resurrected).
    async fn refresh_slot(&self, key: &str, member: &str, expires_at_ms: i64, now_ms: i64) -> Result<bool, CacheError>;
    /// Releases a slot; true when it was held and had not expired.
    async fn release_slot(&self, key: &str, member: &str, now_ms: i64) -> Result<bool, CacheError>;
    /// Members whose slot has not expired.
    async fn slot_members(&self, key: &str, now_ms: i64) -> Result<Vec<String>, CacheError>;
    /// Adds `lease_id` to each scope (an expiring set with a limit) if every scope has room.
    async fn acquire_lease(
        &self,
        scopes: &[(String, u32)],
        lease_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<LeaseOutcome, CacheError>;
    /// Extends a lease's expiry in every scope; true when it was live in all of them. A lease
    /// that expired in any scope is removed from all of them and false is returned (never
    /// resurrected: its room may already be taken).
    async fn renew_lease(
        &self,
        scopes: &[String],
        lease_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, CacheError>;
    /// Removes a lease from every scope.
    async fn release_lease(&self, scopes: &[String], lease_id: &str) -> Result<(), CacheError>;
    /// Counts live leases in a scope.
    async fn lease_count(&self, scope: &str, now_ms: i64) -> Result<u64, CacheError>;
    /// Deletes every key starting with `prefix` (already prefixed); returns how many.
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError>;
    /// Publishes a change signal to every subscriber in every process.
    async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError>;
    /// Subscribes to change signals of `channel`.
    async fn subscribe(&self, channel: &str) -> Result<ChangeStream, CacheError>;
    /// True when the state lives in this process only (nothing else can see it).
    fn in_process(&self) -> bool {
        false
    }
}

/// A stream of change signals (message bodies). Lagging receivers skip ahead: a change signal
/// means "something changed, reload", so dropping duplicates is harmless.
pub struct ChangeStream {
    receiver: tokio::sync::broadcast::Receiver<String>,
}

impl ChangeStream {
    pub(crate) fn new(receiver: tokio::sync::broadcast::Receiver<String>) -> Self {
        Self { receiver }
    }

    /// Waits for the next signal; `None` when the cache shut down.
    pub async fn next(&mut self) -> Option<String> {
        loop {
            match self.receiver.recv().await {
                Ok(message) => return Some(message),
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => continue,
                Err(tokio::sync::broadcast::error::RecvError::Closed) => return None,
            }
        }
    }
}

/// The cache handle. Cheap to clone.
#[derive(Clone)]
pub struct Cache {
    backend: Arc<dyn CacheBackend>,
    prefix: Arc<str>,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("prefix", &self.prefix).finish_non_exhaustive()
    }
}

/// Milliseconds since the Unix epoch.
pub(crate) fn now_ms() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

impl Cache {
    /// Connects the configured backend.
    pub async fn from_config(cfg: &CacheConfig) -> Result<Self, CacheError> {
        match cfg.backend {
            CacheBackendKind::Memory => Ok(Self::memory(&cfg.prefix)),
            CacheBackendKind::Redis => {
                let backend = RedisCache::connect(cfg.url.expose()).await?;
                Ok(Self { backend: Arc::new(backend), prefix: cfg.prefix.as_str().into() })
            }
        }
    }

    /// A fresh in-memory cache.
    pub fn memory(prefix: &str) -> Self {
        Self { backend: Arc::new(MemoryCache::new()), prefix: prefix.into() }
    }

    /// True when the cache lives in this process only (the memory backend): state that only
    /// one component uses may then be kept by that component directly, with the same rules.
    pub fn is_in_process(&self) -> bool {
        self.backend.in_process()
    }

    fn key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// Reads a JSON value.
    pub async fn get_json<T: DeserializeOwned>(&self, key: &str) -> Result<Option<T>, CacheError> {
        let full = self.key(key);
        let Some(bytes) = self.backend.get(&full).await? else { return Ok(None) };
        serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|error| CacheError::Malformed { key: full, reason: error.to_string() })
    }

    /// Writes a JSON value, with an optional time to live.
    pub async fn set_json<T: Serialize>(&self, key: &str, value: &T, ttl: Option<Duration>) -> Result<(), CacheError> {
        let bytes = serde_json::to_vec(value).map_err(|error| CacheError::Other(error.to_string()))?;
        self.backend.set(&self.key(key), &bytes, ttl).await
    }

    /// Reads raw bytes.
    pub async fn get_bytes(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        self.backend.get(&self.key(key)).await
    }

    /// Writes raw bytes.
    pub async fn set_bytes(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError> {
        self.backend.set(&self.key(key), value, ttl).await
    }

    /// Deletes a key; true when it existed.
    pub async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        self.backend.delete(&self.key(key)).await
    }

    /// Remaining time to live of a key.
    pub async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        self.backend.ttl(&self.key(key)).await
    }

    /// Deletes every key under `prefix`; returns how many were removed.
    pub async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        self.backend.delete_prefix(&self.key(prefix)).await
    }

    /// Tries to take the lock `name` for `ttl`. The returned guard releases it only if this
    /// owner still holds it (an expired lock taken over by someone else is left alone).
    pub async fn try_lock(&self, name: &str, ttl: Duration) -> Result<Option<LockGuard>, CacheError> {
        let owner = uuid::Uuid::new_v4().simple().to_string();
        let key = self.key(&format!("lock:{name}"));
        if self.backend.set_if_absent(&key, owner.as_bytes(), ttl).await? {
            Ok(Some(LockGuard { backend: self.backend.clone(), key, owner, released: false }))
        } else {
            Ok(None)
        }
    }

    /// Takes one token from the bucket `name` (`capacity` tokens, refilled continuously at
    /// `refill_per_sec`). A capacity of 0 or a refill rate that is not a positive finite number
    /// disables the limiter (always allowed, nothing stored), as the original gateway did.
    pub async fn rate_limit(&self, name: &str, capacity: u32, refill_per_sec: f64) -> Result<RateDecision, CacheError> {
        let grant = self.take_tokens(name, capacity, refill_per_sec, 1).await?;
        Ok(grant.into_decision())
    }

    /// Takes up to `want` tokens at once from the bucket `name` (the bucket of `rate_limit`,
    /// with the same arithmetic): as many whole tokens as it holds, at most `want`, in one atomic
    /// step. A `want` of 0 counts as 1. A disabled limiter (as for `rate_limit`) grants `want`
    /// and stores nothing.
    pub async fn take_tokens(
        &self,
        name: &str,
        capacity: u32,
        refill_per_sec: f64,
        want: u32,
    ) -> Result<TokenGrant, CacheError> {
        let want = want.max(1);
        if capacity == 0 || !refill_per_sec.is_finite() || refill_per_sec <= 0.0 {
            return Ok(TokenGrant { granted: want, remaining: capacity, retry_after: Duration::ZERO });
        }
        self.backend.take_tokens(&self.key(&format!("rl:{name}")), capacity, refill_per_sec, want, now_ms()).await
    }

    /// Cooldown check-and-set: `Ok(None)` when allowed (and the cooldown starts now),
    /// `Ok(Some(left))` when still cooling down. A zero cooldown always allows.
    pub async fn check_cooldown(&self, name: &str, cooldown: Duration) -> Result<Option<Duration>, CacheError> {
        if cooldown.as_millis() == 0 {
            return Ok(None);
        }
        self.backend.cooldown(&self.key(&format!("cd:{name}")), cooldown, now_ms()).await
    }

    /// Counts one attempt against a budget of `max`; `initial` seeds a missing counter (e.g.
    /// from the store after a cache loss). `None` when the budget is spent.
    pub async fn consume_attempt(
        &self,
        name: &str,
        max: u64,
        initial: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, CacheError> {
        self.backend.increment_bounded(&self.key(&format!("att:{name}")), max, initial, ttl).await
    }

    /// Gives back one attempt (the attempt was refused before it was judged).
    pub async fn refund_attempt(&self, name: &str) -> Result<(), CacheError> {
        self.backend.decrement_floor(&self.key(&format!("att:{name}"))).await
    }

    /// Reserves an instance slot for `member` in the team's quota of `limit` concurrent slots,
    /// held for `hold` unless refreshed.
    pub async fn reserve_instance_slot(
        &self,
        team: &str,
        member: &str,
        limit: u32,
        hold: Duration,
    ) -> Result<SlotReservation, CacheError> {
        let now = now_ms();
        let expires = now.saturating_add(duration_ms(hold));
        self.backend.reserve_slot(&self.key(&format!("slots:{team}")), member, limit, expires, now).await
    }

    /// Extends a held slot; false when the slot is not held (never resurrects one).
    pub async fn refresh_instance_slot(&self, team: &str, member: &str, hold: Duration) -> Result<bool, CacheError> {
        let now = now_ms();
        let expires = now.saturating_add(duration_ms(hold));
        self.backend.refresh_slot(&self.key(&format!("slots:{team}")), member, expires, now).await
    }

    /// Releases a slot; true when it was held (and had not expired).
    pub async fn release_instance_slot(&self, team: &str, member: &str) -> Result<bool, CacheError> {
        self.backend.release_slot(&self.key(&format!("slots:{team}")), member, now_ms()).await
    }

    /// The members holding a live slot of the team.
    pub async fn instance_slots(&self, team: &str) -> Result<Vec<String>, CacheError> {
        self.backend.slot_members(&self.key(&format!("slots:{team}")), now_ms()).await
    }

    /// Acquires a connection lease counted in every scope (`(scope name, limit)`), all or
    /// nothing. The lease expires after `ttl` unless renewed, so a crashed holder cannot leak
    /// it; the guard renews nothing by itself (call `LeaseGuard::renew`) and releases on drop.
    pub async fn acquire_lease(
        &self,
        scopes: &[(&str, u32)],
        ttl: Duration,
    ) -> Result<Result<LeaseGuard, usize>, CacheError> {
        let lease_id = uuid::Uuid::new_v4().simple().to_string();
        let prefixed: Vec<(String, u32)> =
            scopes.iter().map(|(scope, limit)| (self.key(&format!("lease:{scope}")), *limit)).collect();
        let now = now_ms();
        match self.backend.acquire_lease(&prefixed, &lease_id, now.saturating_add(duration_ms(ttl)), now).await? {
            LeaseOutcome::Granted => Ok(Ok(LeaseGuard {
                backend: self.backend.clone(),
                scopes: prefixed.into_iter().map(|(scope, _)| scope).collect(),
                lease_id,
                ttl,
                released: false,
            })),
            LeaseOutcome::Full(index) => Ok(Err(index)),
        }
    }

    /// Live leases in a scope.
    pub async fn lease_count(&self, scope: &str) -> Result<u64, CacheError> {
        self.backend.lease_count(&self.key(&format!("lease:{scope}")), now_ms()).await
    }

    /// Signals a change on `topic` to every process (for invalidating in-process caches).
    pub async fn notify(&self, topic: &str, message: &str) -> Result<(), CacheError> {
        self.backend.publish(&self.key(&format!("chg:{topic}")), message).await
    }

    /// Subscribes to change signals on `topic`.
    pub async fn subscribe(&self, topic: &str) -> Result<ChangeStream, CacheError> {
        self.backend.subscribe(&self.key(&format!("chg:{topic}"))).await
    }
}

pub(crate) fn duration_ms(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A time to live in whole milliseconds for a backend expiry: at least 1 ms (Redis refuses a
/// zero expiry, and a zero TTL means "expire at once" rather than "keep forever").
pub(crate) fn expiry_ms(duration: Duration) -> i64 {
    duration_ms(duration).max(1)
}

/// A held lock; released (if still ours) by `release` or on drop.
pub struct LockGuard {
    backend: Arc<dyn CacheBackend>,
    key: String,
    owner: String,
    released: bool,
}

impl LockGuard {
    /// Releases the lock; false when it had expired and someone else holds it now.
    pub async fn release(mut self) -> Result<bool, CacheError> {
        self.released = true;
        self.backend.delete_if_equals(&self.key, self.owner.as_bytes()).await
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let backend = self.backend.clone();
        let key = std::mem::take(&mut self.key);
        let owner = std::mem::take(&mut self.owner);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(error) = backend.delete_if_equals(&key, owner.as_bytes()).await {
                    tracing::warn!(%error, "failed to release a cache lock; it will expire");
                }
            });
        }
    }
}

/// A held connection lease; released by `release` or on drop.
pub struct LeaseGuard {
    backend: Arc<dyn CacheBackend>,
    scopes: Vec<String>,
    lease_id: String,
    ttl: Duration,
    released: bool,
}

impl LeaseGuard {
    /// Extends the lease by its time to live from now. Returns false when the lease had already
    /// expired: it is then gone from every scope and is not revived (the holder should stop
    /// using the connection or acquire a new lease).
    pub async fn renew(&self) -> Result<bool, CacheError> {
        let now = now_ms();
        let expires = now.saturating_add(duration_ms(self.ttl));
        self.backend.renew_lease(&self.scopes, &self.lease_id, expires, now).await
    }

    /// The time to live the lease was taken with (renew well within it).
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Releases the lease in every scope.
    pub async fn release(mut self) -> Result<(), CacheError> {
        self.released = true;
        self.backend.release_lease(&self.scopes, &self.lease_id).await
    }
}

impl Drop for LeaseGuard {
    fn drop(&mut self) {
        if self.released {
            return;
        }
        let backend = self.backend.clone();
        let scopes = std::mem::take(&mut self.scopes);
        let lease_id = std::mem::take(&mut self.lease_id);
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(error) = backend.release_lease(&scopes, &lease_id).await {
                    tracing::warn!(%error, "failed to release a connection lease; it will expire");
                }
            });
        }
    }
}
