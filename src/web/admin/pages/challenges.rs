//! `/admin/challenges`: list, create and edit (flags, hints, files, tags, topics,
//! requirements, dynamic scoring, deployment settings), preview as a contestant, and the
//! shared and preview instances. Changes go through the admin API (`dispatch`).

use axum::body::Body;
use axum::extract::{Extension, Path, Query, Request};
use axum::http::{Method, header};
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{Map, Value, json};

use super::children::{CHILDREN, child};
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
        .route("/admin/challenges", get(list).post(create))
        .route("/admin/challenges/new", get(new_form))
        .route("/admin/challenges/{id}", get(edit).post(update))
        .route("/admin/challenges/{id}/delete", post(delete))
        .route("/admin/challenges/{id}/add/{kind}", post(add_child))
        .route("/admin/challenges/{id}/files", post(upload_file))
        .route("/admin/challenges/{id}/remove", post(remove_child))
        .route("/admin/challenges/{id}/preview", get(preview))
        .route("/admin/challenges/{id}/instance", post(instance))
}

async fn list(Extension(api): Extension<AdminApi>, staff: Staff, Query(flash): Query<FlashQuery>) -> UiResult<Page> {
    staff.require(Access::ChallengeRead)?;
    let challenges = api.get(&staff, "/api/v1/challenges").await?;
    let mut page = Page::new(&staff, "Challenges", "/admin/challenges").flash(&flash);
    if staff.can(Access::ChallengeWrite) {
        page.push(Block::Links(vec![("New challenge".into(), "/admin/challenges/new".into())]));
    }
    let mut table = Table::new("All challenges", &["Id", "Name", "Category", "Type", "Value", "State", "Solves", ""]);
    for challenge in items(&challenges) {
        let id = field(challenge, "id");
        table.row(vec![
            Cell::text(&id),
            Cell::link(field(challenge, "name"), format!("/admin/challenges/{id}")),
            Cell::text(field(challenge, "category")),
            Cell::text(field(challenge, "type")),
            Cell::text(field(challenge, "value")),
            Cell::text(field(challenge, "state")),
            Cell::text(field(challenge, "solves")),
            Cell::link("Preview", format!("/admin/challenges/{id}/preview")),
        ]);
    }
    page.push(Block::Table(table));
    Ok(page)
}

/// The challenge form, filled from `current` (the API's read shape; `Null` for a new one).
fn challenge_form(action: &str, current: &Value, submit: &str) -> UiForm {
    let text = |key: &str| field(current, key);
    let or = |key: &str, default: &str| {
        let value = field(current, key);
        if value.is_empty() { default.to_owned() } else { value }
    };
    let prerequisites = current
        .get("requirements")
        .and_then(|requirements| requirements.get("prerequisites"))
        .map(|list| items(list).iter().map(super::text).collect::<Vec<_>>().join(", "))
        .unwrap_or_default();
    UiForm::post("", action, submit)
        .field(Field::new("text", "name", "Name", text("name")).required())
        .field(Field::new("text", "category", "Category", text("category")).required())
        .field(Field::select(
            "type",
            "Type",
            or("type", "standard"),
            &[("standard", "Standard"), ("dynamic", "Dynamic (value decays with solves)")],
        ))
        .field(Field::select("state", "State", or("state", "hidden"), &[("hidden", "Hidden"), ("visible", "Visible")]))
        .field(Field::new("textarea", "description", "Description (Markdown)", text("description")))
        .field(Field::new("text", "connection_info", "Connection info", text("connection_info")))
        .field(Field::new("number", "value", "Value (standard) / initial value", or("value", "100")).required())
        .field(Field::new("number", "decay", "Decay (dynamic: solves to reach the minimum)", text("decay")))
        .field(Field::new("number", "minimum", "Minimum (dynamic)", text("minimum")))
        .field(Field::select(
            "function",
            "Decay function",
            or("function", "logarithmic"),
            &[("logarithmic", "Logarithmic"), ("linear", "Linear")],
        ))
        .field(Field::new("number", "max_attempts", "Max attempts (0: unlimited)", or("max_attempts", "0")))
        .field(Field::new("number", "cooldown", "Cooldown between attempts (s)", or("cooldown", "0")))
        .field(Field::new("number", "difficulty", "Difficulty (1–5)", text("difficulty")))
        .field(Field::new("number", "position", "Position", or("position", "0")))
        .field(Field::new("text", "prerequisites", "Required challenges (ids)", prerequisites).help("Comma-separated"))
        .field(Field::new("number", "next_id", "Next challenge (id)", text("next_id")))
        .field(Field::checkbox("require_deploy", "Needs an instance", flag(current, "require_deploy")))
        .field(Field::checkbox("shared_instance", "One shared instance for everyone", flag(current, "shared_instance")))
        .field(Field::new("text", "image", "Image", text("image")))
        .field(
            Field::new("text", "deploy_command", "Local command", text("deploy_command"))
                .help("Local runtime: a command listening on $PORT"),
        )
        .field(Field::new("number", "exposed_port", "Exposed port", text("exposed_port")))
        .field(Field::select(
            "connection_protocol",
            "Protocol",
            or("connection_protocol", "http"),
            &[("http", "HTTP"), ("tcp", "TCP")],
        ))
        .field(Field::new("number", "time_limit", "Instance lifetime (minutes)", text("time_limit")))
        .field(Field::new("text", "cpu_limit", "CPU limit", text("cpu_limit")))
        .field(Field::new("text", "memory_limit", "Memory limit", text("memory_limit")))
        .field(Field::new("number", "max_deploy_count", "Max deploys", text("max_deploy_count")))
        .field(Field::checkbox("harden_container", "Harden the container", flag(current, "harden_container")))
        .field(Field::checkbox("use_gvisor", "Run under gVisor", flag(current, "use_gvisor")))
}

