//! Submissions (filter, mark correct/incorrect, delete, export), the scoreboard (live and
//! frozen views, freeze, CSV and CTFtime JSON export), statistics with server-rendered SVG
//! charts, and notifications (compose; the contestant API's stream pushes them live).

use std::collections::HashMap;

use axum::extract::{Extension, Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::{Fields, field, items, when};
use crate::api::ApiState;
use crate::api::admin::Access;
use crate::event::UserMode;
use crate::web::admin::FlashQuery;
use crate::web::admin::charts::bar_chart;
use crate::web::admin::csv::{csv_download, download};
use crate::web::admin::dispatch::AdminApi;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{
    Block, Button, Cell, Field, Form as UiForm, Page, Table, UiError, UiResult, redirect_with,
};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    router
        .route("/admin/submissions", get(submissions))
        .route("/admin/submissions.csv", get(submissions_csv))
        .route("/admin/submissions/{id}", post(judge))
        .route("/admin/scoreboard", get(scoreboard))
        .route("/admin/scoreboard/freeze", post(freeze))
        .route("/admin/scoreboard.csv", get(scoreboard_csv))
        .route("/admin/scoreboard/ctftime.json", get(scoreboard_ctftime))
        .route("/admin/statistics", get(statistics))
        .route("/admin/notifications", get(notifications).post(notify))
}

#[derive(Debug, Default, Deserialize)]
struct SubmissionQuery {
    #[serde(rename = "type")]
    kind: Option<String>,
    challenge_id: Option<String>,
    team_id: Option<String>,
    user_id: Option<String>,
    page: Option<i64>,
    ok: Option<String>,
    err: Option<String>,
}

impl SubmissionQuery {
    fn api_query(&self, page: i64) -> String {
        let mut query = format!("?per_page=100&page={page}");
        for (key, value) in [
            ("type", &self.kind),
            ("challenge_id", &self.challenge_id),
            ("team_id", &self.team_id),
            ("user_id", &self.user_id),
        ] {
            if let Some(value) = value.as_deref().map(str::trim).filter(|value| !value.is_empty()) {
                query.push_str(&format!("&{key}={}", super::encode(value)));
            }
        }
        query
    }
}

const SUBMISSION_COLUMNS: &[&str] = &["Id", "Date", "Challenge", "User", "Team", "Type", "Provided"];

fn submission_row(entry: &Value) -> Vec<String> {
    vec![
        field(entry, "id"),
        field(entry, "date"),
        field(entry, "challenge_id"),
        field(entry, "user_id"),
        field(entry, "team_id"),
        field(entry, "type"),
        field(entry, "provided"),
    ]
}

async fn submissions(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Query(query): Query<SubmissionQuery>,
) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let page_number = query.page.unwrap_or(1).max(1);
    let list = api.get(&staff, &format!("/api/v1/submissions{}", query.api_query(page_number))).await?;
    let flash = FlashQuery { ok: query.ok.clone(), err: query.err.clone() };
    let mut page = Page::new(&staff, "Submissions", "/admin/submissions").flash(&flash);
    page.push(Block::Form(
        UiForm::filter("/admin/submissions")
            .field(Field::select(
                "type",
                "Result",
                query.kind.clone().unwrap_or_default(),
                &[("", "All"), ("correct", "Correct"), ("incorrect", "Incorrect")],
            ))
            .field(Field::new("number", "challenge_id", "Challenge id", query.challenge_id.clone().unwrap_or_default()))
            .field(Field::new("number", "team_id", "Team id", query.team_id.clone().unwrap_or_default()))
            .field(Field::new("number", "user_id", "User id", query.user_id.clone().unwrap_or_default())),
    ));
    page.push(Block::Links(vec![
        ("Export CSV".into(), format!("/admin/submissions.csv{}", query.api_query(1))),
        ("Next page".into(), format!("/admin/submissions{}", query.api_query(page_number + 1))),
    ]));
    let write = staff.can(Access::Write);
    let mut columns = SUBMISSION_COLUMNS.to_vec();
    columns.push("");
    let mut table = Table::new("Submissions", &columns);
    for entry in items(&list) {
        let id = field(entry, "id");
        let action = format!("/admin/submissions/{id}");
        let mut cells: Vec<Cell> = submission_row(entry).into_iter().map(Cell::text).collect();
        if let Some(provided) = cells.last_mut() {
            provided.code = true;
        }
        let mut buttons = Vec::new();
        if write {
            let correct = field(entry, "type") == "correct";
            let op = if correct { "incorrect" } else { "correct" };
            buttons.push(Button::new(format!("Mark {op}"), &action, &[("op", op)]));
            buttons.push(Button::new("Delete", &action, &[("op", "delete")]).danger());
        }
        cells.push(Cell::buttons(buttons));
        table.row(cells);
    }
    page.push(Block::Table(table));
    Ok(page)
}

