//! One-time markers: remember that something happened, for a while, atomically across
//! processes. Center uses them to refuse replayed signed requests within the freshness window.

use std::time::Duration;

use super::{Cache, CacheError};

impl Cache {
    /// Records `name` for `ttl`; true when this call recorded it, false when it was already
    /// recorded and has not expired (one atomic set-if-absent on every backend).
    pub async fn claim_once(&self, name: &str, ttl: Duration) -> Result<bool, CacheError> {
        self.backend.set_if_absent(&self.key(&format!("once:{name}")), b"1", ttl).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_name_is_claimed_once_until_it_expires() {
        let cache = Cache::memory("t:");
        assert!(cache.claim_once("a", Duration::from_millis(200)).await.unwrap());
        assert!(!cache.claim_once("a", Duration::from_millis(200)).await.unwrap());
        assert!(cache.claim_once("b", Duration::from_millis(200)).await.unwrap());
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(cache.claim_once("a", Duration::from_millis(200)).await.unwrap());
    }
}
