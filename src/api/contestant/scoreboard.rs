//! Scoreboard (contract §2.6): standings with graph data, brackets and the freeze status.
//!
//! Visibility follows `score_visibility`: `public` for anyone, `private` for logged-in players
//! (a presented token always gets the full session check, fctf decision 9; without
//! `bracket_view_other` the board is restricted to the caller's bracket), `hidden` for nobody.
//! Standings come from the per-process board cache (`standings`), invalidated across
//! processes on every change.

use std::sync::Arc;

use axum::Extension;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::IntoResponse;
use serde::Deserialize;
use serde_json::{Value, json};

use super::context::Contestant;
use super::error::{ApiError, ApiResult, iso_time, ok};
use super::guards::now;
use super::session::{MaybePlayer, Player};
use super::standings::{Standing, board};
use crate::api::ApiState;
use crate::domain::BracketId;
use crate::event::{ScoreVisibility, UserMode};

/// Query of `GET /api/Scoreboard/top/{count}`.
#[derive(Debug, Deserialize)]
pub struct TopQuery {
    bracket_id: Option<String>,
}

fn player_bracket(player: &Player, mode: UserMode) -> Option<BracketId> {
    match mode {
        UserMode::Teams => player.team().and_then(|team| team.bracket_id),
        UserMode::Users => player.account.bracket_id,
    }
}

fn entry_json(entry: &Standing, mode: UserMode) -> Value {
    let solves: Vec<Value> = entry
        .events
        .iter()
        .map(|event| {
            json!({
                "challengeId": event.challenge_id.map(|id| id.get()),
                "accountId": event.account_id,
                "teamId": event.team_id.map(|id| id.get()),
                "userId": event.user_id.map(|id| id.get()),
                "value": event.value,
                "date": iso_time(event.date),
            })
        })
        .collect();
    let url = match mode {
        UserMode::Teams => format!("/teams/{}", entry.account_id),
        UserMode::Users => format!("/users/{}", entry.account_id),
    };
    json!({
        "id": entry.account_id,
        "accountUrl": url,
        "name": entry.name,
        "score": entry.score,
        "bracketId": entry.bracket_id.map(|id| id.get()),
        "bracketName": entry.bracket_name,
        "solves": solves,
    })
}

/// `GET /api/Scoreboard/top/{count}?bracket_id=`.
pub async fn top(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    MaybePlayer(player): MaybePlayer,
    Path(count): Path<String>,
    Query(query): Query<TopQuery>,
) -> ApiResult {
    let Ok(count) = count.trim().parse::<i64>() else {
        return Err(ApiError::failure(StatusCode::BAD_REQUEST, "The count must be an integer"));
    };
    let config = state.event.current();
    let mut bracket = query.bracket_id.as_deref().and_then(|text| text.trim().parse::<i64>().ok()).map(BracketId);
    match config.score_visibility {
        ScoreVisibility::Hidden => {
            return Err(ApiError::failure(StatusCode::FORBIDDEN, "Scores are currently hidden."));
        }
        ScoreVisibility::Private => {
            let Some(player) = player.as_ref() else {
                return Err(ApiError::failure(
                    StatusCode::UNAUTHORIZED,
                    "Scores are private. Please log in to view the scoreboard.",
                ));
            };
            if !config.bracket_view_other {
                bracket = player_bracket(player, config.user_mode);
            }
        }
        ScoreVisibility::Public => {}
    }
    if count <= 0 {
        return ok(json!({"success": true, "data": []}));
    }
    let board = board(&state, &context).await?;
    let take = usize::try_from(count).unwrap_or(usize::MAX).min(board.public.entries.len());
    let body = board.rendered(bracket, take, || {
        let data: Vec<Value> =
            board.public.in_bracket(bracket).take(take).map(|entry| entry_json(entry, config.user_mode)).collect();
        serde_json::to_vec(&json!({"success": true, "data": data})).unwrap_or_default()
    });
    Ok(([(header::CONTENT_TYPE, "application/json")], Bytes::from_owner(body)).into_response())
}

/// `GET /api/Scoreboard/brackets`.
pub async fn brackets(State(state): State<ApiState>) -> ApiResult {
    let config = state.event.current();
    if config.score_visibility == ScoreVisibility::Private && !config.bracket_view_other {
        return ok(json!({"success": true, "data": []}));
    }
    let brackets: Vec<Value> = state
        .store
        .list_brackets()
        .await?
        .iter()
        .map(|bracket| json!({"id": bracket.id.get(), "name": bracket.name, "description": bracket.description, "type": bracket.kind}))
        .collect();
    ok(json!({"success": true, "data": brackets}))
}

/// `GET /api/Scoreboard/freeze-status`.
pub async fn freeze_status(State(state): State<ApiState>) -> ApiResult {
    let config = state.event.current();
    ok(json!({
        "success": true,
        "is_frozen": config.is_frozen(now()),
        "freeze_time": (config.freeze > 0).then_some(config.freeze),
    }))
}
