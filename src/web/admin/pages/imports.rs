//! `/admin/import`: bulk creation of users or teams from a CSV file (uploaded or pasted), and
//! the credentials of the imported accounts.
//!
//! The file goes unchanged to `POST /api/v1/import/csv` (see `api::admin::imports` for the
//! columns and rules): every row is checked, and when any row has a problem nothing is
//! imported and the page lists every problem by row number, with the form ready for the fixed
//! file. After an import, the page shows each new account with the password generated for it
//! and offers them as a CSV download carried inside the page (a `data:` URL). That answer is
//! the only time the passwords exist in readable form: nothing is kept on the server, the page
//! is not cached (`no-store`), and reloading it cannot show them again.

use axum::Router;
use axum::body::Body;
use axum::extract::{DefaultBodyLimit, Extension, Multipart, Query, State};
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;
use serde_json::Value;

use super::{field, items};
use crate::api::ApiState;
use crate::api::admin::Access;
use crate::api::admin::imports::MAX_CSV_BYTES;
use crate::api::admin::imports::rows::Kind;
use crate::web::admin::csv::{csv_download, to_csv};
use crate::web::admin::dispatch::AdminApi;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{Block, Cell, Field, Flash, Form as UiForm, Page, Table, UiError, UiResult, render};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    router
        .route("/admin/import", get(form).post(upload).layer(DefaultBodyLimit::max(MAX_CSV_BYTES + 64 * 1024)))
        .route("/admin/import/template.csv", get(template))
}

#[derive(Debug, Default, Deserialize)]
struct KindQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
}

fn kind_name(kind: Kind) -> &'static str {
    match kind {
        Kind::Users => "users",
        Kind::Teams => "teams",
    }
}

/// The import page: explanations, templates and the upload form.
fn import_page(staff: &Staff, kind: Kind, pasted: &str) -> Page {
    let mut page = Page::new(staff, "Import users or teams", "/admin/users");
    page.push(Block::Text(
        "Upload a CSV file with a header row. Every row is checked first: if any row has a problem, nothing is \
         imported and each problem is listed with its row number, so you can fix the file and upload it again."
            .into(),
    ));
    page.push(Block::Text(format!(
        "Users: {}. A user's team is joined, or created when no team has that name; the first imported member of \
         a new team becomes its captain. Users without a password get a generated one, shown once after the import.",
        Kind::Users.columns().join(", ")
    )));
    page.push(Block::Text(format!(
        "Teams: {}. Add a column named like a custom field to fill it. Yes/no columns accept true/false, yes/no or \
         1/0; bracket is a bracket's name or id.",
        Kind::Teams.columns().join(", ")
    )));
    page.push(Block::Links(vec![
        ("Users template (CSV)".into(), "/admin/import/template.csv?type=users".into()),
        ("Teams template (CSV)".into(), "/admin/import/template.csv?type=teams".into()),
    ]));
    page.push(Block::Form(
        UiForm { multipart: true, ..UiForm::post("Import", "/admin/import", "Import") }
            .field(Field::select(
                "type",
                "Accounts in the file",
                kind_name(kind),
                &[("users", "Users"), ("teams", "Teams")],
            ))
            .field(Field::new("file", "file", "CSV file", "").help("UTF-8 or Windows-1252, at most 4 MiB"))
            .field(Field::new("textarea", "csv", "Or paste the CSV here", pasted)),
    ));
    page
}

async fn form(staff: Staff, Query(query): Query<KindQuery>) -> UiResult<Page> {
    staff.require(Access::Write)?;
    let kind = query.kind.as_deref().and_then(Kind::parse).unwrap_or(Kind::Users);
    Ok(import_page(&staff, kind, ""))
}

/// `GET /admin/import/template.csv?type=users|teams`: the header row, custom fields included.
async fn template(State(state): State<ApiState>, staff: Staff, Query(query): Query<KindQuery>) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let kind = query.kind.as_deref().and_then(Kind::parse).unwrap_or(Kind::Users);
    let custom = state.store.list_fields(Some(kind.field_kind())).await?;
    let mut header: Vec<&str> = kind.columns().to_vec();
    header.extend(custom.iter().map(|custom| custom.field.name.as_str()));
    Ok(csv_download(&format!("{}-template.csv", kind_name(kind)), &header, &[]))
}

fn with_flash(mut page: Page, error: bool, text: impl Into<String>) -> Page {
    page.flash = Some(Flash { error, text: text.into() });
    page
}

