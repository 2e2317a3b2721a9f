//! Submissions (`/api/v1/submissions`: filtered, paginated list; admin-written submissions;
//! re-judging as correct or incorrect; delete) and notifications (`/api/v1/notifications`).
//!
//! Re-judging and deleting recompute a decaying challenge's value in the same transaction
//! (`store::admin_results`) and signal every api process to drop its cached standings; a new
//! notification is announced to the live streams of every api process (`admin::signals`).

use std::collections::HashMap;
use std::collections::hash_map::Entry;

use axum::extract::State;
use axum::http::HeaderValue;
use axum::response::Response;
use serde_json::{Value, json};

use super::accounts::teams_mode;
use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams, time_of};
use super::reply::{Page, done, iso, ok, paginated};
use super::{Table, Verb, audit, signals};
use crate::api::ApiState;
use crate::domain::{ChallengeId, SubmissionId, TeamId, UserId};
use crate::store::{
    Account, MarkOutcome, NewNotification, Notification, StoreError, Submission, SubmissionFilter, SubmissionKind,
};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/submissions", read, list)
        .add(Post, "/api/v1/submissions", write, create)
        .add(Get, "/api/v1/submissions/{id}", read, get)
        .add(Patch, "/api/v1/submissions/{id}", write, rejudge)
        .add(Delete, "/api/v1/submissions/{id}", write, delete)
        .add(Get, "/api/v1/notifications", read, list_notifications)
        .add(Post, "/api/v1/notifications", write, create_notification)
        .add(Get, "/api/v1/notifications/{id}", read, get_notification)
        .add(Delete, "/api/v1/notifications/{id}", write, delete_notification)
}

const KINDS: &[&str] = &["correct", "incorrect", "partial", "discard", "ratelimited"];

/// Names of the challenges, users and teams submissions refer to (one lookup each).
#[derive(Default)]
struct Names {
    challenges: HashMap<ChallengeId, Value>,
    users: HashMap<UserId, Value>,
    teams: HashMap<TeamId, Value>,
}

impl Names {
    async fn view(&mut self, state: &ApiState, submission: &Submission) -> AdminResult<Value> {
        if let Entry::Vacant(slot) = self.challenges.entry(submission.challenge_id) {
            let challenge = match state.store.get_challenge(submission.challenge_id).await {
                Ok(challenge) => json!({
                    "id": challenge.id, "name": challenge.spec.name, "category": challenge.spec.category,
                    "value": challenge.spec.value,
                }),
                Err(StoreError::NotFound) => Value::Null,
                Err(error) => return Err(error.into()),
            };
            slot.insert(challenge);
        }
        let user_id = submission.account.user_id;
        if let Entry::Vacant(slot) = self.users.entry(user_id) {
            let user = match state.store.get_user(user_id).await {
                Ok(user) => json!({"id": user.id, "name": user.name}),
                Err(StoreError::NotFound) => Value::Null,
                Err(error) => return Err(error.into()),
            };
            slot.insert(user);
        }
        let team = match submission.account.team_id {
            Some(team_id) => {
                if let Entry::Vacant(slot) = self.teams.entry(team_id) {
                    let team = match state.store.get_team(team_id).await {
                        Ok(team) => json!({"id": team.id, "name": team.name}),
                        Err(StoreError::NotFound) => Value::Null,
                        Err(error) => return Err(error.into()),
                    };
                    slot.insert(team);
                }
                self.teams.get(&team_id).cloned().unwrap_or(Value::Null)
            }
            None => Value::Null,
        };
        Ok(json!({
            "id": submission.id,
            "challenge_id": submission.challenge_id,
            "user_id": user_id,
            "team_id": submission.account.team_id,
            "ip": submission.ip,
            "provided": submission.provided,
            "type": submission.kind.as_str(),
            "date": iso(submission.date),
            "challenge": self.challenges.get(&submission.challenge_id).cloned().unwrap_or(Value::Null),
            "user": self.users.get(&user_id).cloned().unwrap_or(Value::Null),
            "team": team,
        }))
    }
}

async fn view_one(state: &ApiState, submission: &Submission) -> AdminResult<Value> {
    Names::default().view(state, submission).await
}

