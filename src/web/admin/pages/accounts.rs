//! `/admin/users` and `/admin/teams`: verify, ban, hide, roles, captain, members, and
//! creating accounts; all through the admin API.

use axum::extract::{Extension, Path, Query};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use super::user::{ROLES, user_toggles};
use super::{Fields, field, flag, items};
use crate::api::ApiState;
use crate::api::admin::Access;
use crate::web::admin::FlashQuery;
use crate::web::admin::dispatch::AdminApi;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{
    Block, Button, Cell, Field, Form as UiForm, Page, Table, UiError, UiResult, redirect_with,
};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    router
        .route("/admin/users", get(users).post(create_user))
        .route("/admin/users/{id}/set", post(set_user))
        .route("/admin/teams", get(teams).post(create_team))
        .route("/admin/teams/{id}", get(team))
        .route("/admin/teams/{id}/set", post(set_team))
        .route("/admin/teams/{id}/members", post(members))
}

#[derive(Debug, Default, Deserialize)]
struct ListQuery {
    q: Option<String>,
    show: Option<String>,
    page: Option<i64>,
    ok: Option<String>,
    err: Option<String>,
}

/// The `show` filter of the lists: (value, label, admin API query).
const SHOW: &[(&str, &str, &str)] = &[
    ("", "Everyone", ""),
    ("pending", "Pending verification", "&verified=false"),
    ("banned", "Banned", "&banned=true"),
    ("hidden", "Hidden", "&hidden=true"),
];

impl ListQuery {
    /// The admin API query: every account (hidden and banned included), filtered.
    fn api_query(&self) -> String {
        let mut query = format!("?view=admin&per_page=100&page={}", self.page.unwrap_or(1).max(1));
        if let Some(needle) = self.q.as_deref().map(str::trim).filter(|needle| !needle.is_empty()) {
            query.push_str(&format!("&field=name&q={}", super::encode(needle)));
        }
        if let Some((_, _, filter)) = SHOW.iter().find(|(value, _, _)| Some(*value) == self.show.as_deref()) {
            query.push_str(filter);
        }
        query
    }

    /// The filter form of a list at `path`.
    fn filter_form(&self, path: &str, with_pending: bool) -> UiForm {
        let choices: Vec<(&str, &str)> = SHOW
            .iter()
            .filter(|(value, _, _)| with_pending || *value != "pending")
            .map(|(value, label, _)| (*value, *label))
            .collect();
        UiForm::filter(path)
            .field(Field::new("search", "q", "Name contains", self.q.clone().unwrap_or_default()))
            .field(Field::select("show", "Show", self.show.clone().unwrap_or_default(), &choices))
    }

    /// Link to the next page, keeping the filters.
    fn next_page(&self, path: &str) -> String {
        let next = self.page.unwrap_or(1).max(1) + 1;
        let q = super::encode(self.q.as_deref().unwrap_or(""));
        let show = super::encode(self.show.as_deref().unwrap_or(""));
        format!("{path}?q={q}&show={show}&page={next}")
    }
    fn flash(&self) -> FlashQuery {
        FlashQuery { ok: self.ok.clone(), err: self.err.clone() }
    }
}

/// Ban / hide toggle buttons of a team.
fn team_toggles(team: &Value) -> Vec<Button> {
    let id = field(team, "id");
    [("banned", "Ban", "Unban"), ("hidden", "Hide", "Unhide")]
        .iter()
        .map(|(key, on, off)| {
            let current = flag(team, key);
            let button = Button::new(
                if current { *off } else { *on },
                format!("/admin/teams/{id}/set"),
                &[(key, if current { "false" } else { "true" })],
            );
            if *key == "banned" && !current { button.danger() } else { button }
        })
        .collect()
}

/// Links to the pages about accounts (the import only for roles that may use it).
fn account_links(staff: &Staff) -> Block {
    let mut links = Vec::new();
    if staff.can(Access::Write) {
        links.push(("Import CSV".to_owned(), "/admin/import".to_owned()));
    }
    for (label, href) in
        [("Brackets", "/admin/brackets"), ("Custom fields", "/admin/fields"), ("Awards", "/admin/awards")]
    {
        links.push((label.to_owned(), href.to_owned()));
    }
    Block::Links(links)
}

