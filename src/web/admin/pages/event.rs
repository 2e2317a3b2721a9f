//! `/admin/config`: the event configuration (times, freeze, pause, modes, visibility, limits,
//! registration, hidden categories, branding), saved through `PATCH /api/v1/configs`, which
//! validates every key (`event::keys`).

use std::collections::BTreeMap;

use axum::extract::{Extension, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::get;
use axum::{Form, Router};
use serde_json::{Map, Value};

use super::{Fields, field, items};
use crate::api::ApiState;
use crate::api::admin::Access;
use crate::web::admin::FlashQuery;
use crate::web::admin::dispatch::AdminApi;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{Block, Field, Form as UiForm, Page, UiResult, redirect_with};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    router.route("/admin/config", get(show).post(save))
}

const TIMES: &[(&str, &str)] = &[("start", "Start"), ("end", "End"), ("freeze", "Scoreboard freeze")];
const FLAGS: &[(&str, &str)] = &[
    ("paused", "Paused (blocks submissions and instance starts)"),
    ("view_after_ctf", "Challenges visible after the end"),
    ("contestant_registration_enabled", "Registration open"),
    ("team_self_service", "Players create and join teams themselves"),
    ("captain_only_start_challenge", "Only captains start instances"),
    ("captain_only_submit_challenge", "Only captains submit flags"),
    ("bracket_view_other", "Players see other brackets"),
];
const NUMBERS: &[(&str, &str, &str)] = &[
    ("limit_challenges", "Concurrent instances per team", "3"),
    ("incorrect_submissions_per_min", "Wrong flags per minute", "10"),
    ("num_users", "Registration cap (0: none)", "0"),
    ("team_size", "Team size (0: unlimited)", "0"),
];
const TEXTS: &[(&str, &str)] = &[("ctf_name", "Event name"), ("ctf_logo", "Logo URL"), ("ctf_small_icon", "Icon URL")];

/// A stored time (seconds or RFC 3339) as a `datetime-local` value in UTC.
fn to_local(value: &str) -> String {
    let seconds = value
        .trim()
        .parse::<f64>()
        .ok()
        .map(|seconds| seconds as i64)
        .or_else(|| chrono::DateTime::parse_from_rfc3339(value.trim()).ok().map(|time| time.timestamp()));
    seconds
        .filter(|seconds| *seconds > 0)
        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
        .map(|time| time.format("%Y-%m-%dT%H:%M").to_string())
        .unwrap_or_default()
}

/// A `datetime-local` value (UTC) as Unix seconds; "" stays "" (unset).
fn from_local(value: &str) -> Result<String, String> {
    let value = value.trim();
    if value.is_empty() {
        return Ok(String::new());
    }
    let parsed = chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(value, "%Y-%m-%dT%H:%M:%S"))
        .map_err(|_| format!("{value:?} is not a date and time (YYYY-MM-DDTHH:MM)"))?;
    Ok(parsed.and_utc().timestamp().to_string())
}

async fn show(Extension(api): Extension<AdminApi>, staff: Staff, Query(flash): Query<FlashQuery>) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let list = api.get(&staff, "/api/v1/configs").await?;
    let stored: BTreeMap<String, String> =
        items(&list).iter().map(|entry| (field(entry, "key"), field(entry, "value"))).collect();
    let value = |key: &str| stored.get(key).cloned().unwrap_or_default();
    let mut page = Page::new(&staff, "Event configuration", "/admin/config").flash(&flash);
    let now = chrono::Utc::now().timestamp();
    page.push(Block::Text(format!(
        "State: {}. Times are UTC.",
        super::dashboard::event_state(&crate::event::EventConfig::from_map(stored.clone()), now)
    )));
    let mut form = UiForm::post("", "/admin/config", "Save configuration");
    for (key, label) in TEXTS {
        form = form.field(Field::new("text", key, label, value(key)));
    }
    form = form.field(Field::new("textarea", "ctf_description", "Description", value("ctf_description")));
    for (key, label) in TIMES {
        form = form.field(Field::new("datetime-local", key, label, to_local(&value(key))).help("UTC; empty: unset"));
    }
    for (key, label) in FLAGS {
        let on = matches!(value(key).trim(), "true" | "1" | "yes" | "on" | "y");
        form = form.field(Field::checkbox(key, label, on));
    }
    for (key, label, default) in NUMBERS {
        let current = value(key);
        form = form.field(Field::new(
            "number",
            key,
            label,
            if current.is_empty() { default.to_string() } else { current },
        ));
    }
    let mode = value("user_mode");
    form = form.field(Field::select(
        "user_mode",
        "Mode",
        if mode.is_empty() { "teams" } else { &mode },
        &[("teams", "Teams"), ("users", "Individual players")],
    ));
    let visibility = value("score_visibility");
    form = form.field(Field::select(
        "score_visibility",
        "Scoreboard visibility",
        if visibility.is_empty() { "public" } else { &visibility },
        &[("public", "Public"), ("private", "Logged-in players"), ("hidden", "Hidden")],
    ));
    let difficulty = value("challenge_difficulty_visibility");
    form = form.field(Field::select(
        "challenge_difficulty_visibility",
        "Show difficulty",
        &difficulty,
        &[("", "No"), ("disabled", "No (explicit)"), ("enabled", "Yes")],
    ));
    let sharing = value("dynamic_flag_sharing");
    form = form.field(Field::select(
        "dynamic_flag_sharing",
        "Another team's dynamic flag",
        &sharing,
        &[("", "Reject (default)"), ("reject", "Reject"), ("record", "Accept and record a cheat event")],
    ));
    form = form.field(
        Field::new("textarea", "hidden_categories", "Hidden categories", value("hidden_categories"))
            .help("One category per line; challenges in them are hidden from players"),
    );
    if staff.can(Access::Write) {
        page.push(Block::Form(form));
    } else {
        let rows = stored.iter().map(|(key, value)| (key.clone(), value.clone())).collect();
        page.push(Block::Stats(rows));
    }
    Ok(page)
}

async fn save(
    State(_state): State<ApiState>,
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    let mut body = Map::new();
    for (key, _) in TEXTS {
        body.insert((*key).into(), Value::from(fields.raw(key).trim()));
    }
    body.insert("ctf_description".into(), Value::from(fields.raw("ctf_description")));
    for (key, label) in TIMES {
        match from_local(fields.raw(key)) {
            Ok(value) => body.insert((*key).into(), Value::from(value)),
            Err(error) => return Ok(redirect_with("/admin/config", Err(format!("{label}: {error}")))),
        };
    }
    for (key, _) in FLAGS {
        body.insert((*key).into(), Value::from(if fields.checked(key) { "true" } else { "false" }));
    }
    for (key, _, _) in NUMBERS {
        body.insert((*key).into(), Value::from(fields.raw(key).trim()));
    }
    for key in ["user_mode", "score_visibility", "challenge_difficulty_visibility", "dynamic_flag_sharing"] {
        body.insert(key.into(), Value::from(fields.raw(key).trim()));
    }
    body.insert("hidden_categories".into(), Value::from(fields.raw("hidden_categories")));
    let outcome =
        api.change(&staff, Method::PATCH, "/api/v1/configs", &Value::Object(body), "Configuration saved").await?;
    Ok(redirect_with("/admin/config", outcome))
}