async fn submissions_csv(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Query(query): Query<SubmissionQuery>,
) -> UiResult<Response> {
    staff.require(Access::Read)?;
    let mut rows = Vec::new();
    for page in 1..=1000 {
        let list = api.get(&staff, &format!("/api/v1/submissions{}", query.api_query(page))).await?;
        let entries = items(&list);
        rows.extend(entries.iter().map(submission_row));
        if entries.len() < 100 {
            break;
        }
    }
    Ok(csv_download("submissions.csv", SUBMISSION_COLUMNS, &rows))
}

async fn judge(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let path = format!("/api/v1/submissions/{id}");
    let outcome = match fields.get("op") {
        Some(kind @ ("correct" | "incorrect")) => {
            api.change(&staff, Method::PATCH, &path, &json!({"type": kind}), "Submission updated").await?
        }
        Some("delete") => api.change(&staff, Method::DELETE, &path, &json!({}), "Submission deleted").await?,
        _ => return Err(UiError::bad_request("op must be correct, incorrect or delete")),
    };
    Ok(redirect_with("/admin/submissions", outcome))
}

#[derive(Debug, Default, Deserialize)]
struct BoardQuery {
    view: Option<String>,
    ok: Option<String>,
    err: Option<String>,
}

/// (position, name, score) of the live board, or of the board at the freeze time.
async fn standings(state: &ApiState, frozen: bool) -> Result<Vec<(usize, String, i64)>, UiError> {
    let config = state.event.current();
    let until = (frozen && config.freeze > 0).then_some(config.freeze);
    let rows = state.store.standings(config.user_mode == UserMode::Teams, until).await?;
    Ok(rows.into_iter().enumerate().map(|(index, row)| (index + 1, row.name, row.score)).collect())
}

async fn scoreboard(State(state): State<ApiState>, staff: Staff, Query(query): Query<BoardQuery>) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let frozen = query.view.as_deref() == Some("frozen");
    let flash = FlashQuery { ok: query.ok.clone(), err: query.err.clone() };
    let mut page = Page::new(&staff, "Scoreboard", "/admin/scoreboard").flash(&flash);
    let config = state.event.current();
    let freeze = if config.freeze > 0 { when(Some(config.freeze)) + " UTC" } else { "not set".into() };
    page.push(Block::Stats(vec![
        ("View".into(), if frozen { "Frozen (what players see)".into() } else { "Live".into() }),
        ("Freeze time".into(), freeze),
    ]));
    let suffix = if frozen { "?view=frozen" } else { "" };
    page.push(Block::Links(vec![
        ("Live view".into(), "/admin/scoreboard".into()),
        ("Frozen view".into(), "/admin/scoreboard?view=frozen".into()),
        ("Export CSV".into(), format!("/admin/scoreboard.csv{suffix}")),
        ("Export CTFtime JSON".into(), format!("/admin/scoreboard/ctftime.json{suffix}")),
    ]));
    if staff.can(Access::Write) {
        page.push(Block::Buttons(vec![
            Button::new("Freeze now", "/admin/scoreboard/freeze", &[("op", "freeze")]),
            Button::new("Unfreeze", "/admin/scoreboard/freeze", &[("op", "unfreeze")]).danger(),
        ]));
    }
    let mut table = Table::new(if frozen { "Frozen standings" } else { "Live standings" }, &["Place", "Name", "Score"]);
    for (place, name, score) in standings(&state, frozen).await? {
        table.row(vec![Cell::text(place), Cell::text(name), Cell::text(score)]);
    }
    page.push(Block::Table(table));
    Ok(page)
}

