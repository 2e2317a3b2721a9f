//! Hints (`/api/v1/hints`): the list shows the locked view (no content), everything else the
//! admin view. Deleting a hint is soft and a hint recreated with the same content takes over
//! the unlocks of the one it replaces (admin-api D7, `store::hints`), so a `ctf challenge sync`
//! that deletes and recreates every hint keeps what players paid for. Content may be empty:
//! ctfcli creates chained hints empty and patches the content in afterwards.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::children::challenge_of;
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, Opt, QueryParams, int_of};
use super::reply::{done, ok};
use super::{Table, Verb, audit};
use crate::api::ApiState;
use crate::domain::{ChallengeId, HintId};
use crate::store::{Hint, NewHint, StoreError};

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/hints", read, list)
        .add(Post, "/api/v1/hints", write, create)
        .add(Get, "/api/v1/hints/{id}", read, get)
        .add(Patch, "/api/v1/hints/{id}", write, update)
        .add(Delete, "/api/v1/hints/{id}", write, delete)
}

fn requirements_value(hint: &Hint) -> Value {
    hint.hint.requirements.as_deref().and_then(|text| serde_json::from_str::<Value>(text).ok()).unwrap_or(Value::Null)
}

/// The admin view `{id, title, type, challenge, challenge_id, content, html, cost, requirements}`.
pub fn admin_view(hint: &Hint) -> Value {
    json!({
        "id": hint.id,
        "title": hint.hint.title,
        "type": hint.kind,
        "challenge": hint.hint.challenge_id,
        "challenge_id": hint.hint.challenge_id,
        "content": hint.hint.content,
        "html": hint.hint.content,
        "cost": hint.hint.cost,
        "requirements": requirements_value(hint),
    })
}

fn locked_view(hint: &Hint) -> Value {
    json!({
        "id": hint.id,
        "title": hint.hint.title,
        "type": hint.kind,
        "challenge": hint.hint.challenge_id,
        "challenge_id": hint.hint.challenge_id,
        "cost": hint.hint.cost,
    })
}

async fn list(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let challenge_id = query.int("challenge_id")?.map(ChallengeId);
    let cost = query.int("cost")?;
    let mut data = Vec::new();
    for hint in state.store.list_hints(challenge_id).await? {
        if cost.is_some_and(|wanted| wanted != hint.hint.cost)
            || query.text("type").is_some_and(|wanted| wanted != hint.kind)
            || query.text("content").is_some_and(|wanted| wanted != hint.hint.content)
        {
            continue;
        }
        if let Some(needle) = query.text("q") {
            let haystack = match query.text("field").unwrap_or("content") {
                "content" => hint.hint.content.clone(),
                "title" => hint.hint.title.clone().unwrap_or_default(),
                _ => return Err(AdminError::field("field", "must be content or title")),
            };
            if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
                continue;
            }
        }
        data.push(locked_view(&hint));
    }
    Ok(ok(data))
}

/// Reads hint fields over `hint`; hint prerequisites must be live hints.
async fn hint_fields(
    state: &ApiState,
    fields: &mut Fields<'_>,
    hint: &mut NewHint,
    own_id: Option<i64>,
) -> AdminResult<()> {
    let creating = own_id.is_none();
    match fields.text("title", 80) {
        Opt::Set(title) => hint.title = Some(title),
        Opt::Null => hint.title = None,
        Opt::Absent => {}
    }
    match fields.text("content", 65_535) {
        Opt::Set(content) => hint.content = content,
        Opt::Null => fields.error("content", "must be a string"),
        Opt::Absent if creating && !fields.has("content") => fields.error("content", "is required"),
        Opt::Absent => {}
    }
    if let Some(cost) = fields.int("cost", 0, 1_000_000_000).patch() {
        hint.cost = cost.unwrap_or(0);
    }
    match fields.raw("requirements") {
        None => {}
        Some(Value::Null) => hint.requirements = None,
        Some(Value::Object(object)) => {
            let mut prerequisites = Vec::new();
            match object.get("prerequisites") {
                None | Some(Value::Null) => {}
                Some(Value::Array(items)) => {
                    for item in items {
                        match int_of(item) {
                            Some(id) if Some(id) == own_id => {
                                fields.error("requirements", "a hint cannot require itself")
                            }
                            Some(id) if id > 0 => match state.store.get_hint(HintId(id)).await {
                                Ok(_) => prerequisites.push(id),
                                Err(StoreError::NotFound) => {
                                    fields.error("requirements", format!("hint {id} does not exist"));
                                }
                                Err(error) => return Err(error.into()),
                            },
                            _ => fields.error("requirements", "prerequisites must be hint ids"),
                        }
                    }
                }
                Some(_) => fields.error("requirements", "prerequisites must be a list of hint ids"),
            }
            hint.requirements = Some(json!({"prerequisites": prerequisites}).to_string());
        }
        Some(_) => fields.error("requirements", "must be an object {prerequisites}"),
    }
    if let Opt::Set(kind) = fields.choice("type", &["standard"]) {
        debug_assert_eq!(kind, "standard");
    }
    Ok(())
}

async fn create(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let challenge_id = challenge_of(&state, &mut fields, true).await?;
    let mut hint = NewHint {
        challenge_id: challenge_id.unwrap_or(ChallengeId(0)),
        title: None,
        content: String::new(),
        cost: 0,
        requirements: None,
    };
    hint_fields(&state, &mut fields, &mut hint, None).await?;
    fields.finish()?;
    let created = state.store.create_hint(&hint).await?;
    let after = admin_view(&created);
    audit::record(&state, &actor, "create", "hint", Some(created.id.to_string()), None, Some(&after)).await;
    Ok(ok(after))
}

async fn get(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(admin_view(&state.store.get_hint(HintId(id)).await?)))
}

async fn update(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_hint(HintId(id)).await?;
    let mut fields = Fields::new(&body);
    let mut hint = current.hint.clone();
    hint_fields(&state, &mut fields, &mut hint, Some(id)).await?;
    fields.finish()?;
    let updated = state.store.update_hint(current.id, &hint).await?;
    let (before, after) = (admin_view(&current), admin_view(&updated));
    audit::record(&state, &actor, "update", "hint", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_hint(HintId(id)).await?;
    if !state.store.delete_hint(current.id).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(&state, &actor, "delete", "hint", Some(id.to_string()), Some(&admin_view(&current)), None).await;
    Ok(done())
}
