//! Writing the audit log for every admin mutation, and `GET /api/v1/audit`.
//!
//! Entries carry the actor (id, name, role), the action, the target (type and id), JSON
//! snapshots before and after (the same views the API returns, so no password hash or token
//! value ever lands in the log) and the client address.

use axum::response::Response;
use serde_json::{Value, json};

use super::auth::Actor;
use super::error::AdminResult;
use super::input::QueryParams;
use super::reply::{iso, ok};
use crate::api::ApiState;
use crate::domain::UserId;
use crate::store::{AuditQuery, NewAuditEntry};

/// Records one mutation; a failure is logged, never returned (the change already happened).
pub async fn record(
    state: &ApiState,
    actor: &Actor,
    action: &str,
    target_type: &str,
    target_id: Option<String>,
    before: Option<&Value>,
    after: Option<&Value>,
) {
    let entry = NewAuditEntry {
        actor_id: Some(actor.user_id),
        actor_name: actor.name.clone(),
        actor_role: actor.role.as_str().to_owned(),
        action: action.to_owned(),
        target_type: target_type.to_owned(),
        target_id,
        before_json: before.map(Value::to_string),
        after_json: after.map(Value::to_string),
        ip: actor.ip.clone(),
    };
    if let Err(error) = state.store.append_audit(&entry).await {
        tracing::error!(%error, action, target_type, "could not write the audit log entry");
    }
}

/// `GET /api/v1/audit?actor_id=&target_type=&target_id=&before_id=&limit=` (newest first).
pub async fn list(
    axum::extract::State(state): axum::extract::State<ApiState>,
    query: QueryParams,
) -> AdminResult<Response> {
    let limit = query.int("limit")?.unwrap_or(100).clamp(1, 1000);
    let audit_query = AuditQuery {
        actor_id: query.int("actor_id")?.map(UserId),
        target_type: query.text("target_type").map(str::to_owned),
        target_id: query.text("target_id").map(str::to_owned),
        before_id: query.int("before_id")?,
        limit,
    };
    let entries = state.store.list_audit(&audit_query).await?;
    let data: Vec<Value> = entries
        .into_iter()
        .map(|entry| {
            let parse = |text: Option<String>| {
                text.map(|json| serde_json::from_str::<Value>(&json).unwrap_or(Value::String(json)))
                    .unwrap_or(Value::Null)
            };
            json!({
                "id": entry.id,
                "actor_id": entry.entry.actor_id,
                "actor_name": entry.entry.actor_name,
                "actor_role": entry.entry.actor_role,
                "action": entry.entry.action,
                "target_type": entry.entry.target_type,
                "target_id": entry.entry.target_id,
                "before": parse(entry.entry.before_json),
                "after": parse(entry.entry.after_json),
                "ip": entry.entry.ip,
                "date": iso(entry.date),
            })
        })
        .collect();
    Ok(ok(data))
}
