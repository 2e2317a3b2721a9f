//! Rate limits, connection caps and instance liveness, all through the cache seam so several
//! gateway replicas share them.
//!
//! - Token buckets (`Cache::rate_limit`): `gw:http:ip:<ip>`, `gw:http:tok:<t>:ip:<ip>`,
//!   `gw:tcp:ip:<ip>`, `gw:tcp:tok:<t>:ip:<ip>`, where `<t>` is the first 16 bytes of the token's
//!   SHA-256 in hex (the raw token is never a key). When the cache is the in-process memory
//!   backend there are no other replicas to share with, and the buckets are kept in the
//!   gateway itself with the same arithmetic ([`LocalBuckets`]), which spares every request two
//!   key strings and two trips through the seam.
//! - Connection caps are leases (`Cache::acquire_lease`) in the scopes `gw:tcp:global`,
//!   `gw:tcp:ip:<ip>` (taken at accept, before authentication) and `gw:tcp:tok:<t>` (after it).
//!   Sessions renew them every third of `lease_ttl_secs` and release them when they end; a
//!   crashed gateway's leases expire.
//! - Liveness (`Cache::is_instance_live`) is remembered in process for `liveness_cache_ms`.
//!   On a cache error the last answer seen within `STALE_FOR` is reused; with none,
//!   `liveness_fail_open` decides. The default is open: a cache outage must not disconnect
//!   every player, the token's own expiry still applies, and a stopped instance's upstream is
//!   gone anyway. Limits follow `limits_fail_open` (default open for the same reason).
//!
//! Every cache call is bounded by `cache_timeout_ms`; a failure or timeout opens a breaker for
//! `cache_retry_after_ms` during which the cache is not asked at all and the failure rules apply
//! at once, so an outage costs each player one short wait, not one per request. Cache errors
//! are logged at most once per second per kind, so an outage does not flood logs either.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::cache::{Cache, CacheError, LeaseGuard, TokenBucket, take_bucket_token};
use crate::domain::InstanceId;
use crate::gateway::config::Config;
use crate::gateway::verified::Authorized;

const STALE_FOR: Duration = Duration::from_secs(60);
const LIVENESS_ENTRIES_SOFT_MAX: usize = 8192;
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The first 16 bytes of the token's SHA-256: what stands for a token in limits.
pub(crate) fn token_digest(token: &str) -> [u8; 16] {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    let mut prefix = [0_u8; 16];
    prefix.copy_from_slice(&digest.as_ref()[..16]);
    prefix
}

/// One token bucket.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum BucketKey {
    HttpIp(IpAddr),
    HttpToken([u8; 16], IpAddr),
    TcpIp(IpAddr),
    TcpToken([u8; 16], IpAddr),
}

impl BucketKey {
    /// The bucket's name in the cache.
    fn cache_name(&self) -> String {
        match self {
            Self::HttpIp(ip) => format!("gw:http:ip:{ip}"),
            Self::HttpToken(digest, ip) => format!("gw:http:tok:{}:ip:{ip}", hex::encode(digest)),
            Self::TcpIp(ip) => format!("gw:tcp:ip:{ip}"),
            Self::TcpToken(digest, ip) => format!("gw:tcp:tok:{}:ip:{ip}", hex::encode(digest)),
        }
    }
}

/// Token buckets kept in this process, used when the cache is in process too (the memory
/// backend, whose keys nothing outside this gateway could see): the same arithmetic as
/// `Cache::rate_limit` and the same forgetting rule (a bucket is dropped once it would be full
/// again), without building key strings or crossing the seam. Expired buckets are swept at
/// most once a second.
#[derive(Default)]
struct LocalBuckets {
    state: Mutex<LocalState>,
}

#[derive(Default)]
struct LocalState {
    /// Each bucket with the Unix millisecond from which it counts as full (forgotten).
    buckets: HashMap<BucketKey, (TokenBucket, i64)>,
    next_sweep_ms: i64,
}

