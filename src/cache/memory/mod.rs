//! `MemoryCache`: the embedded cache backend, for one process (the `all` topology and tests).
//!
//! Every trait method is one critical section on a `std::sync::Mutex` (never held across an
//! `.await`), which makes each domain operation atomic exactly as a Lua script is on Redis.
//! Time to live is real: keys carry a monotonic deadline and are invisible from that instant
//! on; a sweep of all expired keys runs at most once a second inside whatever operation comes
//! along, so keys nobody touches again do not accumulate. Set scores (slots, leases) and the
//! token-bucket and cooldown clocks use the caller's wall-clock `now_ms`, as on Redis, so both
//! backends give the same answers. Change signals are `tokio::sync::broadcast` channels, one per
//! channel name, created on first subscription.
//!
//! Decisions where the spec is silent: the key space mirrors Redis types (a key used as another
//! type is an error, an empty set disappears, a set's key expires a second after its latest
//! member), so code that passes the conformance suite here behaves the same on Redis.

mod state;

use std::collections::HashMap;
use std::sync::Mutex;
use std::sync::MutexGuard;
use std::sync::PoisonError;
use std::time::Duration;
use std::time::Instant;

use async_trait::async_trait;
use tokio::sync::broadcast;

use self::state::State;
use self::state::Value;
pub(crate) use self::state::{Bucket, take_token};
use super::CacheBackend;
use super::CacheError;
use super::ChangeStream;
use super::LeaseOutcome;
use super::SlotReservation;
use super::TokenGrant;
use super::expiry_ms;

/// Buffered change signals per channel before a slow subscriber starts skipping.
const CHANNEL_CAPACITY: usize = 64;

/// The in-process cache backend.
pub struct MemoryCache {
    state: Mutex<State>,
    channels: Mutex<HashMap<String, broadcast::Sender<String>>>,
}

impl Default for MemoryCache {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryCache {
    /// An empty cache.
    pub fn new() -> Self {
        Self { state: Mutex::new(State::new()), channels: Mutex::new(HashMap::new()) }
    }

    /// Enters the critical section (running a sweep when one is due). A panic while the lock
    /// was held cannot leave a half-done operation visible (each operation computes before it
    /// writes), so a poisoned lock is simply taken over.
    fn lock(&self, now: Instant) -> MutexGuard<'_, State> {
        let mut state = self.state.lock().unwrap_or_else(PoisonError::into_inner);
        state.sweep_if_due(now);
        state
    }