/// The admin API body of a submitted challenge form.
fn challenge_body(fields: &Fields, creating: bool) -> Value {
    let mut body = Map::new();
    for key in ["name", "category", "type", "state", "function", "connection_protocol"] {
        if let Some(value) = fields.get(key) {
            body.insert(key.into(), json!(value));
        }
    }
    for key in ["description", "connection_info", "image", "deploy_command", "cpu_limit", "memory_limit"] {
        let value = fields.raw(key).trim();
        if !(creating && value.is_empty()) {
            body.insert(key.into(), if value.is_empty() { Value::Null } else { json!(value) });
        }
    }
    let dynamic = fields.get("type") == Some("dynamic");
    for key in ["value", "max_attempts", "cooldown", "position"] {
        if let Some(number) = fields.number(key) {
            body.insert(key.into(), number);
        }
    }
    if dynamic && let Some(value) = fields.number("value") {
        body.insert("initial".into(), value);
    }
    for key in ["decay", "minimum"] {
        if dynamic && let Some(number) = fields.number(key) {
            body.insert(key.into(), number);
        }
    }
    for key in ["difficulty", "next_id", "exposed_port", "time_limit", "max_deploy_count"] {
        match fields.number(key) {
            Some(number) => body.insert(key.into(), number),
            None if !creating => body.insert(key.into(), Value::Null),
            None => None,
        };
    }
    for key in ["require_deploy", "shared_instance", "harden_container", "use_gvisor"] {
        body.insert(key.into(), json!(fields.checked(key)));
    }
    let prerequisites: Vec<Value> = fields
        .raw("prerequisites")
        .split([',', ' '])
        .filter(|part| !part.trim().is_empty())
        .map(|part| part.trim().parse::<i64>().map(Value::from).unwrap_or_else(|_| json!(part.trim())))
        .collect();
    if !(creating && prerequisites.is_empty()) {
        body.insert("requirements".into(), json!({"prerequisites": prerequisites}));
    }
    Value::Object(body)
}

async fn new_form(staff: Staff, Query(flash): Query<FlashQuery>) -> UiResult<Page> {
    staff.require(Access::ChallengeWrite)?;
    let mut page = Page::new(&staff, "New challenge", "/admin/challenges").flash(&flash);
    page.push(Block::Form(challenge_form("/admin/challenges", &Value::Null, "Create challenge")));
    Ok(page)
}

async fn create(Extension(api): Extension<AdminApi>, staff: Staff, Form(fields): Form<Fields>) -> UiResult<Response> {
    staff.require(Access::ChallengeWrite)?;
    let answer = api.json(&staff, Method::POST, "/api/v1/challenges", &challenge_body(&fields, true)).await?;
    if answer.is_success() {
        let id = answer.json.get("data").map(|data| field(data, "id")).unwrap_or_default();
        Ok(redirect_with(&format!("/admin/challenges/{id}"), Ok("Challenge created".into())))
    } else if answer.status >= 500 {
        Err(UiError::internal(format!("challenge create answered {}", answer.status)))
    } else {
        Ok(redirect_with("/admin/challenges/new", Err(answer.message())))
    }
}

