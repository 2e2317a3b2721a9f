//! The caller's team (contract §2.7) and team self-service (fctf decision 18).
//!
//! Statistics are live (no freeze) and come from the board cache's store snapshot. Member and
//! team scores are attributed by the solving user, as in the original; the place uses the
//! scoreboard's ranking, so hidden and banned teams are excluded and ties broken the same way
//! (fctf decision 10).
//!
//! Self-service (`team_self_service` on, teams mode): `create` makes a team with the caller as
//! captain and an invite code; `join` takes the invite code, or the team name and its password,
//! within `team_size` (0 = unlimited; checked atomically with the insert); `leave` is refused
//! once the member scored for the team. A team change invalidates the session (the token
//! carries the team), so each of these answers with a fresh `generatedToken`.

use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use rand::RngCore;
use serde::Deserialize;
use serde_json::{Value, json};

use super::auth::{hash_blocking, verify_blocking};
use super::client_ip::ClientIp;
use super::context::Contestant;
use super::error::{ApiError, ApiResult, iso_time, ok};
use super::session::{Player, issue_session};
use super::standings::board;
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::auth::passlib::PasswordCheck;
use crate::domain::{ChallengeId, UserId};
use crate::event::UserMode;
use crate::store::{NewTeam, StoreError, TeamChange};

fn team_not_found() -> ApiError {
    ApiError::failure(StatusCode::NOT_FOUND, "Team not found")
}

/// `GET /api/Team/contestant`.
pub async fn contestant(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
) -> ApiResult {
    let Some(team) = player.team().cloned() else { return Err(team_not_found()) };
    let config = state.event.current();
    let board = board(&state, &context).await?;
    let data = &board.data;
    let values: std::collections::HashMap<ChallengeId, i64> =
        data.challenges.iter().map(|challenge| (challenge.id, challenge.value)).collect();
    let members: Vec<_> = data.users.iter().filter(|user| user.team_id == Some(team.id)).collect();
    let member_score = |user_id: UserId| -> i64 {
        let solved: i64 = data
            .solves
            .iter()
            .filter(|solve| solve.user_id == user_id)
            .map(|solve| values.get(&solve.challenge_id).copied().unwrap_or(0))
            .sum();
        let awarded: i64 =
            data.awards.iter().filter(|award| award.user_id == Some(user_id)).map(|award| award.value).sum();
        solved + awarded
    };
    let member_list: Vec<Value> = members
        .iter()
        .map(|user| {
            json!({
                "name": user.name,
                "email": user.email,
                "score": member_score(user.id),
                // fctf addition: the portal marks the captain.
                "captain": team.captain_id == Some(user.id),
            })
        })
        .collect();
    let score: i64 = members.iter().map(|user| member_score(user.id)).sum();
    let place = match config.user_mode {
        UserMode::Teams => board
            .live
            .in_bracket(team.bracket_id)
            .position(|entry| entry.account_id == team.id.get())
            .map(|index| index + 1),
        UserMode::Users => None,
    };
    let challenge_total: i64 = data
        .challenges
        .iter()
        .filter(|challenge| challenge.state == "visible" && !config.is_category_hidden(&challenge.category))
        .map(|challenge| challenge.value)
        .sum();
    let total_teams = data
        .teams
        .iter()
        .filter(|other| {
            !other.hidden && !other.banned && (team.bracket_id.is_none() || other.bracket_id == team.bracket_id)
        })
        .count();
    let invite_code =
        if team.captain_id == Some(player.user_id) { state.store.get_team(team.id).await?.invite_code } else { None };
    ok(json!({
        "success": true,
        "data": {
            "name": team.name,
            "place": place,
            "members": member_list,
            "score": score,
            "challengeTotalScore": challenge_total,
            "totalTeams": total_teams,
            // fctf addition: the join code, for the captain only (the portal shows it to them).
            "inviteCode": invite_code,
        }
    }))
}