    fn channels(&self) -> MutexGuard<'_, HashMap<String, broadcast::Sender<String>>> {
        self.channels.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

fn deadline(now: Instant, ttl: Duration) -> Instant {
    now + Duration::from_millis(expiry_ms(ttl).unsigned_abs())
}

fn parse_counter(key: &str, bytes: &[u8]) -> Result<u64, CacheError> {
    std::str::from_utf8(bytes).ok().and_then(|text| text.parse::<u64>().ok()).ok_or_else(|| CacheError::Malformed {
        key: key.to_owned(),
        reason: "not a non-negative integer counter".to_owned(),
    })
}

fn parse_mark(key: &str, bytes: &[u8]) -> Result<i64, CacheError> {
    std::str::from_utf8(bytes)
        .ok()
        .and_then(|text| text.parse::<i64>().ok())
        .ok_or_else(|| CacheError::Malformed { key: key.to_owned(), reason: "not a cooldown timestamp".to_owned() })
}

#[async_trait]
impl CacheBackend for MemoryCache {
    fn in_process(&self) -> bool {
        true
    }

    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        Ok(state.bytes(key, now)?.map(|entry| entry.bytes.clone()))
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        state.insert(key, Value::Bytes(value.to_vec()), ttl.map(|ttl| deadline(now, ttl)));
        Ok(())
    }

    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        if state.live(key, now).is_some() {
            return Ok(false);
        }
        state.insert(key, Value::Bytes(value.to_vec()), Some(deadline(now, ttl)));
        Ok(true)
    }

    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        let now = Instant::now();
        Ok(self.lock(now).remove(key, now).is_some())
    }

    async fn delete_if_equals(&self, key: &str, value: &[u8]) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        let matches = state.bytes(key, now)?.is_some_and(|entry| entry.bytes.as_slice() == value);
        if matches {
            state.remove(key, now);
        }
        Ok(matches)
    }

    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        Ok(state.live(key, now).and_then(|entry| entry.expires_at).map(|at| at.saturating_duration_since(now)))
    }

    async fn take_tokens(
        &self,
        key: &str,
        capacity: u32,
        refill_per_sec: f64,
        want: u32,
        now_ms: i64,
    ) -> Result<TokenGrant, CacheError> {
        let now = Instant::now();
        self.lock(now).take_tokens(key, capacity, refill_per_sec, want, now, now_ms)
    }

    async fn cooldown(&self, key: &str, cooldown: Duration, now_ms: i64) -> Result<Option<Duration>, CacheError> {
        let now = Instant::now();
        let cooldown_ms = expiry_ms(cooldown);
        let mut state = self.lock(now);
        if let Some(entry) = state.bytes(key, now)? {
            let last = parse_mark(key, entry.bytes)?;
            let elapsed = now_ms.saturating_sub(last);
            if elapsed < cooldown_ms {
                let left_ms = cooldown_ms - elapsed.max(0);
                let left = Duration::from_millis(left_ms.unsigned_abs());
                // The mark must outlive the cooldown it enforces.
                if entry.expires_at.is_none_or(|at| at.saturating_duration_since(now) < left) {
                    *entry.expires_at = Some(now + left);
                }
                return Ok(Some(left));
            }
        }
        state.insert(key, Value::Bytes(now_ms.to_string().into_bytes()), Some(deadline(now, cooldown)));
        Ok(None)
    }

    async fn increment_bounded(
        &self,
        key: &str,
        max: u64,
        initial: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        let (count, expires_at) = match state.bytes(key, now)? {
            Some(entry) => (parse_counter(key, entry.bytes)?, entry.expires_at.unwrap_or_else(|| deadline(now, ttl))),
            None => (initial, deadline(now, ttl)),
        };
        if count >= max {
            // Seed (or give a TTL to) the counter even when refusing, as the script does.
            state.insert(key, Value::Bytes(count.to_string().into_bytes()), Some(expires_at));
            return Ok(None);
        }
        let next = count + 1;
        state.insert(key, Value::Bytes(next.to_string().into_bytes()), Some(expires_at));
        Ok(Some(next))
    }

    async fn decrement_floor(&self, key: &str) -> Result<(), CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        if let Some(entry) = state.bytes(key, now)? {
            let count = parse_counter(key, entry.bytes)?;
            if count > 0 {
                *entry.bytes = (count - 1).to_string().into_bytes();
            }
        }
        Ok(())
    }

    async fn reserve_slot(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<SlotReservation, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        let mut set = state.take_set(key, now)?;
        set.prune(now_ms);
        let outcome = if set.score(member).is_some() {
            SlotReservation::AlreadyHeld
        } else if set.len() >= limit as usize {
            SlotReservation::LimitReached
        } else {
            set.insert(member, expires_at_ms);
            SlotReservation::Reserved
        };
        state.put_set(key, set, now, now_ms);
        Ok(outcome)
    }

    async fn refresh_slot(&self, key: &str, member: &str, expires_at_ms: i64, now_ms: i64) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        let mut set = state.take_set(key, now)?;
        let live = set.score(member).is_some_and(|score| score > now_ms);
        if live {
            set.insert(member, expires_at_ms);
        }
        state.put_set(key, set, now, now_ms);
        Ok(live)
    }

    async fn release_slot(&self, key: &str, member: &str, now_ms: i64) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        let mut set = state.take_set(key, now)?;
        let held = set.remove(member).is_some_and(|score| score > now_ms);
        state.put_set(key, set, now, now_ms);
        Ok(held)
    }

    async fn slot_members(&self, key: &str, now_ms: i64) -> Result<Vec<String>, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        Ok(state.set(key, now)?.map(|set| set.live(now_ms).map(str::to_owned).collect()).unwrap_or_default())
    }

    async fn acquire_lease(
        &self,
        scopes: &[(String, u32)],
        lease_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<LeaseOutcome, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        // Check every scope before touching any; pruning expired leases is harmless either way.
        let names: Vec<&str> = scopes.iter().map(|(scope, _)| scope.as_str()).collect();
        let mut sets = take_sets(&mut state, &names, now, now_ms)?;
        for (_, set) in &mut sets {
            set.prune(now_ms);
        }
        let full = scopes
            .iter()
            .position(|(scope, limit)| sets.iter().any(|(name, set)| name == scope && set.len() >= *limit as usize));
        if full.is_none() {
            for (_, set) in &mut sets {
                set.insert(lease_id, expires_at_ms);
            }
        }
        restore(&mut state, sets, now, now_ms);
        Ok(full.map_or(LeaseOutcome::Granted, LeaseOutcome::Full))
    }

    async fn renew_lease(
        &self,
        scopes: &[String],
        lease_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<bool, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        let names: Vec<&str> = scopes.iter().map(String::as_str).collect();
        let mut sets = take_sets(&mut state, &names, now, now_ms)?;
        let live = sets.iter().all(|(_, set)| set.score(lease_id).is_some_and(|score| score > now_ms));
        for (_, set) in &mut sets {
            if live {
                set.insert(lease_id, expires_at_ms);
            } else {
                set.remove(lease_id);
            }
        }
        restore(&mut state, sets, now, now_ms);
        Ok(live)
    }

    async fn release_lease(&self, scopes: &[String], lease_id: &str) -> Result<(), CacheError> {
        let now = Instant::now();
        let now_ms = super::now_ms();
        let mut state = self.lock(now);
        for scope in scopes {
            let mut set = state.take_set(scope, now)?;
            set.remove(lease_id);
            state.put_set(scope, set, now, now_ms);
        }
        Ok(())
    }

    async fn lease_count(&self, scope: &str, now_ms: i64) -> Result<u64, CacheError> {
        let now = Instant::now();
        let mut state = self.lock(now);
        Ok(state.set(scope, now)?.map_or(0, |set| set.live(now_ms).count() as u64))
    }

    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        let now = Instant::now();
        Ok(self.lock(now).remove_prefix(prefix, now))
    }

    async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        let mut channels = self.channels();
        if let Some(sender) = channels.get(channel) {
            if sender.receiver_count() == 0 {
                channels.remove(channel);
            } else {
                // Err only when every receiver went away in the meantime: nobody to tell.
                let _ = sender.send(message.to_owned());
            }
        }
        Ok(())
    }

    async fn subscribe(&self, channel: &str) -> Result<ChangeStream, CacheError> {
        let mut channels = self.channels();
        let sender = channels.entry(channel.to_owned()).or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0);
        Ok(ChangeStream::new(sender.subscribe()))
    }
}

/// Takes the distinct sets named in `scopes` out of the map (all or none: on a type error the
/// ones already taken are put back).
fn take_sets<'a>(
    state: &mut State,
    scopes: &[&'a str],
    now: Instant,
    now_ms: i64,
) -> Result<Vec<(&'a str, state::ExpiringSet)>, CacheError> {
    let mut sets: Vec<(&'a str, state::ExpiringSet)> = Vec::with_capacity(scopes.len());
    for scope in scopes {
        if sets.iter().any(|(name, _)| name == scope) {
            continue;
        }
        match state.take_set(scope, now) {
            Ok(set) => sets.push((scope, set)),
            Err(error) => {
                restore(state, sets, now, now_ms);
                return Err(error);
            }
        }
    }
    Ok(sets)
}

/// Puts sets taken with `State::take_set` back.
fn restore(state: &mut State, sets: Vec<(&str, state::ExpiringSet)>, now: Instant, now_ms: i64) {
    for (scope, set) in sets {
        state.put_set(scope, set, now, now_ms);
    }
}
