//! Tokens leased in batches from the shared buckets in the cache, for when the cache is not in
//! process (Redis): a request spends a token this replica holds, and only when none is left does
//! one request per bucket ask the cache for a batch (`Cache::take_tokens`). The sizes, the
//! expiry and the guarantee are explained in the `limits` module docs; this file keeps the
//! per-bucket bookkeeping, which is pure (times are passed in) so it can be tested without IO.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::BucketKey;
use crate::cache::TokenGrant;

/// A batch covers this replica's demand over this window, and never more than the bucket
/// refills over it.
pub(super) const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Held tokens are dropped this long after they were granted.
pub(super) const GRANT_TTL: Duration = Duration::from_millis(250);
/// A batch never exceeds this fraction (1/`BURST_SHARE`) of the burst.
const BURST_SHARE: u32 = 8;
/// Longest time a bucket found empty is refused without asking the cache again (so a bucket
/// reset in the cache, or a very slow refill, costs at most one call per second).
const REFUSE_AT_MOST: Duration = Duration::from_secs(1);
/// Idle buckets are forgotten by a sweep that runs at most this often.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// One limiter: its refill rate and burst, and the largest batch leased from it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Shape {
    pub(super) rate: f64,
    pub(super) burst: u32,
    pub(super) max_batch: u32,
}

impl Shape {
    pub(super) fn new(rate: f64, burst: u32) -> Self {
        // In milliseconds, so round rates give exact products; `as` saturates (an enormous
        // rate gives u32::MAX, NaN gives 0 and then 1 below).
        let refill_over_window = (rate * BATCH_WINDOW.as_millis() as f64 / 1000.0).ceil() as u32;
        Self { rate, burst, max_batch: refill_over_window.min(burst / BURST_SHARE).max(1) }
    }

    /// False when the limiter is off: a zero burst, or a rate that is not a positive finite
    /// number.
    pub(super) fn enabled(&self) -> bool {
        self.burst > 0 && self.rate.is_finite() && self.rate > 0.0
    }
}

/// What a request learns from the tokens held for its bucket.
pub(super) enum Take {
    /// Decided here: a held token was spent (true), or the bucket is known to be empty.
    Decided(bool),
    /// Nothing held: take this bucket's refill lock, then call `LeasedBuckets::ask`.
    Refill(Arc<tokio::sync::Mutex<()>>),
}

/// What the holder of a refill lock does.
pub(super) enum Ask {
    /// A request that queued before it refilled the bucket (or found it empty): decided.
    Decided(bool),
    /// Ask the cache for this many tokens.
    Tokens(u32),
}

/// The buckets this replica holds tokens of.
pub(super) struct LeasedBuckets {
    state: Mutex<State>,
}

struct State {
    slots: HashMap<BucketKey, Slot>,
    next_sweep: Instant,
}

/// This replica's share of one bucket.
struct Slot {
    /// Tokens held, spendable until `expires_at`.
    held: u32,
    expires_at: Instant,
    /// The bucket was found empty: requests are refused without asking until then.
    refuse_until: Instant,
    /// Requests seen since `last_ask` (the demand a batch is sized to).
    seen: u32,
    last_ask: Instant,
    /// One refill at a time; requests that find nothing held meanwhile queue on it (FIFO) and
    /// are served from the grant it brings.
    refill: Arc<tokio::sync::Mutex<()>>,
}

impl Slot {
    fn new(now: Instant) -> Self {
        Self {
            held: 0,
            expires_at: now,
            refuse_until: now,
            seen: 0,
            // As if the last ask were a window ago: a first batch covers the requests already
            // waiting, not a rate extrapolated from an instant.
            last_ask: now.checked_sub(BATCH_WINDOW).unwrap_or(now),
            refill: Arc::default(),
        }
    }

    /// Spends a held token (`Some(true)`), refuses while the bucket is known to be empty
    /// (`Some(false)`), or `None` when the cache must be asked.
    fn spend(&mut self, now: Instant) -> Option<bool> {
        if self.held > 0 && now < self.expires_at {
            self.held -= 1;
            return Some(true);
        }
        if now < self.refuse_until {
            return Some(false);
        }
        None
    }

