//! The team page (create, join, leave; members and solves) and the team's action log.

use askama::Template;
use axum::Form;
use axum::extract::Query;
use axum::response::Response;
use serde::Deserialize;
use serde_json::{Value, json};

use super::session::{PageResult, Session, short_time, text};
use crate::web::{Flash, Layout};

struct Member {
    name: String,
    score: String,
    captain: bool,
}

struct SolveRow {
    challenge_id: i64,
    challenge: String,
    category: String,
    value: String,
    user: String,
    date: String,
}

#[derive(Template)]
#[template(path = "portal/team.html")]
struct TeamPage {
    layout: Layout,
    has_team: bool,
    self_service: bool,
    name: String,
    place: String,
    score: String,
    total: String,
    teams: String,
    invite_code: String,
    members: Vec<Member>,
    solves: Vec<SolveRow>,
}

/// `GET /team`.
pub async fn page(session: Session) -> PageResult {
    let player = session.require()?;
    let self_service = session.config.team_self_service;
    let mut page = TeamPage {
        layout: session.layout("Team"),
        has_team: player.team_id.is_some(),
        self_service,
        name: String::new(),
        place: String::new(),
        score: String::new(),
        total: String::new(),
        teams: String::new(),
        invite_code: String::new(),
        members: Vec::new(),
        solves: Vec::new(),
    };
    if player.team_id.is_some() {
        let (team, solves) = tokio::join!(session.get("/api/Team/contestant"), session.get("/api/Team/solves"));
        if !team.ok() {
            return Err(session.read_failed(&team));
        }
        let data = team.data();
        let field = |name: &str| text(data.get(name).unwrap_or(&Value::Null));
        page.name = field("name");
        page.place = field("place");
        page.score = field("score");
        page.total = field("challengeTotalScore");
        page.teams = field("totalTeams");
        page.invite_code = field("inviteCode");
        page.members = data
            .get("members")
            .and_then(Value::as_array)
            .map(|members| {
                members
                    .iter()
                    .map(|member| Member {
                        name: text(member.get("name").unwrap_or(&Value::Null)),
                        score: text(member.get("score").unwrap_or(&Value::Null)),
                        captain: member.get("captain").and_then(Value::as_bool).unwrap_or(false),
                    })
                    .collect()
            })
            .unwrap_or_default();
        page.solves = solves
            .data()
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|row| {
                        let pick = |pointer: &str| text(row.pointer(pointer).unwrap_or(&Value::Null));
                        SolveRow {
                            challenge_id: row.get("challengeId").and_then(Value::as_i64).unwrap_or_default(),
                            challenge: pick("/challenge/name"),
                            category: pick("/challenge/category"),
                            value: pick("/challenge/value"),
                            user: pick("/user/name"),
                            date: short_time(row.get("date").unwrap_or(&Value::Null)),
                        }
                    })
                    .collect()
            })
            .unwrap_or_default();
    }
    Ok(session.page(&page))
}

/// The create and join forms.
#[derive(Debug, Deserialize)]
pub struct TeamForm {
    csrf: String,
    #[serde(default)]
    name: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    invite: String,
}

fn signed_in_again(session: &Session, reply: &super::api::Reply, success: String) -> Response {
    match reply.body.get("generatedToken").and_then(Value::as_str).filter(|_| reply.ok()) {
        Some(token) => session.redirect_signed_in("/team", Flash::ok(success), token),
        None => session.after(reply, "/team"),
    }
}

/// `POST /team/create`.
pub async fn create(session: Session, Form(form): Form<TeamForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require()?;
    let reply = session.post("/api/Team/create", &json!({"name": form.name, "password": form.password})).await;
    let invite = text(reply.body.pointer("/data/inviteCode").unwrap_or(&Value::Null));
    let name = text(reply.body.pointer("/data/name").unwrap_or(&Value::Null));
    Ok(signed_in_again(&session, &reply, format!("Team {name} created. Invite code for your teammates: {invite}")))
}

/// `POST /team/join`.
pub async fn join(session: Session, Form(form): Form<TeamForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require()?;
    let body = if form.invite.trim().is_empty() {
        json!({"name": form.name, "password": form.password})
    } else {
        json!({"inviteCode": form.invite.trim()})
    };
    let reply = session.post("/api/Team/join", &body).await;
    let name = text(reply.body.pointer("/data/name").unwrap_or(&Value::Null));
    Ok(signed_in_again(&session, &reply, format!("You joined {name}.")))
}

