//! The `api` role: contestant API (`/api/...`), admin API (`/api/v1/...`), player portal (`/`)
//! and admin UI (`/admin`) on one HTTP listener.
//!
//! Each sub-API owns a folder and contributes a `Router<ApiState>`; `router` merges them.
//! Paths of the FCTF-compatible contestant API match case-insensitively: the whole router is
//! wrapped in a URI rewrite (`paths::PathNormalizer`) that runs before routing.

pub mod admin;
pub mod contestant;
pub mod json;
pub mod paths;
pub mod state;

use std::net::SocketAddr;

use axum::Router;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;

pub use state::ApiState;

/// The `[api]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub listen: SocketAddr,
    pub public_url: String,
    /// Comma-separated addresses or CIDR ranges of trusted reverse proxies (client IP).
    pub trusted_proxies: String,
    /// Where captcha tokens are verified (`https://`, or `http://` for a local double; see
    /// `contestant::captcha`).
    pub captcha_verify_url: String,
    /// Request rate limits of the contestant API.
    pub rate_limits: contestant::RateLimitConfig,
}

/// The bound api role.
pub struct Api {
    listener: TcpListener,
    state: ApiState,
}

impl Api {
    /// Binds the listener and loads what the handlers need.
    pub async fn bind(cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        let listener = TcpListener::bind(cfg.listen).await?;
        let state = ApiState::new(deps).await?;
        Ok(Self { listener, state })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the token is cancelled.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        let refresher = self.state.event.spawn_refresher(token.child_token());
        let normalizer = std::sync::Arc::new(paths::PathNormalizer::new(CASE_INSENSITIVE_ROUTES.iter().copied()));
        let app = tower::ServiceExt::map_request(router(self.state), move |mut request: axum::extract::Request| {
            normalizer.normalize_uri(request.uri_mut());
            request
        });
        axum::serve(
            self.listener,
            axum::ServiceExt::<axum::extract::Request>::into_make_service_with_connect_info::<SocketAddr>(app),
        )
        .with_graceful_shutdown(token.cancelled_owned())
        .await?;
        refresher.abort();
        Ok(())
    }
}

/// Route templates matched case-insensitively (the FCTF contestant API). Sub-APIs append theirs.
pub const CASE_INSENSITIVE_ROUTES: &[&str] = contestant::ROUTE_PATHS;

/// The api router with every sub-API.
pub fn router(state: ApiState) -> Router {
    Router::new()
        .merge(contestant::router(&state))
        .merge(admin::router(state.clone()))
        .merge(crate::web::router(&state))
        .merge(crate::web::admin::router(state.clone()))
        .fallback(not_found)
        .with_state(state)
}

async fn not_found() -> impl IntoResponse {
    (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"success": false, "message": "not found"})))
}