    /// The batch to ask for: the requests seen per window since the last ask, at least one, at
    /// most the shape's largest batch.
    fn batch(&self, shape: Shape, now: Instant) -> u32 {
        let elapsed_ns = now.saturating_duration_since(self.last_ask).as_nanos().max(1_000_000);
        let per_window = (u128::from(self.seen) * BATCH_WINDOW.as_nanos()).div_ceil(elapsed_ns);
        u32::try_from(per_window).unwrap_or(u32::MAX).clamp(1, shape.max_batch)
    }

    fn idle(&self, now: Instant) -> bool {
        let active_until = self.expires_at.max(self.refuse_until) + SWEEP_INTERVAL;
        now >= active_until && Arc::strong_count(&self.refill) == 1
    }
}

impl Default for LeasedBuckets {
    fn default() -> Self {
        Self { state: Mutex::new(State { slots: HashMap::new(), next_sweep: Instant::now() + SWEEP_INTERVAL }) }
    }
}

impl LeasedBuckets {
    /// Decides a request from the tokens held, or hands out the refill lock.
    pub(super) fn take(&self, key: BucketKey, now: Instant) -> Take {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if now >= state.next_sweep {
            state.slots.retain(|_, slot| !slot.idle(now));
            state.next_sweep = now + SWEEP_INTERVAL;
        }
        let slot = state.slots.entry(key).or_insert_with(|| Slot::new(now));
        slot.seen = slot.seen.saturating_add(1);
        match slot.spend(now) {
            Some(allowed) => Take::Decided(allowed),
            None => Take::Refill(slot.refill.clone()),
        }
    }

    /// Under the refill lock: decides from what an earlier refill brought, or sizes the batch
    /// to ask for (starting a new demand window).
    pub(super) fn ask(&self, key: BucketKey, shape: Shape, now: Instant) -> Ask {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = state.slots.entry(key).or_insert_with(|| Slot::new(now));
        if let Some(allowed) = slot.spend(now) {
            return Ask::Decided(allowed);
        }
        let want = slot.batch(shape, now);
        slot.seen = 0;
        slot.last_ask = now;
        Ask::Tokens(want)
    }

    /// Stores what the cache granted for an ask of `want` tokens and spends one for the asking
    /// request (false when nothing was granted). A short grant means the bucket is empty: the
    /// bucket is refused here until a whole batch could have refilled.
    pub(super) fn deposit(&self, key: BucketKey, shape: Shape, want: u32, grant: TokenGrant, now: Instant) -> bool {
        let mut state = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let slot = state.slots.entry(key).or_insert_with(|| Slot::new(now));
        let still_held = if now < slot.expires_at { slot.held } else { 0 };
        slot.held = still_held.saturating_add(grant.granted);
        slot.expires_at = now + GRANT_TTL;
        if grant.granted < want {
            let rest_of_batch = Duration::try_from_secs_f64(f64::from(want.saturating_sub(1)) / shape.rate)
                .unwrap_or(BATCH_WINDOW)
                .min(BATCH_WINDOW);
            slot.refuse_until = now + (grant.retry_after + rest_of_batch).min(REFUSE_AT_MOST);
        }
        slot.spend(now) == Some(true)
    }
}

#[cfg(test)]
mod tests {
    use std::net::IpAddr;

    use super::*;

