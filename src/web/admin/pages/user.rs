//! `/admin/users/{id}`: one account: profile and custom fields (editable), team, score and
//! place, verify / ban / hide, solves, failed submissions, awards (add, edit, delete), the
//! addresses it was seen at and its recent sessions.
//!
//! The account, its results and its awards come from the admin API; addresses and sessions
//! are read from the store directly (the admin API has no endpoint for them, and they are
//! read-only here).

use axum::extract::{Extension, Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use axum::{Form, Router};
use serde_json::{Map, Value, json};

use super::setup::{awards, create_form, resource_table};
use super::{Fields, field, flag, iso_when, items, when};
use crate::api::ApiState;
use crate::api::admin::Access;
use crate::domain::UserId;
use crate::web::admin::FlashQuery;
use crate::web::admin::dispatch::AdminApi;
use crate::web::admin::session::Staff;
use crate::web::admin::view::{Block, Button, Cell, Field, Form as UiForm, Page, Table, UiResult, redirect_with};

pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    router.route("/admin/users/{id}", get(user)).route("/admin/users/{id}/profile", post(save_profile))
}

/// Role choices: (API value, label).
pub const ROLES: &[(&str, &str)] =
    &[("user", "Player"), ("jury", "Jury"), ("challenge_writer", "Challenge writer"), ("admin", "Admin")];

/// Verify / ban / hide buttons showing the opposite of the current state, posting to
/// `/admin/users/{id}/set` and coming back to `back`.
pub fn user_toggles(user: &Value, back: &str) -> Vec<Button> {
    let id = field(user, "id");
    [("verified", "Verify", "Unverify"), ("banned", "Ban", "Unban"), ("hidden", "Hide", "Unhide")]
        .iter()
        .map(|(key, on, off)| {
            let current = flag(user, key);
            let value = if current { "false" } else { "true" };
            let button = Button::new(
                if current { *off } else { *on },
                format!("/admin/users/{id}/set"),
                &[(key, value), ("back", back)],
            );
            if *key == "banned" && !current { button.danger() } else { button }
        })
        .collect()
}

/// "verified", "not verified, banned, hidden"…
fn status(user: &Value) -> String {
    let mut words = vec![if flag(user, "verified") { "verified" } else { "not verified" }];
    for key in ["banned", "hidden"] {
        if flag(user, key) {
            words.push(key);
        }
    }
    words.join(", ")
}

/// The profile form, filled from the API's view of the user.
fn profile_form(id: i64, user: &Value, brackets: &Value, definitions: &Value) -> UiForm {
    let mut bracket_options = vec![(String::new(), "None".to_owned())];
    bracket_options.extend(items(brackets).iter().map(|bracket| (field(bracket, "id"), field(bracket, "name"))));
    let mut form = UiForm::post("Profile", format!("/admin/users/{id}/profile"), "Save profile")
        .field(Field::new("text", "name", "Name", field(user, "name")).required())
        .field(Field::new("email", "email", "Email", field(user, "email")))
        .field(Field::select("type", "Role", field(user, "type"), ROLES))
        .field(Field::new("text", "website", "Website", field(user, "website")))
        .field(Field::new("text", "affiliation", "Affiliation", field(user, "affiliation")))
        .field(Field::new("text", "country", "Country (two letters)", field(user, "country")))
        .field(Field {
            options: bracket_options,
            ..Field::new("select", "bracket_id", "Bracket", field(user, "bracket_id"))
        })
        .field(Field::new("password", "password", "New password", "").help("Leave empty to keep the current one"));
    let values = items(user.get("fields").unwrap_or(&Value::Null));
    for definition in items(definitions) {
        let field_id = field(definition, "id");
        let current =
            values.iter().find(|entry| field(entry, "field_id") == field_id).map(|entry| field(entry, "value"));
        let name = format!("field_{field_id}");
        let label = field(definition, "name");
        form.fields.push(if field(definition, "field_type") == "boolean" {
            Field::checkbox(&name, &label, current.as_deref() == Some("true"))
        } else {
            Field::new("text", &name, &label, current.unwrap_or_default())
        });
    }
    form
}