async fn edit(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(flash): Query<FlashQuery>,
) -> UiResult<Page> {
    staff.require(Access::ChallengeRead)?;
    let challenge = api.get(&staff, &format!("/api/v1/challenges/{id}")).await?;
    let mut requirements = api.get(&staff, &format!("/api/v1/challenges/{id}/requirements")).await?;
    if requirements.is_null() {
        requirements = json!({});
    }
    let mut current = challenge.clone();
    if let Value::Object(map) = &mut current {
        map.insert("requirements".into(), requirements);
    }
    let write = staff.can(Access::ChallengeWrite);
    let mut page =
        Page::new(&staff, format!("Challenge: {}", field(&challenge, "name")), "/admin/challenges").flash(&flash);
    let mut links = vec![("Preview as a contestant".to_owned(), format!("/admin/challenges/{id}/preview"))];
    links.push(("All challenges".into(), "/admin/challenges".into()));
    page.push(Block::Links(links));
    if write {
        page.push(Block::Form(challenge_form(&format!("/admin/challenges/{id}"), &current, "Save challenge")));
    } else {
        page.push(Block::Text(field(&challenge, "description")));
    }

    for child in CHILDREN {
        let list = api.get(&staff, &format!("/api/v1/challenges/{id}/{}", child.kind)).await?;
        page.push(Block::Table(child.table(id, &list, write)));
        if write {
            page.push(Block::Form(child.form(id)));
        }
    }
    if write {
        page.push(Block::Heading("Danger zone".into()));
        page.push(Block::Buttons(vec![
            Button::new("Delete challenge", format!("/admin/challenges/{id}/delete"), &[]).danger(),
        ]));
    }
    Ok(page)
}

async fn update(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::ChallengeWrite)?;
    let path = format!("/api/v1/challenges/{id}");
    let outcome = api.change(&staff, Method::PATCH, &path, &challenge_body(&fields, false), "Challenge saved").await?;
    Ok(redirect_with(&format!("/admin/challenges/{id}"), outcome))
}

async fn delete(Extension(api): Extension<AdminApi>, staff: Staff, Path(id): Path<i64>) -> UiResult<Response> {
    staff.require(Access::ChallengeWrite)?;
    let path = format!("/api/v1/challenges/{id}");
    match api.change(&staff, Method::DELETE, &path, &json!({}), "Challenge deleted").await? {
        Ok(done) => Ok(redirect_with("/admin/challenges", Ok(done))),
        Err(error) => Ok(redirect_with(&format!("/admin/challenges/{id}"), Err(error))),
    }
}

/// Adds a flag, hint, tag or topic (`kind`, one of [`CHILDREN`]) through the admin API.
async fn add_child(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path((id, kind)): Path<(i64, String)>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::ChallengeWrite)?;
    let Some((path, body, done)) = child(&kind).and_then(|child| child.add_request(id, &fields)) else {
        return Err(UiError::bad_request("unknown kind"));
    };
    let outcome = api.change(&staff, Method::POST, &path, &body, done).await?;
    Ok(redirect_with(&format!("/admin/challenges/{id}"), outcome))
}

/// Removes a flag, hint, file, tag or topic (`kind`, `child` id).
async fn remove_child(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::ChallengeWrite)?;
    let Some(kind) = fields.get("kind").and_then(child) else {
        return Err(UiError::bad_request("unknown kind"));
    };
    let Some(child_id) = fields.get("child").and_then(|child_id| child_id.parse::<i64>().ok()) else {
        return Err(UiError::bad_request("child must be an id"));
    };
    let path = kind.remove_path(child_id);
    let outcome = api.change(&staff, Method::DELETE, &path, &json!({}), "Removed").await?;
    Ok(redirect_with(&format!("/admin/challenges/{id}"), outcome))
}