    const KEY: BucketKey = BucketKey::HttpIp(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7)));

    fn grant(granted: u32, retry_ms: u64) -> TokenGrant {
        TokenGrant { granted, remaining: 0, retry_after: Duration::from_millis(retry_ms) }
    }

    fn decided(take: Take) -> Option<bool> {
        match take {
            Take::Decided(allowed) => Some(allowed),
            Take::Refill(_) => None,
        }
    }

    fn wanted(ask: Ask) -> u32 {
        match ask {
            Ask::Tokens(want) => want,
            Ask::Decided(allowed) => panic!("expected an ask, got a decision {allowed}"),
        }
    }

    #[test]
    fn largest_batch_is_the_refill_over_the_window_within_an_eighth_of_the_burst() {
        assert_eq!(Shape::new(2000.0, 4000).max_batch, 100, "default per-IP HTTP limits");
        assert_eq!(Shape::new(300.0, 600).max_batch, 15, "default per-token HTTP limits");
        assert_eq!(Shape::new(100.0, 400).max_batch, 5);
        assert_eq!(Shape::new(2000.0, 80).max_batch, 10, "an eighth of a small burst");
        assert_eq!(Shape::new(20.0, 40).max_batch, 1);
        assert_eq!(Shape::new(0.5, 3).max_batch, 1, "always at least one");
        assert_eq!(Shape::new(1e9, u32::MAX).max_batch, 50_000_000);
        assert!(!Shape::new(0.0, 10).enabled() && !Shape::new(1.0, 0).enabled() && !Shape::new(f64::NAN, 1).enabled());
    }

    #[test]
    fn held_tokens_are_spent_locally_until_gone_or_expired() {
        let buckets = LeasedBuckets::default();
        let shape = Shape::new(2000.0, 4000);
        let start = Instant::now();
        assert_eq!(decided(buckets.take(KEY, start)), None, "nothing held yet");
        assert_eq!(wanted(buckets.ask(KEY, shape, start)), 1, "one request waiting");
        assert!(buckets.deposit(KEY, shape, 10, grant(10, 0), start), "the asker spends one");
        for _ in 0..9 {
            assert_eq!(decided(buckets.take(KEY, start)), Some(true));
        }
        assert_eq!(decided(buckets.take(KEY, start)), None, "all ten spent");

        assert!(buckets.deposit(KEY, shape, 10, grant(10, 0), start));
        let later = start + GRANT_TTL;
        assert_eq!(decided(buckets.take(KEY, later)), None, "the other nine expired");
    }

    #[test]
    fn a_short_grant_refuses_locally_until_a_batch_has_refilled() {
        let buckets = LeasedBuckets::default();
        let shape = Shape::new(100.0, 400);
        let start = Instant::now();
        assert!(buckets.deposit(KEY, shape, 5, grant(2, 20), start), "two granted: one for the asker");
        assert_eq!(decided(buckets.take(KEY, start)), Some(true), "the other one is held");
        // 20 ms to the next token plus 40 ms for four more at 100/s.
        assert_eq!(decided(buckets.take(KEY, start + Duration::from_millis(59))), Some(false));
        assert_eq!(decided(buckets.take(KEY, start + Duration::from_millis(60))), None);

        assert!(!buckets.deposit(KEY, shape, 1, grant(0, 3_600_000), start), "an empty bucket");
        assert_eq!(decided(buckets.take(KEY, start + REFUSE_AT_MOST - Duration::from_millis(1))), Some(false));
        assert_eq!(decided(buckets.take(KEY, start + REFUSE_AT_MOST)), None, "asked again after a second at most");
    }

    #[test]
    fn batches_follow_the_demand_seen_since_the_last_ask() {
        let buckets = LeasedBuckets::default();
        let shape = Shape::new(2000.0, 4000);
        let start = Instant::now();
        for _ in 0..30 {
            let _ = buckets.take(KEY, start);
        }
        assert_eq!(wanted(buckets.ask(KEY, shape, start)), 30, "the requests already waiting");
        assert!(buckets.deposit(KEY, shape, 30, grant(30, 0), start));
        let mut now = start;
        for _ in 0..40 {
            now += Duration::from_micros(250);
            let _ = buckets.take(KEY, now);
        }
        assert_eq!(wanted(buckets.ask(KEY, shape, now)), 100, "4000/s wants more than the largest batch");
        assert!(buckets.deposit(KEY, shape, 100, grant(100, 0), now));
        now += Duration::from_millis(200);
        let _ = buckets.take(KEY, now);
        let _ = buckets.take(KEY, now);
        now += GRANT_TTL;
        assert_eq!(decided(buckets.take(KEY, now)), None);
        assert_eq!(wanted(buckets.ask(KEY, shape, now)), 1, "three requests in 450 ms want one token");
    }

    #[test]
    fn idle_buckets_are_forgotten() {
        let buckets = LeasedBuckets::default();
        let shape = Shape::new(2000.0, 4000);
        let start = Instant::now();
        assert!(buckets.deposit(KEY, shape, 1, grant(1, 0), start));
        let other = BucketKey::TcpIp(IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 8)));
        let _ = buckets.take(other, start + GRANT_TTL + SWEEP_INTERVAL * 2);
        let state = buckets.state.lock().unwrap();
        assert_eq!(state.slots.len(), 1);
        assert!(state.slots.contains_key(&other));
    }
}
