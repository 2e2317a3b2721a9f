//! The admin UI's pages, one module per area, and the helpers they share.

mod accounts;
mod challenges;
mod children;
mod dashboard;
mod desk;
mod event;
mod imports;
mod instances;
mod results;
mod setup;
mod user;

use axum::Router;
use serde_json::Value;

use crate::api::ApiState;

/// Adds every page route (all behind the session guard).
pub fn routes(router: Router<ApiState>) -> Router<ApiState> {
    let router = dashboard::routes(router);
    let router = event::routes(router);
    let router = challenges::routes(router);
    let router = instances::routes(router);
    let router = accounts::routes(router);
    let router = imports::routes(router);
    let router = setup::routes(router);
    let router = user::routes(router);
    let router = results::routes(router);
    desk::routes(router)
}

/// The fields of a URL-encoded form, in order (repeated names kept).
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[serde(transparent)]
pub struct Fields(pub Vec<(String, String)>);

impl Fields {
    /// The first value of `name`, trimmed; `None` when absent or empty.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.trim()).filter(|value| !value.is_empty())
    }

    /// The first value of `name`, untrimmed ("" when absent).
    pub fn raw(&self, name: &str) -> &str {
        self.0.iter().find(|(key, _)| key == name).map(|(_, value)| value.as_str()).unwrap_or("")
    }

    /// True when a checkbox `name` was sent.
    pub fn checked(&self, name: &str) -> bool {
        self.0.iter().any(|(key, _)| key == name)
    }

    /// Every value of `name`.
    pub fn all(&self, name: &str) -> Vec<&str> {
        self.0.iter().filter(|(key, _)| key == name).map(|(_, value)| value.as_str()).collect()
    }

    /// `name` as an integer JSON value; text that is not a number is passed on as text, so
    /// the admin API names the field in its error.
    pub fn number(&self, name: &str) -> Option<Value> {
        self.get(name).map(|text| text.parse::<i64>().map(Value::from).unwrap_or_else(|_| Value::from(text)))
    }
}

/// A JSON value shown as text (strings without quotes, null as "").
pub fn text(value: &Value) -> String {
    match value {
        Value::Null => String::new(),
        Value::String(text) => text.clone(),
        other => other.to_string(),
    }
}

/// `value[key]` as text.
pub fn field(value: &Value, key: &str) -> String {
    text(value.get(key).unwrap_or(&Value::Null))
}

/// `value[key]` as a boolean.
pub fn flag(value: &Value, key: &str) -> bool {
    value.get(key).and_then(Value::as_bool).unwrap_or(false)
}

/// The elements of a JSON array (none for anything else).
pub fn items(value: &Value) -> &[Value] {
    value.as_array().map(Vec::as_slice).unwrap_or(&[])
}

/// A Unix time as `YYYY-MM-DD HH:MM:SS` UTC ("" for none).
pub fn when(seconds: Option<i64>) -> String {
    seconds
        .and_then(|seconds| chrono::DateTime::from_timestamp(seconds, 0))
        .map(|time| time.format("%Y-%m-%d %H:%M:%S").to_string())
        .unwrap_or_default()
}

/// An ISO 8601 time of the admin API as `YYYY-MM-DD HH:MM:SS` UTC (other text unchanged).
pub fn iso_when(text: &str) -> String {
    chrono::DateTime::parse_from_rfc3339(text)
        .map(|time| when(Some(time.timestamp())))
        .unwrap_or_else(|_| text.to_owned())
}

/// Percent-encodes a query value.
pub fn encode(text: &str) -> String {
    url::form_urlencoded::byte_serialize(text.as_bytes()).collect()
}
