//! Instance endpoints: start (CH6), stop-by-user (CH7), check-status (CH8) and instances (CH4),
//! plus the read-only instance view the challenge endpoints show.
//!
//! Start runs every eligibility check of contract §3.10.1 in order (deployable, visible and not
//! shared, prerequisites, attempts left, deployments left, not solved, captain rule), then
//! reserves the team's slot atomically (`Cache::reserve_instance_slot`, limit
//! `limit_challenges`; one reservation per challenge, so of concurrent starts exactly one
//! proceeds), then asks center (`ApiState::center`). Any definite failure of center releases
//! the reservation; after an unknown outcome (center unreachable mid-call) the store decides:
//! no live instance, no reservation. Errors of center reach the player with their status and
//! message (decision 11), e.g. 429 when the deployment queue is full.
//!
//! A start that finds the slot taken answers from the instance's state, as the original does:
//! queued → 400 "already started", deploying → 200 "deploying", running → 200 with the token
//! and the minutes left, stopping → 400 "being deleted", no instance yet → 400 "in progress".
//! Concurrent stops: center's compare-and-set lets exactly one through; the others answer 400
//! "already stopped". Check-status answers from center (the token while running, the queue
//! position while queued, the reason of a recent failure). Shared-instance challenges read the
//! pseudo-team −2 and cannot be started or stopped by players.
//!
//! [`stop_after_solve`] is what the submission code calls after a correct flag or the last
//! allowed wrong attempt.

use std::collections::HashMap;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, ok, reply};
use super::guards::{ctf_only, ctf_or_after, now};
use super::session::Player;
use super::visibility::{Access, access_of, is_hidden};
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::cache::SlotReservation;
use crate::control::lifecycle::{RESERVATION_HOLD, slot_member, slot_team};
use crate::control::{ControlError, InstanceView, ListRequest, StartRequest, StatusRequest, StopReason, StopRequest};
use crate::domain::{ChallengeId, TeamId};
use crate::store::{Challenge, Instance, InstanceState, StoreError, SubmissionKind};

/// The pipeline's instance routes: `(method, path, handler)`.
pub fn routes() -> Vec<(&'static str, &'static str, MethodRouter<ApiState>)> {
    vec![
        ("POST", "/api/Challenge/start", post(start)),
        ("POST", "/api/Challenge/stop-by-user", post(stop_by_user)),
        ("POST", "/api/Challenge/check-status", post(check_status)),
        ("GET", "/api/Challenge/instances", get(instances)),
    ]
}

/// The FCTF status string of an instance state.
pub fn pod_status(state: InstanceState) -> &'static str {
    match state {
        InstanceState::Queued => "PENDING_DEPLOY",
        InstanceState::Deploying => "Pending",
        InstanceState::Running => "Running",
        InstanceState::Stopping => "Deleting",
        InstanceState::Stopped => "Stopped",
        InstanceState::Failed => "Failed",
    }
}

/// The live instances of a team, by challenge.
pub async fn live_instances(state: &ApiState, team: TeamId) -> Result<HashMap<ChallengeId, Instance>, StoreError> {
    let instances = state.store.list_live_instances(Some(team)).await?;
    Ok(instances.into_iter().map(|instance| (instance.challenge_id, instance)).collect())
}

/// Stops the team's instance of a challenge after a correct flag ([`StopReason::Solved`]) or
/// its last allowed attempt ([`StopReason::AttemptsExhausted`]), in the background so the
/// submission answer is not delayed. No instance is not an error.
pub fn stop_after_solve(state: &ApiState, team: TeamId, challenge: ChallengeId, reason: StopReason) {
    let center = state.center.clone();
    tokio::spawn(async move {
        if let Err(error) = center.stop_after_solve(team, challenge, reason).await {
            tracing::warn!(%error, team = %team, challenge = %challenge, "could not stop an instance after a submission");
        }
    });
}

/// Body of the instance endpoints (the shared DTO's other members are accepted and ignored).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct InstanceBody {
    challengeid: Option<i64>,
}