impl LocalBuckets {
    fn take(&self, key: BucketKey, capacity: u32, refill_per_sec: f64, now_ms: i64) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now_ms >= state.next_sweep_ms {
            state.buckets.retain(|_, (_, forget_at)| *forget_at > now_ms);
            state.next_sweep_ms = now_ms.saturating_add(1000);
        }
        let step = |previous: Option<TokenBucket>| {
            let (bucket, decision, keep_ms) = take_bucket_token(previous, capacity, refill_per_sec, now_ms);
            let forget_at = now_ms.saturating_add(i64::try_from(keep_ms).unwrap_or(i64::MAX));
            ((bucket, forget_at), decision.allowed)
        };
        match state.buckets.entry(key) {
            Entry::Occupied(mut occupied) => {
                let (bucket, forget_at) = *occupied.get();
                let (next, allowed) = step((forget_at > now_ms).then_some(bucket));
                *occupied.get_mut() = next;
                allowed
            }
            Entry::Vacant(vacant) => {
                let (next, allowed) = step(None);
                vacant.insert(next);
                allowed
            }
        }
    }
}

/// Logs a cache failure at most once per second.
#[derive(Default)]
struct LogThrottle {
    last_ms: AtomicI64,
}

impl LogThrottle {
    fn warn(&self, what: &str, error: &CacheError) {
        let now = chrono::Utc::now().timestamp_millis();
        let last = self.last_ms.load(Ordering::Relaxed);
        if now - last >= 1000 && self.last_ms.compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed).is_ok()
        {
            tracing::warn!(%error, "gateway {what} failed on the cache");
        }
    }
}

/// Why a TCP connection was refused a slot.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum CapRefusal {
    Global,
    PerIp,
    PerToken,
}

/// The connection leases of one session; releases them when dropped.
#[derive(Default)]
pub(crate) struct Leases {
    held: Vec<LeaseGuard>,
}

impl Leases {
    /// Renews every held lease.
    async fn renew(&self) -> Result<(), CacheError> {
        for lease in &self.held {
            lease.renew().await?;
        }
        Ok(())
    }

    /// Releases every lease now (each attempt bounded; a lease that cannot be released expires).
    pub(crate) async fn release(self) {
        for lease in self.held {
            match tokio::time::timeout(RELEASE_TIMEOUT, lease.release()).await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::debug!(%error, "failed to release a connection lease; it will expire"),
                Err(_elapsed) => tracing::debug!("releasing a connection lease timed out; it will expire"),
            }
        }
    }

    fn absorb(&mut self, other: Leases) {
        self.held.extend(other.held);
    }
}

/// Rate limits, caps and liveness of one gateway.
pub(crate) struct Limits {
    cache: Cache,
    /// Buckets kept here instead of in the cache, when the cache is in process.
    local: Option<LocalBuckets>,
    cfg: LimitSettings,
    liveness: Mutex<HashMap<InstanceId, (bool, Instant)>>,
    rate_log: LogThrottle,
    lease_log: LogThrottle,
    liveness_log: LogThrottle,
    /// Unix milliseconds until which the cache is not asked (after a failure).
    skip_cache_until_ms: AtomicI64,
}

struct LimitSettings {
    http_ip: (f64, u32),
    http_token: (f64, u32),
    tcp_ip: (f64, u32),
    tcp_token: (f64, u32),
    tcp_max_conns: u32,
    tcp_max_conns_per_ip: u32,
    tcp_max_conns_per_token: u32,
    lease_ttl: Duration,
    liveness_ttl: Duration,
    liveness_fail_open: bool,
    limits_fail_open: bool,
    cache_timeout: Duration,
    cache_retry_after_ms: i64,
}

impl Limits {
    pub(crate) fn new(cache: Cache, cfg: &Config) -> Self {
        Self {
            local: cache.is_in_process().then(LocalBuckets::default),
            cache,
            cfg: LimitSettings {
                http_ip: (cfg.http_ip_rate, cfg.http_ip_burst),
                http_token: (cfg.http_token_rate, cfg.http_token_burst),
                tcp_ip: (cfg.tcp_ip_rate, cfg.tcp_ip_burst),
                tcp_token: (cfg.tcp_token_rate, cfg.tcp_token_burst),
                tcp_max_conns: cfg.tcp_max_conns,
                tcp_max_conns_per_ip: cfg.tcp_max_conns_per_ip,
                tcp_max_conns_per_token: cfg.tcp_max_conns_per_token,
                lease_ttl: cfg.lease_ttl(),
                liveness_ttl: Duration::from_millis(cfg.liveness_cache_ms),
                liveness_fail_open: cfg.liveness_fail_open,
                limits_fail_open: cfg.limits_fail_open,
                cache_timeout: Duration::from_millis(cfg.cache_timeout_ms),
                cache_retry_after_ms: i64::try_from(cfg.cache_retry_after_ms).unwrap_or(i64::MAX),
            },
            liveness: Mutex::new(HashMap::new()),
            rate_log: LogThrottle::default(),
            lease_log: LogThrottle::default(),
            liveness_log: LogThrottle::default(),
            skip_cache_until_ms: AtomicI64::new(0),
        }
    }