async fn freeze(Extension(api): Extension<AdminApi>, staff: Staff, Form(fields): Form<Fields>) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let (value, done) = match fields.get("op") {
        Some("unfreeze") => (String::new(), "Scoreboard unfrozen"),
        _ => (chrono::Utc::now().timestamp().to_string(), "Scoreboard frozen"),
    };
    let outcome = api.change(&staff, Method::PATCH, "/api/v1/configs", &json!({"freeze": value}), done).await?;
    Ok(redirect_with("/admin/scoreboard", outcome))
}

async fn scoreboard_csv(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<BoardQuery>,
) -> UiResult<Response> {
    staff.require(Access::Read)?;
    let rows: Vec<Vec<String>> = standings(&state, query.view.as_deref() == Some("frozen"))
        .await?
        .into_iter()
        .map(|(place, name, score)| vec![place.to_string(), name, score.to_string()])
        .collect();
    Ok(csv_download("scoreboard.csv", &["place", "name", "score"], &rows))
}

/// The CTFtime scoreboard feed: `{"standings": [{"pos", "team", "score"}]}`.
async fn scoreboard_ctftime(
    State(state): State<ApiState>,
    staff: Staff,
    Query(query): Query<BoardQuery>,
) -> UiResult<Response> {
    staff.require(Access::Read)?;
    let standings: Vec<Value> = standings(&state, query.view.as_deref() == Some("frozen"))
        .await?
        .into_iter()
        .map(|(place, name, score)| json!({"pos": place, "team": name, "score": score}))
        .collect();
    let body = serde_json::to_string_pretty(&json!({"standings": standings})).map_err(UiError::internal)?;
    Ok(download("ctftime.json", "application/json", body))
}

async fn statistics(State(state): State<ApiState>, staff: Staff) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let mut page = Page::new(&staff, "Statistics", "/admin/statistics");
    let challenges = state.store.list_challenges().await?;
    let solves = state.store.solve_counts().await?;
    let mut bars: Vec<(String, i64)> = challenges
        .iter()
        .map(|challenge| (challenge.spec.name.clone(), solves.get(&challenge.id).copied().unwrap_or(0)))
        .collect();
    bars.sort_by_key(|bar| std::cmp::Reverse(bar.1));
    page.push(Block::Chart(bar_chart("Solves per challenge", &bars)));
    let mut categories: HashMap<String, i64> = HashMap::new();
    for challenge in &challenges {
        *categories.entry(challenge.spec.category.clone()).or_default() += 1;
    }
    let mut categories: Vec<(String, i64)> = categories.into_iter().collect();
    categories.sort();
    page.push(Block::Chart(bar_chart("Challenges per category", &categories)));
    let standings = standings(&state, false).await?;
    let top: Vec<(String, i64)> = standings.into_iter().take(10).map(|(_, name, score)| (name, score)).collect();
    page.push(Block::Chart(bar_chart("Top 10 scores", &top)));
    Ok(page)
}

async fn notifications(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Query(flash): Query<FlashQuery>,
) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let list = api.get(&staff, "/api/v1/notifications").await?;
    let mut page = Page::new(&staff, "Notifications", "/admin/notifications").flash(&flash);
    if staff.can(Access::Write) {
        page.push(Block::Form(
            UiForm::post("Send a notification to every player", "/admin/notifications", "Send")
                .field(Field::new("text", "title", "Title", "").required())
                .field(Field::new("textarea", "content", "Message", "").required()),
        ));
    }
    let mut table = Table::new("Sent notifications", &["Id", "Date", "Title", "Message"]);
    for entry in items(&list).iter().rev() {
        table.row(vec![
            Cell::text(field(entry, "id")),
            Cell::text(field(entry, "date")),
            Cell::text(field(entry, "title")),
            Cell::text(field(entry, "content")),
        ]);
    }
    page.push(Block::Table(table));
    Ok(page)
}

async fn notify(Extension(api): Extension<AdminApi>, staff: Staff, Form(fields): Form<Fields>) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let body = json!({"title": fields.raw("title"), "content": fields.raw("content"), "type": "toast"});
    let outcome = api.change(&staff, Method::POST, "/api/v1/notifications", &body, "Notification sent").await?;
    Ok(redirect_with("/admin/notifications", outcome))
}
