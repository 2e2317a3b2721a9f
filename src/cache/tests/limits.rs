//! Token buckets, cooldowns and bounded counters.

use std::time::Duration;

use super::Harness;
use crate::cache::CacheError;

const DAY: Duration = Duration::from_secs(86_400);

pub(crate) async fn token_bucket_refuses_when_empty_and_refills(harness: &Harness) {
    let cache = harness.cache();
    // One token per second: the five takes below finish well within a second.
    for expected_remaining in [4, 3, 2, 1, 0] {
        let decision = cache.rate_limit("ip:10.0.0.1", 5, 1.0).await.unwrap();
        assert!(decision.allowed);
        assert_eq!(decision.remaining, expected_remaining);
        assert_eq!(decision.retry_after, Duration::ZERO);
    }
    let refused = cache.rate_limit("ip:10.0.0.1", 5, 1.0).await.unwrap();
    assert!(!refused.allowed, "an empty bucket refuses");
    assert_eq!(refused.remaining, 0);
    assert!(refused.retry_after > Duration::ZERO && refused.retry_after <= Duration::from_secs(1));
    assert!(cache.rate_limit("ip:10.0.0.2", 5, 1.0).await.unwrap().allowed, "buckets are per name");
    let ttl = cache.ttl("rl:ip:10.0.0.1").await.unwrap().expect("a bucket expires once it would be full");
    assert!(ttl <= Duration::from_secs(7), "ttl {ttl:?}");

    tokio::time::sleep(Duration::from_millis(1_200)).await;
    let refilled = cache.rate_limit("ip:10.0.0.1", 5, 1.0).await.unwrap();
    assert!(refilled.allowed, "the bucket refills over time");
    assert_eq!(refilled.remaining, 0);

    // A zero capacity or a non-positive rate disables the limiter.
    for _ in 0..3 {
        assert!(cache.rate_limit("off", 0, 1.0).await.unwrap().allowed);
        assert!(cache.rate_limit("off", 1, 0.0).await.unwrap().allowed);
        assert!(cache.rate_limit("off", 1, f64::NAN).await.unwrap().allowed);
    }
    assert_eq!(cache.get_bytes("rl:off").await.unwrap(), None, "a disabled limiter stores nothing");
}

pub(crate) async fn token_batches_grant_what_the_bucket_holds_and_share_it_with_single_takes(harness: &Harness) {
    let cache = harness.cache();
    // One token per 1000 s: no refill during the first part.
    let first = cache.take_tokens("ip:10.0.0.3", 10, 0.001, 4).await.unwrap();
    assert_eq!((first.granted, first.remaining, first.retry_after), (4, 6, Duration::ZERO));
    let second = cache.take_tokens("ip:10.0.0.3", 10, 0.001, 5).await.unwrap();
    assert_eq!((second.granted, second.remaining), (5, 1));
    let single = cache.rate_limit("ip:10.0.0.3", 10, 0.001).await.unwrap();
    assert!(single.allowed && single.remaining == 0, "single takes use the same bucket: {single:?}");
    let empty = cache.take_tokens("ip:10.0.0.3", 10, 0.001, 3).await.unwrap();
    assert_eq!((empty.granted, empty.remaining), (0, 0));
    assert!(empty.retry_after > Duration::from_secs(900), "about 1000 s to the next token: {:?}", empty.retry_after);
    assert!(!cache.rate_limit("ip:10.0.0.3", 10, 0.001).await.unwrap().allowed);

    // Partial grants: ten tokens per second, five at most.
    let drained = cache.take_tokens("ip:10.0.0.4", 5, 10.0, 100).await.unwrap();
    assert_eq!(drained.granted, 5, "never more than the bucket holds");
    assert!(drained.retry_after > Duration::ZERO && drained.retry_after <= Duration::from_millis(100));
    let ttl = cache.ttl("rl:ip:10.0.0.4").await.unwrap().expect("a drained bucket expires once full again");
    assert!(ttl <= Duration::from_millis(1_500), "ttl {ttl:?}");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let refilled = cache.take_tokens("ip:10.0.0.4", 5, 10.0, 100).await.unwrap();
    assert!((2..=5).contains(&refilled.granted), "300 ms or more at 10/s refill about 3 to 5: {refilled:?}");
    assert_eq!(refilled.remaining, 0);

    assert_eq!(cache.take_tokens("ip:10.0.0.5", 5, 1.0, 0).await.unwrap().granted, 1, "0 counts as 1");
    let off = cache.take_tokens("off", 0, 1.0, 7).await.unwrap();
    assert_eq!(off.granted, 7, "a disabled limiter grants everything");
    assert_eq!(cache.take_tokens("off", 3, f64::INFINITY, 7).await.unwrap().granted, 7);
    assert_eq!(cache.get_bytes("rl:off").await.unwrap(), None, "and stores nothing");
}

