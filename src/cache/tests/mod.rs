//! The cache conformance suite: every case runs against `MemoryCache` (always) and `RedisCache`
//! (when `FCTF_TEST_REDIS_URL` is set; skipped with a note otherwise, failing when it is set
//! but Redis is unreachable). Each Redis case uses its own random key prefix, so cases run in
//! parallel on one server, and removes its keys at the end.
//!
//! Cases are written once against the public `Cache` handle; `conformance!` turns each into
//! `cache::tests::memory::<case>` and `cache::tests::redis::<case>` tests (so `cargo test redis`
//! selects the Redis ones). Cases that race many tasks run on a multi-threaded runtime and, on
//! Redis, spread the tasks over several connections.

mod basics;
mod limits;
mod races;
mod sets;

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use super::Cache;
use super::RedisCache;

/// A cache under test and the means to open more handles on the same data.
pub(crate) struct Harness {
    cache: Cache,
    redis_url: Option<String>,
}

impl Harness {
    /// A fresh memory cache.
    pub(crate) fn memory() -> Self {
        Self { cache: Cache::memory("test:"), redis_url: None }
    }

    /// A Redis cache under a random prefix, or `None` (skip) when no Redis is configured.
    pub(crate) async fn redis() -> Option<Self> {
        let Ok(url) = std::env::var("FCTF_TEST_REDIS_URL") else {
            eprintln!("skipping redis cache test: FCTF_TEST_REDIS_URL is not set");
            return None;
        };
        let prefix = format!("fctf-test:{}:", uuid::Uuid::new_v4().simple());
        let cache = redis_handle(&url, &prefix).await;
        Some(Self { cache, redis_url: Some(url) })
    }

    /// The main handle.
    pub(crate) fn cache(&self) -> &Cache {
        &self.cache
    }

    /// Another handle on the same data: the same backend in memory, a separate connection
    /// (as another process would have) on Redis.
    pub(crate) async fn another(&self) -> Cache {
        match &self.redis_url {
            None => self.cache.clone(),
            Some(url) => redis_handle(url, &self.cache.prefix).await,
        }
    }

    /// `count` handles on the same data (on Redis, `count` connections).
    pub(crate) async fn handles(&self, count: usize) -> Vec<Cache> {
        let mut handles = Vec::with_capacity(count);
        for _ in 0..count {
            handles.push(self.another().await);
        }
        handles
    }

    /// Removes every key the case wrote.
    pub(crate) async fn cleanup(self) {
        self.cache.delete_prefix("").await.expect("cleanup of the test prefix");
    }
}

async fn redis_handle(url: &str, prefix: &str) -> Cache {
    let backend = RedisCache::connect(url).await.expect("FCTF_TEST_REDIS_URL is set but redis is unreachable");
    Cache { backend: Arc::new(backend), prefix: prefix.into() }
}

/// Polls `check` every 20 ms until it holds; panics after 2 s (for effects that happen in a
/// spawned task, such as a guard released on drop).
pub(crate) async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    for _ in 0..100 {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    panic!("{what} did not happen within 2 s");
}

/// Generates one test per case and backend.
macro_rules! conformance {
    ($($group:ident :: $case:ident),* $(,)?) => {
        mod memory {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let harness = super::Harness::memory();
                    super::$group::$case(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }

        mod redis {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
                async fn $case() {
                    let Some(harness) = super::Harness::redis().await else { return };
                    super::$group::$case(&harness).await;
                    harness.cleanup().await;
                }
            )*
        }
    };
}

conformance!(
    basics::get_set_delete_and_ttl_expire,
    basics::json_round_trips_and_reports_malformed_values,
    basics::lock_is_exclusive_and_release_is_owner_checked,
    basics::lock_guard_releases_on_drop,
    basics::delete_prefix_removes_only_keys_under_the_literal_prefix,
    basics::change_signal_reaches_a_subscriber_on_another_handle,
    basics::using_a_key_as_another_type_is_an_error,
    limits::token_bucket_refuses_when_empty_and_refills,
    limits::token_batches_grant_what_the_bucket_holds_and_share_it_with_single_takes,
    limits::cooldown_allows_once_per_period,
    limits::bounded_counter_stops_at_max_refunds_and_seeds,
    limits::bounded_counter_reports_a_malformed_value,
    sets::slots_respect_the_limit_and_are_never_resurrected,
    sets::expired_slots_free_room_and_cannot_be_refreshed,
    sets::leases_are_all_or_nothing_across_scopes,
    sets::expired_leases_free_room_and_are_not_renewed,
    sets::lease_guard_releases_on_drop,
    races::racing_slot_reservations_grant_exactly_the_limit,
    races::racing_attempts_grant_exactly_the_budget,
    races::racing_cooldown_checks_allow_exactly_one,
    races::racing_locks_grant_exactly_one,
    races::racing_leases_grant_exactly_the_limit,
    races::racing_token_takes_allow_exactly_the_capacity,
    races::racing_token_batches_grant_exactly_the_capacity,
);

#[tokio::test]
async fn connect_fails_fast_with_unavailable_when_redis_is_unreachable_redis() {
    // Port 1 on loopback refuses connections; the timeout only guards against a hang.
    let attempt = tokio::time::timeout(Duration::from_secs(20), RedisCache::connect("redis://127.0.0.1:1")).await;
    let result = attempt.expect("connect must give up on its own");
    assert!(matches!(result, Err(super::CacheError::Unavailable(_))), "unexpected result: {:?}", result.err());
}

#[tokio::test]
async fn connect_rejects_an_invalid_url_without_echoing_it_redis() {
    let result = RedisCache::connect("mysql://user:hunter2@host/db").await;
    let Err(error) = result else { panic!("an invalid url must be refused") };
    assert!(!error.to_string().contains("hunter2"), "the error leaks the url: {error}");
}

#[tokio::test]
async fn subscriptions_survive_a_lost_connection_redis() {
    let Ok(url) = std::env::var("FCTF_TEST_REDIS_URL") else {
        eprintln!("skipping redis cache test: FCTF_TEST_REDIS_URL is not set");
        return;
    };
    let prefix = format!("fctf-test:{}:", uuid::Uuid::new_v4().simple());
    let backend = Arc::new(RedisCache::connect(&url).await.expect("redis is reachable"));
    let listener = Cache { backend: backend.clone(), prefix: prefix.as_str().into() };
    let publisher = redis_handle(&url, &prefix).await;
    let mut stream = listener.subscribe("routes").await.unwrap();
    assert!(backend.kill_subscriber_connection().await.unwrap(), "the subscriber connection is found and closed");

    // Signals sent while the connection is down are lost; once it is back, they arrive again.
    for attempt in 0.. {
        publisher.notify("routes", "after reconnect").await.unwrap();
        match tokio::time::timeout(Duration::from_millis(200), stream.next()).await {
            Ok(signal) => {
                assert_eq!(signal.as_deref(), Some("after reconnect"));
                break;
            }
            Err(_) if attempt < 50 => continue,
            Err(_) => panic!("no signal within 10 s of the subscriber connection being closed"),
        }
    }
}
