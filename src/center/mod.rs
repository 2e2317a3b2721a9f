//! The `center` role: deployment control (start, stop, status, logs, stop-all, image builds) and
//! the instance state machine, behind an internal HTTP API signed with the internal secret.
//!
//! The foundation binds the listener; the control API arrives with the pipeline issue.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;

/// The `[center]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub url: String,
}

/// The bound center role.
pub struct Center {
    listener: TcpListener,
    router: Router,
}

impl Center {
    /// Binds the internal listener.
    pub async fn bind(cfg: &Config, _deps: &Deps) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
        Ok(Self { listener, router })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the token is cancelled.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(token.cancelled_owned()).await?;
        Ok(())
    }
}
