//! Request input: JSON bodies, typed fields with per-field errors, query strings and path ids.
//!
//! Bodies are read as a JSON object whatever the `Content-Type` (ctfcli sends
//! `application/json` even on bodiless GETs and DELETEs; scripts forget the header). An empty
//! body is an empty object. Field readers collect every problem, so one 400 lists them all.
//! Integers may be given as JSON numbers, integral floats or digit strings (as marshmallow
//! accepts them); booleans as JSON booleans, 0/1 or `"true"`/`"false"`. Unknown keys are
//! ignored (admin-api D5). Challenge bodies may also be forms: [`super::forms`].

use std::collections::BTreeMap;

use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Path, Request};
use axum::http::request::Parts;
use serde_json::{Map, Value};

use super::error::AdminError;

/// The largest JSON body accepted (challenge descriptions are at most 65535 characters).
pub const MAX_JSON_BODY: usize = 1024 * 1024;

/// A JSON object body (empty body = empty object).
#[derive(Debug, Clone, Default)]
pub struct JsonBody(pub Map<String, Value>);

impl<S: Send + Sync> FromRequest<S> for JsonBody {
    type Rejection = AdminError;

    async fn from_request(request: Request, state: &S) -> Result<Self, Self::Rejection> {
        let bytes = Bytes::from_request(request, state)
            .await
            .map_err(|error| AdminError::field("body", format!("unreadable body: {}", error.body_text())))?;
        parse_object(&bytes).map(JsonBody)
    }
}

/// Parses a JSON object; whitespace only means `{}`.
pub fn parse_object(bytes: &[u8]) -> Result<Map<String, Value>, AdminError> {
    if bytes.len() > MAX_JSON_BODY {
        return Err(AdminError::field("body", "body too large"));
    }
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    match serde_json::from_slice::<Value>(bytes) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(AdminError::field("body", "the body must be a JSON object")),
        Err(error) => Err(AdminError::field("body", format!("invalid JSON: {error}"))),
    }
}

/// A field that may be absent, null or set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Opt<T> {
    /// Not in the body.
    Absent,
    /// Explicitly `null`.
    Null,
    /// A value.
    Set(T),
}

impl<T> Opt<T> {
    /// `None` when absent, `Some(None)` when null, `Some(Some(v))` when set.
    pub fn patch(self) -> Option<Option<T>> {
        match self {
            Opt::Absent => None,
            Opt::Null => Some(None),
            Opt::Set(value) => Some(Some(value)),
        }
    }

    /// The value when set.
    pub fn set(self) -> Option<T> {
        match self {
            Opt::Set(value) => Some(value),
            _ => None,
        }
    }

    /// True when present (set or null).
    pub fn is_present(&self) -> bool {
        !matches!(self, Opt::Absent)
    }
}

/// Reads typed fields of a JSON object, collecting errors per field.
#[derive(Debug)]
pub struct Fields<'a> {
    map: &'a Map<String, Value>,
    errors: BTreeMap<String, Vec<String>>,
}

impl<'a> Fields<'a> {
    /// Starts reading `map`.
    pub fn new(map: &'a Map<String, Value>) -> Self {
        Self { map, errors: BTreeMap::new() }
    }

    /// Records a problem with a field.
    pub fn error(&mut self, field: &str, message: impl Into<String>) {
        self.errors.entry(field.to_owned()).or_default().push(message.into());
    }

