//! The ticket desk (`/admin/tickets`: reply, close, delete) and the logs page
//! (`/admin/logs`: audit log with filters and CSV export, contestant action logs, dynamic-flag
//! cheat events).

use axum::extract::{Extension, Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Fields, field, items, when};

use crate::api::ApiState;
use crate::api::admin::Access;
use crate::web::admin::FlashQuery;
use crate::web::admin::csv::csv_download;
use crate::web::admin::dispatch::AdminApi;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{Block, Button, Cell, Field, Form as UiForm, Page, Table, UiResult, redirect_with};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    router
        .route("/admin/tickets", get(tickets))
        .route("/admin/tickets/{id}", get(ticket).post(answer))
        .route("/admin/logs", get(logs))
        .route("/admin/logs/audit.csv", get(audit_csv))
}

#[derive(Debug, Default, Deserialize)]
struct TicketQuery {
    status: Option<String>,
    ok: Option<String>,
    err: Option<String>,
}

async fn tickets(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Query(query): Query<TicketQuery>,
) -> UiResult<Page> {
    staff.require(Access::Tickets)?;
    let status = query.status.as_deref().map(str::trim).filter(|status| !status.is_empty());
    let path = match status {
        Some(status) => format!("/api/v1/tickets?status={}", super::encode(status)),
        None => "/api/v1/tickets".to_owned(),
    };
    let list = api.get(&staff, &path).await?;
    let flash = FlashQuery { ok: query.ok.clone(), err: query.err.clone() };
    let mut page = Page::new(&staff, "Tickets", "/admin/tickets").flash(&flash);
    page.push(Block::Form(UiForm::filter("/admin/tickets").field(Field::select(
        "status",
        "Status",
        status.unwrap_or(""),
        &[("", "All"), ("open", "Open"), ("answered", "Answered"), ("closed", "Closed")],
    ))));
    let mut table = Table::new("Tickets", &["Id", "Title", "Type", "Author", "Status", "Created"]);
    for entry in items(&list).iter().rev() {
        let id = field(entry, "id");
        table.row(vec![
            Cell::text(&id),
            Cell::link(field(entry, "title"), format!("/admin/tickets/{id}")),
            Cell::text(field(entry, "type")),
            Cell::text(field(entry, "author_id")),
            Cell::text(field(entry, "status")),
            Cell::text(field(entry, "created")),
        ]);
    }
    page.push(Block::Table(table));
    Ok(page)
}

async fn ticket(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(flash): Query<FlashQuery>,
) -> UiResult<Page> {
    staff.require(Access::Tickets)?;
    let entry = api.get(&staff, &format!("/api/v1/tickets/{id}")).await?;
    let mut page =
        Page::new(&staff, format!("Ticket {id}: {}", field(&entry, "title")), "/admin/tickets").flash(&flash);
    page.push(Block::Stats(vec![
        ("Status".into(), field(&entry, "status")),
        ("Type".into(), field(&entry, "type")),
        ("Author".into(), field(&entry, "author_id")),
        ("Created".into(), field(&entry, "created")),
    ]));
    page.push(Block::Heading("Question".into()));
    page.push(Block::Pre { id: "question".into(), text: field(&entry, "description") });
    let reply = field(&entry, "replier_message");
    if !reply.is_empty() {
        page.push(Block::Heading("Answer".into()));
        page.push(Block::Pre { id: "answer".into(), text: reply.clone() });
    }
    page.push(Block::Form(
        UiForm::post("Reply", format!("/admin/tickets/{id}"), "Send reply")
            .field(Field::new("hidden", "op", "", "reply"))
            .field(Field::new("textarea", "replier_message", "Answer", reply).required())
            .field(Field::select(
                "status",
                "Then mark it",
                "answered",
                &[("answered", "Answered"), ("closed", "Closed")],
            )),
    ));
    if staff.can(Access::Write) {
        page.push(Block::Buttons(vec![
            Button::new("Delete ticket", format!("/admin/tickets/{id}"), &[("op", "delete")]).danger(),
        ]));
    }
    Ok(page)
}