/// The Deploy DTO (§2.3.9), answered with HTTP status = `status`.
fn deploy(status: u16, success: bool, message: &str, extra: Value) -> Response {
    let mut body = json!({
        "status": status, "success": success, "message": message, "challenge_url": null, "time_limit": 0,
        "pod_status": null, "challenge_type": null, "kypo_username": null, "kypo_password": null, "kypo_access_token": null,
    });
    if let (Some(target), Value::Object(fields)) = (body.as_object_mut(), extra) {
        target.extend(fields);
    }
    reply(StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR), body)
}

fn error(status: StatusCode, text: &str) -> ApiError {
    ApiError::error(status, text)
}

/// Whole minutes left until `expires_at`.
fn minutes_left(expires_at: Option<i64>, now: i64) -> i64 {
    expires_at.map(|at| (at - now).max(0) / 60).unwrap_or(0)
}

async fn load_challenge(state: &ApiState, id: i64) -> Result<Option<Challenge>, ApiError> {
    if id <= 0 {
        return Ok(None);
    }
    match state.store.get_challenge(ChallengeId(id)).await {
        Ok(challenge) => Ok(Some(challenge)),
        Err(StoreError::NotFound) => Ok(None),
        Err(error) => Err(error.into()),
    }
}

/// `POST /api/Challenge/start`.
pub async fn start(State(state): State<ApiState>, player: Player, CiJson(body): CiJson<InstanceBody>) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_only(&config, &player, now)?;
    let Some(team) = player.team_id else { return Err(error(StatusCode::NOT_FOUND, "Team not found")) };
    let Some(challenge) = load_challenge(&state, body.challengeid.unwrap_or(0)).await? else {
        return Err(error(StatusCode::NOT_FOUND, "Challenge not found"));
    };
    let deploy_settings = &challenge.spec.deploy;
    if !deploy_settings.require_deploy {
        return Err(error(StatusCode::BAD_REQUEST, "This challenge does not require deploy"));
    }
    if is_hidden(&challenge, &config, now) || deploy_settings.shared_instance {
        return Err(error(StatusCode::BAD_REQUEST, "This challenge is not available for deployment"));
    }
    let account = player.account_for(config.user_mode);
    if access_of(&state, &challenge, account).await? != Access::Open {
        return Err(error(
            StatusCode::FORBIDDEN,
            "You don't have the permission to start this challenge. Please complete the required challenges first.",
        ));
    }
    if challenge.spec.max_attempts > 0
        && state.store.count_submissions(challenge.id, account, SubmissionKind::Incorrect).await?
            >= challenge.spec.max_attempts
    {
        return Err(error(StatusCode::BAD_REQUEST, "You have 0 tries remaining. You cannot start this challenge."));
    }
    if deploy_settings.max_deploy_count > 0
        && state.store.count_started_instances(team, challenge.id).await? >= deploy_settings.max_deploy_count
    {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "You have reached the maximum number of deployments for this challenge. You cannot start this challenge.",
        ));
    }
    if state.store.has_solved(challenge.id, account).await? {
        return Err(error(
            StatusCode::BAD_REQUEST,
            "Your team has already solved this challenge. You cannot start this challenge.",
        ));
    }
    if config.captain_only_start_challenge && !player.is_captain() {
        return Err(error(
            StatusCode::FORBIDDEN,
            "Contact the organizers to select a team captain. Only the team captain has the permission to start the challenge.",
        ));
    }
    let limit = config.limit_challenges;
    let (slot_name, member) = (slot_team(team), slot_member(challenge.id));
    match state.cache.reserve_instance_slot(&slot_name, &member, limit, RESERVATION_HOLD).await {
        Ok(SlotReservation::Reserved) => {}
        Ok(SlotReservation::LimitReached) => {
            return Err(error(
                StatusCode::BAD_REQUEST,
                &format!("You have reached the maximum limit of {limit} concurrent challenges."),
            ));
        }
        Ok(SlotReservation::AlreadyHeld) => return already_started(&state, team, &challenge, now).await,
        Err(cache_error) => {
            tracing::error!(error = %cache_error, "instance slot reservation failed");
            return Err(error(StatusCode::INTERNAL_SERVER_ERROR, "Unexpected Redis error."));
        }
    }
    let request = StartRequest { challenge_id: challenge.id, team_id: team, user_id: Some(player.user_id) };
    match state.center.start(request).await {
        Ok(outcome) if outcome.created => {
            super::attempt::log_action(&state, &player, &challenge, 2, format!("Started {}", challenge.spec.name))
                .await;
            Ok(deploy(
                200,
                true,
                "Request received. Your challenge has been queued for deployment.",
                json!({
                    "pod_status": outcome.instance.fctf_status(),
                    "queue_position": outcome.instance.queue_position,
                }),
            ))
        }
        Ok(outcome) => Ok(existing(&outcome.instance, now)),
        Err(center_error) => {
            release_unless_live(&state, team, challenge.id, &center_error).await;
            Ok(deploy(center_error.status(), false, &center_error.to_string(), json!({})))
        }
    }
}

