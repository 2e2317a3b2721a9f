//! Verified tokens, remembered so the MAC and JSON work is done once per token, not once per
//! request or connection.
//!
//! [`VerifiedTokens`] is shared by every connection of the gateway (both ports): a map from a
//! keyed hash of the token (SipHash with a per-process random key) to what the token resolved
//! to. A hit also compares the whole token, so a hash collision can only cost a verification,
//! never admit a token that was not verified. Only successes are remembered. An entry is
//! ignored (and dropped) once `now > exp`, the same rule as verification; liveness (the 2 s
//! revocation) is checked on every request by the caller (`Shared::check_live`); a live
//! answer is memoised in the entry only for as long as the liveness cache itself would reuse
//! it (`liveness_cache_ms` from when the cache gave it). The map is bounded: when it holds `MAX_ENTRIES`, expired entries are
//! dropped, and if that frees nothing it is emptied (the next requests simply verify again).

use std::collections::HashMap;
use std::hash::BuildHasher as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Instant;

use http::HeaderValue;
use http::uri::Authority;

use crate::domain::gateway_token::TokenClaims;
use crate::gateway::limits::token_digest;
use crate::gateway::route::{RouteMapper, team_and_challenge};

const MAX_ENTRIES: usize = 16 * 1024;

/// A verified token and what it resolves to.
pub(crate) struct Authorized {
    pub(crate) token: String,
    pub(crate) claims: TokenClaims,
    /// The upstream, or `None` when the route names no usable address.
    pub(crate) authority: Option<Authority>,
    /// The upstream authority as the `Host` header sent to it.
    pub(crate) host: Option<HeaderValue>,
    /// `(team, challenge)` for access logs.
    pub(crate) labels: Option<(i64, i64)>,
    digest: OnceLock<[u8; 16]>,
    key: OnceLock<String>,
    /// Until when the instance is known live, in nanoseconds after [`clock_base`] (0: not
    /// known). Set from a liveness answer of the cache and never beyond that answer's own
    /// freshness, so the revocation delay is the same as with no memo at all.
    live_until_ns: AtomicU64,
}

impl Authorized {
    pub(crate) fn new(routes: &RouteMapper, token: &str, claims: TokenClaims) -> Self {
        let authority = routes.authority(&claims.route);
        let host = authority.as_ref().and_then(|authority| HeaderValue::from_str(authority.as_str()).ok());
        Self {
            token: token.to_owned(),
            authority,
            host,
            labels: team_and_challenge(&claims.route),
            claims,
            digest: OnceLock::new(),
            key: OnceLock::new(),
            live_until_ns: AtomicU64::new(0),
        }
    }

    /// What stands for the token in limits (computed once).
    pub(crate) fn token_digest(&self) -> [u8; 16] {
        *self.digest.get_or_init(|| token_digest(&self.token))
    }

    /// The token's fragment in cache keys (computed once).
    pub(crate) fn token_key(&self) -> &str {
        self.key.get_or_init(|| hex::encode(self.token_digest()))
    }

    /// True when a liveness answer remembered here is still fresh at `now`.
    pub(crate) fn known_live_at(&self, now: Instant) -> bool {
        nanos_since_base(now) < self.live_until_ns.load(Ordering::Relaxed)
    }

    /// Remembers that the instance is live until `until`.
    pub(crate) fn remember_live_until(&self, until: Instant) {
        self.live_until_ns.store(nanos_since_base(until), Ordering::Relaxed);
    }
}

/// The origin of the liveness memo's clock.
fn clock_base() -> Instant {
    static BASE: OnceLock<Instant> = OnceLock::new();
    *BASE.get_or_init(Instant::now)
}

fn nanos_since_base(at: Instant) -> u64 {
    u64::try_from(at.saturating_duration_since(clock_base()).as_nanos()).unwrap_or(u64::MAX)
}

/// Recently verified tokens, shared by all connections.
pub(crate) struct VerifiedTokens {
    hasher: std::collections::hash_map::RandomState,
    entries: Mutex<HashMap<u64, Arc<Authorized>>>,
    max_entries: usize,
}

impl Default for VerifiedTokens {
    fn default() -> Self {
        Self::with_capacity(MAX_ENTRIES)
    }
}

impl VerifiedTokens {
    fn with_capacity(max_entries: usize) -> Self {
        Self {
            hasher: std::collections::hash_map::RandomState::new(),
            entries: Mutex::new(HashMap::new()),
            max_entries: max_entries.max(1),
        }
    }

    /// The remembered verification of exactly `token`, unless it has expired by `now`.
    pub(crate) fn get(&self, token: &str, now: i64) -> Option<Arc<Authorized>> {
        let key = self.hasher.hash_one(token);
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let found = entries.get(&key)?;
        if found.token != token {
            return None;
        }
        if now > found.claims.exp {
            entries.remove(&key);
            return None;
        }
        Some(found.clone())
    }

    /// Remembers a successful verification.
    pub(crate) fn insert(&self, authorized: Arc<Authorized>, now: i64) {
        let key = self.hasher.hash_one(authorized.token.as_str());
        let mut entries = self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        if entries.len() >= self.max_entries && !entries.contains_key(&key) {
            entries.retain(|_, entry| now <= entry.claims.exp);
            if entries.len() >= self.max_entries {
                entries.clear();
            }
        }
        entries.insert(key, authorized);
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.entries.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn authorized(token: &str, exp: i64) -> Arc<Authorized> {
        let routes = RouteMapper::new("svc.cluster.local", 3333);
        let claims = TokenClaims { exp, route: "127.0.0.1:9".to_owned(), instance_id: None };
        Arc::new(Authorized::new(&routes, token, claims))
    }

    #[test]
    fn hits_only_the_same_token_before_exp() {
        let verified = VerifiedTokens::default();
        verified.insert(authorized("aaaa.bbbb", 100), 50);
        assert!(verified.get("aaaa.bbbb", 100).is_some(), "valid while now <= exp");
        assert!(verified.get("aaaa.bbbc", 60).is_none(), "another token never hits");
        assert!(verified.get("aaaa.bbbb", 101).is_none(), "expired");
        assert_eq!(verified.len(), 0, "an expired entry is dropped when seen");
    }

    #[test]
    fn liveness_memo_expires_at_the_given_instant() {
        let entry = authorized("aaaa.bbbb", 100);
        let now = Instant::now();
        assert!(!entry.known_live_at(now), "nothing known at first");
        entry.remember_live_until(now + std::time::Duration::from_millis(500));
        assert!(entry.known_live_at(now));
        assert!(!entry.known_live_at(now + std::time::Duration::from_millis(500)));
    }

    #[test]
    fn stays_bounded() {
        let verified = VerifiedTokens::with_capacity(4);
        for index in 0..4 {
            verified.insert(authorized(&format!("tok.{index}"), if index < 2 { 10 } else { 1000 }), 5);
        }
        verified.insert(authorized("tok.new", 1000), 20);
        assert_eq!(verified.len(), 3, "expired entries make room first");
        for index in 0..10 {
            verified.insert(authorized(&format!("more.{index}"), 1000), 20);
            assert!(verified.len() <= 4);
        }
        assert!(verified.get("more.9", 20).is_some(), "the newest entry is kept");
    }
}