    /// Runs one cache call under the timeout and the breaker.
    async fn guarded<T>(&self, call: impl Future<Output = Result<T, CacheError>>) -> Result<T, CacheError> {
        let now = chrono::Utc::now().timestamp_millis();
        if now < self.skip_cache_until_ms.load(Ordering::Relaxed) {
            return Err(CacheError::Unavailable("skipped after a recent cache failure".to_owned()));
        }
        let outcome = match tokio::time::timeout(self.cfg.cache_timeout, call).await {
            Ok(outcome) => outcome,
            Err(_elapsed) => Err(CacheError::Unavailable("cache call timed out".to_owned())),
        };
        if let Err(CacheError::Unavailable(_)) = &outcome {
            let until = chrono::Utc::now().timestamp_millis().saturating_add(self.cfg.cache_retry_after_ms);
            self.skip_cache_until_ms.fetch_max(until, Ordering::Relaxed);
        }
        outcome
    }

    async fn bucket(&self, key: impl FnOnce() -> BucketKey, (rate, burst): (f64, u32)) -> bool {
        if burst == 0 || !rate.is_finite() || rate <= 0.0 {
            return true;
        }
        let key = key();
        if let Some(local) = &self.local {
            return local.take(key, burst, rate, chrono::Utc::now().timestamp_millis());
        }
        match self.guarded(self.cache.rate_limit(&key.cache_name(), burst, rate)).await {
            Ok(decision) => decision.allowed,
            Err(error) => {
                self.rate_log.warn("rate limit", &error);
                self.cfg.limits_fail_open
            }
        }
    }

    /// Per-IP bucket over every HTTP request.
    pub(crate) async fn allow_http_ip(&self, ip: IpAddr) -> bool {
        self.bucket(|| BucketKey::HttpIp(ip), self.cfg.http_ip).await
    }

    /// Per-(token, IP) bucket over authenticated HTTP requests.
    pub(crate) async fn allow_http_token(&self, authorized: &Authorized, ip: IpAddr) -> bool {
        self.bucket(|| BucketKey::HttpToken(authorized.token_digest(), ip), self.cfg.http_token).await
    }

    /// Per-IP bucket over new TCP connections.
    pub(crate) async fn allow_tcp_ip(&self, ip: IpAddr) -> bool {
        self.bucket(|| BucketKey::TcpIp(ip), self.cfg.tcp_ip).await
    }

    /// Per-(token, IP) bucket over authenticated TCP sessions.
    pub(crate) async fn allow_tcp_token(&self, authorized: &Authorized, ip: IpAddr) -> bool {
        self.bucket(|| BucketKey::TcpToken(authorized.token_digest(), ip), self.cfg.tcp_token).await
    }

    async fn lease(&self, scopes: Vec<(String, u32, CapRefusal)>) -> Result<Leases, CapRefusal> {
        let counted: Vec<(String, u32, CapRefusal)> = scopes.into_iter().filter(|(_, limit, _)| *limit > 0).collect();
        if counted.is_empty() {
            return Ok(Leases::default());
        }
        let request: Vec<(&str, u32)> = counted.iter().map(|(scope, limit, _)| (scope.as_str(), *limit)).collect();
        match self.guarded(self.cache.acquire_lease(&request, self.cfg.lease_ttl)).await {
            Ok(Ok(guard)) => Ok(Leases { held: vec![guard] }),
            Ok(Err(full_index)) => {
                Err(counted.get(full_index).map(|(_, _, refusal)| *refusal).unwrap_or(CapRefusal::Global))
            }
            Err(error) => {
                self.lease_log.warn("connection lease", &error);
                if self.cfg.limits_fail_open { Ok(Leases::default()) } else { Err(CapRefusal::Global) }
            }
        }
    }

    /// Takes the global and per-IP connection slots of a new TCP connection.
    pub(crate) async fn tcp_connection(&self, ip: IpAddr) -> Result<Leases, CapRefusal> {
        self.lease(vec![
            ("gw:tcp:global".to_owned(), self.cfg.tcp_max_conns, CapRefusal::Global),
            (format!("gw:tcp:ip:{ip}"), self.cfg.tcp_max_conns_per_ip, CapRefusal::PerIp),
        ])
        .await
    }