/// Frees the reservation of a start center did not perform.
async fn release_unless_live(state: &ApiState, team: TeamId, challenge: ChallengeId, cause: &ControlError) {
    if matches!(cause, ControlError::Unavailable(_) | ControlError::Internal(_)) {
        // Unknown outcome: the store says whether an instance exists.
        match state.store.find_live_instance(team, challenge).await {
            Ok(Some(_)) => return,
            Ok(None) => {}
            Err(error) => {
                tracing::warn!(%error, "cannot check a start's outcome; the reservation expires on its own");
                return;
            }
        }
    }
    if let Err(error) = state.cache.release_instance_slot(&slot_team(team), &slot_member(challenge)).await {
        tracing::warn!(%error, "could not release an instance slot; it expires on its own");
    }
}

/// The answer to a start whose slot is already held.
async fn already_started(state: &ApiState, team: TeamId, challenge: &Challenge, now: i64) -> ApiResult {
    let status = state.center.status(StatusRequest { challenge_id: challenge.id, team_id: team }).await;
    match status {
        Ok(outcome) => match outcome.instance.filter(|view| view.state().is_some_and(|state| !state.is_terminal())) {
            Some(view) => Ok(existing(&view, now)),
            None => Err(error(
                StatusCode::BAD_REQUEST,
                "Your previous challenge deployment is still in progress. Please wait until it is completed before starting a new one.",
            )),
        },
        Err(center_error) => Ok(deploy(center_error.status(), false, &center_error.to_string(), json!({}))),
    }
}

/// The answer to a start of a challenge the team already has a live instance of.
fn existing(view: &InstanceView, now: i64) -> Response {
    match view.state() {
        Some(InstanceState::Deploying) => {
            deploy(200, true, "Challenge is deploying.", json!({"pod_status": "Pending"}))
        }
        Some(InstanceState::Running) => deploy(
            200,
            true,
            "Challenge is running.",
            json!({
                "challenge_url": view.token, "time_limit": minutes_left(view.expires_at, now), "pod_status": "Running",
            }),
        ),
        Some(InstanceState::Stopping) => ApiError::error(
            StatusCode::BAD_REQUEST,
            "Challenge is being deleted. Please wait a moment before starting again.",
        )
        .into_response(),
        _ => ApiError::error(StatusCode::BAD_REQUEST, "You have already started this challenge.").into_response(),
    }
}

/// `POST /api/Challenge/stop-by-user`.
pub async fn stop_by_user(
    State(state): State<ApiState>,
    player: Player,
    CiJson(body): CiJson<InstanceBody>,
) -> ApiResult {
    let config = state.event.current();
    ctf_only(&config, &player, now())?;
    let id = body.challengeid.unwrap_or(0);
    if id <= 0 {
        return Err(error(StatusCode::BAD_REQUEST, "ChallengeId is required"));
    }
    let Some(team) = player.team_id else { return Err(error(StatusCode::BAD_REQUEST, "User no join team")) };
    let Some(challenge) = load_challenge(&state, id).await? else {
        return Err(error(StatusCode::BAD_REQUEST, "Challenge not found"));
    };
    if challenge.spec.deploy.shared_instance {
        return Err(error(StatusCode::BAD_REQUEST, "Shared instances are managed by the organizers."));
    }
    let request = StopRequest {
        challenge_id: challenge.id,
        team_id: team,
        user_id: Some(player.user_id),
        reason: StopReason::User,
    };
    match state.center.stop(request).await {
        Ok(view) => {
            super::attempt::log_action(&state, &player, &challenge, 7, format!("Stopped {}", challenge.spec.name))
                .await;
            Ok(deploy(200, true, "Challenge has been stopped.", json!({"pod_status": view.fctf_status()})))
        }
        Err(ControlError::NotFound(_) | ControlError::Conflict(_)) => {
            Ok(deploy(400, false, "Challenge not started or already stopped", json!({})))
        }
        Err(center_error) => Ok(deploy(center_error.status(), false, &center_error.to_string(), json!({}))),
    }
}

