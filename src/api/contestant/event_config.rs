//! Event configuration for players (contract §2.2) and the health probes of the api port.
//!
//! Values come from the process's cached `EventSettings` (fctf decision 20: cached in process,
//! invalidated across processes on change). `get_public_config` also reports the fctf
//! additions a portal needs (`user_mode`, `team_self_service`, the Turnstile site key).

use axum::extract::State;
use serde_json::json;

use super::error::{ApiResult, ok};
use super::guards::now;
use super::session::Player;
use crate::api::ApiState;
use crate::event::UserMode;

/// `GET /api/Config/get_date_config`.
pub async fn date_config(State(state): State<ApiState>, _player: Player) -> ApiResult {
    let config = state.event.current();
    let now = now();
    if config.has_ended(now) {
        return ok(json!({"isSuccess": true, "message": "CTF has ended"}));
    }
    if config.is_running(now) {
        return ok(
            json!({"isSuccess": true, "message": "CTFd has been started", "start_date": config.start, "end_date": config.end}),
        );
    }
    ok(json!({"isSuccess": true, "message": "CTFd is coming...", "start_date": config.start}))
}

/// `GET /api/Config/get_public_config`.
pub async fn public_config(State(state): State<ApiState>) -> ApiResult {
    let config = state.event.current();
    let name = config.raw.get("ctf_name").map(|name| name.trim()).filter(|name| !name.is_empty()).unwrap_or("FCTF");
    ok(json!({
        "isSuccess": true,
        "ctf_logo": config.ctf_logo,
        "ctf_small_icon": config.ctf_small_icon,
        "ctf_name": name,
        "bracket_view_other": config.bracket_view_other,
        "contestant_registration_enabled": config.contestant_registration_enabled,
        "user_mode": if config.user_mode == UserMode::Users { "users" } else { "teams" },
        "team_self_service": config.team_self_service,
        "team_size": config.team_size,
        "captcha_site_key": config.turnstile_site_key,
    }))
}

/// `GET /api/Config/contest_access`.
pub async fn contest_access(State(state): State<ApiState>, _player: Player) -> ApiResult {
    let config = state.event.current();
    let now = now();
    let (can_access, reason) = if config.is_running(now) {
        (true, "active")
    } else if config.has_ended(now) && config.view_after_ctf {
        (true, "ended_view_allowed")
    } else if config.has_ended(now) {
        (false, "ended")
    } else {
        (false, "not_started")
    };
    ok(json!({"isSuccess": true, "canAccess": can_access, "reason": reason}))
}

/// `GET /healthz` and `GET /healthcheck` on the api port.
pub async fn healthy() -> &'static str {
    "Healthy"
}
