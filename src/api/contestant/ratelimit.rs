//! Request rate limits of the contestant API, on the cache seam (shared by every api process).
//!
//! Two token buckets: one per client address (every contestant route, before anything else)
//! and one per authenticated user (taken by the session check). Both are configurable in
//! `[api.rate_limits]`; a burst of 0 disables a limiter. The per-address defaults are
//! generous on purpose: a whole room of players behind one NAT address must be able to play.
//! Refusals answer 429 in text with `Retry-After`, like the original's limiter. A cache failure
//! lets the request through (logged): rate limiting must not take the API down.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::client_ip::ClientIp;
use super::context::Contestant;
use super::error::ApiError;
use crate::api::ApiState;
use crate::cache::RateDecision;
use crate::domain::UserId;

/// The `[api.rate_limits]` section.
#[derive(Debug, Clone, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct RateLimitConfig {
    /// Requests a client address may send at once (0 = no per-address limit).
    pub ip_burst: u32,
    /// Sustained requests per second per client address.
    pub ip_per_second: f64,
    /// Requests an authenticated user may send at once (0 = no per-user limit).
    pub user_burst: u32,
    /// Sustained requests per second per user.
    pub user_per_second: f64,
}

impl Default for RateLimitConfig {
    fn default() -> Self {
        Self { ip_burst: 600, ip_per_second: 100.0, user_burst: 120, user_per_second: 20.0 }
    }
}

fn refusal(decision: RateDecision, burst: u32, scope: &str) -> Response {
    let retry_after = decision.retry_after.as_secs_f64().ceil().max(1.0) as u64;
    let mut response = (
        StatusCode::TOO_MANY_REQUESTS,
        [(header::CONTENT_TYPE, "text/plain; charset=utf-8")],
        format!("API calls quota exceeded! maximum admitted {burst} per {scope}."),
    )
        .into_response();
    if let Ok(value) = HeaderValue::from_str(&retry_after.to_string()) {
        response.headers_mut().insert(header::RETRY_AFTER, value);
    }
    response
}

async fn take(state: &ApiState, name: &str, burst: u32, per_second: f64) -> Option<RateDecision> {
    match state.cache.rate_limit(name, burst, per_second).await {
        Ok(decision) => Some(decision),
        Err(error) => {
            tracing::warn!(%error, "rate limiter unavailable; letting the request through");
            None
        }
    }
}

/// Middleware: the per-address bucket.
pub async fn per_ip(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let Some(context) = request.extensions().get::<Arc<Contestant>>().cloned() else {
        return next.run(request).await;
    };
    let limits = &context.rate_limits;
    if limits.ip_burst > 0 {
        let (parts, body) = request.into_parts();
        let client = ClientIp::from_parts(&parts);
        let request = Request::from_parts(parts, body);
        let key = format!("api:ip:{}", client.text());
        if let Some(decision) = take(&state, &key, limits.ip_burst, limits.ip_per_second).await
            && !decision.allowed
        {
            return refusal(decision, limits.ip_burst, "address");
        }
        return next.run(request).await;
    }
    next.run(request).await
}

/// The per-user bucket, taken by the session check.
pub async fn check_user(state: &ApiState, context: &Contestant, user_id: UserId) -> Result<(), ApiError> {
    let limits = &context.rate_limits;
    if limits.user_burst == 0 {
        return Ok(());
    }
    let key = format!("api:user:{}", user_id.get());
    match take(state, &key, limits.user_burst, limits.user_per_second).await {
        Some(decision) if !decision.allowed => {
            Err(ApiError::from_response(refusal(decision, limits.user_burst, "user")))
        }
        _ => Ok(()),
    }
}
