//! Flag submission, `POST /api/Challenge/attempt` (contract §3.5 with fctf's fixes).
//!
//! Order: time window → challenge exists → paused → has a team → submission length → captain
//! rule → visibility and state → prerequisites → cooldown → already solved → attempt budget
//! pre-check → flag match → correct: one store transaction records the submission and the solve
//! (unique per account and challenge, so exactly one of N concurrent correct submissions
//! counts; a decaying value is recomputed in the same transaction, and the action-log entry
//! commits with it) → incorrect: per-user wrong-flag rate, then the atomic attempt budget, then
//! the submission and its action-log entry are recorded in one transaction (one synchronous
//! commit per attempt rather than two: on PostgreSQL the commit is most of a wrong flag's cost).
//!
//! Fixes applied: refused attempts (visibility, prerequisites, rate limits) never consume the
//! cooldown, and the budget counter is never incremented by a refused attempt (fctf decisions 6
//! and 7; `Cache::consume_attempt` only counts below the maximum and the count is given back if
//! the submission cannot be recorded). The cooldown and the budget are per scoring account:
//! the team in teams mode, the user in users mode. The per-user wrong-flag limit
//! (`incorrect_submissions_per_min`) is a token bucket refilled continuously rather than a
//! calendar minute. Flags are never logged.
//!
//! Dynamic flags: a team submitting another team's genuine flag creates a cheat event naming
//! both teams. With `dynamic_flag_sharing = reject` (the default) the attempt is answered and
//! counted as incorrect; with `record` it is accepted as a solve and only recorded.
//!
//! Instances: a correct flag, and a recorded wrong attempt that uses the last of the budget,
//! stop the team's instance of the challenge (`instances::stop_after_solve`, in the
//! background: the answer never waits for the stop, and a failed stop is only logged).

use std::sync::Arc;
use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::json;

use super::client_ip::ClientIp;
use super::context::Contestant;
use super::error::{ApiError, ApiResult, reply};
use super::flag_check::{DynamicContext, Verdict, judge};
use super::guards::{ctf_only, now};
use super::session::Player;
use super::signals;
use super::visibility::{Access, access_of, is_hidden};
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::control::StopReason;
use crate::store::{
    Account, Challenge, ChallengeState, NewActionLog, NewCheatEvent, SolveOutcome, StoreError, SubmissionKind,
};

/// Longest submission accepted, in characters.
pub const MAX_SUBMISSION_CHARS: usize = 1000;
/// How long an attempt counter lives in the cache (it is reseeded from the store after).
const ATTEMPT_COUNTER_TTL: Duration = Duration::from_secs(24 * 3600);

/// `POST /api/Challenge/attempt` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct AttemptBody {
    challengeid: Option<i64>,
    submission: Option<String>,
}

fn verdict(status: StatusCode, success: bool, data: serde_json::Value) -> ApiResult {
    Ok(reply(status, json!({"success": success, "data": data})))
}

fn account_key(account: Account) -> String {
    match account.team_id {
        Some(team) => format!("t{}", team.get()),
        None => format!("u{}", account.user_id.get()),
    }
}

fn no_tries_left() -> ApiResult {
    verdict(StatusCode::BAD_REQUEST, true, json!({"status": "incorrect", "message": "You have 0 tries remaining"}))
}

