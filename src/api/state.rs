//! The api role's shared state: the backends it uses and the event configuration.
//!
//! Sub-APIs (contestant, admin, portal, admin UI) take `State<ApiState>` and reach the seams
//! through it; nothing here is a global.

use std::sync::Arc;

use crate::api::contestant::client_ip::TrustedProxies;
use crate::app::Deps;
use crate::cache::Cache;
use crate::config::Secrets;
use crate::event::EventSettings;
use crate::metrics::Metrics;
use crate::store::Store;

/// State shared by every api handler. Cheap to clone.
#[derive(Clone, Debug)]
pub struct ApiState {
    pub store: Store,
    pub cache: Cache,
    pub event: EventSettings,
    pub secrets: Secrets,
    pub metrics: Metrics,
    pub deps: Deps,
    /// The deployment center: in process when center runs here, signed HTTP otherwise.
    pub center: crate::control::Client,
    /// `api.trusted_proxies`, parsed once (an invalid setting is logged and trusts no proxy).
    pub trusted_proxies: Arc<TrustedProxies>,
}

impl ApiState {
    /// Builds the state from the process's backends; loads the event configuration.
    pub async fn new(deps: &Deps) -> anyhow::Result<Self> {
        let store = deps.store()?.clone();
        let event = EventSettings::load(store.clone(), deps.cache.clone()).await?;
        Ok(Self {
            store,
            cache: deps.cache.clone(),
            event,
            secrets: deps.secrets.clone(),
            metrics: deps.metrics.clone(),
            deps: deps.clone(),
            center: crate::control::Client::for_process(deps)?,
            trusted_proxies: Arc::new(parse_trusted_proxies(&deps.settings.api.trusted_proxies)),
        })
    }
}

/// Parses `api.trusted_proxies`; an invalid list is logged and trusts no proxy (the socket peer
/// is then always the client, which is the safe side).
fn parse_trusted_proxies(text: &str) -> TrustedProxies {
    TrustedProxies::parse(text).unwrap_or_else(|problem| {
        tracing::error!(%problem, "api.trusted_proxies is invalid; trusting no proxy");
        TrustedProxies::default()
    })
}