pub(crate) async fn cooldown_allows_once_per_period(harness: &Harness) {
    let cache = harness.cache();
    let cooldown = Duration::from_millis(400);
    assert_eq!(cache.check_cooldown("submit:5:12", cooldown).await.unwrap(), None);
    let left = cache.check_cooldown("submit:5:12", cooldown).await.unwrap().expect("cooling down");
    assert!(left > Duration::ZERO && left <= cooldown, "left {left:?}");
    let ttl = cache.ttl("cd:submit:5:12").await.unwrap().expect("the mark expires");
    assert!(ttl <= cooldown);
    assert_eq!(cache.check_cooldown("submit:5:13", cooldown).await.unwrap(), None, "cooldowns are per name");

    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(cache.check_cooldown("submit:5:12", cooldown).await.unwrap(), None, "allowed again after the period");
    assert!(cache.check_cooldown("submit:5:12", cooldown).await.unwrap().is_some());

    assert_eq!(cache.check_cooldown("none", Duration::ZERO).await.unwrap(), None);
    assert_eq!(cache.check_cooldown("none", Duration::ZERO).await.unwrap(), None, "a zero cooldown always allows");
}

pub(crate) async fn bounded_counter_stops_at_max_refunds_and_seeds(harness: &Harness) {
    let cache = harness.cache();
    for expected in 1..=3 {
        assert_eq!(cache.consume_attempt("5:12", 3, 0, DAY).await.unwrap(), Some(expected));
    }
    assert_eq!(cache.consume_attempt("5:12", 3, 0, DAY).await.unwrap(), None, "the budget is spent");
    assert_eq!(cache.consume_attempt("5:12", 3, 0, DAY).await.unwrap(), None);
    let ttl = cache.ttl("att:5:12").await.unwrap().expect("the counter expires");
    assert!(ttl > Duration::from_secs(86_000) && ttl <= DAY);

    cache.refund_attempt("5:12").await.unwrap();
    assert_eq!(cache.consume_attempt("5:12", 3, 0, DAY).await.unwrap(), Some(3), "a refund gives one back");
    assert_eq!(cache.consume_attempt("5:12", 3, 0, DAY).await.unwrap(), None);

    // A missing counter is seeded from `initial` (e.g. the store's count after a cache loss).
    assert_eq!(cache.consume_attempt("5:13", 3, 2, DAY).await.unwrap(), Some(3));
    assert_eq!(cache.consume_attempt("5:13", 3, 2, DAY).await.unwrap(), None);
    assert_eq!(cache.consume_attempt("5:14", 3, 7, DAY).await.unwrap(), None, "a seed at or over max refuses");
    assert_eq!(cache.consume_attempt("5:14", 3, 0, DAY).await.unwrap(), None, "the seed is kept");

    // Refunds never go below zero and do nothing to a missing counter.
    cache.refund_attempt("5:15").await.unwrap();
    assert_eq!(cache.get_bytes("att:5:15").await.unwrap(), None);
    assert_eq!(cache.consume_attempt("5:16", 5, 0, DAY).await.unwrap(), Some(1));
    cache.refund_attempt("5:16").await.unwrap();
    cache.refund_attempt("5:16").await.unwrap();
    assert_eq!(cache.consume_attempt("5:16", 5, 0, DAY).await.unwrap(), Some(1));
}

pub(crate) async fn bounded_counter_reports_a_malformed_value(harness: &Harness) {
    let cache = harness.cache();
    cache.set_bytes("att:bad", b"three", None).await.unwrap();
    let error = cache.consume_attempt("bad", 3, 0, DAY).await.unwrap_err();
    assert!(matches!(&error, CacheError::Malformed { key, .. } if key.ends_with("att:bad")), "{error:?}");
    assert!(matches!(cache.refund_attempt("bad").await, Err(CacheError::Malformed { .. })));
    cache.set_bytes("cd:bad", b"yesterday", None).await.unwrap();
    assert!(matches!(cache.check_cooldown("bad", DAY).await, Err(CacheError::Malformed { .. })));
}