/// `GET /api/Team/solves`.
pub async fn solves(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
) -> ApiResult {
    let Some(team) = player.team().cloned() else {
        return ok(json!({"success": true, "data": [], "meta": {"count": 0}}));
    };
    let config = state.event.current();
    let board = board(&state, &context).await?;
    let data = &board.data;
    let members: std::collections::HashMap<UserId, &str> = data
        .users
        .iter()
        .filter(|user| user.team_id == Some(team.id))
        .map(|user| (user.id, user.name.as_str()))
        .collect();
    let challenges: std::collections::HashMap<ChallengeId, &crate::store::ScoredChallenge> =
        data.challenges.iter().map(|challenge| (challenge.id, challenge)).collect();
    let mut rows: Vec<Value> = Vec::new();
    for solve in data.solves.iter().rev() {
        let Some(user_name) = members.get(&solve.user_id) else { continue };
        let Some(challenge) = challenges.get(&solve.challenge_id) else { continue };
        if config.is_category_hidden(&challenge.category) {
            continue;
        }
        rows.push(json!({
            "id": solve.id,
            "challengeId": challenge.id.get(),
            "challenge": {"id": challenge.id.get(), "name": challenge.name, "category": challenge.category, "value": challenge.value},
            "user": {"id": solve.user_id.get(), "name": user_name},
            "team": {"id": team.id.get(), "name": team.name},
            "date": iso_time(solve.date),
            "type": "correct",
            "provided": Value::Null,
            "ip": Value::Null,
        }));
    }
    let count = rows.len();
    ok(json!({"success": true, "data": rows, "meta": {"count": count}}))
}

fn refuse(text: &str) -> ApiError {
    ApiError::failure(StatusCode::BAD_REQUEST, text)
}

fn self_service_enabled(state: &ApiState) -> Result<u32, ApiError> {
    let config = state.event.current();
    if !config.team_self_service || config.user_mode != UserMode::Teams {
        return Err(ApiError::failure(StatusCode::FORBIDDEN, "Team self-service is disabled"));
    }
    Ok(config.team_size)
}

fn user_agent(headers: &HeaderMap) -> Option<String> {
    headers.get(header::USER_AGENT).and_then(|value| value.to_str().ok()).map(|text| text.chars().take(255).collect())
}

fn new_invite_code() -> String {
    let mut bytes = [0u8; 8];
    rand::rng().fill_bytes(&mut bytes);
    hex::encode(bytes)
}

/// `POST /api/Team/create` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct CreateBody {
    name: Option<String>,
    password: Option<String>,
}

/// `POST /api/Team/create`.
pub async fn create(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
    ip: ClientIp,
    headers: HeaderMap,
    CiJson(body): CiJson<CreateBody>,
) -> ApiResult {
    self_service_enabled(&state)?;
    if player.team_id.is_some() {
        return Err(refuse("You are already in a team"));
    }
    let name = body.name.as_deref().unwrap_or_default().trim().to_owned();
    if name.is_empty() || name.chars().count() > 128 {
        return Err(refuse("The team name must be 1 to 128 characters"));
    }
    let password_hash = match body.password.as_deref().map(str::trim).filter(|text| !text.is_empty()) {
        Some(password) if password.chars().count() > 128 => return Err(refuse("The team password is too long")),
        Some(password) => Some(hash_blocking(password.to_owned()).await?),
        None => None,
    };
    let invite_code = new_invite_code();
    let new_team = NewTeam { name, password_hash, invite_code: Some(invite_code.clone()), ..NewTeam::default() };
    let team = match state.store.create_team_for(player.user_id, &new_team).await {
        Ok(TeamChange::Done(team)) => team,
        Ok(TeamChange::AlreadyInTeam) => return Err(refuse("You are already in a team")),
        Ok(TeamChange::TeamFull) => return Err(refuse("The team is full")),
        Err(StoreError::Conflict { constraint }) if constraint == "teams_name_uq" => {
            return Err(refuse("Team name has already been taken"));
        }
        Err(error) => return Err(error.into()),
    };
    let token = issue_session(
        &state,
        &context,
        player.user_id,
        Some(team.id),
        Some(&ip.text()),
        user_agent(&headers).as_deref(),
    )
    .await?;
    tracing::info!(user_id = player.user_id.get(), team_id = team.id.get(), "CREATE_TEAM");
    ok(json!({
        "success": true,
        "generatedToken": token,
        "data": {"id": team.id.get(), "name": team.name, "inviteCode": invite_code, "captainId": player.user_id.get()},
    }))
}

