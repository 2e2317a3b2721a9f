//! Support tickets (contract §2.8): create with near-duplicate detection, list, view, delete.
//!
//! A new ticket is refused when its description is at least 70 % similar (normalised
//! Levenshtein, `domain::text`) to any earlier ticket of the same author. The comparison and
//! the insert run in one store transaction under the author's row lock, so of N identical
//! tickets sent at once exactly one is created. Deleting is allowed only while the ticket is
//! open and unanswered, decided by one conditional `DELETE`, so of N concurrent deletes exactly
//! one succeeds. Someone else's ticket answers 403 (fctf decision 12).

use axum::extract::{Path, State};
use axum::http::StatusCode;
use serde::Deserialize;
use serde_json::{Value, json};

use super::error::{ApiError, ApiResult, iso_time, iso_time_z, ok, reply};
use super::guards::{ctf_only, now};
use super::session::Player;
use crate::api::ApiState;
use crate::api::json::CiJson;
use crate::domain::text::similarity;
use crate::store::{NewTicket, StoreError, Ticket, TicketOutcome};

/// Similarity at or above which a ticket is a duplicate.
pub const DUPLICATE_THRESHOLD: f64 = 0.7;
/// Longest title, type and description accepted (characters).
const MAX_TITLE: usize = 255;
const MAX_TYPE: usize = 80;
const MAX_DESCRIPTION: usize = 5000;

fn view(ticket: &Ticket, author_name: &str, replier_name: Option<String>, fresh: bool) -> Value {
    json!({
        "id": ticket.id,
        "authorName": author_name,
        "teamName": Value::Null,
        "status": ticket.status,
        "title": ticket.ticket.title,
        "type": ticket.ticket.kind,
        "date": if fresh { iso_time_z(ticket.created) } else { iso_time(ticket.created) },
        "description": ticket.ticket.description,
        "replierName": replier_name,
        "replierMessage": ticket.replier_message,
    })
}

async fn replier_name(state: &ApiState, ticket: &Ticket) -> Option<String> {
    let replier = ticket.replier_id?;
    state.store.get_user(replier).await.ok().map(|user| user.name)
}

fn message(status: StatusCode, text: &str) -> ApiError {
    ApiError::message(status, text)
}

/// `POST /api/Ticket/sendticket` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
pub struct TicketBody {
    title: Option<String>,
    r#type: Option<String>,
    description: Option<String>,
}

/// `POST /api/Ticket/sendticket`.
pub async fn create(State(state): State<ApiState>, player: Player, CiJson(body): CiJson<TicketBody>) -> ApiResult {
    let (Some(title), Some(kind), Some(description)) = (body.title, body.r#type, body.description) else {
        return Err(ApiError::failure(StatusCode::BAD_REQUEST, "The title, type and description fields are required."));
    };
    let config = state.event.current();
    ctf_only(&config, &player, now())?;
    let (title, kind, description) = (title.trim(), kind.trim(), description.trim());
    if title.is_empty() || kind.is_empty() || description.is_empty() {
        return Err(message(StatusCode::BAD_REQUEST, "Missing information"));
    }
    if title.chars().count() > MAX_TITLE
        || kind.chars().count() > MAX_TYPE
        || description.chars().count() > MAX_DESCRIPTION
    {
        return Err(ApiError::failure(StatusCode::BAD_REQUEST, "The ticket is too long"));
    }
    let ticket = NewTicket {
        author_id: player.user_id,
        title: title.to_owned(),
        kind: kind.to_owned(),
        description: description.to_owned(),
    };
    match state.store.create_ticket_unless_similar(&ticket, DUPLICATE_THRESHOLD, similarity).await {
        Ok(TicketOutcome::Created(created)) => {
            tracing::info!(user_id = player.user_id.get(), ticket_id = created.id, "CREATE_TICKET");
            Ok(reply(StatusCode::CREATED, view(&created, player.name(), None, true)))
        }
        Ok(TicketOutcome::Similar) => Err(message(StatusCode::BAD_REQUEST, "You have already sent a similar ticket")),
        Err(StoreError::NotFound) => Err(message(StatusCode::BAD_REQUEST, "User not found")),
        Err(error) => {
            tracing::warn!(%error, "ticket creation failed");
            Err(message(StatusCode::BAD_REQUEST, "An error occurred while creating ticket"))
        }
    }
}

/// `GET /api/Ticket/tickets-user`.
pub async fn mine(State(state): State<ApiState>, player: Player) -> ApiResult {
    let config = state.event.current();
    ctf_only(&config, &player, now())?;
    let tickets = state.store.list_tickets(Some(player.user_id)).await.unwrap_or_default();
    let mut views = Vec::with_capacity(tickets.len());
    for ticket in &tickets {
        let replier = replier_name(&state, ticket).await;
        views.push(view(ticket, player.name(), replier, false));
    }
    ok(json!({"tickets": views}))
}

fn parse_id(text: &str) -> Option<i64> {
    text.trim().parse().ok()
}

/// `GET /api/Ticket/tickets/{id}`.
pub async fn show(State(state): State<ApiState>, player: Player, Path(id): Path<String>) -> ApiResult {
    let config = state.event.current();
    ctf_only(&config, &player, now())?;
    let Some(id) = parse_id(&id) else { return Err(message(StatusCode::NOT_FOUND, "Ticket not found")) };
    let ticket = match state.store.get_ticket(id).await {
        Ok(ticket) => ticket,
        Err(StoreError::NotFound) => return Err(message(StatusCode::NOT_FOUND, "Ticket not found")),
        Err(error) => {
            tracing::warn!(%error, "ticket lookup failed");
            return Err(message(StatusCode::NOT_FOUND, "An error occurred while retrieving ticket"));
        }
    };
    if ticket.ticket.author_id != player.user_id {
        return Err(message(StatusCode::FORBIDDEN, "You don't have permission to view this ticket"));
    }
    let replier = replier_name(&state, &ticket).await;
    ok(
        json!({"success": true, "message": "Success", "httpStatusCode": 0, "data": view(&ticket, player.name(), replier, false)}),
    )
}

/// `DELETE /api/Ticket/tickets/{id}`.
pub async fn delete(State(state): State<ApiState>, player: Player, Path(id): Path<String>) -> ApiResult {
    let config = state.event.current();
    ctf_only(&config, &player, now())?;
    let Some(id) = parse_id(&id) else { return Err(message(StatusCode::BAD_REQUEST, "Ticket not found")) };
    if state.store.delete_open_ticket(id, player.user_id).await? {
        return ok(json!({"message": "Ticket deleted successfully"}));
    }
    // Nothing deleted: say why (the ticket may also have been deleted concurrently).
    match state.store.get_ticket(id).await {
        Err(StoreError::NotFound) => Err(message(StatusCode::BAD_REQUEST, "Ticket not found")),
        Err(error) => Err(error.into()),
        Ok(ticket) if ticket.ticket.author_id != player.user_id => {
            Err(message(StatusCode::BAD_REQUEST, "You don't have permission to delete this ticket"))
        }
        Ok(_) => Err(message(StatusCode::BAD_REQUEST, "Cannot delete ticket that has been replied or closed")),
    }
}
