//! Instance liveness: a marker per running instance, read by the gateway to refuse the tokens of
//! stopped instances (revocation), written by whoever owns instance state (listener, center).
//!
//! Key `inst:live:<instance id>`, expiring at the instance's `time_finished`, so a marker can
//! never outlive its instance even if the stop is never observed. Liveness is *positive*: a
//! missing marker means "not live". That is the safe reading when routes can be reused (a local
//! runtime hands a freed port to the next instance, so an old token must not reach it), and it
//! means the owner of instance state must (re)mark every Running instance after a cache loss
//! (the listener's resync does) and must mark an instance before publishing its token.

use std::time::Duration;

use super::{Cache, CacheError};
use crate::domain::InstanceId;

fn live_key(instance_id: InstanceId) -> String {
    format!("inst:live:{instance_id}")
}

impl Cache {
    /// Marks an instance live until `until_unix` (Unix seconds, normally its `time_finished`).
    /// A time in the past clears the marker.
    pub async fn mark_instance_live(&self, instance_id: InstanceId, until_unix: i64) -> Result<(), CacheError> {
        let now_ms = super::now_ms();
        let until_ms = until_unix.saturating_mul(1000);
        let Some(left_ms) = until_ms.checked_sub(now_ms).filter(|left| *left > 0) else {
            self.clear_instance_live(instance_id).await?;
            return Ok(());
        };
        let ttl = Duration::from_millis(u64::try_from(left_ms).unwrap_or(u64::MAX));
        self.set_bytes(&live_key(instance_id), b"1", Some(ttl)).await
    }

    /// Clears an instance's marker (the instance stopped); its tokens stop working.
    pub async fn clear_instance_live(&self, instance_id: InstanceId) -> Result<(), CacheError> {
        self.delete(&live_key(instance_id)).await.map(|_| ())
    }

    /// True while the instance is marked live.
    pub async fn is_instance_live(&self, instance_id: InstanceId) -> Result<bool, CacheError> {
        Ok(self.get_bytes(&live_key(instance_id)).await?.is_some())
    }
}