/// `POST /team/leave`.
pub async fn leave(session: Session, Form(form): Form<super::account::CsrfForm>) -> PageResult {
    session.check_csrf(&form.csrf)?;
    session.require()?;
    let reply = session.post("/api/Team/leave", &json!({})).await;
    Ok(signed_in_again(&session, &reply, "You left the team.".to_owned()))
}

struct LogRow {
    date: String,
    user: String,
    kind: &'static str,
    detail: String,
    topic: String,
}

/// An option of a filter select.
struct Choice {
    value: String,
    label: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "portal/log.html")]
struct LogPage {
    layout: Layout,
    rows: Vec<LogRow>,
    total: usize,
    kinds: Vec<Choice>,
    topics: Vec<Choice>,
    search: String,
}

/// Action types of the log, with their FCTF codes.
const ACTIONS: [(i64, &str); 7] = [
    (1, "Opened challenge"),
    (2, "Started instance"),
    (3, "Correct flag"),
    (4, "Incorrect flag"),
    (5, "Unlocked hint"),
    (6, "Started sandbox"),
    (7, "Stopped instance"),
];

fn action_name(code: i64) -> &'static str {
    ACTIONS.iter().find(|(known, _)| *known == code).map_or("Action", |(_, name)| name)
}

/// Filters of the action log (a GET form, so they work without JavaScript and survive the
/// live refresh): action type, topic (category) and a case-insensitive search.
#[derive(Debug, Default, Deserialize)]
pub struct LogQuery {
    #[serde(default, rename = "type")]
    kind: String,
    #[serde(default)]
    topic: String,
    #[serde(default)]
    q: String,
}

/// `GET /log`: the team's action log (newest first), filtered.
pub async fn action_log(session: Session, Query(query): Query<LogQuery>) -> PageResult {
    let player = session.require()?;
    let path = if player.team_id.is_some() { "/api/ActionLogs/get-logs-team" } else { "/api/ActionLogs/get-logs" };
    let reply = session.get(path).await;
    if !reply.status.is_success() {
        return Err(session.read_failed(&reply));
    }
    let all: Vec<(i64, LogRow)> = reply
        .data()
        .as_array()
        .map(|rows| {
            rows.iter()
                .map(|row| {
                    let code = row.get("actionType").and_then(Value::as_i64).unwrap_or_default();
                    let topic = match row.get("topicName") {
                        Some(Value::String(topic)) if topic != "Null" => topic.clone(),
                        _ => String::new(),
                    };
                    let entry = LogRow {
                        date: short_time(row.get("actionDate").unwrap_or(&Value::Null)),
                        user: text(row.get("userName").unwrap_or(&Value::Null)),
                        kind: action_name(code),
                        detail: text(row.get("actionDetail").unwrap_or(&Value::Null)),
                        topic,
                    };
                    (code, entry)
                })
                .collect()
        })
        .unwrap_or_default();
    let total = all.len();
    let kind: Option<i64> = query.kind.trim().parse().ok();
    let topic = query.topic.trim();
    let search = query.q.trim().to_lowercase();
    let mut topics: Vec<String> =
        all.iter().map(|(_, row)| row.topic.clone()).filter(|topic| !topic.is_empty()).collect();
    topics.sort_by_key(|topic| topic.to_lowercase());
    topics.dedup();
    let rows = all
        .into_iter()
        .filter(|(code, row)| {
            kind.is_none_or(|wanted| wanted == *code)
                && (topic.is_empty() || row.topic == topic)
                && (search.is_empty()
                    || [&row.user, &row.detail, &row.topic, &row.kind.to_owned()]
                        .iter()
                        .any(|field| field.to_lowercase().contains(&search)))
        })
        .map(|(_, row)| row)
        .collect();
    let kinds = ACTIONS
        .iter()
        .map(|(code, name)| Choice {
            value: code.to_string(),
            label: (*name).to_owned(),
            selected: kind == Some(*code),
        })
        .collect();
    let topics =
        topics.into_iter().map(|name| Choice { selected: name == topic, value: name.clone(), label: name }).collect();
    Ok(session.page(&LogPage {
        layout: session.layout("Action log"),
        rows,
        total,
        kinds,
        topics,
        search: query.q.trim().to_owned(),
    }))
}
