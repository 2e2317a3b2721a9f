//! The FCTF-compatible contestant API (`/api/...`), contract `shared/spec/contestant-api.md`.
//!
//! Paths, bodies, JSON shapes, status codes and status strings are those of the FCTF contestant
//! service, with the deliberate fixes listed at the top of the contract. Paths match
//! case-insensitively ([`ROUTE_PATHS`] feeds `api::paths::PathNormalizer`) and JSON property
//! names too (`api::json::CiJson`). The OpenAPI document is served at `/api/openapi.json`.
//!
//! # Building blocks for other modules (the pipeline's instance endpoints use these)
//!
//! - [`session::Player`]: extractor for `State<ApiState>` handlers. Parses the bearer JWT
//!   (HS256, `secrets.jwt`, claims `userId`/`teamId`/`nameid`/`tokenUuid`/`exp`) and runs the
//!   full per-request account check (session still active, team unchanged, verified, not
//!   banned/hidden, team not banned) plus the per-user rate limit. It gives `user_id`,
//!   `team_id: Option<TeamId>`, `token_id` and the account snapshot (`team()` with the captain
//!   and bracket, `is_captain()`, `account_for(mode)` = the scoring account).
//!   [`session::MaybePlayer`] does the same when a token is optional.
//! - [`guards::ctf_only`] / [`guards::ctf_or_after`]`(&config, &player, now)`: the time-window
//!   filters, answering `403 {"error": ...}`.
//! - [`error::ApiError`] / [`error::ApiResult`]: a finished response; constructors for each of
//!   the contract's shapes (`error`, `message`, `failure`, `failure_error`, `plain`, `empty`,
//!   `not_found`); store and cache errors convert with `?` into the generic 500.
//! - [`client_ip::ClientIp`]: extractor of the client address under `api.trusted_proxies`.
//! - [`signals`]: cross-process invalidation (`account_changed`, `scores_changed`,
//!   `notification_published`), which the admin API should call after its changes.
//! - [`router`]: composes every sub-router; [`instances::routes`] is where the pipeline adds
//!   start / stop-by-user / check-status / instances. Every route gets the shared
//!   [`context::Contestant`] extension and the per-address rate limit.
//!
//! Atomicity (issue 4): a solve is one store transaction under unique indexes; cooldowns,
//! attempt budgets, hint-unlock locks and rate limits are single atomic cache operations; the
//! registration cap is counted under a cache lock; ticket creation compares and inserts under
//! the author's row lock; ticket deletion is one conditional `DELETE`. Every one of them holds
//! across api processes sharing PostgreSQL and Redis.

pub mod action_logs;
pub mod attempt;
pub mod auth;
pub mod captcha;
pub mod catalog;
pub mod challenges;
pub mod client_ip;
pub mod context;
pub mod error;
pub mod event_config;
pub mod files;
pub mod flag_check;
pub mod guards;
pub mod hints;
pub mod instances;
pub mod notifications;
pub mod openapi;
pub mod ratelimit;
pub mod registration;
pub mod scoreboard;
pub mod session;
pub mod signals;
pub mod standings;
pub mod teams;
pub mod tickets;
pub mod users;
pub mod visibility;

use std::sync::Arc;

use axum::routing::{MethodRouter, delete, get, post};
use axum::{Extension, Router};

use crate::api::ApiState;

pub use context::Contestant;
pub use ratelimit::RateLimitConfig;

/// Route templates of the contestant API, matched case-insensitively before routing. Literal
/// templates come before parameterised ones with the same prefix (the normaliser takes the
/// first match). The instance endpoints of the pipeline are listed too.
pub const ROUTE_PATHS: &[&str] = &[
    "/api/Auth/login-contestant",
    "/api/Auth/registration-metadata",
    "/api/Auth/register-contestant",
    "/api/Auth/logout",
    "/api/Auth/change-password",
    "/api/Config/get_date_config",
    "/api/Config/get_public_config",
    "/api/Config/contest_access",
    "/api/Challenge/by-topic",
    "/api/Challenge/attempt",
    "/api/Challenge/start",
    "/api/Challenge/stop-by-user",
    "/api/Challenge/check-status",
    "/api/Challenge/instances",
    "/api/Challenge/list_challenge/{category_name}",
    "/api/Challenge/{id}",
    "/api/Files",
    "/api/Hint/unlock",
    "/api/Hint/{id}/all",
    "/api/Hint/{id}",
    "/api/Scoreboard/brackets",
    "/api/Scoreboard/freeze-status",
    "/api/Scoreboard/top/{count}",
    "/api/Team/contestant",
    "/api/Team/solves",
    "/api/Team/create",
    "/api/Team/join",
    "/api/Team/leave",
    "/api/Ticket/sendticket",
    "/api/Ticket/tickets-user",
    "/api/Ticket/tickets/{id}",
    "/api/Users/profile",
    "/api/ActionLogs/save-logs",
    "/api/ActionLogs/get-logs-team",
    "/api/ActionLogs/get-logs",
    "/api/Notifications",
    "/api/Notifications/stream",
    "/api/openapi.json",
    "/healthz",
    "/healthcheck",
];

