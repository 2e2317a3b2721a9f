//! The data behind `MemoryCache`: a key space of expiring entries, each a byte string, a token
//! bucket or an expiring set, mirroring the Redis types the Lua scripts use (string, hash,
//! sorted set) so both backends follow the same rules: a key holds one type (using it as another
//! is an error), an empty set disappears, and an expired key is invisible at once.

use std::collections::BTreeSet;
use std::collections::HashMap;
use std::time::Duration;
use std::time::Instant;

use crate::cache::CacheError;
use crate::cache::RateDecision;
use crate::cache::TokenGrant;

/// How often (at most) a full sweep of expired keys runs, piggybacking on an operation.
const SWEEP_INTERVAL: Duration = Duration::from_secs(1);

/// A set's key outlives its latest member's expiry by this much (as `keep_alive` in the Lua
/// prelude does), so an abandoned set disappears on its own.
pub(super) const SET_KEY_MARGIN_MS: i64 = 1_000;

/// Longest time a token bucket is kept (absurdly slow refill rates would otherwise keep it for
/// ages); mirrors `MAX_TTL` in `take_tokens.lua`.
const MAX_BUCKET_TTL_MS: f64 = 366.0 * 24.0 * 3600.0 * 1000.0;

/// A stored value.
pub(super) enum Value {
    Bytes(Vec<u8>),
    Bucket(Bucket),
    Set(ExpiringSet),
}

impl Value {
    fn type_name(&self) -> &'static str {
        match self {
            Value::Bytes(_) => "string",
            Value::Bucket(_) => "token bucket",
            Value::Set(_) => "expiring set",
        }
    }
}

/// A live byte string, borrowed for reading or updating in place.
pub(super) struct Bytes<'a> {
    pub(super) bytes: &'a mut Vec<u8>,
    pub(super) expires_at: &'a mut Option<Instant>,
}

/// A value with its optional expiry.
pub(super) struct Entry {
    pub(super) value: Value,
    pub(super) expires_at: Option<Instant>,
}

impl Entry {
    fn expired(&self, now: Instant) -> bool {
        self.expires_at.is_some_and(|at| at <= now)
    }
}

/// The whole key space; always used under the backend's mutex.
pub(super) struct State {
    entries: HashMap<String, Entry>,
    next_sweep: Instant,
}

impl State {
    pub(super) fn new() -> Self {
        Self { entries: HashMap::new(), next_sweep: Instant::now() + SWEEP_INTERVAL }
    }

    /// Drops every expired key when a sweep is due, so keys nobody reads again do not pile up.
    /// Runs at most once per `SWEEP_INTERVAL`, inside whatever operation comes along.
    pub(super) fn sweep_if_due(&mut self, now: Instant) {
        if now < self.next_sweep {
            return;
        }
        self.entries.retain(|_, entry| !entry.expired(now));
        self.next_sweep = now + SWEEP_INTERVAL;
    }

    /// The live entry under `key`; an expired one is removed first.
    pub(super) fn live(&mut self, key: &str, now: Instant) -> Option<&mut Entry> {
        if self.entries.get(key).is_some_and(|entry| entry.expired(now)) {
            self.entries.remove(key);
        }
        self.entries.get_mut(key)
    }

    pub(super) fn insert(&mut self, key: &str, value: Value, expires_at: Option<Instant>) {
        self.entries.insert(key.to_owned(), Entry { value, expires_at });
    }

    pub(super) fn remove(&mut self, key: &str, now: Instant) -> Option<Entry> {
        self.live(key, now)?;
        self.entries.remove(key)
    }

    /// Removes every live key starting with `prefix`; returns how many.
    pub(super) fn remove_prefix(&mut self, prefix: &str, now: Instant) -> u64 {
        let mut removed = 0;
        self.entries.retain(|key, entry| {
            if !key.starts_with(prefix) {
                return true;
            }
            if !entry.expired(now) {
                removed += 1;
            }
            false
        });
        removed
    }