    /// Adds the per-token slot to a session's leases.
    pub(crate) async fn tcp_token(&self, leases: &mut Leases, token_key: &str) -> Result<(), CapRefusal> {
        let extra = self
            .lease(vec![(format!("gw:tcp:tok:{token_key}"), self.cfg.tcp_max_conns_per_token, CapRefusal::PerToken)])
            .await?;
        leases.absorb(extra);
        Ok(())
    }

    /// Renews a session's leases; a failure is logged and the session goes on (the lease
    /// expires on its own if the cache stays away).
    pub(crate) async fn renew(&self, leases: &Leases) {
        if leases.held.is_empty() {
            return;
        }
        if let Err(error) = self.guarded(leases.renew()).await {
            self.lease_log.warn("lease renewal", &error);
        }
    }

    /// How often sessions renew their leases.
    pub(crate) fn renew_every(&self) -> Duration {
        self.cfg.lease_ttl / 3
    }

    /// True while the instance is live (see the module docs for the caching and failure rules).
    pub(crate) async fn is_live(&self, instance_id: InstanceId) -> bool {
        self.live_until(instance_id).await.is_some()
    }

    /// `Some(until)` while the instance is live, where `until` is when this answer stops being
    /// fresh (`liveness_cache_ms` after the cache gave it; now, for an answer that came from
    /// the failure rules, which must not be reused); `None` when it is not live.
    pub(crate) async fn live_until(&self, instance_id: InstanceId) -> Option<Instant> {
        let remembered = self.remembered(instance_id);
        if let Some((live, checked)) = remembered
            && checked.elapsed() < self.cfg.liveness_ttl
        {
            return live.then(|| checked + self.cfg.liveness_ttl);
        }
        match self.guarded(self.cache.is_instance_live(instance_id)).await {
            Ok(live) => {
                let checked = self.remember(instance_id, live);
                live.then(|| checked + self.cfg.liveness_ttl)
            }
            Err(error) => {
                self.liveness_log.warn("liveness check", &error);
                let live = match remembered {
                    Some((live, checked)) if checked.elapsed() < STALE_FOR => live,
                    _ => self.cfg.liveness_fail_open,
                };
                live.then(Instant::now)
            }
        }
    }

    fn remembered(&self, instance_id: InstanceId) -> Option<(bool, Instant)> {
        let entries = self.liveness.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(&instance_id).copied()
    }

    fn remember(&self, instance_id: InstanceId, live: bool) -> Instant {
        let checked = Instant::now();
        let mut entries = self.liveness.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= LIVENESS_ENTRIES_SOFT_MAX {
            entries.retain(|_, (_, checked)| checked.elapsed() < STALE_FOR);
        }
        entries.insert(instance_id, (live, checked));
        checked
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_buckets_follow_the_cache_arithmetic_and_forget_full_buckets() {
        let local = LocalBuckets::default();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let key = BucketKey::HttpIp(ip);
        assert!(local.take(key, 2, 1.0, 10_000));
        assert!(local.take(key, 2, 1.0, 10_000));
        assert!(!local.take(key, 2, 1.0, 10_250), "empty");
        assert!(local.take(BucketKey::TcpIp(ip), 2, 1.0, 10_250), "buckets are per kind");
        assert!(local.take(key, 2, 1.0, 11_000), "refilled one token");
        // Long after the bucket is full again it is swept away.
        assert!(local.take(BucketKey::HttpIp("192.0.2.2".parse().unwrap()), 2, 1.0, 100_000));
        let state = local.state.lock().unwrap();
        assert_eq!(state.buckets.len(), 1);
    }

    #[test]
    fn cache_names_keep_their_documented_shape() {
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let digest = token_digest("payload.signature");
        assert_eq!(BucketKey::HttpIp(ip).cache_name(), "gw:http:ip:192.0.2.1");
        assert_eq!(
            BucketKey::TcpToken(digest, ip).cache_name(),
            format!("gw:tcp:tok:{}:ip:192.0.2.1", hex::encode(digest))
        );
    }

    #[test]
    fn token_digest_is_a_short_hash_not_the_token() {
        let key = hex::encode(token_digest("payload.signature"));
        assert_eq!(key.len(), 32);
        assert!(!key.contains("payload"));
        assert_eq!(token_digest("payload.signature"), token_digest("payload.signature"));
        assert_ne!(token_digest("payload.signature"), token_digest("payload.signaturf"));
    }
}
