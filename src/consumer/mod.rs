//! The `consumer` role: deploy jobs from the queue to the runtime under a global cap.
//!
//! The foundation holds the queue consumer and the runtime; job handling arrives with the
//! pipeline issue.

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;

/// The `[consumer]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub max_in_flight: u32,
}

/// The consumer role.
pub struct Consumer {
    _queue: crate::queue::QueueConsumer,
}

impl Consumer {
    /// Checks that the queue consumer and the runtime are available.
    pub fn bind(_cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        deps.runtime()?;
        let queue = deps.consumer.clone().ok_or_else(|| anyhow::anyhow!("the queue consumer is not connected"))?;
        Ok(Self { _queue: queue })
    }

    /// Runs until the token is cancelled.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        token.cancelled().await;
        Ok(())
    }
}
