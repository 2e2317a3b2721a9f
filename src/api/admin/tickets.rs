//! Tickets (`/api/v1/tickets`, an fctf addition): the jury's desk for answering players'
//! questions. Jury and admins list, read and answer; only admins delete.

use axum::extract::State;
use axum::response::Response;
use serde_json::{Value, json};

use super::auth::{Access, Actor};
use super::error::{AdminError, AdminResult};
use super::input::{Fields, IdPath, JsonBody, QueryParams};
use super::reply::{done, iso, ok};
use super::{Table, Verb, audit};
use crate::api::ApiState;
use crate::domain::UserId;
use crate::store::Ticket;

pub(super) fn routes(table: Table, desk: Access, write: Access) -> Table {
    use Verb::{Delete, Get, Patch};
    table
        .add(Get, "/api/v1/tickets", desk, list_tickets)
        .add(Get, "/api/v1/tickets/{id}", desk, get_ticket)
        .add(Patch, "/api/v1/tickets/{id}", desk, reply_ticket)
        .add(Delete, "/api/v1/tickets/{id}", write, delete_ticket)
}

fn ticket_view(ticket: &Ticket) -> Value {
    json!({
        "id": ticket.id,
        "author_id": ticket.ticket.author_id,
        "title": ticket.ticket.title,
        "type": ticket.ticket.kind,
        "description": ticket.ticket.description,
        "status": ticket.status,
        "replier_id": ticket.replier_id,
        "replier_message": ticket.replier_message,
        "created": iso(ticket.created),
        "updated": iso(ticket.updated),
    })
}

/// `GET /api/v1/tickets?status=&author_id=`.
async fn list_tickets(State(state): State<ApiState>, query: QueryParams) -> AdminResult<Response> {
    let author = query.int("author_id")?.map(UserId);
    let tickets = state.store.list_tickets(author).await?;
    let data: Vec<Value> = tickets
        .iter()
        .filter(|ticket| query.text("status").is_none_or(|status| status.eq_ignore_ascii_case(&ticket.status)))
        .map(ticket_view)
        .collect();
    Ok(ok(data))
}

async fn get_ticket(State(state): State<ApiState>, IdPath(id): IdPath) -> AdminResult<Response> {
    Ok(ok(ticket_view(&state.store.get_ticket(id).await?)))
}

/// `PATCH /api/v1/tickets/{id}` `{replier_message, status?}` (status defaults to `answered`).
async fn reply_ticket(
    State(state): State<ApiState>,
    actor: Actor,
    IdPath(id): IdPath,
    JsonBody(body): JsonBody,
) -> AdminResult<Response> {
    let current = state.store.get_ticket(id).await?;
    let mut fields = Fields::new(&body);
    let message = fields.required_text("replier_message", 65_535);
    let status = fields.choice("status", &["open", "answered", "closed"]).set().unwrap_or_else(|| "answered".into());
    fields.finish()?;
    let message = message.unwrap_or_default();
    if !state.store.reply_ticket(id, actor.user_id, &message, &status).await? {
        return Err(AdminError::NotFound);
    }
    let updated = state.store.get_ticket(id).await?;
    let (before, after) = (ticket_view(&current), ticket_view(&updated));
    audit::record(&state, &actor, "reply", "ticket", Some(id.to_string()), Some(&before), Some(&after)).await;
    Ok(ok(after))
}

async fn delete_ticket(State(state): State<ApiState>, actor: Actor, IdPath(id): IdPath) -> AdminResult<Response> {
    let current = state.store.get_ticket(id).await?;
    if !state.store.delete_ticket(id).await? {
        return Err(AdminError::NotFound);
    }
    audit::record(&state, &actor, "delete", "ticket", Some(id.to_string()), Some(&ticket_view(&current)), None).await;
    Ok(done())
}
