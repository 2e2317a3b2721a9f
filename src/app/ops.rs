//! The operations listener of the whole process: `/healthz`, `/readyz` and `/metrics`.
//!
//! `/healthz` answers 200 while the process runs. `/readyz` answers 200 once every role has
//! started and the store answers, and 503 from the moment shutdown begins, so load balancers
//! drain the process first. `/metrics` renders the process registry.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::metrics::Metrics;
use crate::store::Store;

/// Readiness of the process. Cheap to clone.
#[derive(Clone, Debug, Default)]
pub struct Readiness(Arc<AtomicBool>);

impl Readiness {
    /// Marks the process ready or not.
    pub fn set(&self, ready: bool) {
        self.0.store(ready, Ordering::SeqCst);
    }

    /// True when ready.
    pub fn get(&self) -> bool {
        self.0.load(Ordering::SeqCst)
    }
}

#[derive(Clone)]
struct OpsState {
    readiness: Readiness,
    metrics: Metrics,
    store: Option<Store>,
    started: std::time::Instant,
}

/// The bound operations listener.
pub struct OpsServer {
    listener: TcpListener,
    router: Router,
}

impl OpsServer {
    /// Binds the listener.
    pub async fn bind(
        addr: SocketAddr,
        readiness: Readiness,
        metrics: Metrics,
        store: Option<Store>,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::bind(addr).await?;
        let state = OpsState { readiness, metrics, store, started: std::time::Instant::now() };
        let router = Router::new()
            .route("/healthz", get(healthz))
            .route("/readyz", get(readyz))
            .route("/metrics", get(metrics_text))
            .with_state(state);
        Ok(Self { listener, router })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the token is cancelled.
    pub async fn run(self, token: CancellationToken) -> std::io::Result<()> {
        axum::serve(self.listener, self.router).with_graceful_shutdown(token.cancelled_owned()).await
    }
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn readyz(State(state): State<OpsState>) -> impl IntoResponse {
    if !state.readiness.get() {
        return (StatusCode::SERVICE_UNAVAILABLE, "not ready\n");
    }
    if let Some(store) = &state.store
        && let Err(error) = store.ping().await
    {
        tracing::warn!(%error, "readiness check: store unreachable");
        return (StatusCode::SERVICE_UNAVAILABLE, "store unreachable\n");
    }
    (StatusCode::OK, "ready\n")
}

async fn metrics_text(State(state): State<OpsState>) -> impl IntoResponse {
    state
        .metrics
        .gauge("fctf_uptime_seconds", "Seconds since the process started.", &[])
        .set(i64::try_from(state.started.elapsed().as_secs()).unwrap_or(i64::MAX));
    state
        .metrics
        .gauge("fctf_ready", "1 when the process is ready to serve.", &[])
        .set(i64::from(state.readiness.get()));
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], state.metrics.render())
}
