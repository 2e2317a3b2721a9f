#![allow(unused_variables)]
//! PLACEHOLDER until the backend lands.
use super::*;
pub struct RedisCache;
impl RedisCache {
    pub async fn connect(url: &str) -> Result<Self, CacheError> {
        unimplemented!()
    }
}

#[async_trait::async_trait]
impl super::CacheBackend for RedisCache {
    async fn get(&self, key: &str) -> Result<Option<Vec<u8>>, CacheError> {
        unimplemented!()
    }
    async fn set(&self, key: &str, value: &[u8], ttl: Option<Duration>) -> Result<(), CacheError> {
        unimplemented!()
    }
    async fn set_if_absent(&self, key: &str, value: &[u8], ttl: Duration) -> Result<bool, CacheError> {
        unimplemented!()
    }
    async fn delete(&self, key: &str) -> Result<bool, CacheError> {
        unimplemented!()
    }
    async fn delete_if_equals(&self, key: &str, value: &[u8]) -> Result<bool, CacheError> {
        unimplemented!()
    }
    async fn ttl(&self, key: &str) -> Result<Option<Duration>, CacheError> {
        unimplemented!()
    }
    async fn take_token(
        &self,
        key: &str,
        capacity: u32,
        refill_per_sec: f64,
        now_ms: i64,
    ) -> Result<RateDecision, CacheError> {
        unimplemented!()
    }
    async fn cooldown(&self, key: &str, cooldown: Duration, now_ms: i64) -> Result<Option<Duration>, CacheError> {
        unimplemented!()
    }
    async fn increment_bounded(
        &self,
        key: &str,
        max: u64,
        initial: u64,
        ttl: Duration,
    ) -> Result<Option<u64>, CacheError> {
        unimplemented!()
    }
    async fn decrement_floor(&self, key: &str) -> Result<(), CacheError> {
        unimplemented!()
    }
    async fn reserve_slot(
        &self,
        key: &str,
        member: &str,
        limit: u32,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<SlotReservation, CacheError> {
        unimplemented!()
    }
    async fn refresh_slot(&self, key: &str, member: &str, expires_at_ms: i64) -> Result<bool, CacheError> {
        unimplemented!()
    }
    async fn release_slot(&self, key: &str, member: &str) -> Result<bool, CacheError> {
        unimplemented!()
    }
    async fn slot_members(&self, key: &str, now_ms: i64) -> Result<Vec<String>, CacheError> {
        unimplemented!()
    }
    async fn acquire_lease(
        &self,
        scopes: &[(String, u32)],
        lease_id: &str,
        expires_at_ms: i64,
        now_ms: i64,
    ) -> Result<LeaseOutcome, CacheError> {
        unimplemented!()
    }
    async fn renew_lease(&self, scopes: &[String], lease_id: &str, expires_at_ms: i64) -> Result<(), CacheError> {
        unimplemented!()
    }
    async fn release_lease(&self, scopes: &[String], lease_id: &str) -> Result<(), CacheError> {
        unimplemented!()
    }
    async fn lease_count(&self, scope: &str, now_ms: i64) -> Result<u64, CacheError> {
        unimplemented!()
    }
    async fn delete_prefix(&self, prefix: &str) -> Result<u64, CacheError> {
        unimplemented!()
    }
    async fn publish(&self, channel: &str, message: &str) -> Result<(), CacheError> {
        unimplemented!()
    }
    async fn subscribe(&self, channel: &str) -> Result<ChangeStream, CacheError> {
        unimplemented!()
    }
}