async fn answer(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Tickets)?;
    let path = format!("/api/v1/tickets/{id}");
    if fields.get("op") == Some("delete") {
        staff.require(Access::Write)?;
        return match api.change(&staff, Method::DELETE, &path, &json!({}), "Ticket deleted").await? {
            Ok(done) => Ok(redirect_with("/admin/tickets", Ok(done))),
            Err(error) => Ok(redirect_with(&path.replace("/api/v1", "/admin"), Err(error))),
        };
    }
    let body =
        json!({"replier_message": fields.raw("replier_message"), "status": fields.get("status").unwrap_or("answered")});
    let outcome = api.change(&staff, Method::PATCH, &path, &body, "Reply sent").await?;
    Ok(redirect_with(&format!("/admin/tickets/{id}"), outcome))
}

#[derive(Debug, Default, Deserialize)]
struct AuditQuery {
    actor_id: Option<String>,
    target_type: Option<String>,
}

impl AuditQuery {
    fn api_query(&self) -> String {
        let mut query = "?per_page=100".to_owned();
        for (key, value) in [("actor_id", &self.actor_id), ("target_type", &self.target_type)] {
            if let Some(value) = value.as_deref().map(str::trim).filter(|value| !value.is_empty()) {
                query.push_str(&format!("&{key}={}", super::encode(value)));
            }
        }
        query
    }
}

const AUDIT_COLUMNS: &[&str] = &["Id", "Date", "Actor", "Role", "Action", "Target", "Target id", "IP"];

fn audit_row(entry: &Value) -> Vec<String> {
    vec![
        field(entry, "id"),
        field(entry, "date"),
        field(entry, "actor_name"),
        field(entry, "actor_role"),
        field(entry, "action"),
        field(entry, "target_type"),
        field(entry, "target_id"),
        field(entry, "ip"),
    ]
}

async fn logs(
    State(state): State<ApiState>,
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Query(query): Query<AuditQuery>,
) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let mut page = Page::new(&staff, "Logs", "/admin/logs");
    page.push(Block::Heading("Audit log".into()));
    page.push(Block::Form(
        UiForm::filter("/admin/logs")
            .field(Field::new("number", "actor_id", "Actor id", query.actor_id.clone().unwrap_or_default()))
            .field(Field::new("text", "target_type", "Target type", query.target_type.clone().unwrap_or_default())),
    ));
    page.push(Block::Links(vec![("Export audit CSV".into(), format!("/admin/logs/audit.csv{}", query.api_query()))]));
    let audit = api.get(&staff, &format!("/api/v1/audit{}", query.api_query())).await?;
    let mut table = Table::new("Audit log", AUDIT_COLUMNS);
    for entry in items(&audit).iter().take(100) {
        table.row(audit_row(entry).into_iter().map(Cell::text).collect());
    }
    page.push(Block::Table(table));

    page.push(Block::Heading("Contestant actions".into()));
    let actions = state.store.list_action_logs(None, None, 100).await?;
    let mut table = Table::new("Latest contestant actions", &["Date", "User", "Team", "Type", "Detail"]);
    for action in actions {
        table.row(vec![
            Cell::text(when(Some(action.date))),
            Cell::text(action.log.user_id.map(|id| id.get().to_string()).unwrap_or_default()),
            Cell::text(action.log.team_id.map(|id| id.get().to_string()).unwrap_or_default()),
            Cell::text(action.log.action_type),
            Cell::text(action.log.action_detail),
        ]);
    }
    page.push(Block::Table(table));

    page.push(Block::Heading("Cheat events (shared dynamic flags)".into()));
    let events = state.store.list_cheat_events(None).await?;
    let mut table = Table::new("Cheat events", &["Date", "Challenge", "Submitting team", "Flag owner team", "IP"]);
    for event in events.into_iter().take(100) {
        table.row(vec![
            Cell::text(when(Some(event.date))),
            Cell::text(event.event.challenge_id.get()),
            Cell::text(event.event.submitting_team_id.map(|id| id.get().to_string()).unwrap_or_default()),
            Cell::text(event.event.owner_team_id.map(|id| id.get().to_string()).unwrap_or_default()),
            Cell::text(event.event.ip.unwrap_or_default()),
        ]);
    }
    page.push(Block::Table(table));
    Ok(page)
}

async fn audit_csv(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Query(query): Query<AuditQuery>,
) -> UiResult<Response> {
    staff.require(Access::Read)?;
    let audit = api.get(&staff, &format!("/api/v1/audit{}", query.api_query())).await?;
    let rows: Vec<Vec<String>> = items(&audit).iter().map(audit_row).collect();
    Ok(csv_download("audit-log.csv", AUDIT_COLUMNS, &rows))
}