async fn user(
    State(state): State<ApiState>,
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Query(flash): Query<FlashQuery>,
) -> UiResult<Page> {
    staff.require(Access::Read)?;
    let user = api.get(&staff, &format!("/api/v1/users/{id}")).await?;
    let write = staff.can(Access::Write);
    let here = format!("/admin/users/{id}");
    let mut page = Page::new(&staff, format!("User: {}", field(&user, "name")), "/admin/users").flash(&flash);
    let team_id = field(&user, "team_id");
    let team_name = if team_id.is_empty() {
        "none".to_owned()
    } else {
        api.get(&staff, &format!("/api/v1/teams/{team_id}")).await.map(|team| field(&team, "name")).unwrap_or_default()
    };
    let mut links = vec![("All users".to_owned(), "/admin/users".to_owned())];
    if !team_id.is_empty() {
        links.push((format!("Team: {team_name}"), format!("/admin/teams/{team_id}")));
    }
    page.push(Block::Links(links));
    let place = field(&user, "place");
    page.push(Block::Stats(vec![
        ("Role".into(), field(&user, "type")),
        ("Team".into(), team_name),
        ("Score".into(), field(&user, "score")),
        ("Place".into(), if place.is_empty() { "unranked".into() } else { place }),
        ("Status".into(), status(&user)),
        ("Created".into(), iso_when(&field(&user, "created"))),
    ]));
    if write {
        page.push(Block::Buttons(user_toggles(&user, &here)));
    }

    if write {
        let brackets = api.get(&staff, "/api/v1/brackets").await?;
        let definitions = api.get(&staff, "/api/v1/configs/fields?type=user").await?;
        page.push(Block::Form(profile_form(id, &user, &brackets, &definitions)));
    } else {
        let mut table = Table::new("Profile", &["Field", "Value"]);
        for key in ["email", "website", "affiliation", "country", "bracket_id"] {
            table.row(vec![Cell::text(key), Cell::text(field(&user, key))]);
        }
        for entry in items(user.get("fields").unwrap_or(&Value::Null)) {
            table.row(vec![Cell::text(field(entry, "name")), Cell::text(field(entry, "value"))]);
        }
        page.push(Block::Table(table));
    }

    let solves = api.get(&staff, &format!("/api/v1/users/{id}/solves")).await?;
    let mut table = Table::new("Solves", &["Challenge", "Category", "Value", "Date", "IP"]);
    for solve in items(&solves) {
        let challenge = solve.get("challenge").unwrap_or(&Value::Null);
        table.row(vec![
            Cell::link(field(challenge, "name"), format!("/admin/challenges/{}", field(solve, "challenge_id"))),
            Cell::text(field(challenge, "category")),
            Cell::text(field(challenge, "value")),
            Cell::text(iso_when(&field(solve, "date"))),
            Cell::text(field(solve, "ip")),
        ]);
    }
    page.push(Block::Table(table));

    let fails = api.get(&staff, &format!("/api/v1/users/{id}/fails")).await?;
    let mut table = Table::new("Newest 50 failed submissions", &["Challenge", "Submitted", "Date", "IP"]);
    for fail in items(&fails).iter().rev().take(50) {
        let challenge = fail.get("challenge").unwrap_or(&Value::Null);
        table.row(vec![
            Cell::link(field(challenge, "name"), format!("/admin/challenges/{}", field(fail, "challenge_id"))),
            Cell::code(field(fail, "provided")),
            Cell::text(iso_when(&field(fail, "date"))),
            Cell::text(field(fail, "ip")),
        ]);
    }
    page.push(Block::Table(table));

    let granted = api.get(&staff, &format!("/api/v1/users/{id}/awards")).await?;
    page.push(Block::Table(resource_table(awards(), "Awards", &granted, write, &here)));
    if write {
        let prefill = json!({"user_id": id, "team_id": user.get("team_id")});
        page.push(Block::Form(create_form(awards(), &prefill, &here)));
    }

    let mut table = Table::new("IP addresses seen", &["Address", "Last seen"]);
    for (ip, seen) in state.store.list_user_ips(UserId(id)).await? {
        table.row(vec![Cell::code(ip), Cell::text(when(Some(seen)))]);
    }
    page.push(Block::Table(table));
    let now = chrono::Utc::now().timestamp();
    let mut table = Table::new("Newest 10 sessions", &["Logged in", "Address", "Browser", "Expires", "State"]);
    for session in state.store.list_user_sessions(UserId(id), 10).await? {
        let status = match session.revoked_at {
            Some(revoked) => format!("ended {}", when(Some(revoked))),
            None if session.expires_at <= now => "expired".to_owned(),
            None => "active".to_owned(),
        };
        table.row(vec![
            Cell::text(when(Some(session.created))),
            Cell::code(session.ip.unwrap_or_default()),
            Cell::text(session.user_agent.unwrap_or_default()),
            Cell::text(when(Some(session.expires_at))),
            Cell::text(status),
        ]);
    }
    page.push(Block::Table(table));
    Ok(page)
}