/// `POST /api/Challenge/attempt`.
pub async fn attempt(
    State(state): State<ApiState>,
    Extension(context): Extension<Arc<Contestant>>,
    player: Player,
    ip: ClientIp,
    CiJson(body): CiJson<AttemptBody>,
) -> ApiResult {
    let config = state.event.current();
    let now = now();
    ctf_only(&config, &player, now)?;
    let Some(challenge_id) = body.challengeid else {
        return Err(ApiError::error(StatusCode::NOT_FOUND, "Challenge not found"));
    };
    if challenge_id == 0 {
        return Err(ApiError::error(StatusCode::BAD_REQUEST, "ChallengeId is required"));
    }
    let challenge = match state.store.get_challenge(crate::domain::ChallengeId(challenge_id)).await {
        Ok(challenge) => challenge,
        Err(StoreError::NotFound) => return Err(ApiError::error(StatusCode::NOT_FOUND, "Challenge not found")),
        Err(error) => return Err(error.into()),
    };
    tracing::info!(user_id = player.user_id.get(), challenge_id, "ATTEMPT_CHALLENGE");
    if config.paused {
        return verdict(
            StatusCode::FORBIDDEN,
            true,
            json!({"status": "paused", "message": format!("{} is paused", config.ctf_name)}),
        );
    }
    if player.team_id.is_none() {
        return Err(ApiError::empty(StatusCode::FORBIDDEN));
    }
    let submission = body.submission.as_deref().unwrap_or_default().trim().to_owned();
    if submission.is_empty() {
        return verdict(
            StatusCode::BAD_REQUEST,
            false,
            json!({"status": "invalid", "message": "Submission cannot be empty"}),
        );
    }
    if submission.chars().count() > MAX_SUBMISSION_CHARS {
        return verdict(
            StatusCode::BAD_REQUEST,
            false,
            json!({"status": "invalid", "message": format!("Submission exceeds maximum length of {MAX_SUBMISSION_CHARS} characters")}),
        );
    }
    if config.captain_only_submit_challenge && !player.is_captain() {
        return verdict(
            StatusCode::FORBIDDEN,
            false,
            json!({"status": "forbidden", "message": "Only the team captain has permission to submit flags for challenges."}),
        );
    }
    if is_hidden(&challenge, &config, now) {
        return Err(ApiError::not_found());
    }
    if challenge.spec.state == ChallengeState::Locked {
        return Err(ApiError::empty(StatusCode::FORBIDDEN));
    }
    let account = player.account_for(config.user_mode);
    if access_of(&state, &challenge, account).await? != Access::Open {
        return Err(ApiError::failure(
            StatusCode::FORBIDDEN,
            "You don't have the permission to access this challenge. Complete the required challenges first.",
        ));
    }
    let key = format!("{}:{}", challenge.id.get(), account_key(account));
    if challenge.spec.cooldown > 0 {
        let cooldown = Duration::from_secs(challenge.spec.cooldown.unsigned_abs());
        if let Some(left) = state.cache.check_cooldown(&format!("attempt:{key}"), cooldown).await? {
            let seconds = left.as_secs_f64().ceil().max(1.0) as u64;
            return verdict(
                StatusCode::TOO_MANY_REQUESTS,
                true,
                json!({"status": "ratelimited", "message": format!("Please wait {seconds} seconds before submitting again."), "cooldown": seconds}),
            );
        }
    }
    if state.store.has_solved(challenge.id, account).await? {
        return already_solved();
    }
    let max_attempts = challenge.spec.max_attempts;
    let failed_so_far = if max_attempts > 0 {
        let failed = state.store.count_submissions(challenge.id, account, SubmissionKind::Incorrect).await?;
        if failed >= max_attempts {
            return no_tries_left();
        }
        failed
    } else {
        0
    };
    let flags = state.store.list_flags(Some(challenge.id)).await?;
    let dynamic = DynamicContext { secret: state.secrets.internal(), challenge: challenge.id, team: player.team_id };
    let ip_text = ip.text();
    let incorrect_message = match judge(&flags, &submission, &context.regexes, dynamic) {
        Verdict::Correct => {
            return record_correct(&state, &context, &player, &challenge, account, &submission, &ip_text).await;
        }
        Verdict::SharedDynamic { owner } => {
            let event = NewCheatEvent {
                challenge_id: challenge.id,
                submitting_team_id: player.team_id,
                submitting_user_id: Some(player.user_id),
                owner_team_id: Some(owner),
                provided: submission.clone(),
                ip: Some(ip_text.clone()),
            };
            if let Err(error) = state.store.record_cheat_event(&event).await {
                tracing::warn!(%error, challenge_id, owner = owner.get(), "could not record a cheat event");
            }
            tracing::warn!(
                user_id = player.user_id.get(),
                challenge_id,
                owner = owner.get(),
                "dynamic flag of another team submitted"
            );
            if !config.reject_shared_dynamic_flags {
                return record_correct(&state, &context, &player, &challenge, account, &submission, &ip_text).await;
            }
            "Incorrect"
        }
        Verdict::Incorrect => "Incorrect",
        Verdict::RegexError => "Regex parse error occured",
        Verdict::UnknownType(kind) => {
            return Err(ApiError::internal(&format!("challenge {challenge_id} has a flag of unknown type {kind:?}")));
        }
    };
    let limit = config.incorrect_submissions_per_min;
    if limit > 0 {
        let decision = state
            .cache
            .rate_limit(&format!("wrong-flags:{}", player.user_id.get()), limit, f64::from(limit) / 60.0)
            .await?;
        if !decision.allowed {
            return verdict(
                StatusCode::TOO_MANY_REQUESTS,
                true,
                json!({"status": "ratelimited", "message": format!("You're submitting flags too fast. Slow down. ({limit}/{limit} attempts in last minute)"), "cooldown": 0}),
            );
        }
    }
    let attempts_used = if max_attempts > 0 {
        let budget = max_attempts.unsigned_abs();
        match state.cache.consume_attempt(&key, budget, failed_so_far.unsigned_abs(), ATTEMPT_COUNTER_TTL).await? {
            Some(used) => Some(used),
            None => return no_tries_left(),
        }
    } else {
        None
    };
    let log = action_entry(&player, &challenge, 4, format!("Submitted an incorrect flag for {}", challenge.spec.name));
    if let Err(error) = state
        .store
        .record_submission_with_log(
            challenge.id,
            account,
            SubmissionKind::Incorrect,
            &submission,
            Some(&ip_text),
            Some(&log),
        )
        .await
    {
        if attempts_used.is_some()
            && let Err(refund_error) = state.cache.refund_attempt(&key).await
        {
            tracing::warn!(%refund_error, "could not give back an attempt");
        }
        tracing::error!(%error, "failed to record an incorrect submission");
        return Err(ApiError::failure_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "Failed to record submission. Please try again.",
        ));
    }
    if attempts_used.is_some_and(|used| used >= max_attempts.unsigned_abs())
        && let Some(team) = player.team_id
    {
        super::instances::stop_after_solve(&state, team, challenge.id, StopReason::AttemptsExhausted);
    }
    let message = match attempts_used {
        Some(used) => {
            let left = max_attempts.unsigned_abs().saturating_sub(used);
            let mut text = incorrect_message.to_owned();
            if !text.ends_with(['!', '(', ')', '.', ';', '?', '[', ']', '{', '}']) {
                text.push('.');
            }
            format!("{text} You have {left} {} remaining.", if left == 1 { "try" } else { "tries" })
        }
        None => incorrect_message.to_owned(),
    };
    verdict(
        StatusCode::OK,
        true,
        json!({"status": "incorrect", "message": message, "cooldown": challenge.spec.cooldown}),
    )
}

