//! The caller's profile (contract §2.9).

use axum::extract::State;
use axum::http::StatusCode;
use serde_json::json;

use super::error::{ApiError, ApiResult, ok};
use super::session::Player;
use crate::api::ApiState;

/// `GET /api/Users/profile`.
pub async fn profile(State(_state): State<ApiState>, player: Player) -> ApiResult {
    let Some(team) = player.team() else {
        return Err(ApiError::json(
            StatusCode::NOT_FOUND,
            json!({"success": false, "errors": {"team": "Team not found"}}),
        ));
    };
    ok(json!({
        "success": true,
        "data": {
            "username": player.name(),
            "email": player.account.email,
            "team": team.name,
            "teamBracketId": team.bracket_id.map(|id| id.get()),
        }
    }))
}
