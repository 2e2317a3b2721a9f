//! The challenge view: description (safe Markdown), files, hints with cost confirmation, the
//! flag form with its verdict, attempts left, and the instance panel (see [`super::instance`]).

use askama::Template;
use axum::Form;
use axum::extract::{Path, Query};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::board::segment;
use super::instance::{InstancePanel, panel};
use super::session::{PageResult, Session, text};
use crate::web::markdown;
use crate::web::{Flash, Layout, query_escape};

/// One hint of the challenge.
pub struct HintView {
    id: i64,
    cost: i64,
    unlocked: bool,
    html: String,
}

/// One attachment.
pub struct FileView {
    name: String,
    href: String,
}

#[derive(Template)]
#[template(path = "portal/challenge.html")]
struct ChallengePage {
    layout: Layout,
    id: i64,
    name: String,
    category: String,
    value: String,
    description: String,
    solved: bool,
    locked: bool,
    attempts: String,
    meta: Vec<String>,
    files: Vec<FileView>,
    hints: Vec<HintView>,
    next: Option<(i64, String)>,
    can_submit: bool,
    instance: Option<InstancePanel>,
    options: Vec<String>,
}

/// The challenge's value, read from its category list (the detail does not carry it).
async fn value_of(session: &Session, id: i64, category: &str) -> String {
    let list = session.get_owned(format!("/api/Challenge/list_challenge/{}", segment(category))).await;
    list.data()
        .as_array()
        .and_then(|items| items.iter().find(|item| item.get("id").and_then(Value::as_i64) == Some(id)))
        .map(|item| text(item.get("value").unwrap_or(&Value::Null)))
        .unwrap_or_default()
}

/// Multiple-choice options of the description's HTML form (the contestant API renders them
/// as radio inputs); the portal shows them as its own radio buttons instead.
fn choices(description: &str) -> Vec<String> {
    description.split("value=\"").skip(1).filter_map(|rest| rest.split('"').next()).map(unescape).collect()
}

fn unescape(value: &str) -> String {
    value.replace("&quot;", "\"").replace("&lt;", "<").replace("&gt;", ">").replace("&#39;", "'").replace("&amp;", "&")
}

/// The question of a multiple-choice description (its first paragraph), as plain text.
fn question(description: &str) -> String {
    description
        .split_once("<p>")
        .and_then(|(_, rest)| rest.split_once("</p>"))
        .map(|(question, _)| unescape(question))
        .unwrap_or_default()
}

async fn hint_views(session: &Session, id: i64) -> Vec<HintView> {
    let reply = session.get_owned(format!("/api/Hint/{id}/all")).await;
    let hints = reply.body.pointer("/hints/hints").and_then(Value::as_array).cloned().unwrap_or_default();
    let mut views = Vec::new();
    for hint in hints {
        let hint_id = hint.get("id").and_then(Value::as_i64).unwrap_or_default();
        let unlocked = hint.get("isUnlocked").and_then(Value::as_bool).unwrap_or(false);
        let html = if unlocked {
            let detail = session.get_owned(format!("/api/Hint/{hint_id}")).await;
            markdown::render(&text(detail.body.pointer("/data/content").unwrap_or(&Value::Null)))
        } else {
            String::new()
        };
        views.push(HintView {
            id: hint_id,
            cost: hint.get("cost").and_then(Value::as_i64).unwrap_or_default(),
            unlocked,
            html,
        });
    }
    views
}

/// `GET /challenges/{id}`.
pub async fn page(session: Session, Path(id): Path<i64>) -> PageResult {
    let player = session.require_team()?;
    let reply = session.get_owned(format!("/api/Challenge/{id}")).await;
    if !reply.ok() {
        return Err(session.read_failed(&reply));
    }
    let data = reply.data().clone();
    let field = |name: &str| data.get(name).cloned().unwrap_or(Value::Null);
    let category = text(&field("category"));
    let kind = text(&field("type"));
    let raw_description = text(&field("description"));
    let options = if kind == "multiple_choice" { choices(&raw_description) } else { Vec::new() };
    let (description, options) = if !options.is_empty() {
        (markdown::render(&question(&raw_description)), options)
    } else {
        (markdown::render(&raw_description), Vec::new())
    };
    let attempts = match field("max_attempts").as_i64().filter(|max| *max > 0) {
        Some(max) => {
            let used = field("attemps").as_i64().unwrap_or_default();
            format!("{} of {max} attempts left", (max - used).max(0))
        }
        None => String::new(),
    };
    let mut meta = Vec::new();
    if let Some(difficulty) = field("difficulty").as_i64() {
        meta.push(format!("Difficulty {difficulty}/5"));
    }
    if field("require_deploy").as_bool().unwrap_or(false) {
        if let Some(minutes) = field("time_limit").as_i64().filter(|minutes| *minutes > 0) {
            meta.push(format!("Instance lifetime {minutes} min"));
        }
        if let Some(max) = field("max_deploy_count").as_i64().filter(|max| *max > 0) {
            let used = field("deployed_count").as_i64().unwrap_or_default();
            meta.push(format!("{} of {max} instance starts left", (max - used).max(0)));
        }
    }
    let files = field("files")
        .as_array()
        .map(|files| {
            files
                .iter()
                .filter_map(Value::as_str)
                .map(|link| {
                    let query = link.split_once('?').map(|(_, query)| query).unwrap_or_default();
                    let name = url::form_urlencoded::parse(query.as_bytes())
                        .find(|(key, _)| key == "path")
                        .map(|(_, path)| path.rsplit('/').next().unwrap_or_default().to_owned())
                        .unwrap_or_else(|| "file".to_owned());
                    FileView { name, href: format!("/files?{query}") }
                })
                .collect()
        })
        .unwrap_or_default();
    let solved = field("solve_by_myteam").as_bool().unwrap_or(false);
    let captain_only = field("captain_only_submit").as_bool().unwrap_or(false);
    let can_submit = !solved && (!captain_only || player.is_captain());
    let next = field("next_id").as_i64().zip(field("next_name").as_str().map(str::to_owned));
    let (value, hints) = tokio::join!(value_of(&session, id, &category), hint_views(&session, id));
    let instance = if field("require_deploy").as_bool().unwrap_or(false) {
        Some(panel(&session, id, &reply.body, &data).await)
    } else {
        None
    };
    let mut layout = session.layout(&text(&field("name")));
    if instance.as_ref().is_some_and(InstancePanel::transitional) {
        layout.refresh = Some(3);
    }
    Ok(session.page(&ChallengePage {
        layout,
        id,
        name: text(&field("name")),
        category,
        value,
        description,
        solved,
        locked: field("locked").as_bool().unwrap_or(false),
        attempts,
        meta,
        files,
        hints,
        next,
        can_submit,
        instance,
        options,
    }))
}

