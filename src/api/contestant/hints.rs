//! Hints (contract §2.5, §3.7): view, list and unlock.
//!
//! An unlock is exactly once per scoring account and charged once: the store writes the unlock
//! and its negative award in one transaction under a unique index, and checks affordability
//! under the account's row lock. Concurrent unlocks by teammates are also serialized by a
//! single-try cache lock per account, so N members unlocking at once get one unlock, one
//! charge, and "Already unlocked" or "Another unlock operation is in progress" for the others.
//! Unlocks are always recorded with type `hints` (fctf decision 8). A hint of a challenge shown
//! as a locked placeholder is not shown (fctf decision 4).

use std::collections::HashSet;
use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::attempt::log_action;
use super::context::Contestant;
use super::error::{ApiError, ApiResult, iso_time_z, ok};
use super::guards::{ctf_only, ctf_or_after, now};
use super::session::Player;
use super::signals;
use super::visibility::{Access, Requirements, access, is_hidden};
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::domain::{ChallengeId, HintId};
use crate::event::EventConfig;
use crate::store::{Account, Challenge, ChallengeState, Hint, NewUnlock, StoreError, UnlockOutcome};

/// How long the per-account unlock lock is held at most.
const UNLOCK_LOCK_TTL: Duration = Duration::from_secs(30);

/// True when the challenge's hints may be shown to the account.
async fn hints_visible(
    state: &ApiState,
    challenge: &Challenge,
    config: &EventConfig,
    account: Account,
    now: i64,
) -> Result<bool, ApiError> {
    if challenge.spec.state != ChallengeState::Visible || is_hidden(challenge, config, now) {
        return Ok(false);
    }
    Ok(prerequisite_access(state, challenge, account).await? != Access::Anonymized)
}

async fn prerequisite_access(state: &ApiState, challenge: &Challenge, account: Account) -> Result<Access, ApiError> {
    let Some(requirements) = Requirements::parse(challenge.spec.requirements.as_deref()) else {
        return Ok(Access::Open);
    };
    if requirements.prerequisites.is_empty() {
        return Ok(Access::Open);
    }
    let solved: HashSet<ChallengeId> = state.store.solved_challenge_ids(account).await?.into_iter().collect();
    let mut existing = HashSet::new();
    for id in &requirements.prerequisites {
        match state.store.get_challenge(*id).await {
            Ok(_) => {
                existing.insert(*id);
            }
            Err(StoreError::NotFound) => {}
            Err(error) => return Err(error.into()),
        }
    }
    Ok(access(challenge, &solved, &existing))
}

fn hint_not_found() -> ApiError {
    ApiError::message(StatusCode::NOT_FOUND, "Hint not found")
}

fn requirements_text(hint: &Hint) -> Value {
    hint.hint.requirements.clone().map(Value::String).unwrap_or(Value::Null)
}

/// `GET /api/Hint/{id}` (a hint id; `?preview` is accepted and ignored).
pub async fn view(State(state): State<ApiState>, player: Player, Path(id): Path<String>) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_or_after(&config, &player, now)?;
    let Ok(id) = id.trim().parse::<i64>() else { return Err(hint_not_found()) };
    let hint = match state.store.get_hint(HintId(id)).await {
        Ok(hint) => hint,
        Err(StoreError::NotFound) => return Err(hint_not_found()),
        Err(error) => return Err(error.into()),
    };
    let challenge = match state.store.get_challenge(hint.hint.challenge_id).await {
        Ok(challenge) => challenge,
        Err(StoreError::NotFound) => return Err(hint_not_found()),
        Err(error) => return Err(error.into()),
    };
    let account = player.account_for(config.user_mode);
    if !hints_visible(&state, &challenge, &config, account, now).await? {
        return Err(hint_not_found());
    }
    let unlocked = hint.hint.cost <= 0 || state.store.unlocked_hint_ids(account).await?.contains(&hint.id);
    let content = unlocked.then(|| hint.hint.content.clone());
    ok(json!({
        "success": true,
        "data": {
            "id": hint.id.get(),
            "type": hint.kind,
            "challengeId": challenge.id.get(),
            "cost": hint.hint.cost,
            "content": content,
            "html": content.as_ref().map(|text| format!("<p>{text}</p>\n")),
            "requirements": requirements_text(&hint),
            "view": if unlocked { "unlocked" } else { "locked" },
        }
    }))
}

/// `GET /api/Hint/{id}/all` (a challenge id).
pub async fn list(State(state): State<ApiState>, player: Player, Path(id): Path<String>) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_or_after(&config, &player, now)?;
    let empty = json!({"success": true, "hints": {"size": 0, "hints": []}});
    let Ok(id) = id.trim().parse::<i64>() else { return ok(empty) };
    let challenge = match state.store.get_challenge(ChallengeId(id)).await {
        Ok(challenge) => challenge,
        Err(StoreError::NotFound) => return ok(empty),
        Err(error) => return Err(error.into()),
    };
    let account = player.account_for(config.user_mode);
    if !hints_visible(&state, &challenge, &config, account, now).await? {
        return ok(empty);
    }
    let unlocked: HashSet<HintId> = state.store.unlocked_hint_ids(account).await?.into_iter().collect();
    let hints: Vec<Value> = state
        .store
        .list_hints(Some(challenge.id))
        .await?
        .iter()
        .map(|hint| json!({"id": hint.id.get(), "cost": hint.hint.cost, "isUnlocked": hint.hint.cost <= 0 || unlocked.contains(&hint.id)}))
        .collect();
    ok(json!({"success": true, "hints": {"size": hints.len(), "hints": hints}}))
}

