//! The challenge board: categories with their challenges, solved / locked / instance states.

use askama::Template;
use serde_json::Value;

use super::session::{PageResult, Session, text};
use crate::web::Layout;

/// Percent-encodes one path segment.
pub fn segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'_' | b'.' | b'~') {
            out.push(byte as char);
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// One challenge tile.
pub struct Tile {
    /// Challenge id.
    pub id: i64,
    /// Name.
    pub name: String,
    /// Current value.
    pub value: String,
    /// Solved by the team.
    pub solved: bool,
    /// Prerequisites unmet (anonymized).
    pub locked: bool,
    /// Instance state, if any.
    pub instance: String,
}

/// One category.
pub struct Category {
    /// Name.
    pub name: String,
    /// Tiles.
    pub tiles: Vec<Tile>,
    /// Solved tiles.
    pub solved: usize,
}

#[derive(Template)]
#[template(path = "portal/board.html")]
struct BoardPage {
    layout: Layout,
    categories: Vec<Category>,
    message: String,
}

/// The tiles of one category from the contestant API's list item JSON.
pub fn tiles(list: &Value) -> Vec<Tile> {
    list.as_array()
        .map(|items| {
            items
                .iter()
                .map(|item| Tile {
                    id: item.get("id").and_then(Value::as_i64).unwrap_or_default(),
                    name: text(item.get("name").unwrap_or(&Value::Null)),
                    value: text(item.get("value").unwrap_or(&Value::Null)),
                    solved: item.get("solve_by_myteam").and_then(Value::as_bool).unwrap_or(false),
                    locked: item.get("locked").and_then(Value::as_bool).unwrap_or(false),
                    instance: text(item.get("pod_status").unwrap_or(&Value::Null)),
                })
                .collect()
        })
        .unwrap_or_default()
}

/// `GET /challenges`.
pub async fn page(session: Session) -> PageResult {
    session.require_team()?;
    let topics = session.get("/api/Challenge/by-topic").await;
    if !topics.ok() {
        if topics.status == axum::http::StatusCode::UNAUTHORIZED {
            return Err(session.read_failed(&topics));
        }
        return Ok(session.page(&BoardPage {
            layout: session.layout("Challenges"),
            categories: Vec::new(),
            message: topics.message(),
        }));
    }
    let names: Vec<String> = topics
        .data()
        .as_array()
        .map(|topics| topics.iter().map(|topic| text(topic.get("topic_name").unwrap_or(&Value::Null))).collect())
        .unwrap_or_default();
    let lists = futures::future::join_all(
        names.iter().map(|name| session.get_owned(format!("/api/Challenge/list_challenge/{}", segment(name)))),
    )
    .await;
    let categories = names
        .into_iter()
        .zip(lists)
        .map(|(name, list)| {
            let tiles = tiles(list.data());
            let solved = tiles.iter().filter(|tile| tile.solved).count();
            Category { name, tiles, solved }
        })
        .filter(|category| !category.tiles.is_empty())
        .collect::<Vec<_>>();
    let message = if categories.is_empty() { "No challenges are open yet.".to_owned() } else { String::new() };
    Ok(session.page(&BoardPage { layout: session.layout("Challenges"), categories, message }))
}
