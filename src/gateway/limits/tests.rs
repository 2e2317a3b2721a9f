//! `Limits` as several gateway replicas use it: each replica leases tokens from one shared
//! bucket, and together they never admit more than the bucket allows. The cases run on Redis
//! (separate connections, one key prefix; skipped without FCTF_TEST_REDIS_URL) and on the
//! memory cache with leasing forced, so the leasing path is covered without Redis too.

use std::collections::HashMap;
use std::sync::Arc;

use tokio::task::JoinSet;

use super::*;
use crate::cache::{CacheBackendKind, CacheConfig};
use crate::config::{Overrides, Secret};

const CLIENT: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(198, 51, 100, 9));

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

/// The default gateway section with the per-IP HTTP bucket set to `rate` and `burst`.
fn config(rate: f64, burst: u32) -> Config {
    let settings = crate::config::load_from(None, &HashMap::new(), &Overrides::default()).expect("default config");
    let mut cfg = settings.gateway;
    cfg.http_ip_rate = rate;
    cfg.http_ip_burst = burst;
    cfg
}

/// `count` replicas over one memory cache, leasing as they would on Redis.
fn memory_replicas(count: usize, cfg: &Config) -> (Vec<Arc<Limits>>, Cache) {
    let cache = Cache::memory("test:");
    let replicas = (0..count).map(|_| Arc::new(Limits::leasing(cache.clone(), cfg))).collect();
    (replicas, cache)
}

/// `count` replicas, each with its own Redis connection, sharing a fresh key prefix; `None`
/// without FCTF_TEST_REDIS_URL.
async fn redis_replicas(count: usize, cfg: &Config) -> Option<(Vec<Arc<Limits>>, Cache)> {
    let Ok(url) = std::env::var("FCTF_TEST_REDIS_URL") else {
        eprintln!("FCTF_TEST_REDIS_URL is not set; skipping a redis limits test");
        return None;
    };
    let prefix = format!("fctf-test-limits-{}:", uuid::Uuid::new_v4().simple());
    let connect = || async {
        let cache_cfg =
            CacheConfig { backend: CacheBackendKind::Redis, url: Secret::new(url.clone()), prefix: prefix.clone() };
        Cache::from_config(&cache_cfg).await.expect("FCTF_TEST_REDIS_URL is set but redis is unreachable")
    };
    let mut replicas = Vec::with_capacity(count);
    for _ in 0..count {
        let limits = Limits::new(connect().await, cfg);
        assert!(matches!(limits.buckets, Buckets::Leased(_)), "a shared cache leases tokens");
        replicas.push(Arc::new(limits));
    }
    Some((replicas, connect().await))
}

/// Makes `calls` requests a millisecond apart from one client in each of `tasks` tasks per
/// replica, all starting at once; returns how many were admitted.
async fn flood(replicas: &[Arc<Limits>], tasks: usize, calls: usize) -> usize {
    let start = Arc::new(tokio::sync::Barrier::new(replicas.len() * tasks));
    let mut set = JoinSet::new();
    for limits in replicas {
        for _ in 0..tasks {
            let limits = limits.clone();
            let start = start.clone();
            set.spawn(async move {
                start.wait().await;
                let mut admitted = 0;
                for _ in 0..calls {
                    admitted += usize::from(limits.allow_http_ip(CLIENT).await);
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
                admitted
            });
        }
    }
    let mut admitted = 0;
    while let Some(outcome) = set.join_next().await {
        admitted += outcome.expect("flooding task panicked");
    }
    admitted
}

async fn replicas_admit_exactly_the_capacity_of_a_bucket_that_does_not_refill(replicas: Vec<Arc<Limits>>) {
    // One token per 1000 s: nothing refills during the test, and every batch is one token.
    let admitted = flood(&replicas, 25, 4).await;
    assert_eq!(admitted, 20, "two replicas, 200 requests, a bucket of 20");
}

async fn replicas_never_admit_more_than_a_refilling_bucket_allows(replicas: Vec<Arc<Limits>>) {
    // 400 per second with a burst of 160: batches of up to 20 tokens. 24 clients asking about
    // 1000 times a second each for a few hundred milliseconds drain the burst and the refill.
    let started_ms = chrono::Utc::now().timestamp_millis();
    let admitted = flood(&replicas, 8, 300).await;
    let elapsed_ms = chrono::Utc::now().timestamp_millis() - started_ms;
    // The bucket starts full at its first call (not before `started_ms`) and refills 0.4 per ms.
    let allowed = 160 + usize::try_from(elapsed_ms * 2 / 5).unwrap();
    assert!(admitted <= allowed, "admitted {admitted}, the bucket allows {allowed} in {elapsed_ms} ms");
    // Requests are refused only once the bucket ran dry, so everything it held was handed out;
    // at most one batch per replica can be left unspent.
    assert!(admitted >= 160 - 3 * 20, "admitted only {admitted} of the burst of 160");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_bucket_admit_exactly_its_capacity_memory() {
    let (replicas, _cache) = memory_replicas(2, &config(0.001, 20));
    replicas_admit_exactly_the_capacity_of_a_bucket_that_does_not_refill(replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_bucket_admit_exactly_its_capacity_redis() {
    let Some((replicas, cache)) = redis_replicas(2, &config(0.001, 20)).await else { return };
    replicas_admit_exactly_the_capacity_of_a_bucket_that_does_not_refill(replicas).await;
    cache.delete_prefix("").await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_refilling_bucket_never_admit_more_than_it_allows_memory() {
    let (replicas, _cache) = memory_replicas(3, &config(400.0, 160));
    replicas_never_admit_more_than_a_refilling_bucket_allows(replicas).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replicas_sharing_a_refilling_bucket_never_admit_more_than_it_allows_redis() {
    let Some((replicas, cache)) = redis_replicas(3, &config(400.0, 160)).await else { return };
    replicas_never_admit_more_than_a_refilling_bucket_allows(replicas).await;
    cache.delete_prefix("").await.unwrap();
}