/// Every contestant route as `(method, path, handler)`: the single list the router, the
/// case-insensitive table and the OpenAPI test are checked against.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<ApiState>)> {
    let mut routes: Vec<(&'static str, &'static str, MethodRouter<ApiState>)> = vec![
        ("POST", "/api/Auth/login-contestant", post(auth::login)),
        ("GET", "/api/Auth/registration-metadata", get(registration::metadata)),
        ("POST", "/api/Auth/register-contestant", post(registration::register)),
        ("POST", "/api/Auth/logout", post(auth::logout)),
        ("POST", "/api/Auth/change-password", post(auth::change_password)),
        ("GET", "/api/Config/get_date_config", get(event_config::date_config)),
        ("GET", "/api/Config/get_public_config", get(event_config::public_config)),
        ("GET", "/api/Config/contest_access", get(event_config::contest_access)),
        ("GET", "/api/Challenge/by-topic", get(challenges::by_topic)),
        ("GET", "/api/Challenge/list_challenge/{category_name}", get(challenges::list)),
        ("POST", "/api/Challenge/attempt", post(attempt::attempt)),
        ("GET", "/api/Challenge/{id}", get(challenges::detail)),
        ("GET", "/api/Files", get(files::download)),
        ("GET", "/api/Hint/{id}", get(hints::view)),
        ("GET", "/api/Hint/{id}/all", get(hints::list)),
        ("POST", "/api/Hint/unlock", post(hints::unlock)),
        ("GET", "/api/Scoreboard/top/{count}", get(scoreboard::top)),
        ("GET", "/api/Scoreboard/brackets", get(scoreboard::brackets)),
        ("GET", "/api/Scoreboard/freeze-status", get(scoreboard::freeze_status)),
        ("GET", "/api/Team/contestant", get(teams::contestant)),
        ("GET", "/api/Team/solves", get(teams::solves)),
        ("POST", "/api/Team/create", post(teams::create)),
        ("POST", "/api/Team/join", post(teams::join)),
        ("POST", "/api/Team/leave", post(teams::leave)),
        ("POST", "/api/Ticket/sendticket", post(tickets::create)),
        ("GET", "/api/Ticket/tickets-user", get(tickets::mine)),
        ("GET", "/api/Ticket/tickets/{id}", get(tickets::show)),
        ("DELETE", "/api/Ticket/tickets/{id}", delete(tickets::delete)),
        ("GET", "/api/Users/profile", get(users::profile)),
        ("POST", "/api/ActionLogs/save-logs", post(action_logs::save)),
        ("GET", "/api/ActionLogs/get-logs-team", get(action_logs::team)),
        ("GET", "/api/ActionLogs/get-logs", get(action_logs::mine)),
        ("GET", "/api/Notifications", get(notifications::list)),
        ("GET", "/api/Notifications/stream", get(notifications::stream)),
        ("GET", "/api/openapi.json", get(openapi::document)),
        ("GET", "/healthz", get(event_config::healthy)),
        ("GET", "/healthcheck", get(event_config::healthy)),
    ];
    routes.extend(instances::routes());
    routes
}

/// The contestant router with a fresh context.
pub fn router(state: &ApiState) -> Router<ApiState> {
    router_with(state, Contestant::new(state))
}

/// The contestant router with the given context (tests plug in their own captcha verifier).
pub fn router_with(state: &ApiState, context: Arc<Contestant>) -> Router<ApiState> {
    let mut router = Router::new();
    for (_, path, handler) in routes() {
        router = router.route(path, handler);
    }
    router.layer(axum::middleware::from_fn_with_state(state.clone(), ratelimit::per_ip)).layer(Extension(context))
}

#[cfg(test)]
mod tests;