fn already_solved() -> ApiResult {
    verdict(
        StatusCode::OK,
        true,
        json!({"status": "already_solved", "message": "You or your teammate already solved this"}),
    )
}

async fn record_correct(
    state: &ApiState,
    context: &Contestant,
    player: &Player,
    challenge: &Challenge,
    account: Account,
    submission: &str,
    ip: &str,
) -> ApiResult {
    let log = action_entry(player, challenge, 3, format!("Solved {}", challenge.spec.name));
    match state.store.record_solve_with_log(challenge.id, account, submission, Some(ip), Some(&log)).await {
        Ok(SolveOutcome::Solved { value, .. }) => {
            if let Some(team) = player.team_id {
                super::instances::stop_after_solve(state, team, challenge.id, StopReason::Solved);
            }
            signals::scores_changed(&state.cache, Some(context)).await;
            verdict(StatusCode::OK, true, json!({"status": "correct", "message": "Correct", "value": value}))
        }
        Ok(SolveOutcome::AlreadySolved) => already_solved(),
        Err(StoreError::Unavailable(error)) => {
            tracing::warn!(%error, "store busy while recording a solve");
            verdict(
                StatusCode::SERVICE_UNAVAILABLE,
                false,
                json!({"status": "busy", "message": "Scoring is busy, please retry in a moment."}),
            )
        }
        Err(error) => {
            tracing::error!(%error, "failed to record a solve");
            Err(ApiError::failure_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "Failed to record submission. Please try again.",
            ))
        }
    }
}

/// The action log entry of `player` doing `action_type` on `challenge`.
fn action_entry(player: &Player, challenge: &Challenge, action_type: i64, detail: String) -> NewActionLog {
    NewActionLog {
        user_id: Some(player.user_id),
        team_id: player.team_id,
        challenge_id: Some(challenge.id),
        action_type,
        action_detail: detail.chars().take(500).collect(),
        topic_name: Some(challenge.spec.category.clone()),
    }
}

/// Appends a contestant action log entry; failures are logged, never returned.
pub async fn log_action(state: &ApiState, player: &Player, challenge: &Challenge, action_type: i64, detail: String) {
    let entry = action_entry(player, challenge, action_type, detail);
    if let Err(error) = state.store.append_action_log(&entry).await {
        tracing::warn!(%error, "could not append an action log entry");
    }
}