/// Every submission matching `filter` as `{data, meta: {count}}` (per-account lists).
pub async fn counted_submissions(state: &ApiState, filter: &SubmissionFilter) -> AdminResult<Response> {
    let submissions = state.store.list_submissions_filtered(filter, 0, i64::MAX).await?;
    let mut names = Names::default();
    let mut data = Vec::with_capacity(submissions.len());
    for submission in &submissions {
        data.push(names.view(state, submission).await?);
    }
    let count = data.len();
    Ok(axum::response::IntoResponse::into_response(axum::Json(
        json!({"success": true, "data": data, "meta": {"count": count}}),
    )))
}

fn kind_of(text: &str) -> AdminResult<SubmissionKind> {
    text.parse::<SubmissionKind>()
        .map_err(|_| AdminError::field("type", format!("must be one of: {}", KINDS.join(", "))))
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let page = Page::from_query(&query, 20, 100)?;
    let provided_like = match query.text("q") {
        None => None,
        Some(needle) => match query.text("field").unwrap_or("provided") {
            "provided" => Some(needle.to_owned()),
            _ => return Err(AdminError::field("field", "must be provided")),
        },
    };
    let filter = SubmissionFilter {
        challenge_id: query.int("challenge_id")?.map(ChallengeId),
        user_id: query.int("user_id")?.map(UserId),
        team_id: query.int("team_id")?.map(TeamId),
        kind: query.text("type").map(kind_of).transpose()?,
        ip: query.text("ip").map(str::to_owned),
        provided: query.text("provided").map(str::to_owned),
        provided_like,
    };
    let total = state.store.count_submissions_filtered(&filter).await?;
    let submissions = state.store.list_submissions_filtered(&filter, page.offset(), page.per_page).await?;
    let mut names = Names::default();
    let mut data = Vec::with_capacity(submissions.len());
    for submission in &submissions {
        data.push(names.view(&state, submission).await?);
    }
    Ok(paginated(data, page, total))
}