    /// True when the key is in the body.
    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// The raw value.
    pub fn raw(&self, key: &str) -> Option<&'a Value> {
        self.map.get(key)
    }

    /// A text field of at most `max` characters.
    pub fn text(&mut self, key: &str, max: usize) -> Opt<String> {
        match self.map.get(key) {
            None => Opt::Absent,
            Some(Value::Null) => Opt::Null,
            Some(Value::String(text)) => {
                if text.chars().count() > max {
                    self.error(key, format!("must be at most {max} characters"));
                    Opt::Absent
                } else if text.contains('\0') {
                    self.error(key, "must not contain NUL characters");
                    Opt::Absent
                } else {
                    Opt::Set(text.clone())
                }
            }
            Some(Value::Number(number)) => Opt::Set(number.to_string()),
            Some(_) => {
                self.error(key, "must be a string");
                Opt::Absent
            }
        }
    }

    /// A required, non-blank text field.
    pub fn required_text(&mut self, key: &str, max: usize) -> Option<String> {
        match self.text(key, max) {
            Opt::Set(text) if !text.trim().is_empty() => Some(text),
            Opt::Set(_) | Opt::Null => {
                self.error(key, "must not be empty");
                None
            }
            Opt::Absent => {
                if !self.errors.contains_key(key) {
                    self.error(key, "is required");
                }
                None
            }
        }
    }

    /// An integer field within `range`.
    pub fn int(&mut self, key: &str, min: i64, max: i64) -> Opt<i64> {
        let Some(value) = self.map.get(key) else { return Opt::Absent };
        if value.is_null() {
            return Opt::Null;
        }
        match int_of(value) {
            Some(number) if (min..=max).contains(&number) => Opt::Set(number),
            Some(_) => {
                self.error(key, format!("must be between {min} and {max}"));
                Opt::Absent
            }
            None => {
                self.error(key, "must be an integer");
                Opt::Absent
            }
        }
    }

    /// A boolean field.
    pub fn bool(&mut self, key: &str) -> Opt<bool> {
        let Some(value) = self.map.get(key) else { return Opt::Absent };
        if value.is_null() {
            return Opt::Null;
        }
        match bool_of(value) {
            Some(flag) => Opt::Set(flag),
            None => {
                self.error(key, "must be a boolean");
                Opt::Absent
            }
        }
    }

    /// A text field restricted to `allowed` values.
    pub fn choice(&mut self, key: &str, allowed: &[&str]) -> Opt<String> {
        match self.text(key, 64) {
            Opt::Set(text) if allowed.contains(&text.as_str()) => Opt::Set(text),
            Opt::Set(_) => {
                self.error(key, format!("must be one of: {}", allowed.join(", ")));
                Opt::Absent
            }
            other => other,
        }
    }

    /// The first of several keys that is present, as an id (`challenge_id` or `challenge`).
    pub fn id_of(&mut self, keys: &[&str]) -> Opt<i64> {
        for key in keys {
            if self.has(key) {
                return self.int(key, 1, i64::MAX);
            }
        }
        Opt::Absent
    }

    /// Fails with every collected problem, if any.
    pub fn finish(self) -> Result<(), AdminError> {
        if self.errors.is_empty() { Ok(()) } else { Err(AdminError::Invalid(self.errors)) }
    }

    /// True when some problem was recorded.
    pub fn has_errors(&self) -> bool {
        !self.errors.is_empty()
    }
}

/// An integer from a JSON number, an integral float or a digit string.
pub fn int_of(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64().or_else(|| {
            number.as_f64().filter(|float| float.is_finite() && float.fract() == 0.0 && float.abs() < 9.0e15).map(
                |float| {
                    #[allow(clippy::cast_possible_truncation)]
                    let whole = float as i64;
                    whole
                },
            )
        }),
        Value::String(text) => text.trim().parse::<i64>().ok(),
        _ => None,
    }
}

/// A boolean from a JSON boolean, 0/1 or a textual boolean.
pub fn bool_of(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(flag) => Some(*flag),
        Value::Number(number) => match number.as_i64() {
            Some(0) => Some(false),
            Some(1) => Some(true),
            _ => None,
        },
        Value::String(text) => match text.trim().to_ascii_lowercase().as_str() {
            "true" | "1" | "yes" | "on" => Some(true),
            "false" | "0" | "no" | "off" | "" => Some(false),
            _ => None,
        },
        _ => None,
    }
}

/// Parsed query-string parameters (a malformed query string never fails; bad values do).
#[derive(Debug, Clone, Default)]
pub struct QueryParams(pub BTreeMap<String, String>);

impl<S: Send + Sync> FromRequestParts<S> for QueryParams {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or("");
        Ok(QueryParams(url::form_urlencoded::parse(query.as_bytes()).into_owned().collect()))
    }
}

impl QueryParams {
    /// A text parameter (empty counts as absent).
    pub fn text(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str).filter(|value| !value.is_empty())
    }

    /// An integer parameter; 400 when it is not one.
    pub fn int(&self, key: &str) -> Result<Option<i64>, AdminError> {
        match self.text(key) {
            None => Ok(None),
            Some(text) => {
                text.trim().parse::<i64>().map(Some).map_err(|_| AdminError::field(key, "must be an integer"))
            }
        }
    }

    /// A boolean parameter; 400 when it is not one.
    pub fn bool(&self, key: &str) -> Result<Option<bool>, AdminError> {
        match self.text(key) {
            None => Ok(None),
            Some(text) => bool_of(&Value::String(text.to_owned()))
                .map(Some)
                .ok_or_else(|| AdminError::field(key, "must be a boolean")),
        }
    }
}

