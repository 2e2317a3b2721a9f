//! The contestant API's process-local context: settings, in-process caches and the task that
//! keeps those caches coherent with other processes.
//!
//! One `Arc<Contestant>` is attached to every contestant route as a request extension (so the
//! sub-routers, including the pipeline's `instances` router, share it); handlers reach it with
//! `Extension<Arc<Contestant>>`, extractors through the request parts. The background task
//! subscribes to the change topics of `signals` and is aborted when the router (and with it the
//! last reference to the context) is dropped.

use std::path::PathBuf;
use std::sync::{Arc, OnceLock};

use super::captcha::{CaptchaVerifier, HttpVerifier};
use super::catalog::CatalogCache;
use super::client_ip::TrustedProxies;
use super::flag_check::RegexCache;
use super::ratelimit::RateLimitConfig;
use super::session::SnapshotCache;
use super::signals::{AUTH_TOPIC, CHALLENGES_TOPIC, SCOREBOARD_TOPIC};
use super::standings::StandingsCache;
use crate::api::ApiState;
use crate::cache::{Cache, ChangeStream};
use crate::domain::UserId;

/// Shared state of the contestant routes of one process.
#[derive(Debug)]
pub struct Contestant {
    /// Reverse proxies whose `X-Forwarded-For` is believed.
    pub trusted_proxies: TrustedProxies,
    /// Request rate limits.
    pub rate_limits: RateLimitConfig,
    /// Root of challenge attachments (`<data_dir>/files`).
    pub files_dir: PathBuf,
    /// Captcha verification.
    pub captcha: Arc<dyn CaptchaVerifier>,
    /// Account snapshots of the session check.
    pub sessions: SnapshotCache,
    /// Computed standings.
    pub standings: StandingsCache,
    /// Compiled regex flags.
    pub regexes: RegexCache,
    /// The challenge rows of the listing endpoints.
    pub catalog: CatalogCache,
    dummy_hash: OnceLock<String>,
    subscriber: Option<tokio::task::AbortHandle>,
}

impl Drop for Contestant {
    fn drop(&mut self) {
        if let Some(handle) = &self.subscriber {
            handle.abort();
        }
    }
}

impl Contestant {
    /// Builds the context from the api state and starts the change subscriber (when called
    /// inside a tokio runtime).
    pub fn new(state: &ApiState) -> Arc<Self> {
        let api = &state.deps.settings.api;
        Self::with_parts(
            state,
            (*state.trusted_proxies).clone(),
            api.rate_limits.clone(),
            Arc::new(HttpVerifier::new(api.captcha_verify_url.clone())),
        )
    }

    /// Builds the context with explicit parts (tests plug in their own captcha verifier).
    pub fn with_parts(
        state: &ApiState,
        trusted_proxies: TrustedProxies,
        rate_limits: RateLimitConfig,
        captcha: Arc<dyn CaptchaVerifier>,
    ) -> Arc<Self> {
        Arc::new_cyclic(|weak: &std::sync::Weak<Contestant>| {
            let subscriber = tokio::runtime::Handle::try_current()
                .ok()
                .map(|handle| handle.spawn(subscribe(state.cache.clone(), weak.clone())).abort_handle());
            Contestant {
                trusted_proxies,
                rate_limits,
                files_dir: state.deps.settings.data_dir.join("files"),
                captcha,
                sessions: SnapshotCache::default(),
                standings: StandingsCache::default(),
                regexes: RegexCache::default(),
                catalog: CatalogCache::default(),
                dummy_hash: OnceLock::new(),
                subscriber,
            }
        })
    }

    /// An argon2id hash of a fixed string, verified when a login names no account so that
    /// every login costs one password verification (no user enumeration by timing).
    pub fn dummy_hash(&self) -> &str {
        self.dummy_hash.get_or_init(|| {
            crate::auth::hash_password("fctf dummy password for constant-time login").unwrap_or_default()
        })
    }
}

async fn next_signal(stream: &mut Option<ChangeStream>) -> Option<String> {
    match stream.as_mut() {
        Some(stream) => stream.next().await,
        None => std::future::pending().await,
    }
}

async fn subscribe(cache: Cache, context: std::sync::Weak<Contestant>) {
    let mut auth = cache
        .subscribe(AUTH_TOPIC)
        .await
        .map_err(|error| tracing::warn!(%error, "cannot subscribe to account changes; relying on the snapshot TTL"))
        .ok();
    let mut scores = cache
        .subscribe(SCOREBOARD_TOPIC)
        .await
        .map_err(|error| tracing::warn!(%error, "cannot subscribe to scoreboard changes; relying on its TTL"))
        .ok();
    let mut challenges = cache
        .subscribe(CHALLENGES_TOPIC)
        .await
        .map_err(|error| tracing::warn!(%error, "cannot subscribe to challenge changes; relying on the catalog TTL"))
        .ok();
    loop {
        tokio::select! {
            message = next_signal(&mut auth) => {
                let Some(context) = context.upgrade() else { return };
                match message {
                    Some(text) => context.sessions.invalidate(text.parse::<i64>().ok().map(UserId)),
                    None => auth = None,
                }
            }
            message = next_signal(&mut scores) => {
                let Some(context) = context.upgrade() else { return };
                match message {
                    Some(_) => context.standings.invalidate(),
                    None => scores = None,
                }
            }
            message = next_signal(&mut challenges) => {
                let Some(context) = context.upgrade() else { return };
                match message {
                    Some(_) => {
                        context.catalog.invalidate();
                        context.standings.invalidate();
                    }
                    None => challenges = None,
                }
            }
        }
        if auth.is_none() && scores.is_none() && challenges.is_none() {
            return;
        }
    }
}