async fn create(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let challenge = super::children::challenge_of(&state, &mut fields, true).await?;
    let user_id = fields.int("user_id", 1, i64::MAX).set();
    let mut team_id = fields.int("team_id", 1, i64::MAX).set().map(TeamId);
    let provided = fields.text("provided", 65_535).set().unwrap_or_default();
    let ip = fields.text("ip", 64).set();
    let kind = match fields.choice("type", KINDS) {
        Opt::Set(kind) => kind_of(&kind).ok(),
        _ => {
            if !fields.has("type") {
                fields.error("type", "is required");
            }
            None
        }
    };
    let date = match fields.raw("date") {
        None | Some(Value::Null) => chrono::Utc::now().timestamp(),
        Some(value) => time_of(value).unwrap_or_else(|| {
            fields.error("date", "must be an ISO-8601 date-time or Unix seconds");
            0
        }),
    };
    match user_id {
        Some(user_id) => match state.store.get_user(UserId(user_id)).await {
            Ok(user) => {
                if teams_mode(&state) && team_id.is_none() {
                    team_id = user.team_id;
                }
            }
            Err(StoreError::NotFound) => fields.error("user_id", "user does not exist"),
            Err(error) => return Err(error.into()),
        },
        None => {
            if !fields.has_errors() {
                fields.error("user_id", "is required");
            }
        }
    }
    fields.finish()?;
    let (Some(challenge_id), Some(user_id), Some(kind)) = (challenge, user_id, kind) else {
        return Err(AdminError::field("body", "challenge_id, user_id and type are required"));
    };
    let account = Account { user_id: UserId(user_id), team_id };
    let created = state
        .store
        .create_submission_as_admin(challenge_id, account, kind, &provided, ip.as_deref(), date)
        .await?
        .ok_or_else(|| AdminError::field("type", "Solve already exists for this account and challenge"))?;
    signals::scores(&state).await;
    let after = view_one(&state, &created).await?;
    audit::record(&state, &actor, "create", "submission", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    let submission = state.store.get_submission(SubmissionId(id)).await?;
    Ok(ok(view_one(&state, &submission).await?))
}

/// `PATCH /api/v1/submissions/{id} {type: correct|incorrect}`.
async fn rejudge(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_submission(SubmissionId(id)).await?;
    let mut fields = Fields::new(&body);
    let kind = fields.choice("type", &["correct", "incorrect"]).set();
    if kind.is_none() && !fields.has_errors() {
        fields.error("type", "must be correct or incorrect");
    }
    fields.finish()?;
    let before = view_one(&state, &current).await?;
    let result = if kind.as_deref() == Some("correct") {
        match state.store.mark_submission_correct(current.id).await? {
            MarkOutcome::Solved(solve) => solve,
            MarkOutcome::AlreadySolved => {
                return Err(AdminError::field("type", "Solve already exists for this submission"));
            }
        }
    } else {
        state.store.mark_submission_incorrect(current.id).await?
    };
    signals::scores(&state).await;
    let after = view_one(&state, &result).await?;
    audit::record(&state, &actor, "rejudge", "submission", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_submission(SubmissionId(id)).await?;
    let before = view_one(&state, &current).await?;
    if !state.store.delete_submission_rescored(current.id).await? {
        return Err(AdminError::NotFound);
    }
    signals::scores(&state).await;
    audit::record(&state, &actor, "delete", "submission", Some(id.to_string()), Some(&before), None).await;
    Ok(done())
}

fn notification_view(notification: &Notification) -> Value {
    let body = &notification.notification;
    json!({
        "id": notification.id,
        "title": body.title,
        "content": body.content,
        "html": body.content,
        "date": iso(notification.date),
        "user_id": body.user_id,
        "team_id": body.team_id,
        "user": body.user_id,
        "team": body.team_id,
        "type": body.kind,
        "sound": body.sound,
    })
}

async fn list_notifications(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let since = query.int("since_id")?.unwrap_or(0);
    let user_id = query.int("user_id")?;
    let team_id = query.int("team_id")?;
    let mut data = Vec::new();
    for notification in state.store.list_notifications(since).await? {
        let body = &notification.notification;
        if query.text("title").is_some_and(|title| title != body.title)
            || query.text("content").is_some_and(|content| content != body.content)
            || user_id.is_some_and(|id| Some(UserId(id)) != body.user_id)
            || team_id.is_some_and(|id| Some(TeamId(id)) != body.team_id)
        {
            continue;
        }
        if let Some(needle) = query.text("q") {
            let haystack = match query.text("field").unwrap_or("title") {
                "title" => &body.title,
                "content" => &body.content,
                _ => return Err(AdminError::field("field", "must be title or content")),
            };
            if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
                continue;
            }
        }
        data.push(notification_view(&notification));
    }
    let count = data.len();
    let mut response = ok(data);
    if let Ok(value) = HeaderValue::from_str(&count.to_string()) {
        response.headers_mut().insert("result-count", value);
    }
    Ok(response)
}

async fn create_notification(
    State(state): State<ApiState>,
    actor: Actor,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let title = fields.required_text("title", 255);
    let content = fields.required_text("content", 65_535);
    let kind = fields.choice("type", &["alert", "toast", "background"]).set().unwrap_or_else(|| "alert".into());
    let sound = fields.bool("sound").set().unwrap_or(true);
    let user_id = fields.int("user_id", 1, i64::MAX).set().map(UserId);
    let team_id = fields.int("team_id", 1, i64::MAX).set().map(TeamId);
    if let Some(user) = user_id {
        match state.store.get_user(user).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => fields.error("user_id", "user does not exist"),
            Err(error) => return Err(error.into()),
        }
    }
    if let Some(team) = team_id {
        match state.store.get_team(team).await {
            Ok(_) => {}
            Err(StoreError::NotFound) => fields.error("team_id", "team does not exist"),
            Err(error) => return Err(error.into()),
        }
    }
    fields.finish()?;
    let notification = NewNotification {
        title: title.unwrap_or_default(),
        content: content.unwrap_or_default(),
        kind,
        sound,
        user_id,
        team_id,
    };
    let id = state.store.create_notification(&notification).await?;
    let created = state.store.get_notification(id).await?;
    signals::notification(&state, id).await;
    let after = notification_view(&created);
    audit::record(&state, &actor, "create", "notification", Some(id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get_notification(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(notification_view(&state.store.get_notification(id).await?)))
}

async fn delete_notification(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_notification(id).await?;
    if !state.store.delete_notification(id).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(
        &state,
        &actor,
        "delete",
        "notification",
        Some(id.to_string()),
        Some(&notification_view(&current)),
        None,
    )
    .await;
    Ok(done())
}
