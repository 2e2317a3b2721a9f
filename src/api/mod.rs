//! The `api` role: contestant API (`/api/...`), admin API (`/api/v1/...`), player portal (`/`)
//! and admin UI (`/admin`) on one HTTP listener.
//!
//! The foundation binds the listener and serves the JSON error shape for unknown routes; the
//! routes themselves arrive with the admin API, contestant API, portal and admin UI issues.

pub mod json;
pub mod paths;

use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;

/// The `[api]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: String,
}

/// The bound api role.
pub struct Api {
    listener: TcpListener,
    router: Router,
}

impl Api {
    /// Binds the listener and builds the router.
    pub async fn bind(cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(cfg.listen).await?;
        Ok(Self { listener, router: router(deps) })
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

/// The api router.
pub fn router(_deps: &Deps) -> Router {
    Router::new().fallback(not_found)
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"success": false, "message": "not found"})))
}
