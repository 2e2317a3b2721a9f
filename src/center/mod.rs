//! The `center` role: deployment control (start, stop, status, logs, stop-all, image builds)
//! and the instance state machine, behind an internal HTTP API signed with the internal
//! secret (`control::signature`).
//!
//! [`service`] implements `control::ControlService` over the store (durable instance rows),
//! the cache (hot state), the queue producer (deploy jobs, confirmed by the broker) and the
//! runtime (stop, logs, builds); [`http`] serves it to other processes; in this process the
//! service is registered in `deps.control` so the api's `control::Client` calls it directly.
//!
//! Start: the api has checked eligibility and reserved the team's slot; center records the
//! instance `queued` (one live instance per team and challenge, enforced by the store), then
//! publishes the job and answers only once the queue confirmed it. A full queue or a broker
//! outage ends the instance `failed`, releases the slot and answers the error, so nothing is
//! ever reported queued that is not. Stop: a queued instance ends `stopped` at once (the
//! consumer drops its job); a deploying or running one is revoked (gateway liveness cleared),
//! removed from the runtime and ends `stopped`.

mod builds;
mod flags;
mod http;
mod service;

#[cfg(test)]
mod tests;

use std::net::SocketAddr;

use anyhow::Context;
use axum::Router;
use serde::Deserialize;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::app::Deps;
use crate::control::lifecycle::Lifecycle;

pub use service::CenterService;

/// The `[center]` section.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address of the internal API.
    pub listen: SocketAddr,
    /// URL other processes (api, build workflows) use to reach center.
    pub url: String,
}

/// The bound center role.
pub struct Center {
    listener: TcpListener,
    router: Router,
    service: std::sync::Arc<CenterService>,
}

impl Center {
    /// Binds the internal listener and registers the service for in-process callers.
    pub async fn bind(cfg: &Config, deps: &Deps) -> anyhow::Result<Self> {
        let store = deps.store()?.clone();
        let runtime = deps.runtime()?.clone();
        let producer = deps.producer.clone().context("the queue producer is not connected")?;
        let lifecycle = Lifecycle::new(store, deps.cache.clone(), runtime);
        let callback_url = format!("{}{}", cfg.url.trim_end_matches('/'), crate::control::paths::BUILD_REPORT);
        let service = CenterService::new(lifecycle, producer, deps.secrets.clone(), callback_url);
        deps.control.register(service.clone());
        let listener = TcpListener::bind(cfg.listen).await?;
        let state =
            http::HttpState { service: service.clone(), cache: deps.cache.clone(), secrets: deps.secrets.clone() };
        Ok(Self { listener, router: http::router(state), service })
    }

    /// The bound address.
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until the token is cancelled; meanwhile records builds that finished without
    /// calling back.
    pub async fn run(self, token: CancellationToken) -> anyhow::Result<()> {
        let service = self.service.clone();
        let builds_token = token.child_token();
        let builds = tokio::spawn(async move { builds::watch_finished(&service, builds_token).await });
        let served = axum::serve(self.listener, self.router).with_graceful_shutdown(token.cancelled_owned()).await;
        builds.abort();
        served?;
        Ok(())
    }
}
