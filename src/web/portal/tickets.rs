//! Tickets (ask the organizers), notifications (list and the live SSE stream).

use askama::Template;
use axum::Form;
use axum::extract::Path;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{PageResult, Session, short_time, text};
use crate::web::Layout;

/// A ticket as shown.
pub struct TicketView {
    id: i64,
    title: String,
    kind: String,
    status: String,
    date: String,
    description: String,
    reply: String,
    replier: String,
}

fn ticket(value: &Value) -> TicketView {
    let field = |name: &str| text(value.get(name).unwrap_or(&Value::Null));
    TicketView {
        id: value.get("id").and_then(Value::as_i64).unwrap_or_default(),
        title: field("title"),
        kind: field("type"),
        status: field("status"),
        date: short_time(value.get("date").unwrap_or(&Value::Null)),
        description: field("description"),
        reply: field("replierMessage"),
        replier: field("replierName"),
    }
}

#[derive(Template)]
#[template(path = "portal/tickets.html")]
struct TicketsPage {
    layout: Layout,
    tickets: Vec<TicketView>,
}

/// `GET /tickets`.
pub async fn list(session: Session) -> PageResult {
    session.require()?;
    let reply = session.get("/api/Ticket/tickets-user").await;
    if reply.status == StatusCode::UNAUTHORIZED {
        return Err(session.read_failed(&reply));
    }
    let tickets = reply
        .body
        .get("tickets")
        .and_then(Value::as_array)
        .map(|list| list.iter().rev().map(ticket).collect())
        .unwrap_or_default();
    Ok(session.page(&TicketsPage { layout: session.layout("Tickets"), tickets }))
}

/// The new-ticket form.
#[derive(Debug, Deserialize)]
pub struct TicketForm {
    csrf: String,
    #[serde(default)]
    title: String,
    #[serde(default)]
    kind: String,
    #[serde(default)]
    description: String,
}

/// `POST /tickets`.
pub async fn create(session: Session, Form(form): Form<TicketForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require()?;
    let kind = match form.kind.as_str() {
        "Error" | "Inform" => form.kind.clone(),
        _ => "Question".to_owned(),
    };
    let body = json!({"title": form.title, "type": kind, "description": form.description});
    let reply = session.post("/api/Ticket/sendticket", &body).await;
    if reply.ok() {
        return Ok(session.redirect_with("/tickets", crate::web::Flash::ok("Ticket sent to the organizers.")));
    }
    Ok(session.after(&reply, "/tickets"))
}

#[derive(Template)]
#[template(path = "portal/ticket.html")]
struct TicketPage {
    layout: Layout,
    ticket: TicketView,
}

/// `GET /tickets/{id}`.
pub async fn show(session: Session, Path(id): Path<i64>) -> PageResult {
    session.require()?;
    let reply = session.get_owned(format!("/api/Ticket/tickets/{id}")).await;
    if !reply.ok() {
        // The contract answers someone else's ticket with 401; that is not a dead session.
        let status = if reply.status == StatusCode::UNAUTHORIZED { StatusCode::FORBIDDEN } else { reply.status };
        return Err(session.error(status, reply.message()));
    }
    let ticket = ticket(reply.data());
    Ok(session.page(&TicketPage { layout: session.layout(&ticket.title), ticket }))
}

/// `POST /tickets/{id}/delete`.
pub async fn delete(session: Session, Path(id): Path<i64>, Form(form): Form<super::account::CsrfForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require()?;
    let reply = session.api(Method::DELETE, &format!("/api/Ticket/tickets/{id}"), None).await;
    Ok(session.after(&reply, "/tickets"))
}

struct NotificationView {
    title: String,
    content: String,
    date: String,
}

#[derive(Template)]
#[template(path = "portal/notifications.html")]
struct NotificationsPage {
    layout: Layout,
    notifications: Vec<NotificationView>,
}

/// `GET /notifications` (new ones arrive live through `/events`).
pub async fn notifications(session: Session) -> PageResult {
    session.require()?;
    let reply = session.get("/api/Notifications").await;
    if !reply.ok() {
        return Err(session.read_failed(&reply));
    }
    let mut notifications: Vec<NotificationView> = reply
        .data()
        .as_array()
        .map(|list| {
            list.iter()
                .map(|item| NotificationView {
                    title: text(item.get("title").unwrap_or(&Value::Null)),
                    content: text(item.get("content").unwrap_or(&Value::Null)),
                    date: short_time(item.get("date").unwrap_or(&Value::Null)),
                })
                .collect()
        })
        .unwrap_or_default();
    notifications.reverse();
    Ok(session.page(&NotificationsPage { layout: session.layout("Notifications"), notifications }))
}

/// `GET /events`: the contestant notification stream (SSE) for the session cookie.
pub async fn events(session: Session) -> Response {
    if session.player.is_none() {
        return session.finish(StatusCode::UNAUTHORIZED.into_response());
    }
    session
        .portal
        .api
        .raw(&session.caller, Method::GET, "/api/Notifications/stream", session.token.as_deref(), None)
        .await
}