    /// The byte string under `key` and its expiry, if any.
    pub(super) fn bytes(&mut self, key: &str, now: Instant) -> Result<Option<Bytes<'_>>, CacheError> {
        match self.live(key, now) {
            None => Ok(None),
            Some(Entry { value: Value::Bytes(bytes), expires_at }) => Ok(Some(Bytes { bytes, expires_at })),
            Some(other) => Err(wrong_type(key, &other.value)),
        }
    }

    /// Reads the expiring set under `key` without changing anything.
    pub(super) fn set(&mut self, key: &str, now: Instant) -> Result<Option<&ExpiringSet>, CacheError> {
        match self.live(key, now) {
            None => Ok(None),
            Some(Entry { value: Value::Set(set), .. }) => Ok(Some(set)),
            Some(other) => Err(wrong_type(key, &other.value)),
        }
    }

    /// Takes the expiring set under `key` out of the map (an empty one when absent) for an
    /// update; hand it back with `put_set`.
    pub(super) fn take_set(&mut self, key: &str, now: Instant) -> Result<ExpiringSet, CacheError> {
        if let Some(entry) = self.live(key, now)
            && !matches!(entry.value, Value::Set(_))
        {
            return Err(wrong_type(key, &entry.value));
        }
        match self.entries.remove(key) {
            Some(Entry { value: Value::Set(set), .. }) => Ok(set),
            _ => Ok(ExpiringSet::default()),
        }
    }

    /// Stores an updated set; an empty set is dropped (as Redis deletes an empty sorted set),
    /// otherwise the key lives `SET_KEY_MARGIN_MS` past its latest member.
    pub(super) fn put_set(&mut self, key: &str, set: ExpiringSet, now: Instant, now_ms: i64) {
        let Some(latest) = set.max_score() else { return };
        let keep_ms = latest.saturating_sub(now_ms).max(0).saturating_add(SET_KEY_MARGIN_MS);
        let expires_at = now + Duration::from_millis(u64::try_from(keep_ms).unwrap_or(u64::MAX));
        self.insert(key, Value::Set(set), Some(expires_at));
    }

    /// Takes up to `want` tokens from the bucket under `key` (see `take_tokens`).
    pub(super) fn take_tokens(
        &mut self,
        key: &str,
        capacity: u32,
        refill_per_sec: f64,
        want: u32,
        now: Instant,
        now_ms: i64,
    ) -> Result<TokenGrant, CacheError> {
        let previous = match self.live(key, now) {
            None => None,
            Some(Entry { value: Value::Bucket(bucket), .. }) => Some(*bucket),
            Some(other) => return Err(wrong_type(key, &other.value)),
        };
        let (bucket, grant, keep_ms) = take_tokens(previous, capacity, refill_per_sec, want, now_ms);
        self.insert(key, Value::Bucket(bucket), Some(now + Duration::from_millis(keep_ms)));
        Ok(grant)
    }
}

fn wrong_type(key: &str, value: &Value) -> CacheError {
    CacheError::Other(format!("WRONGTYPE key {key} holds a {}", value.type_name()))
}

/// A token bucket: tokens left (fractional) and when they were counted.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Bucket {
    tokens: f64,
    stamp_ms: i64,
}

/// The token-bucket step, the same arithmetic as `take_tokens.lua`: a missing bucket is full;
/// tokens refill continuously since the stamp (a clock that went backwards refills nothing and
/// keeps the later stamp); up to `want` whole tokens are taken (`want` is at least 1), as many as
/// there are. Returns the new bucket, the grant and how long to keep the key (until it would be
/// full again, plus a second).
pub(crate) fn take_tokens(
    previous: Option<Bucket>,
    capacity: u32,
    refill_per_sec: f64,
    want: u32,
    now_ms: i64,
) -> (Bucket, TokenGrant, u64) {
    let capacity = f64::from(capacity);
    let want = f64::from(want.max(1));
    let (mut tokens, mut stamp_ms) = match previous {
        Some(bucket) => (bucket.tokens, bucket.stamp_ms),
        None => (capacity, now_ms),
    };
    if now_ms > stamp_ms {
        tokens += (now_ms - stamp_ms) as f64 / 1000.0 * refill_per_sec;
        stamp_ms = now_ms;
    }
    tokens = tokens.min(capacity);
    let granted = tokens.floor().min(want).max(0.0);
    tokens -= granted;
    let mut grant =
        TokenGrant { granted: granted as u32, remaining: tokens.floor() as u32, retry_after: Duration::ZERO };
    if granted < want {
        let retry_ms = ((1.0 - tokens) / refill_per_sec * 1000.0).ceil();
        grant.retry_after = Duration::from_millis(retry_ms.min(MAX_BUCKET_TTL_MS) as u64);
    }
    let keep_ms = (((capacity - tokens) / refill_per_sec * 1000.0).ceil() + 1000.0).min(MAX_BUCKET_TTL_MS);
    (Bucket { tokens, stamp_ms }, grant, keep_ms as u64)
}

/// One token: `take_tokens` with `want` 1, as a rate-limit decision.
pub(crate) fn take_token(
    previous: Option<Bucket>,
    capacity: u32,
    refill_per_sec: f64,
    now_ms: i64,
) -> (Bucket, RateDecision, u64) {
    let (bucket, grant, keep_ms) = take_tokens(previous, capacity, refill_per_sec, 1, now_ms);
    (bucket, grant.into_decision(), keep_ms)
}

/// Members with an expiry score (ms since the epoch): a sorted set ordered by score.
#[derive(Default)]
pub(super) struct ExpiringSet {
    scores: HashMap<String, i64>,
    by_score: BTreeSet<(i64, String)>,
}