/// `POST /api/Hint/unlock` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct UnlockBody {
    r#type: Option<String>,
    target: Option<i64>,
}

fn refuse(text: &str) -> ApiError {
    ApiError::failure_error(StatusCode::BAD_REQUEST, text)
}

/// `POST /api/Hint/unlock`.
pub async fn unlock(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
    CiJson(body): CiJson<UnlockBody>,
) -> ApiResult {
    let config = state.event.current();
    let now = now();
    if body.r#type.is_none() {
        return Err(ApiError::json(
            StatusCode::BAD_REQUEST,
            json!({"success": false, "message": "The type field is required.", "errors": {"type": ["The type field is required."]}}),
        ));
    }
    ctf_only(&config, &player, now)?;
    let Some(target) = body.target else { return Err(refuse("Invalid challenge or hint")) };
    let hint = match state.store.get_hint(HintId(target)).await {
        Ok(hint) => hint,
        Err(StoreError::NotFound) => return Err(refuse("Invalid challenge or hint")),
        Err(error) => return Err(error.into()),
    };
    let challenge = match state.store.get_challenge(hint.hint.challenge_id).await {
        Ok(challenge) => challenge,
        Err(StoreError::NotFound) => return Err(refuse("Invalid challenge or hint")),
        Err(error) => return Err(error.into()),
    };
    if is_hidden(&challenge, &config, now) {
        return Err(refuse("Challenge is hidden"));
    }
    let account = player.account_for(config.user_mode);
    if state.store.has_solved(challenge.id, account).await? {
        return Err(refuse("Challenge already solved"));
    }
    if challenge.spec.state != ChallengeState::Visible {
        return Err(refuse("Unable to unlock hint"));
    }
    let lock_name = match account.team_id {
        Some(team) => format!("hint:unlock:team:{}", team.get()),
        None => format!("hint:unlock:user:{}", account.user_id.get()),
    };
    let Some(lock) = state.cache.try_lock(&lock_name, UNLOCK_LOCK_TTL).await? else {
        return Err(refuse("Another unlock operation is in progress. Please try again."));
    };
    let outcome = unlock_locked(&state, &player, &challenge, &hint, account).await;
    if let Err(error) = lock.release().await {
        tracing::warn!(%error, "could not release the hint unlock lock; it expires on its own");
    }
    let unlock_id = outcome?;
    signals::scores_changed(&state.cache, Some(&context)).await;
    log_action(&state, &player, &challenge, 5, format!("Unlocked hint {} of {}", hint.id.get(), challenge.spec.name))
        .await;
    ok(json!({
        "success": true,
        "data": {
            "id": unlock_id,
            "type": "hints",
            "target": hint.id.get(),
            "teamId": player.team_id.map(|team| team.get()),
            "userId": player.user_id.get(),
            "date": iso_time_z(now),
        }
    }))
}

/// The checks and the write that run under the account's unlock lock; returns the unlock id.
async fn unlock_locked(
    state: &ApiState,
    player: &Player,
    challenge: &Challenge,
    hint: &Hint,
    account: Account,
) -> Result<i64, ApiError> {
    if prerequisite_access(state, challenge, account).await? != Access::Open {
        return Err(refuse(
            "You don't have the permission to unlock hints for this challenge. Complete the required challenges first.",
        ));
    }
    if let Some(required) = hint_prerequisites(hint.hint.requirements.as_deref()) {
        let unlocked: HashSet<HintId> = state.store.unlocked_hint_ids(account).await?.into_iter().collect();
        for id in required {
            if unlocked.contains(&id) {
                continue;
            }
            match state.store.get_hint(id).await {
                Ok(other) if other.hint.cost > 0 => {
                    return Err(refuse("You must unlock other hints before accessing this hint"));
                }
                Ok(_) | Err(StoreError::NotFound) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    if player.team_id.is_none() {
        return Err(refuse("User team not found"));
    }
    let request = NewUnlock { hint_id: hint.id, account, require_affordable: true };
    match state.store.unlock_hint(&request).await {
        Ok(UnlockOutcome::Unlocked { unlock_id, .. }) => Ok(unlock_id),
        Ok(UnlockOutcome::AlreadyUnlocked) => Err(refuse("Already unlocked")),
        Ok(UnlockOutcome::InsufficientScore { .. }) => Err(refuse("Not enough points to unlock this hint")),
        Err(StoreError::NotFound) => Err(refuse("Invalid challenge or hint")),
        Err(error) => Err(error.into()),
    }
}

fn hint_prerequisites(text: Option<&str>) -> Option<Vec<HintId>> {
    let value: Value = serde_json::from_str(text?).ok()?;
    let value = crate::api::json::lowercase_keys(value);
    let items = value.get("prerequisites")?.as_array()?;
    Some(items.iter().filter_map(Value::as_i64).map(HintId).collect())
}