async fn users(Extension(api): Extension<AdminApi>, staff: Staff, Query(query): Query<ListQuery>) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let list = api.get(&staff, &format!("/api/v1/users{}", query.api_query())).await?;
    let mut page = Page::new(&staff, "Users", "/admin/users").flash(&query.flash());
    page.push(account_links(&staff));
    page.push(Block::Form(query.filter_form("/admin/users", true)));
    let write = staff.can(Access::Write);
    let mut table = Table::new("Users", &["Id", "Name", "Email", "Role", "Team", "Verified", "Banned", "Hidden", ""]);
    for user in items(&list) {
        let id = field(user, "id");
        let buttons = if write { user_toggles(user, "/admin/users") } else { vec![] };
        let team = field(user, "team_id");
        table.row(vec![
            Cell::text(&id),
            Cell::link(field(user, "name"), format!("/admin/users/{id}")),
            Cell::text(field(user, "email")),
            Cell::text(field(user, "type")),
            if team.is_empty() { Cell::text("") } else { Cell::link(&team, format!("/admin/teams/{team}")) },
            Cell::text(if flag(user, "verified") { "yes" } else { "no" }),
            Cell::text(if flag(user, "banned") { "yes" } else { "no" }),
            Cell::text(if flag(user, "hidden") { "yes" } else { "no" }),
            Cell::buttons(buttons),
        ]);
    }
    page.push(Block::Table(table));
    page.push(Block::Links(vec![("Next page".into(), query.next_page("/admin/users"))]));
    if write {
        page.push(Block::Form(
            UiForm::post("Create an account", "/admin/users", "Create")
                .field(Field::new("text", "name", "Name", "").required())
                .field(Field::new("email", "email", "Email", ""))
                .field(Field::new("password", "password", "Password", "").required())
                .field(Field::select("type", "Role", "user", ROLES))
                .field(Field::checkbox("verified", "Verified", true)),
        ));
    }
    Ok(page)
}

async fn create_user(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let body = json!({
        "name": fields.raw("name"),
        "email": fields.get("email"),
        "password": fields.raw("password"),
        "type": fields.get("type").unwrap_or("user"),
        "verified": fields.checked("verified"),
    });
    let outcome = api.change(&staff, Method::POST, "/api/v1/users", &body, "Account created").await?;
    Ok(redirect_with("/admin/users", outcome))
}

/// Only known boolean keys are forwarded (one per button).
fn boolean_body(fields: &Fields, keys: &[&str]) -> Result<Value, UiError> {
    let mut body = serde_json::Map::new();
    for key in keys {
        if let Some(value) = fields.get(key) {
            body.insert((*key).into(), json!(value == "true"));
        }
    }
    if body.is_empty() {
        return Err(UiError::bad_request("nothing to change"));
    }
    Ok(Value::Object(body))
}

async fn set_user(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let body = boolean_body(&fields, &["verified", "banned", "hidden"])?;
    let outcome = api.change(&staff, Method::PATCH, &format!("/api/v1/users/{id}"), &body, "User updated").await?;
    let back = match fields.get("back") {
        Some(path) if path == format!("/admin/users/{id}") => path.to_owned(),
        _ => "/admin/users".to_owned(),
    };
    Ok(redirect_with(&back, outcome))
}

async fn teams(Extension(api): Extension<AdminApi>, staff: Staff, Query(query): Query<ListQuery>) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let mut page = Page::new(&staff, "Teams", "/admin/teams").flash(&query.flash());
    let list = match api.get(&staff, &format!("/api/v1/teams{}", query.api_query())).await {
        Ok(list) => list,
        Err(error) if error.status.is_client_error() => {
            page.push(Block::Text(error.message));
            return Ok(page);
        }
        Err(error) => return Err(error),
    };
    page.push(account_links(&staff));
    page.push(Block::Form(query.filter_form("/admin/teams", false)));
    let write = staff.can(Access::Write);
    let mut table = Table::new("Teams", &["Id", "Name", "Captain", "Banned", "Hidden", ""]);
    for team in items(&list) {
        let id = field(team, "id");
        let buttons = if write { team_toggles(team) } else { vec![] };
        table.row(vec![
            Cell::text(&id),
            Cell::link(field(team, "name"), format!("/admin/teams/{id}")),
            Cell::text(field(team, "captain_id")),
            Cell::text(if flag(team, "banned") { "yes" } else { "no" }),
            Cell::text(if flag(team, "hidden") { "yes" } else { "no" }),
            Cell::buttons(buttons),
        ]);
    }
    page.push(Block::Table(table));
    if write {
        page.push(Block::Form(
            UiForm::post("Create a team", "/admin/teams", "Create")
                .field(Field::new("text", "name", "Team name", "").required())
                .field(Field::new("password", "password", "Password", "")),
        ));
    }
    Ok(page)
}

