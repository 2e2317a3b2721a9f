//! The `gateway` role: authenticated HTTP (:8080) and TCP (:1337) access to instances.
//!
//! The foundation binds both listeners; the proxy arrives with the gateway issue.

use std::net::SocketAddr;

use axum::Router;
use axum::routing::get;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;

/// The `[gateway]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub http_listen: SocketAddr,
    pub tcp_listen: SocketAddr,
    pub public_host: String,
}

/// The bound gateway role.
pub struct Gateway {
    http: TcpListener,
    tcp: TcpListener,
}

impl Gateway {
    /// Binds both listeners.
    pub async fn bind(cfg: &Config, _deps: &Deps) -> anyhow::Result<Self> {
        let http = TcpListener::bind(cfg.http_listen).await?;
        let tcp = TcpListener::bind(cfg.tcp_listen).await?;
        Ok(Self { http, tcp })
    }

    /// The HTTP listener's address.
    pub fn http_addr(&self) -> std::io::Result<SocketAddr> {
        self.http.local_addr()
    }

    /// The TCP listener's address.
    pub fn tcp_addr(&self) -> std::io::Result<SocketAddr> {
        self.tcp.local_addr()
    }

    /// Serves until the token is cancelled.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        let router = Router::new().route("/healthz", get(|| async { "ok\n" }));
        let _tcp = self.tcp;
        axum::serve(self.http, router).with_graceful_shutdown(token.cancelled_owned()).await?;
        Ok(())
    }
}
