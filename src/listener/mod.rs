//! The `listener` role: watches the runtime and reconciles instance state.
//!
//! The foundation holds the runtime; reconciliation arrives with the pipeline issue.

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;

/// The `[listener]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub ghost_grace_secs: u64,
    pub resync_interval_secs: u64,
}

/// The listener role.
pub struct Listener {
    _runtime: crate::runtime::Runtime,
}

impl Listener {
    /// Checks that the runtime is available.
    pub fn bind(_cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        Ok(Self { _runtime: deps.runtime()?.clone() })
    }

    /// Runs until the token is cancelled.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        token.cancelled().await;
        Ok(())
    }
}