async fn create_team(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let mut body = json!({"name": fields.raw("name")});
    if let Some(password) = fields.get("password") {
        body["password"] = json!(password);
    }
    let outcome = api.change(&staff, Method::POST, "/api/v1/teams", &body, "Team created").await?;
    Ok(redirect_with("/admin/teams", outcome))
}

async fn team(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(flash): Query<FlashQuery>,
) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let team = api.get(&staff, &format!("/api/v1/teams/{id}")).await?;
    let members = api.get(&staff, &format!("/api/v1/teams/{id}/members")).await?;
    let mut page = Page::new(&staff, format!("Team: {}", field(&team, "name")), "/admin/teams").flash(&flash);
    let captain = field(&team, "captain_id");
    page.push(Block::Stats(vec![
        ("Captain".into(), if captain.is_empty() { "none".into() } else { captain.clone() }),
        ("Members".into(), items(&members).len().to_string()),
        ("Banned".into(), if flag(&team, "banned") { "yes".into() } else { "no".into() }),
    ]));
    let write = staff.can(Access::Write);
    let mut table = Table::new("Members", &["User", "Name", "Captain", ""]);
    for member in items(&members) {
        let user_id = super::text(member);
        let user = api.get(&staff, &format!("/api/v1/users/{user_id}")).await.unwrap_or(Value::Null);
        let mut buttons = Vec::new();
        if write {
            if user_id != captain {
                buttons.push(Button::new(
                    "Make captain",
                    format!("/admin/teams/{id}/set"),
                    &[("captain_id", &user_id)],
                ));
            }
            buttons.push(
                Button::new("Remove", format!("/admin/teams/{id}/members"), &[("op", "remove"), ("user_id", &user_id)])
                    .danger(),
            );
        }
        table.row(vec![
            Cell::text(&user_id),
            Cell::link(field(&user, "name"), format!("/admin/users/{user_id}")),
            Cell::text(if user_id == captain { "captain" } else { "" }),
            Cell::buttons(buttons),
        ]);
    }
    page.push(Block::Table(table));
    if write {
        page.push(Block::Form(
            UiForm { inline: true, ..UiForm::post("", format!("/admin/teams/{id}/members"), "Add member") }
                .field(Field::new("hidden", "op", "", "add"))
                .field(Field::new("number", "user_id", "User id", "").required()),
        ));
    }
    Ok(page)
}

async fn set_team(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let body = match fields.number("captain_id") {
        Some(captain) => json!({"captain_id": captain}),
        None => boolean_body(&fields, &["banned", "hidden"])?,
    };
    let back = if fields.get("captain_id").is_some() { format!("/admin/teams/{id}") } else { "/admin/teams".into() };
    let outcome = api.change(&staff, Method::PATCH, &format!("/api/v1/teams/{id}"), &body, "Team updated").await?;
    Ok(redirect_with(&back, outcome))
}

async fn members(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let Some(user) = fields.number("user_id") else { return Err(UiError::bad_request("user_id is required")) };
    let (method, done) = if fields.get("op") == Some("remove") {
        (Method::DELETE, "Member removed")
    } else {
        (Method::POST, "Member added")
    };
    let path = format!("/api/v1/teams/{id}/members");
    let outcome = api.change(&staff, method, &path, &json!({"user_id": user}), done).await?;
    Ok(redirect_with(&format!("/admin/teams/{id}"), outcome))
}
