//! OS signals → the root cancellation token. A second SIGINT/SIGTERM exits at once.
//!
//! The signal handlers are registered synchronously by `on_signals` (not inside the spawned
//! task), so a signal that arrives right after start-up is always caught rather than killing
//! the process with the default action.

use tokio_util::sync::CancellationToken;

/// Returns a token cancelled on the first SIGINT or SIGTERM. The second signal aborts the
/// process without waiting for the drain. Must be called inside a tokio runtime.
pub fn on_signals() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    let mut signals = Signals::register();
    tokio::spawn(async move {
        signals.next().await;
        tracing::info!("signal received; shutting down (send it again to exit at once)");
        cancel.cancel();
        signals.next().await;
        tracing::warn!("second signal received; exiting immediately");
        #[allow(clippy::disallowed_methods)]
        std::process::exit(130);
    });
    token
}

/// The registered termination signals.
#[cfg(unix)]
struct Signals {
    streams: Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>,
}

#[cfg(unix)]
impl Signals {
    fn register() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        let streams = match (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) {
            (Ok(terminate), Ok(interrupt)) => Some((terminate, interrupt)),
            _ => None,
        };
        Self { streams }
    }

    async fn next(&mut self) {
        match self.streams.as_mut() {
            Some((terminate, interrupt)) => {
                tokio::select! {
                    _ = terminate.recv() => {}
                    _ = interrupt.recv() => {}
                }
            }
            None => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn register() -> Self {
        Self
    }

    async fn next(&mut self) {
        let _ = tokio::signal::ctrl_c().await;
    }
}
