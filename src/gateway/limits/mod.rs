//! Rate limits, connection caps and instance liveness, all through the cache seam so several
//! gateway replicas share them.
//!
//! - Token buckets: `gw:http:ip:<ip>`, `gw:http:tok:<t>:ip:<ip>`, `gw:tcp:ip:<ip>`,
//!   `gw:tcp:tok:<t>:ip:<ip>`, where `<t>` is the first 16 bytes of the token's SHA-256 in hex
//!   (the raw token is never a key). When the cache is the in-process memory backend there are
//!   no other replicas to share with, and the buckets are kept in the gateway itself with the
//!   same arithmetic (`local.rs`), which spares every request two key strings and two trips
//!   through the seam.
//! - On a shared cache (Redis) the buckets live in the cache and this replica leases tokens
//!   from them in batches (`leased.rs`, `Cache::take_tokens`: one Lua script takes up to `want`
//!   tokens and says how many it got). A request spends a token held here; only when none is
//!   left does one request ask the cache for a batch, while the others that find nothing held
//!   queue behind it (a per-bucket async lock, FIFO and cancellation-safe) and are served from
//!   what it brings, so a busy bucket costs about one round trip per batch, not two per request.
//!   - Batch size: the requests this replica saw for the bucket since its last ask, scaled to a
//!     50 ms window (`BATCH_WINDOW`), at least 1 and at most the bucket's refill over that
//!     window and an eighth of its burst. A slow client asks for one token at a time (as
//!     before, so it strands nothing); a busy one asks about once per window per replica; no
//!     replica ever holds more than an eighth of a burst (a few replicas cannot drain one
//!     between them by hoarding). Requests that find nothing held wait for one round trip, once
//!     per batch; refilling ahead of time would hide that wait but hold more tokens.
//!   - Held tokens expire 250 ms after they were granted (`GRANT_TTL`) and are not given back:
//!     unused grants do not pile up, at the price of admitting slightly fewer than the bucket
//!     allows when a client's demand stops.
//!   - A grant smaller than asked means the bucket ran dry; the bucket is then refused here
//!     without asking until the next token plus the rest of a batch would have refilled (at
//!     most one second), so a flood of refused requests costs one round trip per batch too.
//!     Refusing early is safe: the tokens stay in the bucket for whoever asks next.
//!   - Guarantee: every admitted request spent a token the cache handed out, each token is
//!     handed out once (the script is atomic), and held tokens are never copied, so all
//!     replicas together never admit more than the bucket's capacity plus its refill since it
//!     was created. Over a shorter interval they may also spend what they held when it began
//!     (at most one batch per replica, already taken from the bucket but not yet spent while the
//!     bucket refilled behind it).
//!   - Not done: evaluating the per-IP and per-(token, IP) HTTP buckets in one script. The two
//!     checks happen at different points of a request (the token is known only after
//!     authentication), and with batches each bucket is asked about 20 times a second at most,
//!     so joining the rare refills would save little for a second code path.
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
//! at once, so an outage costs each player one short wait, not one per request (requests that
//! need a refill check the breaker before queueing behind one). Cache errors are logged at most
//! once per second per kind, so an outage does not flood logs either.

mod leased;
mod local;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::future::Future;
use std::net::IpAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use self::leased::{Ask, LeasedBuckets, Shape, Take};
use self::local::LocalBuckets;
use crate::cache::{Cache, CacheError, LeaseGuard};
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

/// Where the token buckets are kept (see the module docs).
enum Buckets {
    /// In this process: the cache is in process too.
    Local(LocalBuckets),
    /// In the cache, with tokens leased here in batches.
    Leased(LeasedBuckets),
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
    buckets: Buckets,
    cfg: LimitSettings,
    liveness: Mutex<HashMap<InstanceId, (bool, Instant)>>,
    rate_log: LogThrottle,
    lease_log: LogThrottle,
    liveness_log: LogThrottle,
    /// Unix milliseconds until which the cache is not asked (after a failure).
    skip_cache_until_ms: AtomicI64,
}

struct LimitSettings {
    http_ip: Shape,
    http_token: Shape,
    tcp_ip: Shape,
    tcp_token: Shape,
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
        let buckets = if cache.is_in_process() {
            Buckets::Local(LocalBuckets::default())
        } else {
            Buckets::Leased(LeasedBuckets::default())
        };
        Self::with_buckets(cache, buckets, cfg)
    }

    /// Limits that lease tokens from the cache whatever the backend (tests run the leasing path
    /// on the memory cache too).
    #[cfg(test)]
    fn leasing(cache: Cache, cfg: &Config) -> Self {
        Self::with_buckets(cache, Buckets::Leased(LeasedBuckets::default()), cfg)
    }

    fn with_buckets(cache: Cache, buckets: Buckets, cfg: &Config) -> Self {
        Self {
            cache,
            buckets,
            cfg: LimitSettings {
                http_ip: Shape::new(cfg.http_ip_rate, cfg.http_ip_burst),
                http_token: Shape::new(cfg.http_token_rate, cfg.http_token_burst),
                tcp_ip: Shape::new(cfg.tcp_ip_rate, cfg.tcp_ip_burst),
                tcp_token: Shape::new(cfg.tcp_token_rate, cfg.tcp_token_burst),
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

    /// True while the breaker keeps the cache from being asked (after a failure).
    fn breaker_open(&self) -> bool {
        chrono::Utc::now().timestamp_millis() < self.skip_cache_until_ms.load(Ordering::Relaxed)
    }

    /// Runs one cache call under the timeout and the breaker.
    async fn guarded<T>(&self, call: impl Future<Output = Result<T, CacheError>>) -> Result<T, CacheError> {
        if self.breaker_open() {
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

    async fn bucket(&self, key: impl FnOnce() -> BucketKey, shape: Shape) -> bool {
        if !shape.enabled() {
            return true;
        }
        let key = key();
        match &self.buckets {
            Buckets::Local(local) => local.take(key, shape.burst, shape.rate, chrono::Utc::now().timestamp_millis()),
            Buckets::Leased(leased) => self.leased_token(leased, key, shape).await,
        }
    }

    /// Spends a token this replica holds for the bucket, asking the cache for a batch when none
    /// is left (one request per bucket at a time; see the module docs).
    async fn leased_token(&self, leased: &LeasedBuckets, key: BucketKey, shape: Shape) -> bool {
        let refill = match leased.take(key, Instant::now()) {
            Take::Decided(allowed) => return allowed,
            Take::Refill(refill) => refill,
        };
        if self.breaker_open() {
            // The failure rules at once, without queueing on the refill lock for nothing.
            return self.cfg.limits_fail_open;
        }
        let _refilling = refill.lock().await;
        let want = match leased.ask(key, shape, Instant::now()) {
            Ask::Decided(allowed) => return allowed,
            Ask::Tokens(want) => want,
        };
        match self.guarded(self.cache.take_tokens(&key.cache_name(), shape.burst, shape.rate, want)).await {
            Ok(grant) => leased.deposit(key, shape, want, grant, Instant::now()),
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
