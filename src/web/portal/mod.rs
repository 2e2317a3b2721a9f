//! The player portal at `/`: the whole contestant journey in the browser.
//!
//! Pages (GET) and actions (POST, CSRF-checked, answered with a 303 and a flash message):
//! `/` home, `/login`, `/register`, `/logout`, `/team` (create, join, leave), `/challenges`
//! (board by category), `/challenges/{id}` (description, files, hints, flag form, instance
//! control), `/instances`, `/scoreboard` (brackets, freeze banner, SVG graph of the top 10),
//! `/profile` (password change), `/tickets`, `/notifications` (+ `/events`, the live SSE
//! stream), `/log` (the team's action log), `/files` (attachment download).
//!
//! Session: the contestant API's JWT in the `fctf_session` cookie (HttpOnly, SameSite=Lax,
//! Secure under TLS). Each request runs the contestant session check
//! (`contestant::session::authenticate`), so revocation, bans and team changes act exactly as
//! on the JSON API; a dead session cookie is dropped and the user sent to `/login`.
//! Actions go through the contestant API in process (see [`api`]).

pub mod account;
pub mod api;
pub mod board;
pub mod challenge;
pub mod graph;
pub mod instance;
pub mod scoreboard;
pub mod session;
pub mod team;
pub mod tickets;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::{Extension, Router};

use crate::api::ApiState;
use crate::api::contestant::Contestant;

pub use session::Session;

/// Cookie carrying the session JWT.
pub const SESSION_COOKIE: &str = "fctf_session";

/// Where players reach challenge instances (from the `[gateway]` section's public settings).
#[derive(Debug, Clone)]
pub struct GatewayInfo {
    /// Base of HTTP links, without a trailing slash (`https://gateway.example.org`).
    pub http_base: String,
    /// Host name of TCP access.
    pub tcp_host: String,
    /// Port of TCP access.
    pub tcp_port: u16,
    /// True when the gateway serves TLS (the TLS command is shown).
    pub tls: bool,
}

impl GatewayInfo {
    /// The public coordinates of the configured gateway.
    pub fn from_config(gateway: &crate::gateway::Config) -> Self {
        let (tcp_host, tcp_port) = gateway.public_tcp();
        Self { http_base: gateway.public_http_base(), tcp_host, tcp_port, tls: gateway.tls_enabled() }
    }
}

/// Process-wide portal state.
#[derive(Debug)]
pub struct Portal {
    /// The contestant context shared with the in-process API.
    pub contestant: Arc<Contestant>,
    /// The in-process contestant API.
    pub api: api::ContestantApi,
    /// Gateway coordinates for connection info.
    pub gateway: GatewayInfo,
}

impl Portal {
    /// Builds the portal state.
    pub fn new(state: &ApiState) -> Arc<Self> {
        let contestant = Contestant::new(state);
        Arc::new(Self {
            api: api::ContestantApi::new(state, contestant.clone()),
            contestant,
            gateway: GatewayInfo::from_config(&state.deps.settings.gateway),
        })
    }
}

/// The portal's routes with its state.
pub fn router(state: &ApiState) -> Router<ApiState> {
    Router::new()
        .route("/", get(account::home))
        .route("/login", get(account::login_page).post(account::login))
        .route("/register", get(account::register_page).post(account::register))
        .route("/logout", post(account::logout))
        .route("/profile", get(account::profile))
        .route("/profile/password", post(account::change_password))
        .route("/team", get(team::page))
        .route("/team/create", post(team::create))
        .route("/team/join", post(team::join))
        .route("/team/leave", post(team::leave))
        .route("/log", get(team::action_log))
        .route("/challenges", get(board::page))
        .route("/challenges/{id}", get(challenge::page))
        .route("/challenges/{id}/submit", post(challenge::submit))
        .route("/challenges/{id}/hints/{hint}", get(challenge::hint_confirm).post(challenge::hint_unlock))
        .route("/challenges/{id}/start", post(instance::start))
        .route("/challenges/{id}/stop", post(instance::stop))
        .route("/instances", get(instance::list))
        .route("/files", get(challenge::file))
        .route("/scoreboard", get(scoreboard::page))
        .route("/notifications", get(tickets::notifications))
        .route("/events", get(tickets::events))
        .route("/tickets", get(tickets::list).post(tickets::create))
        .route("/tickets/{id}", get(tickets::show))
        .route("/tickets/{id}/delete", post(tickets::delete))
        .layer(Extension(Portal::new(state)))
}

#[cfg(test)]
mod tests;