impl ExpiringSet {
    /// Drops members whose score is at or before `now_ms`.
    pub(super) fn prune(&mut self, now_ms: i64) {
        while let Some((score, _)) = self.by_score.first()
            && *score <= now_ms
        {
            if let Some((_, member)) = self.by_score.pop_first() {
                self.scores.remove(&member);
            }
        }
    }

    pub(super) fn score(&self, member: &str) -> Option<i64> {
        self.scores.get(member).copied()
    }

    /// Adds the member or moves its score.
    pub(super) fn insert(&mut self, member: &str, score: i64) {
        if let Some(old) = self.scores.insert(member.to_owned(), score) {
            self.by_score.remove(&(old, member.to_owned()));
        }
        self.by_score.insert((score, member.to_owned()));
    }

    /// Removes the member; its score when it was there.
    pub(super) fn remove(&mut self, member: &str) -> Option<i64> {
        let score = self.scores.remove(member)?;
        self.by_score.remove(&(score, member.to_owned()));
        Some(score)
    }

    /// All members, expired or not (as `ZCARD` after a prune).
    pub(super) fn len(&self) -> usize {
        self.scores.len()
    }

    /// Members whose score is after `now_ms`, soonest expiry first.
    pub(super) fn live(&self, now_ms: i64) -> impl Iterator<Item = &str> {
        self.by_score.range((now_ms.saturating_add(1), String::new())..).map(|(_, member)| member.as_str())
    }

    fn max_score(&self) -> Option<i64> {
        self.by_score.last().map(|(score, _)| *score)
    }
}

#[cfg(test)]
mod unit {
    use super::*;

    #[test]
    fn bucket_starts_full_refills_and_caps_at_capacity() {
        let (bucket, first, _) = take_token(None, 2, 1.0, 10_000);
        assert_eq!((first.allowed, first.remaining), (true, 1));
        let (bucket, second, _) = take_token(Some(bucket), 2, 1.0, 10_000);
        assert_eq!((second.allowed, second.remaining), (true, 0));
        let (bucket, refused, _) = take_token(Some(bucket), 2, 1.0, 10_250);
        assert!(!refused.allowed);
        assert_eq!(refused.retry_after, Duration::from_millis(750));
        let (_, later, _) = take_token(Some(bucket), 2, 1.0, 100_000);
        assert_eq!((later.allowed, later.remaining), (true, 1));
    }

    #[test]
    fn batches_take_what_is_there_up_to_the_wanted_number() {
        let (bucket, first, _) = take_tokens(None, 10, 2.0, 4, 10_000);
        assert_eq!(first, TokenGrant { granted: 4, remaining: 6, retry_after: Duration::ZERO });
        let (bucket, second, _) = take_tokens(Some(bucket), 10, 2.0, 8, 10_250);
        assert_eq!((second.granted, second.remaining), (6, 0), "6.5 tokens: the whole ones");
        assert_eq!(second.retry_after, Duration::from_millis(250), "half a token to go at 2 per second");
        let (_, empty, _) = take_tokens(Some(bucket), 10, 2.0, 3, 10_250);
        assert_eq!(empty.granted, 0);
        let (_, zero, _) = take_tokens(None, 10, 2.0, 0, 10_000);
        assert_eq!(zero.granted, 1, "asking for nothing counts as asking for one");
    }

    #[test]
    fn bucket_ignores_a_clock_that_goes_backwards() {
        let (bucket, _, _) = take_token(None, 1, 1.0, 50_000);
        let (bucket, refused, _) = take_token(Some(bucket), 1, 1.0, 40_000);
        assert!(!refused.allowed);
        assert_eq!(bucket.stamp_ms, 50_000);
    }

    #[test]
    fn sweep_drops_expired_keys_nobody_reads_again() {
        let mut state = State::new();
        let now = Instant::now();
        state.insert("gone", Value::Bytes(vec![1]), Some(now));
        state.insert("kept", Value::Bytes(vec![2]), None);
        state.sweep_if_due(now);
        assert_eq!(state.entries.len(), 2, "no sweep before it is due");
        state.sweep_if_due(now + SWEEP_INTERVAL);
        assert_eq!(state.entries.len(), 1);
        assert!(state.entries.contains_key("kept"));
    }

    #[test]
    fn expiring_set_prunes_by_score_and_lists_live_members() {
        let mut set = ExpiringSet::default();
        set.insert("a", 100);
        set.insert("b", 200);
        set.insert("a", 300);
        assert_eq!(set.live(150).collect::<Vec<_>>(), ["b", "a"]);
        set.prune(200);
        assert_eq!(set.len(), 1);
        assert_eq!(set.score("a"), Some(300));
        assert_eq!(set.remove("a"), Some(300));
        assert_eq!(set.max_score(), None);
    }
}