/// `POST /api/Team/join` body: an invite code, or a team name and its password.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct JoinBody {
    invitecode: Option<String>,
    name: Option<String>,
    password: Option<String>,
}

/// `POST /api/Team/join`.
pub async fn join(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
    ip: ClientIp,
    headers: HeaderMap,
    CiJson(body): CiJson<JoinBody>,
) -> ApiResult {
    let team_size = self_service_enabled(&state)?;
    if player.team_id.is_some() {
        return Err(refuse("You are already in a team"));
    }
    let invalid = || refuse("Invalid team name, password or invite code");
    let team = match body.invitecode.as_deref().map(str::trim).filter(|code| !code.is_empty()) {
        Some(code) => state.store.get_team_by_invite_code(code).await?.ok_or_else(invalid)?,
        None => {
            let name = body.name.as_deref().unwrap_or_default().trim();
            let password = body.password.as_deref().unwrap_or_default().trim().to_owned();
            if name.is_empty() || password.is_empty() {
                return Err(invalid());
            }
            let team = state.store.get_team_by_name(name).await?;
            let hash = team.as_ref().and_then(|team| team.password_hash.clone());
            let Some(hash) = hash else { return Err(invalid()) };
            match verify_blocking(password, hash).await {
                PasswordCheck::Valid { .. } => team.ok_or_else(invalid)?,
                _ => return Err(invalid()),
            }
        }
    };
    if team.banned {
        return Err(refuse("This team has been banned"));
    }
    let limit = (team_size > 0).then_some(i64::from(team_size));
    let team = match state.store.join_team_for(player.user_id, team.id, limit).await {
        Ok(TeamChange::Done(team)) => team,
        Ok(TeamChange::AlreadyInTeam) => return Err(refuse("You are already in a team")),
        Ok(TeamChange::TeamFull) => return Err(refuse("The team is full")),
        Err(StoreError::NotFound) => return Err(invalid()),
        Err(error) => return Err(error.into()),
    };
    let token = issue_session(
        &state,
        &context,
        player.user_id,
        Some(team.id),
        Some(&ip.text()),
        user_agent(&headers).as_deref(),
    )
    .await?;
    tracing::info!(user_id = player.user_id.get(), team_id = team.id.get(), "JOIN_TEAM");
    ok(json!({"success": true, "generatedToken": token, "data": {"id": team.id.get(), "name": team.name}}))
}

/// `POST /api/Team/leave`.
pub async fn leave(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
    ip: ClientIp,
    headers: HeaderMap,
) -> ApiResult {
    self_service_enabled(&state)?;
    let Some(team_id) = player.team_id else { return Err(refuse("You are not in a team")) };
    if state.store.member_record_count(player.user_id, team_id).await? > 0 {
        return Err(refuse("You cannot leave a team after scoring for it"));
    }
    if !state.store.remove_team_member(team_id, player.user_id, false).await? {
        return Err(refuse("You are not in a team"));
    }
    let token =
        issue_session(&state, &context, player.user_id, None, Some(&ip.text()), user_agent(&headers).as_deref())
            .await?;
    tracing::info!(user_id = player.user_id.get(), team_id = team_id.get(), "LEAVE_TEAM");
    ok(json!({"success": true, "generatedToken": token, "message": "You left the team"}))
}