/// Multipart upload: the body (hidden `challenge` and `type` fields, then the file) is handed
/// to `POST /api/v1/files` unchanged.
async fn upload_file(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    request: Request,
) -> UiResult<Response> {
    staff.require(Access::ChallengeWrite)?;
    let content_type =
        request.headers().get(header::CONTENT_TYPE).and_then(|value| value.to_str().ok()).unwrap_or("").to_owned();
    if !content_type.starts_with("multipart/form-data") {
        return Err(UiError::bad_request("expected a file upload"));
    }
    let body = Body::new(request.into_body());
    let answer = api.send(&staff, Method::POST, "/api/v1/files", Some(&content_type), body).await?;
    let outcome = if answer.is_success() { Ok("File uploaded".to_owned()) } else { Err(answer.message()) };
    Ok(redirect_with(&format!("/admin/challenges/{id}"), outcome))
}

/// The challenge as a contestant sees it, with the preview instance controls.
async fn preview(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(flash): Query<FlashQuery>,
) -> UiResult<Page> {
    staff.require(Access::ChallengeRead)?;
    let challenge = api.get(&staff, &format!("/api/v1/challenges/{id}")).await?;
    let mut page =
        Page::new(&staff, format!("Preview: {}", field(&challenge, "name")), "/admin/challenges").flash(&flash);
    page.push(Block::Stats(vec![
        ("Category".into(), field(&challenge, "category")),
        ("Value".into(), field(&challenge, "value")),
        ("State".into(), field(&challenge, "state")),
    ]));
    page.push(Block::Pre { id: "description".into(), text: field(&challenge, "description") });
    let files: Vec<(String, String)> = items(challenge.get("files").unwrap_or(&Value::Null))
        .iter()
        .map(|url| (super::text(url).rsplit('/').next().unwrap_or("file").to_owned(), super::text(url)))
        .collect();
    if !files.is_empty() {
        page.push(Block::Links(files));
    }
    let hints = items(challenge.get("hints").unwrap_or(&Value::Null));
    for hint in hints {
        page.push(Block::Text(format!("Hint ({} points): {}", field(hint, "cost"), field(hint, "content"))));
    }
    if flag(&challenge, "require_deploy") {
        page.push(Block::Heading("Instances".into()));
        let running = api.get(&staff, &format!("/api/v1/challenges/{id}/instances")).await?;
        let mut rows = Vec::new();
        for (target, label) in [("preview", "Preview instance"), ("shared", "Shared instance")] {
            let text = match running.get(target) {
                Some(instance) if !instance.is_null() => {
                    format!("{} ({})", field(instance, "state"), field(instance, "token"))
                }
                _ => "not running".into(),
            };
            rows.push((label.to_owned(), text));
        }
        page.push(Block::Stats(rows));
        if staff.can(Access::ChallengeWrite) {
            let action = format!("/admin/challenges/{id}/instance");
            page.push(Block::Buttons(vec![
                Button::new("Start preview", &action, &[("op", "start"), ("target", "preview")]),
                Button::new("Stop preview", &action, &[("op", "stop"), ("target", "preview")]).danger(),
                Button::new("Start shared instance", &action, &[("op", "start"), ("target", "shared")]),
                Button::new("Stop shared instance", &action, &[("op", "stop"), ("target", "shared")]).danger(),
            ]));
        }
    }
    Ok(page)
}

/// Starts or stops the preview (team −1) or shared (team −2) instance of a challenge through
/// the admin API, which asks the deployment center and writes the audit log.
async fn instance(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::ChallengeWrite)?;
    let target = if fields.get("target") == Some("shared") { "shared" } else { "preview" };
    let back = format!("/admin/challenges/{id}/preview");
    let path = format!("/api/v1/challenges/{id}/instances");
    let outcome = match fields.get("op") {
        Some("start") => {
            let answer = api.json(&staff, Method::POST, &path, &json!({"target": target})).await?;
            if answer.is_success() {
                let instance = answer.json.get("data").and_then(|data| data.get("instance")).unwrap_or(&Value::Null);
                Ok(format!("Instance {}", field(instance, "state")))
            } else {
                Err(answer.message())
            }
        }
        Some("stop") => {
            let answer = api.json(&staff, Method::DELETE, &format!("{path}?target={target}"), &json!({})).await?;
            if answer.is_success() { Ok("Instance stopped".to_owned()) } else { Err(answer.message()) }
        }
        _ => return Err(UiError::bad_request("op must be start or stop")),
    };
    Ok(redirect_with(&back, outcome))
}
