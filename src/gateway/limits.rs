//! Rate limits, connection caps and instance liveness, all through the cache seam so several
//! gateway replicas share them.
//!
//! - Token buckets (`Cache::rate_limit`): `gw:http:ip:<ip>`, `gw:http:tok:<t>:ip:<ip>`,
//!   `gw:tcp:ip:<ip>`, `gw:tcp:tok:<t>:ip:<ip>`, where `<t>` is the first 16 bytes of the token's
//!   SHA-256 in hex (the raw token is never a key).
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
use std::future::Future;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use crate::cache::{Cache, CacheError, LeaseGuard};
use crate::domain::InstanceId;
use crate::gateway::config::Config;

const STALE_FOR: Duration = Duration::from_secs(60);
const LIVENESS_ENTRIES_SOFT_MAX: usize = 8192;
const RELEASE_TIMEOUT: Duration = Duration::from_secs(2);

/// The key fragment standing for a token in cache keys.
pub(crate) fn token_key(token: &str) -> String {
    let digest = ring::digest::digest(&ring::digest::SHA256, token.as_bytes());
    hex::encode(&digest.as_ref()[..16])
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

    async fn bucket(&self, name: impl FnOnce() -> String, (rate, burst): (f64, u32)) -> bool {
        if rate <= 0.0 || burst == 0 {
            return true;
        }
        let name = name();
        match self.guarded(self.cache.rate_limit(&name, burst, rate)).await {
            Ok(decision) => decision.allowed,
            Err(error) => {
                self.rate_log.warn("rate limit", &error);
                self.cfg.limits_fail_open
            }
        }
    }

    /// Per-IP bucket over every HTTP request.
    pub(crate) async fn allow_http_ip(&self, ip: IpAddr) -> bool {
        self.bucket(|| format!("gw:http:ip:{ip}"), self.cfg.http_ip).await
    }

    /// Per-(token, IP) bucket over authenticated HTTP requests; `token_key` is only computed
    /// when the bucket is on.
    pub(crate) async fn allow_http_token(&self, token_key: impl FnOnce() -> String, ip: IpAddr) -> bool {
        self.bucket(|| format!("gw:http:tok:{}:ip:{ip}", token_key()), self.cfg.http_token).await
    }

    /// Per-IP bucket over new TCP connections.
    pub(crate) async fn allow_tcp_ip(&self, ip: IpAddr) -> bool {
        self.bucket(|| format!("gw:tcp:ip:{ip}"), self.cfg.tcp_ip).await
    }

    /// Per-(token, IP) bucket over authenticated TCP sessions.
    pub(crate) async fn allow_tcp_token(&self, token_key: &str, ip: IpAddr) -> bool {
        self.bucket(|| format!("gw:tcp:tok:{token_key}:ip:{ip}"), self.cfg.tcp_token).await
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
        let remembered = self.remembered(instance_id);
        if let Some((live, checked)) = remembered
            && checked.elapsed() < self.cfg.liveness_ttl
        {
            return live;
        }
        match self.guarded(self.cache.is_instance_live(instance_id)).await {
            Ok(live) => {
                self.remember(instance_id, live);
                live
            }
            Err(error) => {
                self.liveness_log.warn("liveness check", &error);
                match remembered {
                    Some((live, checked)) if checked.elapsed() < STALE_FOR => live,
                    _ => self.cfg.liveness_fail_open,
                }
            }
        }
    }

    fn remembered(&self, instance_id: InstanceId) -> Option<(bool, Instant)> {
        let entries = self.liveness.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        entries.get(&instance_id).copied()
    }

    fn remember(&self, instance_id: InstanceId, live: bool) {
        let mut entries = self.liveness.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= LIVENESS_ENTRIES_SOFT_MAX {
            entries.retain(|_, (_, checked)| checked.elapsed() < STALE_FOR);
        }
        entries.insert(instance_id, (live, Instant::now()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_key_is_a_short_hash_not_the_token() {
        let key = token_key("payload.signature");
        assert_eq!(key.len(), 32);
        assert!(!key.contains("payload"));
        assert_eq!(key, token_key("payload.signature"));
        assert_ne!(key, token_key("payload.signaturf"));
    }
}
