//! Logging setup (tracing-subscriber). Secrets never reach the logs: configuration is logged
//! through redacting `Debug` impls and tokens are never passed to `tracing` macros.

use tracing_subscriber::EnvFilter;

use crate::config::{LogConfig, LogFormat};

/// Installs the global subscriber. `RUST_LOG` wins over `log.level` when set. Calling it twice
/// is harmless (the second call keeps the first subscriber).
pub fn init(cfg: &LogConfig) {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(&cfg.level));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr);
    let result = match cfg.format {
        LogFormat::Text => builder.try_init(),
        LogFormat::Compact => builder.compact().with_ansi(false).try_init(),
    };
    if let Err(error) = result {
        tracing::debug!(%error, "tracing subscriber already installed");
    }
}