/// `POST /api/Challenge/check-status`.
pub async fn check_status(
    State(state): State<ApiState>,
    player: Player,
    CiJson(body): CiJson<InstanceBody>,
) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_only(&config, &player, now)?;
    let failed = |status: u16, message: &str| Ok(deploy(status, false, message, json!({"pod_status": "Failed"})));
    let id = body.challengeid.unwrap_or(0);
    if id <= 0 {
        return failed(400, "Invalid request parameters");
    }
    let Some(team) = player.team_id else { return failed(400, "User no join team") };
    let Some(challenge) = load_challenge(&state, id).await? else { return failed(400, "Challenge not found") };
    if is_hidden(&challenge, &config, now) {
        return failed(404, "Challenge not found.");
    }
    let team = if challenge.spec.deploy.shared_instance { TeamId::SHARED } else { team };
    let outcome = match state.center.status(StatusRequest { challenge_id: challenge.id, team_id: team }).await {
        Ok(outcome) => outcome,
        Err(center_error) => {
            tracing::warn!(error = %center_error, "status check failed");
            return failed(500, "Error during status check.");
        }
    };
    let Some(view) = outcome.instance else {
        return Ok(deploy(200, false, "No deployment info found.", json!({"pod_status": "NOT_FOUND"})));
    };
    let time_limit = challenge.spec.deploy.time_limit_minutes.unwrap_or(-1);
    Ok(match view.state() {
        Some(InstanceState::Queued) => {
            let position = view.queue_position.unwrap_or(1);
            deploy(
                200,
                false,
                &format!("Challenge is waitting to deploy (position {position} in the queue)"),
                json!({"pod_status": "PENDING_DEPLOY", "queue_position": position}),
            )
        }
        Some(InstanceState::Deploying) => {
            deploy(200, false, "Challenge is currently deploying", json!({"pod_status": "Pending"}))
        }
        Some(InstanceState::Running) => deploy(
            200,
            true,
            "Pod is running.",
            json!({
                "pod_status": "Running", "challenge_url": view.token, "time_limit": time_limit,
            }),
        ),
        Some(InstanceState::Stopping) => deploy(200, true, "Pod is deleting.", json!({"pod_status": "Deleting"})),
        _ => {
            let message = match &view.reason {
                Some(reason) => format!("Pod is not running. ({reason})"),
                None => "Pod is not running.".to_owned(),
            };
            deploy(404, false, &message, json!({"pod_status": "Failed"}))
        }
    })
}

/// `GET /api/Challenge/instances`.
pub async fn instances(State(state): State<ApiState>, player: Player) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_or_after(&config, &player, now)?;
    let Some(team) = player.team_id else { return ok(json!({"success": true, "data": []})) };
    let listed = match state.center.list(ListRequest { team_id: Some(team) }).await {
        Ok(listed) => listed,
        Err(center_error) => {
            return Ok(reply(StatusCode::BAD_REQUEST, json!({"success": false, "message": center_error.to_string()})));
        }
    };
    let mut data = Vec::new();
    for view in listed.instances {
        let challenge = match state.store.get_challenge(view.challenge_id).await {
            Ok(challenge) => challenge,
            Err(StoreError::NotFound) => continue,
            Err(error) => return Err(error.into()),
        };
        if config.is_category_hidden(&challenge.spec.category) {
            continue;
        }
        let running = view.state() == Some(InstanceState::Running);
        data.push(json!({
            "challenge_id": challenge.id.get(),
            "challenge_name": challenge.spec.name,
            "category": challenge.spec.category,
            "status": view.fctf_status(),
            "pod_name": null,
            "challenge_url": view.token.clone().unwrap_or_else(|| "N/A".to_owned()),
            "ready": running,
            "age": view.expires_at.unwrap_or(0).to_string(),
            // fctf addition: how players reach it (`http` or `tcp`), as on the challenge detail.
            "connection_protocol": super::challenges::protocol(&challenge),
        }));
    }
    ok(json!({"success": true, "data": data}))
}
