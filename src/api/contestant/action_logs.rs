//! Contestant action logs (contract §2.10): the portal's own entries, the team timeline and
//! (fctf decision 18) the caller's own log.
//!
//! Action types: 1 access challenge, 2 start challenge, 3 correct flag, 4 incorrect flag,
//! 5 unlock hint, 6 start sandbox, 7 stop. Details up to 500 characters are accepted and
//! stored (fctf decision 15). Entries whose topic is a hidden category are not listed.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, iso_time, iso_time_z, ok};
use super::guards::now;
use super::session::Player;
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::domain::{ChallengeId, UserId};
use crate::store::{ActionLog, NewActionLog, StoreError};

/// Longest action detail accepted, in characters.
pub const MAX_DETAIL_CHARS: usize = 500;
/// Entries returned by the listing endpoints.
const LIST_LIMIT: i64 = 1000;

/// `POST /api/ActionLogs/save-logs` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct SaveBody {
    actiontype: Option<i64>,
    actiondetail: Option<String>,
    challenge_id: Option<i64>,
}

fn validation(field: &str, text: &str) -> ApiError {
    ApiError::json(StatusCode::BAD_REQUEST, json!({"success": false, "message": text, "errors": {field: [text]}}))
}

/// `POST /api/ActionLogs/save-logs`.
pub async fn save(State(state): State<ApiState>, player: Player, CiJson(body): CiJson<SaveBody>) -> ApiResult {
    let Some(action_type) = body.actiontype else {
        return Err(validation("actionType", "The ActionType field is required."));
    };
    if action_type < 0 {
        return Err(validation("actionType", "ActionType must be greater or equal to 0"));
    }
    let detail = body.actiondetail.unwrap_or_default();
    let length = detail.chars().count();
    if length == 0 || length > MAX_DETAIL_CHARS {
        return Err(validation("actionDetail", "ActionDetail must be between 1 and 500 characters"));
    }
    let challenge = match body.challenge_id {
        Some(id) => match state.store.get_challenge(ChallengeId(id)).await {
            Ok(challenge) => Some(challenge),
            Err(StoreError::NotFound) => None,
            Err(error) => return Err(error.into()),
        },
        None => None,
    };
    let topic =
        challenge.as_ref().map(|challenge| challenge.spec.category.clone()).unwrap_or_else(|| "Null".to_owned());
    let entry = NewActionLog {
        user_id: Some(player.user_id),
        team_id: player.team_id,
        challenge_id: challenge.as_ref().map(|challenge| challenge.id),
        action_type,
        action_detail: detail.clone(),
        topic_name: Some(topic.clone()),
    };
    if let Err(error) = state.store.append_action_log(&entry).await {
        tracing::warn!(%error, "could not save an action log");
        return Err(ApiError::failure(StatusCode::INTERNAL_SERVER_ERROR, "Failed to save action log."));
    }
    ok(json!({
        "success": true,
        "data": {
            "actionId": 0,
            "userId": player.user_id.get(),
            "actionDate": iso_time_z(now()),
            "actionType": action_type,
            "actionDetail": detail,
            "topicName": topic,
            "userName": player.name(),
        }
    }))
}

fn render(state: &ApiState, logs: &[ActionLog], names: &HashMap<UserId, String>) -> Vec<Value> {
    let config = state.event.current();
    logs.iter()
        .filter(|log| !log.log.topic_name.as_deref().is_some_and(|topic| config.is_category_hidden(topic)))
        .map(|log| {
            json!({
                "actionId": log.id,
                "userId": log.log.user_id.map(|id| id.get()),
                "actionDate": iso_time(log.date),
                "actionType": log.log.action_type,
                "actionDetail": log.log.action_detail,
                "topicName": log.log.topic_name,
                "userName": log.log.user_id.and_then(|id| names.get(&id).cloned()),
            })
        })
        .collect()
}

/// `GET /api/ActionLogs/get-logs-team`.
pub async fn team(State(state): State<ApiState>, player: Player) -> ApiResult {
    let Some(team_id) = player.team_id else {
        return ok(json!({"success": false, "message": "No action logs found."}));
    };
    let logs = state.store.list_action_logs(Some(team_id), None, LIST_LIMIT).await?;
    let names: HashMap<UserId, String> =
        state.store.team_members(team_id).await?.into_iter().map(|user| (user.id, user.name)).collect();
    let data = render(&state, &logs, &names);
    if data.is_empty() {
        return ok(json!({"success": false, "message": "No action logs found."}));
    }
    ok(json!({"success": true, "data": data}))
}

/// `GET /api/ActionLogs/get-logs`: the caller's own entries.
pub async fn mine(State(state): State<ApiState>, player: Player) -> ApiResult {
    let logs = state.store.list_action_logs(None, Some(player.user_id), LIST_LIMIT).await?;
    let names: HashMap<UserId, String> = [(player.user_id, player.name().to_owned())].into();
    ok(json!({"success": true, "data": render(&state, &logs, &names)}))
}