/// The `PATCH /api/v1/users/{id}` body of the profile form.
fn profile_body(fields: &Fields) -> Value {
    let mut body = Map::new();
    body.insert("name".into(), json!(fields.raw("name").trim()));
    for key in ["email", "website", "affiliation", "country"] {
        body.insert(key.into(), json!(fields.get(key)));
    }
    if let Some(role) = fields.get("type") {
        body.insert("type".into(), json!(role));
    }
    body.insert("bracket_id".into(), fields.number("bracket_id").unwrap_or(Value::Null));
    if !fields.raw("password").is_empty() {
        body.insert("password".into(), json!(fields.raw("password")));
    }
    let mut entries = Vec::new();
    for (key, value) in &fields.0 {
        if let Some(field_id) = key.strip_prefix("field_").and_then(|id| id.parse::<i64>().ok()) {
            entries.push(json!({"field_id": field_id, "value": value.trim()}));
        }
    }
    body.insert("fields".into(), Value::Array(entries));
    Value::Object(body)
}

async fn save_profile(
    Extension(api): Extension<AdminApi>,
    staff: Staff,
    Path(id): Path<i64>,
    Form(fields): Form<Fields>,
) -> UiResult<Response> {
    staff.require(Access::Write)?;
    // Unchecked yes/no custom fields send nothing: say "false" for each one on the form.
    let definitions = api.get(&staff, "/api/v1/configs/fields?type=user").await?;
    let mut fields = fields;
    for definition in items(&definitions) {
        let name = format!("field_{}", field(definition, "id"));
        if field(definition, "field_type") == "boolean" && !fields.checked(&name) {
            fields.0.push((name, "false".into()));
        }
    }
    let body = profile_body(&fields);
    let path = format!("/api/v1/users/{id}");
    let outcome = api.change(&staff, Method::PATCH, &path, &body, "Profile saved").await?;
    Ok(redirect_with(&format!("/admin/users/{id}"), outcome))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn profile_form_becomes_the_users_api_body() {
        let fields = Fields(
            [
                ("name", " alice "),
                ("email", ""),
                ("type", "user"),
                ("country", "FR"),
                ("bracket_id", ""),
                ("password", ""),
                ("field_3", "MIT"),
                ("csrf", "x"),
            ]
            .iter()
            .map(|(key, value)| ((*key).to_owned(), (*value).to_owned()))
            .collect(),
        );
        let body = profile_body(&fields);
        assert_eq!(body["name"], "alice");
        assert_eq!(body["email"], Value::Null);
        assert_eq!(body["bracket_id"], Value::Null);
        assert!(body.get("password").is_none(), "an empty password keeps the current one");
        assert_eq!(body["fields"], json!([{"field_id": 3, "value": "MIT"}]));
    }

    #[test]
    fn toggles_offer_the_opposite_state_and_come_back() {
        let user = json!({"id": 5, "verified": false, "banned": true, "hidden": false});
        let buttons = user_toggles(&user, "/admin/users/5");
        let labels: Vec<&str> = buttons.iter().map(|button| button.label.as_str()).collect();
        assert_eq!(labels, ["Verify", "Unban", "Hide"]);
        assert!(buttons[0].fields.contains(&("back".into(), "/admin/users/5".into())));
        assert!(!buttons[1].danger, "unbanning is not dangerous");
    }
}