/// One integer id in the path; a non-numeric id is 404 (as CTFd's routes answer).
#[derive(Debug, Clone, Copy)]
pub struct IdPath(pub i64);

impl<S: Send + Sync> FromRequestParts<S> for IdPath {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| AdminError::NotFound)?;
        raw.trim().parse::<i64>().map(IdPath).map_err(|_| AdminError::NotFound)
    }
}

/// One text parameter in the path (config keys, statistics columns).
#[derive(Debug, Clone)]
pub struct TextPath(pub String);

impl<S: Send + Sync> FromRequestParts<S> for TextPath {
    type Rejection = AdminError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        let Path(raw) = Path::<String>::from_request_parts(parts, state).await.map_err(|_| AdminError::NotFound)?;
        Ok(TextPath(raw))
    }
}

/// A JSON text value of a config-like field: strings as is, numbers and booleans as text,
/// null as `None`; arrays and objects as their JSON text.
pub fn value_as_text(value: &Value) -> Option<String> {
    match value {
        Value::Null => None,
        Value::String(text) => Some(text.clone()),
        Value::Bool(flag) => Some(if *flag { "true".to_owned() } else { "false".to_owned() }),
        Value::Number(number) => Some(number.to_string()),
        other => Some(other.to_string()),
    }
}

/// Parses a time given as Unix seconds or an ISO-8601 / RFC 3339 string.
pub fn time_of(value: &Value) -> Option<i64> {
    if let Some(seconds) = int_of(value) {
        return Some(seconds);
    }
    let text = value.as_str()?.trim();
    if let Ok(time) = chrono::DateTime::parse_from_rfc3339(text) {
        return Some(time.timestamp());
    }
    chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .or_else(|_| chrono::NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S"))
        .ok()
        .map(|naive| naive.and_utc().timestamp())
        .or_else(|| {
            chrono::NaiveDate::parse_from_str(text, "%Y-%m-%d")
                .ok()
                .and_then(|date| date.and_hms_opt(0, 0, 0))
                .map(|naive| naive.and_utc().timestamp())
        })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fields_collect_every_problem() {
        let body = json!({"name": 3, "value": "abc", "hidden": "maybe", "state": "gone", "ok": "7"});
        let map = body.as_object().unwrap();
        let mut fields = Fields::new(map);
        assert_eq!(fields.text("name", 80), Opt::Set("3".into()));
        assert_eq!(fields.int("value", 0, 10), Opt::Absent);
        assert_eq!(fields.bool("hidden"), Opt::Absent);
        assert_eq!(fields.choice("state", &["visible"]), Opt::Absent);
        assert_eq!(fields.int("ok", 0, 10), Opt::Set(7));
        assert_eq!(fields.required_text("missing", 10), None);
        let Err(AdminError::Invalid(errors)) = fields.finish() else { panic!("errors expected") };
        assert_eq!(errors.keys().collect::<Vec<_>>(), vec!["hidden", "missing", "state", "value"]);
    }

    #[test]
    fn bodies_parse_or_fail_cleanly() {
        assert!(parse_object(b"").unwrap().is_empty());
        assert!(parse_object(b"  \n").unwrap().is_empty());
        assert!(parse_object(b"[]").is_err());
        assert!(parse_object(b"{").is_err());
        assert!(parse_object(&[0xff]).is_err());
        assert_eq!(parse_object(br#"{"a":1}"#).unwrap()["a"], 1);
    }

    #[test]
    fn integers_and_times() {
        assert_eq!(int_of(&json!(3.0)), Some(3));
        assert_eq!(int_of(&json!(3.5)), None);
        assert_eq!(int_of(&json!(" 12 ")), Some(12));
        assert_eq!(time_of(&json!("2026-01-01T00:00:00+00:00")), Some(1_767_225_600));
        assert_eq!(time_of(&json!("2026-01-01T00:00:00")), Some(1_767_225_600));
        assert_eq!(time_of(&json!("2026-01-01")), Some(1_767_225_600));
        assert_eq!(time_of(&json!(5)), Some(5));
        assert_eq!(time_of(&json!("soon")), None);
    }
}
