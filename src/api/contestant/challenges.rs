//! Challenge discovery (contract §2.3 CH1–CH3): categories, the list of a category and the
//! detail of one challenge, with visibility, hidden categories, prerequisites, difficulty,
//! `next`, multiple choice and signed file links.
//!
//! Scoring account: the team in teams mode, the user in users mode (`Player::account_for`).
//! Anonymized challenges whose prerequisites are unmet are listed, and their detail answered,
//! as a locked placeholder (fctf decision 4). Category order is alphabetical (the original
//! used the database's grouping order).

use std::collections::{BTreeMap, HashMap, HashSet};

use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::context::Contestant;
use super::error::{ApiError, ApiResult, ok};
use super::files::{FileClaims, download_link};
use super::guards::{ctf_or_after, now};
use super::instances::{live_instances, pod_status};
use super::session::Player;
use super::visibility::{Access, PLACEHOLDER_NAME, Requirements, access, is_hidden, multiple_choice_html};
use crate::api::ApiState;
use crate::domain::{ChallengeId, TeamId};
use crate::event::EventConfig;
use crate::store::{Challenge, StoreError};

/// Everything the listing endpoints need about the caller's progress.
struct Progress {
    challenges: std::sync::Arc<Vec<Challenge>>,
    existing: HashSet<ChallengeId>,
    solved: HashSet<ChallengeId>,
}

async fn progress(
    state: &ApiState,
    context: &Contestant,
    player: &Player,
    config: &EventConfig,
) -> Result<Progress, ApiError> {
    let challenges = context.catalog.challenges(state).await?;
    let existing = challenges.iter().map(|challenge| challenge.id).collect();
    let solved = state.store.solved_challenge_ids(player.account_for(config.user_mode)).await?.into_iter().collect();
    Ok(Progress { challenges, existing, solved })
}

fn difficulty(challenge: &Challenge, config: &EventConfig) -> Option<i64> {
    if config.challenge_difficulty_visibility { challenge.spec.difficulty } else { None }
}

/// How players reach instances of `challenge` (`http` unless set).
pub(super) fn protocol(challenge: &Challenge) -> &str {
    let protocol = challenge.spec.deploy.protocol.trim();
    if protocol.is_empty() { "http" } else { protocol }
}

/// `GET /api/Challenge/by-topic`.
pub async fn by_topic(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_or_after(&config, &player, now)?;
    let progress = progress(&state, &context, &player, &config).await?;
    let mut topics: BTreeMap<String, (usize, usize)> = BTreeMap::new();
    for challenge in progress.challenges.iter().filter(|challenge| !is_hidden(challenge, &config, now)) {
        let entry = topics.entry(challenge.spec.category.clone()).or_default();
        entry.0 += 1;
        if progress.solved.contains(&challenge.id) {
            entry.1 += 1;
        }
    }
    let data: Vec<Value> = topics
        .into_iter()
        .map(|(topic, (count, solved))| json!({"topic_name": topic, "challenge_count": count, "cleared": solved >= count}))
        .collect();
    ok(json!({"success": true, "data": data}))
}

/// `GET /api/Challenge/list_challenge/{category_name}`.
pub async fn list(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
    Path(category): Path<String>,
) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_or_after(&config, &player, now)?;
    if config.is_category_hidden(&category) {
        return ok(json!({"success": true, "data": []}));
    }
    let progress = progress(&state, &context, &player, &config).await?;
    let wanted = category.trim().to_lowercase();
    let deployable = progress.challenges.iter().any(|challenge| {
        challenge.spec.deploy.require_deploy && challenge.spec.category.trim().to_lowercase() == wanted
    });
    let instances = match player.team_id {
        Some(team) if deployable => live_instances(&state, team).await?,
        _ => HashMap::new(),
    };
    let mut data = Vec::new();
    for challenge in progress.challenges.iter() {
        if challenge.spec.category.trim().to_lowercase() != wanted || is_hidden(challenge, &config, now) {
            continue;
        }
        let access = access(challenge, &progress.solved, &progress.existing);
        if access == Access::Locked {
            continue;
        }
        let anonymized = access == Access::Anonymized;
        let pod = if challenge.spec.deploy.require_deploy {
            instances.get(&challenge.id).map(|instance| pod_status(instance.state))
        } else {
            None
        };
        data.push(json!({
            "id": challenge.id.get(),
            "name": if anonymized { PLACEHOLDER_NAME } else { challenge.spec.name.as_str() },
            "next_id": if anonymized { None } else { challenge.spec.next_id.map(ChallengeId::get) },
            "next_name": Value::Null,
            "max_attempts": challenge.spec.max_attempts,
            "value": challenge.spec.value,
            "category": challenge.spec.category,
            "time_limit": challenge.spec.deploy.time_limit_minutes,
            "connection_protocol": protocol(challenge),
            "type": challenge.spec.kind,
            "requirements": Requirements::parse(challenge.spec.requirements.as_deref()).map(|requirements| requirements.to_json()),
            "solve_by_myteam": progress.solved.contains(&challenge.id),
            "kypo_submitted": false,
            "pod_status": pod,
            "difficulty": difficulty(challenge, &config),
            "shared_instance": false,
            "locked": anonymized,
        }));
    }
    ok(json!({"success": true, "data": data}))
}

