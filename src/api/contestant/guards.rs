//! The contract's time-window filters (§3.1.3), as plain functions called first thing in a
//! handler, after authentication:
//!
//! - [`ctf_only`]: during the CTF only (flag submission, instance start/stop/status, hint
//!   unlock, tickets);
//! - [`ctf_or_after`]: during the CTF, or after its end when `view_after_ctf` is set
//!   (challenge, hint, file and instance listings).
//!
//! Both answer `403 {"error": "..."}` when blocked. `paused` only blocks flag submission and is
//! checked by that handler.

use axum::http::StatusCode;

use super::error::ApiError;
use super::session::Player;
use crate::event::{EventConfig, UserMode};

/// The current time in Unix seconds.
pub fn now() -> i64 {
    chrono::Utc::now().timestamp()
}

fn window(config: &EventConfig, player: &Player, now: i64, after_allowed: bool) -> Result<(), ApiError> {
    if config.is_running(now) {
        return Ok(());
    }
    if config.has_ended(now) {
        if after_allowed && config.view_after_ctf {
            return Ok(());
        }
        return Err(ApiError::error(StatusCode::FORBIDDEN, format!("{} has ended", config.ctf_name)));
    }
    if !config.has_started(now) {
        return Err(ApiError::error(StatusCode::FORBIDDEN, format!("{} has not started yet", config.ctf_name)));
    }
    if config.user_mode == UserMode::Teams && player.team_id.is_none() {
        return Err(ApiError::error(StatusCode::FORBIDDEN, "You must join a team to participate in this CTF"));
    }
    Ok(())
}

/// Allows the request only while the CTF runs.
pub fn ctf_only(config: &EventConfig, player: &Player, now: i64) -> Result<(), ApiError> {
    window(config, player, now, false)
}

/// Allows the request while the CTF runs, or after it when `view_after_ctf` is set.
pub fn ctf_or_after(config: &EventConfig, player: &Player, now: i64) -> Result<(), ApiError> {
    window(config, player, now, true)
}
