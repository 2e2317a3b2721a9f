//! Event configuration (`/api/v1/configs`): CTFd's key/value rows, written through
//! `EventSettings`, so known keys are validated (every problem reported at once, nothing
//! written when one is bad), the change is atomic, and every process reloads it (admin-api
//! §2.11; `crate::event`). Values are text: JSON strings as is, numbers and booleans as their
//! text, `null` stored as NULL. Values of keys that look secret (`*secret*`, `*password*`) are
//! shown to admins only.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, JsonBody, QueryParams, TextPath, value_as_text};
use super::reply::{done, ok};
use super::{Table, Verb, audit};
use crate::api::ApiState;
use crate::event::UpdateError;
use crate::store::ConfigEntry;

pub(super) fn routes(table: Table, read: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch, Post};
    table
        .add(Get, "/api/v1/configs", read, list)
        .add(Post, "/api/v1/configs", write, create)
        .add(Patch, "/api/v1/configs", write, bulk_update)
        .add(Get, "/api/v1/configs/{key}", read, get)
        .add(Patch, "/api/v1/configs/{key}", write, update)
        .add(Delete, "/api/v1/configs/{key}", write, delete)
}

fn is_secret(key: &str) -> bool {
    let lower = key.to_ascii_lowercase();
    lower.contains("secret") || lower.contains("password")
}

fn view(entry: &ConfigEntry, actor: &Actor) -> Value {
    let value = if is_secret(&entry.key) && !actor.is_admin() && entry.value.is_some() {
        Value::String("[redacted]".into())
    } else {
        json!(entry.value)
    };
    json!({"id": entry.id, "key": entry.key, "value": value})
}

fn check_key(key: &str) -> AdminResult<()> {
    let valid = !key.is_empty() && key.len() <= 128 && key.chars().all(|c| c.is_ascii_graphic());
    if valid { Ok(()) } else { Err(AdminError::field("key", "must be 1 to 128 printable ASCII characters")) }
}

fn update_error(error: UpdateError) -> AdminError {
    match error {
        UpdateError::Invalid(problems) => {
            AdminError::Invalid(problems.into_iter().map(|(key, message)| (key, vec![message])).collect())
        }
        UpdateError::Store(error) => error.into(),
    }
}

async fn snapshot(state: &ApiState, keys: &[&String]) -> AdminResult<Value> {
    let mut values = serde_json::Map::new();
    for key in keys {
        let entry = state.store.get_config(key).await?;
        let value = entry.and_then(|entry| entry.value);
        let shown = if is_secret(key) && value.is_some() { json!("[redacted]") } else { json!(value) };
        values.insert((*key).clone(), shown);
    }
    Ok(Value::Object(values))
}

/// Validates and writes `updates`, auditing before and after.
async fn write(state: &ApiState, actor: &Actor, updates: BTreeMap<String, Option<String>>) -> AdminResult<()> {
    for key in updates.keys() {
        check_key(key)?;
    }
    let keys: Vec<&String> = updates.keys().collect();
    let before = snapshot(state, &keys).await?;
    state.event.update(&updates).await.map_err(update_error)?;
    let after = snapshot(state, &keys).await?;
    let target = if keys.len() == 1 { keys.first().map(|key| (*key).clone()) } else { None };
    audit::record(state, actor, "update", "config", target, Some(&before), Some(&after)).await;
    Ok(())
}

async fn list(State(state): State<ApiState>, actor: Actor, query: QueryParams) -> AdminResult<Response> {
    let mut data = Vec::new();
    for entry in state.store.list_config().await? {
        let value_text = entry.value.clone().unwrap_or_default();
        if query.text("key").is_some_and(|key| key != entry.key)
            || query.text("value").is_some_and(|value| value != value_text)
        {
            continue;
        }
        if let Some(needle) = query.text("q") {
            let haystack = match query.text("field").unwrap_or("key") {
                "key" => &entry.key,
                "value" => &value_text,
                _ => return Err(AdminError::field("field", "must be key or value")),
            };
            if !haystack.to_lowercase().contains(&needle.to_lowercase()) {
                continue;
            }
        }
        data.push(view(&entry, &actor));
    }
    Ok(ok(data))
}

async fn create(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    let mut fields = Fields::new(&body);
    let key = fields.required_text("key", 128);
    if !fields.has("value") {
        fields.error("value", "is required");
    }
    fields.finish()?;
    let key = key.unwrap_or_default();
    let value = body.get("value").and_then(value_as_text);
    write(&state, &actor, BTreeMap::from([(key.clone(), value)])).await?;
    let entry = state.store.get_config(&key).await?.ok_or(AdminError::NotFound)?;
    Ok(ok(view(&entry, &actor)))
}

/// `PATCH /api/v1/configs {"key": value, ...}`: all or nothing.
async fn bulk_update(State(state): State<ApiState>, actor: Actor, JsonBody(body): JsonBody) -> AdminResult<Response> {
    if body.is_empty() {
        return Err(AdminError::field("body", "give at least one key"));
    }
    let updates: BTreeMap<String, Option<String>> =
        body.iter().map(|(key, value)| (key.clone(), value_as_text(value))).collect();
    write(&state, &actor, updates).await?;
    Ok(done())
}

async fn get(State(state): State<ApiState>, actor: Actor, TextPath(key): TextPath) -> AdminResult<Response> {
    let entry = state.store.get_config(&key).await?.ok_or(AdminError::NotFound)?;
    Ok(ok(view(&entry, &actor)))
}

/// `PATCH /api/v1/configs/{key} {value}` (upsert).
async fn update(
    State(state): State<ApiState>,
    actor: Actor,
    TextPath(key): TextPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    if !body.contains_key("value") {
        return Err(AdminError::field("value", "is required"));
    }
    let value = body.get("value").and_then(value_as_text);
    write(&state, &actor, BTreeMap::from([(key.clone(), value)])).await?;
    let entry = state.store.get_config(&key).await?.ok_or(AdminError::NotFound)?;
    Ok(ok(view(&entry, &actor)))
}

async fn delete(State(state): State<ApiState>, actor: Actor, TextPath(key): TextPath) -> AdminResult<Response> {
    let before = snapshot(&state, &[&key]).await?;
    if !state.event.remove(&key).await.map_err(update_error)? {
        return Err(AdminError::NotFound);
    }
    audit::record(&state, &actor, "delete", "config", Some(key), Some(&before), None).await;
    Ok(done())
}
