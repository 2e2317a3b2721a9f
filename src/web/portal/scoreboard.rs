//! The scoreboard: bracket selector, freeze banner, the top-10 graph and the ranking, with live
//! refresh of the ranking region.

use askama::Template;
use axum::extract::Query;
use serde::Deserialize;
use serde_json::Value;

use super::graph::{self, PALETTE, Series};
use super::session::{PageResult, Session, text};
use crate::web::Layout;

/// How many accounts the page ranks.
const RANKED: usize = 100;
/// How many accounts the graph draws.
const GRAPHED: usize = 10;

struct Entry {
    place: usize,
    name: String,
    score: String,
    bracket: String,
    mine: bool,
    colour: &'static str,
}

struct Bracket {
    id: i64,
    name: String,
    selected: bool,
}

#[derive(Template)]
#[template(path = "portal/scoreboard.html")]
struct ScoreboardPage {
    layout: Layout,
    entries: Vec<Entry>,
    brackets: Vec<Bracket>,
    bracket: Option<i64>,
    frozen: Option<String>,
    svg: String,
    legend: Vec<(String, &'static str)>,
    message: String,
}

/// Query of the scoreboard.
#[derive(Debug, Deserialize)]
pub struct BoardQuery {
    bracket: Option<String>,
}

/// Parses the contract's time text into unix seconds.
pub fn parse_time(value: &Value) -> Option<i64> {
    let text = value.as_str()?.trim_end_matches('Z');
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f").ok().map(|time| time.and_utc().timestamp())
}

/// `GET /scoreboard` (anonymous when scores are public).
pub async fn page(session: Session, Query(query): Query<BoardQuery>) -> PageResult {
    let bracket = query.bracket.as_deref().and_then(|text| text.parse::<i64>().ok());
    let top_path = match bracket {
        Some(id) => format!("/api/Scoreboard/top/{RANKED}?bracket_id={id}"),
        None => format!("/api/Scoreboard/top/{RANKED}"),
    };
    let (top, brackets, freeze) = tokio::join!(
        session.get_owned(top_path),
        session.get("/api/Scoreboard/brackets"),
        session.get("/api/Scoreboard/freeze-status")
    );
    if top.status == axum::http::StatusCode::UNAUTHORIZED && session.player.is_some() {
        return Err(session.read_failed(&top));
    }
    let my_team = session.player.as_ref().and_then(|player| player.team_id).map(|team| team.get());
    let my_user = session.player.as_ref().map(|player| player.user_id.get());
    let rows = top.data().as_array().cloned().unwrap_or_default();
    let users_mode = session.config.user_mode == crate::event::UserMode::Users;
    let entries: Vec<Entry> = rows
        .iter()
        .enumerate()
        .map(|(index, row)| {
            let id = row.get("id").and_then(Value::as_i64);
            Entry {
                place: index + 1,
                name: text(row.get("name").unwrap_or(&Value::Null)),
                score: text(row.get("score").unwrap_or(&Value::Null)),
                bracket: text(row.get("bracketName").unwrap_or(&Value::Null)),
                mine: if users_mode { id == my_user } else { id.is_some() && id == my_team },
                colour: if index < GRAPHED { PALETTE[index % PALETTE.len()] } else { "" },
            }
        })
        .collect();
    let series: Vec<Series> = rows
        .iter()
        .take(GRAPHED)
        .map(|row| Series {
            name: text(row.get("name").unwrap_or(&Value::Null)),
            events: row
                .get("solves")
                .and_then(Value::as_array)
                .map(|solves| {
                    solves
                        .iter()
                        .filter_map(|solve| {
                            Some((
                                parse_time(solve.get("date")?)?,
                                solve.get("value").and_then(Value::as_i64).unwrap_or(0),
                            ))
                        })
                        .collect()
                })
                .unwrap_or_default(),
        })
        .collect();
    let now = chrono::Utc::now().timestamp();
    let frozen_at = freeze.body.get("freeze_time").and_then(Value::as_i64);
    let is_frozen = freeze.body.get("is_frozen").and_then(Value::as_bool).unwrap_or(false);
    let mut end = now;
    if session.config.end > 0 {
        end = end.min(session.config.end);
    }
    if let Some(freeze) = frozen_at.filter(|_| is_frozen) {
        end = end.min(freeze);
    }
    let svg = format!("{}{}", graph::render(&series, end, graph::WIDE), graph::render(&series, end, graph::COMPACT));
    let legend =
        series.iter().enumerate().map(|(index, one)| (one.name.clone(), PALETTE[index % PALETTE.len()])).collect();
    let brackets = brackets
        .data()
        .as_array()
        .map(|list| {
            list.iter()
                .map(|item| {
                    let id = item.get("id").and_then(Value::as_i64).unwrap_or_default();
                    Bracket { id, name: text(item.get("name").unwrap_or(&Value::Null)), selected: Some(id) == bracket }
                })
                .collect()
        })
        .unwrap_or_default();
    let frozen = frozen_at.filter(|_| is_frozen).map(|time| {
        chrono::DateTime::from_timestamp(time, 0)
            .map(|time| time.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_default()
    });
    let message = if top.ok() { String::new() } else { top.message() };
    let mut layout = session.layout("Scoreboard");
    if frozen.is_some() {
        layout.banner = None;
    }
    Ok(session.page(&ScoreboardPage { layout, entries, brackets, bracket, frozen, svg, legend, message }))
}