async fn upload(Extension(api): Extension<AdminApi>, staff: Staff, mut multipart: Multipart) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let unreadable = |error: axum::extract::multipart::MultipartError| UiError::bad_request(error.body_text());
    let (mut kind_text, mut file, mut pasted) = (String::new(), Vec::new(), String::new());
    while let Some(part) = multipart.next_field().await.map_err(unreadable)? {
        match part.name() {
            Some("type") => kind_text = part.text().await.map_err(unreadable)?,
            Some("file") => file = part.bytes().await.map_err(unreadable)?.to_vec(),
            Some("csv") => pasted = part.text().await.map_err(unreadable)?,
            _ => {}
        }
    }
    let Some(kind) = Kind::parse(&kind_text) else { return Err(UiError::bad_request("type must be users or teams")) };
    let body = if file.is_empty() { pasted.clone().into_bytes() } else { file };
    if body.iter().all(u8::is_ascii_whitespace) {
        let page = with_flash(import_page(&staff, kind, &pasted), true, "Choose a CSV file or paste its content");
        return Ok(render(&page, StatusCode::BAD_REQUEST));
    }
    let path = format!("/api/v1/import/csv?type={}", kind_name(kind));
    let answer = api.send(&staff, Method::POST, &path, Some("text/csv"), Body::from(body)).await?;
    match answer.status {
        200..=299 => Ok(result_page(&staff, kind, answer.json.get("data").unwrap_or(&Value::Null)).into_response()),
        401 | 403 => Err(UiError::forbidden(answer.message())),
        400..=499 => {
            let mut page = with_flash(import_page(&staff, kind, &pasted), true, answer.message());
            let mut table = Table::new("Problems by row (the header is row 1)", &["Row", "Problems"]);
            for problem in items(answer.json.get("rows").unwrap_or(&Value::Null)) {
                let errors: Vec<String> =
                    items(problem.get("errors").unwrap_or(&Value::Null)).iter().map(super::text).collect();
                table.row(vec![Cell::text(field(problem, "row")), Cell::text(errors.join("; "))]);
            }
            if !table.rows.is_empty() {
                // The problems come first, right under the message.
                page.blocks.insert(0, Block::Table(table));
            }
            Ok(render(&page, StatusCode::BAD_REQUEST))
        }
        status => Err(UiError::internal(format!("account import answered {status}"))),
    }
}

/// The accounts just created, with the generated passwords (shown this once).
fn result_page(staff: &Staff, kind: Kind, data: &Value) -> Page {
    let users = items(data.get("users").unwrap_or(&Value::Null));
    let teams = items(data.get("teams").unwrap_or(&Value::Null));
    let summary = format!("Imported {} user(s) and {} new team(s)", users.len(), teams.len());
    let mut page = with_flash(Page::new(staff, "Import done", "/admin/users"), false, summary);
    if kind == Kind::Users {
        page.push(Block::Text(
            "The generated passwords are shown only on this page, this once: download or copy them now. The server \
             keeps only their hashes."
                .into(),
        ));
        let mut rows = Vec::new();
        let mut table = Table::new("Imported users", &["Id", "Name", "Email", "Team", "Generated password"]);
        for user in users {
            let id = field(user, "id");
            let password = field(user, "password");
            rows.push(vec![field(user, "name"), field(user, "email"), field(user, "team"), password.clone()]);
            table.row(vec![
                Cell::text(&id),
                Cell::link(field(user, "name"), format!("/admin/users/{id}")),
                Cell::text(field(user, "email")),
                Cell::text(field(user, "team")),
                if password.is_empty() { Cell::text("(from the file)") } else { Cell::code(password) },
            ]);
        }
        let credentials = to_csv(&["name", "email", "team", "password"], &rows);
        page.push(Block::download("Download credentials (CSV)", "credentials.csv", "text/csv", &credentials));
        page.push(Block::Table(table));
    }
    let mut table = Table::new("New teams", &["Id", "Name"]);
    for team in teams {
        let id = field(team, "id");
        table.row(vec![Cell::text(&id), Cell::link(field(team, "name"), format!("/admin/teams/{id}"))]);
    }
    if !table.rows.is_empty() || kind == Kind::Teams {
        page.push(Block::Table(table));
    }
    page.push(Block::Links(vec![
        ("Users".into(), "/admin/users".into()),
        ("Teams".into(), "/admin/teams".into()),
        ("Import another file".into(), format!("/admin/import?type={}", kind_name(kind))),
    ]));
    page
}
