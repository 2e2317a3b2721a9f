//! Token buckets kept in this process, for when the cache is in process too (the memory
//! backend, whose keys nothing outside this gateway could see): the same arithmetic as
//! `Cache::rate_limit` and the same forgetting rule (a bucket is dropped once it would be full
//! again), without building key strings or crossing the seam. Expired buckets are swept at most
//! once a second.

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::sync::Mutex;

use super::BucketKey;
use crate::cache::{TokenBucket, take_bucket_token};

#[derive(Default)]
pub(super) struct LocalBuckets {
    state: Mutex<LocalState>,
}

#[derive(Default)]
struct LocalState {
    /// Each bucket with the Unix millisecond from which it counts as full (forgotten).
    buckets: HashMap<BucketKey, (TokenBucket, i64)>,
    next_sweep_ms: i64,
}

impl LocalBuckets {
    pub(super) fn take(&self, key: BucketKey, capacity: u32, refill_per_sec: f64, now_ms: i64) -> bool {
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

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

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
}