fn unavailable() -> ApiError {
    ApiError::failure(StatusCode::NOT_FOUND, "Challenge now is not available")
}

/// `GET /api/Challenge/{id}`.
pub async fn detail(State(state): State<ApiState>, player: Player, Path(id): Path<String>) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_or_after(&config, &player, now)?;
    let Ok(id) = id.trim().parse::<i64>() else {
        return Err(ApiError::failure(StatusCode::BAD_REQUEST, "The challenge id must be an integer"));
    };
    let challenge = match state.store.get_challenge(ChallengeId(id)).await {
        Ok(challenge) => challenge,
        Err(StoreError::NotFound) => return Err(ApiError::failure(StatusCode::NOT_FOUND, "Challenge not found")),
        Err(error) => return Err(error.into()),
    };
    if is_hidden(&challenge, &config, now) {
        return Err(unavailable());
    }
    let account = player.account_for(config.user_mode);
    let solved: HashSet<ChallengeId> = state.store.solved_challenge_ids(account).await?.into_iter().collect();
    let mut existing = HashSet::new();
    if let Some(requirements) = Requirements::parse(challenge.spec.requirements.as_deref()) {
        for prerequisite in &requirements.prerequisites {
            match state.store.get_challenge(*prerequisite).await {
                Ok(_) => {
                    existing.insert(*prerequisite);
                }
                Err(StoreError::NotFound) => {}
                Err(error) => return Err(error.into()),
            }
        }
    }
    let access = access(&challenge, &solved, &existing);
    if access == Access::Locked {
        return Err(ApiError::failure(
            StatusCode::FORBIDDEN,
            "You don't have the permission to access this challenge. Complete the required challenges first.",
        ));
    }
    let anonymized = access == Access::Anonymized;
    let (correct, incorrect) = state.store.attempt_counts(challenge.id, account).await?;
    let instance_team = if challenge.spec.deploy.shared_instance { Some(TeamId::SHARED) } else { player.team_id };
    let deployed_count = match player.team_id {
        Some(team) => state.store.count_started_instances(team, challenge.id).await?,
        None => 0,
    };
    let next_name = match challenge.spec.next_id {
        Some(next) if !anonymized => match state.store.get_challenge(next).await {
            Ok(next) if !config.is_category_hidden(&next.spec.category) => Some(next.spec.name),
            Ok(_) | Err(StoreError::NotFound) => None,
            Err(error) => return Err(error.into()),
        },
        _ => None,
    };
    let files: Vec<String> = if anonymized {
        Vec::new()
    } else {
        state
            .store
            .list_files(None, Some(challenge.id))
            .await?
            .iter()
            .map(|file| {
                let claims = FileClaims {
                    user_id: player.user_id.get(),
                    team_id: player.team_id.map(TeamId::get),
                    file_id: file.id,
                };
                download_link(state.secrets.files(), &claims, &file.location)
            })
            .collect()
    };
    let description = if anonymized {
        String::new()
    } else if challenge.spec.kind == "multiple_choice" {
        multiple_choice_html(&challenge.spec.description)
    } else {
        challenge.spec.description.clone()
    };
    let data = json!({
        "id": challenge.id.get(),
        "name": if anonymized { PLACEHOLDER_NAME } else { challenge.spec.name.as_str() },
        "description": description,
        "max_attempts": challenge.spec.max_attempts,
        "attemps": correct + incorrect,
        "max_deploy_count": challenge.spec.deploy.max_deploy_count,
        "deployed_count": deployed_count,
        "category": challenge.spec.category,
        "time_limit": challenge.spec.deploy.time_limit_minutes,
        "require_deploy": challenge.spec.deploy.require_deploy,
        "type": challenge.spec.kind,
        "next_id": if anonymized { None } else { challenge.spec.next_id.map(ChallengeId::get) },
        "connection_protocol": protocol(&challenge),
        "next_name": next_name,
        "solve_by_myteam": solved.contains(&challenge.id),
        "kypo_submitted": false,
        "files": files,
        "is_captain": player.is_captain(),
        "captain_only_start": config.captain_only_start_challenge,
        "captain_only_submit": config.captain_only_submit_challenge,
        "difficulty": difficulty(&challenge, &config),
        "shared_instance": challenge.spec.deploy.shared_instance,
        "locked": anonymized,
    });
    tracing::info!(user_id = player.user_id.get(), challenge_id = challenge.id.get(), "VIEW_CHALLENGE");
    let instance = match instance_team {
        Some(team) if challenge.spec.deploy.require_deploy => live_instances(&state, team).await?.remove(&challenge.id),
        _ => None,
    };
    match instance {
        Some(instance) => {
            let starter = match instance.user_id {
                Some(user_id) => state.store.get_user(user_id).await.map(|user| user.name).unwrap_or_default(),
                None => String::new(),
            };
            let remaining = instance.expires_at.map(|expires| (expires - now).max(0));
            ok(json!({
                "message": format!("Challenge was started by: {starter}"),
                "data": data,
                "pod_status": pod_status(instance.state),
                "is_started": true,
                "challenge_url": Value::Null,
                "time_remaining": remaining,
            }))
        }
        _ => ok(json!({"message": true, "data": data, "is_started": false, "pod_status": Value::Null})),
    }
}
