//! Long-lived relays (TCP sessions and upgraded HTTP connections): the watchdog that ends them
//! (the bytes are moved and counted by [`crate::gateway::relay`]).
//!
//! A relay ends when either side closes, when the token's `exp` passes, when its instance stops
//! being live (checked every second through the in-process liveness cache), or when the drain
//! deadline cuts every connection. While it lives, its connection leases are renewed every third
//! of their time to live, in the same task (no extra task per session).

use std::time::Duration;

use tokio::time::{Instant, MissedTickBehavior};

use crate::domain::InstanceId;
use crate::gateway::Shared;
use crate::gateway::limits::Leases;
use crate::metrics::Gauge;

const LIVENESS_EVERY: Duration = Duration::from_secs(1);

/// Why a relay was cut by the gateway.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cut {
    Expired,
    Revoked,
    Shutdown,
}

impl Cut {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Expired => "token_expired",
            Self::Revoked => "instance_stopped",
            Self::Shutdown => "shutdown",
        }
    }
}

/// Time left until `exp` (Unix seconds).
pub(crate) fn until_exp(exp: i64) -> Duration {
    let left_ms = exp.saturating_mul(1000).saturating_sub(chrono::Utc::now().timestamp_millis());
    Duration::from_millis(u64::try_from(left_ms).unwrap_or(0))
}

/// Resolves when the relay must be cut; renews `leases` meanwhile.
pub(crate) async fn watch(shared: &Shared, exp: i64, instance_id: Option<InstanceId>, leases: Option<&Leases>) -> Cut {
    let expiry = tokio::time::sleep(until_exp(exp));
    tokio::pin!(expiry);
    let mut liveness = tokio::time::interval_at(Instant::now() + LIVENESS_EVERY, LIVENESS_EVERY);
    liveness.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let renew_every = shared.limits.renew_every();
    let mut renewal = tokio::time::interval_at(Instant::now() + renew_every, renew_every);
    renewal.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = &mut expiry => return Cut::Expired,
            () = shared.hard_stop.cancelled() => return Cut::Shutdown,
            _ = liveness.tick(), if instance_id.is_some() => {
                if let Some(instance_id) = instance_id
                    && !shared.limits.is_live(instance_id).await
                {
                    return Cut::Revoked;
                }
            }
            _ = renewal.tick(), if leases.is_some() => {
                if let Some(leases) = leases {
                    shared.limits.renew(leases).await;
                }
            }
        }
    }
}

/// Decrements a gauge when dropped.
pub(crate) struct GaugeGuard(Gauge);

impl GaugeGuard {
    pub(crate) fn new(gauge: &Gauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for GaugeGuard {
    fn drop(&mut self) {
        self.0.dec();
    }
}