/// The flag form.
#[derive(Debug, Deserialize)]
pub struct FlagForm {
    csrf: String,
    #[serde(default)]
    flag: String,
}

/// `POST /challenges/{id}/submit`.
pub async fn submit(session: Session, Path(id): Path<i64>, Form(form): Form<FlagForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require_team()?;
    let reply = session.post("/api/Challenge/attempt", &json!({"challengeId": id, "submission": form.flag})).await;
    let back = format!("/challenges/{id}");
    if reply.status == StatusCode::UNAUTHORIZED {
        return Ok(session.after(&reply, &back));
    }
    let status = reply.body.pointer("/data/status").and_then(Value::as_str).unwrap_or_default();
    let message = reply.message();
    let cooldown = reply.body.pointer("/data/cooldown").and_then(Value::as_i64).filter(|seconds| *seconds > 0);
    let flash = match status {
        "correct" => {
            let value = reply.body.pointer("/data/value").map(text).unwrap_or_default();
            Flash::ok(if value.is_empty() { "Correct!".to_owned() } else { format!("Correct! +{value} points") })
        }
        "already_solved" => Flash::info(message),
        _ => match cooldown {
            Some(seconds) if status == "incorrect" => {
                Flash::error(format!("{message} Wait {seconds} s before the next attempt."))
            }
            _ => Flash::error(message),
        },
    };
    Ok(session.redirect_with(&back, flash))
}

#[derive(Template)]
#[template(path = "portal/hint.html")]
struct HintConfirmPage {
    layout: Layout,
    challenge: i64,
    hint: i64,
    cost: i64,
}

/// `GET /challenges/{id}/hints/{hint}`: the cost confirmation.
pub async fn hint_confirm(session: Session, Path((challenge, hint)): Path<(i64, i64)>) -> PageResult {
    session.require_team()?;
    let reply = session.get_owned(format!("/api/Hint/{hint}")).await;
    if !reply.ok() {
        return Err(session.read_failed(&reply));
    }
    if reply.body.pointer("/data/view").and_then(Value::as_str) == Some("unlocked") {
        return Ok(
            session.redirect_with(&format!("/challenges/{challenge}"), Flash::info("This hint is already unlocked."))
        );
    }
    let cost = reply.body.pointer("/data/cost").and_then(Value::as_i64).unwrap_or_default();
    Ok(session.page(&HintConfirmPage { layout: session.layout("Unlock hint"), challenge, hint, cost }))
}

/// `POST /challenges/{id}/hints/{hint}`: unlock.
pub async fn hint_unlock(
    session: Session,
    Path((challenge, hint)): Path<(i64, i64)>,
    Form(form): Form<super::account::CsrfForm>,
) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require_team()?;
    let reply = session.post("/api/Hint/unlock", &json!({"type": "hints", "target": hint})).await;
    let back = format!("/challenges/{challenge}#hint-{hint}");
    if reply.ok() {
        return Ok(session.redirect_with(&back, Flash::ok("Hint unlocked.")));
    }
    Ok(session.after(&reply, &back))
}

/// Query of an attachment download.
#[derive(Debug, Deserialize)]
pub struct FileQuery {
    path: String,
    token: String,
}

/// `GET /files`: an attachment, through the contestant API's download check.
pub async fn file(session: Session, Query(query): Query<FileQuery>) -> Result<Response, Response> {
    session.require()?;
    let path = format!("/api/Files?path={}&token={}", query_escape(&query.path), query_escape(&query.token));
    let response = session.portal.api.raw(&session.caller, Method::GET, &path, session.token.as_deref(), None).await;
    if response.status().is_success() {
        return Ok(response);
    }
    Err(session.error(response.status(), "This file is not available."))
}

#[cfg(test)]
mod tests {
    use super::choices;

    #[test]
    fn multiple_choice_options_are_read_from_the_rendered_form() {
        let html = r#"<p>Q</p><input type="radio" name="answer" value="a &amp; b"><input type="radio" name="answer" value="&quot;c&quot;">"#;
        assert_eq!(choices(html), vec!["a & b".to_owned(), "\"c\"".to_owned()]);
        assert_eq!(super::question(html), "Q");
    }
}
